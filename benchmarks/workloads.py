"""The Lambda events the handler benchmarks feed it: their log lines drawn from a seed, their
envelopes from ``local.lambda_events``."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from local.lambda_events import one_event, sqs_event

#: The Lambda invocation payload limit (6 MB); a full SQS batch is built to sit just under it.
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
BENCH_GROUP = "/app/bench"

_VOCABULARY = (
    "GET POST PUT order user cart checkout payment status=200 status=404 latency_ms request_id "
    "trace span db query cache hit miss retry upstream timeout ok INFO WARN DEBUG shipment "
    "inventory session token refreshed worker queue depth"
)
_WORDS = tuple(word for word in _VOCABULARY.split(" ") if word)


def log_line(rng: random.Random, length: int, stamp: int) -> str:
    """A plausible application log line of about ``length`` characters (ASCII; about 2 % carry
    one non-ASCII character, as real logs do now and then)."""
    head = f"{stamp} INFO [req-{rng.getrandbits(48):012x}] "
    words = [head]
    size = len(head)
    while size < length:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    line = " ".join(words)[:length]
    if rng.random() < 0.02:
        line = line[:-1] + "é"
    return line


def sqs_batch(
    records: int = 10_000,
    streams: int = 10,
    payload_bytes: int = 6_000_000,
    seed: int = 1,
    *,
    bodies_only: bool = False,
) -> dict[str, Any]:
    """A standard-queue SQS event of ``records`` one-event bodies spread round-robin over
    ``streams`` streams of one log group, with messages sized so that the whole event, as JSON,
    is about ``payload_bytes`` (the Lambda payload limit is 6 MB). With ``bodies_only`` the
    bodies alone add up to about ``payload_bytes`` (the event is then larger than Lambda allows;
    it weighs message bytes rather than records)."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    probe = sqs_event([one_event(BENCH_GROUP, "web-0", "", now)])
    if bodies_only:
        overhead = len(probe["Records"][0]["body"])
    else:
        overhead = len(json.dumps(probe)) - len(json.dumps({"Records": []})) + 2  # ", "
    mean = max(16, payload_bytes // records - overhead)
    bodies = []
    for i in range(records):
        stamp = now - 60_000 + rng.randrange(60_000)
        length = max(8, int(rng.gauss(mean, mean / 4)))
        message = log_line(rng, length, stamp)
        bodies.append(one_event(BENCH_GROUP, f"web-{i % streams}", message, stamp))
    return sqs_event(bodies)


def event_size(event: dict[str, Any]) -> int:
    """Bytes of the event as the Lambda runtime receives it (JSON)."""
    return len(json.dumps(event).encode())


def body_bytes(event: dict[str, Any]) -> int:
    return sum(len(record["body"].encode()) for record in event["Records"])


def one_per_stream(count: int, seed: int = 2) -> dict[str, Any]:
    """``count`` small records, each to a stream of its own: ``count`` PutLogEvents requests."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    return sqs_event(
        [one_event(BENCH_GROUP, f"c-{i}", log_line(rng, 120, now), now) for i in range(count)]
    )
