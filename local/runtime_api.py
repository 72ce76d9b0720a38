"""A local stand-in for the Lambda Runtime API, for one execution environment.

The runtime interface client (``awslambdaric``) in the function's process talks to it exactly
as it talks to Lambda:

- ``GET  /2018-06-01/runtime/invocation/next`` blocks until an invocation is submitted, then
  answers the event with the headers ``Lambda-Runtime-Aws-Request-Id``,
  ``Lambda-Runtime-Deadline-Ms`` (epoch ms, counted from the moment the event is handed out),
  ``Lambda-Runtime-Invoked-Function-Arn`` and ``Lambda-Runtime-Trace-Id``;
- ``POST /2018-06-01/runtime/invocation/{id}/response`` and ``.../{id}/error`` complete it
  (``202``; ``400`` for an id that is not the invocation in progress);
- ``POST /2018-06-01/runtime/init/error`` records an error raised while loading the handler.

Not served: the Extensions, Telemetry and Logs APIs, response streaming, SnapStart's
``restore`` endpoints. One instance serves one process: a new process gets a new instance, so
a request left blocked by a killed process can never take the next event.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
_RESULT = re.compile(rf"{PREFIX}/invocation/([^/]+)/(response|error)")


@dataclass(eq=False)
class PendingInvocation:
    """An event submitted to the runtime; ``handed_out`` and ``done`` are set as it goes."""

    request_id: str
    body: bytes
    timeout_ms: int
    function_arn: str
    handed_out: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    deadline_ms: int = 0
    handed_out_at: float = 0.0
    deadline_monotonic: float = 0.0
    response: bytes | None = None
    error: dict[str, Any] | None = None


class RuntimeApi:
    """The Runtime API on a free port of 127.0.0.1; ``address`` is ``AWS_LAMBDA_RUNTIME_API``."""

    def __init__(self) -> None:
        self._queue: queue.Queue[PendingInvocation] = queue.Queue()
        self._active: PendingInvocation | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.init_error: dict[str, Any] | None = None
        handler = type("Handler", (_RuntimeHandler,), {"api": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RuntimeApi:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def submit(self, body: bytes, timeout_ms: int, function_arn: str) -> PendingInvocation:
        """Queue an event for the runtime's next ``/next``."""
        pending = PendingInvocation(str(uuid.uuid4()), body, timeout_ms, function_arn)
        self._queue.put(pending)
        return pending

    def next_invocation(self) -> PendingInvocation | None:
        """Block until an event is queued (``None`` once closing); start its clock."""
        while not self._closing.is_set():
            try:
                pending = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            with self._lock:
                self._active = pending
            pending.deadline_ms = int(time.time() * 1000) + pending.timeout_ms
            pending.handed_out_at = time.monotonic()
            pending.deadline_monotonic = pending.handed_out_at + pending.timeout_ms / 1000
            pending.handed_out.set()
            return pending
        return None

    def complete(self, request_id: str, response: bytes | None, error: Any) -> bool:
        """Record the result of the invocation in progress; ``False`` for any other id."""
        with self._lock:
            pending = self._active
            if pending is None or pending.request_id != request_id:
                return False
            self._active = None
        pending.response = response
        pending.error = error
        pending.done.set()
        return True


class _QuietServer(ThreadingHTTPServer):
    """Connections cut by a killed runtime are expected, not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: RuntimeApi

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            return self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
        pending = self.api.next_invocation()
        if pending is None:
            self.close_connection = True
            return self._reply(503, {"errorType": "Shutdown", "errorMessage": "closing"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", pending.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(pending.deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", pending.function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", _trace_id())
        self.send_header("Content-Length", str(len(pending.body)))
        self.end_headers()
        self.wfile.write(pending.body)

    def do_POST(self) -> None:
        body = self._body()
        match = _RESULT.fullmatch(self.path)
        if match is not None:
            request_id, kind = match.groups()
            if kind == "response":
                accepted = self.api.complete(request_id, body, None)
            else:
                accepted = self.api.complete(request_id, None, _error_document(body, self.headers))
            if not accepted:
                return self._reply(400, {"errorType": "InvalidRequestID", "errorMessage": ""})
            return self._reply(202, {"status": "OK"})
        if self.path == f"{PREFIX}/init/error":
            self.api.init_error = _error_document(body, self.headers)
            return self._reply(202, {"status": "OK"})
        return self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _reply(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _error_document(body: bytes, headers: Any) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        document = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(document, dict):
        document = {"errorMessage": str(document)}
    document.setdefault("errorType", headers.get("Lambda-Runtime-Function-Error-Type", "Unknown"))
    return document


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Sampled=0"
