"""What the local loop runs, as plain values: the functions, their event source mappings, the
queues, streams and buckets they read and write.

A ``Blueprint`` comes from the synthesized CDK template (``local.template``) or, on a fresh clone
where ``cdk.out`` does not exist, from ``default_blueprint``, which mirrors what the CDK app
synthesizes with the defaults of ``cdk.json``. Defaults of the dataclasses are Lambda's and SQS's
own API defaults, used when the template leaves a property out.

Resources are named by their CloudFormation logical id; ``local.deploy`` creates a local
counterpart for each one and resolves the template's references to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forwarder.settings import OPTION_BY_VARIABLE, OPTIONS

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = ROOT / "lambda_src"


@dataclass(frozen=True, slots=True)
class CodeLocation:
    """Where the function's code comes from: directories put first on its ``sys.path``, in order
    (the first one is ``LAMBDA_TASK_ROOT``), and a sentence saying what they are."""

    paths: tuple[Path, ...]
    description: str

    @classmethod
    def source_tree(cls) -> CodeLocation:
        """``lambda_src/``; dependencies come from the running interpreter's site-packages."""
        return cls((LAMBDA_SRC,), "lambda_src/ (dependencies from the .venv)")


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A Lambda function as the template declares it. ``environment`` values may still be
    CloudFormation intrinsics (``{"Ref": ...}``); ``local.deploy`` resolves them."""

    logical_id: str
    handler: str = "forwarder.handler.handler"
    runtime: str = "python3.14"
    timeout_s: int = 3
    memory_mb: int = 128
    environment: Mapping[str, Any] = field(default_factory=dict)
    code: CodeLocation = field(default_factory=CodeLocation.source_tree)


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """An SQS queue. ``redrive_target`` is the logical id of its dead-letter queue."""

    logical_id: str
    fifo: bool = False
    content_based_deduplication: bool = False
    visibility_timeout_s: int = 30
    redrive_target: str | None = None
    max_receive_count: int | None = None


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A Kinesis data stream."""

    logical_id: str
    shard_count: int = 1


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """An S3 bucket (the failure store)."""

    logical_id: str


@dataclass(frozen=True, slots=True)
class SqsMappingSpec:
    """The SQS event source mapping's settings (Lambda's defaults)."""

    batch_size: int = 10
    batching_window_s: float = 0.0
    report_batch_item_failures: bool = False


@dataclass(frozen=True, slots=True)
class KinesisMappingSpec:
    """The Kinesis event source mapping's settings (Lambda's defaults). ``-1`` means unbounded
    for ``max_retry_attempts`` and ``max_record_age_s``; ``on_failure`` is the logical id of the
    on-failure destination queue."""

    batch_size: int = 100
    batching_window_s: float = 0.0
    starting_position: str = "LATEST"
    bisect_on_error: bool = False
    max_retry_attempts: int = -1
    max_record_age_s: int = -1
    on_failure: str | None = None
    report_batch_item_failures: bool = False


@dataclass(frozen=True, slots=True)
class SqsSource:
    """A queue, the function that reads it and the mapping between them."""

    function: FunctionSpec
    queue: str
    mapping: SqsMappingSpec


@dataclass(frozen=True, slots=True)
class KinesisSource:
    """A stream, the function that reads it and the mapping between them."""

    function: FunctionSpec
    stream: StreamSpec
    mapping: KinesisMappingSpec


@dataclass(frozen=True, slots=True)
class Blueprint:
    """Everything to create and run locally. ``origin`` says where each source came from."""

    queues: Mapping[str, QueueSpec]
    sqs: SqsSource | None
    kinesis: KinesisSource | None
    origin: Mapping[str, str] = field(default_factory=dict)
    buckets: Mapping[str, BucketSpec] = field(default_factory=dict)

    def completed(self) -> Blueprint:
        """This blueprint with the built-in default for each source it lacks (a template made
        with ``kinesisEnabled=false`` has no Kinesis source, but the demo shows both)."""
        queues = dict(self.queues)
        buckets = dict(self.buckets)
        origin = dict(self.origin)
        sqs, kinesis = self.sqs, self.kinesis
        if sqs is None:
            sqs, sqs_queues = default_sqs_source()
            queues |= sqs_queues
            origin["sqs"] = DEFAULT_ORIGIN
        if kinesis is None:
            kinesis, kinesis_queues = default_kinesis_source()
            queues |= kinesis_queues
            buckets |= DEFAULT_BUCKETS
            origin["kinesis"] = DEFAULT_ORIGIN
        return Blueprint(queues, sqs, kinesis, origin, buckets)

    def with_queue(self, logical_id: str, **changes: Any) -> Blueprint:
        """A copy with one queue's settings changed (e.g. a shorter visibility timeout)."""
        queues = dict(self.queues)
        queues[logical_id] = replace(queues[logical_id], **changes)
        return replace(self, queues=queues)


#: What the CDK app sets in each function's environment with ``cdk.json``'s defaults, from the
#: function's option table: the per-source and derived values are added below.
_PER_FUNCTION = frozenset({"serviceName", "sqsInvalidRecords", "kinesisInvalidRecords"})
_COMMON_ENV: dict[str, str] = {
    option.variable: option.kind.from_context(default)
    for option in OPTIONS
    for key, default in option.context.items()
    if key not in _PER_FUNCTION and default != ""
} | {"TIME_RESERVE_MS": "3000"}  # the function's default: a 60 s timeout holds it
_SERVICE_NAME = OPTION_BY_VARIABLE["POWERTOOLS_SERVICE_NAME"].context["serviceName"]
DEFAULT_ORIGIN = "built-in defaults (what the CDK app synthesizes with cdk.json's defaults)"
#: The stack's failure store, made when a source dead-letters (Kinesis does by default).
DEFAULT_BUCKETS = {"FailureStoreBucket": BucketSpec("FailureStoreBucket")}


