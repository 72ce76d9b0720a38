"""Judge: outcomes mapped back to records, and the FIFO rule."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.limits import MAX_AGE_MS
from forwarder.model import (
    DecodedRecord,
    Destination,
    InvalidRecord,
    LogEvent,
    PlannedRequest,
    RecordVerdict,
    Rejection,
    RequestOutcome,
    SourceRecord,
)
from forwarder.planning import Plan, plan_requests
from forwarder.verdicts import fifo_blocked, judge
from tests.unit.strategies import DESTINATIONS, NOW_MS, SMALL_LIMITS, make_event

DEST = Destination("/app/api", "web-1")


def records_for(count: int, groups: list[str | None] | None = None) -> list[SourceRecord]:
    groups = groups or [None] * count
    return [SourceRecord(f"r{i}", "", NOW_MS, message_group=groups[i]) for i in range(count)]


def request(*events: LogEvent) -> PlannedRequest:
    return PlannedRequest(DEST, tuple(events), sum(e.size for e in events))


def events_of(*records: int) -> list[LogEvent]:
    return [make_event(NOW_MS + i, 30, record) for i, record in enumerate(records)]


def decoded_for(records: list[SourceRecord], events: list[LogEvent]) -> list[DecodedRecord]:
    return [DecodedRecord(DEST, [e for e in events if e.record == i]) for i in range(len(records))]


# --- rejection indexes --------------------------------------------------------------------


def test_too_new_start_is_inclusive():
    records = records_for(3)
    events = events_of(0, 0, 1, 1, 2, 2)
    req = request(*events)
    outcome = RequestOutcome(req, too_new_start=3)
    verdicts = judge(records, decoded_for(records, events), Plan([req], [], 1), [outcome])
    assert [v.rejections for v in verdicts] == [{}, {Rejection.TOO_NEW: 1}, {Rejection.TOO_NEW: 2}]
    assert [v.accepted_events for v in verdicts] == [2, 1, 0]
    assert [v.delivered for v in verdicts] == [True, False, False]


def test_too_old_end_is_exclusive():
    records = records_for(3)
    events = events_of(0, 0, 1, 1, 2, 2)
    req = request(*events)
    outcome = RequestOutcome(req, too_old_end=3)
    verdicts = judge(records, decoded_for(records, events), Plan([req], [], 1), [outcome])
    assert [v.rejections for v in verdicts] == [{Rejection.TOO_OLD: 2}, {Rejection.TOO_OLD: 1}, {}]
    assert [v.accepted_events for v in verdicts] == [0, 1, 2]
    assert [v.delivered for v in verdicts] == [False, False, True]


def test_expired_end_is_exclusive():
    records = records_for(3)
    events = events_of(0, 1, 1, 2)
    req = request(*events)
    outcome = RequestOutcome(req, expired_end=1)
    verdicts = judge(records, decoded_for(records, events), Plan([req], [], 1), [outcome])
    assert [v.rejections for v in verdicts] == [{Rejection.EXPIRED: 1}, {}, {}]
    assert [v.delivered for v in verdicts] == [False, True, True]


def test_old_and_new_rejections_in_one_request():
    records = records_for(4)
    events = events_of(0, 1, 1, 2, 3, 3)
    req = request(*events)
    outcome = RequestOutcome(req, too_old_end=1, too_new_start=4)
    verdicts = judge(records, decoded_for(records, events), Plan([req], [], 1), [outcome])
    assert [v.rejections for v in verdicts] == [
        {Rejection.TOO_OLD: 1},
        {},
        {},
        {Rejection.TOO_NEW: 2},
    ]
    assert [v.delivered for v in verdicts] == [False, True, True, False]
    assert sum(v.accepted_events for v in verdicts) == 3


def test_overlapping_old_and_expired_indexes_reject_each_event_once():
    records = records_for(1)
    events = events_of(0, 0, 0, 0)
    req = request(*events)
    outcome = RequestOutcome(req, too_old_end=1, expired_end=3)
    (verdict,) = judge(records, decoded_for(records, events), Plan([req], [], 1), [outcome])
    assert sum(verdict.rejections.values()) == 3
    assert set(verdict.rejections) <= {Rejection.TOO_OLD, Rejection.EXPIRED}
    assert verdict.accepted_events == 1


def test_indexes_that_reject_nothing():
    records = records_for(1)
    events = events_of(0, 0)
    req = request(*events)
    outcome = RequestOutcome(req, too_new_start=2, too_old_end=0, expired_end=0)
    (verdict,) = judge(records, decoded_for(records, events), Plan([req], [], 1), [outcome])
    assert verdict.delivered
    assert verdict.accepted_events == 2


@pytest.mark.parametrize("failure", list(Rejection))
def test_whole_request_failure_marks_every_record_it_carries(failure):
    records = records_for(4)
    events = events_of(0, 1, 1, 2, 3)
    failed = request(*events[:4])
    fine = request(events[4])
    outcomes = [RequestOutcome(failed, failure, "why"), RequestOutcome(fine)]
    verdicts = judge(records, decoded_for(records, events), Plan([failed, fine], [], 2), outcomes)
    assert [v.rejections for v in verdicts] == [{failure: 1}, {failure: 2}, {failure: 1}, {}]
    assert [v.delivered for v in verdicts] == [False, False, False, True]
    assert [v.retryable for v in verdicts[:3]] == [failure.retryable] * 3


def test_record_spread_over_several_requests_fails_if_any_one_fails():
    records = records_for(2)
    events = events_of(0, 0, 0, 1)
    first, second, third = request(events[0]), request(events[1], events[3]), request(events[2])
    plan = Plan([first, second, third], [], 3)
    outcomes = [
        RequestOutcome(first),
        RequestOutcome(second, too_new_start=1),  # only record 1's event is rejected
        RequestOutcome(third),
    ]
    verdicts = judge(records, decoded_for(records, events), plan, outcomes)
    assert verdicts[0].delivered
    assert verdicts[0].accepted_events == 3
    assert not verdicts[1].delivered

    outcomes[2] = RequestOutcome(third, Rejection.UNAVAILABLE)
    verdicts = judge(records, decoded_for(records, events), plan, outcomes)
    assert not verdicts[0].delivered
    assert verdicts[0].rejections == {Rejection.UNAVAILABLE: 1}
    assert verdicts[0].accepted_events == 2


def test_prejudged_events_count_against_their_records():
    records = records_for(3)
    events = events_of(0, 1, 1, 2)
    sent = request(events[0], events[2])
    plan = Plan([sent], [(events[1], Rejection.TOO_OLD), (events[3], Rejection.TOO_NEW)], 1)
    verdicts = judge(records, decoded_for(records, events), plan, [RequestOutcome(sent)])
    assert verdicts[0].delivered
    assert verdicts[1].rejections == {Rejection.TOO_OLD: 1}
    assert verdicts[1].accepted_events == 1
    assert not verdicts[1].delivered
    assert not verdicts[1].retryable
    assert verdicts[2].rejections == {Rejection.TOO_NEW: 1}
    assert verdicts[2].retryable


def test_invalid_records_and_records_with_nothing_to_send():
    records = records_for(3)
    decoded = [InvalidRecord("bad payload"), DecodedRecord(None, []), DecodedRecord(DEST, [])]
    verdicts = judge(records, decoded, Plan([], [], 0), [])
    assert [v.record_id for v in verdicts] == ["r0", "r1", "r2"]
    assert verdicts[0].invalid_reason == "bad payload"
    assert not verdicts[0].delivered
    assert verdicts[0].describe() == "bad payload"
    assert verdicts[1].delivered
    assert verdicts[2].delivered


# --- RecordVerdict ------------------------------------------------------------------------


def test_record_verdict_delivered():
    assert RecordVerdict("a").delivered
    assert RecordVerdict("a", accepted_events=3).delivered
    assert not RecordVerdict("a", invalid_reason="x").delivered
    assert not RecordVerdict("a", blocked_by="b").delivered
    assert not RecordVerdict("a", rejections={Rejection.TOO_OLD: 1}, accepted_events=9).delivered


@pytest.mark.parametrize(
    "reason",
    [Rejection.TOO_NEW, Rejection.THROTTLED, Rejection.UNAVAILABLE, Rejection.OUT_OF_TIME],
)
def test_failures_that_may_pass_later_are_retryable(reason):
    assert reason.retryable
    assert RecordVerdict("a", rejections={reason: 1}).retryable
    assert RecordVerdict("a", rejections={Rejection.TOO_OLD: 3, reason: 1}).retryable


@pytest.mark.parametrize("reason", [Rejection.TOO_OLD, Rejection.EXPIRED])
def test_failures_that_time_only_makes_worse_are_not_retryable(reason):
    assert not reason.retryable
    assert not RecordVerdict("a", rejections={reason: 2}).retryable


def test_record_verdict_retryable_when_blocked_and_not_when_invalid():
    assert RecordVerdict("a", blocked_by="b").retryable
    assert not RecordVerdict("a", invalid_reason="bad").retryable
    assert not RecordVerdict("a").retryable


def test_record_verdict_describe():
    assert RecordVerdict("a", invalid_reason="payload is not JSON").describe() == (
        "payload is not JSON"
    )
    blocked = RecordVerdict("a", blocked_by="msg-17").describe()
    assert "msg-17" in blocked
    lost = RecordVerdict(
        "a", rejections={Rejection.TOO_NEW: 2, Rejection.THROTTLED: 1}, accepted_events=5
    ).describe()
    for part in ("2 too-new", "1 throttled", "5 accepted"):
        assert part in lost


# --- the FIFO rule --------------------------------------------------------------------------


def test_fifo_blocks_later_records_of_the_failed_group_only():
    records = records_for(7, ["A", "A", "B", None, "A", "B", "A"])
    assert fifo_blocked(records, [1]) == {4: 1, 6: 1}
    assert fifo_blocked(records, [1, 4]) == {4: 1, 6: 1}  # a later failure is blocked too
    assert fifo_blocked(records, [0, 2]) == {1: 0, 4: 0, 5: 2, 6: 0}
    assert fifo_blocked(records, [6]) == {}
    assert fifo_blocked(records, []) == {}


def test_fifo_group_less_records_are_never_blocked_and_never_block():
    records = records_for(4, [None, None, "A", None])
    assert fifo_blocked(records, [0]) == {}
    assert fifo_blocked(records, [2]) == {}
    assert fifo_blocked(records_for(3), [0, 1]) == {}


def test_fifo_accepts_any_iterable_of_failures():
    records = records_for(3, ["A", "A", "A"])
    assert fifo_blocked(records, iter([0])) == {1: 0, 2: 0}
    assert fifo_blocked(records, {0: "reason"}) == {1: 0, 2: 0}


@settings(max_examples=300, deadline=None)
@given(
    groups=st.lists(st.sampled_from([None, "a", "b", "c"]), max_size=30),
    data=st.data(),
)
def test_fifo_blocked_property(groups, data):
    records = records_for(len(groups), groups)
    failed = data.draw(
        st.sets(st.integers(0, max(0, len(groups) - 1))) if groups else st.just(set())
    )
    blocked = fifo_blocked(records, failed)
    expected = {}
    for position, group in enumerate(groups):
        if group is None:
            continue
        earlier = [q for q in sorted(failed) if q < position and groups[q] == group]
        if earlier:  # failed or not: it comes again after the first failure of its group
            expected[position] = earlier[0]
    assert blocked == expected
    assert all(first in failed and first < position for position, first in blocked.items())


# --- whole pipeline of verdicts: order independence and the delivered rule -----------------


@st.composite
def judged_batches(draw):
    """Records, their decoding, a plan from the real planner and a made-up outcome per request."""
    count = draw(st.integers(1, 10))
    records = records_for(
        count, draw(st.lists(st.sampled_from([None, "a", "b"]), min_size=count, max_size=count))
    )
    decoded: list[DecodedRecord | InvalidRecord] = []
    groups: dict[Destination, list[LogEvent]] = {}
    for position in range(count):
        if draw(st.integers(0, 7)) == 0:
            decoded.append(InvalidRecord("bad"))
            continue
        destination = draw(st.sampled_from(DESTINATIONS))
        events = [
            make_event(
                draw(st.sampled_from([NOW_MS - MAX_AGE_MS - 3_600_000, NOW_MS, NOW_MS + 900])),
                draw(st.integers(27, 400)),
                position,
            )
            for _ in range(draw(st.integers(0, 6)))
        ]
        decoded.append(DecodedRecord(destination, events))
        groups.setdefault(destination, []).extend(events)
    plan = plan_requests(groups, NOW_MS, SMALL_LIMITS)
    outcomes = []
    for req in plan.requests:
        size = len(req.events)
        index = st.one_of(st.none(), st.integers(0, size))
        if draw(st.integers(0, 4)) == 0:
            outcomes.append(RequestOutcome(req, draw(st.sampled_from(list(Rejection)))))
        else:
            outcomes.append(
                RequestOutcome(
                    req, too_new_start=draw(index), too_old_end=draw(index), expired_end=draw(index)
                )
            )
    return records, decoded, plan, outcomes


def accepted(outcome: RequestOutcome, index: int) -> bool:
    """The documented meaning of the indexes, written out independently of the model."""
    if outcome.failure is not None:
        return False
    if outcome.too_old_end is not None and index < outcome.too_old_end:
        return False
    if outcome.expired_end is not None and index < outcome.expired_end:
        return False
    return not (outcome.too_new_start is not None and index >= outcome.too_new_start)


@settings(max_examples=200, deadline=None)
@given(judged_batches(), st.randoms(use_true_random=False))
def test_same_verdicts_whatever_the_order_requests_finish_in(batch, rng):
    records, decoded, plan, outcomes = batch
    expected = judge(records, decoded, plan, outcomes)
    shuffled = list(outcomes)
    rng.shuffle(shuffled)
    assert judge(records, decoded, plan, shuffled) == expected
    assert judge(records, decoded, plan, reversed(outcomes)) == expected


@settings(max_examples=200, deadline=None)
@given(judged_batches())
def test_a_record_is_delivered_iff_all_its_events_were_accepted(batch):
    records, decoded, plan, outcomes = batch
    verdicts = judge(records, decoded, plan, outcomes)
    assert len(verdicts) == len(records)
    lost = [0] * len(records)
    kept = [0] * len(records)
    for e, _ in plan.prejudged:
        lost[e.record] += 1
    for outcome in outcomes:
        for index, e in enumerate(outcome.request.events):
            if accepted(outcome, index):
                kept[e.record] += 1
            else:
                lost[e.record] += 1
    for position, verdict in enumerate(verdicts):
        assert verdict.record_id == records[position].record_id
        assert verdict.accepted_events == kept[position]
        assert sum(verdict.rejections.values()) == lost[position]
        is_invalid = isinstance(decoded[position], InvalidRecord)
        assert verdict.delivered == (not is_invalid and lost[position] == 0)
        if isinstance(decoded[position], DecodedRecord):
            assert kept[position] + lost[position] == len(decoded[position].events)


def test_shuffled_outcomes_on_a_large_batch():
    rng = random.Random(3)
    records = records_for(50)
    events = [
        make_event(NOW_MS + rng.randrange(5000), rng.randint(27, 300), r)
        for r in range(50)
        for _ in range(3)
    ]
    decoded = decoded_for(records, events)
    plan = plan_requests({DEST: events}, NOW_MS, SMALL_LIMITS)
    outcomes = [
        RequestOutcome(
            r, rng.choice([None, Rejection.THROTTLED]), too_new_start=rng.randint(0, len(r.events))
        )
        for r in plan.requests
    ]
    expected = judge(records, decoded, plan, outcomes)
    for _ in range(5):
        rng.shuffle(outcomes)
        assert judge(records, decoded, plan, outcomes) == expected
    assert any(v.delivered for v in expected)
    assert not all(v.delivered for v in expected)
