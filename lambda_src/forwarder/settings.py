"""Configuration: every option of the function, in one table, and its validation.

``OPTIONS`` is the one place a function option is defined: its environment variable, the CDK
context key that sets it, its type, default, bounds and help text. ``Settings.from_env`` (once per
cold start), the CDK app's context defaults and validation, the construct's environment, the local
loop's defaults and the README's tables all derive from it, so a value is judged by the same rule
at synth and at cold start. A bad value raises ``ConfigurationError`` naming the variable and what
it accepts, so a misconfigured function fails at start, visibly, instead of mishandling records.

This module stays pure (no boto3, no CDK): ``infra`` imports it.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Protocol, cast

from forwarder.limits import (
    LOG_GROUP_CLASSES,
    LOG_GROUP_NAME_CHARS,
    LOG_STREAM_FORBIDDEN_CHARS,
    MAX_DECOMPRESSED_BYTES,
    MAX_NAME_LENGTH,
    MAX_TAG_KEY_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MAX_TAGS,
    RETENTION_DAYS,
)


class ConfigurationError(ValueError):
    """An environment variable holds a value the function cannot work with."""


class InvalidRecordPolicy(StrEnum):
    """What happens to a record that can never succeed (malformed, not allowed, too old)."""

    FAIL = "fail"  # reported in batchItemFailures: SQS redrive moves it to the queue's DLQ
    DEAD_LETTER = "dead-letter"  # payload and reason sent to DEAD_LETTER_QUEUE_URL
    DROP = "drop"  # logged and counted only


DEFAULT_METRICS_NAMESPACE = "CloudWatchLogsForwarder"
#: Decoded events take about ten times their bytes in memory (measured on a gzip bomb of tiny
#: events): a batch may decompress a twentieth of the function's memory.
DECODED_MEMORY_FACTOR = 20
SUBSCRIPTION_PLACEHOLDERS = frozenset({"logGroup", "logStream", "owner"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
#: S3's general purpose bucket naming rules (no "..", checked apart).
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: Only * and ? as wildcards: the same patterns become IAM resource ARNs, which know no more.
_PATTERN = re.compile(r"[\.\-_/#A-Za-z0-9*?]{1,512}")
#: CloudWatch namespaces and Powertools service names, as the CDK app has always accepted them.
_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,255}")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
#: A KMS key's ARN, as CreateLogGroup's kmsKeyId takes it.
_KMS_KEY_ARN = re.compile(
    r"arn:aws[a-z-]*:kms:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:key/[A-Za-z0-9-]{1,128}"
)
#: Tag keys and values (CloudWatch Logs' TagKey and TagValue, "[\p{L}\p{Z}\p{N}_.:/=+\-@]"):
#: letters, digits, the Unicode space separators (not tabs or line breaks) and _ . : / = + - @.
_TAG_TEXT = re.compile("[\\w .:/=+\\-@\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*")


# -- kinds of values -----------------------------------------------------------------------------


class Kind(Protocol):
    """How one option's text is read: ``parse`` raises ``ValueError`` with the reason."""

    @property
    def accepts(self) -> str:
        """What it accepts, for the README."""
        ...

    def parse(self, text: str) -> object: ...

    def text(self, value: object) -> str:
        """The environment text of a parsed value."""
        ...

    def from_context(self, value: object) -> str:
        """A CDK context value (JSON from ``cdk.json``, a string from ``-c``) as its text."""
        ...


