"""CDK context -> a typed, validated configuration.

Every option is a flat context key, set in ``cdk.json`` or on the command line with
``-c key=value``. Values from the command line always arrive as strings, values from ``cdk.json``
as JSON values; both are accepted. Every problem is reported at once, each naming its context key.

The defaults below are the ones ``cdk.json`` ships with (a test keeps the two in step), so a
context key that is absent behaves exactly like the documented default.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from forwarder.limits import LOG_GROUP_CLASSES, RETENTION_DAYS
from forwarder.settings import (
    OPTION_BY_VARIABLE,
    OPTIONS,
    Flag,
    Option,
    cross_check,
    parse_options,
)

_T = TypeVar("_T")
_FLAG = Flag()

__all__ = [
    "CONTEXT_DEFAULTS",
    "FAILURE_STORE_RETENTION_DAYS",
    "INVALID_RECORDS_POLICIES",
    "KINESIS_ON_FAILURE",
    "LOG_RETENTION_DAYS",
    "ON_FAILURE_PREFIX",
    "ConfigError",
    "ForwarderConfig",
    "FunctionConfig",
    "KinesisConfig",
    "SqsConfig",
    "glob_to_regex",
    "kinesis_checkpoint_ttl",
    "pattern_matches",
    "sqs_batching_defaults",
    "sqs_checkpoint_ttl",
    "sqs_mapping_problems",
    "sqs_visibility_default",
]

#: The forwarder's INVALID_RECORDS values.
INVALID_RECORDS_POLICIES: tuple[str, ...] = OPTION_BY_VARIABLE["INVALID_RECORDS"].kind.choices  # type: ignore[attr-defined]
#: How the CDK validation framework names cdk-nag's rules in acknowledgments.
NAG_PREFIX = "AwsSolutions::"

#: Retention periods CloudWatch Logs accepts (days); 0 means "never expire".
LOG_RETENTION_DAYS = (0, *RETENTION_DAYS)

#: The least memory that holds one full-size gzip record once decoded: the function decompresses
#: at most 16 MiB a record and a batch a twentieth of its memory (forwarder.records/settings).
MIN_MEMORY_MB = 320


_SQS_CONTEXT_KEYS = {
    "batch_size": "sqsBatchSize",
    "window": "sqsMaxBatchingWindowSeconds",
    "visibility": "sqsVisibilityTimeoutSeconds",
    "timeout": "timeoutSeconds",
}

_PARTITION = r"arn:aws[a-z-]*"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d"
_ACCOUNT = r"\d{12}"
_SQS_ARN = re.compile(rf"^{_PARTITION}:sqs:{_REGION}:{_ACCOUNT}:[A-Za-z0-9_-]{{1,75}}(?:\.fifo)?$")
_KINESIS_ARN = re.compile(
    rf"^{_PARTITION}:kinesis:{_REGION}:{_ACCOUNT}:stream/[A-Za-z0-9_.-]{{1,128}}$"
)
_KMS_KEY_ARN = re.compile(rf"^{_PARTITION}:kms:{_REGION}:{_ACCOUNT}:key/[A-Za-z0-9-]{{1,128}}$")
_SNS_ARN = re.compile(rf"^{_PARTITION}:sns:{_REGION}:{_ACCOUNT}:[A-Za-z0-9_-]{{1,256}}$")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")

#: ``"auto"`` (or null/empty) lets the construct pick a value that depends on other options.
AUTO = "auto"

#: The function's options by their context key (``INVALID_RECORDS`` has one per source).
CONTEXT_OPTIONS: dict[str, Option] = {key: o for o in OPTIONS for key in o.context}
_PER_SOURCE = frozenset({"sqsInvalidRecords", "kinesisInvalidRecords"})
#: Where a Kinesis mapping may put batches given up after retries (``kinesisOnFailure``).
KINESIS_ON_FAILURE = ("s3", "sqs")
#: Where Lambda writes an event source mapping's on-failure records in an S3 destination:
#: "aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>" (Lambda
#: developer guide, "Retain discarded batch records for a Kinesis Data Streams event source").
ON_FAILURE_PREFIX = "aws/lambda/"

#: Every context key this app reads, with its default (what ``cdk.json`` ships with): the
#: function's options from their table, and the stack's own.
CONTEXT_DEFAULTS: dict[str, Any] = {
    "stackName": "CloudWatchLogsForwarder",
    **{key: default for o in OPTIONS for key, default in o.context.items()},
    # The function.
    "memorySize": 512,
    "timeoutSeconds": 60,
    "logRetentionDays": 30,
    "logGroupClass": "STANDARD",
    "logKmsKeyArn": "",
    "newLogGroupKmsKey": "",
    "tracing": True,
    "deliveryCheckpoint": True,
    # Alarms.
    "alarmTopicArn": "",
    # The SQS source.
    "sqsEnabled": True,
    "sqsQueueArn": "",
    "sqsQueueKmsKeyArn": "",
    "sqsFifo": False,
    "sqsBatchSize": AUTO,
    "sqsMaxBatchingWindowSeconds": AUTO,
    "sqsMaxConcurrency": 5,
    "sqsMaxReceiveCount": 5,
    "sqsVisibilityTimeoutSeconds": AUTO,
    "sqsRetentionDays": 4,
    # The Kinesis source.
    "kinesisEnabled": False,
    "kinesisStreamArn": "",
    "kinesisStreamKmsKeyArn": "",
    "kinesisStreamMode": "provisioned",
    "kinesisShardCount": 1,
    "kinesisRetentionHours": 24,
    "kinesisMaxRecordSizeKiB": 1024,
    "kinesisBatchSize": 100,
    "kinesisMaxBatchingWindowSeconds": 1,
    "kinesisParallelizationFactor": 1,
    "kinesisMaxRetryAttempts": 3,
    "kinesisMaxRecordAgeSeconds": 3600,
    "kinesisStartingPosition": "TRIM_HORIZON",
    "kinesisIteratorAgeAlarmSeconds": 600,
    "kinesisOnFailure": "s3",
    "kinesisEnhancedFanOut": False,
}

#: Context keys without ':' that are not ours but are known to be set by the CDK CLI.
_FOREIGN_KEYS = frozenset({"cli-telemetry"})


class ConfigError(ValueError):
    """One or more context values are invalid; the message names every key at fault."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "invalid CDK context (see the README, Context options):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """The forwarder's glob: ``*`` any run of characters, ``?`` one character, nothing else."""
    body = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern
    )  # fmt: skip
    return re.compile(rf"^{body}$", re.DOTALL)


