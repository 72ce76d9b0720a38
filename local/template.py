"""Read the synthesized CDK template (``cdk.out``) into a ``Blueprint``: the loop's ``--template``,
and the check that the app's exported blueprint is what it synthesizes. Logical ids are read
without the CDK's hash, as ``infra.blueprint`` names them.

What is read, per ``AWS::Lambda::EventSourceMapping``: the function it invokes (``Handler``,
``Runtime``, ``Timeout``, ``MemorySize``, ``Environment.Variables`` and the code: the bundled
asset named by the ``aws:asset:path`` metadata or the ``Code.S3Key`` hash), the source queue or
stream and the mapping's own settings; and every ``AWS::SQS::Queue`` (FIFO, visibility timeout,
redrive policy). Anything else in the template (IAM, alarms, encryption, log groups) has no local
meaning and is ignored.

The asset is built for the function's platform (arm64, the template's Python). Its pure-Python
files run anywhere; a native extension built for another platform would not import here, so when
the asset holds one, only the handler's own package is taken from the asset and its dependencies
come from this interpreter's site-packages. ``CodeLocation.description`` says which case applies.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.blueprint import (
    ON_DEMAND_SHARDS,
    Blueprint,
    BucketSpec,
    CodeLocation,
    FunctionSpec,
    KinesisMappingSpec,
    KinesisSource,
    QueueSpec,
    SqsMappingSpec,
    SqsSource,
    StreamSpec,
    TableSpec,
    arn_resource_name,
)

NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")


class TemplateError(ValueError):
    """The template cannot be read into a blueprint (a message says what and where)."""


def find_template(cdk_out: Path, stack: str | None = None) -> Path | None:
    """The template of ``stack`` (or of the only/first stack) listed in ``cdk.out/manifest.json``;
    ``None`` when there is no synthesized app."""
    manifest_path = cdk_out / "manifest.json"
    if not manifest_path.is_file():
        return None
    artifacts = json.loads(manifest_path.read_text()).get("artifacts", {})
    for name, artifact in artifacts.items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        if stack is not None and name != stack:
            continue
        template = cdk_out / artifact.get("properties", {}).get("templateFile", "")
        if template.is_file():
            return template
    return None


def read_blueprint(template_path: Path) -> Blueprint:
    """The sources (at most one SQS and one Kinesis mapping) and queues of a CDK template."""
    template = json.loads(template_path.read_text())
    resources: dict[str, Any] = template.get("Resources", {})
    reader = _TemplateReader(resources, template_path.parent)
    queues = {
        short_name(logical_id): reader.queue(logical_id)
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::SQS::Queue"
    }
    sqs: SqsSource | None = None
    kinesis: KinesisSource | None = None
    origin: dict[str, str] = {}
    where = _relative(template_path)
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        properties = resource.get("Properties", {})
        source_arn = properties.get("EventSourceArn")
        source_id = _referenced_id(source_arn)
        consumer = resources.get(source_id or "", {})
        if consumer.get("Type") == "AWS::Kinesis::StreamConsumer":
            # Enhanced fan-out: the consumer's stream, which the local mapping reads through
            # shared throughput (push over HTTP/2 is not emulated).
            source_arn = consumer.get("Properties", {}).get("StreamARN")
            source_id = _referenced_id(source_arn)
        if source_id is not None:
            source_type = resources.get(source_id, {}).get("Type")
            name = short_name(source_id)
            stream = reader.stream(source_id) if source_type == "AWS::Kinesis::Stream" else None
        elif isinstance(source_arn, str):
            # an existing queue or stream (sqsQueueArn / kinesisStreamArn): made locally by name
            name, source_type = _imported(source_arn)
            stream = StreamSpec(name) if name and source_type == "AWS::Kinesis::Stream" else None
            if source_type == "AWS::SQS::Queue" and name:
                queues.setdefault(name, QueueSpec(name, fifo=name.endswith(".fifo")))
        else:
            continue
        if source_type == "AWS::SQS::Queue" and sqs is None and name:
            sqs = SqsSource(reader.function(properties), name, _sqs_mapping(properties))
            origin["sqs"] = f"{where} ({logical_id})"
        elif stream is not None and kinesis is None:
            kinesis = KinesisSource(
                reader.function(properties), stream, _kinesis_mapping(properties)
            )
            origin["kinesis"] = f"{where} ({logical_id})"
    buckets = {
        short_name(logical_id): BucketSpec(short_name(logical_id))
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::S3::Bucket"
    }
    tables = {
        short_name(logical_id): TableSpec(short_name(logical_id))
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::DynamoDB::Table"
    }
    return Blueprint(queues, sqs, kinesis, origin, buckets, tables)


class _TemplateReader:
    """Reads single resources of one template."""

    def __init__(self, resources: Mapping[str, Any], cdk_out: Path) -> None:
        self._resources = resources
        self._cdk_out = cdk_out

    def function(self, mapping_properties: Mapping[str, Any]) -> FunctionSpec:
        function_id = _referenced_id(mapping_properties.get("FunctionName"))
        resource = self._resources.get(function_id or "", {})
        if resource.get("Type") != "AWS::Lambda::Function" or function_id is None:
            raise TemplateError(
                f"event source mapping's FunctionName {mapping_properties.get('FunctionName')!r}"
                " is not a function of this template"
            )
        properties = resource.get("Properties", {})
        return FunctionSpec(
            logical_id=short_name(function_id),
            handler=properties.get("Handler", "forwarder.handler.handler"),
            runtime=properties.get("Runtime", "python3.14"),
            timeout_s=int(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
            environment={
                name: _with_short_names(value)
                for name, value in properties.get("Environment", {}).get("Variables", {}).items()
            },
            code=self._code(resource, properties.get("Handler", "forwarder.handler.handler")),
        )

    def queue(self, logical_id: str) -> QueueSpec:
        properties = self._resources[logical_id].get("Properties", {})
        redrive = properties.get("RedrivePolicy") or {}
        if isinstance(redrive, str):
            redrive = json.loads(redrive)
        return QueueSpec(
            logical_id=short_name(logical_id),
            fifo=bool(properties.get("FifoQueue", False)),
            content_based_deduplication=bool(properties.get("ContentBasedDeduplication", False)),
            visibility_timeout_s=int(properties.get("VisibilityTimeout", 30)),
            redrive_target=_short_referenced_id(redrive.get("deadLetterTargetArn")),
            max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
        )

    def stream(self, logical_id: str) -> StreamSpec:
        properties = self._resources.get(logical_id, {}).get("Properties", {})
        on_demand = properties.get("StreamModeDetails", {}).get("StreamMode") == "ON_DEMAND"
        shards = properties.get("ShardCount", ON_DEMAND_SHARDS if on_demand else 1)
        return StreamSpec(short_name(logical_id), int(shards))

    def _code(self, resource: Mapping[str, Any], handler: str) -> CodeLocation:
        asset = self._asset_dir(resource)
        if asset is None:
            return CodeLocation.source_tree()
        shown = _shortened(_relative(asset))
        native = sorted(p for p in asset.rglob("*") if p.suffix in NATIVE_SUFFIXES)
        if not native:
            return CodeLocation((asset,), f"asset {shown} (pure Python: code and dependencies)")
        package = handler.split(".", 1)[0]
        staging = Path(tempfile.mkdtemp(prefix="forwarder-code-"))
        atexit.register(shutil.rmtree, staging, ignore_errors=True)
        (staging / package).symlink_to(asset / package, target_is_directory=True)
        return CodeLocation(
            (staging,),
            f"package {package!r} of asset {shown}; dependencies from the .venv "
            f"(the asset holds {len(native)} native file(s) built for Lambda's platform)",
        )

    def _asset_dir(self, resource: Mapping[str, Any]) -> Path | None:
        """The bundled asset in cdk.out (named by the S3 key's hash), else the metadata's path."""
        candidates: list[Path] = []
        key = resource.get("Properties", {}).get("Code", {}).get("S3Key")
        if isinstance(key, str):
            candidates.append(self._cdk_out / f"asset.{key.removesuffix('.zip')}")
        path = resource.get("Metadata", {}).get("aws:asset:path")
        if isinstance(path, str):
            candidates.append(Path(path) if Path(path).is_absolute() else self._cdk_out / path)
        return next((c for c in candidates if c.is_dir()), None)


def _sqs_mapping(properties: Mapping[str, Any]) -> SqsMappingSpec:
    return SqsMappingSpec(
        batch_size=int(properties.get("BatchSize", 10)),
        batching_window_s=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
        report_batch_item_failures="ReportBatchItemFailures"
        in properties.get("FunctionResponseTypes", []),
    )


def _kinesis_mapping(properties: Mapping[str, Any]) -> KinesisMappingSpec:
    on_failure = properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    return KinesisMappingSpec(
        batch_size=int(properties.get("BatchSize", 100)),
        batching_window_s=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
        starting_position=str(properties.get("StartingPosition", "LATEST")),
        bisect_on_error=bool(properties.get("BisectBatchOnFunctionError", False)),
        max_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
        max_record_age_s=int(properties.get("MaximumRecordAgeInSeconds", -1)),
        on_failure=_short_referenced_id(on_failure),
        report_batch_item_failures="ReportBatchItemFailures"
        in properties.get("FunctionResponseTypes", []),
    )


def _referenced_id(value: Any) -> str | None:
    """The logical id in ``{"Ref": id}`` or ``{"Fn::GetAtt": [id, attribute]}``."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return value["Ref"]
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute and isinstance(attribute[0], str):
            return attribute[0]
        if isinstance(attribute, str):
            return attribute.split(".", 1)[0]
    return None


def _short_referenced_id(value: Any) -> str | None:
    logical_id = _referenced_id(value)
    return None if logical_id is None else short_name(logical_id)


def _with_short_names(value: Any) -> Any:
    """A template value with each logical id it refers to shortened, as blueprints name them."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str) and len(value) == 1:
            return {"Ref": short_name(value["Ref"])}
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute and len(value) == 1:
            return {"Fn::GetAtt": [short_name(attribute[0]), *attribute[1:]]}
        return {key: _with_short_names(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_short_names(item) for item in value]
    return value


def _imported(arn: str) -> tuple[str | None, str | None]:
    """The name and resource type of an existing queue or stream, from its ARN."""
    parts = arn.split(":")
    if len(parts) < 6:
        return None, None
    if parts[2] == "sqs":
        return arn_resource_name(arn), "AWS::SQS::Queue"
    if parts[2] == "kinesis" and parts[5].startswith("stream/"):
        return arn_resource_name(arn), "AWS::Kinesis::Stream"
    return None, None


_CDK_HASH = re.compile(r"[0-9A-F]{8}$")


def short_name(logical_id: str) -> str:
    """A logical id without the CDK's 8-character hash suffix: ``SqsQueueFC12DF36`` ->
    ``SqsQueue``."""
    stripped = _CDK_HASH.sub("", logical_id)
    return stripped or logical_id


def _shortened(path: str) -> str:
    """``cdk.out/asset.2725f765306f...`` rather than the whole 64-character hash."""
    return re.sub(r"(asset\.[0-9a-f]{12})[0-9a-f]{52}", r"\1...", path)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
