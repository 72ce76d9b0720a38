"""The forwarder's reusable constructs, in one import; each lives in its own module.

In the manner of the AWS Solutions Constructs, each construct wires a source to the function with
safe defaults that a caller may override through a props dataclass:

- :class:`ForwarderFunction` (``infra.function``): the function (newest Python, arm64), its own
  role with least privilege (no managed policies, writes only to the allowed log groups), its own
  log group with a retention period, switchable X-Ray tracing, and alarms on errors, throttles and
  the function's ``RecordsFailed`` metric.
- :class:`SqsLogsForwarder` (``infra.sqs_forwarder``): an encrypted, TLS-only queue with a
  dead-letter queue (or your ``existing_queue``, standard or FIFO) and an event source mapping with
  partial batch responses.
- :class:`KinesisLogsForwarder` (``infra.kinesis_forwarder``): an encrypted stream (or your
  ``existing_stream``) and an event source mapping that bisects, bounds retries and record age,
  and sends what it gives up on to an on-failure queue; invalid records go to the function's own
  dead-letter queue so a poison record never blocks a shard.
- :class:`DeliveryCheckpoint` (``infra.delivery_checkpoint``): each source construct makes one for
  its function (``ForwarderFunctionProps.delivery_checkpoint``, on by default), a DynamoDB table
  that lets a record delivered again send only the events that have not landed.

What they create is exposed as read-only attributes (``queue``, ``function``, ``role``, the
alarms...). Props are checked when made: every problem is reported at once, in one ``ValueError``.

Use them in your own app::

    from infra.forwarder import ForwarderFunctionProps, SqsLogsForwarder, SqsLogsForwarderProps

    SqsLogsForwarder(self, "Logs", props=SqsLogsForwarderProps(
        function=ForwarderFunctionProps(allowed_log_groups=("/app/*",)),
    ))
"""

from infra.delivery_checkpoint import DeliveryCheckpoint
from infra.function import RUNTIME, ForwarderFunction, ForwarderFunctionProps, log_group_arns
from infra.kinesis_forwarder import (
    KINESIS_READ_ACTIONS,
    KinesisLogsForwarder,
    KinesisLogsForwarderProps,
)
from infra.sqs_forwarder import SQS_CONSUME_ACTIONS, SqsLogsForwarder, SqsLogsForwarderProps

__all__ = [
    "KINESIS_READ_ACTIONS",
    "RUNTIME",
    "SQS_CONSUME_ACTIONS",
    "DeliveryCheckpoint",
    "ForwarderFunction",
    "ForwarderFunctionProps",
    "KinesisLogsForwarder",
    "KinesisLogsForwarderProps",
    "SqsLogsForwarder",
    "SqsLogsForwarderProps",
    "log_group_arns",
]
