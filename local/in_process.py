"""The function called inside this interpreter: fast, for tests. Not how Lambda runs it.

The handler module is loaded afresh on the first call (a cold start; an exception there is the
call's error, and the next call tries again) with ``os.environ`` replaced by the function's
environment for the time of the import, as Lambda's runtime would see it, so that
several functions with different settings can live in one process. Each call runs in a worker
thread with a real time budget; past the timeout the call is reported as ``Sandbox.Timedout``
(the thread cannot be killed and is abandoned). ``sys.stdout`` is redirected into the function's
logs during imports and calls, which are therefore serialized across all in-process functions.
The code comes from this interpreter's ``sys.path`` (with the spec's code paths put first), not
from a bundled asset; use ``RicFunction`` for the real thing.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import redirect_stdout
from types import ModuleType
from typing import Any

from infra.blueprint import FunctionSpec
from local.function_logs import FunctionLogs, LineWriter
from local.invocation import FunctionError, Invocation
from local.lambda_events import LambdaContext

Handler = Callable[[Any, Any], Any]

_PROCESS_WIDE = threading.RLock()  # os.environ and sys.stdout belong to the whole process
_LOADS = itertools.count(1)


class InProcessFunction:
    """A function whose handler is a Python callable in this process. Pass ``handler`` to run a
    scripted stand-in instead of loading ``spec.handler`` (the tests of the loop do)."""

    def __init__(
        self,
        name: str,
        arn: str,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        *,
        handler: Handler | None = None,
        logs: FunctionLogs | None = None,
    ) -> None:
        self.name = name
        self.arn = arn
        self.logs = logs or FunctionLogs(name)
        self._spec = spec
        self._environment = dict(environment)
        self._writer = LineWriter(self.logs)
        self._handler = handler

    def invoke(self, event: Mapping[str, Any]) -> Invocation:
        """Call the handler with a copy of ``event`` and a context whose deadline is the
        function's timeout from now."""
        request_id = str(uuid.uuid4())
        timeout_s = self._spec.timeout_s
        payload = json.loads(json.dumps(event))
        outcome: dict[str, Any] = {}
        with _PROCESS_WIDE:
            if self._handler is None:
                try:
                    self._handler = self._load(self._spec, self._environment)
                except Exception as error:  # an init error: the next call tries again
                    self.logs.add(f"[ERROR] {type(error).__name__}: {error}")
                    failure = FunctionError(type(error).__name__, str(error))
                    return Invocation(request_id, error=failure)
            started = time.monotonic()
            context = LambdaContext(
                budget_ms=timeout_s * 1000,
                function_name=self.name,
                invoked_function_arn=self.arn,
                memory_limit_in_mb=self._spec.memory_mb,
                aws_request_id=request_id,
                log_group_name=f"/aws/lambda/{self.name}",
            )
            self.logs.add(f"START RequestId: {request_id} Version: $LATEST")
            worker = threading.Thread(
                target=self._call, args=(payload, context, outcome), daemon=True
            )
            with redirect_stdout(self._writer):
                worker.start()
                worker.join(timeout_s)
            duration_ms = int((time.monotonic() - started) * 1000)
            self.logs.add(f"END RequestId: {request_id}")
            self.logs.add(f"REPORT RequestId: {request_id}\tDuration: {duration_ms} ms")
        if worker.is_alive():
            error = FunctionError("Sandbox.Timedout", f"Task timed out after {timeout_s} seconds")
            return Invocation(request_id, error=error, duration_ms=duration_ms)
        return Invocation(
            request_id, outcome.get("response"), outcome.get("error"), duration_ms=duration_ms
        )

    def close(self) -> None:
        """Nothing to stop: the module stays loaded until the interpreter exits."""

    def _call(self, payload: Any, context: LambdaContext, outcome: dict[str, Any]) -> None:
        try:
            response = self._handler(payload, context)
        except Exception as error:
            outcome["error"] = FunctionError(type(error).__name__, str(error))
            return
        try:
            outcome["response"] = json.loads(json.dumps(response))
        except (TypeError, ValueError) as error:
            outcome["error"] = FunctionError("Runtime.MarshalError", str(error))

    def _load(self, spec: FunctionSpec, environment: Mapping[str, str]) -> Handler:
        module_name, attribute = spec.handler.rsplit(".", 1)
        for path in reversed(spec.code.paths):
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))
        with _PROCESS_WIDE:
            saved = dict(os.environ)
            os.environ.clear()
            # Lambda's own variable, as the runtime sets it (the forwarder sizes its budget by it).
            os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(spec.memory_mb)
            os.environ.update(environment)
            try:
                with redirect_stdout(self._writer):
                    module = _fresh_module(module_name)
            finally:
                os.environ.clear()
                os.environ.update(saved)
        # Powertools reuses the handlers of a logger of the same service name: point them here.
        service = environment.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
        for handler in logging.getLogger(service).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.stream = self._writer
        return getattr(module, attribute)


def _fresh_module(name: str) -> ModuleType:
    """A new instance of module ``name`` (its top level runs again, as on a cold start)."""
    found = importlib.util.find_spec(name)
    if found is None or found.origin is None:
        raise ImportError(f"cannot find the handler module {name!r}")
    package = name.rpartition(".")[0]
    fresh_name = f"{name}__local{next(_LOADS)}"
    spec = importlib.util.spec_from_file_location(fresh_name, found.origin)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the handler module {name!r} from {found.origin}")
    module = importlib.util.module_from_spec(spec)
    module.__package__ = package
    sys.modules[fresh_name] = module
    spec.loader.exec_module(module)
    return module