def pattern_matches(patterns: Sequence[str], name: str) -> bool:
    return any(glob_to_regex(p).match(name) for p in patterns)


#: A checkpoint outlives the longest time its record can come back by this much.
CHECKPOINT_MARGIN_SECONDS = 86400
#: The longest SQS keeps a message and Kinesis a record: what an existing source may keep.
SQS_MAX_RETENTION_SECONDS = 14 * 86400
KINESIS_MAX_RETENTION_SECONDS = 8760 * 3600
#: How long the failure store keeps what it holds (large dead letters, given-up Kinesis batches).
FAILURE_STORE_RETENTION_DAYS = 14


def sqs_checkpoint_ttl(retention_seconds: float | None) -> int:
    """CHECKPOINT_TTL_SECONDS of an SQS function: the queue's retention (None, an existing
    queue the app cannot read: the longest SQS allows) and a margin."""
    return int(retention_seconds or SQS_MAX_RETENTION_SECONDS) + CHECKPOINT_MARGIN_SECONDS


def kinesis_checkpoint_ttl(
    retention_seconds: float | None,
    max_record_age_seconds: float | None,
    replayable_seconds: float | None = None,
) -> int:
    """CHECKPOINT_TTL_SECONDS of a Kinesis function: no record comes back after the stream's
    retention (None: an existing stream, at most 365 days) or the mapping's maximum record age,
    whichever is shorter, unless it may be replayed from the failure store for longer
    (``replayable_seconds``: its retention, with the S3 on-failure destination); and a margin."""
    longest = retention_seconds or KINESIS_MAX_RETENTION_SECONDS
    if max_record_age_seconds is not None and max_record_age_seconds >= 0:
        longest = min(longest, max_record_age_seconds)
    longest = max(longest, replayable_seconds or 0)
    return int(longest) + CHECKPOINT_MARGIN_SECONDS


def sqs_batching_defaults(fifo: bool) -> tuple[int, int]:
    """Batch size and batching window (seconds) when none is given: for FIFO 10 (its maximum)
    and none (FIFO allows none), else 100 and 5 s."""
    return (10, 0) if fifo else (100, 5)


