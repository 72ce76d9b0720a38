"""Reusable constructs: the forwarder function, and the forwarder fed by SQS or by Kinesis.

In the manner of the AWS Solutions Constructs, each construct wires a source to the function with
safe defaults that a caller may override through a props dataclass:

- :class:`ForwarderFunction`: the function (newest Python, arm64), its own role with least
  privilege (no managed policies, writes only to the allowed log groups), its own log group with a
  retention period, switchable X-Ray tracing, and alarms on errors, throttles and the function's
  ``RecordsFailed`` metric.
- :class:`SqsLogsForwarder`: an encrypted, TLS-only queue with a dead-letter queue (or an existing
  queue by ARN, standard or FIFO) and an event source mapping with partial batch responses.
- :class:`KinesisLogsForwarder`: an encrypted stream (or an existing one by ARN) and an event
  source mapping that bisects, bounds retries and record age, and sends what it gives up on to an
  on-failure queue; invalid records go to the function's own dead-letter queue so a poison record
  never blocks a shard.

Use them in your own app::

    from infra.forwarder import ForwarderFunctionProps, SqsLogsForwarder, SqsLogsForwarderProps

    SqsLogsForwarder(self, "Logs", props=SqsLogsForwarderProps(
        function=ForwarderFunctionProps(allowed_log_groups=("/app/*",)),
    ))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import jsii
from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from forwarder.settings import OPTION_BY_VARIABLE as _OPTION
from forwarder.settings import cross_check, environment, parse_options
from infra.blueprint import function_options, shared_options
from infra.bundling import HANDLER, forwarder_code
from infra.config import INVALID_RECORDS_POLICIES, MIN_MEMORY_MB, NAG_PREFIX
from infra.failure_store import FailureStore

__all__ = [
    "KINESIS_READ_ACTIONS",
    "RUNTIME",
    "SQS_CONSUME_ACTIONS",
    "ForwarderFunction",
    "ForwarderFunctionProps",
    "KinesisLogsForwarder",
    "KinesisLogsForwarderProps",
    "SqsLogsForwarder",
    "SqsLogsForwarderProps",
    "log_group_arns",
]

#: The newest Python that CDK, Lambda and Powertools support (cdk-nag's AwsSolutions-L1 agrees).
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64

#: What the Lambda service needs to poll a queue for the function (AWSLambdaSQSQueueExecutionRole).
SQS_CONSUME_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
#: What it needs to read a stream through shared-throughput iterators (no enhanced fan-out).
KINESIS_READ_ACTIONS = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)


_SOURCE_LABELS = {"sqs": "SQS", "kinesis": "Kinesis"}
_ALARM_PERIOD = Duration.minutes(5)
_DLQ_RETENTION = Duration.days(14)


def log_group_arns(scope: Construct, patterns: Sequence[str]) -> list[str]:
    """IAM resources for exactly the log groups ``patterns`` admit, and their streams.

    IAM's ``*`` and ``?`` mean what they mean in ``ALLOWED_LOG_GROUPS``, so the same patterns
    bound both what the function will try and what IAM lets it do.
    """
    stack = Stack.of(scope)
    arns = []
    for pattern in patterns:
        group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=pattern,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        arns += [group, f"{group}:log-stream:*"]
    return arns


def _alarm(
    scope: Construct,
    id: str,
    *,
    metric: cloudwatch.IMetric,
    threshold: float,
    description: str,
    topic: sns.ITopic | None,
) -> cloudwatch.Alarm:
    alarm = cloudwatch.Alarm(
        scope,
        id,
        metric=metric,
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=description,
    )
    if topic is not None:
        action = cloudwatch_actions.SnsAction(topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
    return alarm


def _dead_letter_alarm(
    scope: Construct, id: str, queue: sqs.IQueue, what: str, topic: sns.ITopic | None
) -> cloudwatch.Alarm:
    return _alarm(
        scope,
        id,
        metric=queue.metric_approximate_number_of_messages_visible(
            period=_ALARM_PERIOD, statistic="Maximum"
        ),
        threshold=1,
        description=f"Messages are waiting in {what}: inspect them, fix the cause, redrive.",
        topic=topic,
    )


def _queue(
    scope: Construct,
    id: str,
    *,
    fifo: bool,
    retention: Duration = _DLQ_RETENTION,
    **kwargs: object,
) -> sqs.Queue:
    """A queue encrypted at rest (SSE-SQS, no key to pay for) that refuses requests without TLS."""
    return sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=retention,
        fifo=True if fifo else None,
        # Lets the function dead-letter into a FIFO queue without inventing deduplication ids.
        content_based_deduplication=True if fifo else None,
        **kwargs,
    )


def _acknowledge_terminal_queue(queue: sqs.Queue) -> None:
    Validations.of(queue).acknowledge(
        Acknowledgment(
            id=f"{NAG_PREFIX}AwsSolutions-SQS3",
            reason="This queue is itself a dead-letter destination (the end of the line for "
            "records the forwarder gave up on); it is watched by an alarm and redriven by hand.",
        )
    )


def _failure_store(
    scope: Construct, invalid_records: str, given: FailureStore | None
) -> FailureStore | None:
    """The store for large dead letters: the one given, or a new one, when dead-lettering."""
    if invalid_records != "dead-letter":
        return None
    return given or FailureStore(scope, "FailureStore", retention=_DLQ_RETENTION)


# -- the function --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwarderFunctionProps:
    """The function's settings; everything but ``allowed_log_groups`` has a safe default."""

    #: Glob patterns (``*``, ``?``) of the log groups the function may write to: both its
    #: ``ALLOWED_LOG_GROUPS`` and the resources of its IAM policy. Required: there is no safe
    #: default for where logs may go.
    allowed_log_groups: Sequence[str]
    default_log_group: str | None = None
    default_log_stream: str | None = None
    create_log_streams: bool = True
    #: Also grants ``logs:CreateLogGroup`` on the allowed groups.
    create_log_groups: bool = False
    subscription_log_group: str = "{logGroup}"
    subscription_log_stream: str = "{logStream}"
    max_concurrent_requests: int = 8
    memory_size: int = 512
    timeout: Duration = dataclasses.field(default_factory=lambda: Duration.seconds(60))
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    log_level: str = "INFO"
    tracing: bool = True
    #: Each function's ``POWERTOOLS_SERVICE_NAME`` is this name plus ``-sqs`` or ``-kinesis``.
    service_name: str = "cloudwatch-logs-forwarder"
    metrics_namespace: str = "CloudWatchLogsForwarder"
    #: The function's code; by default ``lambda_src`` bundled with pip (see ``infra.bundling``).
    code: lambda_.Code | None = None

    def __post_init__(self) -> None:
        if isinstance(self.allowed_log_groups, str):
            raise ValueError("allowed_log_groups: give a sequence of patterns, not one string")
        # The function's own rules, from its option table, named by field.
        values = shared_options(self)
        texts = {v: None if x is None else _OPTION[v].kind.text(x) for v, x in values.items()}
        _, problems = parse_options(texts, lambda option: option.field or option.variable)
        problems += cross_check(
            {_OPTION[v].field or v: x for v, x in values.items()}, lambda field: field
        )
        if self.memory_size < MIN_MEMORY_MB:
            problems.append(
                f"memory_size: {self.memory_size} MB cannot decompress one full-size gzip record; "
                f"use at least {MIN_MEMORY_MB}"
            )
        if problems:
            raise ValueError("; ".join(problems))