class _Scalar:
    """A kind whose context value may be a JSON string or number, as written."""

    accepts = ""

    def text(self, value: object) -> str:
        return str(value)

    def from_context(self, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected {self.accepts}, got {value!r}")
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


@dataclass(frozen=True)
class Flag(_Scalar):
    accepts: str = "true or false"

    def parse(self, text: str) -> bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {text!r}")

    def text(self, value: object) -> str:
        return "true" if value else "false"

    def from_context(self, value: object) -> str:
        return self.text(value) if isinstance(value, bool) else super().from_context(value)


@dataclass(frozen=True)
class Whole(_Scalar):
    low: int
    high: int

    @property
    def accepts(self) -> str:  # type: ignore[override]
        return f"an integer from {self.low} to {self.high}"

    def parse(self, text: str) -> int:
        if not re.fullmatch(r"-?\d+", text) or not self.low <= int(text) <= self.high:
            raise ValueError(f"expected {self.accepts}, got {text!r}")
        return int(text)


@dataclass(frozen=True)
class Choice(_Scalar):
    choices: tuple[str, ...]
    upper: bool = False

    @property
    def accepts(self) -> str:  # type: ignore[override]
        return f"one of {', '.join(self.choices)}"

    def parse(self, text: str) -> str:
        value = text.upper() if self.upper else text.lower()
        if value not in self.choices:
            raise ValueError(f"expected {self.accepts}, got {text!r}")
        return value


@dataclass(frozen=True)
class Text(_Scalar):
    """Free text, or text that ``check`` accepts (it raises ``ValueError`` with the reason)."""

    accepts: str = "text"
    check: Callable[[str], None] | None = None

    def parse(self, text: str) -> str:
        if self.check is not None:
            self.check(text)
        return text


@dataclass(frozen=True)
class Days(_Scalar):
    """A retention period ``PutRetentionPolicy`` accepts, in days."""

    accepts: str = f"one of {', '.join(map(str, RETENTION_DAYS))} (days)"

    def parse(self, text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text) or int(text) not in RETENTION_DAYS:
            raise ValueError(f"expected {self.accepts}, got {text!r}")
        return int(text)


@dataclass(frozen=True)
class Tags:
    """Tags: a JSON object of string keys and values, within the API's tag rules. Parsed to
    sorted ``(key, value)`` pairs."""

    accepts: str = (
        f"a JSON object of up to {MAX_TAGS} string keys (1 to {MAX_TAG_KEY_LENGTH} characters, "
        f"not starting with `aws:`) and values (up to {MAX_TAG_VALUE_LENGTH})"
    )

    def parse(self, text: str) -> tuple[tuple[str, str], ...]:
        try:
            document = json.loads(text, object_pairs_hook=_without_repeated_keys)
        except json.JSONDecodeError as error:
            raise ValueError(f"expected a JSON object of tags ({error.msg})") from None
        if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
            raise ValueError(f"expected a JSON object of string values, got {text[:80]!r}")
        if len(document) > MAX_TAGS:
            raise ValueError(f"{len(document)} tags: at most {MAX_TAGS}")
        for key, value in document.items():
            if not 1 <= len(key) <= MAX_TAG_KEY_LENGTH or key.lower().startswith("aws:"):
                raise ValueError(
                    f"tag key {key[:40]!r}: 1 to {MAX_TAG_KEY_LENGTH} characters, not `aws:...`"
                )
            if len(value) > MAX_TAG_VALUE_LENGTH:
                raise ValueError(f"tag {key!r}: its value is over {MAX_TAG_VALUE_LENGTH}")
            if not _TAG_TEXT.fullmatch(key) or not _TAG_TEXT.fullmatch(value):
                raise ValueError(
                    f"tag {key[:40]!r}: letters, digits, spaces and _ . : / = + - @ only"
                )
        return tuple(sorted(document.items()))

    def text(self, value: object) -> str:
        return (
            value
            if isinstance(value, str)
            else json.dumps(dict(cast("Iterable[tuple[str, str]]", value)))
        )

    def from_context(self, value: object) -> str:
        if isinstance(value, dict):
            return json.dumps(value)
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a JSON object of tags, got {value!r}")


def _without_repeated_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object, refused when a key comes twice (``json`` would keep the last)."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"tag key {repeated[0]!r} is given twice")
    return dict(pairs)


@dataclass(frozen=True)
class Patterns:
    """Log group name globs: comma-separated in the environment, a list in the context."""

    accepts: str = "comma-separated glob patterns (`*`, `?` only, as in IAM)"

    def parse(self, text: str) -> tuple[str, ...]:
        patterns = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
        if not patterns:
            raise ValueError("expected at least one log group pattern, e.g. /app/*")
        for pattern in patterns:
            if not _PATTERN.fullmatch(pattern):
                raise ValueError(
                    f"{pattern!r} is not a log group name pattern (letters, digits, '.-_/#', and "
                    "the wildcards '*' and '?'; at most 512 characters)"
                )
        return patterns

    def text(self, value: object) -> str:
        return value if isinstance(value, str) else ",".join(cast("Iterable[str]", value))

    def from_context(self, value: object) -> str:
        items = value
        if isinstance(value, str):
            if not value.strip().startswith("["):
                return value
            try:
                items = json.loads(value)
            except json.JSONDecodeError:
                items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(
                f"expected a list of strings (JSON list or comma-separated), got {value!r}"
            )
        return ",".join(items)


@dataclass(frozen=True)
class Template(_Scalar):
    """A renaming template: only known placeholders, and a valid name when filled in."""

    check: Callable[[str], None]
    accepts: str = "a name with the placeholders `{logGroup}`, `{logStream}`, `{owner}`"

    def parse(self, text: str) -> str:
        try:
            parsed = [
                (name, spec, conversion) for _, name, spec, conversion in _FORMATTER.parse(text)
            ]
        except ValueError as error:
            raise ValueError(f"{text!r} is not a valid template ({error})") from None
        if any(spec or conversion for name, spec, conversion in parsed if name is not None):
            raise ValueError(
                f"{text!r}: placeholders take no conversion or format spec "
                "(write {logGroup}, not {logGroup!r} or {logGroup:.4})"
            )
        unknown = {name for name, _, _ in parsed if name is not None} - SUBSCRIPTION_PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {sorted(unknown)} in {text!r}; "
                "accepts {logGroup}, {logStream} and {owner}"
            )
        try:
            sample = text.format_map(_SAMPLE_NAMES)
            self.check(sample)
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise ValueError(f"{text!r} does not make a name when filled in: {error}") from None
        return text