def sqs_visibility_default(timeout_seconds: float, window_seconds: int) -> int:
    """Six times the function's timeout plus the batching window (Lambda's advice), at most the
    12 h SQS allows."""
    return int(min(43200, 6 * timeout_seconds + window_seconds))


def sqs_mapping_problems(
    *,
    fifo: bool,
    batch_size: int,
    window_seconds: int,
    visibility_seconds: int | None,
    timeout_seconds: float,
    names: Mapping[str, str],
) -> list[str]:
    """What Lambda or SQS would refuse of a queue and its event source mapping, each problem
    named as the caller's user knows the setting (``names``: ``batch_size``, ``window``,
    ``visibility``, ``timeout``). ``visibility_seconds`` None: the default, always valid."""
    problems = []
    limit = 10 if fifo else 10000
    if not 1 <= batch_size <= limit:
        queue = "a FIFO queue" if fifo else "a standard queue"
        problems.append(f"{names['batch_size']}: expected an integer from 1 to {limit} for {queue}")
    if fifo and window_seconds:
        problems.append(f"{names['window']}: FIFO queues do not support a batching window; use 0")
    elif not fifo and batch_size > 10 and window_seconds < 1:
        problems.append(
            f"{names['window']}: must be at least 1 when {names['batch_size']} is above 10"
        )
    minimum = int(6 * timeout_seconds)
    if visibility_seconds is not None and visibility_seconds < minimum:
        problems.append(
            f"{names['visibility']}: {visibility_seconds} is less than six times the function's "
            f"timeout ({names['timeout']}={timeout_seconds:g}); use at least {minimum}"
        )
    return problems


@dataclass(frozen=True)
class FunctionConfig:
    """What every forwarder function shares: its environment, size and telemetry."""

    allowed_log_groups: tuple[str, ...]
    default_log_group: str | None
    default_log_stream: str | None
    create_log_streams: bool
    create_log_groups: bool
    new_log_group_retention_days: int | None
    new_log_group_kms_key_id: str | None
    new_log_group_class: str
    new_log_group_tags: tuple[tuple[str, str], ...]
    new_log_group_deletion_protection: bool
    subscription_log_group: str
    subscription_log_stream: str
    max_concurrent_requests: int
    memory_size: int
    timeout_seconds: int
    log_retention_days: int
    #: The class and KMS key of each function's own log group.
    log_group_class: str
    log_kms_key_arn: str | None
    #: ``create``: the stack makes the key of the groups the function creates.
    create_new_log_group_key: bool
    log_level: str
    tracing: bool
    service_name: str
    metrics_namespace: str
    #: A DynamoDB table per function, so that a record delivered again sends only what has
    #: not landed (``deliveryCheckpoint``).
    delivery_checkpoint: bool


@dataclass(frozen=True)
class SqsConfig:
    queue_arn: str | None
    queue_kms_key_arn: str | None
    fifo: bool
    batch_size: int
    max_batching_window_seconds: int
    max_concurrency: int
    max_receive_count: int
    visibility_timeout_seconds: int
    retention_days: int
    invalid_records: str


@dataclass(frozen=True)
class KinesisConfig:
    stream_arn: str | None
    stream_kms_key_arn: str | None
    on_demand: bool
    shard_count: int
    retention_hours: int
    batch_size: int
    max_batching_window_seconds: int
    parallelization_factor: int
    max_retry_attempts: int
    max_record_age_seconds: int
    starting_position: str
    invalid_records: str
    iterator_age_alarm_seconds: int
    #: Where the mapping puts batches given up after retries: ``s3`` (the records with their
    #: data, in the failure store) or ``sqs`` (their metadata only, in a queue).
    on_failure: str = "s3"
    #: Read through a registered stream consumer of its own (2 MB/s per shard, pushed).
    enhanced_fan_out: bool = False
    #: The largest record a stream the stack creates takes (``MaxRecordSizeInKiB``).
    max_record_size_kib: int = 1024


@dataclass(frozen=True)
class ForwarderConfig:
    stack_name: str
    function: FunctionConfig
    alarm_topic_arn: str | None
    sqs: SqsConfig | None
    kinesis: KinesisConfig | None

    @classmethod
    def from_scope(cls, scope: Any) -> ForwarderConfig:
        """Read the context of a construct (usually the ``App``)."""
        node = scope.node
        keys = set(CONTEXT_DEFAULTS) | set(node.get_all_context() or {})
        return cls.from_context({k: node.try_get_context(k) for k in keys})

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> ForwarderConfig:
        """Validate a mapping of context values (absent or null keys take their defaults)."""
        return _Reader(context).read()


