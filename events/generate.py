#!/usr/bin/env python3
"""Write the sample Lambda events in ``events/`` (the shapes ``sam local generate-event`` gives).

    .venv/bin/python events/generate.py          # the committed files (fixed timestamps)
    .venv/bin/python events/generate.py --now    # timestamps of now, for `sam local invoke`

CloudWatch Logs refuses events older than 14 days (or its log group's retention), so before
invoking against a real account, regenerate with ``--now`` or shift an event with
:func:`refreshed`. The payloads are what the forwarder reads: an SQS body or Kinesis data holding
``{"logGroupName", "logStreamName", "timestamp", "message"}`` or ``{..., "logEvents": [...]}``,
or (Kinesis) a gzip-compressed CloudWatch Logs subscription-filter ``DATA_MESSAGE``. Every log
group is under ``/app/``, which the default ``allowedLogGroups`` admits.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:CloudWatchLogsForwarder-SqsQueue"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/CloudWatchLogsForwarder-KinesisStream"
#: 2026-11-20T12:00:00Z: the committed files are reproducible.
FIXED_NOW_MS = 1_795_176_000_000


def _json(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


def _gzip(document: Any) -> bytes:
    # mtime=0: the same document always gives the same bytes.
    return gzip.compress(_json(document).encode(), mtime=0)


def _sqs_record(index: int, body: str, now_ms: int, *, fifo_group: str | None = None) -> dict:
    attributes = {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": str(now_ms - 2000 + index),
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": str(now_ms - 1000 + index),
    }
    if fifo_group is not None:
        attributes |= {
            "SequenceNumber": str(18_849_496_460_467_696_128 + index),
            "MessageGroupId": fifo_group,
            "MessageDeduplicationId": hashlib.sha256(body.encode()).hexdigest(),
        }
    return {
        "messageId": f"059f36b4-87a3-44ab-83d2-66197{index:07d}",
        "receiptHandle": f"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a{index}",
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN + (".fifo" if fifo_group is not None else ""),
        "awsRegion": REGION,
    }


def _kinesis_record(index: int, data: bytes, now_ms: int) -> dict:
    sequence = f"49590338271490256608559692538361571095921575989136{index:06d}"
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": f"/app/partition-{index}",
            "sequenceNumber": sequence,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": (now_ms - 1000 + index) / 1000,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/forwarder-kinesis",
        "awsRegion": REGION,
        "eventSourceARN": STREAM_ARN,
    }


def sqs_event(now_ms: int = FIXED_NOW_MS) -> dict:
    """A standard queue: one single-event body and one body with several events."""
    single = {
        "logGroupName": "/app/orders",
        "logStreamName": "web-1",
        "timestamp": now_ms - 5000,
        "message": "order 1042 created",
    }
    many = {
        "logGroupName": "/app/orders",
        "logStreamName": "worker-1",
        "logEvents": [
            {"timestamp": now_ms - 4000, "message": "order 1042 paid"},
            {"timestamp": now_ms - 3000, "message": '{"level":"INFO","msg":"order 1042 packed"}'},
        ],
    }
    return {"Records": [_sqs_record(0, _json(single), now_ms), _sqs_record(1, _json(many), now_ms)]}


def sqs_fifo_event(now_ms: int = FIXED_NOW_MS) -> dict:
    """A FIFO queue: two messages of one message group, in order."""
    bodies = [
        {
            "logGroupName": "/app/payments",
            "logStreamName": "ledger",
            "timestamp": now_ms - 2000 + i,
            "message": f"entry {i}: balance updated",
        }
        for i in range(2)
    ]
    return {
        "Records": [
            _sqs_record(i, _json(body), now_ms, fifo_group="account-7")
            for i, body in enumerate(bodies)
        ]
    }


def kinesis_event(now_ms: int = FIXED_NOW_MS) -> dict:
    """A stream: a single event and a batch of events, each base64-encoded JSON."""
    single = {
        "logGroupName": "/app/inventory",
        "logStreamName": "sync",
        "timestamp": now_ms - 3000,
        "message": "sku 77 restocked",
    }
    many = {
        "logGroupName": "/app/inventory",
        "logStreamName": "sync",
        "logEvents": [
            {"timestamp": now_ms - 2000, "message": "sku 78 restocked"},
            {"timestamp": now_ms - 1000, "message": "sku 79 sold out"},
        ],
    }
    return {
        "Records": [
            _kinesis_record(0, _json(single).encode(), now_ms),
            _kinesis_record(1, _json(many).encode(), now_ms),
        ]
    }


def subscription_message(now_ms: int = FIXED_NOW_MS) -> dict:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": "/app/checkout",
        "logStream": "2026/11/20/[$LATEST]3f1c0e6b9d2a4c58a1e7b2d9f0c4e6a1",
        "subscriptionFilters": ["to-forwarder"],
        "logEvents": [
            {
                "id": f"3873049876543210987654321098765432109876543210987654321{i}",
                "timestamp": now_ms - 3000 + 1000 * i,
                "message": message,
            }
            for i, message in enumerate(
                [
                    "START RequestId: 6f1b8c1e-2f0a-4c3d-9e8f-1a2b3c4d5e6f",
                    '{"level":"INFO","message":"cart checked out","cart":"c-311"}',
                    "END RequestId: 6f1b8c1e-2f0a-4c3d-9e8f-1a2b3c4d5e6f",
                ]
            )
        ],
    }


def kinesis_subscription_event(now_ms: int = FIXED_NOW_MS) -> dict:
    """A stream fed by a CloudWatch Logs subscription filter: gzip DATA_MESSAGE, base64."""
    return {"Records": [_kinesis_record(0, _gzip(subscription_message(now_ms)), now_ms)]}


#: File name -> builder.
EVENTS: dict[str, Callable[[int], dict]] = {
    "sqs.json": sqs_event,
    "sqs-fifo.json": sqs_fifo_event,
    "kinesis.json": kinesis_event,
    "kinesis-subscription.json": kinesis_subscription_event,
}


# -- shifting an existing event to the present -----------------------------------------------


def _decode(record: dict) -> tuple[Any, str]:
    """A record's payload document and how it was wrapped: 'sqs', 'kinesis' or 'kinesis-gzip'."""
    if record.get("eventSource") == "aws:sqs":
        return json.loads(record["body"]), "sqs"
    data = base64.b64decode(record["kinesis"]["data"])
    if data[:2] == b"\x1f\x8b":
        return json.loads(gzip.decompress(data)), "kinesis-gzip"
    return json.loads(data), "kinesis"


