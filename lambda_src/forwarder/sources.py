"""The Lambda event's envelope, read with Powertools' event source data classes.

Turns an SQS or Kinesis event into ``SourceRecord`` values. An envelope that cannot be read (bad
base64, an unknown event source) still yields a record, marked with ``envelope_error``, so that it
is reported like any other invalid record instead of failing the batch.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from forwarder.model import SourceRecord

SQS = "aws:sqs"
KINESIS = "aws:kinesis"
#: The ordered group of a Kinesis record whose ``eventID`` names no shard (a batch is always from
#: one shard, so its records still form one group).
UNKNOWN_SHARD = "kinesis"


def source_records(event: Any) -> tuple[str, list[SourceRecord]]:
    """The event's source (``aws:sqs`` or ``aws:kinesis``) and its records, in batch order."""
    raw_records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(raw_records, list):
        return "unknown", []
    records = [_record(raw) for raw in raw_records if isinstance(raw, dict)]
    sources = {raw.get("eventSource") for raw in raw_records if isinstance(raw, dict)}
    source = sources.pop() if len(sources) == 1 else "mixed"
    return str(source), records


def _record(raw: dict[str, Any]) -> SourceRecord:
    source = raw.get("eventSource")
    if source == SQS:
        return _sqs(SQSRecord(raw))
    if source == KINESIS:
        return _kinesis(KinesisStreamRecord(raw))
    record_id = str(raw.get("messageId") or raw.get("eventID") or "unknown")
    return SourceRecord(
        record_id, "", _now_ms(), envelope_error=f"unsupported eventSource {source!r}"
    )


def _sqs(record: SQSRecord) -> SourceRecord:
    attributes = record.attributes
    try:
        arrival_ms = int(attributes.sent_timestamp)
    except (KeyError, TypeError, ValueError):
        arrival_ms = _now_ms()
    body = record.get("body")
    return SourceRecord(
        record_id=record.message_id,
        payload=body if isinstance(body, str) else "",
        arrival_ms=arrival_ms,
        # Only a FIFO queue keeps a group's order; a standard queue's MessageGroupId (fair
        # queues) only shares capacity, and its records are retried one by one.
        message_group=attributes.message_group_id if _is_fifo(record) else None,
        envelope_error=None if isinstance(body, str) else "SQS record has no body",
        source_arn=str(record.get("eventSourceARN") or ""),
        receive_count=_receive_count(attributes.get("ApproximateReceiveCount")),
    )


def _receive_count(value: Any) -> int | None:
    """``ApproximateReceiveCount``, or None when absent or not a number (then a redelivery
    cannot be ruled out)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _is_fifo(record: SQSRecord) -> bool:
    """A FIFO queue's ARN ends in ``.fifo``; nothing else in the record tells."""
    return str(record.get("eventSourceARN") or "").endswith(".fifo")


def _kinesis(record: KinesisStreamRecord) -> SourceRecord:
    payload = record.kinesis
    try:
        arrival_ms = int(float(payload.approximate_arrival_timestamp) * 1000)
    except (KeyError, TypeError, ValueError):
        arrival_ms = _now_ms()
    try:
        # Strict: Powertools' data_as_bytes() skips characters outside the alphabet, which would
        # forward a corrupted record instead of reporting it.
        data: str | bytes = base64.b64decode(payload.data, validate=True)
        error = None
    except (binascii.Error, ValueError, TypeError, KeyError) as problem:
        data = str(payload.get("data", ""))
        error = f"Kinesis data is not valid base64 ({problem})"
    return SourceRecord(
        payload.sequence_number,
        data,
        arrival_ms,
        message_group=_shard_id(record),
        envelope_error=error,
        source_arn=str(record.get("eventSourceARN") or ""),
    )


def _shard_id(record: KinesisStreamRecord) -> str:
    """The shard of a Kinesis record: ``eventID`` is ``"<shard id>:<sequence number>"``.

    Lambda retries a shard's batch from its lowest reported sequence number, redelivering every
    later record, so the shard is the ordered group (``SourceRecord.message_group``)."""
    event_id = record.get("eventID")
    if isinstance(event_id, str):
        shard, colon, _ = event_id.partition(":")
        if colon and shard:
            return shard
    return UNKNOWN_SHARD


def _now_ms() -> int:
    return int(time.time() * 1000)
