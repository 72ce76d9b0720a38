"""SAM local testing: the SAM CLI's own providers resolve the CLI-synthesized template's functions
to the bundled asset, exactly as ``sam local invoke`` does before it starts a container.

Docker is not available here, so the container itself is not started; see the README (Testing
locally with SAM) for the ``sam local invoke`` / ``sam local start-lambda`` commands.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.infra.conftest import ROOT, SAM_PYTHON, STACK_NAME

SCRIPT = Path(__file__).with_name("sam_functions.py")
EVENTS = sorted((ROOT / "events").glob("*.json"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sam_functions(cli_assembly: Path) -> dict[str, dict]:
    if not SAM_PYTHON.exists():
        pytest.fail("the SAM CLI's venv is missing: run `make setup`")
    template = cli_assembly / f"{STACK_NAME}.template.json"
    result = subprocess.run(
        [str(SAM_PYTHON), str(SCRIPT), str(template)],
        capture_output=True,
        text=True,
        cwd=cli_assembly,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {f["function_id"]: f for f in json.loads(result.stdout)}


def test_sam_finds_both_functions_by_their_logical_ids(sam_functions):
    assert set(sam_functions) == {"SqsFunction", "KinesisFunction"}
    for function in sam_functions.values():
        assert function["found_by_logical_id"]
        assert function["found_by_name"]


def test_sam_resolves_handler_runtime_and_architecture(sam_functions):
    for function in sam_functions.values():
        assert function["handler"] == "forwarder.handler.handler"
        assert function["runtime"] == "python3.14"
        assert function["runtime_supported"]
        assert function["architectures"] == ["arm64"]
        assert function["packagetype"] == "Zip"
        assert (function["memory"], function["timeout"]) == (512, 60)


def test_sam_code_directory_is_the_bundled_asset(sam_functions, cli_assembly, cli_asset):
    for function in sam_functions.values():
        code = (cli_assembly / function["codeuri"]).resolve()
        assert code == cli_asset.resolve()
        assert (code / "aws_lambda_powertools").is_dir()
        assert (code / "boto3").is_dir()


def test_sam_code_directory_holds_the_handler_module(sam_functions, cli_assembly):
    for function in sam_functions.values():
        module, _, attribute = function["handler"].rpartition(".")
        source = cli_assembly / function["codeuri"] / (module.replace(".", "/") + ".py")
        assert source.is_file()
        assert f"def {attribute}(" in source.read_text()


def test_template_carries_the_asset_metadata_sam_needs(cli_template):
    for logical_id in ("SqsFunction", "KinesisFunction"):
        metadata = cli_template["Resources"][logical_id]["Metadata"]
        assert metadata["aws:asset:property"] == "Code"
        assert metadata["aws:asset:path"].startswith("asset.")
        assert metadata["aws:asset:is-bundled"] is True


@pytest.mark.parametrize("event", EVENTS, ids=[e.name for e in EVENTS])
def test_sample_events_are_lambda_event_shapes(event):
    """The shape ``sam local generate-event sqs|kinesis`` gives, which ``-e`` passes as is."""
    records = json.loads(event.read_text())["Records"]
    assert records
    for record in records:
        if record["eventSource"] == "aws:sqs":
            assert {"messageId", "receiptHandle", "body", "attributes", "eventSourceARN"} <= set(
                record
            )
            assert record["eventSourceARN"].startswith("arn:aws:sqs:")
        else:
            assert record["eventSource"] == "aws:kinesis"
            assert {"data", "sequenceNumber", "partitionKey"} <= set(record["kinesis"])
            assert record["eventID"].startswith("shardId-")