class ForwarderFunction(Construct):
    """The forwarder function with its role, log group and alarms.

    ``invalid_records`` is the function's ``INVALID_RECORDS`` policy; with ``"dead-letter"`` a
    ``dead_letter_queue`` is required, and the role may send to it and nowhere else; a
    ``failure_store`` then takes the letters too large for SQS (``DEAD_LETTER_BUCKET``).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: ForwarderFunctionProps,
        source: str,
        invalid_records: str = "fail",
        dead_letter_queue: sqs.IQueue | None = None,
        failure_store: FailureStore | None = None,
        alarm_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, id)
        if invalid_records not in INVALID_RECORDS_POLICIES:
            raise ValueError(f"invalid_records: expected one of {INVALID_RECORDS_POLICIES}")
        if invalid_records == "dead-letter" and dead_letter_queue is None:
            raise ValueError("invalid_records='dead-letter' needs a dead_letter_queue")
        self.props = props
        self.service_name = f"{props.service_name}-{source}"
        label = _SOURCE_LABELS.get(source, source)

        self.log_group = logs.LogGroup(self, "LogGroup", retention=props.log_retention)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"CloudWatch Logs forwarder ({label}): writes only to allowed log groups",
        )
        options = function_options(
            shared_options(props),
            service_name=props.service_name,
            log_level=props.log_level,
            source=source,
            invalid_records=invalid_records,
            timeout_s=props.timeout.to_seconds(),
            dead_letter_queue_url=dead_letter_queue.queue_url if dead_letter_queue else None,
            dead_letter_bucket=failure_store.bucket.bucket_name if failure_store else None,
        )

        self.function = lambda_.Function(
            self,
            "Function",
            description=f"Forwards {label} records into CloudWatch Logs",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=props.code or forwarder_code(runtime=RUNTIME),
            memory_size=props.memory_size,
            timeout=props.timeout,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE if props.tracing else lambda_.Tracing.DISABLED,
            environment=environment(options),
        )

        # Its own log group: the runtime creates the stream of each execution environment.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        # The forwarded logs: exactly the allowed log groups and their streams.
        forward_actions = ["logs:PutLogEvents"]
        if props.create_log_streams:
            forward_actions.append("logs:CreateLogStream")
        if props.create_log_groups:
            forward_actions.append("logs:CreateLogGroup")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ForwardToAllowedLogGroups",
                actions=sorted(forward_actions),
                resources=log_group_arns(self, props.allowed_log_groups),
            )
        )
        if invalid_records == "dead-letter" and dead_letter_queue is not None:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="DeadLetterInvalidRecords",
                    actions=["sqs:SendMessage"],
                    resources=[dead_letter_queue.queue_arn],
                )
            )
            if dead_letter_queue.encryption_master_key is not None:
                dead_letter_queue.encryption_master_key.grant(
                    self.role, "kms:GenerateDataKey", "kms:Decrypt"
                )
            if failure_store is not None:
                failure_store.grant_dead_letters(self.role)
        self._acknowledge_wildcards()

        self.errors_alarm = _alarm(
            self,
            "ErrorsAlarm",
            metric=self.function.metric_errors(period=_ALARM_PERIOD, statistic="Sum"),
            threshold=1,
            description=f"The {label} forwarder raised errors: its batches are being retried.",
            topic=alarm_topic,
        )
        self.throttles_alarm = _alarm(
            self,
            "ThrottlesAlarm",
            metric=self.function.metric_throttles(period=_ALARM_PERIOD, statistic="Sum"),
            threshold=1,
            description=f"The {label} forwarder was throttled: raise its concurrency or quota.",
            topic=alarm_topic,
        )
        self.records_failed_alarm = _alarm(
            self,
            "RecordsFailedAlarm",
            metric=self.metric_records_failed(),
            threshold=1,
            description=f"The {label} forwarder reported records it could not deliver.",
            topic=alarm_topic,
        )

    def metric_records_failed(self) -> cloudwatch.Metric:
        """The function's own ``RecordsFailed`` count (Powertools EMF)."""
        return cloudwatch.Metric(
            namespace=self.props.metrics_namespace,
            metric_name="RecordsFailed",
            dimensions_map={"service": self.service_name},
            statistic="Sum",
            period=_ALARM_PERIOD,
        )

    def _acknowledge_wildcards(self) -> None:
        """Acknowledge each wildcard of the role's policy by name: a new one still fails nag."""
        patterns = ", ".join(self.props.allowed_log_groups)
        logs_reason = (
            f"The function may write to the log groups {patterns}: the same glob patterns as its "
            "ALLOWED_LOG_GROUPS, and ':log-stream:*' for the streams it creates at run time in "
            "them. The wildcards are the allow-list itself, scoped to this account and Region."
        )
        findings = {}
        for pattern in self.props.allowed_log_groups:
            group = f"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:{pattern}"
            for resource in (group, f"{group}:log-stream:*"):
                if "*" in resource or "?" in resource:
                    findings[f"Resource::{resource}"] = logs_reason
        if self.props.tracing:
            findings["Resource::*"] = (
                "Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
                "support no resource-level permissions (the service authorization reference "
                "lists no resource type for them), so '*' is the only possible resource."
            )
        Validations.of(self.role).acknowledge(
            *(
                Acknowledgment(id=f"{NAG_PREFIX}AwsSolutions-IAM5[{finding}]", reason=reason)
                for finding, reason in findings.items()
            )
        )


