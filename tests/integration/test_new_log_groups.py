"""Log groups the forwarder creates, made as NEW_LOG_GROUP_* says: the handler against moto
behind the strict layer, which records every call the function makes."""

from __future__ import annotations

import json
import time

import pytest

from forwarder.settings import ConfigurationError
from local.lambda_events import LambdaContext, failed_ids, now_ms, one_event, sqs_event
from local.readback import read_stream as read_events

DAY_MS = 86_400_000
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NEW_GROUP = {
    "ALLOWED_LOG_GROUPS": "/app/*",
    "CREATE_LOG_GROUPS": "true",
    "NEW_LOG_GROUP_RETENTION_DAYS": "1",
    "NEW_LOG_GROUP_KMS_KEY_ID": KEY,
    "NEW_LOG_GROUP_CLASS": "INFREQUENT_ACCESS",
    "NEW_LOG_GROUP_TAGS": json.dumps({"team": "platform", "cost-center": "42"}),
    "NEW_LOG_GROUP_DELETION_PROTECTION": "true",
}


def fresh_group() -> str:
    return f"/app/new-{time.time_ns()}"


def test_a_missing_group_is_created_with_every_setting_and_its_events_land(
    load_handler, strict, logs, capsys
):
    handler = load_handler(**NEW_GROUP)
    group = fresh_group()
    event = sqs_event([one_event(group, "s", "first line", now_ms())])

    assert failed_ids(handler.handler(event, LambdaContext())) == []

    (created,) = strict.state.calls_of("CreateLogGroup")
    assert created == {
        "logGroupName": group,
        "kmsKeyId": KEY,
        "tags": {"cost-center": "42", "team": "platform"},
        "logGroupClass": "INFREQUENT_ACCESS",
        "deletionProtectionEnabled": True,
    }
    assert strict.state.calls_of("PutRetentionPolicy") == [
        {"logGroupName": group, "retentionInDays": 1}
    ]
    # What moto keeps of it (it ignores the class and deletion protection).
    (described,) = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert (described["retentionInDays"], described["kmsKeyId"]) == (1, KEY)
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {
        "cost-center": "42",
        "team": "platform",
    }
    assert [m for _, m in read_events(logs, group, "s")] == ["first line"]
    assert "log group retention not set" not in capsys.readouterr().out


def test_the_retention_set_on_a_new_group_expires_an_older_event_at_once(
    load_handler, strict, logs
):
    handler = load_handler(**NEW_GROUP)
    group = fresh_group()
    now = now_ms()
    event = sqs_event(
        [
            one_event(group, "s", "three days old", now - 3 * DAY_MS),
            one_event(group, "s", "new", now),
        ]
    )

    response = handler.handler(event, LambdaContext())

    # Retention is set before the first put: the old event is beyond it, refused as expired
    # (the default policy fails its record); the new one lands.
    assert failed_ids(response) == [event["Records"][0]["messageId"]]
    assert [m for _, m in read_events(logs, group, "s")] == ["new"]


def test_a_group_that_exists_is_never_changed(load_handler, strict, logs, log_group):
    handler = load_handler(**NEW_GROUP)
    event = sqs_event([one_event(log_group, "s", "into an existing group", now_ms())])

    assert failed_ids(handler.handler(event, LambdaContext())) == []

    assert strict.state.calls_of("CreateLogGroup") == []
    assert strict.state.calls_of("PutRetentionPolicy") == []


def test_a_failing_retention_call_is_retried_once_then_counted_and_costs_no_record(
    load_handler, strict, logs, capsys
):
    handler = load_handler(**NEW_GROUP, AWS_MAX_ATTEMPTS="1")  # no botocore retries here
    group = fresh_group()
    strict.inject("PutRetentionPolicy", "unavailable", count=2)  # the call and its one retry
    event = sqs_event([one_event(group, "s", f"line {i}", now_ms() + i) for i in range(3)])

    assert failed_ids(handler.handler(event, LambdaContext())) == []

    assert [m for _, m in read_events(logs, group, "s")] == ["line 0", "line 1", "line 2"]
    assert (
        "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    )
    output = capsys.readouterr().out
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (warning,) = [line for line in lines if line.get("message") == "log group retention not set"]
    assert group in warning["problem"]
    (summary,) = [line for line in lines if line.get("message") == "batch forwarded"]
    assert summary["log_group_retention_failures"] == 1
    assert len(strict.state.calls_of("PutRetentionPolicy")) == 2


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("NEW_LOG_GROUP_RETENTION_DAYS", "10", "expected one of 1, 3, 5"),
        ("NEW_LOG_GROUP_KMS_KEY_ID", "alias/mine", "expected a KMS key ARN"),
        ("NEW_LOG_GROUP_CLASS", "DELIVERY", "expected one of STANDARD, INFREQUENT_ACCESS"),
        ("NEW_LOG_GROUP_TAGS", '{"aws:team": "x"}', "not `aws:...`"),
        ("NEW_LOG_GROUP_TAGS", '["team"]', "expected a JSON object"),
        ("NEW_LOG_GROUP_TAGS", '{"team": "a", "team": "b"}', "given twice"),
        # a tab is no space separator: the service would refuse the group, failing records
        ("NEW_LOG_GROUP_TAGS", '{"team": "a\\tb"}', "letters, digits, spaces"),
        ("NEW_LOG_GROUP_TAGS", json.dumps({f"k{i}": "v" for i in range(51)}), "at most 50"),
        ("NEW_LOG_GROUP_DELETION_PROTECTION", "sure", "expected true or false"),
    ],
)
def test_a_bad_value_stops_the_function_at_start_naming_the_variable(
    load_handler, variable, value, reason
):
    with pytest.raises(ConfigurationError, match=reason) as error:
        load_handler(**(NEW_GROUP | {variable: value}))
    assert str(error.value).startswith(f"{variable}: ")


def test_new_group_settings_without_creating_groups_are_refused(load_handler):
    with pytest.raises(ConfigurationError, match="needs CREATE_LOG_GROUPS: true"):
        load_handler(ALLOWED_LOG_GROUPS="/app/*", NEW_LOG_GROUP_RETENTION_DAYS="7")


def test_one_failed_retention_call_is_retried_and_nothing_is_reported(
    load_handler, strict, logs, capsys
):
    handler = load_handler(**NEW_GROUP, AWS_MAX_ATTEMPTS="1")
    group = fresh_group()
    strict.inject("PutRetentionPolicy", "unavailable", count=1)

    assert (
        failed_ids(
            handler.handler(sqs_event([one_event(group, "s", "x", now_ms())]), LambdaContext())
        )
        == []
    )

    assert len(strict.state.calls_of("PutRetentionPolicy")) == 2
    (described,) = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert described["retentionInDays"] == 1
    output = capsys.readouterr().out
    assert "log group retention not set" not in output
    assert '"log_group_retention_failures":0' in output.replace(" ", "")
