"""Small building blocks the forwarder's constructs share: alarms, queues, the failure store."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import NAG_PREFIX
from infra.failure_store import FailureStore

ALARM_PERIOD = Duration.minutes(5)
#: How long a dead letter waits for a person: the longest SQS keeps a message.
DEAD_LETTER_RETENTION = Duration.days(14)


def alarm(
    scope: Construct,
    id: str,
    *,
    metric: cloudwatch.IMetric,
    threshold: float,
    description: str,
    topic: sns.ITopic | None,
    periods: int = 1,
) -> cloudwatch.Alarm:
    """An alarm at ``threshold`` or above in ``periods`` periods running; it notifies ``topic``
    on alarm and OK."""
    result = cloudwatch.Alarm(
        scope,
        id,
        metric=metric,
        threshold=threshold,
        evaluation_periods=periods,
        datapoints_to_alarm=periods,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=description,
    )
    if topic is not None:
        action = cloudwatch_actions.SnsAction(topic)
        result.add_alarm_action(action)
        result.add_ok_action(action)
    return result


def waiting_messages_alarm(
    scope: Construct, id: str, queue: sqs.IQueue, what: str, topic: sns.ITopic | None
) -> cloudwatch.Alarm:
    """An alarm as soon as one message waits in ``queue`` (a dead-letter destination)."""
    return alarm(
        scope,
        id,
        metric=queue.metric_approximate_number_of_messages_visible(
            period=ALARM_PERIOD, statistic="Maximum"
        ),
        threshold=1,
        description=f"Messages are waiting in {what}: inspect them, fix the cause, redrive.",
        topic=topic,
    )


def encrypted_queue(
    scope: Construct,
    id: str,
    *,
    fifo: bool,
    retention: Duration = DEAD_LETTER_RETENTION,
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


def terminal_queue(scope: Construct, id: str, *, fifo: bool) -> sqs.Queue:
    """An encrypted queue that is itself the end of the line: it has no dead-letter queue."""
    queue = encrypted_queue(scope, id, fifo=fifo)
    Validations.of(queue).acknowledge(
        Acknowledgment(
            id=f"{NAG_PREFIX}AwsSolutions-SQS3",
            reason="This queue is itself a dead-letter destination (the end of the line for "
            "records the forwarder gave up on); it is watched by an alarm and redriven by hand.",
        )
    )
    return queue


def failure_store_for(
    scope: Construct, invalid_records: str, given: FailureStore | None
) -> FailureStore | None:
    """The store for large dead letters: the one given, or a new one, when dead-lettering."""
    if invalid_records != "dead-letter":
        return None
    return given or FailureStore(scope, "FailureStore", retention=DEAD_LETTER_RETENTION)
