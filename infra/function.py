"""The forwarder function: its code, role with least privilege, log group and alarms."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Annotations, ArnFormat, Duration, Stack, Token, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
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
from infra.delivery_checkpoint import DeliveryCheckpoint
from infra.failure_store import FailureStore
from infra.parts import ALARM_PERIOD, alarm

__all__ = [
    "ARCHITECTURE",
    "RUNTIME",
    "ForwarderFunction",
    "ForwarderFunctionProps",
    "log_group_arns",
]

#: The newest Python that CDK, Lambda and Powertools support (cdk-nag's AwsSolutions-L1 agrees).
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64

_SOURCE_LABELS = {"sqs": "SQS", "kinesis": "Kinesis"}
#: Five-minute periods of checkpoint problems in a row before its alarm fires.
CHECKPOINT_ALARM_PERIODS = 3


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
    #: How a group the function creates is made (only with ``create_log_groups``): retention
    #: (grants ``logs:PutRetentionPolicy``), a KMS key ARN (its key policy must let the Region's
    #: CloudWatch Logs use it), the class, tags (grants ``logs:TagResource``) and deletion
    #: protection (grants ``logs:PutLogGroupDeletionProtection``). A group that exists is never
    #: changed.
    new_log_group_retention_days: int | None = None
    new_log_group_kms_key_id: str | None = None
    new_log_group_class: str = "STANDARD"
    new_log_group_tags: tuple[tuple[str, str], ...] = ()
    new_log_group_deletion_protection: bool = False
    subscription_log_group: str = "{logGroup}"
    subscription_log_stream: str = "{logStream}"
    max_concurrent_requests: int = 8
    memory_size: int = 512
    timeout: Duration = dataclasses.field(default_factory=lambda: Duration.seconds(60))
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    #: The class of the function's own log group. ``INFREQUENT_ACCESS`` makes no metrics of the
    #: function's EMF lines, so its metrics and the alarms on them go dark (a warning says so).
    log_group_class: str = "STANDARD"
    #: A KMS key for the function's own log group (its policy must let CloudWatch Logs use it).
    log_encryption_key: kms.IKey | None = None
    log_level: str = "INFO"
    tracing: bool = True
    #: Each function's ``POWERTOOLS_SERVICE_NAME`` is this name plus ``-sqs`` or ``-kinesis``.
    service_name: str = "cloudwatch-logs-forwarder"
    metrics_namespace: str = "CloudWatchLogsForwarder"
    #: A checkpoint table per function (``infra.delivery_checkpoint``): a record delivered again
    #: sends only the events that have not landed. False: at-least-once, and no table.
    delivery_checkpoint: bool = True
    #: The function's code; by default ``lambda_src`` bundled with pip (see ``infra.bundling``).
    code: lambda_.Code | None = None

    def __post_init__(self) -> None:
        if isinstance(self.allowed_log_groups, str):
            raise ValueError("allowed_log_groups: give a sequence of patterns, not one string")
        # The function's own rules, from its option table, named by field.
        values = shared_options(self)
        # A value known only at deploy (a key the stack makes) is the stack's own to get right.
        texts = {
            v: None
            if x is None or (isinstance(x, str) and Token.is_unresolved(x))
            else _OPTION[v].kind.text(x)
            for v, x in values.items()
        }
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
    With a ``checkpoint`` the function reads and writes its table (``CHECKPOINT_TABLE``).
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
        checkpoint: DeliveryCheckpoint | None = None,
        alarm_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, id)
        problems = []
        if invalid_records not in INVALID_RECORDS_POLICIES:
            problems.append(f"invalid_records: expected one of {INVALID_RECORDS_POLICIES}")
        if invalid_records == "dead-letter" and dead_letter_queue is None:
            problems.append("invalid_records='dead-letter' needs a dead_letter_queue")
        if problems:
            raise ValueError("; ".join(problems))
        self._props = props
        self._service_name = f"{props.service_name}-{source}"
        label = _SOURCE_LABELS.get(source, source)

        self._log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=props.log_retention,
            log_group_class=None
            if props.log_group_class == "STANDARD"
            else logs.LogGroupClass(props.log_group_class),
            encryption_key=props.log_encryption_key,
        )
        if props.log_group_class == "INFREQUENT_ACCESS":
            Annotations.of(self).add_warning_v2(
                "forwarder:OwnLogsInfrequentAccess",
                "log_group_class INFREQUENT_ACCESS: an Infrequent Access group extracts no "
                "metrics from EMF, so the forwarder's metrics and the alarms on RecordsFailed "
                "and CheckpointProblems never fire",
            )
        self._role = iam.Role(
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
            checkpoint_table=checkpoint.table.table_name if checkpoint else None,
            checkpoint_ttl_seconds=int(checkpoint.ttl.to_seconds()) if checkpoint else None,
        )

        self._function = lambda_.Function(
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
            # What making a group as NEW_LOG_GROUP_* asks takes, on the same groups only.
            if props.new_log_group_retention_days is not None:
                forward_actions.append("logs:PutRetentionPolicy")
            if props.new_log_group_tags:
                forward_actions.append("logs:TagResource")
            if props.new_log_group_deletion_protection:
                forward_actions.append("logs:PutLogGroupDeletionProtection")
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
        if checkpoint is not None:
            checkpoint.grant_checkpoints(self.role)
        self._acknowledge_wildcards()

        self._errors_alarm = alarm(
            self,
            "ErrorsAlarm",
            metric=self.function.metric_errors(period=ALARM_PERIOD, statistic="Sum"),
            threshold=1,
            description=f"The {label} forwarder raised errors: its batches are being retried.",
            topic=alarm_topic,
        )
        self._throttles_alarm = alarm(
            self,
            "ThrottlesAlarm",
            metric=self.function.metric_throttles(period=ALARM_PERIOD, statistic="Sum"),
            threshold=1,
            description=f"The {label} forwarder was throttled: raise its concurrency or quota.",
            topic=alarm_topic,
        )
        self._records_failed_alarm = alarm(
            self,
            "RecordsFailedAlarm",
            metric=self.metric_records_failed(),
            threshold=1,
            description=f"The {label} forwarder reported records it could not deliver.",
            topic=alarm_topic,
        )
        # A checkpoint that fails costs no record, so one bad period is no news; three running
        # are a table gone, access denied or lasting throttling, and duplicates meanwhile.
        self._checkpoint_alarm: cloudwatch.Alarm | None = None
        if checkpoint is not None:
            self._checkpoint_alarm = alarm(
                self,
                "CheckpointProblemsAlarm",
                metric=self._own_metric("CheckpointProblems"),
                threshold=1,
                description=f"The {label} forwarder's delivery checkpoint has been failing for "
                "15 minutes (table missing, access denied, throttling?): records still land, "
                "but those delivered again may land twice. See its 'delivery checkpoint "
                "degraded' log lines.",
                topic=alarm_topic,
                periods=CHECKPOINT_ALARM_PERIODS,
            )

    @property
    def props(self) -> ForwarderFunctionProps:
        return self._props

    @property
    def service_name(self) -> str:
        """Its ``POWERTOOLS_SERVICE_NAME``: the ``service`` dimension of its metrics."""
        return self._service_name

    @property
    def function(self) -> lambda_.Function:
        return self._function

    @property
    def role(self) -> iam.Role:
        return self._role

    @property
    def log_group(self) -> logs.LogGroup:
        """The function's own log group (not one it forwards to)."""
        return self._log_group

    @property
    def errors_alarm(self) -> cloudwatch.Alarm:
        return self._errors_alarm

    @property
    def throttles_alarm(self) -> cloudwatch.Alarm:
        return self._throttles_alarm

    @property
    def records_failed_alarm(self) -> cloudwatch.Alarm:
        return self._records_failed_alarm

    @property
    def checkpoint_alarm(self) -> cloudwatch.Alarm | None:
        """On ``CheckpointProblems`` in three periods running (with a checkpoint)."""
        return self._checkpoint_alarm

    def metric_records_failed(self) -> cloudwatch.Metric:
        """The function's own ``RecordsFailed`` count (Powertools EMF)."""
        return self._own_metric("RecordsFailed")

    def _own_metric(self, name: str) -> cloudwatch.Metric:
        """One of the function's own counts (Powertools EMF, dimension ``service``)."""
        return cloudwatch.Metric(
            namespace=self.props.metrics_namespace,
            metric_name=name,
            dimensions_map={"service": self.service_name},
            statistic="Sum",
            period=ALARM_PERIOD,
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
