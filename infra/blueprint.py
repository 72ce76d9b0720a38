"""What the CDK app builds, as plain values: the functions and their environments, the event
source mappings, and the queues, streams and buckets they read and write.

``export_blueprint(config)`` makes it from the app's typed configuration (``infra.config``), with
no CDK, Node or synth; the local loop (``local``) runs from it. ``local.template`` reads the same
shape back from a synthesized template, and ``tests/infra/test_blueprint.py`` holds the two equal
for every variant of the app, so what runs locally is what deploys.

Resources are named by their CloudFormation logical id without the CDK's 8-character hash
(``SqsQueue`` for ``SqsQueueFC12DF36``), and environment values that refer to one are
``{"Ref": name}``. Defaults of the dataclasses are Lambda's and SQS's own API defaults, used when a
template leaves a property out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forwarder.settings import NEW_LOG_GROUP_DEFAULTS, OPTION_BY_FIELD, OPTIONS, environment
from infra.config import (
    FAILURE_STORE_RETENTION_DAYS,
    ForwarderConfig,
    KinesisConfig,
    SqsConfig,
    kinesis_checkpoint_ttl,
    sqs_checkpoint_ttl,
)

#: The options that shape a created log group, by variable, with their defaults.
NEW_LOG_GROUP_VARIABLES = {
    OPTION_BY_FIELD[field].variable: default for field, default in NEW_LOG_GROUP_DEFAULTS.items()
}

__all__ = [
    "Blueprint",
    "BucketSpec",
    "CodeLocation",
    "FunctionSpec",
    "KinesisMappingSpec",
    "KinesisSource",
    "QueueSpec",
    "SqsMappingSpec",
    "SqsSource",
    "StreamSpec",
    "TableSpec",
    "export_blueprint",
    "function_options",
    "shared_options",
]

LAMBDA_SRC = Path(__file__).resolve().parent.parent / "lambda_src"

#: The logical ids the stack gives what it creates, without the CDK's hash. The functions' are
#: set by the stack (``override_logical_id``); the rest follow from construct ids.
SQS_FUNCTION = "SqsFunction"
KINESIS_FUNCTION = "KinesisFunction"
SQS_QUEUE = "SqsQueue"
SQS_DEAD_LETTER_QUEUE = "SqsDeadLetterQueue"
SQS_INVALID_RECORDS_QUEUE = "SqsInvalidRecordsQueue"
KINESIS_STREAM = "KinesisStream"
KINESIS_DEAD_LETTER_QUEUE = "KinesisDeadLetterQueue"
KINESIS_ON_FAILURE_QUEUE = "KinesisOnFailureQueue"
FAILURE_STORE_BUCKET = "FailureStoreBucket"
#: The KMS key the stack makes for the log groups the functions create (newLogGroupKmsKey).
NEW_LOG_GROUP_KEY = "NewLogGroupKey"
SQS_CHECKPOINT_TABLE = "SqsCheckpointTable"
KINESIS_CHECKPOINT_TABLE = "KinesisCheckpointTable"
#: The shards of an on-demand stream when it is created (Kinesis Data Streams' default).
ON_DEMAND_SHARDS = 4


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
class TableSpec:
    """A DynamoDB table (a delivery checkpoint: keys ``pk`` and ``sk``, TTL ``expires``)."""

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
    on-failure destination: a queue (metadata only) or a bucket (the records with their data)."""

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
    tables: Mapping[str, TableSpec] = field(default_factory=dict)

    def with_sources_of(self, other: Blueprint) -> Blueprint:
        """This blueprint with ``other``'s source for each source it lacks, and ``other``'s
        queues, buckets and tables it does not have (a template made with
        ``kinesisEnabled=false`` has no Kinesis source, but the demo shows both)."""
        missing = {"sqs": self.sqs is None, "kinesis": self.kinesis is None}
        if not any(missing.values()):
            return self
        return Blueprint(
            queues=dict(other.queues) | dict(self.queues),
            sqs=self.sqs or other.sqs,
            kinesis=self.kinesis or other.kinesis,
            origin=dict(self.origin)
            | {source: other.origin.get(source, "") for source, lacks in missing.items() if lacks},
            buckets=dict(other.buckets) | dict(self.buckets),
            tables=dict(other.tables) | dict(self.tables),
        )

    def without_origin_and_code(self) -> Blueprint:
        """What the blueprint builds, leaving out where it was read from and where the code is:
        what a template and the configuration it was synthesized from agree on."""
        sqs = self.sqs and replace(self.sqs, function=replace(self.sqs.function, code=_NO_CODE))
        kinesis = self.kinesis and replace(
            self.kinesis, function=replace(self.kinesis.function, code=_NO_CODE)
        )
        return replace(self, sqs=sqs, kinesis=kinesis, origin={})

    def with_queue(self, logical_id: str, **changes: Any) -> Blueprint:
        """A copy with one queue's settings changed (e.g. a shorter visibility timeout)."""
        queues = dict(self.queues)
        queues[logical_id] = replace(queues[logical_id], **changes)
        return replace(self, queues=queues)


