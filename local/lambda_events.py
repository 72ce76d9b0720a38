"""Lambda's SQS and Kinesis events, the payloads they carry and a Lambda context: the one source
of them for all that calls the handler outside Lambda (the local loop, the CLI, the tests, the
timings and ``events/generate.py``).

The shapes are those Lambda sends (and ``sam local generate-event sqs receive-message`` /
``kinesis get-records`` give): field names in camelCase, SQS system attributes as strings,
message attributes with ``stringValue`` / ``binaryValue`` (base64) and the list fields, Kinesis
``data`` in base64 and ``approximateArrivalTimestamp`` in seconds with millisecond precision.
``sqs_record`` and ``kinesis_record`` are pure; ``sqs_event`` and ``kinesis_event`` stamp their
records with the time of the call unless given one.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # not at run time: the batch package costs 1 MB and 36 modules
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

REGION = "us-east-1"
ACCOUNT = "123456789012"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:logs-in"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/logs-in"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/forwarder"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:forwarder"
SHARD_ID = "shardId-000000000000"
_FIRST_SEQUENCE = 49590338271490256608559692538361571095921575989136_000000
_FIRST_FIFO_SEQUENCE = 18_849_496_460_467_696_128

#: The system attributes Lambda puts in ``attributes`` (FIFO ones only on FIFO queues).
SQS_SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One Kinesis record as GetRecords returns it; ``arrival_s`` is epoch seconds."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    arrival_s: float

    @property
    def position(self) -> int:
        """The sequence number as a number (compare these, never the strings' lengths)."""
        return int(self.sequence_number)


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """The Lambda event record of one message from ``ReceiveMessage`` (asked for all system and
    message attributes)."""
    system = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {k: str(system[k]) for k in SQS_SYSTEM_ATTRIBUTES if k in system},
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        raw = value["BinaryValue"]
        raw = raw if isinstance(raw, bytes) else str(raw).encode()
        attribute["binaryValue"] = base64.b64encode(raw).decode()
    return attribute


def kinesis_record(
    record: StreamRecord, stream_arn: str, region: str, role_arn: str
) -> dict[str, Any]:
    """The Lambda event record of one Kinesis record."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record.partition_key,
            "sequenceNumber": record.sequence_number,
            "data": base64.b64encode(record.data).decode(),
            "approximateArrivalTimestamp": round(record.arrival_s, 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{record.shard_id}:{record.sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The invocation payload: ``{"Records": [...]}``."""
    return {"Records": records}


#: What a record's envelope (ids, attributes, ARNs) adds to its body, roughly.
RECORD_OVERHEAD_BYTES = 512


def payload_size(body_bytes: int, *, base64_encoded: bool = False) -> int:
    """Bytes a record adds to the invocation payload, which Lambda caps at 6 MB per batch:
    its body (``base64_encoded``: the size after base64, as Kinesis data travels) plus
    ``RECORD_OVERHEAD_BYTES``."""
    body = 4 * -(-body_bytes // 3) if base64_encoded else body_bytes
    return body + RECORD_OVERHEAD_BYTES


def now_ms() -> int:
    """The time in epoch milliseconds."""
    return int(time.time() * 1000)


def sqs_event(
    bodies: Sequence[str],
    group: str | None = None,
    *,
    at_ms: int | None = None,
    queue_arn: str = QUEUE_ARN,
    region: str = REGION,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """An SQS event of ``bodies`` received at ``at_ms`` (default now), the i-th sent 1000 - i ms
    before. ``group`` makes it a FIFO queue's (``.fifo`` ARN, that MessageGroupId on every record,
    content-based deduplication ids). Message ids and receipt handles come from ``rng``
    (reproducible) or are random."""
    at = now_ms() if at_ms is None else at_ms
    arn = queue_arn + (".fifo" if group is not None else "")
    draw = rng or random.SystemRandom()
    records = []
    for index, body in enumerate(bodies):
        raw = draw.randbytes(22)  # a short handle: 10,000 records in 6 MB are mostly envelope
        text = body.encode("utf-8", "surrogatepass")
        attributes: dict[str, Any] = {
            "ApproximateReceiveCount": 1,
            "SentTimestamp": at - 1000 + index,
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": at,
        }
        if group is not None:
            attributes |= {
                "SequenceNumber": _FIRST_FIFO_SEQUENCE + index,
                "MessageGroupId": group,
                "MessageDeduplicationId": hashlib.sha256(text).hexdigest(),
            }
        message = {
            "MessageId": str(uuid.UUID(bytes=raw[:16], version=4)),
            "ReceiptHandle": "AQEB" + base64.b64encode(raw[16:]).decode(),
            "Body": body,
            "MD5OfBody": hashlib.md5(text, usedforsecurity=False).hexdigest(),
            "Attributes": attributes,
        }
        records.append(sqs_record(message, arn, region))
    return event(records)


def kinesis_event(
    payloads: Sequence[bytes],
    *,
    at_ms: int | None = None,
    stream_arn: str = STREAM_ARN,
    region: str = REGION,
    role_arn: str = ROLE_ARN,
) -> dict[str, Any]:
    """A Kinesis event of ``payloads`` from one shard, in order, the i-th arrived 1000 - i ms
    before ``at_ms`` (default now)."""
    at = now_ms() if at_ms is None else at_ms
    records = [
        StreamRecord(SHARD_ID, str(_FIRST_SEQUENCE + i), f"key-{i}", data, (at - 1000 + i) / 1000)
        for i, data in enumerate(payloads)
    ]
    return event([kinesis_record(r, stream_arn, region, role_arn) for r in records])


def one_event(
    group: str, stream: str, message: Any, timestamp: int | None = None, **extra: Any
) -> str:
    """Payload form 1: one event (without ``timestamp`` the record's arrival is its time)."""
    document: dict[str, Any] = {"logGroupName": group, "logStreamName": stream}
    if timestamp is not None:
        document["timestamp"] = timestamp
    return json.dumps(document | {"message": message} | extra)


def many_events(group: str, stream: str, events: Sequence[tuple[int, Any]], **extra: Any) -> str:
    """Payload form 2: the PutLogEvents request's shape."""
    items = [{"timestamp": t, "message": m} for t, m in events]
    return json.dumps({"logGroupName": group, "logStreamName": stream, "logEvents": items, **extra})


def subscription_payload(
    group: str, stream: str, events: Sequence[tuple[int, str]], kind: str = "DATA_MESSAGE"
) -> bytes:
    """Payload form 3: what a CloudWatch Logs subscription filter writes to Kinesis, gzip
    (``mtime`` 0: the same events give the same bytes)."""
    document = {
        "messageType": kind,
        "owner": ACCOUNT,
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["to-forwarder"],
        "logEvents": [
            {"id": f"{i:056d}", "timestamp": t, "message": m} for i, (t, m) in enumerate(events)
        ],
    }
    return gzip.compress(json.dumps(document).encode(), mtime=0)


@dataclass(frozen=True, slots=True)
class LambdaContext:
    """What the handler reads from Lambda's context, with a real time budget:
    ``get_remaining_time_in_millis`` counts ``budget_ms`` down from the context's creation."""

    budget_ms: int = 60_000
    function_name: str = "forwarder"
    invoked_function_arn: str = FUNCTION_ARN
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/forwarder"
    log_stream_name: str = ""
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.budget_ms - int((time.monotonic() - self.started) * 1000))


def failed_ids(response: PartialItemFailureResponse) -> list[str]:
    """The ``itemIdentifier`` of each failure the handler reported, in its order (SQS message
    ids, Kinesis sequence numbers)."""
    return [cast(str, item["itemIdentifier"]) for item in response["batchItemFailures"]]