class _Reader:
    """Reads each key once, collecting problems instead of stopping at the first."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self.context = context
        self.problems: list[str] = []

    # -- the whole configuration -----------------------------------------------------------------

    def read(self) -> ForwarderConfig:
        self._check_unknown_keys()
        function = self._function()
        topic = self.optional_string("alarmTopicArn", _SNS_ARN, "an SNS topic ARN")
        sqs = self._sqs(function) if self.boolean("sqsEnabled") else None
        kinesis = self._kinesis() if self.boolean("kinesisEnabled") else None
        if sqs is None and kinesis is None and not self.problems:
            self.problems.append("sqsEnabled / kinesisEnabled: enable at least one event source")
        config = ForwarderConfig(
            stack_name=self.string("stackName", _STACK_NAME, "a CloudFormation stack name"),
            function=function,
            alarm_topic_arn=topic,
            sqs=sqs,
            kinesis=kinesis,
        )
        if self.problems:
            raise ConfigError(self.problems)
        return config

    def _check_unknown_keys(self) -> None:
        for key in self.context:
            if key in CONTEXT_DEFAULTS or key in _FOREIGN_KEYS or ":" in key or "@" in key:
                continue
            close = difflib.get_close_matches(key, CONTEXT_DEFAULTS, n=1, cutoff=0.8)
            if close:
                self.problems.append(f"{key}: unknown context key; did you mean '{close[0]}'?")

    def _function(self) -> FunctionConfig:
        values = self.options([key for key in CONTEXT_OPTIONS if key not in _PER_SOURCE])
        patterns: tuple[str, ...] = values["allowed_log_groups"]  # type: ignore[assignment]
        sub_group: str = values["subscription_log_group"]  # type: ignore[assignment]
        if "{" not in sub_group and not pattern_matches(patterns, sub_group):
            self.problems.append(
                f"subscriptionLogGroup: {sub_group!r} is not admitted by allowedLogGroups"
            )
        retention = self.integer("logRetentionDays", 0, 3653)
        if retention not in LOG_RETENTION_DAYS:
            self.problems.append(
                f"logRetentionDays: {retention} is not a CloudWatch Logs retention period; "
                f"use one of {list(LOG_RETENTION_DAYS)} (0 = never expire)"
            )
        return FunctionConfig(
            allowed_log_groups=patterns,
            default_log_group=values["default_log_group"],  # type: ignore[arg-type]
            default_log_stream=values["default_log_stream"],  # type: ignore[arg-type]
            create_log_streams=values["create_log_streams"],  # type: ignore[arg-type]
            create_log_groups=values["create_log_groups"],  # type: ignore[arg-type]
            new_log_group_retention_days=values["new_log_group_retention_days"],  # type: ignore[arg-type]
            new_log_group_kms_key_id=values["new_log_group_kms_key_id"],  # type: ignore[arg-type]
            new_log_group_class=values["new_log_group_class"],  # type: ignore[arg-type]
            new_log_group_tags=values["new_log_group_tags"],  # type: ignore[arg-type]
            new_log_group_deletion_protection=values["new_log_group_deletion_protection"],  # type: ignore[arg-type]
            subscription_log_group=sub_group,
            subscription_log_stream=values["subscription_log_stream"],  # type: ignore[arg-type]
            max_concurrent_requests=values["max_concurrent_requests"],  # type: ignore[arg-type]
            memory_size=self._memory_size(),
            timeout_seconds=self.integer("timeoutSeconds", 1, 900),
            log_retention_days=retention,
            log_group_class=self.choice("logGroupClass", LOG_GROUP_CLASSES, upper=True),
            log_kms_key_arn=self.optional_string("logKmsKeyArn", _KMS_KEY_ARN, "a KMS key ARN"),
            create_new_log_group_key=self._new_log_group_key(values),
            log_level=values["POWERTOOLS_LOG_LEVEL"],  # type: ignore[arg-type]
            tracing=self.boolean("tracing"),
            service_name=values["POWERTOOLS_SERVICE_NAME"],  # type: ignore[arg-type]
            metrics_namespace=values["metrics_namespace"],  # type: ignore[arg-type]
            delivery_checkpoint=self.boolean("deliveryCheckpoint"),
        )

    def _sqs(self, function: FunctionConfig) -> SqsConfig:
        queue_arn = self.optional_string("sqsQueueArn", _SQS_ARN, "an SQS queue ARN")
        fifo = self.boolean("sqsFifo")
        if queue_arn:
            # An existing queue says what it is; the flag only matters for a queue we create.
            fifo = queue_arn.endswith(".fifo")
        batch_default, window_default = sqs_batching_defaults(fifo)
        batch_size = self.integer("sqsBatchSize", 1, 10000, auto=batch_default)
        window = self.integer("sqsMaxBatchingWindowSeconds", 0, 300, auto=window_default)
        visibility = self.integer(
            "sqsVisibilityTimeoutSeconds",
            0,
            43200,
            auto=sqs_visibility_default(function.timeout_seconds, window),
        )
        self.problems += sqs_mapping_problems(
            fifo=fifo,
            batch_size=batch_size,
            window_seconds=window,
            visibility_seconds=visibility,
            timeout_seconds=function.timeout_seconds,
            names=_SQS_CONTEXT_KEYS,
        )
        return SqsConfig(
            queue_arn=queue_arn,
            queue_kms_key_arn=self.optional_string(
                "sqsQueueKmsKeyArn", _KMS_KEY_ARN, "a KMS key ARN"
            ),
            fifo=fifo,
            batch_size=batch_size,
            max_batching_window_seconds=window,
            max_concurrency=self.integer("sqsMaxConcurrency", 2, 1000),
            max_receive_count=self.integer("sqsMaxReceiveCount", 1, 1000),
            visibility_timeout_seconds=visibility,
            retention_days=self.integer("sqsRetentionDays", 1, 14),
            invalid_records=self.invalid_records("sqsInvalidRecords"),
        )

    def _kinesis(self) -> KinesisConfig:
        stream_arn = self.optional_string("kinesisStreamArn", _KINESIS_ARN, "a Kinesis stream ARN")
        mode = self.choice("kinesisStreamMode", ("provisioned", "on-demand"))
        max_record_age = self.integer("kinesisMaxRecordAgeSeconds", -1, 604800)
        if 0 <= max_record_age < 60:
            self.problems.append(
                "kinesisMaxRecordAgeSeconds: must be -1 (no limit) or between 60 and 604800"
            )
        max_record_size = self.integer("kinesisMaxRecordSizeKiB", 1024, 10240)
        if stream_arn and max_record_size != CONTEXT_DEFAULTS["kinesisMaxRecordSizeKiB"]:
            self.problems.append(
                "kinesisMaxRecordSizeKiB: a setting of a stream the stack creates; the stream of "
                "kinesisStreamArn keeps its own (aws kinesis update-max-record-size)"
            )
        return KinesisConfig(
            stream_arn=stream_arn,
            stream_kms_key_arn=self.optional_string(
                "kinesisStreamKmsKeyArn", _KMS_KEY_ARN, "a KMS key ARN"
            ),
            on_demand=mode == "on-demand",
            shard_count=self.integer("kinesisShardCount", 1, 500),
            retention_hours=self.integer("kinesisRetentionHours", 24, 8760),
            batch_size=self.integer("kinesisBatchSize", 1, 10000),
            max_batching_window_seconds=self.integer("kinesisMaxBatchingWindowSeconds", 0, 300),
            parallelization_factor=self.integer("kinesisParallelizationFactor", 1, 10),
            max_retry_attempts=self.integer("kinesisMaxRetryAttempts", -1, 10000),
            max_record_age_seconds=max_record_age,
            starting_position=self.choice(
                "kinesisStartingPosition", ("TRIM_HORIZON", "LATEST"), upper=True
            ),
            invalid_records=self.invalid_records("kinesisInvalidRecords"),
            iterator_age_alarm_seconds=self.integer("kinesisIteratorAgeAlarmSeconds", 1, 604800),
            on_failure=self.choice("kinesisOnFailure", KINESIS_ON_FAILURE),
            enhanced_fan_out=self.boolean("kinesisEnhancedFanOut"),
            max_record_size_kib=max_record_size,
        )

    # -- the function's options, by the rules of their table ------------------------------------

    def options(self, keys: Sequence[str]) -> dict[str, object]:
        """The function options set by ``keys``: each parsed as the function parses it at cold
        start, then the rules between them; problems are named by context key."""
        texts: dict[str, str | None] = {}
        key_of: dict[str, str] = {}
        for key in keys:
            option = CONTEXT_OPTIONS[key]
            key_of[option.field or option.variable] = key
            try:
                texts[option.variable] = option.kind.from_context(self.raw(key))
            except ValueError as error:
                self.problems.append(f"{key}: {error}")
                texts[option.variable] = None
        values, problems = parse_options(texts, lambda o: key_of[o.field or o.variable])
        self.problems += problems
        self.problems += cross_check(values, lambda field: key_of.get(field, field))
        return values

    def invalid_records(self, key: str) -> str:
        return str(self.options([key])["invalid_records"])

    # -- one value -------------------------------------------------------------------------------

    def raw(self, key: str) -> Any:
        value = self.context.get(key)
        return CONTEXT_DEFAULTS[key] if value is None else value

    def _typed(self, key: str, parse: Callable[[Any], _T], expected: str, fallback: _T) -> _T:
        value = self.raw(key)
        try:
            return parse(value)
        except (TypeError, ValueError):
            self.problems.append(f"{key}: expected {expected}, got {value!r}")
            return fallback

    def boolean(self, key: str) -> bool:
        """A flag of the stack's own, spelled as the function's flags are."""
        try:
            return _FLAG.parse(_FLAG.from_context(self.raw(key)))
        except ValueError as error:
            self.problems.append(f"{key}: {error}")
            return bool(CONTEXT_DEFAULTS[key])

    def integer(self, key: str, low: int, high: int, *, auto: int | None = None) -> int:
        value = self.raw(key)
        if auto is not None and (value == "" or str(value).strip().lower() == AUTO):
            return auto

        def parse(value: Any) -> int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            if isinstance(value, int | float):
                return int(value)
            text = str(value).strip()
            if not re.fullmatch(r"-?\d+", text):
                raise ValueError(value)
            return int(text)

        hint = f"an integer from {low} to {high}" + (" or 'auto'" if auto is not None else "")
        number = self._typed(key, parse, hint, max(low, 1) if auto is None else auto)
        if not low <= number <= high:
            self.problems.append(f"{key}: expected {hint}, got {value!r}")
            return min(max(number, low), high)
        return number

    def string(self, key: str, rule: re.Pattern[str], what: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str) or not rule.match(value.strip()):
            self.problems.append(f"{key}: expected {what}, got {value!r}")
            return str(CONTEXT_DEFAULTS[key])
        return value.strip()

    def optional_string(self, key: str, rule: re.Pattern[str], what: str) -> str | None:
        value = self.raw(key)
        if isinstance(value, str) and not value.strip():
            return None
        return self.string(key, rule, what) if value is not None else None

    def choice(self, key: str, options: Sequence[str], *, upper: bool = False) -> str:
        value = self.raw(key)
        text = str(value).strip()
        text = text.upper() if upper else text.lower()
        if text not in options:
            self.problems.append(f"{key}: expected one of {', '.join(options)}, got {value!r}")
            return options[0]
        return text

    def _new_log_group_key(self, values: Mapping[str, object]) -> bool:
        """``newLogGroupKmsKey=create``: only for groups the function creates, and instead of
        ``newLogGroupKmsKeyArn``."""
        value = self.raw("newLogGroupKmsKey")
        text = str(value or "").strip().lower()
        if text not in ("", "create"):
            self.problems.append(
                f'newLogGroupKmsKey: expected "create" or "" (none), got {value!r}'
            )
        create = text == "create"
        if create and not values.get("create_log_groups"):
            self.problems.append(
                "newLogGroupKmsKey: applies to the log groups the function creates, so it needs "
                "createLogGroups: true"
            )
        if create and values.get("new_log_group_kms_key_id"):
            self.problems.append(
                "newLogGroupKmsKey / newLogGroupKmsKeyArn: give a key or ask for one, not both"
            )
        return create

    def _memory_size(self) -> int:
        memory = self.integer("memorySize", 128, 10240)
        if 128 <= memory < MIN_MEMORY_MB:
            self.problems.append(
                f"memorySize: {memory} MB cannot decompress one full-size gzip record (16 MiB, "
                f"which takes about {MIN_MEMORY_MB} MB once decoded); use at least {MIN_MEMORY_MB}"
            )
        return memory
