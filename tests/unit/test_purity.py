"""The pure core stays pure: importing it pulls in no AWS SDK and none of the I/O modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"
PURE = [
    "forwarder.limits",
    "forwarder.settings",
    "forwarder.model",
    "forwarder.aggregates",
    "forwarder.records",
    "forwarder.planning",
    "forwarder.verdicts",
]
FORBIDDEN_ROOTS = {"boto3", "botocore", "aiobotocore", "s3transfer", "urllib3"}
IO_MODULES = {
    "forwarder.sending",
    "forwarder.handler",
    "forwarder.forwarding",
    "forwarder.dead_letters",
    "forwarder.telemetry",
    "forwarder.sources",
}

SCRIPT = f"""
import json, sys
sys.path.insert(0, {str(LAMBDA_SRC)!r})
for name in {PURE!r}:
    __import__(name)
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(script: str) -> set[str]:
    """The modules a fresh, isolated interpreter holds after running ``script``."""
    finished = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return set(json.loads(finished.stdout))


def test_importing_the_pure_core_imports_no_aws_sdk():
    modules = modules_after(SCRIPT)
    assert set(PURE) <= modules, "the script did import the pure modules"
    assert not {m for m in modules if m.split(".")[0] in FORBIDDEN_ROOTS}
    assert not modules & IO_MODULES


def test_the_check_would_notice_an_sdk_import():
    """The same fresh interpreter does see botocore once something imports it."""
    modules = modules_after("import json, sys, botocore; print(json.dumps(sorted(sys.modules)))")
    assert "botocore" in modules