_FORMATTER = string.Formatter()
#: Names as a subscription payload may carry them, to try a template on at start.
_SAMPLE_NAMES = {"logGroup": "/aws/sample-group", "logStream": "sample-stream", "owner": "1234"}


def _group_name(name: str) -> None:
    if len(name) > MAX_NAME_LENGTH or not set(name) <= LOG_GROUP_NAME_CHARS:
        raise ValueError(
            f"expected a log group name (1 to 512 letters, digits or . - _ / #), got {name!r}"
        )


def _stream_name(name: str) -> None:
    if len(name) > MAX_NAME_LENGTH or set(name) & LOG_STREAM_FORBIDDEN_CHARS:
        raise ValueError(
            f"expected a log stream name (1 to 512 characters, none of : or *), got {name!r}"
        )


def _bucket_name(name: str) -> None:
    if not _BUCKET_NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"{name!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit)"
        )


def _kms_key_arn(text: str) -> None:
    if not _KMS_KEY_ARN.fullmatch(text):
        raise ValueError(
            f"expected a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), got {text!r}"
        )


def _table_name(name: str) -> None:
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(
            f"expected a DynamoDB table name (3 to 255 letters, digits or _ . -), got {name!r}"
        )


def _name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"expected a name of letters, digits and _ . : / - (1 to 255), got {name!r}"
        )


# -- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option of the function: where it is set, what it accepts, what it means."""

    variable: str
    kind: Kind
    #: What the function uses when the variable is unset (or blank, if ``blank_is_default``).
    default: object
    help: str
    #: The ``Settings`` attribute, and the construct props' field of the same name; ``None``
    #: for a variable Powertools reads itself.
    field: str | None = None
    #: The CDK context keys that set it, with the defaults ``cdk.json`` ships; none when the
    #: stack sets it itself (a resource's name, a value derived from the timeout).
    context: Mapping[str, object] = dataclass_field(default_factory=dict)
    blank_is_default: bool = True

    def parse(self, text: str | None) -> object:
        """The value of the variable's text; raises ``ValueError`` with the reason."""
        if text is None or (self.blank_is_default and not text.strip()):
            return self.default
        return self.kind.parse(text.strip())


