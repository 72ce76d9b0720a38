"""The delivery checkpoint's table: what landed of the records a function reported failed, so
that a record delivered again sends only the events that have not (``forwarder.checkpoints``).

Safe defaults, as the AWS Solutions Constructs give a table: on-demand capacity (a happy batch
writes nothing, so there is nothing to provision for), encrypted at rest with the AWS owned key
(no key to pay for or to grant), point-in-time recovery on, and items that expire (TTL attribute
``expires``) after the longest time a record can come back. Removed with the stack, like the
queues: it holds no record, and losing it costs at most a duplicate.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from forwarder.checkpoints import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

__all__ = ["CHECKPOINT_ACTIONS", "DeliveryCheckpoint"]

#: What ``forwarder.checkpoint_store`` calls, and nothing else.
CHECKPOINT_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:Query")
_TEXT = dynamodb.AttributeType.STRING


class DeliveryCheckpoint(Construct):
    """A DynamoDB table of checkpoints, kept ``ttl`` (the function's CHECKPOINT_TTL_SECONDS)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        ttl: Duration,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id)
        self._ttl = ttl
        self._table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.DEFAULT,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            removal_policy=removal_policy,
        )

    @property
    def table(self) -> dynamodb.Table:
        return self._table

    @property
    def ttl(self) -> Duration:
        """How long a checkpoint is kept: the longest a record can come back, and a day."""
        return self._ttl

    def grant_checkpoints(self, role: iam.IRole) -> None:
        """Let ``role`` read and write checkpoints in this table and nowhere else
        (``Table.grant_read_write_data`` would add scans, deletes and updates)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DeliveryCheckpoint",
                actions=list(CHECKPOINT_ACTIONS),
                resources=[self._table.table_arn],
            )
        )
