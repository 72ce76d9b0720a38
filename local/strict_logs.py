"""A strict CloudWatch Logs layer between the forwarder and moto, with fault injection.

moto 5.2 is not faithful enough to prove that requests are valid: it accepts 10,001 events,
batches over 1,048,576 bytes, events over 1 MB and spans over 24 h; its rejection indexes are off
by one; it never reports expired events or rejected entities. This proxy, on 127.0.0.1, refuses
every PutLogEvents request the real service would refuse (and records the violation, so a test
can fail on it), answers rejections with the real service's indexes, forwards only the accepted
events to moto, and passes every other call through untouched. Other services of the JSON
protocol may be sent through it too (the fault campaign sends the delivery checkpoint's DynamoDB
calls), so that their calls meet faults as well; an operation is named without its service's
prefix (``PutLogEvents``, ``BatchWriteItem``).

Faults are injected per operation, in order (``inject``), or drawn at random from a seeded
``Chaos`` mix: ``throttle`` (400 ThrottlingException), ``unavailable`` (503
ServiceUnavailableException), ``drop`` (connection closed before the call is carried out),
``lose`` (the call is carried out, then the connection closes with no answer: the client cannot
know it succeeded), ``missing`` (400 ResourceNotFoundException, as for a stream that is not
there) and ``delay`` (the answer comes ``seconds`` late). ``state.met`` counts the faults met,
``state.met_by_operation`` the calls that met one.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# The documented rules (boto3 put_log_events reference); deliberately not imported from the
# forwarder, so that a wrong constant there cannot hide here.
MAX_BATCH_BYTES = 1_048_576
MAX_BATCH_EVENTS = 10_000
MAX_EVENT_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_SPAN_MS = 24 * 3600 * 1000
FUTURE_MS = 2 * 3600 * 1000
MAX_AGE_MS = 14 * 24 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000
GROUP_CHARS = set("._-/#ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
ENTITY_KEYS = {"Type", "ResourceType", "Identifier", "Name", "Environment"}
TARGET_PREFIX = "Logs_20140328."


FAULT_KINDS = ("throttle", "unavailable", "drop", "lose", "missing", "delay")


@dataclass
class Fault:
    kind: str  # one of FAULT_KINDS
    seconds: float = 0.0


@dataclass(frozen=True)
class Chaos:
    """A seeded mix of faults: each call of one of ``operations`` meets fault ``kind`` with
    probability ``rates[kind]`` (at most one fault a call; ``missing`` only for PutLogEvents); a
    ``delay`` lasts a uniform draw from ``delay_s``. The same seed and the same order of calls
    give the same faults."""

    rates: Mapping[str, float]
    operations: frozenset[str] = frozenset({"PutLogEvents", "CreateLogStream"})
    delay_s: tuple[float, float] = (0.5, 2.0)
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(FAULT_KINDS)
        if unknown or sum(self.rates.values()) > 1 or min(self.rates.values(), default=0) < 0:
            raise ValueError(f"rates must be probabilities of {FAULT_KINDS}: {dict(self.rates)}")

    def draw(self, rng: random.Random, operation: str) -> Fault | None:
        if operation not in self.operations:
            return None
        roll, seconds = rng.random(), rng.uniform(*self.delay_s)
        for kind, rate in sorted(self.rates.items()):
            if roll < rate:
                if kind == "missing" and operation != "PutLogEvents":
                    return None
                return Fault(kind, seconds if kind == "delay" else 0.0)
            roll -= rate
        return None


@dataclass
class StrictState:
    """What the layer saw; tests read it."""

    violations: list[str] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    chaos: Chaos | None = None
    chaos_rng: random.Random = field(default_factory=random.Random)
    met: Counter[str] = field(default_factory=Counter)  # faults met, by kind
    met_by_operation: Counter[str] = field(default_factory=Counter)
    reject_entities: str | None = None  # errorType to answer for every request with an entity
    in_flight: int = 0  # PutLogEvents calls being answered now, and the most at once
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls_of(self, operation: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for name, body in self.calls if name == operation]


class StrictLogsProxy:
    """Run with ``with StrictLogsProxy(moto_url) as proxy:``; point the forwarder at
    ``proxy.url`` through ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``."""

    def __init__(self, upstream_url: str, clock: Any = time.time) -> None:
        self.state = StrictState()
        upstream = urlsplit(upstream_url)
        handler = type(
            "Handler",
            (_Handler,),
            {"state": self.state, "upstream": (upstream.hostname, upstream.port), "clock": clock},
        )
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, operation: str, kind: str, count: int = 1, seconds: float = 0.0) -> None:
        """Answer the next ``count`` calls of ``operation`` with a fault."""
        with self.state.lock:
            queue = self.state.faults.setdefault(operation, deque())
            queue.extend(Fault(kind, seconds) for _ in range(count))

    def unleash(self, chaos: Chaos | None) -> None:
        """Draw faults from ``chaos`` for every later call (after any ``inject``-ed ones);
        ``None`` ends it."""
        with self.state.lock:
            self.state.chaos = chaos
            self.state.chaos_rng = random.Random(chaos.seed if chaos else 0)

    def reset(self) -> None:
        with self.state.lock:
            self.state.violations.clear()
            self.state.calls.clear()
            self.state.faults.clear()
            self.state.chaos = None
            self.state.met.clear()
            self.state.met_by_operation.clear()
            self.state.reject_entities = None
            self.state.max_in_flight = 0

    def __enter__(self) -> StrictLogsProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def check_put_log_events(
    body: dict[str, Any], now_ms: int, retention_days: int | None
) -> tuple[list[str], dict[str, int]]:
    """The violations of the documented rules, and the rejection indexes the service would
    answer. Pure, so that the layer itself is unit-tested."""
    problems: list[str] = []
    group, stream = body.get("logGroupName", ""), body.get("logStreamName", "")
    if not 1 <= len(group) <= 512 or not set(group) <= GROUP_CHARS:
        problems.append(f"invalid logGroupName {group!r}")
    if not 1 <= len(stream) <= 512 or ":" in stream or "*" in stream:
        problems.append(f"invalid logStreamName {stream!r}")
    if "sequenceToken" in body:
        problems.append("a sequenceToken was sent")
    events = body.get("logEvents") or []
    if not 1 <= len(events) <= MAX_BATCH_EVENTS:
        problems.append(f"{len(events)} events in one request (1 to {MAX_BATCH_EVENTS})")
    sizes = [len(e.get("message", "").encode("utf-8")) + EVENT_OVERHEAD for e in events]
    if sum(sizes) > MAX_BATCH_BYTES:
        problems.append(f"batch of {sum(sizes)} bytes exceeds {MAX_BATCH_BYTES}")
    for index, (event, size) in enumerate(zip(events, sizes, strict=True)):
        if not event.get("message"):
            problems.append(f"event {index} has an empty message")
        if size > MAX_EVENT_BYTES:
            problems.append(f"event {index} of {size} bytes exceeds {MAX_EVENT_BYTES}")
    stamps = [int(e.get("timestamp", -1)) for e in events]
    if any(b < a for a, b in itertools.pairwise(stamps)):
        problems.append("events are not in chronological order")
    oldest_valid = now_ms - MAX_AGE_MS
    expired_before = now_ms - retention_days * DAY_MS if retention_days else None
    too_old_end = sum(1 for t in stamps if t < oldest_valid)
    expired_end = sum(1 for t in stamps if expired_before is not None and t < expired_before)
    too_new_start = next((i for i, t in enumerate(stamps) if t > now_ms + FUTURE_MS), None)
    valid = stamps[max(too_old_end, expired_end) : too_new_start]
    if valid and valid[-1] - valid[0] > MAX_SPAN_MS:
        problems.append(f"valid events span {valid[-1] - valid[0]} ms, more than 24 hours")
    entity = body.get("entity")
    if entity is not None:
        keys = entity.get("keyAttributes") or {}
        if not 2 <= len(keys) <= 4 or set(keys) - ENTITY_KEYS:
            problems.append(f"entity keyAttributes {sorted(keys)} not allowed")
        if len(entity.get("attributes") or {}) > 10:
            problems.append("entity has more than 10 attributes")
    rejected: dict[str, int] = {}
    if too_old_end:
        rejected["tooOldLogEventEndIndex"] = too_old_end
    if expired_end:
        rejected["expiredLogEventEndIndex"] = expired_end
    if too_new_start is not None:
        rejected["tooNewLogEventStartIndex"] = too_new_start
    return problems, rejected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: StrictState
    upstream: tuple[str, int]
    clock: Any
    _counted: bool = False
    _lose_answer: bool = False

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this each answer waits for Nagle.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target", "")
        operation = target.rpartition(".")[2]  # Logs_20140328.PutLogEvents, DynamoDB_20120810.…
        document = json.loads(body or b"{}") if target else {}
        with self.state.lock:
            self.state.calls.append((operation, document))
            queue = self.state.faults.get(operation)
            fault = queue.popleft() if queue else None
            if fault is None and self.state.chaos is not None:
                fault = self.state.chaos.draw(self.state.chaos_rng, operation)
            if fault is not None:
                self.state.met[fault.kind] += 1
                self.state.met_by_operation[operation] += 1
            self._counted = operation == "PutLogEvents"
            if self._counted:
                self.state.in_flight += 1
                self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
        try:
            self._answer(operation, document, body, fault)
        finally:
            self._leave()

    def _leave(self) -> None:
        """No longer in flight: called before the answer is written, since the client may send
        its next request the moment it has read it."""
        if self._counted:
            with self.state.lock:
                self.state.in_flight -= 1
            self._counted = False

    def _answer(
        self, operation: str, document: dict[str, Any], body: bytes, fault: Fault | None
    ) -> None:
        if fault is not None:
            if fault.kind == "drop":
                self.close_connection = True
                return
            if fault.kind == "throttle":
                return self._error(400, "ThrottlingException", "Rate exceeded")
            if fault.kind == "unavailable":
                return self._error(503, "ServiceUnavailableException", "injected outage")
            if fault.kind == "missing":
                return self._error(400, "ResourceNotFoundException", "injected: does not exist")
            self._lose_answer = fault.kind == "lose"
            time.sleep(fault.seconds)
        if operation == "PutLogEvents":
            return self._put_log_events(document)
        status, headers, answer = self._upstream(body)
        self._reply(status, answer, headers.get("Content-Type", "application/x-amz-json-1.1"))

    def _put_log_events(self, document: dict[str, Any]) -> None:
        retention = self._retention_days(document.get("logGroupName", ""))
        problems, rejected = check_put_log_events(document, int(self.clock() * 1000), retention)
        if problems:
            with self.state.lock:
                self.state.violations.extend(problems)
            return self._error(400, "InvalidParameterException", "; ".join(problems))
        events = document["logEvents"]
        first = max(
            rejected.get("tooOldLogEventEndIndex", 0), rejected.get("expiredLogEventEndIndex", 0)
        )
        last = rejected.get("tooNewLogEventStartIndex", len(events))
        accepted = events[first:last]
        group, stream = document["logGroupName"], document["logStreamName"]
        if accepted:
            forwarded = {"logGroupName": group, "logStreamName": stream, "logEvents": accepted}
            status, headers, answer = self._upstream(json.dumps(forwarded).encode(), "PutLogEvents")
        else:  # nothing to store, but the service still checks that the stream exists
            probe = {"logGroupName": group, "logStreamNamePrefix": stream}
            status, headers, answer = self._upstream(
                json.dumps(probe).encode(), "DescribeLogStreams"
            )
            if status == 200:
                names = [s["logStreamName"] for s in json.loads(answer).get("logStreams", [])]
                if stream not in names:
                    return self._error(
                        400, "ResourceNotFoundException", "The specified log stream does not exist."
                    )
                answer = b"{}"
        if status != 200:
            return self._reply(status, answer, headers.get("Content-Type", ""))
        response: dict[str, Any] = {"nextSequenceToken": "0"}
        if rejected:
            response["rejectedLogEventsInfo"] = rejected
        if self.state.reject_entities and document.get("entity"):
            response["rejectedEntityInfo"] = {"errorType": self.state.reject_entities}
        self._reply(200, json.dumps(response).encode(), "application/x-amz-json-1.1")

    def _retention_days(self, group: str) -> int | None:
        query = json.dumps({"logGroupNamePrefix": group}).encode()
        status, _, answer = self._upstream(query, "DescribeLogGroups")
        if status != 200:
            return None
        for found in json.loads(answer).get("logGroups", []):
            if found.get("logGroupName") == group:
                return found.get("retentionInDays")
        return None

    def _upstream(
        self, body: bytes, operation: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {
            key: value
            for key, value in self.headers.items()
            if key.lower() not in {"host", "content-length", "connection"}
        }
        if operation is not None:
            headers["X-Amz-Target"] = TARGET_PREFIX + operation
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            connection.request("POST", self.path, body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        finally:
            connection.close()

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"__type": code, "message": message}).encode()
        self._reply(status, body, "application/x-amz-json-1.1")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self._leave()
        if self._lose_answer:  # carried out, but the client never hears of it
            self._lose_answer = False
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
