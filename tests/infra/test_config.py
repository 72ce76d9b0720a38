"""CDK context -> ForwarderConfig: defaults, coercion of command-line strings, clear errors."""

from __future__ import annotations

import pytest

from infra.config import (
    CONTEXT_DEFAULTS,
    ConfigError,
    ForwarderConfig,
    glob_to_regex,
    kinesis_checkpoint_ttl,
)
from tests.infra.conftest import CDK_JSON


def problems(**context: object) -> str:
    with pytest.raises(ConfigError) as error:
        ForwarderConfig.from_context(context)
    return str(error.value)


def test_cdk_json_ships_every_option_with_its_documented_default():
    ours = {
        k: v
        for k, v in CDK_JSON["context"].items()
        if ":" not in k and not k.startswith(("@", "//")) and k != "cli-telemetry"
    }
    assert ours == CONTEXT_DEFAULTS


def test_cdk_json_turns_off_notices_and_telemetry():
    assert CDK_JSON["notices"] is False
    assert CDK_JSON["context"]["cli-telemetry"] is False
    assert ".venv/bin/python app.py" in CDK_JSON["app"]
    assert "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20" in CDK_JSON["app"]


def test_defaults():
    config = ForwarderConfig.from_context({})
    assert config.stack_name == "CloudWatchLogsForwarder"
    assert config.function.allowed_log_groups == ("/app/*",)
    assert config.function.memory_size == 512
    assert config.function.timeout_seconds == 60
    assert config.function.tracing is True
    assert config.function.create_log_groups is False
    assert config.alarm_topic_arn is None
    assert config.kinesis is None
    sqs = config.sqs
    assert sqs is not None
    assert (sqs.batch_size, sqs.max_batching_window_seconds, sqs.max_concurrency) == (100, 5, 5)
    assert sqs.max_receive_count == 5
    assert sqs.visibility_timeout_seconds == 6 * 60 + 5
    assert sqs.invalid_records == "fail"
    assert sqs.queue_arn is None


def test_command_line_strings_are_coerced():
    config = ForwarderConfig.from_context(
        {
            "allowedLogGroups": "/app/*, /team-?/x",
            "memorySize": "1024",
            "tracing": "false",
            "kinesisEnabled": "true",
            "sqsEnabled": "no",
            "kinesisMaxRecordAgeSeconds": "-1",
            "kinesisStartingPosition": "latest",
        }
    )
    assert config.function.allowed_log_groups == ("/app/*", "/team-?/x")
    assert config.function.memory_size == 1024
    assert config.function.tracing is False
    assert config.sqs is None
    assert config.kinesis is not None
    assert config.kinesis.max_record_age_seconds == -1
    assert config.kinesis.starting_position == "LATEST"
    assert config.kinesis.invalid_records == "dead-letter"
    assert config.kinesis.on_failure == "s3"  # the records' data outlives the stream


def test_json_list_from_the_command_line():
    config = ForwarderConfig.from_context({"allowedLogGroups": '["/a/*", "/b"]'})
    assert config.function.allowed_log_groups == ("/a/*", "/b")


def test_fifo_defaults_to_ten_records_and_no_window():
    sqs = ForwarderConfig.from_context({"sqsFifo": True}).sqs
    assert sqs is not None
    assert (sqs.fifo, sqs.batch_size, sqs.max_batching_window_seconds) == (True, 10, 0)