_NO_CODE = CodeLocation((), "")


# -- the function's environment: one definition for the construct and the blueprint -------------


def shared_options(values: object) -> dict[str, object]:
    """The options every function shares, by variable, from a dataclass whose fields are named
    as ``Settings``' (``FunctionConfig``, ``ForwarderFunctionProps``)."""
    names = {f.name for f in dataclasses.fields(values)}  # type: ignore[arg-type]
    return {o.variable: getattr(values, o.field) for o in OPTIONS if o.field in names}


def time_reserve_ms(timeout_s: float) -> int:
    """The time kept back for dead letters and the response: the function's 3 s default, or a
    quarter of a shorter timeout, so that there is always time left to send."""
    return min(3000, int(timeout_s * 1000) // 4)


def function_options(
    shared: Mapping[str, object],
    *,
    service_name: str,
    log_level: str,
    source: str,
    invalid_records: str,
    timeout_s: float,
    dead_letter_queue_url: object | None = None,
    dead_letter_bucket: object | None = None,
    checkpoint_table: object | None = None,
    checkpoint_ttl_seconds: int | None = None,
) -> dict[str, object]:
    """A forwarder function's option values by variable: the shared ones and those of its
    source. The dead-letter queue and bucket apply only with ``invalid_records='dead-letter'``;
    the checkpoint's table and TTL only with the delivery checkpoint."""
    options = dict(shared) | {
        "INVALID_RECORDS": invalid_records,
        "POWERTOOLS_SERVICE_NAME": f"{service_name}-{source}",
        "POWERTOOLS_LOG_LEVEL": log_level,
        "TIME_RESERVE_MS": time_reserve_ms(timeout_s),
    }
    # How created groups are made: only what differs from the service's own way.
    for variable, default in NEW_LOG_GROUP_VARIABLES.items():
        if options.get(variable, default) == default:
            options.pop(variable, None)
    if invalid_records == "dead-letter" and dead_letter_queue_url is not None:
        options["DEAD_LETTER_QUEUE_URL"] = dead_letter_queue_url
        if dead_letter_bucket is not None:
            options["DEAD_LETTER_BUCKET"] = dead_letter_bucket
    if checkpoint_table is not None:
        options["CHECKPOINT_TABLE"] = checkpoint_table
        options["CHECKPOINT_TTL_SECONDS"] = checkpoint_ttl_seconds
    return options


# -- the blueprint of a configuration -------------------------------------------------------------


def export_blueprint(
    config: ForwarderConfig, origin: str = "the CDK app's configuration"
) -> Blueprint:
    """What ``ForwarderStack`` builds from ``config``, as a blueprint; ``origin`` says where
    the configuration came from (shown by the local loop)."""
    dead_lettering = any(
        source is not None and source.invalid_records == "dead-letter"
        for source in (config.sqs, config.kinesis)
    )
    kinesis_to_s3 = config.kinesis is not None and config.kinesis.on_failure == "s3"
    bucket = FAILURE_STORE_BUCKET if dead_lettering or kinesis_to_s3 else None
    queues: dict[str, QueueSpec] = {}
    tables: dict[str, TableSpec] = {}
    sqs = kinesis = None
    if config.sqs is not None:
        sqs, sqs_queues = _sqs_source(config, config.sqs, bucket)
        queues |= sqs_queues
    if config.kinesis is not None:
        kinesis, kinesis_queues = _kinesis_source(config, config.kinesis, bucket)
        queues |= kinesis_queues
    for source in (sqs, kinesis):
        table = source and source.function.environment.get("CHECKPOINT_TABLE")
        if table:
            tables[table["Ref"]] = TableSpec(table["Ref"])
    return Blueprint(
        queues=queues,
        sqs=sqs,
        kinesis=kinesis,
        origin={name: origin for name, source in (("sqs", sqs), ("kinesis", kinesis)) if source},
        buckets={bucket: BucketSpec(bucket)} if bucket else {},
        tables=tables,
    )


def _function(
    config: ForwarderConfig,
    logical_id: str,
    source: str,
    invalid_records: str,
    dead_letter_queue: str | None,
    bucket: str | None,
    checkpoint: tuple[str, int] | None,
) -> FunctionSpec:
    """``checkpoint``: the table's logical id and the TTL, with the delivery checkpoint."""
    function = config.function
    options = function_options(
        shared_options(function),
        service_name=function.service_name,
        log_level=function.log_level,
        source=source,
        invalid_records=invalid_records,
        timeout_s=function.timeout_seconds,
        dead_letter_queue_url=dead_letter_queue,
        dead_letter_bucket=bucket,
        checkpoint_table=checkpoint and checkpoint[0],
        checkpoint_ttl_seconds=checkpoint and checkpoint[1],
    )
    # References stay references: the template holds {"Ref": ...} for a queue's URL and a
    # bucket's name, and the local loop resolves them to its own.
    references: dict[str, object] = {
        variable: {"Ref": options.pop(variable)}
        for variable in ("DEAD_LETTER_QUEUE_URL", "DEAD_LETTER_BUCKET", "CHECKPOINT_TABLE")
        if variable in options
    }
    if function.create_new_log_group_key:  # the key the stack makes (local: left unset)
        references["NEW_LOG_GROUP_KMS_KEY_ID"] = {"Fn::GetAtt": [NEW_LOG_GROUP_KEY, "Arn"]}
    return FunctionSpec(
        logical_id,
        timeout_s=function.timeout_seconds,
        memory_mb=function.memory_size,
        environment=environment(options) | references,
    )


def _sqs_source(
    config: ForwarderConfig, sqs: SqsConfig, bucket: str | None
) -> tuple[SqsSource, dict[str, QueueSpec]]:
    fifo = sqs.fifo
    queues: dict[str, QueueSpec] = {}
    if sqs.queue_arn:
        # An existing queue: made locally by its name, its redrive is its owner's business.
        source_queue = arn_resource_name(sqs.queue_arn)
        queues[source_queue] = QueueSpec(source_queue, fifo=fifo)
        dead_letters = SQS_INVALID_RECORDS_QUEUE
    else:
        source_queue = SQS_QUEUE
        queues[SQS_QUEUE] = QueueSpec(
            SQS_QUEUE,
            fifo=fifo,
            content_based_deduplication=fifo,
            visibility_timeout_s=sqs.visibility_timeout_seconds,
            redrive_target=SQS_DEAD_LETTER_QUEUE,
            max_receive_count=sqs.max_receive_count,
        )
        queues[SQS_DEAD_LETTER_QUEUE] = QueueSpec(
            SQS_DEAD_LETTER_QUEUE, fifo=fifo, content_based_deduplication=fifo
        )
        dead_letters = SQS_DEAD_LETTER_QUEUE
    if sqs.invalid_records == "dead-letter" and dead_letters not in queues:
        queues[dead_letters] = QueueSpec(dead_letters, fifo=fifo, content_based_deduplication=fifo)
    checkpoint = None
    if config.function.delivery_checkpoint:
        retention = None if sqs.queue_arn else sqs.retention_days * 86400
        checkpoint = (SQS_CHECKPOINT_TABLE, sqs_checkpoint_ttl(retention))
    function = _function(
        config, SQS_FUNCTION, "sqs", sqs.invalid_records, dead_letters, bucket, checkpoint
    )
    mapping = SqsMappingSpec(
        batch_size=sqs.batch_size,
        batching_window_s=sqs.max_batching_window_seconds,
        report_batch_item_failures=True,
    )
    return SqsSource(function, source_queue, mapping), queues


def _kinesis_source(
    config: ForwarderConfig, kinesis: KinesisConfig, bucket: str | None
) -> tuple[KinesisSource, dict[str, QueueSpec]]:
    queues: dict[str, QueueSpec] = {}
    if kinesis.on_failure == "sqs":
        queues[KINESIS_ON_FAILURE_QUEUE] = QueueSpec(KINESIS_ON_FAILURE_QUEUE)
    dead_letters = None
    if kinesis.invalid_records == "dead-letter":
        dead_letters = KINESIS_DEAD_LETTER_QUEUE
        queues[dead_letters] = QueueSpec(dead_letters)
    if kinesis.stream_arn:
        stream = StreamSpec(arn_resource_name(kinesis.stream_arn))
    else:
        shards = ON_DEMAND_SHARDS if kinesis.on_demand else kinesis.shard_count
        stream = StreamSpec(KINESIS_STREAM, shard_count=shards)
    checkpoint = None
    if config.function.delivery_checkpoint:
        retention = None if kinesis.stream_arn else kinesis.retention_hours * 3600
        replayable = FAILURE_STORE_RETENTION_DAYS * 86400 if kinesis.on_failure == "s3" else None
        ttl = kinesis_checkpoint_ttl(retention, kinesis.max_record_age_seconds, replayable)
        checkpoint = (KINESIS_CHECKPOINT_TABLE, ttl)
    function = _function(
        config,
        KINESIS_FUNCTION,
        "kinesis",
        kinesis.invalid_records,
        dead_letters,
        bucket,
        checkpoint,
    )
    mapping = KinesisMappingSpec(
        batch_size=kinesis.batch_size,
        batching_window_s=kinesis.max_batching_window_seconds,
        starting_position=kinesis.starting_position,
        bisect_on_error=True,
        max_retry_attempts=kinesis.max_retry_attempts,
        max_record_age_s=kinesis.max_record_age_seconds,
        on_failure=KINESIS_ON_FAILURE_QUEUE if kinesis.on_failure == "sqs" else bucket,
        report_batch_item_failures=True,
    )
    return KinesisSource(function, stream, mapping), queues


def arn_resource_name(arn: str) -> str:
    """The name in a queue's or a stream's ARN: ``...:sqs:...:logs`` and
    ``...:kinesis:...:stream/logs`` both give ``logs``."""
    return arn.split(":", 5)[5].removeprefix("stream/")
