"""Configuration: every environment variable the function reads, its default and its validation.

``Settings.from_env`` runs once per cold start. A bad value raises ``ConfigurationError`` naming
the variable and what it accepts, so a misconfigured function fails at start, visibly, instead of
mishandling records.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase

from forwarder.limits import (
    LOG_GROUP_NAME_CHARS,
    LOG_STREAM_FORBIDDEN_CHARS,
    MAX_DECOMPRESSED_BYTES,
    MAX_NAME_LENGTH,
)


class ConfigurationError(ValueError):
    """An environment variable holds a value the function cannot work with."""


class InvalidRecordPolicy(StrEnum):
    """What happens to a record that can never succeed (malformed, not allowed, too old)."""

    FAIL = "fail"  # reported in batchItemFailures: SQS redrive moves it to the queue's DLQ
    DEAD_LETTER = "dead-letter"  # payload and reason sent to DEAD_LETTER_QUEUE_URL
    DROP = "drop"  # logged and counted only


#: Every variable of the forwarder's own that ``from_env`` reads (tests and benchmarks clear them).
VARIABLES = (
    "DEFAULT_LOG_GROUP",
    "DEFAULT_LOG_STREAM",
    "ALLOWED_LOG_GROUPS",
    "CREATE_LOG_STREAMS",
    "CREATE_LOG_GROUPS",
    "INVALID_RECORDS",
    "DEAD_LETTER_QUEUE_URL",
    "DEAD_LETTER_BUCKET",
    "MAX_CONCURRENT_REQUESTS",
    "SUBSCRIPTION_LOG_GROUP",
    "SUBSCRIPTION_LOG_STREAM",
    "TIME_RESERVE_MS",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
)
DEFAULT_METRICS_NAMESPACE = "CloudWatchLogsForwarder"
#: Decoded events take about ten times their bytes in memory (measured on a gzip bomb of tiny
#: events): a batch may decompress a twentieth of the function's memory.
DECODED_MEMORY_FACTOR = 20
SUBSCRIPTION_PLACEHOLDERS = frozenset({"logGroup", "logStream", "owner"})
_TRUE = frozenset({"true", "1", "yes", "on"})
#: S3's general purpose bucket naming rules (no "..", checked apart).
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class Settings:
    """Typed configuration of the forwarder. Defaults are the documented ones."""

    default_log_group: str | None = None
    default_log_stream: str | None = None
    allowed_log_groups: tuple[str, ...] = ("*",)
    create_log_streams: bool = True
    create_log_groups: bool = False
    invalid_records: InvalidRecordPolicy = InvalidRecordPolicy.FAIL
    dead_letter_queue_url: str | None = None
    #: Where a dead letter too large for SQS goes, with a pointer in the queue.
    dead_letter_bucket: str | None = None
    max_concurrent_requests: int = 8
    subscription_log_group: str = "{logGroup}"
    subscription_log_stream: str = "{logStream}"
    time_reserve_ms: int = 3000
    retry_mode: str = "standard"
    max_attempts: int = 5
    decompression_budget_bytes: int = 1024 * 1024 * 1024 // DECODED_MEMORY_FACTOR
    #: What the first gzip record of a batch may expand to: the per-record bound, or the whole
    #: budget where the function's memory is smaller.
    decompression_allowance_bytes: int = MAX_DECOMPRESSED_BYTES
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate every variable; raise ``ConfigurationError`` on the first bad one."""
        group = _optional(env, "DEFAULT_LOG_GROUP")
        stream = _optional(env, "DEFAULT_LOG_STREAM")
        if group is not None:
            _check_group_name("DEFAULT_LOG_GROUP", group)
        if stream is not None:
            _check_stream_name("DEFAULT_LOG_STREAM", stream)
        if (group is None) != (stream is None):
            raise ConfigurationError(
                "DEFAULT_LOG_GROUP and DEFAULT_LOG_STREAM go together: set both or neither"
            )
        policy_text = env.get("INVALID_RECORDS", "").strip().lower() or "fail"
        try:
            policy = InvalidRecordPolicy(policy_text)
        except ValueError:
            raise ConfigurationError(
                f"INVALID_RECORDS={policy_text!r}: accepts fail, dead-letter or drop"
            ) from None
        dead_letter_url = _optional(env, "DEAD_LETTER_QUEUE_URL")
        if policy is InvalidRecordPolicy.DEAD_LETTER and dead_letter_url is None:
            raise ConfigurationError(
                "INVALID_RECORDS=dead-letter needs DEAD_LETTER_QUEUE_URL (an SQS queue URL)"
            )
        bucket = _optional(env, "DEAD_LETTER_BUCKET")
        # Unused but for dead-lettering, like the queue's URL (switching the policy alone works).
        if bucket is not None and (not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket):
            raise ConfigurationError(
                f"DEAD_LETTER_BUCKET={bucket!r} is not an S3 bucket name (3 to 63 lowercase "
                "letters, digits, '.' and '-', starting and ending with a letter or digit)"
            )
        allowed = _patterns(env.get("ALLOWED_LOG_GROUPS", "*"))
        if group is not None and not any(fnmatchcase(group, pattern) for pattern in allowed):
            raise ConfigurationError(
                f"DEFAULT_LOG_GROUP={group!r} is not allowed by ALLOWED_LOG_GROUPS "
                f"({','.join(allowed)}): every raw record would be refused"
            )
        # Lambda's own variable; 1024 MB when run elsewhere.
        memory_mb = _integer(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 1024, low=128, high=10_240)
        budget = memory_mb * 1024 * 1024 // DECODED_MEMORY_FACTOR
        create_streams = _boolean(env, "CREATE_LOG_STREAMS", default=True)
        create_groups = _boolean(env, "CREATE_LOG_GROUPS", default=False)
        if create_groups and not create_streams:
            raise ConfigurationError(
                "CREATE_LOG_GROUPS=true needs CREATE_LOG_STREAMS=true: a group created without "
                "its stream can never receive events"
            )
        return cls(
            default_log_group=group,
            default_log_stream=stream,
            allowed_log_groups=allowed,
            create_log_streams=create_streams,
            create_log_groups=create_groups,
            invalid_records=policy,
            dead_letter_queue_url=dead_letter_url,
            dead_letter_bucket=bucket,
            max_concurrent_requests=_integer(env, "MAX_CONCURRENT_REQUESTS", 8, low=1, high=64),
            subscription_log_group=_template(
                env, "SUBSCRIPTION_LOG_GROUP", "{logGroup}", _check_group_name
            ),
            subscription_log_stream=_template(
                env, "SUBSCRIPTION_LOG_STREAM", "{logStream}", _check_stream_name
            ),
            time_reserve_ms=_integer(env, "TIME_RESERVE_MS", 3000, low=0, high=600_000),
            # botocore's own variables, read here so the forwarder's defaults are explicit.
            retry_mode=_choice(env, "AWS_RETRY_MODE", "standard", ("standard", "adaptive")),
            max_attempts=_integer(env, "AWS_MAX_ATTEMPTS", 5, low=1, high=20),
            # Lambda's own variable; 1024 MB when run elsewhere.
            decompression_budget_bytes=budget,
            decompression_allowance_bytes=min(MAX_DECOMPRESSED_BYTES, budget),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE,
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


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _boolean(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}={value!r}: accepts true or false")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigurationError(f"{name}={value!r}: accepts {' or '.join(choices)}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r}: accepts a whole number") from None
    if not low <= number <= high:
        raise ConfigurationError(f"{name}={number}: accepts {low} to {high}")
    return number


