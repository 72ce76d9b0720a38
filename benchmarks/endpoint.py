"""A CloudWatch Logs endpoint that answers at once (or after a set latency) and counts calls.

moto in server mode answers about 45 PutLogEvents calls of 1,000 events a second, mostly its own
JSON work, which would hide the forwarder's cost. This endpoint reads the request body, never
parses it, and answers ``{"nextSequenceToken":"0"}`` to PutLogEvents and ``{}`` to anything else.

It runs in a process of its own by default, so that its work (reading bodies, answering) does not
share the benchmark's interpreter and GIL; on this 2-core machine it still shares the cores.
``GET /__stats`` and ``POST /__reset`` read and clear its counters (calls per operation, bytes,
the most PutLogEvents calls in flight at once).
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from benchmarks import ROOT

_PUT_ANSWER = b'{"nextSequenceToken":"0"}'


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.bytes = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "bytes": self.bytes,
                "max_in_flight": self.max_in_flight,
            }

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.bytes = 0
            self.max_in_flight = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    counters: _Counters
    latency: float

    def setup(self) -> None:
        super().setup()
        # The answer goes out as two writes (headers, then body). Without TCP_NODELAY, Nagle's
        # algorithm holds the second until the client ACKs the first, and the client delays
        # that ACK by up to 40 ms: every call would take 40 ms longer than the set latency.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/__stats":
            self._reply(200, json.dumps(self.counters.snapshot()).encode())
        else:
            self._reply(404, b"{}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        if self.path == "/__reset":
            self.counters.reset()
            return self._reply(200, b"{}")
        operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
        counters = self.counters
        with counters.lock:
            counters.calls[operation] += 1
            counters.bytes += length
            counters.in_flight += 1
            counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            self._reply(200, _PUT_ANSWER if operation == "PutLogEvents" else b"{}")
        finally:
            with counters.lock:
                counters.in_flight -= 1

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 64 concurrent connects must not overflow the listen backlog


def _make_server(latency: float) -> _Server:
    handler = type("Handler", (_Handler,), {"counters": _Counters(), "latency": latency})
    return _Server(("127.0.0.1", 0), handler)


def main() -> None:
    """``python -m benchmarks.endpoint LATENCY``: serve, print the port, run until killed."""
    server = _make_server(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
    print(server.server_address[1], flush=True)
    server.serve_forever()


class InstantLogsEndpoint:
    """``with InstantLogsEndpoint(latency=0.05) as endpoint:``; point the forwarder at
    ``endpoint.url`` through ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``.

    ``separate_process=False`` serves from a thread of this process instead.
    """

    def __init__(self, latency: float = 0.0, *, separate_process: bool = True) -> None:
        self.latency = latency
        self.separate_process = separate_process
        self.url = ""
        self._process: Any = None
        self._server: _Server | None = None

    def start(self) -> InstantLogsEndpoint:
        if self.separate_process:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.endpoint", str(self.latency)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self._process.stdout is not None
            line = self._process.stdout.readline()
            if not line.strip().isdigit():
                self.stop()
                raise RuntimeError(f"the instant endpoint did not start: {line!r}")
            port = int(line)
        else:
            self._server = _make_server(self.latency)
            threading.Thread(target=self._server.serve_forever, daemon=True).start()
            port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stats(self) -> dict[str, Any]:
        return json.loads(self._call("GET", "/__stats"))

    def reset(self) -> None:
        self._call("POST", "/__reset")

    def put_calls(self) -> int:
        return self.stats()["calls"].get("PutLogEvents", 0)

    def _call(self, method: str, path: str) -> bytes:
        address = urlsplit(self.url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        try:
            connection.request(method, path, body=b"" if method == "POST" else None)
            return connection.getresponse().read()
        finally:
            connection.close()

    def __enter__(self) -> InstantLogsEndpoint:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
