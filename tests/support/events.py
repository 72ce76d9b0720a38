"""Lambda events and contexts shaped exactly like the ones Lambda sends."""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:logs-in"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/logs-in"


def now_ms() -> int:
    return int(time.time() * 1000)


def sqs_event(bodies: list[str], group: str | None = None) -> dict[str, Any]:
    """An SQS event; ``group`` makes it a FIFO event with that MessageGroupId on every record."""
    records = []
    for index, body in enumerate(bodies):
        attributes = {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(now_ms() - 1000 + index),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": str(now_ms()),
        }
        if group is not None:
            attributes |= {"MessageGroupId": group, "SequenceNumber": str(10**19 + index)}
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"handle-{index}",
                "body": body,
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN + (".fifo" if group else ""),
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def kinesis_event(payloads: list[bytes]) -> dict[str, Any]:
    records = []
    for index, data in enumerate(payloads):
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": f"key-{index}",
                    "sequenceNumber": f"4959{index:052d}",
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": time.time() - 1 + index / 1000,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:4959{index:052d}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/forwarder",
                "awsRegion": "us-east-1",
                "eventSourceARN": STREAM_ARN,
            }
        )
    return {"Records": records}


def one_event(
    group: str, stream: str, message: Any, timestamp: int | None = None, **extra: Any
) -> str:
    document = {"logGroupName": group, "logStreamName": stream, "message": message, **extra}
    if timestamp is not None:
        document["timestamp"] = timestamp
    return json.dumps(document)


def many_events(group: str, stream: str, events: list[tuple[int, str]], **extra: Any) -> str:
    items = [{"timestamp": t, "message": m} for t, m in events]
    return json.dumps({"logGroupName": group, "logStreamName": stream, "logEvents": items, **extra})


def subscription_payload(
    group: str, stream: str, events: list[tuple[int, str]], kind: str = "DATA_MESSAGE"
) -> bytes:
    """A CloudWatch Logs subscription-filter record, gzip-compressed as the service sends it."""
    document = {
        "messageType": kind,
        "owner": "123456789012",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["to-kinesis"],
        "logEvents": [
            {"id": str(i), "timestamp": t, "message": m} for i, (t, m) in enumerate(events)
        ],
    }
    return gzip.compress(json.dumps(document).encode())


@dataclass
class LambdaContext:
    """A Lambda context with a real time budget that runs down from its creation."""

    budget_ms: int = 60_000
    function_name: str = "forwarder"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:forwarder"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.budget_ms - int((time.monotonic() - self.started) * 1000))


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]
