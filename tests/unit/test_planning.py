"""Plan: every request obeys every PutLogEvents rule, every event is planned exactly once, and the
request count sits on the lower bound wherever the bound is reachable."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import pairwise

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from forwarder.limits import (
    CLOCK_SKEW_MARGIN_MS,
    MAX_AGE_MS,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    MAX_FUTURE_MS,
    MAX_SPAN_MS,
    BatchLimits,
)
from forwarder.model import Destination, LogEvent, Rejection
from forwarder.planning import (
    TOO_NEW_RETRY_HORIZON_MS,
    Plan,
    contiguous_cut,
    lower_bound,
    pack,
    plan_requests,
    windowed_first_fit_decreasing,
    windowed_floor,
)
from tests.unit.strategies import (
    DESTINATIONS,
    NOW_MS,
    SMALL_LIMITS,
    WIDE_CHARS,
    make_event,
    utf8_size,
    workloads,
)

REAL_LIMITS = BatchLimits()
KB = 1024
DEST = Destination("/app/api", "web-1")


def by_time(events: Sequence[LogEvent]) -> list[LogEvent]:
    return sorted(events, key=lambda e: e.timestamp)


def assert_chunk_obeys_rules(chunk: Sequence[LogEvent], limits: BatchLimits) -> None:
    assert 1 <= len(chunk) <= limits.max_events
    assert sum(e.size for e in chunk) <= limits.max_bytes
    stamps = [e.timestamp for e in chunk]
    assert stamps == sorted(stamps), "events of a request must be in chronological order"
    assert stamps[-1] - stamps[0] <= limits.max_span_ms
    for e in chunk:
        assert e.message, "an event with an empty message is never sent"
        assert e.size == utf8_size(e.message) + limits.event_overhead


def assert_plan_is_valid(
    plan: Plan, groups: Mapping[Destination, Sequence[LogEvent]], limits: BatchLimits
) -> None:
    """Every rule of every request, exact coverage, stable order and the lower bound."""
    arrival = {id(e): i for events in groups.values() for i, e in enumerate(events)}
    owner = {id(e): d for d, events in groups.items() for e in events}
    for request in plan.requests:
        assert_chunk_obeys_rules(request.events, limits)
        assert request.size == sum(e.size for e in request.events)
        assert all(owner[id(e)] == request.destination for e in request.events)
        for before, after in pairwise(request.events):
            if before.timestamp == after.timestamp:
                assert arrival[id(before)] < arrival[id(after)], "ties keep arrival order"
    planned = Counter(id(e) for r in plan.requests for e in r.events)
    planned.update(id(e) for e, _ in plan.prejudged)
    expected = Counter(id(e) for events in groups.values() for e in events)
    assert planned == expected, "each event is in exactly one request or prejudged"
    assert len(plan.requests) >= plan.lower_bound


def sent_events(plan: Plan, destination: Destination) -> list[LogEvent]:
    return [e for r in plan.requests if r.destination == destination for e in r.events]


# --- every rule, exact coverage, stable order -----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(workloads(SMALL_LIMITS))
def test_small_limits_every_request_obeys_every_rule(groups):
    plan = plan_requests(groups, NOW_MS, SMALL_LIMITS)
    assert plan.prejudged == []
    assert_plan_is_valid(plan, groups, SMALL_LIMITS)

    total_bound = 0
    for destination, events in groups.items():
        ordered = by_time(events)
        bound = lower_bound(ordered, SMALL_LIMITS)
        total_bound += bound
        requests = [r for r in plan.requests if r.destination == destination]
        assert len(requests) >= bound
        assert len(pack(ordered, SMALL_LIMITS)) <= len(contiguous_cut(ordered, SMALL_LIMITS))
        if bound == 1:
            assert len(requests) == 1, "one request is enough and reachable"
    assert plan.lower_bound == total_bound


@settings(max_examples=150, deadline=None)
@given(workloads(SMALL_LIMITS, max_events=30))
def test_both_packings_obey_the_rules_and_cover_every_event(groups):
    for events in groups.values():
        ordered = by_time(events)
        for chunks in (
            contiguous_cut(ordered, SMALL_LIMITS),
            windowed_first_fit_decreasing(ordered, SMALL_LIMITS),
            pack(ordered, SMALL_LIMITS),
        ):
            for chunk in chunks:
                assert_chunk_obeys_rules(chunk, SMALL_LIMITS)
            assert Counter(id(e) for c in chunks for e in c) == Counter(id(e) for e in ordered)
            assert len(chunks) >= lower_bound(ordered, SMALL_LIMITS)
        # the contiguous cut keeps the order and makes each chunk as long as the rules allow
        cut = contiguous_cut(ordered, SMALL_LIMITS)
        assert [e for chunk in cut for e in chunk] == ordered
        for chunk, following in pairwise(cut):
            extended = [*chunk, following[0]]
            assert (
                len(extended) > SMALL_LIMITS.max_events
                or sum(e.size for e in extended) > SMALL_LIMITS.max_bytes
                or extended[-1].timestamp - extended[0].timestamp > SMALL_LIMITS.max_span_ms
            )


@settings(max_examples=40, deadline=None)
@given(workloads(REAL_LIMITS, max_events=12, spans=2))
def test_real_limits_every_request_obeys_every_rule(groups):
    plan = plan_requests(groups, NOW_MS)
    assert_plan_is_valid(plan, groups, REAL_LIMITS)
    for request in plan.requests:
        assert request.size <= MAX_BATCH_BYTES
        assert request.events[-1].timestamp - request.events[0].timestamp < 24 * 3600 * 1000


def test_real_limits_many_small_events_are_cut_by_count():
    rng = random.Random(7)
    events = [
        make_event(NOW_MS + rng.randrange(3_600_000), rng.randint(27, 60), i, rng.choice([1, 2]))
        for i in range(25_000)
    ]
    groups = {DEST: events}
    plan = plan_requests(groups, NOW_MS)
    assert_plan_is_valid(plan, groups, REAL_LIMITS)
    assert len(plan.requests) == math.ceil(25_000 / MAX_BATCH_EVENTS) == plan.lower_bound


def test_input_lists_are_left_in_arrival_order():
    events = [make_event(NOW_MS + t, 40, i) for i, t in enumerate([5, 1, 3])]
    groups = {DEST: list(events)}
    plan_requests(groups, NOW_MS, SMALL_LIMITS)
    assert groups[DEST] == events


def test_no_events_no_requests():
    plan = plan_requests({}, NOW_MS)
    assert plan.requests == []
    assert plan.prejudged == []
    assert plan.lower_bound == 0


# --- the rules at their edges -----------------------------------------------------------------


def test_span_edge_is_inclusive_of_max_span_ms():
    limits = SMALL_LIMITS
    at_edge = [make_event(NOW_MS, 30), make_event(NOW_MS + limits.max_span_ms, 30)]
    assert len(plan_requests({DEST: at_edge}, NOW_MS, limits).requests) == 1
    beyond = [make_event(NOW_MS, 30), make_event(NOW_MS + limits.max_span_ms + 1, 30)]
    plan = plan_requests({DEST: beyond}, NOW_MS, limits)
    assert len(plan.requests) == 2 == plan.lower_bound


def test_a_span_of_exactly_24_hours_is_one_request():
    day = 24 * 3600 * 1000
    assert day == MAX_SPAN_MS
    events = [make_event(NOW_MS - day, 100, 0), make_event(NOW_MS, 100, 1)]
    assert len(plan_requests({DEST: events}, NOW_MS).requests) == 1
    events = [make_event(NOW_MS - day - 1, 100, 0), make_event(NOW_MS, 100, 1)]
    assert len(plan_requests({DEST: events}, NOW_MS).requests) == 2


def test_hourly_events_over_72_hours_take_three_requests():
    """73 events an hour apart span 72 h: three inclusive 24 h windows, so three requests."""
    hour = 3600 * 1000
    start = NOW_MS - 72 * hour
    events = [make_event(start + i * hour, 100, i) for i in range(73)]
    plan = plan_requests({DEST: events}, NOW_MS)
    assert len(plan.requests) == 3 == plan.lower_bound


def test_bytes_edge_exactly_full_request():
    events = [make_event(NOW_MS, 500), make_event(NOW_MS, 500)]
    assert len(plan_requests({DEST: events}, NOW_MS, SMALL_LIMITS).requests) == 1
    events.append(make_event(NOW_MS, 27))
    assert len(plan_requests({DEST: events}, NOW_MS, SMALL_LIMITS).requests) == 2


def test_real_bytes_edge_one_event_of_the_maximum_size_is_alone():
    events = [make_event(NOW_MS, MAX_EVENT_BYTES, 0), make_event(NOW_MS + 1, 27, 1)]
    plan = plan_requests({DEST: events}, NOW_MS)
    assert_plan_is_valid(plan, {DEST: events}, REAL_LIMITS)
    assert [len(r.events) for r in plan.requests] == [1, 1]


def test_destinations_are_never_mixed():
    groups = {d: [make_event(NOW_MS, 30, i)] for i, d in enumerate(DESTINATIONS)}
    plan = plan_requests(groups, NOW_MS)
    assert len(plan.requests) == len(DESTINATIONS) == plan.lower_bound
    assert {r.destination for r in plan.requests} == set(DESTINATIONS)


# --- reaching the lower bound ---------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(27, SMALL_LIMITS.max_bytes),
    offsets=st.lists(st.integers(0, SMALL_LIMITS.max_span_ms), min_size=1, max_size=60),
    width=st.sampled_from(sorted(WIDE_CHARS)),
)
def test_uniform_sizes_in_one_window_use_the_optimal_count(size, offsets, width):
    events = [make_event(NOW_MS + t, size, i, width) for i, t in enumerate(offsets)]
    plan = plan_requests({DEST: events}, NOW_MS, SMALL_LIMITS)
    assert_plan_is_valid(plan, {DEST: events}, SMALL_LIMITS)
    per_request = min(SMALL_LIMITS.max_bytes // size, SMALL_LIMITS.max_events)
    assert len(plan.requests) == math.ceil(len(events) / per_request)


@pytest.mark.parametrize(
    ("size", "count"),
    [(300 * KB, 10), (MAX_EVENT_BYTES, 3), (MAX_BATCH_BYTES // 2, 5), (100 * KB, 31)],
)
def test_uniform_sizes_in_one_window_real_limits(size, count):
    events = [make_event(NOW_MS + 1000 * (i % 3), size, i) for i in range(count)]
    plan = plan_requests({DEST: events}, NOW_MS)
    assert_plan_is_valid(plan, {DEST: events}, REAL_LIMITS)
    per_request = min(MAX_BATCH_BYTES // size, MAX_BATCH_EVENTS)
    assert len(plan.requests) == math.ceil(count / per_request)


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(
        st.integers(27, SMALL_LIMITS.max_bytes // SMALL_LIMITS.max_events), min_size=1, max_size=80
    ),
    data=st.data(),
)
def test_tiny_events_with_count_binding_meet_the_lower_bound(sizes, data):
    offsets = data.draw(
        st.lists(st.integers(0, SMALL_LIMITS.max_span_ms), min_size=len(sizes), max_size=len(sizes))
    )
    pairs = enumerate(zip(offsets, sizes, strict=True))
    events = [make_event(NOW_MS + t, s, i) for i, (t, s) in pairs]
    plan = plan_requests({DEST: events}, NOW_MS, SMALL_LIMITS)
    assert_plan_is_valid(plan, {DEST: events}, SMALL_LIMITS)
    assert len(plan.requests) == plan.lower_bound == math.ceil(len(events) / 10)


def test_first_fit_decreasing_beats_the_contiguous_cut():
    sizes = [600 * KB, 600 * KB, 400 * KB, 400 * KB]  # in time order
    events = [make_event(NOW_MS + i, size, i) for i, size in enumerate(sizes)]
    assert len(contiguous_cut(events)) == 3
    plan = plan_requests({DEST: events}, NOW_MS)
    assert_plan_is_valid(plan, {DEST: events}, REAL_LIMITS)
    assert len(plan.requests) == 2 == plan.lower_bound
    assert sorted(sorted(e.size for e in r.events) for r in plan.requests) == [
        [400 * KB, 600 * KB],
        [400 * KB, 600 * KB],
    ]


def test_out_of_time_the_contiguous_cut_stands():
    sizes = [600 * KB, 600 * KB, 400 * KB, 400 * KB]  # first-fit packs them in 2, the cut in 3
    events = [make_event(NOW_MS + i, size, i) for i, size in enumerate(sizes)]
    plan = plan_requests({DEST: events}, NOW_MS, in_time=lambda: False)
    assert_plan_is_valid(plan, {DEST: events}, REAL_LIMITS)
    assert [list(r.events) for r in plan.requests] == contiguous_cut(events)


def test_a_first_fit_packing_stops_when_time_runs_out_and_the_cut_stands():
    """Many sizes in one window: the first-fit looks at the clock as it places them."""
    limits = BatchLimits(max_bytes=10_000, max_events=1_000_000)
    rng = random.Random(9)
    events = [make_event(NOW_MS + i, rng.randint(500, 9_000), i) for i in range(30_000)]
    cut = contiguous_cut(events, limits)
    looks = 0

    def soon_out_of_time() -> bool:
        nonlocal looks
        looks += 1
        return looks <= 2  # allowed to start, then stopped at the first look inside

    plan = plan_requests({DEST: events}, NOW_MS, limits, in_time=soon_out_of_time)
    assert [list(r.events) for r in plan.requests] == cut
    # look 1 starts the first-fit, look 2 (after 256 runs of one size) lets it go on, look 3
    # stops it, and look 4 keeps the next candidate from starting
    assert looks == 4
    in_time = plan_requests({DEST: events}, NOW_MS, limits)
    assert len(in_time.requests) < len(cut)


def test_first_fit_decreasing_respects_the_count_limit():
    """One large event then many tiny ones in one window: the bins fill up by count."""
    events = [make_event(NOW_MS, 900, 0)] + [make_event(NOW_MS + i, 27, i) for i in range(1, 34)]
    chunks = windowed_first_fit_decreasing(events, SMALL_LIMITS)
    for chunk in chunks:
        assert_chunk_obeys_rules(chunk, SMALL_LIMITS)
    assert Counter(id(e) for c in chunks for e in c) == Counter(id(e) for e in events)
    assert len(chunks) == 4 == lower_bound(events, SMALL_LIMITS)
    plan = plan_requests({DEST: events}, NOW_MS, SMALL_LIMITS)
    assert_plan_is_valid(plan, {DEST: events}, SMALL_LIMITS)
    assert len(plan.requests) == 4


def test_heavy_tailed_workload_stays_within_five_percent_of_the_lower_bound():
    rng = random.Random(20240830)
    events = []
    for i in range(2000):
        size = min(MAX_EVENT_BYTES, 26 + int(2000 * rng.paretovariate(1.1)))
        width = rng.choice([1, 1, 2, 4])
        events.append(make_event(NOW_MS + rng.randrange(3_600_000), size, i, width))
    groups = {DEST: events}
    plan = plan_requests(groups, NOW_MS)
    assert_plan_is_valid(plan, groups, REAL_LIMITS)
    assert plan.lower_bound > 10, "the workload should need many requests"
    ratio = len(plan.requests) / plan.lower_bound
    assert ratio <= 1.05, f"{len(plan.requests)} requests for a lower bound of {plan.lower_bound}"


# --- against the true optimum on tiny instances --------------------------------------------

TINY_LIMITS = BatchLimits(max_bytes=100, max_events=3, max_span_ms=10, event_overhead=26)


def optimum(events: Sequence[LogEvent], limits: BatchLimits) -> int:
    """The fewest requests of any valid packing, by exhaustive search over set partitions.

    A set of events can form a request iff it obeys the count, bytes and span rules (it can
    always be put in chronological order), so the search is over subsets only."""
    n = len(events)
    valid = [False] * (1 << n)
    for mask in range(1, 1 << n):
        members = [events[i] for i in range(n) if mask >> i & 1]
        stamps = [e.timestamp for e in members]
        valid[mask] = (
            len(members) <= limits.max_events
            and sum(e.size for e in members) <= limits.max_bytes
            and max(stamps) - min(stamps) <= limits.max_span_ms
        )
    best = [0] + [n + 1] * ((1 << n) - 1)
    for mask in range(1, 1 << n):
        lowest = mask & -mask
        rest = mask ^ lowest
        sub = rest
        while True:  # every subset of `mask` that holds its lowest event
            block = sub | lowest
            if valid[block]:
                best[mask] = min(best[mask], 1 + best[mask ^ block])
            if sub == 0:
                break
            sub = (sub - 1) & rest
    return best[(1 << n) - 1]


@pytest.mark.parametrize(
    ("sizes", "stamps", "expected"),
    [
        ([30], [0], 1),
        ([60, 60], [0, 0], 2),
        ([50, 50, 30, 30], [0, 0, 0, 0], 2),
        ([30, 30, 30, 30], [0, 0, 0, 0], 2),  # count: 3 per request
        ([30, 30], [0, 11], 2),  # span
        ([70, 30, 70, 30], [0, 1, 2, 3], 2),
    ],
)
def test_optimum_oracle_on_known_cases(sizes, stamps, expected):
    events = [make_event(t, s, i) for i, (t, s) in enumerate(zip(stamps, sizes, strict=True))]
    assert optimum(events, TINY_LIMITS) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(27, TINY_LIMITS.max_bytes)),
        min_size=1,
        max_size=7,
    )
)
def test_plan_against_exhaustive_optimum(pairs):
    events = [make_event(t, size, i) for i, (t, size) in enumerate(pairs)]
    plan = plan_requests({DEST: events}, 0, TINY_LIMITS)
    assert_plan_is_valid(plan, {DEST: events}, TINY_LIMITS)
    best = optimum(events, TINY_LIMITS)
    event(f"plan - optimum = {len(plan.requests) - best}")
    assert plan.lower_bound <= best <= len(plan.requests)
    if best == 1:
        assert len(plan.requests) == 1
    assert len(plan.requests) <= best + 1


# --- events the service would refuse are judged before sending -----------------------------

OLDEST_SENT = NOW_MS - MAX_AGE_MS - CLOCK_SKEW_MARGIN_MS
NEWEST_SENT = NOW_MS + MAX_FUTURE_MS + CLOCK_SKEW_MARGIN_MS


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (OLDEST_SENT - 1, Rejection.TOO_OLD),
        (OLDEST_SENT, None),
        (NOW_MS - MAX_AGE_MS - 1, None),  # past the bound but inside the skew margin: sent
        (NOW_MS, None),
        (NOW_MS + MAX_FUTURE_MS + 1, None),  # inside the margin: the service decides
        (NEWEST_SENT, None),
        (NEWEST_SENT + 1, Rejection.TOO_NEW),
        (0, Rejection.TOO_OLD),
    ],
)
def test_prejudging_edges(timestamp, expected):
    evt = make_event(timestamp, 40)
    plan = plan_requests({DEST: [evt]}, NOW_MS)
    if expected is None:
        assert plan.prejudged == []
        assert [r.events for r in plan.requests] == [(evt,)]
    else:
        assert plan.requests == []
        assert plan.prejudged == [(evt, expected)]
        assert plan.lower_bound == 0


@settings(max_examples=150, deadline=None)
@given(
    workloads(SMALL_LIMITS, max_events=30, spans=1),
    st.lists(st.integers(-16 * 24 * 3600 * 1000, 3 * 3600 * 1000), min_size=1, max_size=40),
)
def test_prejudging_classifies_every_event(groups, shifts):
    """Too old; too new, retried; too far ahead to retry; or sent."""
    shifted = {}
    index = 0
    for destination, events in groups.items():
        shifted[destination] = []
        for e in events:
            moved = e._replace(timestamp=e.timestamp + shifts[index % len(shifts)])
            shifted[destination].append(moved)
            index += 1
    plan = plan_requests(shifted, NOW_MS, SMALL_LIMITS)
    assert_plan_is_valid(plan, shifted, SMALL_LIMITS)
    judged = {id(e): reason for e, reason in plan.prejudged}
    for events in shifted.values():
        for e in events:
            if e.timestamp < OLDEST_SENT:
                assert judged.get(id(e)) is Rejection.TOO_OLD
            elif e.timestamp > NOW_MS + MAX_FUTURE_MS + TOO_NEW_RETRY_HORIZON_MS:
                assert judged.get(id(e)) is Rejection.TOO_FAR_AHEAD
            elif e.timestamp > NEWEST_SENT:
                assert judged.get(id(e)) is Rejection.TOO_NEW
            else:
                assert id(e) not in judged


@settings(max_examples=200, deadline=None)
@given(
    # sizes repeat often, so that runs of one size are placed together
    sizes=st.lists(st.integers(27, 600) | st.sampled_from([27, 28, 250, 333]), max_size=120),
)
def test_the_first_fit_tree_places_every_event_where_a_linear_scan_would(sizes):
    """The tree over free space is an index, not a new rule: first fit, as a scan finds it."""
    limits = BatchLimits(max_bytes=1000, max_events=7, max_span_ms=10, event_overhead=26)
    events = [make_event(NOW_MS, size, i) for i, size in enumerate(sizes)]
    bins: list[list[int]] = []
    used: list[int] = []
    for i in sorted(range(len(events)), key=lambda i: -events[i].size):
        for slot, members in enumerate(bins):
            if used[slot] + events[i].size <= limits.max_bytes and len(members) < 7:
                members.append(i)
                used[slot] += events[i].size
                break
        else:
            bins.append([i])
            used.append(events[i].size)
    expected = [[events[i] for i in sorted(members)] for members in bins]

    assert windowed_first_fit_decreasing(events, limits) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(27, 600)), min_size=1, max_size=150))
def test_the_windowed_floor_never_exceeds_the_windowed_first_fit(stamped):
    """The floor lets the planner skip the windowed first-fit when it cannot beat the cut; it
    must be a true floor of that packing, or a better plan would be skipped."""
    limits = BatchLimits(max_bytes=1000, max_events=7, max_span_ms=10, event_overhead=26)
    events = sorted(
        (make_event(NOW_MS + t, size, i) for i, (t, size) in enumerate(stamped)),
        key=lambda e: e.timestamp,
    )
    floor = windowed_floor(events, limits)
    assert (
        lower_bound(events, limits) <= floor <= len(windowed_first_fit_decreasing(events, limits))
    )
