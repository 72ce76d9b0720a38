"""Kinesis -> the forwarder: a stream (created, or yours), the function, an event source mapping
that bisects, bounds retries and record age and sends what it gives up on to an on-failure
destination (the failure store's bucket, records and data alike; or a queue, metadata only), and
the function's own dead-letter queue, so that a poison record never blocks a shard."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jsii
from aws_cdk import Annotations, Duration, Names
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import INVALID_RECORDS_POLICIES, KINESIS_ON_FAILURE, kinesis_checkpoint_ttl
from infra.delivery_checkpoint import DeliveryCheckpoint
from infra.failure_store import FailureStore
from infra.function import ForwarderFunction, ForwarderFunctionProps
from infra.parts import ALARM_PERIOD, DEAD_LETTER_RETENTION, alarm, terminal_queue
from infra.parts import waiting_messages_alarm as _waiting

__all__ = ["KINESIS_READ_ACTIONS", "KinesisLogsForwarder", "KinesisLogsForwarderProps"]

#: What it needs to read a stream through shared-throughput iterators (no enhanced fan-out).
KINESIS_READ_ACTIONS = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)
#: What enhanced fan-out adds, on the consumer (Lambda developer guide, "Enhanced fan-out").
KINESIS_CONSUMER_ACTIONS = ("kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard")
#: How long a stream the construct creates keeps a record, unless told otherwise.
_RETENTION = Duration.hours(24)
#: Settings of a stream the construct creates: they contradict an ``existing_stream``.
_STREAM_SETTINGS = ("on_demand", "shard_count", "retention_period", "max_record_size_kib")
#: A stream's default and largest maximum record size (Kinesis: 1 MiB, up to 10 MiB).
_RECORD_SIZE_KIB = (1024, 10240)
#: Lambda invokes a function with at most 6 MB of event, a record's data in base64: a record
#: larger than this can reach no function.
LARGEST_DELIVERABLE_KIB = 4296


@jsii.implements(lambda_.IEventSourceDlq)
class _OnFailureDestination:
    """An on-failure destination (a queue's or a bucket's ARN) whose permissions the caller
    grants, narrower than CDK's: ``SqsDlq`` would add GetQueueAttributes and GetQueueUrl, and
    ``S3OnFailureDestination`` read and write on the whole bucket."""

    def __init__(self, arn: str) -> None:
        self.arn = arn

    def bind(
        self, _target: lambda_.IEventSourceMapping, _target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self.arn)


@dataclass(frozen=True)
class KinesisLogsForwarderProps:
    """How the stream is read, and the stream to create unless ``existing_stream`` is given.

    Either ``existing_stream`` or the settings of a new stream (``on_demand``, ``shard_count``,
    ``retention_period``), not both.
    """

    function: ForwarderFunctionProps
    #: A stream of yours to read instead of creating one. With its ``encryption_key``
    #: (``Stream.from_stream_attributes(encryption_key=...)``) the function may decrypt with it.
    existing_stream: kinesis.IStream | None = None
    #: Create an on-demand stream. Default: provisioned.
    on_demand: bool | None = None
    #: Shards of a new provisioned stream. Default 1.
    shard_count: int | None = None
    #: How long the new stream keeps a record. Default 24 hours.
    retention_period: Duration | None = None
    #: The largest record the new stream takes, in KiB (``MaxRecordSizeInKiB``, 1024 to 10240).
    #: Default 1024 (Kinesis's). Above about 4,296 KiB a record cannot reach a Lambda function:
    #: the invocation's 6 MB event carries the data in base64.
    max_record_size_kib: int | None = None
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
    #: Where the mapping puts a batch it gives up after its retries: ``s3`` (default) writes the
    #: invocation record with the records' data into the failure store (``aws/lambda/``), where
    #: it outlives the stream's retention; ``sqs`` sends its metadata (shard and sequence
    #: numbers) to an on-failure queue, and the data is gone once the stream drops it.
    on_failure: str = "s3"
    #: Read through a registered stream consumer of its own (``AWS::Kinesis::StreamConsumer``):
    #: 2 MB/s per shard pushed to the function alone, where shared-throughput readers split
    #: 2 MB/s per shard between them; charged per consumer-shard-hour and per GB read.
    enhanced_fan_out: bool = False
    #: Where dead letters too large for SQS (with ``dead-letter``) and the on-failure records
    #: (with ``on_failure='s3'``) go; by default the construct makes its own.
    failure_store: FailureStore | None = None
    iterator_age_alarm_threshold: Duration = dataclasses.field(
        default_factory=lambda: Duration.minutes(10)
    )
    alarm_topic: sns.ITopic | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.invalid_records not in INVALID_RECORDS_POLICIES:
            problems.append(f"invalid_records: expected one of {INVALID_RECORDS_POLICIES}")
        if self.on_failure not in KINESIS_ON_FAILURE:
            problems.append(f"on_failure: expected one of {KINESIS_ON_FAILURE}")
        if self.existing_stream is not None:
            given = [name for name in _STREAM_SETTINGS if getattr(self, name) is not None]
            if given:
                problems.append(
                    f"{', '.join(given)}: settings of a new stream; an existing_stream keeps "
                    "its own"
                )
        size = self.max_record_size_kib
        if size is not None and not _RECORD_SIZE_KIB[0] <= size <= _RECORD_SIZE_KIB[1]:
            problems.append("max_record_size_kib: must be from 1024 to 10240")
        if not 1 <= self.parallelization_factor <= 10:
            problems.append("parallelization_factor: must be from 1 to 10")
        if not 1 <= self.batch_size <= 10000:
            problems.append("batch_size: must be from 1 to 10000")
        if problems:
            raise ValueError("; ".join(problems))


class KinesisLogsForwarder(Construct):
    """Kinesis -> the forwarder: stream, function, mapping, on-failure destination, dead-letter
    queue."""

    def __init__(self, scope: Construct, id: str, *, props: KinesisLogsForwarderProps) -> None:
        super().__init__(scope, id)
        self._stream = props.existing_stream or kinesis.Stream(
            self,
            "Stream",
            # The AWS managed key: encrypted at rest, no key to pay for or to grant.
            encryption=kinesis.StreamEncryption.MANAGED,
            stream_mode=kinesis.StreamMode.ON_DEMAND
            if props.on_demand
            else kinesis.StreamMode.PROVISIONED,
            shard_count=None if props.on_demand else (props.shard_count or 1),
            retention_period=props.retention_period or _RETENTION,
        )
        size = props.max_record_size_kib
        if size is not None and size != _RECORD_SIZE_KIB[0]:
            stream = self._stream.node.default_child
            assert isinstance(stream, kinesis.CfnStream)
            stream.max_record_size_in_kib = size
            if size > LARGEST_DELIVERABLE_KIB:
                Annotations.of(self).add_warning_v2(
                    "forwarder:RecordTooLargeForLambda",
                    f"max_record_size_kib {size}: records above about {LARGEST_DELIVERABLE_KIB}"
                    " KiB cannot reach a Lambda function (its event is at most 6 MB, the data "
                    "in base64); keep the forwarder's records under that.",
                )

        self._dead_letter_queue: sqs.Queue | None = None
        if props.invalid_records == "dead-letter":
            self._dead_letter_queue = terminal_queue(self, "DeadLetterQueue", fifo=False)
        self._on_failure_queue: sqs.Queue | None = None
        if props.on_failure == "sqs":
            self._on_failure_queue = terminal_queue(self, "OnFailureQueue", fifo=False)

        dead_lettering = props.invalid_records == "dead-letter"
        self._failure_store: FailureStore | None = None
        if dead_lettering or props.on_failure == "s3":
            self._failure_store = props.failure_store or FailureStore(
                self, "FailureStore", retention=DEAD_LETTER_RETENTION
            )
        self._checkpoint: DeliveryCheckpoint | None = None
        if props.function.delivery_checkpoint:
            # A record comes back until the stream drops it or the mapping finds it too old,
            # or, given up to the failure store, until a replay while the store keeps it.
            retention = None if props.existing_stream else (props.retention_period or _RETENTION)
            age = props.max_record_age
            store = self._failure_store if props.on_failure == "s3" else None
            ttl = kinesis_checkpoint_ttl(
                retention and retention.to_seconds(),
                age and age.to_seconds(),
                store and store.retention.to_seconds(),
            )
            self._checkpoint = DeliveryCheckpoint(self, "Checkpoint", ttl=Duration.seconds(ttl))
        self._forwarder = ForwarderFunction(
            self,
            "Forwarder",
            props=props.function,
            source="kinesis",
            invalid_records=props.invalid_records,
            dead_letter_queue=self._dead_letter_queue,
            failure_store=self._failure_store if dead_lettering else None,
            checkpoint=self._checkpoint,
            alarm_topic=props.alarm_topic,
        )

        role = self._forwarder.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadSourceStream",
                actions=list(KINESIS_READ_ACTIONS),
                resources=[self._stream.stream_arn],
            )
        )
        if props.existing_stream is not None and props.existing_stream.encryption_key:
            props.existing_stream.encryption_key.grant(role, "kms:Decrypt")
        on_failure: lambda_.IEventSourceDlq
        if self._on_failure_queue is not None:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="SendBatchFailuresToOnFailureQueue",
                    actions=["sqs:SendMessage"],
                    resources=[self._on_failure_queue.queue_arn],
                )
            )
            on_failure = _OnFailureDestination(self._on_failure_queue.queue_arn)
        else:
            assert self._failure_store is not None
            self._failure_store.grant_on_failure_records(role)
            on_failure = _OnFailureDestination(self._failure_store.bucket.bucket_arn)

        self._consumer: kinesis.StreamConsumer | None = None
        if props.enhanced_fan_out:
            self._consumer = kinesis.StreamConsumer(
                self,
                "Consumer",
                stream=self._stream,
                stream_consumer_name=Names.unique_resource_name(self, max_length=128),
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="SubscribeToStreamConsumer",
                    actions=list(KINESIS_CONSUMER_ACTIONS),
                    resources=[self._consumer.stream_consumer_arn],
                )
            )
        self._event_source_mapping = lambda_.EventSourceMapping(
            self,
            "EventSourceMapping",
            target=self.function,
            event_source_arn=self._consumer.stream_consumer_arn
            if self._consumer
            else self._stream.stream_arn,
            starting_position=props.starting_position,
            batch_size=props.batch_size,
            max_batching_window=props.max_batching_window,
            parallelization_factor=props.parallelization_factor,
            bisect_batch_on_error=True,
            retry_attempts=props.retry_attempts,
            max_record_age=props.max_record_age,
            report_batch_item_failures=True,
            on_failure=on_failure,
            # Its event counts, OnFailureDestinationDeliveredEventCount among them: what the
            # on-failure alarm watches when the destination is a bucket.
            metrics_config=lambda_.MetricsConfig(metrics=[lambda_.MetricType.EVENT_COUNT]),
        )
        self._event_source_mapping.node.add_dependency(role)

        self._iterator_age_alarm = alarm(
            self,
            "IteratorAgeAlarm",
            metric=self.function.metric("IteratorAge", period=ALARM_PERIOD, statistic="Maximum"),
            threshold=props.iterator_age_alarm_threshold.to_milliseconds(),
            description="The Kinesis forwarder is falling behind its stream.",
            topic=props.alarm_topic,
        )
        if self._on_failure_queue is not None:
            self._on_failure_alarm = _waiting(
                self,
                "OnFailureQueueAlarm",
                self._on_failure_queue,
                "the Kinesis on-failure queue (batches given up after retries; metadata only)",
                props.alarm_topic,
            )
        else:
            self._on_failure_alarm = alarm(
                self,
                "OnFailureAlarm",
                metric=cloudwatch.Metric(
                    namespace="AWS/Lambda",
                    metric_name="OnFailureDestinationDeliveredEventCount",
                    dimensions_map={
                        "EventSourceMappingUUID": self._event_source_mapping.event_source_mapping_id
                    },
                    period=ALARM_PERIOD,
                    statistic="Sum",
                ),
                threshold=1,
                description="The Kinesis mapping gave records up after its retries: they are in "
                "the failure store under aws/lambda/, with their data; replay them (README, "
                "Replaying given-up Kinesis records) once the cause is fixed.",
                topic=props.alarm_topic,
            )
        self._dead_letter_alarm: cloudwatch.Alarm | None = None
        if self._dead_letter_queue is not None:
            self._dead_letter_alarm = _waiting(
                self,
                "DeadLetterQueueAlarm",
                self._dead_letter_queue,
                "the Kinesis forwarder's dead-letter queue (invalid records, with payload)",
                props.alarm_topic,
            )

    @property
    def stream(self) -> kinesis.IStream:
        """The stream read: the one created, or ``existing_stream``."""
        return self._stream

    @property
    def dead_letter_queue(self) -> sqs.Queue | None:
        """Invalid records, with their payload (``invalid_records='dead-letter'``)."""
        return self._dead_letter_queue

    @property
    def on_failure_queue(self) -> sqs.Queue | None:
        """With ``on_failure='sqs'``: the metadata of batches given up after retries."""
        return self._on_failure_queue

    @property
    def failure_store(self) -> FailureStore | None:
        """Large dead letters (``dead-letters/``) and, with ``on_failure='s3'``, the batches
        given up after retries (``aws/lambda/``)."""
        return self._failure_store

    @property
    def checkpoint(self) -> DeliveryCheckpoint | None:
        """The delivery checkpoint's table (``function.delivery_checkpoint``)."""
        return self._checkpoint

    @property
    def consumer(self) -> kinesis.StreamConsumer | None:
        """The stream consumer the mapping reads through (``enhanced_fan_out``)."""
        return self._consumer

    @property
    def forwarder(self) -> ForwarderFunction:
        return self._forwarder

    @property
    def function(self) -> lambda_.Function:
        return self._forwarder.function

    @property
    def event_source_mapping(self) -> lambda_.EventSourceMapping:
        return self._event_source_mapping

    @property
    def iterator_age_alarm(self) -> cloudwatch.Alarm:
        return self._iterator_age_alarm

    @property
    def on_failure_alarm(self) -> cloudwatch.Alarm:
        return self._on_failure_alarm

    @property
    def dead_letter_alarm(self) -> cloudwatch.Alarm | None:
        return self._dead_letter_alarm
