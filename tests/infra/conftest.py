"""Fixtures of the CDK app's tests: synthesized templates, shared so that each is built once.

- ``synth(**context)``: the app (with cdk-nag) synthesized in-process with ``cdk.json``'s context
  plus overrides, bundling skipped (``aws:cdk:bundling-stacks`` = []): fast, no pip. Each distinct
  context is synthesized once per session.
- ``cli_assembly``: one real ``cdk synth`` through the pinned CLI (the only way to get the
  ``aws:asset:path`` metadata SAM needs), with the asset bundled by pip, Kinesis and SQS both on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Before anything starts jsii's Node process: Node 20's end-of-life banner is noise here.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = json.loads((ROOT / "cdk.json").read_text())
STACK_NAME = CDK_JSON["context"]["stackName"]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
CDK_CLI = ROOT / "node_modules" / ".bin" / "cdk"

#: Context of the CLI synth shared by the SAM, cfn-lint and asset tests: every source on.
CLI_CONTEXT = {"kinesisEnabled": "true"}


def cdk_context(**overrides: Any) -> dict[str, Any]:
    """cdk.json's context with overrides, bundling skipped (assertions need no asset), and the
    construct paths recorded as the CLI records them (tests find resources by path)."""
    return {
        **CDK_JSON["context"],
        **overrides,
        "aws:cdk:bundling-stacks": [],
        "aws:cdk:enable-path-metadata": True,
    }


@dataclass
class Synthesized:
    """One synthesized variant: the stack, its template and cdk-nag's validation report."""

    stack: Any
    template: Any  # aws_cdk.assertions.Template
    outdir: Path
    seconds: float
    json: dict = field(init=False)

    def __post_init__(self) -> None:
        self.json = self.template.to_json()

    @property
    def report(self) -> dict:
        return json.loads((self.outdir / "validation-report.json").read_text())

    def resources(self, type_: str) -> dict[str, dict]:
        return {k: v for k, v in self.json["Resources"].items() if v["Type"] == type_}

    def one(self, type_: str, path_part: str = "") -> tuple[str, dict]:
        """The only resource of a type whose construct path contains ``path_part``."""
        found = [
            (k, v)
            for k, v in self.resources(type_).items()
            if path_part in v.get("Metadata", {}).get("aws:cdk:path", k)
        ]
        assert len(found) == 1, f"expected one {type_} matching {path_part!r}, got {found}"
        return found[0]

    def logical_id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)

    def policy_statements(self) -> list[dict]:
        statements = []
        for resource in self.resources("AWS::IAM::Policy").values():
            statements += resource["Properties"]["PolicyDocument"]["Statement"]
        for resource in self.resources("AWS::IAM::Role").values():
            for policy in resource["Properties"].get("Policies", []):
                statements += policy["PolicyDocument"]["Statement"]
        return statements

    def outputs(self) -> dict[str, dict]:
        return self.json.get("Outputs", {})


def _synthesize(overrides: dict[str, Any], outdir: Path) -> Synthesized:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.stack import build_app

    started = time.monotonic()
    _app, stack = build_app(cdk.App(context=cdk_context(**overrides), outdir=str(outdir)))
    template = Template.from_stack(stack)  # runs the cdk-nag plugin: a finding raises here
    return Synthesized(stack, template, outdir, time.monotonic() - started)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Synthesized]:
    """``synth(**context_overrides)``: each distinct context synthesized once per session."""
    cache: dict[str, Synthesized] = {}

    def run(**overrides: Any) -> Synthesized:
        key = json.dumps(overrides, sort_keys=True)
        if key not in cache:
            cache[key] = _synthesize(overrides, tmp_path_factory.mktemp("synth"))
        return cache[key]

    return run


#: The variants the issue names, by name; tests iterate over them.
KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "kinesis": {"kinesisEnabled": True},
    "existing-queue": {
        "sqsQueueArn": "arn:aws:sqs:eu-west-1:111122223333:existing-logs",
        "sqsQueueKmsKeyArn": KEY_ARN,
    },
    "fifo": {"sqsFifo": True},
    "existing-stream": {
        "sqsEnabled": False,
        "kinesisEnabled": True,
        "kinesisStreamArn": "arn:aws:kinesis:eu-west-1:111122223333:stream/existing-logs",
        "kinesisStreamKmsKeyArn": KEY_ARN,
    },
    # The mapping's on-failure destination a queue (metadata only), and no dead-lettering: no
    # failure store for Kinesis at all.
    "kinesis-on-failure-queue": {
        "kinesisEnabled": True,
        "kinesisOnFailure": "sqs",
        "kinesisInvalidRecords": "fail",
    },
    # The stack makes the key of the groups the function creates; its own logs under a key.
    "log-keys": {
        "createLogGroups": True,
        "newLogGroupKmsKey": "create",
        "newLogGroupRetentionDays": 14,
        "logKmsKeyArn": KEY_ARN,
    },
    "options": {
        "allowedLogGroups": "/app/*,/aws/lambda/orders-?,/exact/name",
        "createLogGroups": "true",
        "newLogGroupRetentionDays": "30",
        "newLogGroupKmsKeyArn": KEY_ARN,
        "newLogGroupClass": "INFREQUENT_ACCESS",
        "newLogGroupTags": '{"team": "platform"}',
        "newLogGroupDeletionProtection": "true",
        "tracing": "false",
        "alarmTopicArn": "arn:aws:sns:eu-west-1:111122223333:ops-alarms",
        "kinesisEnabled": "true",
        "kinesisStreamMode": "on-demand",
        "kinesisEnhancedFanOut": "true",
        "sqsInvalidRecords": "dead-letter",
        "defaultLogGroup": "/app/default",
        "defaultLogStream": "unrouted",
        "memorySize": "1024",
        "timeoutSeconds": "120",
    },
}


@pytest.fixture(scope="session")
def cli_assembly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``cdk synth`` through the pinned CLI into a fresh directory (asset bundled with pip)."""
    if not CDK_CLI.exists():
        pytest.fail("the CDK CLI is not installed: run `make setup` (npm ci) first")
    outdir = tmp_path_factory.mktemp("cdk.out")
    command = [str(CDK_CLI), "synth", "--quiet", "--output", str(outdir)]
    for key, value in CLI_CONTEXT.items():
        command += ["--context", f"{key}={value}"]
    env = os.environ | {
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_VERSION_CHECK": "1",
    }
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, f"cdk synth failed:\n{result.stdout}\n{result.stderr}"
    (outdir / "synth-seconds.txt").write_text(f"{seconds:.1f}\n")
    yield outdir
    shutil.rmtree(outdir, ignore_errors=True)


@pytest.fixture(scope="session")
def cli_template(cli_assembly: Path) -> dict:
    return json.loads((cli_assembly / f"{STACK_NAME}.template.json").read_text())


@pytest.fixture(scope="session")
def cli_asset(cli_assembly: Path, cli_template: dict) -> Path:
    """The bundled asset directory both functions point at."""
    paths = {
        r["Metadata"]["aws:asset:path"]
        for r in cli_template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert len(paths) == 1, f"expected one shared asset, got {paths}"
    return cli_assembly / paths.pop()
