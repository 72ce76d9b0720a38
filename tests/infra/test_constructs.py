"""The constructs as a CDK user meets them in an app of their own: existing resources as CDK
objects, read-only attributes, every props problem at once, the same SQS rules as the context."""

from __future__ import annotations

import dataclasses

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match, Template

from infra.config import LOG_RETENTION_DAYS, ConfigError, ForwarderConfig
from infra.forwarder import (
    ForwarderFunction,
    ForwarderFunctionProps,
    KinesisLogsForwarder,
    KinesisLogsForwarderProps,
    SqsLogsForwarder,
    SqsLogsForwarderProps,
)
from infra.stack import RETENTION
from tests.infra.conftest import CDK_JSON, ROOT

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:orders"
STREAM_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def new_stack() -> cdk.Stack:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    return cdk.Stack(app, "Mine", env=cdk.Environment(account="123456789012", region="eu-west-1"))


def function_props() -> ForwarderFunctionProps:
    return ForwarderFunctionProps(
        allowed_log_groups=("/app/*",), code=lambda_.Code.from_inline("def handler(e, c): ...")
    )


def statements(template: Template) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy")
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_an_existing_queue_object_is_read_and_its_key_granted_decrypt_only():
    stack = new_stack()
    queue = sqs.Queue.from_queue_attributes(stack, "Orders", queue_arn=QUEUE_ARN, key_arn=KEY_ARN)
    forwarder = SqsLogsForwarder(
        stack,
        "Logs",
        props=SqsLogsForwarderProps(function=function_props(), existing_queue=queue),
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SQS::Queue", 0)
    assert forwarder.queue is queue
    assert forwarder.dead_letter_queue is None
    mapping = next(iter(template.find_resources("AWS::Lambda::EventSourceMapping").values()))
    assert mapping["Properties"]["EventSourceArn"] == QUEUE_ARN
    assert {"Action": "kms:Decrypt", "Effect": "Allow", "Resource": KEY_ARN} in statements(template)


def test_an_existing_fifo_queue_object_sets_fifo_batching():
    stack = new_stack()
    queue = sqs.Queue.from_queue_attributes(
        stack, "Orders", queue_arn=f"{QUEUE_ARN}.fifo", fifo=True
    )
    props = SqsLogsForwarderProps(function=function_props(), existing_queue=queue)
    assert props.is_fifo
    assert (props.effective_batch_size, props.effective_window_seconds) == (10, 0)


def test_an_existing_stream_object_is_read_and_its_key_granted_decrypt_only():
    stack = new_stack()
    stream = kinesis.Stream.from_stream_attributes(
        stack,
        "Clicks",
        stream_arn=STREAM_ARN,
        encryption_key=kms.Key.from_key_arn(stack, "Key", KEY_ARN),
    )
    forwarder = KinesisLogsForwarder(
        stack,
        "Logs",
        props=KinesisLogsForwarderProps(function=function_props(), existing_stream=stream),
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Kinesis::Stream", 0)
    assert forwarder.stream is stream
    mapping = next(iter(template.find_resources("AWS::Lambda::EventSourceMapping").values()))
    assert mapping["Properties"]["EventSourceArn"] == STREAM_ARN
    assert {"Action": "kms:Decrypt", "Effect": "Allow", "Resource": KEY_ARN} in statements(template)


def test_a_created_stream_grants_no_key():
    stack = new_stack()
    KinesisLogsForwarder(stack, "Logs", props=KinesisLogsForwarderProps(function=function_props()))
    actions = [s["Action"] for s in statements(Template.from_stack(stack))]
    assert not [a for a in actions if "kms:" in str(a)]


def test_an_existing_resource_and_settings_of_a_new_one_are_refused_together():
    stack = new_stack()
    queue = sqs.Queue.from_queue_attributes(stack, "Orders", queue_arn=QUEUE_ARN)
    with pytest.raises(ValueError, match=r"max_receive_count, retention_period: settings of a new"):
        SqsLogsForwarderProps(
            function=function_props(),
            existing_queue=queue,
            max_receive_count=3,
            retention_period=Duration.days(1),
        )
    stream = kinesis.Stream.from_stream_arn(stack, "Clicks", STREAM_ARN)
    with pytest.raises(ValueError, match=r"shard_count: settings of a new stream"):
        KinesisLogsForwarderProps(function=function_props(), existing_stream=stream, shard_count=2)


def test_every_props_problem_is_reported_at_once():
    with pytest.raises(ValueError, match="invalid_records") as raised:
        SqsLogsForwarderProps(
            function=function_props(),
            invalid_records="ignore",
            fifo=True,
            batch_size=20,
            max_batching_window=Duration.seconds(3),
            visibility_timeout=Duration.seconds(10),
        )
    message = str(raised.value)
    for problem in (
        "invalid_records: expected one of",
        "batch_size: expected an integer from 1 to 10 for a FIFO queue",
        "max_batching_window: FIFO queues do not support a batching window",
        "visibility_timeout: 10 is less than six times the function's timeout",
    ):
        assert problem in message
    with pytest.raises(ValueError, match="parallelization_factor") as raised:
        KinesisLogsForwarderProps(
            function=function_props(), parallelization_factor=11, batch_size=0
        )
    assert "batch_size" in str(raised.value)


@pytest.mark.parametrize(
    ("context", "props"),
    [
        ({"sqsFifo": True, "sqsBatchSize": 11}, {"fifo": True, "batch_size": 11}),
        (
            {"sqsFifo": True, "sqsMaxBatchingWindowSeconds": 3},
            {"fifo": True, "max_batching_window": Duration.seconds(3)},
        ),
        (
            {"sqsBatchSize": 50, "sqsMaxBatchingWindowSeconds": 0},
            {"batch_size": 50, "max_batching_window": Duration.seconds(0)},
        ),
        ({"sqsVisibilityTimeoutSeconds": 300}, {"visibility_timeout": Duration.seconds(300)}),
    ],
)
def test_the_context_and_the_props_refuse_the_same_queue_settings(context, props):
    with pytest.raises(ConfigError) as from_context:
        ForwarderConfig.from_context({**CDK_JSON["context"], **context})
    with pytest.raises(ValueError, match=r"queue|window|six times") as from_props:
        SqsLogsForwarderProps(function=function_props(), **props)
    # The same rule, named in each one's own terms.
    (context_problem,) = from_context.value.problems
    assert context_problem.split(": ", 1)[1] == str(from_props.value).split(": ", 1)[1].replace(
        "batch_size", "sqsBatchSize"
    ).replace("function.timeout=60", "timeoutSeconds=60")


def test_what_the_constructs_create_is_read_only():
    stack = new_stack()
    sqs_forwarder = SqsLogsForwarder(
        stack, "Sqs", props=SqsLogsForwarderProps(function=function_props())
    )
    kinesis_forwarder = KinesisLogsForwarder(
        stack, "Kinesis", props=KinesisLogsForwarderProps(function=function_props())
    )
    for construct, attribute in (
        (sqs_forwarder, "queue"),
        (sqs_forwarder, "dead_letter_queue"),
        (sqs_forwarder, "function"),
        (sqs_forwarder.forwarder, "role"),
        (sqs_forwarder.forwarder, "errors_alarm"),
        (kinesis_forwarder, "stream"),
        (kinesis_forwarder, "failure_store"),
        (kinesis_forwarder, "on_failure_alarm"),
        (sqs_forwarder, "checkpoint"),
        (kinesis_forwarder.checkpoint, "table"),
    ):
        assert getattr(construct, attribute) is not None
        with pytest.raises(AttributeError):
            setattr(construct, attribute, None)


def test_each_function_has_a_checkpoint_table_unless_told_not_to():
    stack = new_stack()
    with_one = SqsLogsForwarder(
        stack, "With", props=SqsLogsForwarderProps(function=function_props())
    )
    without = KinesisLogsForwarder(
        stack,
        "Without",
        props=KinesisLogsForwarderProps(
            function=ForwarderFunctionProps(
                allowed_log_groups=("/app/*",),
                delivery_checkpoint=False,
                code=lambda_.Code.from_inline("def handler(e, c): ..."),
            )
        ),
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    assert without.checkpoint is None
    assert with_one.checkpoint is not None
    functions = template.find_resources("AWS::Lambda::Function")
    variables = {
        logical_id: f["Properties"]["Environment"]["Variables"]
        for logical_id, f in functions.items()
    }
    (with_table,) = [v for v in variables.values() if "CHECKPOINT_TABLE" in v]
    assert with_table["CHECKPOINT_TTL_SECONDS"] == str(5 * 86400)
    assert len(variables) == 2


def test_each_retention_in_days_renders_as_those_days():
    stack = new_stack()
    groups = {
        days: logs.LogGroup(stack, f"Days{days}", retention=RETENTION[days])
        for days in LOG_RETENTION_DAYS
    }
    resources = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup")
    rendered = {
        days: resources[stack.get_logical_id(group.node.default_child)]
        .get("Properties", {})
        .get("RetentionInDays")
        for days, group in groups.items()
    }
    assert rendered == {days: None if days == 0 else days for days in LOG_RETENTION_DAYS}


def test_the_readme_example_synthesizes():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Using the construct in your own CDK app") :]
    start = section.index("```python\n") + len("```python\n")
    code = section[start : section.index("\n```\n", start)]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = namespace["MyStack"](app, "Mine")
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Lambda::Function", 3)
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 3)
    # The created queue and its dead-letter queue, and the Kinesis dead-letter queue (what the
    # mapping gives up goes to the failure store); the existing queue is only read.
    template.resource_count_is("AWS::SQS::Queue", 2 + 1)


def test_records_too_large_for_lambda_are_warned_about():
    stack = new_stack()
    KinesisLogsForwarder(
        stack,
        "Big",
        props=KinesisLogsForwarderProps(function=function_props(), max_record_size_kib=10240),
    )
    warnings = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    assert any("cannot reach a Lambda function" in str(w.entry.data) for w in warnings)
    with pytest.raises(ValueError, match="max_record_size_kib: must be from 1024 to 10240"):
        KinesisLogsForwarderProps(function=function_props(), max_record_size_kib=512)


def test_own_logs_in_infrequent_access_are_warned_about():
    stack = new_stack()
    ForwarderFunction(
        stack,
        "Quiet",
        props=dataclasses.replace(function_props(), log_group_class="INFREQUENT_ACCESS"),
        source="sqs",
        invalid_records="fail",
    )
    warnings = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    assert any("extracts no metrics from EMF" in str(w.entry.data) for w in warnings)