# -- SQS -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqsLogsForwarderProps:
    function: ForwarderFunctionProps
    #: An existing queue to read instead of creating one (its dead-letter set-up is its owner's).
    existing_queue_arn: str | None = None
    #: The customer managed key of an existing queue, if it has one (grants kms:Decrypt on it).
    existing_queue_kms_key_arn: str | None = None
    #: Create a FIFO queue (an existing queue is FIFO when its name ends in ``.fifo``).
    fifo: bool = False
    #: Default 100 for a standard queue, 10 (the maximum) for FIFO.
    batch_size: int | None = None
    #: Default 5 s for a standard queue; FIFO queues have none.
    max_batching_window: Duration | None = None
    max_concurrency: int = 5
    max_receive_count: int = 5
    #: Default six times the function's timeout plus the batching window.
    visibility_timeout: Duration | None = None
    retention_period: Duration = dataclasses.field(default_factory=lambda: Duration.days(4))
    #: The function's INVALID_RECORDS. With ``fail`` an invalid message is retried until the
    #: queue's redrive moves it to the dead-letter queue, payload and all.
    invalid_records: str = "fail"
    #: Where dead letters too large for SQS go (with ``dead-letter``); by default the construct
    #: makes its own.
    failure_store: FailureStore | None = None
    alarm_topic: sns.ITopic | None = None

    @property
    def is_fifo(self) -> bool:
        if self.existing_queue_arn:
            return self.existing_queue_arn.endswith(".fifo")
        return self.fifo

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size or (10 if self.is_fifo else 100)

    @property
    def effective_window_seconds(self) -> int:
        if self.max_batching_window is None:
            return 0 if self.is_fifo else 5
        return int(self.max_batching_window.to_seconds())

    def __post_init__(self) -> None:
        if self.invalid_records not in INVALID_RECORDS_POLICIES:
            raise ValueError(f"invalid_records: expected one of {INVALID_RECORDS_POLICIES}")
        limit = 10 if self.is_fifo else 10000
        if not 1 <= self.effective_batch_size <= limit:
            raise ValueError(f"batch_size: must be from 1 to {limit} for this queue")
        window = self.effective_window_seconds
        if self.is_fifo and window:
            raise ValueError("max_batching_window: FIFO queues do not support a batching window")
        if self.effective_batch_size > 10 and window < 1:
            raise ValueError("max_batching_window: at least 1 second when batch_size is above 10")
        minimum = 6 * self.function.timeout.to_seconds()
        if self.visibility_timeout and self.visibility_timeout.to_seconds() < minimum:
            raise ValueError(
                f"visibility_timeout: at least six times the function's timeout ({minimum} s)"
            )


