"""CDK assertions on the synthesized template: every property the issue names, per variant."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import KEY_ARN as ARN_KEY
from tests.infra.conftest import VARIANTS, Synthesized

SECURE_TRANSPORT_DENY = {
    "Action": "sqs:*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Resource": Match.any_value(),
}


@pytest.fixture(scope="module")
def default(synth) -> Synthesized:
    return synth(**VARIANTS["default"])


@pytest.fixture(scope="module")
def with_kinesis(synth) -> Synthesized:
    return synth(**VARIANTS["kinesis"])


@pytest.fixture(scope="module")
def existing_queue(synth) -> Synthesized:
    return synth(**VARIANTS["existing-queue"])


@pytest.fixture(scope="module")
def fifo(synth) -> Synthesized:
    return synth(**VARIANTS["fifo"])


@pytest.fixture(scope="module")
def existing_stream(synth) -> Synthesized:
    return synth(**VARIANTS["existing-stream"])


@pytest.fixture(scope="module")
def options(synth) -> Synthesized:
    return synth(**VARIANTS["options"])


def getatt_arn(logical_id: str) -> dict:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def statement(policy_statements: list[dict], sid: str) -> dict:
    found = [s for s in policy_statements if s.get("Sid") == sid]
    assert len(found) == 1, f"expected one statement {sid}, got {found}"
    return found[0]


def role_statements(s: Synthesized, path_part: str) -> list[dict]:
    _, policy = s.one("AWS::IAM::Policy", path_part)
    return policy["Properties"]["PolicyDocument"]["Statement"]


def log_arn(suffix: str) -> dict:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":logs:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":log-group:{suffix}",
            ],
        ]
    }


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# -- the default context: SQS only ---------------------------------------------------------------


def test_default_has_one_function_for_sqs_and_no_kinesis(default):
    assert len(default.resources("AWS::Lambda::Function")) == 1
    default.template.resource_count_is("AWS::Kinesis::Stream", 0)
    default.one("AWS::Lambda::Function", "/Sqs/")


def test_function_runtime_architecture_size_and_tracing(default):
    default.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Handler": "forwarder.handler.handler",
            "MemorySize": 512,
            "Timeout": 60,
            "TracingConfig": {"Mode": "Active"},
        },
    )


def test_function_has_its_own_log_group_with_retention(default):
    group_id, group = default.one("AWS::Logs::LogGroup", "/Sqs/")
    assert group["Properties"]["RetentionInDays"] == 30
    _, function = default.one("AWS::Lambda::Function", "/Sqs/")
    assert function["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": group_id}}


def test_function_environment_is_what_the_forwarder_reads(default):
    _, function = default.one("AWS::Lambda::Function", "/Sqs/")
    assert function["Properties"]["Environment"]["Variables"] == {
        "ALLOWED_LOG_GROUPS": "/app/*",
        "CREATE_LOG_STREAMS": "true",
        "CREATE_LOG_GROUPS": "false",
        "INVALID_RECORDS": "fail",
        "MAX_CONCURRENT_REQUESTS": "8",
        "SUBSCRIPTION_LOG_GROUP": "{logGroup}",
        "SUBSCRIPTION_LOG_STREAM": "{logStream}",
        "POWERTOOLS_SERVICE_NAME": "cloudwatch-logs-forwarder-sqs",
        "POWERTOOLS_METRICS_NAMESPACE": "CloudWatchLogsForwarder",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "TIME_RESERVE_MS": "3000",
        "CHECKPOINT_TABLE": {"Ref": default.one("AWS::DynamoDB::Table", "/Sqs/")[0]},
        # The queue keeps a message 4 days; a day of margin.
        "CHECKPOINT_TTL_SECONDS": str(5 * 86400),
    }


def test_the_checkpoint_table_is_on_demand_encrypted_recoverable_and_expires(default):
    _, table = default.one("AWS::DynamoDB::Table", "/Sqs/Checkpoint/")
    assert table["Properties"] == {
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "TimeToLiveSpecification": {"AttributeName": "expires", "Enabled": True},
        # Encrypted at rest all the same, with the AWS owned key: no KMS key to pay for.
        "SSESpecification": {"SSEEnabled": False},
    }
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Delete"


@pytest.mark.parametrize(
    ("variant", "function", "ttl"),
    [
        ("default", "SqsFunction", 4 * 86400 + 86400),  # the queue's 4 days
        ("existing-queue", "SqsFunction", 14 * 86400 + 86400),  # the longest SQS keeps one
        # what is given up stays replayable from the failure store for its 14 days
        ("kinesis", "KinesisFunction", 14 * 86400 + 86400),
        ("options", "KinesisFunction", 14 * 86400 + 86400),
        ("existing-stream", "KinesisFunction", 14 * 86400 + 86400),
        # given up to a queue, it comes back no later than the mapping's 1 h record age
        ("kinesis-on-failure-queue", "KinesisFunction", 3600 + 86400),
    ],
)
def test_a_checkpoint_outlives_the_longest_a_record_can_come_back(synth, variant, function, ttl):
    s = synth(**VARIANTS[variant])
    variables = s.json["Resources"][function]["Properties"]["Environment"]["Variables"]
    assert variables["CHECKPOINT_TTL_SECONDS"] == str(ttl)


def test_without_a_record_age_limit_a_kinesis_checkpoint_lasts_the_stream_retention(synth):
    s = synth(
        kinesisEnabled=True,
        kinesisMaxRecordAgeSeconds=-1,
        kinesisRetentionHours=30 * 24,
        kinesisOnFailure="sqs",
    )
    variables = s.json["Resources"]["KinesisFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["CHECKPOINT_TTL_SECONDS"] == str(30 * 86400 + 86400)
    s = synth(kinesisEnabled=True, kinesisMaxRecordAgeSeconds=-1, kinesisRetentionHours=30 * 24)
    variables = s.json["Resources"]["KinesisFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["CHECKPOINT_TTL_SECONDS"] == str(30 * 86400 + 86400)  # longer than 14 days


def test_queue_and_dead_letter_queue_are_encrypted_and_redriven(default):
    dlq_id, dlq = default.one("AWS::SQS::Queue", "/Sqs/DeadLetterQueue/")
    _, queue = default.one("AWS::SQS::Queue", "/Sqs/Queue/")
    assert len(default.resources("AWS::SQS::Queue")) == 2
    for q in (queue, dlq):
        assert q["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": getatt_arn(dlq_id),
        "maxReceiveCount": 5,
    }
    assert queue["Properties"]["MessageRetentionPeriod"] == 4 * 86400
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 86400


def test_visibility_timeout_is_at_least_six_function_timeouts(default):
    _, queue = default.one("AWS::SQS::Queue", "/Sqs/Queue/")
    _, function = default.one("AWS::Lambda::Function", "/Sqs/")
    visibility = queue["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * function["Properties"]["Timeout"]
    assert visibility == 6 * 60 + 5  # plus the batching window


def test_every_queue_policy_refuses_requests_without_tls(default, with_kinesis, fifo):
    for s in (default, with_kinesis, fifo):
        queues = s.resources("AWS::SQS::Queue")
        policies = s.resources("AWS::SQS::QueuePolicy")
        covered = {ref["Ref"] for p in policies.values() for ref in p["Properties"]["Queues"]}
        assert covered == set(queues)
        s.template.all_resources_properties(
            "AWS::SQS::QueuePolicy",
            {"PolicyDocument": {"Statement": Match.array_with([SECURE_TRANSPORT_DENY])}},
        )


def test_sqs_event_source_mapping(default):
    queue_id, _ = default.one("AWS::SQS::Queue", "/Sqs/Queue/")
    function_id, _ = default.one("AWS::Lambda::Function", "/Sqs/")
    _, mapping = default.one("AWS::Lambda::EventSourceMapping", "/Sqs/")
    assert mapping["Properties"] == {
        "EventSourceArn": getatt_arn(queue_id),
        "FunctionName": {"Ref": function_id},
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 5,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 5},
    }
    policy_id, _ = default.one("AWS::IAM::Policy", "/Sqs/")
    assert policy_id in mapping["DependsOn"]


def test_role_has_no_managed_policies_and_exact_statements(default):
    _, role = default.one("AWS::IAM::Role", "/Sqs/")
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "Policies" not in role["Properties"]
    queue_id, _ = default.one("AWS::SQS::Queue", "/Sqs/Queue/")
    group_id, _ = default.one("AWS::Logs::LogGroup", "/Sqs/")
    statements = role_statements(default, "/Sqs/")
    assert statement(statements, "WriteOwnLogs") == {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": getatt_arn(group_id),
    }
    assert statement(statements, "ForwardToAllowedLogGroups") == {
        "Sid": "ForwardToAllowedLogGroups",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [log_arn("/app/*"), log_arn("/app/*:log-stream:*")],
    }
    assert statement(statements, "ConsumeSourceQueue") == {
        "Sid": "ConsumeSourceQueue",
        "Effect": "Allow",
        "Action": ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
        "Resource": getatt_arn(queue_id),
    }
    table_id, _ = default.one("AWS::DynamoDB::Table", "/Sqs/")
    assert statement(statements, "DeliveryCheckpoint") == {
        "Sid": "DeliveryCheckpoint",
        "Effect": "Allow",
        "Action": ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:Query"],
        "Resource": getatt_arn(table_id),
    }
    xray = [s for s in statements if "Sid" not in s]
    assert xray == [
        {
            "Effect": "Allow",
            "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
            "Resource": "*",
        }
    ]
    assert len(statements) == 5
    assert not any("logs:CreateLogGroup" in as_list(s["Action"]) for s in statements)


def alarm_metrics(s: Synthesized) -> list[tuple[str, str]]:
    return sorted(
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"])
        for a in s.resources("AWS::CloudWatch::Alarm").values()
    )


def test_default_alarms(default):
    assert alarm_metrics(default) == [
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("CloudWatchLogsForwarder", "CheckpointProblems"),
        ("CloudWatchLogsForwarder", "RecordsFailed"),
    ]
    # The checkpoint's problems cost no record: only three bad periods running are news.
    default.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "CheckpointProblems",
            "Dimensions": [{"Name": "service", "Value": "cloudwatch-logs-forwarder-sqs"}],
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 3,
            "Threshold": 1,
            "TreatMissingData": "notBreaching",
        },
    )
    dlq_id, _ = default.one("AWS::SQS::Queue", "/Sqs/DeadLetterQueue/")
    default.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}],
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    )
    default.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "CloudWatchLogsForwarder",
            "MetricName": "RecordsFailed",
            "Dimensions": [{"Name": "service", "Value": "cloudwatch-logs-forwarder-sqs"}],
            "Statistic": "Sum",
            "Threshold": 1,
        },
    )
    for alarm in default.resources("AWS::CloudWatch::Alarm").values():
        assert "AlarmActions" not in alarm["Properties"]  # no topic in the default context


def test_default_outputs(default):
    assert set(default.outputs()) == {
        "SqsQueueUrl",
        "SqsQueueArn",
        "SqsDeadLetterQueueUrl",
        "SqsFunctionName",
    }


# -- Kinesis on ---------------------------------------------------------------------------------


def test_kinesis_adds_its_own_function(with_kinesis):
    functions = with_kinesis.resources("AWS::Lambda::Function")
    assert len(functions) == 2
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()}
    assert len(roles) == 2, "each function has its own role"
    groups = {f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions.values()}
    assert len(groups) == 2, "each function has its own log group"


def test_stream_is_encrypted_at_rest(with_kinesis):
    _, stream = with_kinesis.one("AWS::Kinesis::Stream")
    assert stream["Properties"] == {
        "RetentionPeriodHours": 24,
        "ShardCount": 1,
        "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
        "StreamModeDetails": {"StreamMode": "PROVISIONED"},
    }


def test_kinesis_event_source_mapping(with_kinesis):
    stream_id, _ = with_kinesis.one("AWS::Kinesis::Stream")
    bucket_id, _ = with_kinesis.one("AWS::S3::Bucket", "/FailureStore/")
    function_id, _ = with_kinesis.one("AWS::Lambda::Function", "/Kinesis/")
    _, mapping = with_kinesis.one("AWS::Lambda::EventSourceMapping", "/Kinesis/")
    assert mapping["Properties"] == {
        "EventSourceArn": getatt_arn(stream_id),
        "FunctionName": {"Ref": function_id},
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 1,
        "ParallelizationFactor": 1,
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": 3,
        "MaximumRecordAgeInSeconds": 3600,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        # What it gives up goes to the failure store, the records' data included.
        "DestinationConfig": {"OnFailure": {"Destination": getatt_arn(bucket_id)}},
        "MetricsConfig": {"Metrics": ["EventCount"]},
    }
    assert not [q for q in with_kinesis.resources("AWS::SQS::Queue") if "OnFailure" in q]


def test_kinesis_on_failure_queue_when_asked_for(synth):
    s = synth(**VARIANTS["kinesis-on-failure-queue"])
    queue_id, _ = s.one("AWS::SQS::Queue", "/Kinesis/OnFailureQueue/")
    _, mapping = s.one("AWS::Lambda::EventSourceMapping", "/Kinesis/")
    assert mapping["Properties"]["DestinationConfig"] == {
        "OnFailure": {"Destination": getatt_arn(queue_id)}
    }
    statements = role_statements(s, "/Kinesis/")
    assert statement(statements, "SendBatchFailuresToOnFailureQueue")["Resource"] == getatt_arn(
        queue_id
    )
    assert not any(a.startswith("s3:") for st in statements for a in as_list(st["Action"]))
    _, alarm = s.one("AWS::CloudWatch::Alarm", "/Kinesis/OnFailureQueueAlarm/")
    assert alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert "KinesisOnFailureQueueUrl" in s.outputs()
    s.template.resource_count_is("AWS::S3::Bucket", 0)  # nothing needs the failure store


def test_enhanced_fan_out_reads_through_a_consumer_of_its_own(synth, with_kinesis):
    s = synth(**VARIANTS["options"])
    stream_id, _ = s.one("AWS::Kinesis::Stream")
    consumer_id, consumer = s.one("AWS::Kinesis::StreamConsumer")
    assert consumer["Properties"]["StreamARN"] == getatt_arn(stream_id)
    assert 1 <= len(consumer["Properties"]["ConsumerName"]) <= 128
    consumer_arn = {"Fn::GetAtt": [consumer_id, "ConsumerARN"]}
    _, mapping = s.one("AWS::Lambda::EventSourceMapping", "/Kinesis/")
    assert mapping["Properties"]["EventSourceArn"] == consumer_arn
    statements = role_statements(s, "/Kinesis/")
    assert statement(statements, "SubscribeToStreamConsumer") == {
        "Sid": "SubscribeToStreamConsumer",
        "Effect": "Allow",
        "Action": ["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"],
        "Resource": consumer_arn,
    }
    # off by default: shared throughput, no consumer
    with_kinesis.template.resource_count_is("AWS::Kinesis::StreamConsumer", 0)
    assert not [
        st for st in role_statements(with_kinesis, "/Kinesis/") if "Consumer" in st.get("Sid", "")
    ]


def test_a_stream_for_large_records(synth, with_kinesis):
    s = synth(kinesisEnabled=True, kinesisMaxRecordSizeKiB=4096)
    _, stream = s.one("AWS::Kinesis::Stream")
    assert stream["Properties"]["MaxRecordSizeInKiB"] == 4096
    _, default = with_kinesis.one("AWS::Kinesis::Stream")
    assert "MaxRecordSizeInKiB" not in default["Properties"]  # Kinesis's own 1 MiB


def test_kinesis_function_dead_letters_invalid_records_to_its_own_queue(with_kinesis):
    dlq_id, dlq = with_kinesis.one("AWS::SQS::Queue", "/Kinesis/DeadLetterQueue/")
    _, function = with_kinesis.one("AWS::Lambda::Function", "/Kinesis/")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["INVALID_RECORDS"] == "dead-letter"
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": dlq_id}
    assert variables["POWERTOOLS_SERVICE_NAME"] == "cloudwatch-logs-forwarder-kinesis"
    assert dlq["Properties"]["SqsManagedSseEnabled"] is True
    _, sqs_dlq = with_kinesis.one("AWS::SQS::Queue", "/Sqs/DeadLetterQueue/")
    assert sqs_dlq is not dlq


def test_kinesis_role_reads_the_stream_and_sends_only_to_its_queues(with_kinesis):
    stream_id, _ = with_kinesis.one("AWS::Kinesis::Stream")
    dlq_id, _ = with_kinesis.one("AWS::SQS::Queue", "/Kinesis/DeadLetterQueue/")
    bucket_id, _ = with_kinesis.one("AWS::S3::Bucket", "/FailureStore/")
    statements = role_statements(with_kinesis, "/Kinesis/")
    assert statement(statements, "ReadSourceStream") == {
        "Sid": "ReadSourceStream",
        "Effect": "Allow",
        "Action": [
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:GetRecords",
            "kinesis:GetShardIterator",
            "kinesis:ListShards",
        ],
        "Resource": getatt_arn(stream_id),
    }
    assert statement(statements, "DeadLetterInvalidRecords")["Resource"] == getatt_arn(dlq_id)
    # The mapping writes what it gives up under aws/lambda/, as Lambda names it: PutObject
    # there, and ListBucket (the Lambda developer guide's two for an S3 destination).
    assert statement(statements, "WriteBatchFailuresToFailureStore") == {
        "Sid": "WriteBatchFailuresToFailureStore",
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": {"Fn::Join": ["", [getatt_arn(bucket_id), "/aws/lambda/*"]]},
    }
    assert statement(statements, "ListFailureStoreForOnFailureRecords")["Action"] == (
        "s3:ListBucket"
    )
    assert statement(statements, "ListFailureStoreForOnFailureRecords")["Resource"] == (
        getatt_arn(bucket_id)
    )
    sqs_actions = {a for s in statements for a in as_list(s["Action"]) if a.startswith("sqs:")}
    assert sqs_actions == {"sqs:SendMessage"}


def test_kinesis_alarms(with_kinesis):
    _, alarm = with_kinesis.one("AWS::CloudWatch::Alarm", "/Kinesis/IteratorAgeAlarm/")
    assert alarm["Properties"]["MetricName"] == "IteratorAge"
    assert alarm["Properties"]["Statistic"] == "Maximum"
    assert alarm["Properties"]["Threshold"] == 600_000
    _, alarm = with_kinesis.one("AWS::CloudWatch::Alarm", "/Kinesis/DeadLetterQueueAlarm/")
    assert alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    mapping_id, _ = with_kinesis.one("AWS::Lambda::EventSourceMapping", "/Kinesis/")
    _, alarm = with_kinesis.one("AWS::CloudWatch::Alarm", "/Kinesis/OnFailureAlarm/")
    assert alarm["Properties"]["MetricName"] == "OnFailureDestinationDeliveredEventCount"
    assert alarm["Properties"]["Namespace"] == "AWS/Lambda"
    assert alarm["Properties"]["Dimensions"] == [
        {"Name": "EventSourceMappingUUID", "Value": {"Ref": mapping_id}}
    ]
    assert (alarm["Properties"]["Statistic"], alarm["Properties"]["Threshold"]) == ("Sum", 1)
    for metric in ("Errors", "Throttles"):
        functions = {
            a["Properties"]["Dimensions"][0]["Value"]["Ref"]
            for a in with_kinesis.resources("AWS::CloudWatch::Alarm").values()
            if a["Properties"]["MetricName"] == metric
        }
        assert functions == set(with_kinesis.resources("AWS::Lambda::Function"))
    services = {
        a["Properties"]["Dimensions"][0]["Value"]
        for a in with_kinesis.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "RecordsFailed"
    }
    assert services == {"cloudwatch-logs-forwarder-sqs", "cloudwatch-logs-forwarder-kinesis"}


def test_kinesis_outputs(with_kinesis):
    assert set(with_kinesis.outputs()) == {
        "FailureBucketName",
        "SqsQueueUrl",
        "SqsQueueArn",
        "SqsDeadLetterQueueUrl",
        "SqsFunctionName",
        "KinesisStreamName",
        "KinesisStreamArn",
        "KinesisDeadLetterQueueUrl",
        "KinesisFunctionName",
    }


# -- an existing queue ----------------------------------------------------------------------------

EXISTING_QUEUE = VARIANTS["existing-queue"]["sqsQueueArn"]


def test_existing_queue_is_read_not_created(existing_queue):
    existing_queue.template.resource_count_is("AWS::SQS::Queue", 0)
    _, mapping = existing_queue.one("AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["EventSourceArn"] == EXISTING_QUEUE
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_existing_queue_grants_consume_and_decrypt_with_its_key_only(existing_queue):
    statements = role_statements(existing_queue, "/Sqs/")
    consume = statement(statements, "ConsumeSourceQueue")
    assert consume["Resource"] == EXISTING_QUEUE
    decrypt = [s for s in statements if "kms:Decrypt" in as_list(s["Action"])]
    assert decrypt == [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": ARN_KEY}]


def test_existing_queue_outputs_and_alarms(existing_queue):
    outputs = existing_queue.outputs()
    assert set(outputs) == {"SqsQueueUrl", "SqsQueueArn", "SqsFunctionName"}
    assert outputs["SqsQueueArn"]["Value"] == EXISTING_QUEUE
    assert alarm_metrics(existing_queue) == [
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("CloudWatchLogsForwarder", "CheckpointProblems"),
        ("CloudWatchLogsForwarder", "RecordsFailed"),
    ]


# -- FIFO -----------------------------------------------------------------------------------------


def test_fifo_queue_and_dead_letter_queue(fifo):
    for path in ("/Sqs/Queue/", "/Sqs/DeadLetterQueue/"):
        _, queue = fifo.one("AWS::SQS::Queue", path)
        assert queue["Properties"]["FifoQueue"] is True
        assert queue["Properties"]["ContentBasedDeduplication"] is True
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_fifo_mapping_takes_ten_records_without_a_window(fifo):
    _, mapping = fifo.one("AWS::Lambda::EventSourceMapping")
    properties = mapping["Properties"]
    assert properties["BatchSize"] == 10
    assert "MaximumBatchingWindowInSeconds" not in properties
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["ScalingConfig"] == {"MaximumConcurrency": 5}
    _, queue = fifo.one("AWS::SQS::Queue", "/Sqs/Queue/")
    assert queue["Properties"]["VisibilityTimeout"] == 6 * 60


def test_standard_queue_without_a_batching_window(synth):
    s = synth(sqsBatchSize=10, sqsMaxBatchingWindowSeconds=0)
    _, mapping = s.one("AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["BatchSize"] == 10
    assert "MaximumBatchingWindowInSeconds" not in mapping["Properties"]
    _, queue = s.one("AWS::SQS::Queue", "/Sqs/Queue/")
    assert queue["Properties"]["VisibilityTimeout"] == 6 * 60


def test_construct_props_refuse_what_the_mapping_would_refuse():
    from aws_cdk import Duration

    from infra.forwarder import ForwarderFunctionProps, SqsLogsForwarderProps

    function = ForwarderFunctionProps(allowed_log_groups=("/app/*",))
    with pytest.raises(
        ValueError, match="max_batching_window: must be at least 1 when batch_size is above 10"
    ):
        SqsLogsForwarderProps(function=function, max_batching_window=Duration.seconds(0))
    with pytest.raises(
        ValueError, match="batch_size: expected an integer from 1 to 10 for a FIFO queue"
    ):
        SqsLogsForwarderProps(function=function, fifo=True, batch_size=20)
    with pytest.raises(ValueError, match="six times"):
        SqsLogsForwarderProps(function=function, visibility_timeout=Duration.seconds(60))
    with pytest.raises(ValueError, match="at least one log group pattern"):
        ForwarderFunctionProps(allowed_log_groups=())
    with pytest.raises(ValueError, match="not a log group name pattern"):
        ForwarderFunctionProps(allowed_log_groups=("/app/*:log-stream:x",))
    with pytest.raises(ValueError, match="both or neither"):
        ForwarderFunctionProps(allowed_log_groups=("/app/*",), default_log_group="/app/x")
    with pytest.raises(ValueError, match="memory_size: 128 MB cannot decompress"):
        ForwarderFunctionProps(allowed_log_groups=("/app/*",), memory_size=128)
    with pytest.raises(ValueError, match="create_log_groups: true needs create_log_streams: true"):
        ForwarderFunctionProps(
            allowed_log_groups=("/app/*",), create_log_groups=True, create_log_streams=False
        )


def test_existing_fifo_queue(synth):
    arn = "arn:aws:sqs:us-east-1:123456789012:orders.fifo"
    s = synth(sqsQueueArn=arn)
    _, mapping = s.one("AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["EventSourceArn"] == arn
    assert mapping["Properties"]["BatchSize"] == 10
    assert "MaximumBatchingWindowInSeconds" not in mapping["Properties"]


# -- an existing stream, Kinesis only -------------------------------------------------------------

EXISTING_STREAM = VARIANTS["existing-stream"]["kinesisStreamArn"]


def test_existing_stream_is_read_not_created(existing_stream):
    existing_stream.template.resource_count_is("AWS::Kinesis::Stream", 0)
    assert len(existing_stream.resources("AWS::Lambda::Function")) == 1
    existing_stream.one("AWS::Lambda::Function", "/Kinesis/")
    _, mapping = existing_stream.one("AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["EventSourceArn"] == EXISTING_STREAM
    statements = role_statements(existing_stream, "/Kinesis/")
    assert statement(statements, "ReadSourceStream")["Resource"] == EXISTING_STREAM
    decrypt = [s for s in statements if "kms:Decrypt" in as_list(s["Action"])]
    assert decrypt == [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": ARN_KEY}]
    assert existing_stream.outputs()["KinesisStreamArn"]["Value"] == EXISTING_STREAM
    assert "SqsQueueUrl" not in existing_stream.outputs()


# -- options: several patterns, group creation, no tracing, alarm topic, on-demand stream ---------


def test_patterns_and_log_group_creation(options):
    _, function = options.one("AWS::Lambda::Function", "/Sqs/")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["ALLOWED_LOG_GROUPS"] == "/app/*,/aws/lambda/orders-?,/exact/name"
    assert variables["CREATE_LOG_GROUPS"] == "true"
    assert variables["CREATE_LOG_STREAMS"] == "true"
    assert variables["DEFAULT_LOG_GROUP"] == "/app/default"
    assert variables["TIME_RESERVE_MS"] == "3000"  # timeoutSeconds 120: the default reserve
    assert variables["DEFAULT_LOG_STREAM"] == "unrouted"
    forward = statement(role_statements(options, "/Sqs/"), "ForwardToAllowedLogGroups")
    # (and the actions of its new-group settings: see test_created_groups_get_what_...)
    assert {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"} <= set(
        forward["Action"]
    )
    patterns = ["/app/*", "/aws/lambda/orders-?", "/exact/name"]
    expected = [log_arn(s) for p in patterns for s in (p, f"{p}:log-stream:*")]
    assert forward["Resource"] == expected


def test_tracing_off_removes_xray(options):
    for function in options.resources("AWS::Lambda::Function").values():
        assert function["Properties"].get("TracingConfig", {}).get("Mode") != "Active"
    actions = {a for s in options.policy_statements() for a in as_list(s["Action"])}
    assert not any(a.startswith("xray:") for a in actions)


def test_alarm_topic_receives_alarm_and_ok(options):
    topic = VARIANTS["options"]["alarmTopicArn"]
    alarms = options.resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 12  # 5 for SQS, 7 for Kinesis (each with its checkpoint's)
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [topic]
        assert alarm["Properties"]["OKActions"] == [topic]


def test_sqs_dead_letter_policy_uses_the_queue_dead_letter_queue(options):
    dlq_id, _ = options.one("AWS::SQS::Queue", "/Sqs/DeadLetterQueue/")
    _, function = options.one("AWS::Lambda::Function", "/Sqs/")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["INVALID_RECORDS"] == "dead-letter"
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": dlq_id}
    send = statement(role_statements(options, "/Sqs/"), "DeadLetterInvalidRecords")
    assert send["Action"] == "sqs:SendMessage"
    assert send["Resource"] == getatt_arn(dlq_id)


def test_size_and_timeout_from_context(options):
    _, function = options.one("AWS::Lambda::Function", "/Sqs/")
    assert function["Properties"]["MemorySize"] == 1024
    assert function["Properties"]["Timeout"] == 120
    _, queue = options.one("AWS::SQS::Queue", "/Sqs/Queue/")
    assert queue["Properties"]["VisibilityTimeout"] == 6 * 120 + 5


def test_on_demand_stream(options):
    _, stream = options.one("AWS::Kinesis::Stream")
    assert stream["Properties"]["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert "ShardCount" not in stream["Properties"]
    assert stream["Properties"]["StreamEncryption"]["EncryptionType"] == "KMS"


def test_existing_queue_with_dead_letter_policy_gets_an_invalid_records_queue(synth):
    s = synth(sqsQueueArn=EXISTING_QUEUE, sqsInvalidRecords="dead-letter")
    queue_id, queue = s.one("AWS::SQS::Queue", "/Sqs/InvalidRecordsQueue/")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    _, function = s.one("AWS::Lambda::Function")
    assert function["Properties"]["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"] == {
        "Ref": queue_id
    }
    assert "SqsInvalidRecordsQueueUrl" in s.outputs()
    s.one("AWS::CloudWatch::Alarm", "/Sqs/InvalidRecordsQueueAlarm/")


def test_kinesis_without_limits_leaves_them_unset(synth):
    s = synth(kinesisEnabled=True, kinesisMaxRetryAttempts=-1, kinesisMaxRecordAgeSeconds=-1)
    _, mapping = s.one("AWS::Lambda::EventSourceMapping", "/Kinesis/")
    assert "MaximumRetryAttempts" not in mapping["Properties"]
    assert "MaximumRecordAgeInSeconds" not in mapping["Properties"]


# --- the failure store: large dead letters --------------------------------------------------------


def test_no_failure_store_without_dead_lettering(default):
    assert default.resources("AWS::S3::Bucket") == {}
    assert "FailureBucketName" not in default.outputs()
    assert not [a for st in default.policy_statements() for a in as_list(st["Action"]) if "s3" in a]


def test_one_failure_store_is_private_encrypted_tls_only_expiring_and_retained(with_kinesis):
    ((logical_id, bucket),) = with_kinesis.resources("AWS::S3::Bucket").items()
    properties = bucket["Properties"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = properties["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 14
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert rule["Status"] == "Enabled"
    (policy,) = with_kinesis.resources("AWS::S3::BucketPolicy").values()
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert with_kinesis.outputs()["FailureBucketName"]["Value"] == {"Ref": logical_id}


def test_only_the_dead_lettering_function_may_put_letters_and_only_under_its_prefix(with_kinesis):
    (logical_id,) = with_kinesis.resources("AWS::S3::Bucket")
    kinesis = role_statements(with_kinesis, "Kinesis")
    put = statement(kinesis, "StoreLargeDeadLetters")
    assert put["Action"] == "s3:PutObject"
    assert put["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [logical_id, "Arn"]}, "/dead-letters/*"]]
    }
    functions = with_kinesis.resources("AWS::Lambda::Function")
    environment = functions["KinesisFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["DEAD_LETTER_BUCKET"] == {"Ref": logical_id}
    sqs = role_statements(with_kinesis, "Sqs")  # INVALID_RECORDS=fail: no letters, no bucket
    assert not [st for st in sqs if "s3:PutObject" in as_list(st["Action"])]
    assert (
        "DEAD_LETTER_BUCKET"
        not in functions["SqsFunction"]["Properties"]["Environment"]["Variables"]
    )


# -- log groups the function creates ------------------------------------------------------------


def test_created_groups_get_what_new_log_group_asks_and_the_iam_it_takes(synth, default):
    s = synth(**VARIANTS["options"])
    _, function = s.one("AWS::Lambda::Function", "/Sqs/")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["NEW_LOG_GROUP_RETENTION_DAYS"] == "30"
    assert variables["NEW_LOG_GROUP_KMS_KEY_ID"].endswith(
        ":key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    assert variables["NEW_LOG_GROUP_CLASS"] == "INFREQUENT_ACCESS"
    assert json.loads(variables["NEW_LOG_GROUP_TAGS"]) == {"team": "platform"}
    assert variables["NEW_LOG_GROUP_DELETION_PROTECTION"] == "true"
    forward = statement(role_statements(s, "/Sqs/"), "ForwardToAllowedLogGroups")
    assert set(as_list(forward["Action"])) == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:PutRetentionPolicy",
        "logs:TagResource",
        "logs:PutLogGroupDeletionProtection",
    }
    # By default none of it: no variable, no action.
    _, plain = default.one("AWS::Lambda::Function", "/Sqs/")
    assert not [v for v in plain["Properties"]["Environment"]["Variables"] if "NEW_LOG" in v]
    forward = statement(role_statements(default, "/Sqs/"), "ForwardToAllowedLogGroups")
    assert set(as_list(forward["Action"])) == {"logs:CreateLogStream", "logs:PutLogEvents"}


def test_each_new_group_action_only_when_its_setting_is_given(synth):
    s = synth(createLogGroups=True, newLogGroupRetentionDays=7)
    forward = statement(role_statements(s, "/Sqs/"), "ForwardToAllowedLogGroups")
    assert set(as_list(forward["Action"])) == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:PutRetentionPolicy",
    }


def test_the_stack_makes_the_key_of_the_groups_the_function_creates_when_asked(synth):
    s = synth(createLogGroups=True, newLogGroupKmsKey="create")
    key_id, key = s.one("AWS::KMS::Key", "/NewLogGroupKey/")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"  # what it encrypted stays readable
    (logs_statement,) = [st for st in key["Properties"]["KeyPolicy"]["Statement"] if st.get("Sid")]
    assert logs_statement["Principal"] == {
        "Service": {
            "Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".", {"Ref": "AWS::URLSuffix"}]]
        }
    }
    condition = logs_statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert condition["Fn::Join"][1][-1] == ":log-group:*"  # this account's groups, this Region
    for function in s.resources("AWS::Lambda::Function").values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["NEW_LOG_GROUP_KMS_KEY_ID"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_the_functions_own_log_groups_take_a_class_and_a_key(synth, default):
    s = synth(logGroupClass="INFREQUENT_ACCESS", logKmsKeyArn=ARN_KEY)
    for group in s.resources("AWS::Logs::LogGroup").values():
        assert group["Properties"]["LogGroupClass"] == "INFREQUENT_ACCESS"
        assert group["Properties"]["KmsKeyId"] == ARN_KEY
    for group in default.resources("AWS::Logs::LogGroup").values():
        assert "LogGroupClass" not in group["Properties"]  # Standard, the service's default
        assert "KmsKeyId" not in group["Properties"]
