"""Reading the synthesized CDK template, and resolving its references to local resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.blueprint import CodeLocation
from infra.config import ConfigError
from local.deploy import UnresolvableReference
from local.specs import ROOT, default_blueprint, load_blueprint
from local.template import TemplateError, find_template, read_blueprint

FIXTURE = Path(__file__).parent / "fixtures" / "cdk-template.json"
ASSET = "asset.4207586de95bf250866acbb5f51b0e63e10861de1a4ccd2c5a414b834ec0641f"
SQS_FUNCTION = "SqsFunction"
KINESIS_MAPPING = "KinesisEventSourceMappingFED2DA95"


def cdk_out(root: Path, *, asset: bool = True, native: bool = False, edit: Any = None) -> Path:
    """A cdk.out holding the fixture template (passed through ``edit``), its manifest and,
    optionally, a bundled asset (with a native extension built for another platform)."""
    out = root / "cdk.out"
    out.mkdir()
    template = json.loads(FIXTURE.read_text())
    if edit is not None:
        edit(template)
    (out / "Forwarder.template.json").write_text(json.dumps(template))
    manifest = {
        "artifacts": {
            "Forwarder.assets": {"type": "cdk:asset-manifest"},
            "Forwarder": {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": "Forwarder.template.json"},
            },
        }
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    if asset:
        package = out / ASSET / "forwarder"
        package.mkdir(parents=True)
        (package / "handler.py").write_text("def handler(event, context):\n    return None\n")
        if native:
            speedups = out / ASSET / "speedups"
            speedups.mkdir()
            (speedups / "_fast.cpython-314-aarch64-linux-gnu.so").write_bytes(b"\x7fELF")
    return out


def test_the_manifest_names_the_template(tmp_path):
    out = cdk_out(tmp_path)
    assert find_template(out) == out / "Forwarder.template.json"
    assert find_template(out, "Forwarder") == out / "Forwarder.template.json"
    assert find_template(out, "Other") is None
    assert find_template(tmp_path / "absent") is None


def test_both_sources_are_read_from_the_template(tmp_path):
    blueprint = read_blueprint(cdk_out(tmp_path) / "Forwarder.template.json")

    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    sqs, kinesis = blueprint.sqs, blueprint.kinesis
    assert sqs.function.logical_id == SQS_FUNCTION
    assert (sqs.function.handler, sqs.function.runtime) == (
        "forwarder.handler.handler",
        "python3.14",
    )
    assert (sqs.function.timeout_s, sqs.function.memory_mb) == (60, 512)
    assert sqs.function.environment["INVALID_RECORDS"] == "fail"
    assert (sqs.mapping.batch_size, sqs.mapping.batching_window_s) == (100, 5)
    assert sqs.mapping.report_batch_item_failures
    queue = blueprint.queues[sqs.queue]
    assert (queue.visibility_timeout_s, queue.max_receive_count) == (365, 5)
    assert queue.redrive_target == "SqsDeadLetterQueue"
    mapping = kinesis.mapping
    assert (mapping.batch_size, mapping.batching_window_s) == (100, 1)
    assert (mapping.bisect_on_error, mapping.max_retry_attempts) == (True, 3)
    assert (mapping.max_record_age_s, mapping.starting_position) == (3600, "TRIM_HORIZON")
    assert mapping.on_failure == "FailureStoreBucket"  # the records, with their data
    assert mapping.report_batch_item_failures
    assert kinesis.stream.shard_count == 1
    assert kinesis.function.environment["DEAD_LETTER_QUEUE_URL"] == {
        "Ref": "KinesisDeadLetterQueue"
    }
    assert KINESIS_MAPPING in blueprint.origin["kinesis"]


def test_the_code_is_the_bundled_asset_when_it_is_pure_python(tmp_path):
    out = cdk_out(tmp_path)
    blueprint = read_blueprint(out / "Forwarder.template.json")

    assert blueprint.sqs is not None
    code = blueprint.sqs.function.code
    assert code.paths == (out / ASSET,)
    assert "pure Python" in code.description


def test_an_asset_with_native_files_lends_only_the_handlers_package(tmp_path):
    out = cdk_out(tmp_path, native=True)
    blueprint = read_blueprint(out / "Forwarder.template.json")

    assert blueprint.sqs is not None
    code = blueprint.sqs.function.code
    (staging,) = code.paths
    assert sorted(p.name for p in staging.iterdir()) == ["forwarder"]
    assert (staging / "forwarder").resolve() == (out / ASSET / "forwarder").resolve()
    assert "dependencies from the .venv" in code.description


def test_without_an_asset_the_source_tree_is_the_code(tmp_path):
    blueprint = read_blueprint(cdk_out(tmp_path, asset=False) / "Forwarder.template.json")

    assert blueprint.sqs is not None
    assert blueprint.sqs.function.code == CodeLocation.source_tree()


def test_template_ids_are_read_without_the_cdk_hash(tmp_path):
    blueprint = read_blueprint(cdk_out(tmp_path) / "Forwarder.template.json")

    assert set(blueprint.queues) == {
        "SqsQueue",
        "SqsDeadLetterQueue",
        "KinesisDeadLetterQueue",
    }
    assert set(blueprint.buckets) == {"FailureStoreBucket"}
    assert blueprint.kinesis is not None
    assert blueprint.kinesis.stream.logical_id == "KinesisStream"
    assert blueprint.kinesis.function.environment["DEAD_LETTER_BUCKET"] == {
        "Ref": "FailureStoreBucket"
    }


def _project(root: Path, **context: Any) -> Path:
    """A project directory with the repository's cdk.json, ``context`` over its context."""
    config = json.loads((ROOT / "cdk.json").read_text())
    config["context"] |= context
    (root / "cdk.json").write_text(json.dumps(config))
    return root