def _encode(record: dict, document: Any, wrapping: str) -> None:
    if wrapping == "sqs":
        record["body"] = _json(document)
        digest = hashlib.md5(record["body"].encode(), usedforsecurity=False)
        record["md5OfBody"] = digest.hexdigest()
    elif wrapping == "kinesis-gzip":
        record["kinesis"]["data"] = base64.b64encode(_gzip(document)).decode()
    else:
        record["kinesis"]["data"] = base64.b64encode(_json(document).encode()).decode()


def _timestamps(document: dict) -> list[dict]:
    """The dicts holding a 'timestamp' in a payload document."""
    holders = [document] if "timestamp" in document else []
    return holders + [e for e in document.get("logEvents", []) if "timestamp" in e]


def refreshed(event: dict, now_ms: int | None = None) -> dict:
    """A copy of ``event`` with every timestamp moved by the same amount, the newest to now."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    event = json.loads(json.dumps(event))
    decoded = [(record, *_decode(record)) for record in event["Records"]]
    stamps = [h["timestamp"] for _, doc, _ in decoded for h in _timestamps(doc)]
    shift = now_ms - max(stamps) if stamps else 0
    for record, document, wrapping in decoded:
        for holder in _timestamps(document):
            holder["timestamp"] += shift
        _encode(record, document, wrapping)
        attributes = record.get("attributes", {})
        for key in ("SentTimestamp", "ApproximateFirstReceiveTimestamp"):
            if key in attributes:
                attributes[key] = str(int(attributes[key]) + shift)
        if "kinesis" in record:
            record["kinesis"]["approximateArrivalTimestamp"] += shift / 1000
    return event


def write(directory: Path = HERE, now_ms: int = FIXED_NOW_MS) -> list[Path]:
    written = []
    for name, build in EVENTS.items():
        path = directory / name
        path.write_text(json.dumps(build(now_ms), indent=2) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--now", action="store_true", help="use the current time")
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write to")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in write(args.out, int(time.time() * 1000) if args.now else FIXED_NOW_MS):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