_PATTERN = re.compile(r"[\.\-_/#A-Za-z0-9*?]+")


def _patterns(value: str) -> tuple[str, ...]:
    patterns = tuple(part.strip() for part in value.split(",") if part.strip())
    if not patterns:
        raise ConfigurationError("ALLOWED_LOG_GROUPS is empty: give glob patterns, e.g. /app/*")
    for pattern in patterns:
        # Only * and ? as wildcards: the same patterns become IAM resource ARNs, which know no more.
        if len(pattern) > MAX_NAME_LENGTH or not _PATTERN.fullmatch(pattern):
            raise ConfigurationError(
                f"ALLOWED_LOG_GROUPS pattern {pattern!r}: accepts log group name characters "
                "(letters, digits, . - _ / #) and the wildcards * and ?"
            )
    return patterns


_FORMATTER = string.Formatter()

#: Names as a subscription payload may carry them, to try a template on at start.
_SAMPLE_NAMES = {"logGroup": "/aws/sample-group", "logStream": "sample-stream", "owner": "1234"}


def _template(
    env: Mapping[str, str], name: str, default: str, check: Callable[[str, str], None]
) -> str:
    """A renaming template: only known placeholders, and a valid name when filled in."""
    value = env.get(name, "").strip() or default
    try:
        parsed = [
            (field, spec, conversion) for _, field, spec, conversion in _FORMATTER.parse(value)
        ]
    except ValueError as error:
        raise ConfigurationError(f"{name}={value!r}: not a valid template ({error})") from None
    if any(spec or conversion for field, spec, conversion in parsed if field is not None):
        raise ConfigurationError(
            f"{name}={value!r}: placeholders take no conversion or format spec "
            "(write {logGroup}, not {logGroup!r} or {logGroup:.4})"
        )
    fields = {field for field, _, _ in parsed if field is not None}
    unknown = fields - SUBSCRIPTION_PLACEHOLDERS
    if unknown:
        raise ConfigurationError(
            f"{name}={value!r}: unknown placeholder(s) {sorted(unknown)}; "
            "accepts {logGroup}, {logStream} and {owner}"
        )
    try:
        sample = value.format_map(_SAMPLE_NAMES)
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ConfigurationError(
            f"{name}={value!r}: placeholders take no conversion or format spec ({error})"
        ) from None
    check(f"{name} (filled in as {sample!r})", sample)
    return value


def _check_group_name(variable: str, name: str) -> None:
    if len(name) > MAX_NAME_LENGTH or not set(name) <= LOG_GROUP_NAME_CHARS:
        raise ConfigurationError(
            f"{variable}={name!r}: a log group name has 1 to 512 letters, digits or . - _ / #"
        )


def _check_stream_name(variable: str, name: str) -> None:
    if len(name) > MAX_NAME_LENGTH or set(name) & LOG_STREAM_FORBIDDEN_CHARS:
        raise ConfigurationError(
            f"{variable}={name!r}: a log stream name has 1 to 512 characters, none of : or *"
        )