OPTIONS: tuple[Option, ...] = (
    Option(
        "DEFAULT_LOG_GROUP",
        Text("a log group name", _group_name),
        None,
        "destination of raw payloads (set both or neither; the group must match "
        "`ALLOWED_LOG_GROUPS`)",
        "default_log_group",
        {"defaultLogGroup": ""},
    ),
    Option(
        "DEFAULT_LOG_STREAM",
        Text("a log stream name", _stream_name),
        None,
        "its stream",
        "default_log_stream",
        {"defaultLogStream": ""},
    ),
    Option(
        "ALLOWED_LOG_GROUPS",
        Patterns(),
        ("*",),
        "the log groups the function may write to; other groups are invalid. The CDK app also "
        "makes them the resources of the function's IAM policy",
        "allowed_log_groups",
        {"allowedLogGroups": ["/app/*"]},
        blank_is_default=False,
    ),
    Option(
        "CREATE_LOG_STREAMS",
        Flag(),
        True,
        "create missing log streams (the CDK app grants `logs:CreateLogStream`)",
        "create_log_streams",
        {"createLogStreams": True},
    ),
    Option(
        "CREATE_LOG_GROUPS",
        Flag(),
        False,
        "create missing log groups, needs `CREATE_LOG_STREAMS=true` (the CDK app grants "
        "`logs:CreateLogGroup`)",
        "create_log_groups",
        {"createLogGroups": False},
    ),
    Option(
        "NEW_LOG_GROUP_RETENTION_DAYS",
        Days(),
        None,
        "retention of each log group the function creates, set right after it (unset: never "
        "expire; the CDK app grants `logs:PutRetentionPolicy`)",
        "new_log_group_retention_days",
        {"newLogGroupRetentionDays": ""},
    ),
    Option(
        "NEW_LOG_GROUP_KMS_KEY_ID",
        Text("a KMS key ARN", _kms_key_arn),
        None,
        "KMS key that encrypts each log group the function creates (its key policy must let "
        "the Region's CloudWatch Logs use it: see Log groups the forwarder creates)",
        "new_log_group_kms_key_id",
        {"newLogGroupKmsKeyArn": ""},
    ),
    Option(
        "NEW_LOG_GROUP_CLASS",
        Choice(LOG_GROUP_CLASSES, upper=True),
        "STANDARD",
        "class of each log group the function creates (`INFREQUENT_ACCESS`: about half the "
        "ingestion price, fewer features)",
        "new_log_group_class",
        {"newLogGroupClass": "STANDARD"},
    ),
    Option(
        "NEW_LOG_GROUP_TAGS",
        Tags(),
        (),
        "tags of each log group the function creates (the CDK app grants `logs:TagResource`)",
        "new_log_group_tags",
        {"newLogGroupTags": {}},
    ),
    Option(
        "NEW_LOG_GROUP_DELETION_PROTECTION",
        Flag(),
        False,
        "create log groups with deletion protection on (the CDK app grants "
        "`logs:PutLogGroupDeletionProtection`)",
        "new_log_group_deletion_protection",
        {"newLogGroupDeletionProtection": False},
    ),
    Option(
        "INVALID_RECORDS",
        Choice(("fail", "dead-letter", "drop")),
        "fail",
        "what happens to a record that can never succeed: see Failure policy",
        "invalid_records",
        {"sqsInvalidRecords": "fail", "kinesisInvalidRecords": "dead-letter"},
    ),
    Option(
        "DEAD_LETTER_QUEUE_URL",
        Text("an SQS queue URL"),
        None,
        "SQS queue for `dead-letter` (required by it; the CDK app creates it)",
        "dead_letter_queue_url",
    ),
    Option(
        "DEAD_LETTER_BUCKET",
        Text("an S3 bucket name", _bucket_name),
        None,
        "S3 bucket for dead letters over 1 MiB, pointed to from the queue (only with "
        "`dead-letter`; the CDK app creates it); without it such letters fail their record",
        "dead_letter_bucket",
    ),
    Option(
        "CHECKPOINT_TABLE",
        Text("a DynamoDB table name", _table_name),
        None,
        "DynamoDB table of the delivery checkpoint: a record delivered again sends only the "
        "events that have not landed (the CDK app creates it, one per function). Unset: "
        "at-least-once",
        "checkpoint_table",
    ),
    Option(
        "CHECKPOINT_TTL_SECONDS",
        Whole(3600, 400 * 86400),
        15 * 86400,
        "how long a checkpoint is kept: the longest a record can come back (the source's "
        "retention) and a day; the CDK app sets it",
        "checkpoint_ttl_seconds",
    ),
    Option(
        "MAX_CONCURRENT_REQUESTS",
        Whole(1, 64),
        8,
        "concurrent `PutLogEvents` calls",
        "max_concurrent_requests",
        {"maxConcurrentRequests": 8},
    ),
    Option(
        "SUBSCRIPTION_LOG_GROUP",
        Template(_group_name),
        "{logGroup}",
        "destination group of subscription payloads; placeholders `{logGroup}`, `{logStream}`, "
        "`{owner}`, with no conversion or format spec",
        "subscription_log_group",
        {"subscriptionLogGroup": "{logGroup}"},
    ),
    Option(
        "SUBSCRIPTION_LOG_STREAM",
        Template(_stream_name),
        "{logStream}",
        "destination stream of subscription payloads",
        "subscription_log_stream",
        {"subscriptionLogStream": "{logStream}"},
    ),
    Option(
        "TIME_RESERVE_MS",
        Whole(0, 600_000),
        3000,
        "time kept back from the Lambda deadline for dead letters and the response; the CDK app "
        "sets 3000 or a quarter of a shorter timeout. An invocation that starts with no more time "
        "than this fails with an error naming the variable (nothing could ever be sent)",
        "time_reserve_ms",
    ),
    Option(
        "AWS_RETRY_MODE",
        Choice(("standard", "adaptive")),
        "standard",
        "botocore's retry mode",
        "retry_mode",
    ),
    Option(
        "AWS_MAX_ATTEMPTS",
        Whole(1, 20),
        5,
        "botocore's attempts per call",
        "max_attempts",
    ),
    Option(
        "POWERTOOLS_METRICS_NAMESPACE",
        Text("a CloudWatch namespace", _name),
        DEFAULT_METRICS_NAMESPACE,
        "the namespace of the function's metrics",
        "metrics_namespace",
        {"metricsNamespace": DEFAULT_METRICS_NAMESPACE},
    ),
    Option(
        "POWERTOOLS_SERVICE_NAME",
        Text("a name", _name),
        "service_undefined",
        "the `service` dimension of the metrics and key of the logs (read by Powertools; the CDK "
        "app sets the context's value plus `-sqs` or `-kinesis`)",
        context={"serviceName": "cloudwatch-logs-forwarder"},
    ),
    Option(
        "POWERTOOLS_LOG_LEVEL",
        Choice(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True),
        "INFO",
        "the function's own log level (read by Powertools)",
        context={"logLevel": "INFO"},
    ),
)
OPTION_BY_VARIABLE: dict[str, Option] = {option.variable: option for option in OPTIONS}
#: The options that shape a created log group, with their defaults (they need CREATE_LOG_GROUPS).
NEW_LOG_GROUP_DEFAULTS: dict[str, object] = {
    str(o.field): o.default for o in OPTIONS if o.variable.startswith("NEW_LOG_GROUP_")
}
OPTION_BY_FIELD: dict[str, Option] = {o.field: o for o in OPTIONS if o.field is not None}
#: Every variable of the forwarder's own that ``from_env`` reads (tests and benchmarks clear them).
VARIABLES = tuple(option.variable for option in OPTIONS if option.field is not None)


