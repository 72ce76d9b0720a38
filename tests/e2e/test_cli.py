"""``python -m local``: the commands as a user runs them."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import local.state
from local.cli import main
from local.specs import ROOT


@pytest.fixture
def no_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state file of our own that no serve has written."""
    path = tmp_path / "state.json"
    monkeypatch.setattr(local.state, "STATE_PATH", path)
    return path


def test_event_prints_a_lambda_event_for_the_payloads(capsys):
    assert main(["event", "kinesis", "first", "second"]) == 0

    event = json.loads(capsys.readouterr().out)
    data = [base64.b64decode(r["kinesis"]["data"]).decode() for r in event["Records"]]
    assert data == ["first", "second"]
    assert {r["eventSource"] for r in event["Records"]} == {"aws:kinesis"}


def test_invoke_runs_the_function_once_in_its_own_process(capsys, tmp_path, no_serve):
    body = json.dumps({"logGroupName": "/app/cli", "logStreamName": "s", "message": "hello"})
    assert main(["event", "sqs", body, "not an event object"]) == 0
    event_file = tmp_path / "event.json"
    event_file.write_text(capsys.readouterr().out)

    code = main(["invoke", str(event_file), "--create-log-group", "/app/cli"])

    captured = capsys.readouterr()
    event = json.loads(event_file.read_text())
    response = json.loads(captured.out)
    # the plain-text record has no destination (no DEFAULT_LOG_GROUP): reported failed
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert code == 0
    assert "fresh local endpoints" in captured.err
    assert "REPORT RequestId" in captured.err
    assert "record not delivered" in captured.err


def test_invoke_reports_a_function_error(capsys, tmp_path, no_serve):
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps({"Records": [{"eventSource": "aws:sqs"}]}))

    code = main(["invoke", str(event_file), "--in-process", "--env", "MAX_CONCURRENT_REQUESTS=0"])

    error = json.loads(capsys.readouterr().out)
    assert code == 1
    assert error["errorType"] == "ConfigurationError"
    assert (
        "MAX_CONCURRENT_REQUESTS: expected an integer from 1 to 64, got '0'"
        in error["errorMessage"]
    )


def test_send_and_read_need_a_running_serve(capsys, no_serve):
    assert main(["send", "hello"]) == 2
    assert main(["read"]) == 2
    assert main(["replay"]) == 2
    assert "no `python -m local serve` is running" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_send_and_read_as_a_user_would(tmp_path: Path) -> None:
    environment = os.environ | {"FORWARDER_LOCAL_STATE": str(tmp_path / "state.json")}
    command = [sys.executable, "-m", "local"]
    serve = subprocess.Popen(
        [*command, "serve", "--create-log-group", "/app/cli"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(120, serve.kill)  # never hang the suite on a stuck serve
    watchdog.start()
    try:
        assert serve.stdout is not None
        banner = []
        for line in serve.stdout:
            banner.append(line)
            if line.startswith("Try:"):
                break
        assert "Local endpoints are up" in "".join(banner)

        def cli(*arguments: str) -> str:
            done = subprocess.run(
                [*command, *arguments],
                cwd=ROOT,
                env=environment,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            return done.stdout

        assert "sent to sqs" in cli("send", "--group", "/app/cli", "from the queue")
        assert "sent to kinesis" in cli("send", "--to", "kinesis", "--group", "/app/cli", "hi")
        kpl = ("send", "--to", "kinesis", "--aggregate", "--group", "/app/cli", "kpl 1", "kpl 2")
        assert "(a KPL aggregate of 2 user records)" in cli(*kpl)
        deadline = time.monotonic() + 40
        landed = ""
        while time.monotonic() < deadline:
            landed = cli("read", "/app/cli")
            if all(text in landed for text in ("from the queue", "hi", "kpl 1", "kpl 2")):
                break
            time.sleep(0.5)
        assert "from the queue" in landed
        assert "kpl 2" in landed
        assert "/app/cli cli: 4 event(s)" in landed
        # Too new for now: the mapping retries it, gives it up to the failure store, and the
        # replay finds it there, with its data; still too new, it fails again.
        early = {"logGroupName": "/app/cli", "logStreamName": "early", "message": "early"}
        early["timestamp"] = int(time.time() * 1000) + 130 * 60_000
        cli("send", "--to", "kinesis", json.dumps(early))
        replayed = None
        while time.monotonic() < deadline + 40:
            replayed = subprocess.run(
                [*command, "replay"], cwd=ROOT, env=environment, capture_output=True, text=True
            )
            if "record(s)" in replayed.stdout:
                break
            time.sleep(0.5)
        assert replayed is not None
        assert "1 record(s), 1 failed again" in replayed.stdout, replayed.stderr
        assert replayed.returncode == 1
    finally:
        serve.send_signal(signal.SIGINT)
        output, _ = serve.communicate(timeout=30)
        watchdog.cancel()
    assert serve.returncode == 0, output
    assert "stopping" in output
    assert not (tmp_path / "state.json").exists()