def test_by_default_the_loop_runs_the_apps_configuration(tmp_path):
    cdk_out(tmp_path)  # a synthesized template is there, but not asked for
    blueprint = load_blueprint(_project(tmp_path))

    assert blueprint == default_blueprint()
    assert blueprint.origin["sqs"] == "cdk.json's context"
    # cdk.json leaves Kinesis off; the loop shows it with the same configuration.
    assert blueprint.origin["kinesis"] == "cdk.json's context with -c kinesisEnabled=true"
    assert blueprint.sqs is not None
    assert blueprint.sqs.function.code == CodeLocation.source_tree()


def test_context_overrides_reach_the_blueprint(tmp_path):
    blueprint = load_blueprint(
        _project(tmp_path, memorySize=1024), overrides={"timeoutSeconds": "30"}
    )

    assert blueprint.sqs is not None
    assert (blueprint.sqs.function.memory_mb, blueprint.sqs.function.timeout_s) == (1024, 30)
    assert blueprint.queues[blueprint.sqs.queue].visibility_timeout_s == 6 * 30 + 5
    assert blueprint.origin["sqs"] == "cdk.json's context with -c timeoutSeconds=30"


def test_a_bad_context_value_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match="memorySize"):
        load_blueprint(_project(tmp_path), overrides={"memorySize": "lots"})


def test_asking_for_a_template_that_was_not_synthesized_says_what_to_do(tmp_path):
    with pytest.raises(TemplateError, match="make synth"):
        load_blueprint(_project(tmp_path), template=True)


def test_a_template_without_kinesis_is_completed_from_the_configuration(tmp_path):
    def without_kinesis(template: dict[str, Any]) -> None:
        del template["Resources"][KINESIS_MAPPING]

    cdk_out(tmp_path, edit=without_kinesis)
    blueprint = load_blueprint(_project(tmp_path), template=True)

    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    assert blueprint.sqs.function.logical_id == SQS_FUNCTION
    assert "Forwarder.template.json" in blueprint.origin["sqs"]
    assert blueprint.kinesis == default_blueprint().kinesis
    assert blueprint.origin["kinesis"] == "cdk.json's context with -c kinesisEnabled=true"
    assert "KinesisDeadLetterQueue" in blueprint.queues
    assert blueprint.kinesis.mapping.on_failure in blueprint.buckets


