"""The failure store: an S3 bucket for what the forwarder gives up on and SQS cannot carry.

It holds dead letters larger than an SQS message (``dead-letters/``: the function writes the
letter there and puts the SQS extended client's pointer in the dead-letter queue), and the
Kinesis mapping's on-failure records (``aws/lambda/``: Lambda writes each batch it gives up after
its retries there, the records' data included, under a key of its own choosing).

Safe defaults, as the AWS Solutions Constructs give a bucket: encrypted at rest (SSE-S3), TLS
only, every public access blocked, objects owned by the bucket owner, versions kept (a letter
written again keeps the first), expiry after ``retention`` (current and noncurrent versions
alike), and retained when the stack is deleted: it holds the only copy of those records.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import FAILURE_STORE_RETENTION_DAYS, NAG_PREFIX, ON_FAILURE_PREFIX

__all__ = ["DEAD_LETTER_PREFIX", "ON_FAILURE_PREFIX", "FailureStore"]

#: Where large dead letters go (``forwarder.dead_letters.KEY_PREFIX``).
DEAD_LETTER_PREFIX = "dead-letters/"


class FailureStore(Construct):
    """An encrypted, TLS-only, private S3 bucket whose objects expire after ``retention``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        retention: Duration | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, id)
        retention = retention or Duration.days(FAILURE_STORE_RETENTION_DAYS)
        #: How long an object is kept (its current version).
        self.retention = retention
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireFailures",
                    expiration=retention,
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        Validations.of(self.bucket).acknowledge(
            Acknowledgment(
                id=f"{NAG_PREFIX}AwsSolutions-S1",
                reason="Server access logs would need a second bucket for a store written only "
                "by the forwarder's own role; CloudTrail data events are the audit trail to use "
                "if one is needed.",
            )
        )

    def grant_dead_letters(self, role: iam.IRole) -> None:
        """Let ``role`` write dead letters, and nothing else: s3:PutObject under the prefix
        (``Bucket.grant_put`` would add tagging, retention and legal-hold actions)."""
        self._grant_put(
            role,
            "StoreLargeDeadLetters",
            DEAD_LETTER_PREFIX,
            "The function names each large dead letter by its record's id when it writes it; the "
            "wildcard is that key, under the dead-letters/ prefix of this one bucket, for "
            "s3:PutObject alone.",
        )

    def grant_on_failure_records(self, role: iam.IRole) -> None:
        """Let ``role`` (the function's, which Lambda's event source mapping uses) write the
        mapping's on-failure records: s3:PutObject under their prefix and s3:ListBucket, the
        two the Lambda developer guide names for an S3 destination."""
        self._grant_put(
            role,
            "WriteBatchFailuresToFailureStore",
            ON_FAILURE_PREFIX,
            "Lambda names each on-failure record by the mapping, shard, date and a random UUID "
            "when it writes it; the wildcard is that key, under the aws/lambda/ prefix of this "
            "one bucket, for s3:PutObject alone.",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListFailureStoreForOnFailureRecords",
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
            )
        )

    def _grant_put(self, role: iam.IRole, sid: str, prefix: str, why: str) -> None:
        """s3:PutObject for ``role`` under ``prefix``, its key wildcard acknowledged to
        cdk-nag by name with ``why``."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=sid,
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{prefix}*")],
            )
        )
        stack = Stack.of(self)
        bucket = stack.resolve(stack.get_logical_id(self.bucket.node.default_child))
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"{NAG_PREFIX}AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{prefix}*]",
                reason=why,
            )
        )
