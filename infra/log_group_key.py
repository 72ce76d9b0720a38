"""A KMS key for log groups: one CloudWatch Logs of this Region may use for this account's groups.

``newLogGroupKmsKey=create`` makes one for the groups the forwarder creates. CloudWatch Logs
encrypts with the key itself, as the service principal ``logs.<region>.amazonaws.com``, so the
key policy lets that principal use it, but only for log groups of this account and Region (the
encryption context condition of the CloudWatch Logs user guide, "Encrypt log data using AWS
KMS"). Rotation is on; the key is kept when the stack is deleted, since the logs it encrypted
would be unreadable without it.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

__all__ = ["LogGroupKey"]


class LogGroupKey(Construct):
    """A customer managed key, rotated yearly, that CloudWatch Logs may use for this account's
    log groups in this Region."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description="CloudWatch Logs forwarder: the log groups it creates",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.{stack.url_suffix}")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
