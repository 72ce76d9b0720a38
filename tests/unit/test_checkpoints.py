"""The delivery checkpoint's pure half: what is looked up, left out and remembered."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forwarder import checkpoints
from forwarder.checkpoints import (
    SQS_SORT,
    Checkpoint,
    CheckpointKey,
    Landed,
    ShardRange,
    lookup,
    recalled,
    to_remember,
    without_landed,
)
from forwarder.fates import DELIVERED, Fate, RecordFate
from forwarder.model import (
    DecodedRecord,
    Destination,
    InvalidRecord,
    LogEvent,
    PlannedRequest,
    Rejection,
    RequestOutcome,
    SourceRecord,
)
from forwarder.sources import KINESIS, SQS
from tests.unit.strategies import NOW_MS

QUEUE = "arn:aws:sqs:us-east-1:123456789012:logs"
STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/logs"
API = Destination("/app/api", "web-1")
JOBS = Destination("/app/jobs", "worker-1")
FAILED = RecordFate(Fate.FAILED, "throttled")


def sqs_record(message_id: str, receive_count: int | None) -> SourceRecord:
    return SourceRecord(message_id, "", NOW_MS, source_arn=QUEUE, receive_count=receive_count)


def kinesis_record(sequence: str, shard: str = "shardId-000000000000") -> SourceRecord:
    return SourceRecord(sequence, b"", NOW_MS, message_group=shard, source_arn=STREAM)


def events(record: int, count: int, first: int = 0) -> list[LogEvent]:
    return [LogEvent(NOW_MS, f"e{o}", 28, record, o) for o in range(first, first + count)]


def accepted(*batch: LogEvent, too_new_start: int | None = None) -> RequestOutcome:
    request = PlannedRequest(API, tuple(batch), sum(e.size for e in batch))
    return RequestOutcome(request, too_new_start=too_new_start)


def failed(*batch: LogEvent) -> RequestOutcome:
    request = PlannedRequest(API, tuple(batch), sum(e.size for e in batch))
    return RequestOutcome(request, failure=Rejection.THROTTLED)


# --- Landed: ranges of ordinals ------------------------------------------------------------------


@given(st.sets(st.integers(0, 10_000), max_size=200))
def test_landed_round_trips_and_answers_membership_as_the_set_does(indexes):
    landed = Landed.of(indexes)
    assert Landed.decode(landed.encode()) == landed
    assert set(landed) == indexes
    assert len(landed) == len(indexes)
    assert all(i in landed for i in indexes)
    assert all(i not in landed for i in range(0, 10_001, 97) if i not in indexes)


def test_a_whole_record_is_one_range():
    assert Landed.of(range(5000)).encode() == "0:5000"


@pytest.mark.parametrize(
    "text", ["0:0", "3:1", "-1:2", "0:2,1:3", "4:5,0:1", "a:b", "1", "1:2:3", "\u0661:\u0662"]
)
def test_landed_refuses_what_encode_never_writes(text):
    with pytest.raises(ValueError, match="range"):
        Landed.decode(text)


@pytest.mark.parametrize("text", ["[]", '"0:1"', '{"r": 1}', "{", '{"r": "x"}'])
def test_a_checkpoint_that_does_not_parse_is_a_value_error(text):
    with pytest.raises(ValueError, match=r"^landed"):
        Checkpoint.decode(CheckpointKey("p", "s"), text)


# --- lookup --------------------------------------------------------------------------------------


def test_a_first_sqs_delivery_looks_up_nothing_and_a_redelivery_its_own_item():
    wanted = lookup(SQS, [sqs_record("m1", 1), sqs_record("m2", 2), sqs_record("m3", None)])
    assert wanted.items == (
        CheckpointKey(f"{QUEUE}/m2", SQS_SORT),
        CheckpointKey(f"{QUEUE}/m3", SQS_SORT),
    )
    assert not lookup(SQS, [sqs_record("m1", 1)])


def test_a_kinesis_batch_looks_up_each_shard_between_its_first_and_last_sequence_number():
    batch = [kinesis_record("10"), kinesis_record("9"), kinesis_record("5", "shardId-1")]
    wanted = lookup(KINESIS, batch)
    pad = "9".zfill(129)
    assert wanted.shards == (
        ShardRange(f"{STREAM}/shardId-000000000000", pad, "10".zfill(129)),
        ShardRange(f"{STREAM}/shardId-1", "5".zfill(129), "5".zfill(129)),
    )
    # Padded, sequence numbers sort as numbers: "9" before "10".
    assert pad < "10".zfill(129)


# --- recall: leave out what landed ---------------------------------------------------------------


def test_recall_leaves_out_the_landed_events_of_every_destination():
    record = DecodedRecord(API, events(0, 3), elsewhere=((JOBS, events(0, 2, first=3)),))
    other = DecodedRecord(API, events(1, 2))
    landed = recalled(
        [sqs_record("m1", 2), sqs_record("m2", 2)],
        [Checkpoint(CheckpointKey("k", SQS_SORT), {"m1": Landed.of([0, 2, 3])})],
    )
    kept, dropped = without_landed([record, other], landed)
    assert dropped == 3
    assert [(d, [e.ordinal for e in es]) for d, es in kept[0].parts()] == [(API, [1]), (JOBS, [4])]
    assert kept[1] is other


def test_a_record_whose_every_event_landed_has_nothing_left_to_send():
    record = DecodedRecord(API, events(0, 2), elsewhere=((JOBS, events(0, 1, first=2)),))
    kept, dropped = without_landed([record], {0: Landed.of(range(3))})
    assert dropped == 3
    assert isinstance(kept[0], DecodedRecord)
    assert list(kept[0].parts()) == []


def test_an_invalid_record_is_left_as_it_is():
    invalid = InvalidRecord("not JSON")
    assert without_landed([invalid], {0: Landed.of([0])}) == ([invalid], 0)


def test_checkpoints_of_one_record_under_several_keys_add_up():
    found = [
        Checkpoint(CheckpointKey("a", "1"), {"7": Landed.of([0])}),
        Checkpoint(CheckpointKey("a", "2"), {"7": Landed.of([2]), "8": Landed.of([0])}),
    ]
    assert recalled([kinesis_record("7")], found) == {0: Landed.of([0, 2])}


# --- remember ------------------------------------------------------------------------------------


def test_a_batch_with_no_record_reported_failed_writes_nothing():
    batch = [sqs_record("m1", 1), kinesis_record("1")]
    outcomes = [accepted(*events(0, 2))]
    assert to_remember(SQS, batch, [DELIVERED, DELIVERED], {}, outcomes) == []
    assert to_remember(KINESIS, batch, [DELIVERED, DELIVERED], {}, outcomes) == []


def test_an_sqs_record_partly_rejected_remembers_its_accepted_events_and_what_it_knew():
    batch = [sqs_record("m1", 2), sqs_record("m2", 1)]
    outcomes = [
        accepted(*events(0, 2, first=1), *events(1, 1), too_new_start=1),  # ordinal 2 too new
        failed(*events(0, 1, first=3)),
    ]
    (checkpoint,) = to_remember(SQS, batch, [FAILED, DELIVERED], {0: Landed.of([0])}, outcomes)
    assert checkpoint.key == CheckpointKey(f"{QUEUE}/m1", SQS_SORT)
    assert checkpoint.landed == {"m1": Landed.of([0, 1])}


def test_a_failed_sqs_record_of_which_nothing_landed_writes_nothing():
    batch = [sqs_record("m1", 1)]
    assert to_remember(SQS, batch, [FAILED], {}, [failed(*events(0, 2))]) == []


def test_a_kinesis_failure_remembers_every_landed_record_of_its_shard_under_the_batch_start():
    batch = [
        kinesis_record("100"),
        kinesis_record("101"),
        kinesis_record("102"),
        kinesis_record("7", "shardId-other"),
    ]
    outcomes = [
        accepted(*events(0, 1), *events(2, 2), *events(3, 1)),
        failed(*events(1, 1)),
    ]
    fates = [DELIVERED, FAILED, DELIVERED, DELIVERED]
    (checkpoint,) = to_remember(KINESIS, batch, fates, {}, outcomes)
    assert checkpoint.key == CheckpointKey(f"{STREAM}/shardId-000000000000", "100".zfill(129))
    # The record before the failure is remembered too: a whole batch again starts there.
    assert checkpoint.landed == {"100": Landed.of([0]), "102": Landed.of([0, 1])}


def test_a_kinesis_item_too_large_is_split_each_part_keyed_by_its_first_record(monkeypatch):
    monkeypatch.setattr(checkpoints, "MAX_ITEM_TEXT", 40)
    batch = [kinesis_record(str(n)) for n in range(1, 6)]
    outcomes = [accepted(*(e for p in range(5) for e in events(p, 1)))]
    items = to_remember(KINESIS, batch, [FAILED, *[DELIVERED] * 4], {}, outcomes)
    assert len(items) > 1
    assert items[0].key.sort == "1".zfill(129)
    for item in items:
        assert item.key.sort == min(item.landed).zfill(129)
        assert len(item.encode()) <= 60
    assert {rid for item in items for rid in item.landed} == {"1", "2", "3", "4", "5"}


@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=8),
    st.data(),
)
def test_what_is_remembered_is_exactly_what_is_not_sent_again(event_counts, data):
    """Round trip: whatever landed of records reported failed, the next delivery sends
    exactly the other events, and a record all of whose events landed sends none."""
    batch = [sqs_record(f"m{p}", 2) for p in range(len(event_counts))]
    decoded = [DecodedRecord(API, events(p, n)) for p, n in enumerate(event_counts)]
    landed = {
        p: data.draw(st.sets(st.integers(0, n - 1)), label=f"landed {p}")
        for p, n in enumerate(event_counts)
    }
    outcomes = [
        accepted(*(e for p, d in enumerate(decoded) for e in d.events if e.ordinal in landed[p])),
        failed(*(e for p, d in enumerate(decoded) for e in d.events if e.ordinal not in landed[p])),
    ]
    fates = [FAILED] * len(batch)
    written = to_remember(SQS, batch, fates, {}, outcomes)
    stored = [Checkpoint.decode(c.key, c.encode()) for c in written]  # through the table's text
    again, dropped = without_landed(decoded, recalled(batch, stored))
    assert dropped == sum(len(s) for s in landed.values())
    for p, item in enumerate(again):
        assert isinstance(item, DecodedRecord)
        sent = {e.ordinal for e in item.every_event()}
        assert sent == set(range(event_counts[p])) - landed[p]
    assert all(json.loads(c.encode()) for c in written)
