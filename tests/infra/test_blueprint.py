"""The blueprint the local loop runs is what the CDK app synthesizes.

``infra.blueprint.export_blueprint`` makes it from the typed configuration without CDK;
``local.template.read_blueprint`` reads it back from a template. For every variant of the app (and
for one real ``cdk synth`` through the CLI) the two must agree on every function, environment,
mapping, queue, stream and bucket: a construct that changes what it builds without the blueprint
following fails here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from infra.blueprint import (
    FAILURE_STORE_BUCKET,
    KINESIS_DEAD_LETTER_QUEUE,
    SQS_FUNCTION,
    Blueprint,
    export_blueprint,
)
from infra.config import ForwarderConfig
from local.template import read_blueprint
from tests.infra.conftest import CLI_CONTEXT, STACK_NAME, VARIANTS, cdk_context


def _exported(**context: object) -> Blueprint:
    return export_blueprint(ForwarderConfig.from_context(cdk_context(**context)))


def _read(template: dict, tmp_path: Path) -> Blueprint:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    return read_blueprint(path)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_exported_blueprint_is_what_each_variant_synthesizes(variant, synth, tmp_path):
    synthesized = _read(synth(**VARIANTS[variant]).json, tmp_path)
    exported = _exported(**VARIANTS[variant])

    assert exported.without_origin_and_code() == synthesized.without_origin_and_code()


def test_the_exported_blueprint_is_what_cdk_synth_writes(cli_assembly):
    synthesized = read_blueprint(cli_assembly / f"{STACK_NAME}.template.json")
    exported = _exported(**CLI_CONTEXT)

    assert exported.without_origin_and_code() == synthesized.without_origin_and_code()
    # What the comparison leaves out: the template runs the bundled asset, the export the source.
    assert synthesized.sqs is not None
    assert exported.sqs is not None
    assert synthesized.sqs.function.code.paths[0].parent == cli_assembly
    assert exported.sqs.function.code.paths[0].name == "lambda_src"


def test_the_comparison_sees_a_difference(synth, tmp_path):
    """A blueprint that differs in one environment value is not equal (the test above can fail)."""
    synthesized = _read(synth(**VARIANTS["kinesis"]).json, tmp_path)
    exported = _exported(**VARIANTS["kinesis"])
    assert exported.sqs is not None
    function = exported.sqs.function
    changed = dict(function.environment) | {"TIME_RESERVE_MS": "2999"}
    drifted = replace(
        exported, sqs=replace(exported.sqs, function=replace(function, environment=changed))
    )

    assert drifted.without_origin_and_code() != synthesized.without_origin_and_code()


def test_references_are_named_without_the_cdk_hash():
    exported = _exported(kinesisEnabled=True, sqsInvalidRecords="dead-letter")
    assert exported.sqs is not None
    assert exported.kinesis is not None

    assert exported.sqs.function.logical_id == SQS_FUNCTION
    assert exported.kinesis.function.environment["DEAD_LETTER_QUEUE_URL"] == {
        "Ref": KINESIS_DEAD_LETTER_QUEUE
    }
    assert exported.sqs.function.environment["DEAD_LETTER_BUCKET"] == {"Ref": FAILURE_STORE_BUCKET}
    assert set(exported.buckets) == {FAILURE_STORE_BUCKET}


def test_the_e2e_fixture_is_still_what_the_app_synthesizes():
    """``tests/e2e/fixtures/cdk-template.json`` is a trimmed synth: it must not drift."""
    fixture = Path(__file__).parents[1] / "e2e" / "fixtures" / "cdk-template.json"

    exported = _exported(kinesisEnabled=True)
    assert read_blueprint(fixture).without_origin_and_code() == exported.without_origin_and_code()
