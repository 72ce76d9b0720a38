"""The named hostile payloads, each with two good records (around it on SQS, before it on Kinesis:
see ``batch_with``), through the real handler against moto behind the strict CloudWatch Logs layer.

For every case: the handler returns (never raises), reports the hostile record alone or nothing
(when the payload is acceptable raw text routed to the default stream), the good records land,
and the strict layer saw no request the real service would refuse.
"""

from __future__ import annotations

import functools
import uuid

import boto3
import pytest

from forwarder.records import split_message
from local.lambda_events import LambdaContext, failed_ids, now_ms
from local.readback import read_stream as read_events
from tests.fuzz.batches import GOOD_STREAM, batch_with
from tests.fuzz.hostile import DELIVERED, FAILS, SKIPPED, TO_HOSTILE, TO_RAW, Hostile, corpus

ALLOW = {"ALLOWED_LOG_GROUPS": "/app/*"}

CASES = [case.name for case in corpus("/app/x", 0)]
NOW_MS = now_ms()  # one time for the module, so that the corpus is built once


@functools.cache
def _corpus(group: str) -> dict[str, Hostile]:
    return {case.name: case for case in corpus(group, NOW_MS)}


@pytest.fixture(scope="module")
def fuzz_group(moto_server, aws_endpoints) -> str:
    """One log group for the module; every case has streams of its own in it."""
    name = f"/app/fuzz-{uuid.uuid4().hex[:12]}"
    boto3.client("logs", endpoint_url=moto_server.url).create_log_group(logGroupName=name)
    return name


@pytest.mark.parametrize("name", CASES)
def test_a_hostile_record_fails_alone_and_the_good_ones_land(
    name, load_handler, strict, logs, fuzz_group
):
    index = CASES.index(name)
    raw_stream, good_stream = f"{TO_RAW}-{index}", f"good-{index}"
    handler = load_handler(**ALLOW, DEFAULT_LOG_GROUP=fuzz_group, DEFAULT_LOG_STREAM=raw_stream)
    case = _corpus(fuzz_group)[name]
    event, hostile_id, good = batch_with(case.source, case.payload, fuzz_group, NOW_MS, good_stream)
    before = _landed(logs, fuzz_group, TO_HOSTILE)

    response = handler.handler(event, LambdaContext())

    assert failed_ids(response) == ([hostile_id] if case.expected == FAILS else [])
    assert [m for _, m in read_events(logs, fuzz_group, good_stream)] == good
    if case.expected == TO_RAW:  # the whole text, in parts of at most 1 MB, in any order
        assert isinstance(case.payload, str)
        landed = [m for _, m in read_events(logs, fuzz_group, raw_stream)]
        assert sorted(landed) == sorted(part for part, _ in split_message(case.payload))
    elif case.expected == TO_HOSTILE:
        assert _landed(logs, fuzz_group, TO_HOSTILE) > before, "the record's events landed"
    elif case.expected == SKIPPED:
        sent = {c["logStreamName"] for c in strict.state.calls_of("PutLogEvents")}
        assert sent == {good_stream}, "only the good records were sent"


def _landed(logs, group: str, stream: str) -> int:
    try:
        return len(read_events(logs, group, stream))
    except logs.exceptions.ResourceNotFoundException:
        return 0


def test_without_a_default_destination_raw_text_fails_alone(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW)
    now = now_ms()
    event, hostile_id, good = batch_with("sqs", "plain text, nowhere to go", log_group, now)

    assert failed_ids(handler.handler(event, LambdaContext())) == [hostile_id]
    assert [m for _, m in read_events(logs, log_group, GOOD_STREAM)] == good


def test_the_corpus_covers_every_kind_the_issue_names():
    kinds = {
        "invalid UTF-8": "invalid-utf8",
        "deep JSON": "deep-json",
        "huge numbers": "timestamp-1e30",
        "wrong types": "stream-is-null",
        "forbidden characters": "group-with-colon",
        "gzip bombs": "gzip-bomb",
        "truncated base64": "base64-truncated",
        "5 MB bodies": "5MB-",
    }
    for kind, fragment in kinds.items():
        assert any(fragment in name for name in CASES), kind
    assert {c.expected for c in corpus("/app/x", 0)} == {FAILS, *DELIVERED}