def parse_options(
    texts: Mapping[str, str | None], name: Callable[[Option], str]
) -> tuple[dict[str, object], list[str]]:
    """Parse the text of each option named in ``texts`` (by variable; ``None``: unset).

    Returns the values by option field (or variable, for Powertools' own) and every problem, each
    as ``"<name>: <reason>"`` with the option named by ``name`` (a variable or a context key).
    A value at fault takes its default, so the rules between options still run.
    """
    values: dict[str, object] = {}
    problems: list[str] = []
    for variable, text in texts.items():
        option = OPTION_BY_VARIABLE[variable]
        try:
            value = option.parse(text)
        except ValueError as error:
            problems.append(f"{name(option)}: {error}")
            value = option.default
        values[option.field or option.variable] = value
    return values, problems


def cross_check(values: Mapping[str, object], name: Callable[[str], str]) -> list[str]:
    """The rules between options, on the values by field that ``values`` holds; ``name`` names
    a field as its reader knows it (a variable, a context key, a props field)."""
    problems = []
    if "default_log_group" in values:
        group, stream = values["default_log_group"], values.get("default_log_stream")
        allowed: Sequence[str] = values.get("allowed_log_groups", ("*",))  # type: ignore[assignment]
        if (group is None) != (stream is None):
            problems.append(
                f"{name('default_log_group')} / {name('default_log_stream')}: the function needs "
                "both or neither"
            )
        if isinstance(group, str) and not any(fnmatchcase(group, p) for p in allowed):
            problems.append(
                f"{name('default_log_group')}: {group!r} is not admitted by "
                f"{name('allowed_log_groups')} ({','.join(allowed)}): every raw record would be "
                "refused"
            )
    if values.get("create_log_groups") and not values.get("create_log_streams", True):
        problems.append(
            f"{name('create_log_groups')}: true needs {name('create_log_streams')}: true; a group "
            "created without its stream can never receive events"
        )
    new_group = [
        field
        for field, default in NEW_LOG_GROUP_DEFAULTS.items()
        if values.get(field, default) != default
    ]
    if new_group and not values.get("create_log_groups"):
        problems.append(
            f"{', '.join(name(f) for f in new_group)}: applies to the log groups the function "
            f"creates, so it needs {name('create_log_groups')}: true"
        )
    # Only where the reader holds the queue's URL: the CDK app sets it itself.
    queue_missing = "dead_letter_queue_url" in values and values["dead_letter_queue_url"] is None
    if values.get("invalid_records") == "dead-letter" and queue_missing:
        problems.append(
            f"{name('invalid_records')}=dead-letter needs {name('dead_letter_queue_url')} "
            "(an SQS queue URL)"
        )
    return problems


