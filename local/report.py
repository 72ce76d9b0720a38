"""The demo's report: what went in, what landed, what was sent, what failed and why, what sits in
each dead-letter queue, and whether every record is accounted for. ``render`` makes it text."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from dataclasses import dataclass
from typing import Any

from local.function_logs import Undelivered
from local.readback import StreamCheck

_WIDTH = 100
#: The checkpoint's counts the demo shows (``forwarder.telemetry`` publishes them).
CHECKPOINT_METRICS = (
    "CheckpointItemsRead",
    "CheckpointItemsWritten",
    "EventsAlreadyLanded",
    "EventsAmbiguous",
    "CheckpointProblems",
)


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """A dead-letter place (a queue, or a bucket's prefix): how many messages (or objects) it
    holds and the first few bodies."""

    title: str
    name: str
    count: int
    bodies: tuple[str, ...]
    unit: str = "message(s)"


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """One source: records sent (by kind), invocations, and where the records ended up:
    ``delivered`` (deleted after success / checkpointed) plus ``parked`` (in ``parked_where``)
    must equal ``sent``, and ``parked`` and ``dead_lettered`` (records the function itself sent
    to its dead-letter queue, counted in ``delivered``) must be what the workload expects."""

    name: str
    sent: int
    kinds: Counter[str]
    activity: str
    delivered: int
    parked: int
    parked_where: str
    expected_parked: int
    dead_lettered: int = 0
    expected_dead_lettered: int = 0

    @property
    def accounted(self) -> bool:
        return (
            self.delivered + self.parked == self.sent
            and self.parked == self.expected_parked
            and self.dead_lettered == self.expected_dead_lettered
        )


@dataclass(frozen=True, slots=True)
class CreatedGroup:
    """A log group the forwarder created, and how: what moto keeps (retention, key, tags) and
    the class its CreateLogGroup call asked for (moto does not keep that)."""

    name: str
    retention_days: int | None
    log_group_class: str
    tags: dict[str, str]
    kms_key_id: str | None = None


@dataclass(frozen=True, slots=True)
class DemoReport:
    """Everything the demo found, checked."""

    settings: tuple[tuple[str, str], ...]
    sources: tuple[SourceSummary, ...]
    streams: tuple[StreamCheck, ...]
    put_log_events: int
    create_log_stream: int
    refused: tuple[str, ...]
    undelivered: tuple[Undelivered, ...]
    #: The functions' delivery-checkpoint metrics, summed (``CHECKPOINT_METRICS``).
    checkpoint: Counter[str]
    queues: tuple[QueueSnapshot, ...]
    drained: bool
    elapsed_s: float
    created_groups: tuple[CreatedGroup, ...] = ()

    @property
    def ok(self) -> bool:
        return (
            self.drained
            and not self.refused
            and all(check.ok for check in self.streams)
            and all(source.accounted for source in self.sources)
        )


def peek_queue(sqs: Any, url: str, title: str, name: str, limit: int = 3) -> QueueSnapshot:
    """Count a queue's messages and read the first ``limit`` bodies without keeping them
    hidden (visibility timeout 0)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    seen: dict[str, str] = {}
    for _ in range(3):
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        for message in answer.get("Messages", []):
            seen.setdefault(message["MessageId"], message["Body"])
        if len(seen) >= limit or not answer.get("Messages"):
            break
    count = int(attributes.get("ApproximateNumberOfMessages", 0))
    return QueueSnapshot(title, name, count, tuple(list(seen.values())[:limit]))


def render(report: DemoReport) -> str:
    """The report as a few short sections of text, at most 100 columns wide."""
    lines: list[str] = ["CloudWatch Logs forwarder: local end-to-end demo", ""]
    for key, value in report.settings:
        lines += _wrap(f"  {key:<10} ", value)
    lines += ["", "Records in"]
    for source in report.sources:
        kinds = ", ".join(f"{n} {kind}" for kind, n in source.kinds.items())
        lines += _wrap(f"  {source.name:<8} {source.sent:>3}  ", kinds)
        lines += _wrap(" " * 16, source.activity)
    lines += ["", "Landed in CloudWatch Logs (read back from moto)"]
    for check in report.streams:
        verdict = "as expected" if check.ok else f"WRONG: {check.problem}"
        split = ""
        if check.ok and check.landed > check.expected:
            split = f" ({check.expected} split into {check.landed})"
        lines.append(
            f"  {check.group:<15} {check.stream:<13} {check.landed:>3} events{split:<19} {verdict}"
        )
    events = sum(check.landed for check in report.streams)
    lines.append(f"  {events} events in {len(report.streams)} streams")
    if report.created_groups:
        lines += ["", "Log groups the forwarder created (NEW_LOG_GROUP_*)"]
        for group in report.created_groups:
            retention = f"{group.retention_days} days" if group.retention_days else "never expire"
            tags = ", ".join(f"{k}={v}" for k, v in sorted(group.tags.items())) or "none"
            key = f", KMS key {group.kms_key_id}" if group.kms_key_id else ""
            lines += _wrap(
                f"  {group.name:<15} ",
                f"retention {retention}, class {group.log_group_class} (as asked; moto does not "
                f"keep the class), tags {tags}{key}",
            )
    lines += [
        "",
        "Requests to CloudWatch Logs (seen by the strict layer)",
        f"  PutLogEvents {report.put_log_events}, CreateLogStream {report.create_log_stream}; "
        f"requests refused for their shape: {len(report.refused)}",
    ]
    lines += [f"    refused: {_clip(problem, 90)}" for problem in report.refused[:5]]
    checkpoint = report.checkpoint
    lines += [
        "",
        "Delivery checkpoint (DynamoDB, the functions' metrics)",
        f"  items read {checkpoint['CheckpointItemsRead']}, written "
        f"{checkpoint['CheckpointItemsWritten']}; events left out as already landed "
        f"{checkpoint['EventsAlreadyLanded']}, ambiguous {checkpoint['EventsAmbiguous']}; "
        f"problems {checkpoint['CheckpointProblems']}",
    ]
    lines += ["", "Not delivered, and why (the functions' own log lines)"]
    grouped = Counter(
        (u.function, u.record_id, u.disposition, u.reason) for u in report.undelivered
    )
    if not grouped:
        lines.append("  nothing")
    for (function, record_id, disposition, reason), times in grouped.items():
        source = "sqs" if "sqs" in function else "kinesis" if "kinesis" in function else function
        lines.append(f"  {source} record {record_id}: {disposition} x{times}")
        lines += _wrap("      ", reason)
    lines += ["", "Dead letters and given-up records"]
    for queue in report.queues:
        lines.append(f"  {queue.title}, {queue.name}: {queue.count} {queue.unit}")
        lines += [f"    {_clip(_summary(body), _WIDTH - 4)}" for body in queue.bodies]
    lines += ["", "Accounting"]
    for source in report.sources:
        mark = "ok" if source.accounted else "MISMATCH"
        letters = f" ({source.dead_lettered} dead-lettered by the function)"
        lines += _wrap(
            f"  {source.name:<8} ",
            f"{source.sent} sent = {source.delivered} handled"
            f"{letters if source.dead_lettered else ''} + {source.parked} in "
            f"{source.parked_where}: {mark}",
        )
    verdict = "everything accounted for" if report.ok else "SOMETHING IS WRONG (see above)"
    if not report.drained:
        verdict += "; the loop timed out before the sources were drained"
    lines += ["", f"{verdict}; finished in {report.elapsed_s:.1f} s"]
    return "\n".join(lines)


def _wrap(prefix: str, text: str) -> list[str]:
    """``text`` after ``prefix``, wrapped at the report's width under the first line."""
    return textwrap.wrap(
        text,
        _WIDTH,
        initial_indent=prefix,
        subsequent_indent=" " * len(prefix),
        break_on_hyphens=False,
    ) or [prefix.rstrip()]


def _summary(body: str) -> str:
    """One line for a dead-letter message: the parts a person looks for first."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict):
        return body
    if "KinesisBatchInfo" in document:
        info, context = document["KinesisBatchInfo"], document["requestContext"]
        return (
            f"{context['condition']} after {context['approximateInvokeCount']} invocation(s): "
            f"{info['shardId']} sequence {info['startSequenceNumber']}..."
            f"{info['endSequenceNumber']}, {info['batchSize']} record(s) "
            + ("(with their data)" if "payload" in document else "(metadata only)")
        )
    if "reason" in document and "payload" in document:
        record = document.get("recordId")
        return f"reason: {document['reason']}; record {record}: {document['payload']}"
    if "reason" in document and "userRecords" in document:
        users = document["userRecords"]
        return (
            f"reason: {document['reason']}; record {document.get('recordId')}: "
            f"{len(users)} user record(s), the first: {users[0].get('payload') if users else ''}"
        )
    return body


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."
