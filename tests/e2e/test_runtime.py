"""The function in its own process: awslambdaric (from PyPI) against the local Runtime API."""

from __future__ import annotations

import http.client
import json
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from infra.blueprint import CodeLocation, FunctionSpec
from local.ric_process import RicFunction
from local.runtime_api import PREFIX, RuntimeApi

HANDLERS = """
import os
import time


def echo(event, context):
    return {
        "event": event,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "function_arn": context.invoked_function_arn,
        "function_name": context.function_name,
        "greeting": os.environ.get("GREETING"),
        "handler": os.environ["_HANDLER"],
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "home_config": os.environ.get("AWS_CONFIG_FILE"),
    }


def boom(event, context):
    raise ValueError(f"boom {event['n']}")


def slow(event, context):
    time.sleep(event["seconds"])
    return "finished"


def crash(event, context):
    print("about to exit", flush=True)
    os._exit(3)
"""


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("task")
    (root / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    return root


def function(code: Path, handler: str, timeout_s: int = 3, **env: str) -> RicFunction:
    spec = FunctionSpec(
        "Probe", handler=handler, timeout_s=timeout_s, code=CodeLocation((code,), "test code")
    )
    arn = "arn:aws:lambda:us-east-1:123456789012:function:probe"
    return RicFunction("probe", arn, spec, env)


def test_the_response_and_the_context_come_through_the_runtime_api(code):
    probe = function(code, "handlers.echo", timeout_s=3, GREETING="hi")
    try:
        first = probe.invoke({"n": 1})
        second = probe.invoke({"n": 2})
    finally:
        probe.close()

    assert first.error is None
    answer = first.response
    assert answer["event"] == {"n": 1}
    assert 0 < answer["remaining_ms"] <= 3000
    assert answer["request_id"] == first.request_id
    assert answer["function_arn"].endswith(":function:probe")
    assert answer["function_name"] == "probe"
    assert answer["greeting"] == "hi"
    assert (answer["handler"], answer["task_root"]) == ("handlers.echo", str(code))
    assert answer["home_config"] == "/dev/null"  # the user's ~/.aws stays out of it
    assert second.response["event"] == {"n": 2}
    assert probe.cold_starts == 1
    reports = [line for line in probe.logs.lines() if line.startswith("REPORT")]
    assert len(reports) == 2
    assert "Init Duration" in reports[0]
    assert "Init Duration" not in reports[1]


def test_a_handler_exception_is_an_error_and_the_process_carries_on(code):
    probe = function(code, "handlers.boom")
    try:
        failed = probe.invoke({"n": 7})
        again = probe.invoke({"n": 8})
    finally:
        probe.close()

    assert failed.error is not None
    assert (failed.error.error_type, failed.error.message) == ("ValueError", "boom 7")
    assert again.error is not None
    assert again.error.message == "boom 8"
    assert probe.cold_starts == 1


def test_a_timeout_kills_the_process_and_the_next_call_starts_a_new_one(code):
    probe = function(code, "handlers.slow", timeout_s=1)
    try:
        started = time.monotonic()
        late = probe.invoke({"seconds": 10})
        elapsed = time.monotonic() - started
        quick = probe.invoke({"seconds": 0})
    finally:
        probe.close()

    assert late.error is not None
    assert late.error.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in late.error.message
    assert elapsed < 8  # the init (a cold start) is not charged to the 1 s
    assert quick.response == "finished"
    assert probe.cold_starts == 2


def test_a_process_that_exits_is_a_runtime_exit_error(code):
    probe = function(code, "handlers.crash")
    try:
        crashed = probe.invoke({})
    finally:
        probe.close()

    assert crashed.error is not None
    assert crashed.error.error_type == "Runtime.ExitError"
    assert "exit status 3" in crashed.error.message
    assert "about to exit" in probe.logs.lines()


def test_an_init_error_is_reported_through_init_error(code):
    probe = function(code, "nowhere.handler")
    try:
        failed = probe.invoke({})
    finally:
        probe.close()

    assert failed.error is not None
    assert failed.error.error_type == "Runtime.ImportModuleError"
    assert "nowhere" in failed.error.message


def test_the_runtime_api_refuses_a_result_for_another_invocation():
    api = RuntimeApi().start()
    try:
        pending = api.submit(b'{"hello": 1}', 5000, "arn:aws:lambda:us-east-1:1:function:f")
        got: dict[str, Any] = {}

        def next_invocation() -> None:
            connection = http.client.HTTPConnection(api.address)
            connection.request("GET", f"{PREFIX}/invocation/next")
            answer = connection.getresponse()
            got["headers"] = dict(answer.getheaders())
            got["body"] = answer.read()

        runtime = threading.Thread(target=next_invocation)
        runtime.start()
        runtime.join(5)
        headers = got["headers"]
        assert got["body"] == b'{"hello": 1}'
        assert headers["Lambda-Runtime-Aws-Request-Id"] == pending.request_id
        assert int(headers["Lambda-Runtime-Deadline-Ms"]) > time.time() * 1000
        assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:f")
        assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")

        assert post(api, f"{PREFIX}/invocation/someone-else/response", b"{}") == 400
        assert not pending.done.is_set()
        assert post(api, f"{PREFIX}/invocation/{pending.request_id}/response", b'"ok"') == 202
        assert pending.done.is_set()
        assert json.loads(pending.response or b"") == "ok"
    finally:
        api.close()


def post(api: RuntimeApi, path: str, body: bytes) -> int:
    connection = http.client.HTTPConnection(api.address)
    connection.request("POST", path, body=body)
    answer = connection.getresponse()
    answer.read()
    return answer.status
