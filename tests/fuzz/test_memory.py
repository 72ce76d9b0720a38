"""Memory under hostile input: what one invocation allocates (tracemalloc's peak) stays under a
stated bound.

The handler sends to the instant endpoint of ``benchmarks/endpoint.py``, in a process of its own,
so that tracemalloc counts the handler's allocations and nothing of a server's (moto and the
strict layer of the session run in this process, idle during these tests). Bounds are in
multiples of the decoder's 16 MiB decompression cap (``MAX_DECOMPRESSED_BYTES``) or of the
payload, with room for the interpreter's own noise.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.endpoint import InstantLogsEndpoint
from forwarder.records import MAX_DECOMPRESSED_BYTES
from local.lambda_events import LambdaContext, failed_ids, now_ms, sqs_event
from tests.fuzz.batches import batch_with
from tests.fuzz.hostile import KINESIS, SQS, b64, gzip_bomb, multi_member_bomb

MiB = 1024 * 1024
GROUP = "/app/memory"
#: The function's memory (infra/config.py), and what it holds before a batch's own work: the
#: interpreter, the handler's modules and clients, and the event (62 MB for a 6 MB event in the
#: memory benchmark).
FUNCTION_MEMORY = 512 * MiB
BEFORE_THE_BATCH = 64 * MiB


@pytest.fixture(scope="module")
def endpoint() -> Iterator[InstantLogsEndpoint]:
    with InstantLogsEndpoint() as instant:
        yield instant


@pytest.fixture
def handler(load_handler, endpoint) -> Any:
    return load_handler(
        ALLOWED_LOG_GROUPS="/app/*",
        DEFAULT_LOG_GROUP=GROUP,
        DEFAULT_LOG_STREAM="raw",
        AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=endpoint.url,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(FUNCTION_MEMORY // MiB),  # Lambda sets it
    )


def peak_of(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """tracemalloc's peak over one invocation (the event itself is allocated before)."""
    tracemalloc.start()
    try:
        response = handler.handler(event, LambdaContext())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, response


@pytest.mark.parametrize(
    ("source", "payload"),
    [
        pytest.param(SQS, b64(gzip_bomb()), id="20MiB-gzip-bomb-sqs"),
        pytest.param(KINESIS, gzip_bomb(), id="20MiB-gzip-bomb-kinesis"),
        pytest.param(KINESIS, multi_member_bomb(), id="40-member-gzip-bomb"),
    ],
)
def test_a_gzip_bomb_costs_at_most_three_times_the_cap(handler, source, payload):
    now = now_ms()
    event, hostile_id, _ = batch_with(source, payload, GROUP, now)

    peak, response = peak_of(handler, event)

    assert failed_ids(response) == [hostile_id]
    assert peak < 3 * MAX_DECOMPRESSED_BYTES, f"{peak / MiB:.0f} MiB"


@pytest.mark.parametrize(
    ("source", "payload"),
    [
        pytest.param(SQS, "x" * (5 * MiB), id="5MB-raw-text"),
        pytest.param(
            KINESIS,
            json.dumps(
                {"logGroupName": GROUP, "logStreamName": "s", "message": "é€😀" * (5 * MiB // 9)},
                ensure_ascii=False,
            ).encode(),
            id="5MB-multibyte-message",
        ),
    ],
)
def test_a_5MB_body_costs_at_most_eight_times_its_size(handler, source, payload):
    now = now_ms()
    event, _, _ = batch_with(source, payload, GROUP, now)

    peak, response = peak_of(handler, event)

    assert failed_ids(response) == []
    assert peak < 8 * len(payload), f"{peak / MiB:.0f} MiB for {len(payload) / MiB:.0f} MiB"


def dense_body(size: int, timestamp: int) -> tuple[str, int]:
    """An SQS body (base64 gzip) that decompresses to just under ``size`` bytes of
    one-character events (about 45 bytes each, and 0.2 compressed); and how many events."""
    item = json.dumps({"timestamp": timestamp, "message": "a"}, separators=(",", ":"))
    head = json.dumps({"logGroupName": GROUP, "logStreamName": "dense"})[:-1] + ', "logEvents": ['
    events = (size - len(head) - 2) // (len(item) + 1)
    document = head + ",".join([item] * events) + "]}"
    assert len(document) <= size
    return base64.b64encode(gzip.compress(document.encode(), 9)).decode(), events


def rss_growth_of(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """How far the process's RSS rose above where it was, over one invocation: the kernel's
    high-water mark (VmHWM), reset first through /proc/self/clear_refs. Unlike tracemalloc it
    costs nothing, so the 400,000-event case below runs in seconds."""
    rss = _status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pytest.fail("cannot reset the RSS high-water mark (/proc/self/clear_refs) here")
    response = handler.handler(event, LambdaContext())
    return _status("VmHWM") - rss, response


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


def test_a_batch_of_gzip_records_of_tiny_events_fits_in_the_function(handler):
    """Seven 65 KB bodies, each decompressing to just under the 16 MiB cap of one-character
    events: decoded all at once they took the process past 512 MB (561 MB measured before the
    batch decompression budget); the budget defers the late ones (reported, retried later)."""
    stale = int(time.time() * 1000) - 30 * 24 * 3600 * 1000  # too old: judged, never sent
    body, events = dense_body(MAX_DECOMPRESSED_BYTES, stale)
    event = sqs_event([body] * 7)

    growth, response = rss_growth_of(handler, event)

    ids = [record["messageId"] for record in event["Records"]]
    assert failed_ids(response) == ids  # too old, or deferred: every one is reported
    assert growth < FUNCTION_MEMORY - BEFORE_THE_BATCH, (
        f"{growth / MiB:.0f} MiB for {7 * events:,} events in {len(body) * 7 / 1000:.0f} KB"
    )
