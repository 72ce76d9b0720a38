"""SQS -> the forwarder: a queue (created, or yours), its dead-letter queue, the function, the
event source mapping with partial batch responses, and alarms."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import (
    INVALID_RECORDS_POLICIES,
    sqs_batching_defaults,
    sqs_checkpoint_ttl,
    sqs_mapping_problems,
    sqs_visibility_default,
)
from infra.delivery_checkpoint import DeliveryCheckpoint
from infra.failure_store import FailureStore
from infra.function import ForwarderFunction, ForwarderFunctionProps
from infra.parts import encrypted_queue, failure_store_for, terminal_queue, waiting_messages_alarm

__all__ = ["SQS_CONSUME_ACTIONS", "SqsLogsForwarder", "SqsLogsForwarderProps"]

#: What the Lambda service needs to poll a queue for the function (AWSLambdaSQSQueueExecutionRole).
SQS_CONSUME_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")

_PROPS_NAMES = {
    "batch_size": "batch_size",
    "window": "max_batching_window",
    "visibility": "visibility_timeout",
    "timeout": "function.timeout",
}
#: How long a queue the construct creates keeps a message, unless told otherwise.
_RETENTION = Duration.days(4)
#: Settings of a queue the construct creates: they contradict an ``existing_queue``.
_QUEUE_SETTINGS = ("fifo", "max_receive_count", "visibility_timeout", "retention_period")


@dataclass(frozen=True)
class SqsLogsForwarderProps:
    """How the queue is read, and the queue to create unless ``existing_queue`` is given.

    As in the AWS Solutions Constructs, either ``existing_queue`` or the settings of a new queue
    (``fifo``, ``max_receive_count``, ``visibility_timeout``, ``retention_period``), not both.
    """

    function: ForwarderFunctionProps
    #: A queue of yours to read instead of creating one (standard or FIFO, as it says); its
    #: dead-letter set-up is yours. With its ``encryption_master_key``
    #: (``Queue.from_queue_attributes(key_arn=...)``) the function may decrypt with that key.
    existing_queue: sqs.IQueue | None = None
    #: Create a FIFO queue. Default: a standard one.
    fifo: bool | None = None
    #: Default 100 for a standard queue, 10 (the maximum) for FIFO.
    batch_size: int | None = None
    #: Default 5 s for a standard queue; FIFO queues have none.
    max_batching_window: Duration | None = None
    max_concurrency: int = 5
    #: Receives before the new queue moves a message to its dead-letter queue. Default 5.
    max_receive_count: int | None = None
    #: Default six times the function's timeout plus the batching window.
    visibility_timeout: Duration | None = None
    #: How long the new queue keeps a message. Default 4 days.
    retention_period: Duration | None = None
    #: The function's INVALID_RECORDS. With ``fail`` an invalid message is retried until the
    #: queue's redrive moves it to the dead-letter queue, payload and all.
    invalid_records: str = "fail"
    #: Where dead letters too large for SQS go (with ``dead-letter``); by default the construct
    #: makes its own.
    failure_store: FailureStore | None = None
    alarm_topic: sns.ITopic | None = None

    @property
    def is_fifo(self) -> bool:
        if self.existing_queue is not None:
            return self.existing_queue.fifo
        return bool(self.fifo)

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size or sqs_batching_defaults(self.is_fifo)[0]

    @property
    def effective_window_seconds(self) -> int:
        if self.max_batching_window is None:
            return sqs_batching_defaults(self.is_fifo)[1]
        return int(self.max_batching_window.to_seconds())

    def __post_init__(self) -> None:
        problems = []
        if self.invalid_records not in INVALID_RECORDS_POLICIES:
            problems.append(f"invalid_records: expected one of {INVALID_RECORDS_POLICIES}")
        if self.existing_queue is not None:
            given = [name for name in _QUEUE_SETTINGS if getattr(self, name) is not None]
            if given:
                problems.append(
                    f"{', '.join(given)}: settings of a new queue; an existing_queue keeps its own"
                )
        visibility = self.visibility_timeout
        problems += sqs_mapping_problems(
            fifo=self.is_fifo,
            batch_size=self.effective_batch_size,
            window_seconds=self.effective_window_seconds,
            visibility_seconds=None if visibility is None else int(visibility.to_seconds()),
            timeout_seconds=self.function.timeout.to_seconds(),
            names=_PROPS_NAMES,
        )
        if problems:
            raise ValueError("; ".join(problems))


class SqsLogsForwarder(Construct):
    """SQS -> the forwarder: queue, dead-letter queue, function, event source mapping, alarms."""

    def __init__(self, scope: Construct, id: str, *, props: SqsLogsForwarderProps) -> None:
        super().__init__(scope, id)
        fifo = props.is_fifo
        window_seconds = props.effective_window_seconds

        self._dead_letter_queue: sqs.Queue | None = None
        if props.existing_queue is not None:
            self._queue = props.existing_queue
        else:
            self._dead_letter_queue = encrypted_queue(self, "DeadLetterQueue", fifo=fifo)
            visibility = props.visibility_timeout or Duration.seconds(
                sqs_visibility_default(props.function.timeout.to_seconds(), window_seconds)
            )
            self._queue = encrypted_queue(
                self,
                "Queue",
                fifo=fifo,
                retention=props.retention_period or _RETENTION,
                visibility_timeout=visibility,
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=self._dead_letter_queue,
                    max_receive_count=props.max_receive_count or 5,
                ),
            )

        # Dead-lettering by the function goes to the queue's own DLQ when we made one.
        self._invalid_records_queue: sqs.IQueue | None = None
        if props.invalid_records == "dead-letter":
            self._invalid_records_queue = self._dead_letter_queue or terminal_queue(
                self, "InvalidRecordsQueue", fifo=fifo
            )

        self._failure_store = failure_store_for(self, props.invalid_records, props.failure_store)
        self._checkpoint: DeliveryCheckpoint | None = None
        if props.function.delivery_checkpoint:
            # A message comes back for as long as its queue keeps it.
            retention = None if props.existing_queue else (props.retention_period or _RETENTION)
            ttl = sqs_checkpoint_ttl(retention and retention.to_seconds())
            self._checkpoint = DeliveryCheckpoint(self, "Checkpoint", ttl=Duration.seconds(ttl))
        self._forwarder = ForwarderFunction(
            self,
            "Forwarder",
            props=props.function,
            source="sqs",
            invalid_records=props.invalid_records,
            dead_letter_queue=self._invalid_records_queue,
            failure_store=self._failure_store,
            checkpoint=self._checkpoint,
            alarm_topic=props.alarm_topic,
        )

        role = self._forwarder.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ConsumeSourceQueue",
                actions=list(SQS_CONSUME_ACTIONS),
                resources=[self._queue.queue_arn],
            )
        )
        if props.existing_queue is not None and props.existing_queue.encryption_master_key:
            props.existing_queue.encryption_master_key.grant(role, "kms:Decrypt")

        self._event_source_mapping = lambda_.EventSourceMapping(
            self,
            "EventSourceMapping",
            target=self.function,
            event_source_arn=self._queue.queue_arn,
            batch_size=props.effective_batch_size,
            max_batching_window=Duration.seconds(window_seconds) if window_seconds else None,
            max_concurrency=props.max_concurrency,
            report_batch_item_failures=True,
        )
        # The mapping is validated on creation: the role's policy must exist by then.
        self._event_source_mapping.node.add_dependency(role)

        self._dead_letter_alarm: cloudwatch.Alarm | None = None
        if self._dead_letter_queue is not None:
            self._dead_letter_alarm = waiting_messages_alarm(
                self,
                "DeadLetterQueueAlarm",
                self._dead_letter_queue,
                "the SQS source's dead-letter queue",
                props.alarm_topic,
            )
        elif self._invalid_records_queue is not None:
            self._dead_letter_alarm = waiting_messages_alarm(
                self,
                "InvalidRecordsQueueAlarm",
                self._invalid_records_queue,
                "the SQS forwarder's invalid-records queue",
                props.alarm_topic,
            )

    @property
    def queue(self) -> sqs.IQueue:
        """The queue read: the one created, or ``existing_queue``."""
        return self._queue

    @property
    def dead_letter_queue(self) -> sqs.Queue | None:
        """The created queue's dead-letter queue; None for an existing queue."""
        return self._dead_letter_queue

    @property
    def invalid_records_queue(self) -> sqs.IQueue | None:
        """Where the function dead-letters invalid records (``invalid_records='dead-letter'``):
        the dead-letter queue, or for an existing queue one of its own."""
        return self._invalid_records_queue

    @property
    def failure_store(self) -> FailureStore | None:
        return self._failure_store

    @property
    def checkpoint(self) -> DeliveryCheckpoint | None:
        """The delivery checkpoint's table (``function.delivery_checkpoint``)."""
        return self._checkpoint

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
    def dead_letter_alarm(self) -> cloudwatch.Alarm | None:
        """On a message waiting in the dead-letter (or invalid-records) queue."""
        return self._dead_letter_alarm
