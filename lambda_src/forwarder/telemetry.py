"""Observability: one structured log line per record not delivered, one summary per invocation,
and the counts as CloudWatch metrics in EMF (Powertools Logger and Metrics)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from forwarder.forwarding import ForwardingResult

_BYTES = frozenset({"BytesSent"})
#: The first few checkpoint problems of an invocation are logged; the count is a metric.
_PROBLEMS_LOGGED = 5
#: Published only in an invocation that saw some: a custom metric costs by the hours it is
#: published, and these are zero in almost every batch (``UserRecordsReceived``: the user
#: records of KPL aggregates, zero but from aggregating producers).
_WHEN_SEEN = (
    "UserRecordsReceived",
    "EventsAmbiguous",
    "EventsAlreadyLanded",
    "EventsUnremembered",
    "EventsUnchecked",
    "CheckpointItemsRead",
    "CheckpointItemsWritten",
    "CheckpointProblems",
    "LogGroupRetentionFailures",
)


def publish(result: ForwardingResult, logger: Logger, metrics: Metrics) -> None:
    """Log every failure with the record's id and reason, the summary, and add the metrics."""
    for failure in result.failures:
        logger.warning(
            "record not delivered",
            record_id=failure.record_id,
            disposition=failure.disposition,
            reason=failure.reason,
        )
    for error_type, count in result.entity_rejections.items():
        logger.warning("entity rejected", error_type=error_type, requests=count)
    if result.checkpoint_problems:
        # Once per invocation: the checkpoint cost no record, at worst a duplicate.
        logger.warning(
            "delivery checkpoint degraded",
            problems=result.checkpoint_problems[:_PROBLEMS_LOGGED],
            count=len(result.checkpoint_problems),
        )
    for problem in result.log_group_problems:
        # Rare (a group is created once) and a person must set the retention by hand.
        logger.warning("log group retention not set", problem=problem)
    rejected = {reason.value: count for reason, count in result.rejected_events.items()}
    counts: dict[str, Any] = {_snake(name): value for name, value in sorted(result.counts.items())}
    logger.info(
        "batch forwarded",
        source=result.source,
        records=result.records,
        **counts,
        events_rejected=rejected,
    )
    metrics.add_metric("RecordsReceived", MetricUnit.Count, result.records)
    for name in (
        "RecordsFailed",
        "RecordsInvalid",
        "RecordsDeferred",
        "RecordsDeadLettered",
        "RecordsDropped",
        "EventsForwarded",
        "EventsSkipped",
        "EventsSplit",
        "RequestsSent",
        "BytesSent",
    ):
        unit = MetricUnit.Bytes if name in _BYTES else MetricUnit.Count
        metrics.add_metric(name, unit, result.counts.get(name, 0))
    for name in _WHEN_SEEN:
        if result.counts.get(name):
            metrics.add_metric(name, MetricUnit.Count, result.counts[name])
    for reason, count in result.rejected_events.items():
        metrics.add_metric(f"EventsRejected.{reason.value}", MetricUnit.Count, count)
    metrics.add_metric("EntityRejections", MetricUnit.Count, sum(result.entity_rejections.values()))


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
