"""Builders and hypothesis strategies shared by the unit tests of the pure core.

Events are always self-consistent: ``size`` is the UTF-8 length of ``message`` plus the 26 bytes
of overhead, so a test that checks the batch rules can trust either.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from hypothesis import strategies as st

from forwarder.limits import EVENT_OVERHEAD_BYTES, BatchLimits
from forwarder.model import Destination, Entity, LogEvent

#: Small limits that reach every edge of the packing rules within a few dozen events.
SMALL_LIMITS = BatchLimits(max_bytes=1000, max_events=10, max_span_ms=1000, event_overhead=26)

#: One character of each UTF-8 width.
WIDE_CHARS = {1: "a", 2: "é", 3: "€", 4: "😀"}

#: A moment well inside the range the service accepts, so that planning prejudges nothing.
NOW_MS = 1_700_000_000_000


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def message_of(nbytes: int, width: int = 1) -> str:
    """A message of exactly ``nbytes`` UTF-8 bytes, mostly characters ``width`` bytes wide."""
    count, rest = divmod(nbytes, width)
    return WIDE_CHARS[width] * count + "a" * rest


def make_event(timestamp: int, size: int, record: int = 0, width: int = 1) -> LogEvent:
    """An event of batch weight ``size`` (message bytes + 26)."""
    message = message_of(size - EVENT_OVERHEAD_BYTES, width)
    assert utf8_size(message) + EVENT_OVERHEAD_BYTES == size
    return LogEvent(timestamp, message, size, record, 0)


DESTINATIONS = (
    Destination("/app/api", "web-1"),
    Destination("/app/api", "web-2"),
    Destination("/app/worker", "2024/01/01/[$LATEST]abc"),
    Destination(
        "/app/api",
        "web-1",
        Entity((("Name", "api"), ("Type", "Service"))),
    ),
    Destination(
        "/app/api",
        "web-1",
        Entity((("Environment", "prod"), ("Name", "api"), ("Type", "Service"))),
    ),
)


@st.composite
def workloads(
    draw: st.DrawFn,
    limits: BatchLimits = SMALL_LIMITS,
    *,
    max_events: int = 40,
    spans: int = 6,
    destinations: tuple[Destination, ...] = DESTINATIONS,
    base_ms: int = NOW_MS,
) -> dict[Destination, list[LogEvent]]:
    """Events for several destinations, in arrival order, with sizes from the smallest event to
    ``max_bytes``, every UTF-8 width, and timestamps spread over about ``spans`` spans (with many
    ties and events sitting exactly on a span's edge)."""
    chosen = draw(st.lists(st.sampled_from(destinations), min_size=1, max_size=4, unique=True))
    smallest = limits.event_overhead + 1
    size = st.one_of(
        st.integers(smallest, limits.max_bytes),
        st.sampled_from([smallest, limits.max_bytes, limits.max_bytes // 2 + 1]),
        st.integers(smallest, smallest + 40),
    )
    offset = st.one_of(
        st.integers(0, spans * limits.max_span_ms),
        st.sampled_from([0, 1, limits.max_span_ms, limits.max_span_ms + 1]),
    )
    one = st.tuples(offset, size, st.sampled_from(sorted(WIDE_CHARS)), st.booleans())
    per_destination = max(1, max_events // len(chosen))
    groups: dict[Destination, list[LogEvent]] = {}
    record = 0
    for destination in chosen:
        events = []
        for at, weight, width, next_record in draw(
            st.lists(one, min_size=1, max_size=per_destination)
        ):
            events.append(make_event(base_ms + at, weight, record, width))
            record += next_record  # a record often carries several events
        groups[destination] = events
    return groups


# --- payloads -------------------------------------------------------------------------------


def subscription_document(
    *,
    log_group: str = "/aws/lambda/app",
    log_stream: str = "2024/01/01/[$LATEST]0123456789abcdef",
    owner: str = "123456789012",
    events: list[dict[str, Any]] | None = None,
    message_type: str = "DATA_MESSAGE",
) -> dict[str, Any]:
    """A CloudWatch Logs subscription-filter document, as the service writes it."""
    if events is None:
        events = [
            {"id": "1", "timestamp": 1_700_000_000_000, "message": "first"},
            {"id": "2", "timestamp": 1_700_000_000_500, "message": "second é"},
        ]
    return {
        "messageType": message_type,
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["to-forwarder"],
        "logEvents": events,
    }


def gzipped(document: Any) -> bytes:
    return gzip.compress(json.dumps(document).encode("utf-8"))


#: Text with lone surrogates: valid in JSON as escapes such as "\ud83d" (half of an emoji, as left
#: by a producer that cut a string in two), but not encodable to UTF-8.
texts_with_surrogates = st.builds(
    lambda before, halves, after: before + halves + after,
    st.text(max_size=6),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2),
    st.text(max_size=6),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    texts_with_surrogates,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=20,
)