def test_references_resolve_to_the_local_resources(tmp_path, deploy, sqs):
    blueprint = read_blueprint(cdk_out(tmp_path) / "Forwarder.template.json")
    deployment = deploy(blueprint)
    letters = deployment.queue("KinesisDeadLetterQueue")
    stream = deployment.stream("KinesisStream")

    assert deployment.resolve({"Ref": "KinesisDeadLetterQueue"}) == letters.url
    arn = {"Fn::GetAtt": ["KinesisDeadLetterQueue", "Arn"]}
    assert deployment.resolve(arn) == letters.arn
    assert deployment.resolve({"Fn::GetAtt": "KinesisStream.Arn"}) == stream.arn
    sub = {"Fn::Sub": "${AWS::Region}/${KinesisDeadLetterQueue.QueueName}"}
    assert deployment.resolve(sub) == f"us-east-1/{letters.name}"
    join = {"Fn::Join": [":", ["a", {"Ref": "AWS::AccountId"}]]}
    assert deployment.resolve(join) == "a:123456789012"
    with pytest.raises(UnresolvableReference):
        deployment.resolve({"Ref": "SomethingElse"})
    with pytest.raises(UnresolvableReference):
        deployment.resolve({"Fn::ImportValue": "shared-queue"})

    redrive = sqs.get_queue_attributes(
        QueueUrl=deployment.queue("SqsQueue").url, AttributeNames=["RedrivePolicy"]
    )["Attributes"]["RedrivePolicy"]
    assert json.loads(redrive) == {
        "deadLetterTargetArn": deployment.queue("SqsDeadLetterQueue").arn,
        "maxReceiveCount": 5,
    }

    assert blueprint.kinesis is not None
    environment, warnings = deployment.function_environment(blueprint.kinesis.function)
    assert environment["DEAD_LETTER_QUEUE_URL"] == letters.url
    assert environment["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] == deployment.endpoints.logs_url
    assert environment["AWS_ENDPOINT_URL_SQS"] == deployment.endpoints.moto_url
    assert warnings == []


def test_a_variable_that_cannot_be_resolved_is_left_out_with_a_warning(tmp_path, deploy):
    def imported_queue(template: dict[str, Any]) -> None:
        function = template["Resources"]["KinesisFunction"]["Properties"]
        function["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"] = {
            "Fn::ImportValue": "shared-dead-letters"
        }

    blueprint = read_blueprint(cdk_out(tmp_path, edit=imported_queue) / "Forwarder.template.json")
    deployment = deploy(blueprint)

    assert blueprint.kinesis is not None
    environment, warnings = deployment.function_environment(blueprint.kinesis.function)
    assert "DEAD_LETTER_QUEUE_URL" not in environment
    assert len(warnings) == 1
    assert "DEAD_LETTER_QUEUE_URL" in warnings[0]


def test_an_existing_queue_or_stream_named_by_arn_is_made_locally(tmp_path, deploy):
    def existing_sources(template: dict[str, Any]) -> None:
        resources = template["Resources"]
        resources["SqsEventSourceMapping798A1ECC"]["Properties"]["EventSourceArn"] = (
            "arn:aws:sqs:eu-west-1:210987654321:team-logs"
        )
        resources[KINESIS_MAPPING]["Properties"]["EventSourceArn"] = (
            "arn:aws:kinesis:eu-west-1:210987654321:stream/team-stream"
        )

    blueprint = read_blueprint(cdk_out(tmp_path, edit=existing_sources) / "Forwarder.template.json")

    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    assert blueprint.sqs.queue == "team-logs"
    assert blueprint.queues["team-logs"].redrive_target is None  # its owner's business
    assert blueprint.kinesis.stream.logical_id == "team-stream"
    deployment = deploy(blueprint)
    assert deployment.queue("team-logs").name.endswith("-team-logs")
    assert deployment.stream("team-stream").name.endswith("-team-stream")


def test_a_mapping_through_a_stream_consumer_reads_the_consumer_s_stream(tmp_path):
    """Enhanced fan-out (kinesisEnhancedFanOut): the mapping names the consumer; the local
    loop reads its stream."""

    def through_a_consumer(template: dict[str, Any]) -> None:
        resources = template["Resources"]
        resources["KinesisConsumer1A2B3C4D"] = {
            "Type": "AWS::Kinesis::StreamConsumer",
            "Properties": {
                "ConsumerName": "forwarder",
                "StreamARN": {"Fn::GetAtt": ["KinesisStream7646B500", "Arn"]},
            },
        }
        resources[KINESIS_MAPPING]["Properties"]["EventSourceArn"] = {
            "Fn::GetAtt": ["KinesisConsumer1A2B3C4D", "ConsumerARN"]
        }

    blueprint = read_blueprint(
        cdk_out(tmp_path, edit=through_a_consumer) / "Forwarder.template.json"
    )

    assert blueprint.kinesis is not None
    assert blueprint.kinesis.stream.logical_id == "KinesisStream"
