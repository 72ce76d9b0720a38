"""Decide: the fate of every record, and the records held back before sending."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from forwarder.fates import Fate, decide, held_back
from forwarder.model import (
    DecodedRecord,
    Destination,
    InvalidRecord,
    LogEvent,
    RecordVerdict,
    Rejection,
    SourceRecord,
)
from forwarder.planning import TimeBounds
from forwarder.settings import InvalidRecordPolicy
from forwarder.sources import KINESIS, SQS
from tests.unit.strategies import NOW_MS

FAIL, DEAD_LETTER, DROP = (
    InvalidRecordPolicy.FAIL,
    InvalidRecordPolicy.DEAD_LETTER,
    InvalidRecordPolicy.DROP,
)
DEST = Destination("/app/api", "web-1")
BOUNDS = TimeBounds.at(NOW_MS)
FAR_AHEAD_MS = NOW_MS + 3 * 3600 * 1000  # beyond the 2 h bound and the retry horizon
SOON_TOO_NEW_MS = NOW_MS + 2 * 3600 * 1000 + 20 * 60 * 1000  # within the retry horizon


def records(*groups: str | None) -> list[SourceRecord]:
    return [SourceRecord(f"r{i}", "", NOW_MS, message_group=g) for i, g in enumerate(groups)]


def verdict(kind: str, position: int) -> RecordVerdict:
    """``ok`` delivered, ``bad`` invalid (permanent), ``slow`` throttled (retryable)."""
    v = RecordVerdict(f"r{position}")
    if kind == "bad":
        v.invalid_reason = "not JSON"
    elif kind == "slow":
        v.rejections[Rejection.THROTTLED] = 1
    return v


def verdicts(*kinds: str) -> list[RecordVerdict]:
    return [verdict(kind, i) for i, kind in enumerate(kinds)]


def fates_of(fates) -> list[Fate]:
    return [f.fate for f in fates]


# --- decide ------------------------------------------------------------------------------------


def test_each_record_gets_its_own_fate_by_the_policy():
    batch = records(None, None, None)
    kinds = verdicts("ok", "bad", "slow")
    assert fates_of(decide(batch, kinds, FAIL)) == [Fate.DELIVERED, Fate.FAILED, Fate.FAILED]
    assert fates_of(decide(batch, kinds, DEAD_LETTER)) == [
        Fate.DELIVERED,
        Fate.DEAD_LETTERED,
        Fate.FAILED,
    ]
    assert fates_of(decide(batch, kinds, DROP)) == [Fate.DELIVERED, Fate.DROPPED, Fate.FAILED]


def test_a_failure_fails_the_later_records_of_its_group_whatever_they_hold():
    batch = records("g", "g", "g", "h", "g")
    fates = decide(batch, verdicts("bad", "slow", "bad", "ok", "ok"), DEAD_LETTER)
    # r0 is dead-lettered (it fails no one); r1 fails; r2 is not dead-lettered behind it, but
    # held back to be judged when it comes back; h is another group
    assert fates_of(fates) == [
        Fate.DEAD_LETTERED,
        Fate.FAILED,
        Fate.FAILED,
        Fate.DELIVERED,
        Fate.FAILED,
    ]
    assert (
        fates[2].reason
        == fates[4].reason
        == ("held back: record r1 of the same message group or shard failed first")
    )
    assert fates[1].reason.startswith("events not accepted: 1 throttled")


def test_a_record_failed_on_its_own_keeps_its_own_reason_behind_a_failure():
    fates = decide(records("g", "g"), verdicts("slow", "slow"), FAIL)
    assert fates[1].reason.startswith("events not accepted")


def test_a_letter_not_sent_fails_its_record_and_the_unsettled_rest_of_its_group():
    batch = records("g", "g", "g", None)
    kinds = verdicts("bad", "ok", "bad", "bad")
    first = decide(batch, kinds, DEAD_LETTER)
    letter, delivered = Fate.DEAD_LETTERED, Fate.DELIVERED
    assert fates_of(first) == [letter, delivered, letter, letter]

    final = decide(batch, kinds, DEAD_LETTER, {0: "timed out"})

    assert fates_of(final) == [Fate.FAILED, Fate.FAILED, Fate.DEAD_LETTERED, Fate.DEAD_LETTERED]
    assert final[0].reason == "not JSON; and could not be dead-lettered: timed out"
    assert final[1].reason.startswith("held back: record r0 ")


def test_records_of_a_standard_queue_never_hold_back():
    fates = decide(records(None, None), verdicts("slow", "ok"), FAIL)
    assert fates_of(fates) == [Fate.FAILED, Fate.DELIVERED]


KINDS = st.sampled_from(["ok", "bad", "slow"])


@given(
    st.lists(st.tuples(st.sampled_from(["g", "h", None]), KINDS), max_size=12),
    st.sampled_from(list(InvalidRecordPolicy)),
    st.data(),
)
def test_fates_follow_the_three_rules(batch, policy, data):
    groups = [group for group, _ in batch]
    kinds = verdicts(*(kind for _, kind in batch))
    sources = records(*groups)
    letters = [
        i for i, f in enumerate(decide(sources, kinds, policy)) if f.fate is Fate.DEAD_LETTERED
    ]
    not_sent = (
        dict.fromkeys(data.draw(st.lists(st.sampled_from(letters), unique=True)), "no")
        if letters
        else {}
    )

    fates = decide(sources, kinds, policy, not_sent)

    for i, ((group, kind), fate) in enumerate(zip(batch, fates, strict=True)):
        earlier_failure = group is not None and any(
            g == group and f.fate is Fate.FAILED for g, f in zip(groups[:i], fates[:i], strict=True)
        )
        if earlier_failure and fate.fate is not Fate.FAILED:
            # only a letter sent (a drop is never decided behind a failure) stays settled
            assert fate.fate is Fate.DEAD_LETTERED
            assert i in letters
        if kind == "ok" and not earlier_failure:
            assert fate.fate is Fate.DELIVERED
        if kind == "slow":
            assert fate.fate is Fate.FAILED
        if kind == "bad" and fate.fate is not Fate.FAILED:
            assert fate.fate is {DEAD_LETTER: Fate.DEAD_LETTERED, DROP: Fate.DROPPED}[policy]
        if i in not_sent:
            assert fate.fate is Fate.FAILED


# --- held back before sending ------------------------------------------------------------------


def event(timestamp: int, record: int) -> LogEvent:
    return LogEvent(timestamp, "m", 27, record, 0)


def test_on_fifo_what_fails_before_sending_holds_the_rest_of_its_group_back():
    batch = records("g", "g", "g", "h")
    decoded = [
        DecodedRecord(DEST, [event(NOW_MS, 0), event(SOON_TOO_NEW_MS, 0)]),
        DecodedRecord(DEST, [event(NOW_MS, 1)]),
        InvalidRecord("not JSON"),
        DecodedRecord(DEST, [event(NOW_MS, 3)]),
    ]
    assert held_back(SQS, batch, decoded, BOUNDS, DEAD_LETTER) == {1: 0, 2: 0}


def test_on_fifo_a_permanent_failure_holds_back_only_when_the_policy_reports_it_failed():
    batch = records("g", "g")
    far = [DecodedRecord(DEST, [event(FAR_AHEAD_MS, 0)]), DecodedRecord(DEST, [event(NOW_MS, 1)])]
    invalid = [InvalidRecord("not JSON"), DecodedRecord(DEST, [event(NOW_MS, 1)])]
    for decoded in (far, invalid):
        assert held_back(SQS, batch, decoded, BOUNDS, FAIL) == {1: 0}
        assert held_back(SQS, batch, decoded, BOUNDS, DEAD_LETTER) == {}


def test_on_kinesis_only_a_deferred_record_holds_its_shard_back():
    batch = records("shard-1", "shard-1", "shard-1")
    decoded = [
        DecodedRecord(DEST, [event(SOON_TOO_NEW_MS, 0)]),
        InvalidRecord("not JSON"),
        InvalidRecord("budget spent", retryable=True),
    ]
    assert held_back(KINESIS, batch, decoded, BOUNDS, FAIL) == {}
    later = [*decoded, DecodedRecord(DEST, [event(NOW_MS, 3)])]
    assert held_back(KINESIS, records(*["shard-1"] * 4), later, BOUNDS, FAIL) == {3: 2}


def test_a_standard_queue_holds_nothing_back():
    decoded = [InvalidRecord("budget spent", retryable=True), DecodedRecord(DEST, [])]
    assert held_back(SQS, records(None, None), decoded, BOUNDS, FAIL) == {}