class SqsLogsForwarder(Construct):
    """SQS -> the forwarder: queue, dead-letter queue, function, event source mapping, alarms."""

    def __init__(self, scope: Construct, id: str, *, props: SqsLogsForwarderProps) -> None:
        super().__init__(scope, id)
        fifo = props.is_fifo
        batch_size = props.effective_batch_size
        window_seconds = props.effective_window_seconds

        self.dead_letter_queue: sqs.IQueue | None = None
        self.queue: sqs.IQueue
        if props.existing_queue_arn:
            key = (
                kms.Key.from_key_arn(self, "QueueKey", props.existing_queue_kms_key_arn)
                if props.existing_queue_kms_key_arn
                else None
            )
            self.queue = sqs.Queue.from_queue_attributes(
                self, "Queue", queue_arn=props.existing_queue_arn, fifo=fifo
            )
            self.queue_key = key
        else:
            self.queue_key = None
            self.dead_letter_queue = _queue(self, "DeadLetterQueue", fifo=fifo)
            visibility = props.visibility_timeout or Duration.seconds(
                min(43200, 6 * props.function.timeout.to_seconds() + window_seconds)
            )
            self.queue = _queue(
                self,
                "Queue",
                fifo=fifo,
                retention=props.retention_period,
                visibility_timeout=visibility,
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=self.dead_letter_queue, max_receive_count=props.max_receive_count
                ),
            )

        # Dead-lettering by the function goes to the queue's own DLQ when we made one.
        self.invalid_records_queue: sqs.IQueue | None = None
        if props.invalid_records == "dead-letter":
            if self.dead_letter_queue is not None:
                self.invalid_records_queue = self.dead_letter_queue
            else:
                invalid = _queue(self, "InvalidRecordsQueue", fifo=fifo)
                _acknowledge_terminal_queue(invalid)
                self.invalid_records_queue = invalid

        self.failure_store = _failure_store(self, props.invalid_records, props.failure_store)
        self.forwarder = ForwarderFunction(
            self,
            "Forwarder",
            props=props.function,
            source="sqs",
            invalid_records=props.invalid_records,
            dead_letter_queue=self.invalid_records_queue,
            failure_store=self.failure_store,
            alarm_topic=props.alarm_topic,
        )
        self.function = self.forwarder.function

        role = self.forwarder.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ConsumeSourceQueue",
                actions=list(SQS_CONSUME_ACTIONS),
                resources=[self.queue.queue_arn],
            )
        )
        if self.queue_key is not None:
            self.queue_key.grant(role, "kms:Decrypt")

        self.event_source_mapping = lambda_.EventSourceMapping(
            self,
            "EventSourceMapping",
            target=self.function,
            event_source_arn=self.queue.queue_arn,
            batch_size=batch_size,
            max_batching_window=Duration.seconds(window_seconds) if window_seconds else None,
            max_concurrency=props.max_concurrency,
            report_batch_item_failures=True,
        )
        # The mapping is validated on creation: the role's policy must exist by then.
        self.event_source_mapping.node.add_dependency(role)

        if self.dead_letter_queue is not None:
            self.dead_letter_alarm = _dead_letter_alarm(
                self,
                "DeadLetterQueueAlarm",
                self.dead_letter_queue,
                "the SQS source's dead-letter queue",
                props.alarm_topic,
            )
        elif self.invalid_records_queue is not None:
            self.dead_letter_alarm = _dead_letter_alarm(
                self,
                "InvalidRecordsQueueAlarm",
                self.invalid_records_queue,
                "the SQS forwarder's invalid-records queue",
                props.alarm_topic,
            )