def test_an_existing_queue_says_whether_it_is_fifo():
    arn = "arn:aws:sqs:us-east-1:123456789012:in.fifo"
    sqs = ForwarderConfig.from_context({"sqsQueueArn": arn}).sqs
    assert sqs is not None
    assert sqs.fifo is True
    assert sqs.queue_arn == arn


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"memorySize": "lots"}, "memorySize: expected an integer from 128 to 10240"),
        ({"memorySize": 64}, "memorySize: expected an integer from 128 to 10240"),
        ({"memorySize": True}, "memorySize"),
        ({"memorySize": 256}, "memorySize: 256 MB cannot decompress one full-size gzip record"),
        ({"tracing": "maybe"}, "tracing: expected true or false"),
        (
            {"newLogGroupRetentionDays": 7},
            "newLogGroupRetentionDays: applies to the log groups the function creates, so it "
            "needs createLogGroups: true",
        ),
        ({"createLogGroups": True, "newLogGroupClass": "delivery"}, "newLogGroupClass: expected"),
        ({"newLogGroupKmsKey": "create"}, "newLogGroupKmsKey: applies to the log groups"),
        ({"createLogGroups": True, "newLogGroupKmsKey": "yes"}, 'expected "create" or ""'),
        (
            {
                "createLogGroups": True,
                "newLogGroupKmsKey": "create",
                "newLogGroupKmsKeyArn": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab",
            },
            "give a key or ask for one, not both",
        ),
        ({"logGroupClass": "DELIVERY"}, "logGroupClass: expected one of STANDARD"),
        ({"logKmsKeyArn": "alias/aws/logs"}, "logKmsKeyArn: expected a KMS key ARN"),
        (
            {"createLogGroups": True, "newLogGroupTags": {"aws:x": "y"}},
            "newLogGroupTags: tag key 'aws:x'",
        ),
        (
            {"kinesisEnabled": True, "kinesisOnFailure": "sns"},
            "kinesisOnFailure: expected one of s3, sqs, got 'sns'",
        ),
        (
            {"kinesisEnabled": True, "kinesisMaxRecordSizeKiB": 20480},
            "kinesisMaxRecordSizeKiB: expected an integer from 1024 to 10240",
        ),
        (
            {
                "kinesisEnabled": True,
                "kinesisStreamArn": "arn:aws:kinesis:eu-west-1:111122223333:stream/logs",
                "kinesisMaxRecordSizeKiB": 4096,
            },
            "kinesisMaxRecordSizeKiB: a setting of a stream the stack creates",
        ),
        ({"allowedLogGroups": []}, "allowedLogGroups: expected at least one"),
        ({"allowedLogGroups": "/app/[a-z]"}, "allowedLogGroups: '/app/[a-z]' is not a log group"),
        ({"logRetentionDays": 10}, "logRetentionDays: 10 is not a CloudWatch Logs retention"),
        ({"sqsFifo": True, "sqsBatchSize": 11}, "sqsBatchSize: expected an integer from 1 to 10"),
        (
            {"sqsFifo": True, "sqsMaxBatchingWindowSeconds": 3},
            "FIFO queues do not support a batching window",
        ),
        (
            {"sqsBatchSize": 50, "sqsMaxBatchingWindowSeconds": 0},
            "must be at least 1 when sqsBatchSize is above 10",
        ),
        (
            {"sqsVisibilityTimeoutSeconds": 300},
            "sqsVisibilityTimeoutSeconds: 300 is less than six times",
        ),
        ({"sqsQueueArn": "my-queue"}, "sqsQueueArn: expected an SQS queue ARN"),
        ({"alarmTopicArn": "arn:aws:sqs:us-east-1:1:x"}, "alarmTopicArn: expected an SNS topic"),
        ({"kinesisEnabled": True, "kinesisParallelizationFactor": 11}, "kinesisParallelization"),
        ({"kinesisEnabled": True, "kinesisMaxRecordAgeSeconds": 30}, "must be -1 (no limit)"),
        ({"kinesisEnabled": True, "kinesisInvalidRecords": "ignore"}, "kinesisInvalidRecords"),
        ({"sqsEnabled": False}, "enable at least one event source"),
        ({"subscriptionLogGroup": "{group}"}, "subscriptionLogGroup: unknown placeholder"),
        ({"subscriptionLogStream": "{logStream!r}"}, "placeholders take no conversion"),
        ({"subscriptionLogGroup": "/a/{logGroup:.4}"}, "placeholders take no conversion"),
        ({"subscriptionLogGroup": "/other/x"}, "'/other/x' is not admitted by allowedLogGroups"),
        ({"defaultLogGroup": "/other/x", "defaultLogStream": "s"}, "is not admitted by"),
        ({"defaultLogGroup": "/app/x"}, "defaultLogGroup / defaultLogStream: the function needs"),
        ({"defaultLogStream": "a:b", "defaultLogGroup": "/app/x"}, "defaultLogStream: expected"),
        ({"stackName": "1bad"}, "stackName: expected a CloudFormation stack name"),
        (
            {"createLogGroups": True, "createLogStreams": False},
            "createLogGroups: true needs createLogStreams: true",
        ),
        ({"allowedLogGroup": ["/x/*"]}, "did you mean 'allowedLogGroups'"),
    ],
)
def test_bad_values_are_named_by_their_context_key(context, expected):
    assert expected in problems(**context)


def test_every_problem_is_reported_at_once():
    message = problems(memorySize="x", timeoutSeconds=0, tracing="?")
    assert "memorySize" in message
    assert "timeoutSeconds" in message
    assert "tracing" in message


def test_foreign_context_keys_are_ignored():
    config = ForwarderConfig.from_context(
        {"@aws-cdk/core:target-partitions": ["aws"], "aws:cdk:bundling-stacks": [], "x": 1}
    )
    assert config.sqs is not None


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("/app/*", "/app/orders", True),
        ("/app/*", "/app/a/b", True),
        ("/app/*", "/application", False),
        ("/app/?", "/app/x", True),
        ("/app/?", "/app/xy", False),
        ("/a.b", "/aXb", False),
        ("*", "anything", True),
    ],
)
def test_glob_means_what_iam_means(pattern, name, matches):
    assert bool(glob_to_regex(pattern).match(name)) is matches


def test_a_kinesis_checkpoint_lasts_as_long_as_a_replay_can_bring_its_records_back():
    day = 86400
    assert kinesis_checkpoint_ttl(day, 3600) == 3600 + day  # the record age bounds it...
    assert kinesis_checkpoint_ttl(day, 3600, 14 * day) == 15 * day  # ...unless replayed later
    assert kinesis_checkpoint_ttl(30 * day, None, 14 * day) == 31 * day
