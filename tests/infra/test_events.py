"""The sample events in ``events/``: reproducible, and accepted by the real handler.

Each file goes through ``forwarder.handler.handler`` (against moto behind the strict CloudWatch
Logs layer of ``tests/conftest.py``) with the environment the synthesized template gives the
function that would receive it, its timestamps moved to now (CloudWatch Logs refuses old events).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import ROOT, VARIANTS

EVENTS_DIR = ROOT / "events"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("events_generate", EVENTS_DIR / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _load_generator()
FILES = sorted(EVENTS_DIR.glob("*.json"))
#: Which function receives which sample event (variant of the template, logical id).
RECEIVER = {
    "sqs.json": ("default", "SqsFunction"),
    "sqs-fifo.json": ("fifo", "SqsFunction"),
    "kinesis.json": ("kinesis", "KinesisFunction"),
    "kinesis-subscription.json": ("kinesis", "KinesisFunction"),
}


def test_every_kind_of_event_is_there():
    assert {f.name for f in FILES} == set(generate.EVENTS) == set(RECEIVER)


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_files_are_what_the_generator_writes(path: Path):
    expected = generate.EVENTS[path.name](generate.FIXED_NOW_MS)
    assert json.loads(path.read_text()) == expected, "run: .venv/bin/python events/generate.py"


def expected_events(event: dict) -> list[tuple[str, str, str]]:
    """(log group, log stream, message) of every log event the event carries."""
    found = []
    for record in event["Records"]:
        document, wrapping = generate._decode(record)
        if wrapping == "kinesis-gzip":
            group, stream = document["logGroup"], document["logStream"]
        else:
            group, stream = document["logGroupName"], document["logStreamName"]
        messages = [e["message"] for e in document.get("logEvents", [document])]
        found += [(group, stream, m) for m in messages]
    return found


def test_payloads_use_allowed_log_groups_and_every_form():
    forms = set()
    for path in FILES:
        event = json.loads(path.read_text())
        for group, _, _ in expected_events(event):
            assert group.startswith("/app/"), "the default allowedLogGroups is /app/*"
        for record in event["Records"]:
            document, wrapping = generate._decode(record)
            kind = "many" if "logEvents" in document else "one"
            if wrapping == "kinesis-gzip":
                assert document["messageType"] == "DATA_MESSAGE"
                assert {"owner", "subscriptionFilters"} <= set(document)
                kind = "subscription"
            forms.add((wrapping, kind))
    assert forms == {
        ("sqs", "one"),
        ("sqs", "many"),
        ("kinesis", "one"),
        ("kinesis", "many"),
        ("kinesis-gzip", "subscription"),
    }


def test_refreshed_moves_every_timestamp_by_the_same_amount():
    event = generate.kinesis_subscription_event(1_000_000)
    fresh = generate.refreshed(event, now_ms=5_000_000)
    (old_doc, _), (new_doc, _) = (generate._decode(e["Records"][0]) for e in (event, fresh))
    shifts = {
        new["timestamp"] - old["timestamp"]
        for old, new in zip(old_doc["logEvents"], new_doc["logEvents"], strict=True)
    }
    assert shifts == {5_000_000 - max(e["timestamp"] for e in old_doc["logEvents"])}


def function_environment(synth, variant: str, logical_id: str) -> dict[str, Any]:
    template = synth(**VARIANTS[variant]).json
    return template["Resources"][logical_id]["Properties"]["Environment"]["Variables"]


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_the_handler_accepts_every_sample_event(
    path, synth, load_handler, strict, logs, sqs, s3, checkpoint_table
):
    from local.lambda_events import LambdaContext, failed_ids
    from local.readback import read_stream as read_events

    variant, logical_id = RECEIVER[path.name]
    env = {}
    for key, value in function_environment(synth, variant, logical_id).items():
        if key.startswith("POWERTOOLS_"):
            continue  # the test session's own service name and namespace stay in force
        if key == "DEAD_LETTER_QUEUE_URL":
            value = sqs.create_queue(QueueName=f"sample-events-dlq-{logical_id}")["QueueUrl"]
        if key == "DEAD_LETTER_BUCKET":
            value = f"sample-events-{logical_id.lower()}"
            s3.create_bucket(Bucket=value)
        if key == "CHECKPOINT_TABLE":
            value = checkpoint_table
        assert isinstance(value, str), f"{key} is not a plain string in the template"
        env[key] = value
    event = generate.refreshed(json.loads(path.read_text()))
    expected = expected_events(event)
    for group in {g for g, _, _ in expected}:
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)

    handler = load_handler(**env)
    response = handler.handler(event, LambdaContext())

    assert failed_ids(response) == []
    for group, stream, message in expected:
        assert message in [m for _, m in read_events(logs, group, stream)]