def default_sqs_source() -> tuple[SqsSource, dict[str, QueueSpec]]:
    """The CDK app's SQS source with ``cdk.json``'s defaults, and its queues."""
    function = FunctionSpec(
        "SqsForwarderFunction",
        timeout_s=60,
        memory_mb=512,
        environment=_COMMON_ENV
        | {"INVALID_RECORDS": "fail", "POWERTOOLS_SERVICE_NAME": f"{_SERVICE_NAME}-sqs"},
    )
    queues = {
        "SqsQueue": QueueSpec(
            "SqsQueue",
            visibility_timeout_s=365,
            redrive_target="SqsDeadLetterQueue",
            max_receive_count=5,
        ),
        "SqsDeadLetterQueue": QueueSpec("SqsDeadLetterQueue"),
    }
    mapping = SqsMappingSpec(batch_size=100, batching_window_s=5, report_batch_item_failures=True)
    return SqsSource(function, "SqsQueue", mapping), queues


def default_kinesis_source() -> tuple[KinesisSource, dict[str, QueueSpec]]:
    """The CDK app's Kinesis source with ``cdk.json``'s defaults, and its queues."""
    function = FunctionSpec(
        "KinesisForwarderFunction",
        timeout_s=60,
        memory_mb=512,
        environment=_COMMON_ENV
        | {
            "INVALID_RECORDS": "dead-letter",
            "DEAD_LETTER_QUEUE_URL": {"Ref": "KinesisDeadLetterQueue"},
            "DEAD_LETTER_BUCKET": {"Ref": "FailureStoreBucket"},
            "POWERTOOLS_SERVICE_NAME": f"{_SERVICE_NAME}-kinesis",
        },
    )
    queues = {
        "KinesisDeadLetterQueue": QueueSpec("KinesisDeadLetterQueue"),
        "KinesisOnFailureQueue": QueueSpec("KinesisOnFailureQueue"),
    }
    mapping = KinesisMappingSpec(
        batch_size=100,
        batching_window_s=1,
        starting_position="TRIM_HORIZON",
        bisect_on_error=True,
        max_retry_attempts=3,
        max_record_age_s=3600,
        on_failure="KinesisOnFailureQueue",
        report_batch_item_failures=True,
    )
    return KinesisSource(function, StreamSpec("KinesisStream", shard_count=1), mapping), queues


def default_blueprint() -> Blueprint:
    """The stack the CDK app synthesizes with ``cdk.json``'s defaults and
    ``kinesisEnabled=true``, written out so that a fresh clone needs no ``cdk synth``."""
    sqs, sqs_queues = default_sqs_source()
    kinesis, kinesis_queues = default_kinesis_source()
    return Blueprint(
        queues=sqs_queues | kinesis_queues,
        sqs=sqs,
        kinesis=kinesis,
        origin={"sqs": DEFAULT_ORIGIN, "kinesis": DEFAULT_ORIGIN},
        buckets=DEFAULT_BUCKETS,
    )


def fast_blueprint(
    *,
    visibility_s: int = 1,
    max_receive_count: int = 3,
    fifo: bool = False,
    sqs_batch: int = 10,
    sqs_window_s: float = 0.0,
    shards: int = 1,
    kinesis_batch: int = 100,
    kinesis_window_s: float = 0.0,
    starting_position: str = "TRIM_HORIZON",
    bisect: bool = True,
    kinesis_retries: int = 2,
    max_record_age_s: int = -1,
    timeout_s: int | None = None,
) -> Blueprint:
    """``default_blueprint`` with timings short enough for tests and campaigns: every queue,
    mapping and (with ``timeout_s``) function setting named here replaces the default."""
    blueprint = default_blueprint()
    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    blueprint = blueprint.with_queue(
        blueprint.sqs.queue,
        visibility_timeout_s=visibility_s,
        max_receive_count=max_receive_count,
        fifo=fifo,
        content_based_deduplication=fifo,
    )
    if fifo:
        blueprint = blueprint.with_queue("SqsDeadLetterQueue", fifo=True)
    sqs_function, kinesis_function = blueprint.sqs.function, blueprint.kinesis.function
    if timeout_s is not None:
        sqs_function = replace(sqs_function, timeout_s=timeout_s)
        kinesis_function = replace(kinesis_function, timeout_s=timeout_s)
    sqs = replace(
        blueprint.sqs,
        function=sqs_function,
        mapping=replace(
            blueprint.sqs.mapping, batch_size=sqs_batch, batching_window_s=sqs_window_s
        ),
    )
    kinesis = replace(
        blueprint.kinesis,
        function=kinesis_function,
        stream=replace(blueprint.kinesis.stream, shard_count=shards),
        mapping=replace(
            blueprint.kinesis.mapping,
            batch_size=kinesis_batch,
            batching_window_s=kinesis_window_s,
            starting_position=starting_position,
            bisect_on_error=bisect,
            max_retry_attempts=kinesis_retries,
            max_record_age_s=max_record_age_s,
        ),
    )
    return replace(blueprint, sqs=sqs, kinesis=kinesis)
