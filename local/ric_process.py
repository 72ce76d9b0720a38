"""The function in its own process, the way Lambda runs it: ``python -m awslambdaric <handler>``
(the real runtime interface client from PyPI) against a local ``RuntimeApi``.

The process gets the function's environment and nothing of the caller's (no AWS profile, no
``~/.aws`` files), plus the variables Lambda sets (``AWS_LAMBDA_RUNTIME_API``, ``_HANDLER``,
``LAMBDA_TASK_ROOT``, ``AWS_LAMBDA_FUNCTION_*``, ``AWS_EXECUTION_ENV`` from the template's
runtime); its ``PYTHONPATH`` is the code location, its working directory the task root. It
is started on the first invocation (a cold start) and reused while it lives. A call that passes
the function's timeout kills the process (``Sandbox.Timedout``); a process that exits reports
its init error or ``Runtime.ExitError``; either way the next call starts a new process.
Everything it prints is kept in ``logs``, framed by ``START`` / ``END`` / ``REPORT`` lines as
Lambda writes them.

It runs on this machine's interpreter (the .venv's Python), not on the template's runtime
version or architecture.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from infra.blueprint import FunctionSpec
from local.function_logs import FunctionLogs
from local.invocation import FunctionError, Invocation
from local.runtime_api import PendingInvocation, RuntimeApi

INIT_TIMEOUT_S = 10.0  # Lambda's limit on the init phase of an on-demand function


class RicFunction:
    """A function served by awslambdaric in a child process; one invocation at a time."""

    def __init__(
        self,
        name: str,
        arn: str,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        *,
        logs: FunctionLogs | None = None,
        python: str = sys.executable,
        init_timeout_s: float = INIT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.arn = arn
        self.logs = logs or FunctionLogs(name)
        self.cold_starts = 0
        self._spec = spec
        self._environment = dict(environment)
        self._python = python
        self._init_timeout_s = init_timeout_s
        self._lock = threading.Lock()
        self._api: RuntimeApi | None = None
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._invocations = 0

    def invoke(self, event: Mapping[str, Any]) -> Invocation:
        """Hand ``event`` to the runtime and wait for its response, error, exit or timeout."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._stop()
                self._start()
            assert self._api is not None
            body = json.dumps(event).encode()
            pending = self._api.submit(body, self._spec.timeout_s * 1000, self.arn)
            started = time.monotonic()
            cold = self._invocations == 0
            self._invocations += 1
            self.logs.add(f"START RequestId: {pending.request_id} Version: $LATEST")
            error = self._await(pending)
            ended = time.monotonic()
            handed_out = pending.handed_out_at or ended
            duration_ms = int((ended - handed_out) * 1000)
            report = f"REPORT RequestId: {pending.request_id}\tDuration: {duration_ms} ms"
            if cold:
                report += f"\tInit Duration: {int((handed_out - started) * 1000)} ms"
            self.logs.add(f"END RequestId: {pending.request_id}")
            self.logs.add(report)
        if error is not None:
            return Invocation(pending.request_id, error=error, duration_ms=duration_ms)
        if pending.error is not None:
            document = pending.error
            error = FunctionError(
                str(document.get("errorType", "Unknown")), str(document.get("errorMessage", ""))
            )
            return Invocation(pending.request_id, error=error, duration_ms=duration_ms)
        return Invocation(pending.request_id, _decode(pending.response), duration_ms=duration_ms)

    def close(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 2 s) and its Runtime API."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=2)
            self._stop()

    def _await(self, pending: PendingInvocation) -> FunctionError | None:
        """Wait for the runtime to take the event (init) and then answer; a platform error if
        the process exits, does not initialise in time or passes the deadline."""
        init_deadline = time.monotonic() + self._init_timeout_s
        while not pending.handed_out.wait(0.02):
            if self._exited():
                return self._exit_error(pending)
            if time.monotonic() > init_deadline:
                self._stop()
                return FunctionError(
                    "Runtime.InitTimeout", f"init did not finish in {self._init_timeout_s} s"
                )
        while not pending.done.wait(0.02):
            if self._exited():
                return self._exit_error(pending)
            if time.monotonic() > pending.deadline_monotonic:
                self._stop()
                return FunctionError(
                    "Sandbox.Timedout",
                    f"RequestId: {pending.request_id} Error: Task timed out after "
                    f"{self._spec.timeout_s:.2f} seconds",
                )
        return None

    def _exited(self) -> bool:
        return self._process is not None and self._process.poll() is not None

    def _exit_error(self, pending: PendingInvocation) -> FunctionError:
        assert self._process is not None
        assert self._api is not None
        init_error = self._api.init_error
        status = self._process.returncode
        self._stop()
        if init_error is not None:
            return FunctionError(
                str(init_error.get("errorType", "Runtime.Unknown")),
                str(init_error.get("errorMessage", "")),
            )
        return FunctionError(
            "Runtime.ExitError",
            f"RequestId: {pending.request_id} Error: Runtime exited with error: "
            f"exit status {status}",
        )

    def _start(self) -> None:
        self._api = RuntimeApi().start()
        self._invocations = 0
        task_root = self._spec.code.paths[0]
        self._process = subprocess.Popen(
            [self._python, "-m", "awslambdaric", self._spec.handler],
            cwd=task_root,
            env=self._process_environment(self._api.address),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._reader = threading.Thread(
            target=self._read_output, args=(self._process,), daemon=True
        )
        self._reader.start()
        self.cold_starts += 1

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
            self._reader = None
        if self._api is not None:
            self._api.close()
            self._api = None

    def _read_output(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.logs.add(line.rstrip("\r\n"))

    def _process_environment(self, runtime_api: str) -> dict[str, str]:
        spec = self._spec
        started = datetime.now(UTC).strftime("%Y/%m/%d")
        lambda_variables = {
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(spec.code.paths[0]),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{started}/[$LATEST]{uuid.uuid4().hex}",
            "PYTHONPATH": os.pathsep.join(str(path) for path in spec.code.paths),
            # /var/task is read-only in Lambda: do not write bytecode into the asset either.
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # Keep botocore away from the user's own profiles and files.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        return self._environment | lambda_variables


def _decode(response: bytes | None) -> Any:
    if not response:
        return None
    try:
        return json.loads(response)
    except ValueError:
        return response.decode("utf-8", "replace")