# -- Kinesis -------------------------------------------------------------------------------------


@jsii.implements(lambda_.IEventSourceDlq)
class _OnFailureQueue:
    """An on-failure destination whose permission (sqs:SendMessage only) is granted by the caller.

    ``aws_lambda_event_sources.SqsDlq`` would also grant GetQueueAttributes and GetQueueUrl.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self.queue = queue

    def bind(
        self, _target: lambda_.IEventSourceMapping, _target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self.queue.queue_arn)


@dataclass(frozen=True)
class KinesisLogsForwarderProps:
    function: ForwarderFunctionProps
    existing_stream_arn: str | None = None
    #: The customer managed key of an existing stream, if it has one (grants kms:Decrypt on it).
    existing_stream_kms_key_arn: str | None = None
    on_demand: bool = False
    shard_count: int = 1
    retention_period: Duration = dataclasses.field(default_factory=lambda: Duration.hours(24))
    batch_size: int = 100
    max_batching_window: Duration = dataclasses.field(default_factory=lambda: Duration.seconds(1))
    parallelization_factor: int = 1
    #: None: retry until the record expires (not recommended).
    retry_attempts: int | None = 3
    #: None: no limit other than the stream's retention (not recommended).
    max_record_age: Duration | None = dataclasses.field(default_factory=lambda: Duration.hours(1))
    starting_position: lambda_.StartingPosition = lambda_.StartingPosition.TRIM_HORIZON
    #: The function's INVALID_RECORDS. ``dead-letter`` (default) sends the payload of an invalid
    #: record to the function's own dead-letter queue and moves on: an on-failure destination
    #: would only receive the record's metadata.
    invalid_records: str = "dead-letter"
    #: Where dead letters too large for SQS go (with ``dead-letter``); by default the construct
    #: makes its own.
    failure_store: FailureStore | None = None
    iterator_age_alarm_threshold: Duration = dataclasses.field(
        default_factory=lambda: Duration.minutes(10)
    )
    alarm_topic: sns.ITopic | None = None

    def __post_init__(self) -> None:
        if self.invalid_records not in INVALID_RECORDS_POLICIES:
            raise ValueError(f"invalid_records: expected one of {INVALID_RECORDS_POLICIES}")
        if not 1 <= self.parallelization_factor <= 10:
            raise ValueError("parallelization_factor: must be from 1 to 10")
        if not 1 <= self.batch_size <= 10000:
            raise ValueError("batch_size: must be from 1 to 10000")


class KinesisLogsForwarder(Construct):
    """Kinesis -> the forwarder: stream, function, mapping, on-failure and dead-letter queues."""

    def __init__(self, scope: Construct, id: str, *, props: KinesisLogsForwarderProps) -> None:
        super().__init__(scope, id)
        self.stream: kinesis.IStream
        if props.existing_stream_arn:
            self.stream = kinesis.Stream.from_stream_arn(self, "Stream", props.existing_stream_arn)
        else:
            self.stream = kinesis.Stream(
                self,
                "Stream",
                # The AWS managed key: encrypted at rest, no key to pay for or to grant.
                encryption=kinesis.StreamEncryption.MANAGED,
                stream_mode=kinesis.StreamMode.ON_DEMAND
                if props.on_demand
                else kinesis.StreamMode.PROVISIONED,
                shard_count=None if props.on_demand else props.shard_count,
                retention_period=props.retention_period,
            )

        self.dead_letter_queue: sqs.Queue | None = None
        if props.invalid_records == "dead-letter":
            self.dead_letter_queue = _queue(self, "DeadLetterQueue", fifo=False)
            _acknowledge_terminal_queue(self.dead_letter_queue)
        self.on_failure_queue = _queue(self, "OnFailureQueue", fifo=False)
        _acknowledge_terminal_queue(self.on_failure_queue)

        self.failure_store = _failure_store(self, props.invalid_records, props.failure_store)
        self.forwarder = ForwarderFunction(
            self,
            "Forwarder",
            props=props.function,
            source="kinesis",
            invalid_records=props.invalid_records,
            dead_letter_queue=self.dead_letter_queue,
            failure_store=self.failure_store,
            alarm_topic=props.alarm_topic,
        )
        self.function = self.forwarder.function

        role = self.forwarder.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadSourceStream",
                actions=list(KINESIS_READ_ACTIONS),
                resources=[self.stream.stream_arn],
            )
        )
        if props.existing_stream_kms_key_arn:
            kms.Key.from_key_arn(self, "StreamKey", props.existing_stream_kms_key_arn).grant(
                role, "kms:Decrypt"
            )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SendBatchFailuresToOnFailureQueue",
                actions=["sqs:SendMessage"],
                resources=[self.on_failure_queue.queue_arn],
            )
        )

        self.event_source_mapping = lambda_.EventSourceMapping(
            self,
            "EventSourceMapping",
            target=self.function,
            event_source_arn=self.stream.stream_arn,
            starting_position=props.starting_position,
            batch_size=props.batch_size,
            max_batching_window=props.max_batching_window,
            parallelization_factor=props.parallelization_factor,
            bisect_batch_on_error=True,
            retry_attempts=props.retry_attempts,
            max_record_age=props.max_record_age,
            report_batch_item_failures=True,
            on_failure=_OnFailureQueue(self.on_failure_queue),
        )
        self.event_source_mapping.node.add_dependency(role)

        self.iterator_age_alarm = _alarm(
            self,
            "IteratorAgeAlarm",
            metric=self.function.metric("IteratorAge", period=_ALARM_PERIOD, statistic="Maximum"),
            threshold=props.iterator_age_alarm_threshold.to_milliseconds(),
            description="The Kinesis forwarder is falling behind its stream.",
            topic=props.alarm_topic,
        )
        self.on_failure_alarm = _dead_letter_alarm(
            self,
            "OnFailureQueueAlarm",
            self.on_failure_queue,
            "the Kinesis on-failure queue (batches given up after retries; metadata only)",
            props.alarm_topic,
        )
        if self.dead_letter_queue is not None:
            self.dead_letter_alarm = _dead_letter_alarm(
                self,
                "DeadLetterQueueAlarm",
                self.dead_letter_queue,
                "the Kinesis forwarder's dead-letter queue (invalid records, with payload)",
                props.alarm_topic,
            )
