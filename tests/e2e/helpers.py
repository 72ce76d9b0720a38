"""Helpers of the end-to-end tests: fast blueprints, scripted handlers, record decoding."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from local.specs import Blueprint, default_blueprint

Records = list[dict[str, Any]]


def fast_blueprint(
    *,
    visibility_s: int = 1,
    max_receive_count: int = 3,
    fifo: bool = False,
    sqs_batch: int = 10,
    sqs_window_s: float = 0.0,
    shards: int = 1,
    kinesis_batch: int = 100,
    kinesis_window_s: float = 0.0,
    starting_position: str = "TRIM_HORIZON",
    bisect: bool = True,
    kinesis_retries: int = 2,
    max_record_age_s: int = -1,
) -> Blueprint:
    """The default blueprint (the CDK app's defaults) with timings short enough for tests."""
    blueprint = default_blueprint()
    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    blueprint = blueprint.with_queue(
        blueprint.sqs.queue,
        visibility_timeout_s=visibility_s,
        max_receive_count=max_receive_count,
        fifo=fifo,
        content_based_deduplication=fifo,
    )
    if fifo:
        blueprint = blueprint.with_queue("SqsDeadLetterQueue", fifo=True)
    sqs = replace(
        blueprint.sqs,
        mapping=replace(
            blueprint.sqs.mapping, batch_size=sqs_batch, batching_window_s=sqs_window_s
        ),
    )
    kinesis = replace(
        blueprint.kinesis,
        stream=replace(blueprint.kinesis.stream, shard_count=shards),
        mapping=replace(
            blueprint.kinesis.mapping,
            batch_size=kinesis_batch,
            batching_window_s=kinesis_window_s,
            starting_position=starting_position,
            bisect_on_error=bisect,
            max_retry_attempts=kinesis_retries,
            max_record_age_s=max_record_age_s,
        ),
    )
    return replace(blueprint, sqs=sqs, kinesis=kinesis)


class ScriptedHandler:
    """A stand-in for the forwarder: keeps every batch it is given and answers what
    ``respond(records)`` returns (or raises)."""

    def __init__(self, respond: Callable[[Records], Any]) -> None:
        self.batches: list[Records] = []
        self._respond = respond

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.batches.append(event["Records"])
        return self._respond(event["Records"])

    def payloads(self) -> list[list[str]]:
        """The payload of each record of each batch, in order."""
        return [[payload(r) for r in batch] for batch in self.batches]


def payload(record: dict[str, Any]) -> str:
    """An SQS record's body or a Kinesis record's data, as text."""
    if "kinesis" in record:
        return base64.b64decode(record["kinesis"]["data"]).decode()
    return str(record["body"])


def record_id(record: dict[str, Any]) -> str:
    """What ``batchItemFailures`` names: the SQS message id or the Kinesis sequence number."""
    if "kinesis" in record:
        return str(record["kinesis"]["sequenceNumber"])
    return str(record["messageId"])


def fail_where(predicate: Callable[[str], bool]) -> Callable[[Records], dict[str, Any]]:
    """A response that reports the records whose payload matches ``predicate``."""

    def respond(records: Records) -> dict[str, Any]:
        failed = [{"itemIdentifier": record_id(r)} for r in records if predicate(payload(r))]
        return {"batchItemFailures": failed}

    return respond
