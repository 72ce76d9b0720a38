"""The strict layer itself: it must refuse what the real service refuses, or it proves nothing."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.strict_logs import check_put_log_events

NOW = 1_800_000_000_000
HOUR = 3600 * 1000


def events(*stamps: int, message: str = "m") -> list[dict]:
    return [{"timestamp": t, "message": message} for t in stamps]


def body(log_events: list[dict], **extra: object) -> dict:
    return {"logGroupName": "/app/g", "logStreamName": "s", "logEvents": log_events, **extra}


@pytest.mark.parametrize(
    ("request_body", "problem"),
    [
        (body(events(*[NOW] * 10_001)), "10001 events"),
        (body([{"timestamp": NOW, "message": "x" * 1_048_551}]), "exceeds 1048576"),
        (body(events(NOW, NOW, message="x" * 524_276)), "batch of 1048604 bytes"),
        (body(events(NOW, NOW - 1)), "chronological"),
        (body(events(NOW - 24 * HOUR - 1, NOW)), "more than 24 hours"),
        (body(events(NOW, message="")), "empty message"),
        (body(events(NOW), sequenceToken="abc"), "sequenceToken"),
        (body(events(NOW), entity={"keyAttributes": {"Type": "x"}}), "keyAttributes"),
        ({**body(events(NOW)), "logStreamName": "a:b"}, "logStreamName"),
    ],
)
def test_violations_are_named(request_body, problem):
    problems, _ = check_put_log_events(request_body, NOW, None)
    assert any(problem in p for p in problems), problems


def test_the_limits_themselves_are_allowed():
    exactly_full = [{"timestamp": NOW, "message": "x" * (1_048_576 - 26)}]
    assert check_put_log_events(body(exactly_full), NOW, None) == ([], {})
    assert check_put_log_events(body(events(*[NOW] * 10_000)), NOW, None) == ([], {})
    assert check_put_log_events(body(events(NOW - 24 * HOUR, NOW)), NOW, None) == ([], {})


def test_rejection_indexes_follow_the_service():
    stamps = [NOW - 15 * 24 * HOUR, NOW - 2 * 24 * HOUR, NOW - HOUR, NOW, NOW + 3 * HOUR]
    problems, rejected = check_put_log_events(body(events(*stamps)), NOW, retention_days=1)
    assert problems == []
    assert rejected == {
        "tooOldLogEventEndIndex": 1,  # exclusive: event 0 is too old
        "expiredLogEventEndIndex": 2,  # exclusive: events 0 and 1 are beyond retention
        "tooNewLogEventStartIndex": 4,  # inclusive: event 4 is too new
    }


def test_span_counts_only_valid_events():
    stamps = [NOW - 15 * 24 * HOUR, NOW - HOUR, NOW]
    assert check_put_log_events(body(events(*stamps)), NOW, None)[0] == []


def test_a_refused_request_is_recorded_and_answered_like_the_service(strict, logs, log_group):
    logs.create_log_stream(logGroupName=log_group, logStreamName="s")
    client = boto3.client(
        "logs", endpoint_url=strict.url, config=Config(retries={"total_max_attempts": 1})
    )
    now = int(time.time() * 1000)
    with pytest.raises(ClientError) as refused:
        client.put_log_events(
            logGroupName=log_group,
            logStreamName="s",
            logEvents=[{"timestamp": now, "message": "m"}] * 10_001,
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert strict.state.violations == ["10001 events in one request (1 to 10000)"]
    strict.state.violations.clear()  # this test sent it on purpose
