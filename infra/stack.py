"""The stack ``app.py`` deploys: one forwarder per enabled source, from the validated config."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.blueprint import KINESIS_FUNCTION, SQS_FUNCTION
from infra.bundling import forwarder_code
from infra.config import (
    LOG_RETENTION_DAYS,
    ForwarderConfig,
    FunctionConfig,
    KinesisConfig,
    SqsConfig,
)
from infra.failure_store import FailureStore
from infra.forwarder import (
    RUNTIME,
    ForwarderFunctionProps,
    KinesisLogsForwarder,
    KinesisLogsForwarderProps,
    SqsLogsForwarder,
    SqsLogsForwarderProps,
)
from infra.log_group_key import LogGroupKey

__all__ = ["RETENTION", "ForwarderStack", "add_compliance_checks", "build_app"]

#: Days (as the context gives them) -> CDK's enum; 0 means never expire. CDK declares its members
#: in ascending order with INFINITE last; tests/infra/test_stack.py renders each one.
RETENTION: dict[int, logs.RetentionDays] = dict(
    zip(
        LOG_RETENTION_DAYS,
        (logs.RetentionDays.INFINITE, *list(logs.RetentionDays)[:-1]),
        strict=True,
    )
)


def function_props(
    config: FunctionConfig,
    code: lambda_.Code | None,
    new_log_group_key: kms.IKey | None = None,
    log_key: kms.IKey | None = None,
) -> ForwarderFunctionProps:
    """The functions' props from the configuration; ``new_log_group_key``: the key the stack
    made for the groups they create (``newLogGroupKmsKey=create``), ``log_key`` the key of
    their own log groups (``logKmsKeyArn``)."""
    return ForwarderFunctionProps(
        allowed_log_groups=config.allowed_log_groups,
        default_log_group=config.default_log_group,
        default_log_stream=config.default_log_stream,
        create_log_streams=config.create_log_streams,
        create_log_groups=config.create_log_groups,
        new_log_group_retention_days=config.new_log_group_retention_days,
        new_log_group_kms_key_id=new_log_group_key.key_arn
        if new_log_group_key
        else config.new_log_group_kms_key_id,
        new_log_group_class=config.new_log_group_class,
        new_log_group_tags=config.new_log_group_tags,
        new_log_group_deletion_protection=config.new_log_group_deletion_protection,
        subscription_log_group=config.subscription_log_group,
        subscription_log_stream=config.subscription_log_stream,
        max_concurrent_requests=config.max_concurrent_requests,
        memory_size=config.memory_size,
        timeout=Duration.seconds(config.timeout_seconds),
        log_retention=RETENTION[config.log_retention_days],
        log_group_class=config.log_group_class,
        log_encryption_key=log_key,
        log_level=config.log_level,
        tracing=config.tracing,
        service_name=config.service_name,
        metrics_namespace=config.metrics_namespace,
        delivery_checkpoint=config.delivery_checkpoint,
        code=code,
    )


def existing_queue(scope: Construct, config: SqsConfig) -> sqs.IQueue | None:
    """The queue ``sqsQueueArn`` names, with its key when ``sqsQueueKmsKeyArn`` is set."""
    if not config.queue_arn:
        return None
    return sqs.Queue.from_queue_attributes(
        scope,
        "ExistingQueue",
        queue_arn=config.queue_arn,
        fifo=config.fifo,
        key_arn=config.queue_kms_key_arn,
    )


def existing_stream(scope: Construct, config: KinesisConfig) -> kinesis.IStream | None:
    """The stream ``kinesisStreamArn`` names, with its key when ``kinesisStreamKmsKeyArn`` is
    set."""
    if not config.stream_arn:
        return None
    key = config.stream_kms_key_arn
    return kinesis.Stream.from_stream_attributes(
        scope,
        "ExistingStream",
        stream_arn=config.stream_arn,
        encryption_key=kms.Key.from_key_arn(scope, "ExistingStreamKey", key) if key else None,
    )


def sqs_props(
    config: SqsConfig,
    function: ForwarderFunctionProps,
    topic: sns.ITopic | None,
    store: FailureStore | None = None,
    queue: sqs.IQueue | None = None,
) -> SqsLogsForwarderProps:
    return SqsLogsForwarderProps(
        function=function,
        existing_queue=queue,
        # The settings of a queue to create, unless ``queue`` is an existing one.
        fifo=None if queue else config.fifo,
        max_receive_count=None if queue else config.max_receive_count,
        visibility_timeout=None if queue else Duration.seconds(config.visibility_timeout_seconds),
        retention_period=None if queue else Duration.days(config.retention_days),
        batch_size=config.batch_size,
        max_batching_window=Duration.seconds(config.max_batching_window_seconds),
        max_concurrency=config.max_concurrency,
        invalid_records=config.invalid_records,
        failure_store=store,
        alarm_topic=topic,
    )


def kinesis_props(
    config: KinesisConfig,
    function: ForwarderFunctionProps,
    topic: sns.ITopic | None,
    store: FailureStore | None = None,
    stream: kinesis.IStream | None = None,
) -> KinesisLogsForwarderProps:
    return KinesisLogsForwarderProps(
        function=function,
        existing_stream=stream,
        on_demand=None if stream else config.on_demand,
        shard_count=None if stream else config.shard_count,
        retention_period=None if stream else Duration.hours(config.retention_hours),
        max_record_size_kib=None if stream else config.max_record_size_kib,
        batch_size=config.batch_size,
        max_batching_window=Duration.seconds(config.max_batching_window_seconds),
        parallelization_factor=config.parallelization_factor,
        retry_attempts=None if config.max_retry_attempts < 0 else config.max_retry_attempts,
        max_record_age=None
        if config.max_record_age_seconds < 0
        else Duration.seconds(config.max_record_age_seconds),
        starting_position=lambda_.StartingPosition[config.starting_position],
        invalid_records=config.invalid_records,
        on_failure=config.on_failure,
        enhanced_fan_out=config.enhanced_fan_out,
        failure_store=store,
        iterator_age_alarm_threshold=Duration.seconds(config.iterator_age_alarm_seconds),
        alarm_topic=topic,
    )


class ForwarderStack(Stack):
    """The forwarder with the sources the config enables, and the outputs a user needs."""

    def __init__(
        self, scope: Construct, id: str, *, config: ForwarderConfig, **kwargs: Any
    ) -> None:
        kwargs.setdefault(
            "description", "CloudWatch Logs forwarder: SQS/Kinesis records into CloudWatch Logs"
        )
        super().__init__(scope, id, **kwargs)
        self.config = config
        topic = (
            sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
            if config.alarm_topic_arn
            else None
        )
        # One asset for both functions.
        code = forwarder_code(runtime=RUNTIME)
        new_log_group_key = (
            LogGroupKey(self, "NewLogGroupKey").key
            if config.function.create_new_log_group_key
            else None
        )
        log_key = (
            kms.Key.from_key_arn(self, "LogKey", config.function.log_kms_key_arn)
            if config.function.log_kms_key_arn
            else None
        )
        function = function_props(config.function, code, new_log_group_key, log_key)
        # One store for the dead letters too large for SQS, whichever source they come from,
        # and for the Kinesis batches given up after retries.
        dead_lettering = [
            source.invalid_records == "dead-letter"
            for source in (config.sqs, config.kinesis)
            if source is not None
        ]
        kinesis_to_s3 = config.kinesis is not None and config.kinesis.on_failure == "s3"
        self.failure_store = (
            FailureStore(self, "FailureStore") if any(dead_lettering) or kinesis_to_s3 else None
        )
        if self.failure_store is not None:
            self._output(
                "FailureBucketName",
                self.failure_store.bucket.bucket_name,
                "Dead letters too large for SQS (dead-letters/) and Kinesis batches given up "
                "after retries, with their data (aws/lambda/)",
            )

        self.sqs: SqsLogsForwarder | None = None
        if config.sqs is not None:
            self.sqs = SqsLogsForwarder(
                self,
                "Sqs",
                props=sqs_props(
                    config.sqs,
                    function,
                    topic,
                    self.failure_store,
                    existing_queue(self, config.sqs),
                ),
            )
            _short_logical_id(self.sqs.function, SQS_FUNCTION)
            self._output("SqsQueueUrl", self.sqs.queue.queue_url, "The queue to send records to")
            self._output("SqsQueueArn", self.sqs.queue.queue_arn, "The source queue's ARN")
            if self.sqs.dead_letter_queue is not None:
                self._output(
                    "SqsDeadLetterQueueUrl",
                    self.sqs.dead_letter_queue.queue_url,
                    "Messages that failed maxReceiveCount times",
                )
            elif self.sqs.invalid_records_queue is not None:
                self._output(
                    "SqsInvalidRecordsQueueUrl",
                    self.sqs.invalid_records_queue.queue_url,
                    "Invalid records the SQS forwarder dead-lettered",
                )
            self._output(
                "SqsFunctionName", self.sqs.function.function_name, "The SQS forwarder function"
            )

        self.kinesis: KinesisLogsForwarder | None = None
        if config.kinesis is not None:
            self.kinesis = KinesisLogsForwarder(
                self,
                "Kinesis",
                props=kinesis_props(
                    config.kinesis,
                    function,
                    topic,
                    self.failure_store,
                    existing_stream(self, config.kinesis),
                ),
            )
            _short_logical_id(self.kinesis.function, KINESIS_FUNCTION)
            self._output(
                "KinesisStreamName", self.kinesis.stream.stream_name, "The stream to put records to"
            )
            self._output("KinesisStreamArn", self.kinesis.stream.stream_arn, "The stream's ARN")
            if self.kinesis.dead_letter_queue is not None:
                self._output(
                    "KinesisDeadLetterQueueUrl",
                    self.kinesis.dead_letter_queue.queue_url,
                    "Invalid Kinesis records, with their payload",
                )
            if self.kinesis.on_failure_queue is not None:
                self._output(
                    "KinesisOnFailureQueueUrl",
                    self.kinesis.on_failure_queue.queue_url,
                    "Metadata of Kinesis batches given up after retries",
                )
            self._output(
                "KinesisFunctionName",
                self.kinesis.function.function_name,
                "The Kinesis forwarder function",
            )

    def _output(self, id: str, value: str, description: str) -> None:
        CfnOutput(self, id, value=value, description=description)


def _short_logical_id(function: lambda_.Function, logical_id: str) -> None:
    """A stable, readable logical id: ``sam local invoke SqsFunction`` instead of a hash."""
    resource = function.node.default_child
    assert isinstance(resource, cdk.CfnResource)
    resource.override_logical_id(logical_id)


def add_compliance_checks(app: cdk.App) -> None:
    """cdk-nag's AwsSolutions rules as a validation plugin: a finding fails the synth."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def build_app(app: cdk.App | None = None) -> tuple[cdk.App, ForwarderStack]:
    """The app ``app.py`` synthesizes (the tests build the same one with other context)."""
    app = app or cdk.App()
    config = ForwarderConfig.from_scope(app)
    stack = ForwarderStack(app, config.stack_name, config=config)
    add_compliance_checks(app)
    return app, stack