def environment(values: Mapping[str, object]) -> dict[str, str]:
    """The function's environment for option values keyed by variable; ``None`` is left out."""
    return {
        variable: OPTION_BY_VARIABLE[variable].kind.text(value)
        for variable, value in values.items()
        if value is not None
    }


@dataclass(frozen=True, slots=True)
class Settings:
    """Typed configuration of the forwarder. Defaults are the documented ones (``OPTIONS``)."""

    default_log_group: str | None = None
    default_log_stream: str | None = None
    allowed_log_groups: tuple[str, ...] = ("*",)
    create_log_streams: bool = True
    create_log_groups: bool = False
    #: How a log group the function creates is made (``NEW_LOG_GROUP_*``).
    new_log_group_retention_days: int | None = None
    new_log_group_kms_key_id: str | None = None
    new_log_group_class: str = "STANDARD"
    new_log_group_tags: tuple[tuple[str, str], ...] = ()
    new_log_group_deletion_protection: bool = False
    invalid_records: InvalidRecordPolicy = InvalidRecordPolicy.FAIL
    dead_letter_queue_url: str | None = None
    #: Where a dead letter too large for SQS goes, with a pointer in the queue.
    dead_letter_bucket: str | None = None
    #: The delivery checkpoint's table; None: at-least-once.
    checkpoint_table: str | None = None
    checkpoint_ttl_seconds: int = 15 * 86400
    max_concurrent_requests: int = 8
    subscription_log_group: str = "{logGroup}"
    subscription_log_stream: str = "{logStream}"
    time_reserve_ms: int = 3000
    retry_mode: str = "standard"
    max_attempts: int = 5
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    decompression_budget_bytes: int = 1024 * 1024 * 1024 // DECODED_MEMORY_FACTOR
    #: What the first gzip record of a batch may expand to: the per-record bound, or the whole
    #: budget where the function's memory is smaller.
    decompression_allowance_bytes: int = MAX_DECOMPRESSED_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate every option; raise ``ConfigurationError`` naming each bad one."""
        values, problems = parse_options(
            {variable: env.get(variable) for variable in VARIABLES}, lambda o: o.variable
        )
        problems += cross_check(values, lambda field: OPTION_BY_FIELD[field].variable)
        try:
            # Lambda's own variable; 1024 MB when run elsewhere.
            memory_mb = int(_MEMORY.parse(env.get(_MEMORY.variable)))  # type: ignore[call-overload]
        except ValueError as error:
            problems.append(f"{_MEMORY.variable}: {error}")
            memory_mb = 1024
        if problems:
            raise ConfigurationError("\n".join(problems))
        budget = memory_mb * 1024 * 1024 // DECODED_MEMORY_FACTOR
        values["invalid_records"] = InvalidRecordPolicy(str(values["invalid_records"]))
        return cls(
            **values,  # type: ignore[arg-type]
            decompression_budget_bytes=budget,
            decompression_allowance_bytes=min(MAX_DECOMPRESSED_BYTES, budget),
        )


_MEMORY = Option(
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", Whole(128, 10_240), 1024, "set by Lambda", "memory_mb"
)


def check_time_reserve(settings: Settings, remaining_ms: int) -> None:
    """Refuse a time reserve that leaves no time to send: with ``remaining_ms`` at the start of
    an invocation (the function's timeout) not above it, every record would be out of time on
    every delivery."""
    if remaining_ms <= settings.time_reserve_ms:
        raise ConfigurationError(
            f"TIME_RESERVE_MS={settings.time_reserve_ms} leaves no time to send: the invocation "
            f"started with {remaining_ms} ms left; set it below a quarter of the function's "
            "timeout, or raise the timeout"
        )
