"""Lambda's event records for SQS and Kinesis, built from what the services return. Pure.

The shapes are the ones Lambda documents for its event source mappings: field names in
camelCase, SQS system attributes as strings, message attributes with ``stringValue`` /
``binaryValue`` (base64) and the list fields, Kinesis ``data`` in base64 and
``approximateArrivalTimestamp`` in seconds with millisecond precision.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def sample_sqs_event(bodies: list[str], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS event for ``bodies``, as if just received (for ``python -m local event``)."""
    now = str(int(time.time() * 1000))
    records = []
    for body in bodies:
        message = {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": base64.b64encode(uuid.uuid4().bytes).decode(),
            "Body": body,
            "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "Attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": now,
                "SenderId": "AIDAEXAMPLELOCAL",
                "ApproximateFirstReceiveTimestamp": now,
            },
        }
        records.append(sqs_record(message, queue_arn, region))
    return event(records)


def sample_kinesis_event(payloads: list[bytes], stream_arn: str, region: str) -> dict[str, Any]:
    """A Kinesis event for ``payloads`` on one shard (for ``python -m local event``)."""
    role = f"arn:aws:iam::{stream_arn.split(':')[4]}:role/forwarder-role"
    records = [
        kinesis_record(
            StreamRecord("shardId-000000000000", str(i + 1), f"key-{i}", data, time.time()),
            stream_arn,
            region,
            role,
        )
        for i, data in enumerate(payloads)
    ]
    return event(records)
