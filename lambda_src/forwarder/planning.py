"""Plan: group events by destination, sort them, and pack them into the fewest valid requests.

Pure: no I/O. Every request the plan holds satisfies every rule of PutLogEvents (``limits.py``):
at most ``max_events`` events and ``max_bytes`` bytes (UTF-8 message bytes + 26 per event),
chronological order (stable: arrival order breaks ties), and a span of at most ``max_span_ms``.

The packing, per destination:

1. Events clearly outside what the service accepts (more than 14 days old or 2 hours ahead, by
   more than the clock-skew margin) are judged here and never sent. An event ahead is too new
   (retryable) only if it becomes acceptable within ``TOO_NEW_RETRY_HORIZON_MS``; further ahead
   it is too far ahead, a permanent rejection that the invalid-record policy settles.
2. The rest are sorted by timestamp (stable) and cut contiguously: walk in time order and start
   a new request when the next event would break a rule. This is what other forwarders do, and
   it is optimal when events are small. When it meets the lower bound the plan is done.
3. Otherwise two first-fit-decreasing packings are tried: largest events first, each into the
   first request with room. Chronological order only matters inside a request, so large events
   can fill the gaps that a contiguous cut leaves. One first covers the events with the fewest
   24 h windows (greedy from the earliest) and packs each window on its own; the other lets each
   request span any 24 h, placing an event wherever the request's span stays within the limit
   (it finds packings that straddle the greedy windows' edges). The smallest of the three
   packings is kept, so the plan never uses more requests than the contiguous cut.

``lower_bound`` is the largest of ceil(bytes / max_bytes), ceil(events / max_events) and the
number of 24 h windows; the plan reaches it whenever the events are small next to the limits.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from forwarder.limits import CLOCK_SKEW_MARGIN_MS, MAX_AGE_MS, MAX_FUTURE_MS, BatchLimits
from forwarder.model import Destination, LogEvent, PlannedRequest, Rejection

DEFAULT_LIMITS = BatchLimits()
#: How far past the service's 2 h bound an event may be and still be retried as too new: about
#: the time a source keeps retrying a record. SQS, with the stack's defaults: a 365 s visibility
#: timeout and 5 receives, 30 minutes. Kinesis retries at once, so there it is generous. An event
#: further ahead would be retried until the source gives up (a FIFO group or a shard blocked,
#: then metadata only), so it is judged permanent instead.
TOO_NEW_RETRY_HORIZON_MS = 30 * 60 * 1000
#: The spanning first-fit costs O(events x requests): beyond this many events of one destination
#: it is not tried, and the windowed first-fit (O(n log n)) stands.
SPANNING_MAX_EVENTS = 100_000
#: How many runs of equal-sized events a first-fit packing places between looks at the clock.
_RUNS_PER_CLOCK_CHECK = 256


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """What the service accepts at one moment, judged before sending: an event more than 14
    days old or more than 2 h ahead, by more than the clock-skew margin, is never sent."""

    oldest: int
    newest: int
    retry_horizon: int

    @classmethod
    def at(cls, now_ms: int) -> TimeBounds:
        return cls(
            oldest=now_ms - MAX_AGE_MS - CLOCK_SKEW_MARGIN_MS,
            newest=now_ms + MAX_FUTURE_MS + CLOCK_SKEW_MARGIN_MS,
            retry_horizon=now_ms + MAX_FUTURE_MS + TOO_NEW_RETRY_HORIZON_MS,
        )

    def rejection(self, timestamp: int) -> Rejection | None:
        """Why an event of this timestamp is not sent, or None if the service is to judge."""
        if timestamp < self.oldest:
            return Rejection.TOO_OLD
        if timestamp > self.retry_horizon:
            return Rejection.TOO_FAR_AHEAD
        if timestamp > self.newest:
            return Rejection.TOO_NEW
        return None


@dataclass(frozen=True, slots=True)
class Plan:
    """The requests to send, the events judged without sending, and the lower bound."""

    requests: list[PlannedRequest]
    prejudged: list[tuple[LogEvent, Rejection]]
    lower_bound: int


def plan_requests(
    groups: Mapping[Destination, Sequence[LogEvent]],
    now_ms: int,
    limits: BatchLimits = DEFAULT_LIMITS,
    in_time: Callable[[], bool] = lambda: True,
) -> Plan:
    """Pack each destination's events (given in arrival order) into requests.

    ``in_time`` is asked now and then while a packing better than the contiguous cut is
    sought; once it answers False, the contiguous cut stands for the rest (it is valid and
    costs O(n log n) at most, so the plan is always made, perhaps with a few more requests)."""
    requests: list[PlannedRequest] = []
    prejudged: list[tuple[LogEvent, Rejection]] = []
    bound = 0
    bounds = TimeBounds.at(now_ms)
    for destination, arrived in groups.items():
        events = []
        for event in arrived:
            reason = bounds.rejection(event.timestamp)
            if reason is None:
                events.append(event)
            else:
                prejudged.append((event, reason))
        if not events:
            continue
        events.sort(key=_timestamp)  # stable: arrival order breaks ties
        chunks, chunk_bound = _pack(events, limits, in_time)
        bound += chunk_bound
        requests.extend(
            PlannedRequest(destination, tuple(chunk), sum(e.size for e in chunk))
            for chunk in chunks
        )
    return Plan(requests, prejudged, bound)


def pack(events: Sequence[LogEvent], limits: BatchLimits = DEFAULT_LIMITS) -> list[list[LogEvent]]:
    """Pack events sorted by timestamp into the fewest chunks this module knows how to find."""
    return _pack(events, limits, lambda: True)[0]


def lower_bound(events: Sequence[LogEvent], limits: BatchLimits = DEFAULT_LIMITS) -> int:
    """No valid packing of these events (sorted by timestamp) has fewer requests than this."""
    return _lower_bound(events, _windows(events, limits), limits)


def _pack(
    events: Sequence[LogEvent], limits: BatchLimits, in_time: Callable[[], bool]
) -> tuple[list[list[LogEvent]], int]:
    windows = _windows(events, limits)
    bound = _lower_bound(events, windows, limits)
    contiguous = contiguous_cut(events, limits)
    if len(contiguous) <= bound:
        return contiguous, bound
    best = contiguous
    candidates: list[Callable[[], list[list[LogEvent]] | None]] = []
    if len(contiguous) > _windowed_floor(events, windows, limits):
        candidates.append(lambda: _first_fit_decreasing(events, windows, limits, in_time))
    if len(events) <= SPANNING_MAX_EVENTS:  # it scans every open request for every event
        candidates.append(lambda: _spanning_first_fit_decreasing(events, limits))
    for candidate in candidates:
        if not in_time():
            break
        packed = candidate()
        if packed is not None and len(packed) < len(best):
            best = packed
        if len(best) <= bound:
            break
    return best, bound


def windowed_floor(events: Sequence[LogEvent], limits: BatchLimits = DEFAULT_LIMITS) -> int:
    """No packing of these events (sorted by timestamp) into the fewest 24 h windows, each on
    its own, has fewer requests than this."""
    return _windowed_floor(events, _windows(events, limits), limits)


def _lower_bound(
    events: Sequence[LogEvent], windows: list[tuple[int, int]], limits: BatchLimits
) -> int:
    if not events:
        return 0
    by_bytes = -(-sum(event.size for event in events) // limits.max_bytes)
    by_count = -(-len(events) // limits.max_events)
    return max(by_bytes, by_count, len(windows))


def _windowed_floor(
    events: Sequence[LogEvent], windows: list[tuple[int, int]], limits: BatchLimits
) -> int:
    """No packing that keeps to the greedy windows (the windowed first-fit) has fewer
    requests than this: each window needs its own bytes' and count's worth."""
    floor = 0
    for first, end in windows:
        size = sum(event.size for event in events[first:end])
        floor += max(-(-size // limits.max_bytes), -(-(end - first) // limits.max_events))
    return floor


def contiguous_cut(
    events: Sequence[LogEvent], limits: BatchLimits = DEFAULT_LIMITS
) -> list[list[LogEvent]]:
    """Cut events sorted by timestamp into consecutive chunks, each as long as the rules allow."""
    chunks: list[list[LogEvent]] = []
    chunk: list[LogEvent] = []
    size = start = 0
    for event in events:
        if chunk and (
            size + event.size > limits.max_bytes
            or len(chunk) == limits.max_events
            or event.timestamp - start > limits.max_span_ms
        ):
            chunks.append(chunk)
            chunk = []
        if not chunk:
            size, start = 0, event.timestamp
        chunk.append(event)
        size += event.size
    if chunk:
        chunks.append(chunk)
    return chunks


def windowed_first_fit_decreasing(
    events: Sequence[LogEvent], limits: BatchLimits = DEFAULT_LIMITS
) -> list[list[LogEvent]]:
    """Cover events sorted by timestamp with the fewest windows of ``max_span_ms``, then pack each
    window first-fit-decreasing by size. Each chunk comes out in the original (sorted) order."""
    packed = _first_fit_decreasing(events, _windows(events, limits), limits, lambda: True)
    assert packed is not None  # always in time
    return packed


def _first_fit_decreasing(
    events: Sequence[LogEvent],
    windows: list[tuple[int, int]],
    limits: BatchLimits,
    in_time: Callable[[], bool],
) -> list[list[LogEvent]] | None:
    """None if ``in_time`` said stop before the packing was done."""
    chunks: list[list[LogEvent]] = []
    for first, end in windows:
        if sum(e.size for e in events[first:end]) <= limits.max_bytes and (
            end - first <= limits.max_events
        ):
            chunks.append(list(events[first:end]))
            continue
        order = sorted(range(first, end), key=lambda i: -events[i].size)
        bins = _FirstFit(limits)
        runs = groupby(order, key=lambda i: events[i].size)
        for count, (size, run) in enumerate(runs, start=1):
            if count % _RUNS_PER_CLOCK_CHECK == 0 and not in_time():
                return None
            bins.place_run(list(run), size)
        chunks.extend([events[i] for i in sorted(members)] for members in bins.members)
    return chunks


class _FirstFit:
    """Bins (requests) that answer "the first bin with room for this many bytes" in log time:
    a max-tree over each bin's free bytes (a bin with no room for another event counts as -1),
    doubled in capacity as bins open. First-fit over a list would cost O(events x requests).

    Events of one size come in runs (they are placed largest first), and a run fills the first
    bin with room as far as it goes before the next bin is looked for: exactly where placing
    them one by one would put them, as no earlier bin has room for that size."""

    def __init__(self, limits: BatchLimits) -> None:
        self._limits = limits
        self._capacity = 64
        self._free = [-1] * (2 * self._capacity)  # the tree; leaves from index ``_capacity``
        self.members: list[list[int]] = []

    def place_run(self, indices: list[int], size: int) -> None:
        """Place events of one size, in order, each into the first bin with room."""
        limits = self._limits
        placed = 0
        while placed < len(indices):
            slot = self._first_with_room(size)
            if slot is None:
                slot = len(self.members)
                self.members.append([])
                if slot == self._capacity:
                    self._grow()
                self._set(slot, limits.max_bytes)
            members = self.members[slot]
            free = self._free[self._capacity + slot]
            room = min(
                max(1, free // size) if size else len(indices),  # a new bin takes one at least
                limits.max_events - len(members),
                len(indices) - placed,
            )
            members.extend(indices[placed : placed + room])
            placed += room
            full = len(members) >= limits.max_events
            self._set(slot, -1 if full else free - room * size)

    def _first_with_room(self, size: int) -> int | None:
        free = self._free
        if free[1] < size:
            return None
        node = 1
        while node < self._capacity:
            node = 2 * node if free[2 * node] >= size else 2 * node + 1
        return node - self._capacity

    def _set(self, slot: int, value: int) -> None:
        free = self._free
        node = self._capacity + slot
        free[node] = value
        node //= 2
        while node:
            free[node] = max(free[2 * node], free[2 * node + 1])
            node //= 2

    def _grow(self) -> None:
        leaves = self._free[self._capacity :]
        self._capacity *= 2
        self._free = [-1] * (2 * self._capacity)
        for slot, value in enumerate(leaves):
            self._set(slot, value)


def _spanning_first_fit_decreasing(
    events: Sequence[LogEvent], limits: BatchLimits
) -> list[list[LogEvent]]:
    """First-fit-decreasing where a request accepts an event if its bytes, count and span
    (earliest to latest timestamp, the event included) all stay within the limits."""
    bins: list[list[int]] = []  # per bin: [bytes, earliest, latest, index, index, ...]
    for i in sorted(range(len(events)), key=lambda i: -events[i].size):
        size, stamp = events[i].size, events[i].timestamp
        for members in bins:
            if (
                members[0] + size <= limits.max_bytes
                and len(members) - 3 < limits.max_events
                and max(members[2], stamp) - min(members[1], stamp) <= limits.max_span_ms
            ):
                members[0] += size
                members[1] = min(members[1], stamp)
                members[2] = max(members[2], stamp)
                members.append(i)
                break
        else:
            bins.append([size, stamp, stamp, i])
    return [[events[i] for i in sorted(members[3:])] for members in bins]


def _windows(events: Sequence[LogEvent], limits: BatchLimits) -> list[tuple[int, int]]:
    """[first, end) index ranges of the fewest ``max_span_ms`` windows covering the events."""
    stamps = [event.timestamp for event in events]
    windows = []
    first = 0
    while first < len(stamps):
        end = bisect_right(stamps, stamps[first] + limits.max_span_ms, first)
        windows.append((first, end))
        first = end
    return windows


def _timestamp(event: LogEvent) -> int:
    return event.timestamp
