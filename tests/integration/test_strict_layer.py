"""The strict layer itself: it must refuse what the real service refuses, or it proves nothing."""

from __future__ import annotations

import random
import time
from collections import Counter

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.strict_logs import Chaos, check_put_log_events

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


def test_chaos_draws_the_same_faults_from_the_same_seed_at_the_asked_rates():
    chaos = Chaos({"throttle": 0.1, "delay": 0.05, "missing": 0.05}, seed=3, delay_s=(1, 2))
    rng_a, rng_b = random.Random(3), random.Random(3)
    drawn = [chaos.draw(rng_a, "PutLogEvents") for _ in range(20_000)]
    assert drawn == [chaos.draw(rng_b, "PutLogEvents") for _ in range(20_000)]
    kinds = Counter(fault.kind for fault in drawn if fault is not None)
    assert 1_800 < kinds["throttle"] < 2_200
    assert 850 < kinds["delay"] < 1_150
    assert 850 < kinds["missing"] < 1_150
    assert all(1 <= f.seconds <= 2 for f in drawn if f is not None and f.kind == "delay")
    # "missing" is a stream that is not there: only PutLogEvents meets it
    other = [chaos.draw(rng_a, "CreateLogStream") for _ in range(5_000)]
    assert {f.kind for f in other if f is not None} == {"throttle", "delay"}
    assert chaos.draw(rng_a, "DescribeLogGroups") is None


def test_chaos_refuses_rates_that_are_not_probabilities():
    with pytest.raises(ValueError, match="rates"):
        Chaos({"throttle": 0.7, "drop": 0.5})
    with pytest.raises(ValueError, match="rates"):
        Chaos({"meteor": 0.1})


def test_a_lost_answer_is_carried_out_but_never_heard_of(strict, logs, log_group):
    logs.create_log_stream(logGroupName=log_group, logStreamName="s")
    client = boto3.client(
        "logs", endpoint_url=strict.url, config=Config(retries={"total_max_attempts": 1})
    )
    strict.inject("PutLogEvents", "lose")
    now = int(time.time() * 1000)
    with pytest.raises(BotoCoreError):
        client.put_log_events(
            logGroupName=log_group,
            logStreamName="s",
            logEvents=[{"timestamp": now, "message": "landed all the same"}],
        )
    stored = logs.get_log_events(logGroupName=log_group, logStreamName="s")["events"]
    assert [e["message"] for e in stored] == ["landed all the same"]
    assert strict.state.met == Counter({"lose": 1})


def test_chaos_faults_are_met_and_counted(strict, logs, log_group):
    logs.create_log_stream(logGroupName=log_group, logStreamName="s")
    client = boto3.client(
        "logs", endpoint_url=strict.url, config=Config(retries={"total_max_attempts": 1})
    )
    strict.unleash(Chaos({"missing": 1.0}))
    with pytest.raises(ClientError) as missing:
        client.put_log_events(
            logGroupName=log_group,
            logStreamName="s",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": "m"}],
        )
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    client.describe_log_groups()  # not an operation chaos touches
    strict.unleash(None)
    client.put_log_events(
        logGroupName=log_group,
        logStreamName="s",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "m"}],
    )
    assert strict.state.met == Counter({"missing": 1})


def test_dynamodb_calls_sent_through_the_layer_pass_and_meet_the_faults_asked(
    strict, checkpoint_table
):
    client = boto3.client(
        "dynamodb", endpoint_url=strict.url, config=Config(retries={"total_max_attempts": 1})
    )
    item = {"pk": {"S": "p"}, "sk": {"S": "s"}, "landed": {"S": "{}"}}
    write = {checkpoint_table: [{"PutRequest": {"Item": item}}]}
    strict.inject("BatchWriteItem", "throttle")
    with pytest.raises(ClientError) as throttled:
        client.batch_write_item(RequestItems=write)
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    client.batch_write_item(RequestItems=write)
    strict.unleash(Chaos({"unavailable": 1.0}, operations=frozenset({"Query"})))
    with pytest.raises(ClientError) as unavailable:
        client.query(
            TableName=checkpoint_table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "p"}},
        )
    assert unavailable.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    strict.unleash(None)
    found = client.get_item(TableName=checkpoint_table, Key={"pk": item["pk"], "sk": item["sk"]})
    assert found["Item"] == item
    assert strict.state.met_by_operation == Counter({"BatchWriteItem": 1, "Query": 1})
