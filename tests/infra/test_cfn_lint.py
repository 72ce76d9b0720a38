"""cfn-lint on the synthesized templates: the CLI's (with asset metadata) and every variant's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import STACK_NAME, VARIANTS

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
#: W3005 "dependency already enforced by a GetAtt": CDK itself puts the function's role in
#: DependsOn as well as in Role's GetAtt. Redundant, harmless, and not ours to remove.
IGNORED = ["W3005"]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def cfn_lint(*templates: Path) -> subprocess.CompletedProcess:
    command = [str(CFN_LINT), "--regions", *REGIONS, "--ignore-checks", *IGNORED, "--"]
    return subprocess.run(
        [*command, *map(str, templates)], capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_cli_template_passes_cfn_lint(cli_assembly):
    result = cfn_lint(cli_assembly / f"{STACK_NAME}.template.json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_variant_passes_cfn_lint(synth, tmp_path):
    files = []
    for name, context in VARIANTS.items():
        path = tmp_path / f"{name}.template.json"
        path.write_text(json.dumps(synth(**context).json, indent=1))
        files.append(path)
    result = cfn_lint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_would_catch_an_error(tmp_path):
    broken = {"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {}}}}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = cfn_lint(path)
    assert result.returncode != 0
    assert "E3003" in result.stdout  # required properties missing
