"""Reading the synthesized CDK template, and resolving its references to local resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.deploy import UnresolvableReference
from local.specs import CodeLocation, default_blueprint
from local.template import find_template, load_blueprint, read_blueprint

FIXTURE = Path(__file__).parent / "fixtures" / "cdk-template.json"
ASSET = "asset.2725f765306fe6f8fb688d528ff46918b8491c851345da7a9f9f407dd29f4011"
SQS_FUNCTION = "SqsForwarderFunctionE818613D"
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
    assert queue.redrive_target == "SqsDeadLetterQueue4003350D"
    mapping = kinesis.mapping
    assert (mapping.batch_size, mapping.batching_window_s) == (100, 1)
    assert (mapping.bisect_on_error, mapping.max_retry_attempts) == (True, 3)
    assert (mapping.max_record_age_s, mapping.starting_position) == (3600, "TRIM_HORIZON")
    assert mapping.on_failure == "KinesisOnFailureQueue05C48A57"
    assert mapping.report_batch_item_failures
    assert kinesis.stream.shard_count == 1
    assert kinesis.function.environment["DEAD_LETTER_QUEUE_URL"] == {
        "Ref": "KinesisDeadLetterQueue37B8E112"
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


def test_without_cdk_out_the_built_in_defaults_are_used(tmp_path):
    blueprint = load_blueprint(tmp_path)

    assert blueprint == default_blueprint()
    assert "built-in defaults" in blueprint.origin["sqs"]


def test_a_template_without_kinesis_is_completed_with_the_default_source(tmp_path):
    def without_kinesis(template: dict[str, Any]) -> None:
        del template["Resources"][KINESIS_MAPPING]

    blueprint = load_blueprint(cdk_out(tmp_path, edit=without_kinesis).parent)

    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    assert blueprint.sqs.function.logical_id == SQS_FUNCTION
    assert blueprint.kinesis == default_blueprint().kinesis
    assert "built-in defaults" in blueprint.origin["kinesis"]
    assert "KinesisOnFailureQueue" in blueprint.queues


def test_references_resolve_to_the_local_resources(tmp_path, deploy, sqs):
    blueprint = read_blueprint(cdk_out(tmp_path) / "Forwarder.template.json")
    deployment = deploy(blueprint)
    letters = deployment.queue("KinesisDeadLetterQueue37B8E112")
    stream = deployment.stream("KinesisStream7646B500")

    assert deployment.resolve({"Ref": "KinesisDeadLetterQueue37B8E112"}) == letters.url
    arn = {"Fn::GetAtt": ["KinesisDeadLetterQueue37B8E112", "Arn"]}
    assert deployment.resolve(arn) == letters.arn
    assert deployment.resolve({"Fn::GetAtt": "KinesisStream7646B500.Arn"}) == stream.arn
    sub = {"Fn::Sub": "${AWS::Region}/${KinesisDeadLetterQueue37B8E112.QueueName}"}
    assert deployment.resolve(sub) == f"us-east-1/{letters.name}"
    join = {"Fn::Join": [":", ["a", {"Ref": "AWS::AccountId"}]]}
    assert deployment.resolve(join) == "a:123456789012"
    with pytest.raises(UnresolvableReference):
        deployment.resolve({"Ref": "SomethingElse"})
    with pytest.raises(UnresolvableReference):
        deployment.resolve({"Fn::ImportValue": "shared-queue"})

    redrive = sqs.get_queue_attributes(
        QueueUrl=deployment.queue("SqsQueueFC12DF36").url, AttributeNames=["RedrivePolicy"]
    )["Attributes"]["RedrivePolicy"]
    assert json.loads(redrive) == {
        "deadLetterTargetArn": deployment.queue("SqsDeadLetterQueue4003350D").arn,
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
        function = template["Resources"]["KinesisForwarderFunction2FE456AF"]["Properties"]
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
