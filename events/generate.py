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
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: ``local`` is at the repository's root
    sys.path.insert(0, str(HERE.parent))

from local import lambda_events  # noqa: E402
from local.lambda_events import many_events, one_event, subscription_payload  # noqa: E402

#: 2026-11-20T12:00:00Z: the committed files are reproducible.
FIXED_NOW_MS = 1_795_176_000_000


def sqs_event(now_ms: int = FIXED_NOW_MS) -> dict[str, Any]:
    """A standard queue: one single-event body and one body with several events."""
    single = one_event("/app/orders", "web-1", "order 1042 created", now_ms - 5000)
    packed = '{"level":"INFO","msg":"order 1042 packed"}'
    events = [(now_ms - 4000, "order 1042 paid"), (now_ms - 3000, packed)]
    many = many_events("/app/orders", "worker-1", events)
    return lambda_events.sqs_event([single, many], at_ms=now_ms, rng=random.Random(1))


def sqs_fifo_event(now_ms: int = FIXED_NOW_MS) -> dict[str, Any]:
    """A FIFO queue: two messages of one message group, in order."""
    bodies = [
        one_event("/app/payments", "ledger", f"entry {i}: balance updated", now_ms - 2000 + i)
        for i in range(2)
    ]
    return lambda_events.sqs_event(bodies, "account-7", at_ms=now_ms, rng=random.Random(2))


def kinesis_event(now_ms: int = FIXED_NOW_MS) -> dict[str, Any]:
    """A stream: a single event and a batch of events, each base64-encoded JSON."""
    single = one_event("/app/inventory", "sync", "sku 77 restocked", now_ms - 3000)
    events = [(now_ms - 2000, "sku 78 restocked"), (now_ms - 1000, "sku 79 sold out")]
    many = many_events("/app/inventory", "sync", events)
    return lambda_events.kinesis_event([single.encode(), many.encode()], at_ms=now_ms)


def kinesis_subscription_event(now_ms: int = FIXED_NOW_MS) -> dict[str, Any]:
    """A stream fed by a CloudWatch Logs subscription filter: gzip DATA_MESSAGE, base64."""
    request = "RequestId: 6f1b8c1e-2f0a-4c3d-9e8f-1a2b3c4d5e6f"
    message = '{"level":"INFO","message":"cart checked out","cart":"c-311"}'
    lines = [f"START {request}", message, f"END {request}"]
    events = [(now_ms - 3000 + 1000 * i, line) for i, line in enumerate(lines)]
    stream = "2026/11/20/[$LATEST]3f1c0e6b9d2a4c58a1e7b2d9f0c4e6a1"
    data = subscription_payload("/app/checkout", stream, events)
    return lambda_events.kinesis_event([data], at_ms=now_ms)


#: File name -> builder.
EVENTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "sqs.json": sqs_event,
    "sqs-fifo.json": sqs_fifo_event,
    "kinesis.json": kinesis_event,
    "kinesis-subscription.json": kinesis_subscription_event,
}


# -- shifting an existing event to the present -----------------------------------------------


def _decode(record: dict[str, Any]) -> tuple[Any, str]:
    """A record's payload document and how it was wrapped: 'sqs', 'kinesis' or 'kinesis-gzip'."""
    if record.get("eventSource") == "aws:sqs":
        return json.loads(record["body"]), "sqs"
    data = base64.b64decode(record["kinesis"]["data"])
    if data[:2] == b"\x1f\x8b":
        return json.loads(gzip.decompress(data)), "kinesis-gzip"
    return json.loads(data), "kinesis"


def _encode(record: dict[str, Any], document: Any, wrapping: str) -> None:
    text = json.dumps(document)
    if wrapping == "sqs":
        record["body"] = text
        record["md5OfBody"] = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
        return
    data = gzip.compress(text.encode(), mtime=0) if wrapping == "kinesis-gzip" else text.encode()
    record["kinesis"]["data"] = base64.b64encode(data).decode()


def _timestamps(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The dicts holding a 'timestamp' in a payload document."""
    holders = [document] if "timestamp" in document else []
    return holders + [e for e in document.get("logEvents", []) if "timestamp" in e]


def refreshed(event: dict[str, Any], now_ms: int | None = None) -> dict[str, Any]:
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
