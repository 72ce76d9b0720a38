"""The delivery checkpoint's pure half: what is looked up, left out and remembered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forwarder import checkpoints
from forwarder.checkpoints import (
    SQS_SORT,
    Checkpoint,
    CheckpointKey,
    Landed,
    RecordMark,
    ShardStart,
    fingerprint,
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


def mark(item: DecodedRecord, *ordinals: int) -> RecordMark:
    return RecordMark.of(Landed.of(ordinals), item)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '"0:1"',
        '{"r": 1}',
        "{",
        '{"r": "x"}',
        '{"r": "3|abc|0:1"}',
        '{"r": "1|' + "0" * 16 + '|0:2"}',
    ],
)
def test_a_checkpoint_that_does_not_parse_is_a_value_error(text):
    with pytest.raises(ValueError, match=r"^landed"):
        Checkpoint.decode(CheckpointKey("p", "s"), text)


def test_a_checkpoint_round_trips_through_its_text():
    item = DecodedRecord(API, events(0, 3))
    checkpoint = Checkpoint(CheckpointKey("p", "s"), {"m1": mark(item, 0, 2)})
    assert Checkpoint.decode(checkpoint.key, checkpoint.encode()) == checkpoint
    assert checkpoint.events() == 2


# --- what a claim is of --------------------------------------------------------------------------


def test_the_fingerprint_tells_records_apart_by_any_event_and_its_place():
    base = DecodedRecord(API, events(0, 3))
    assert fingerprint(base) == fingerprint(DecodedRecord(API, events(7, 3)))  # not the position
    assert fingerprint(base)[0] == 3
    others = [
        DecodedRecord(API, events(0, 2)),
        DecodedRecord(JOBS, events(0, 3)),
        DecodedRecord(
            API, [e._replace(message="other") if e.ordinal == 1 else e for e in events(0, 3)]
        ),
        DecodedRecord(API, [e._replace(timestamp=e.timestamp + 1) for e in events(0, 3)]),
        DecodedRecord(API, [e._replace(ordinal=e.ordinal + 1) for e in events(0, 3)]),
    ]
    assert len({fingerprint(item) for item in [base, *others]}) == 1 + len(others)


def test_a_claim_made_of_another_decoding_of_the_record_is_ignored_not_applied():
    """Another version of the forwarder, or other settings, may number the events otherwise:
    the claim is not applied, the record is sent whole (a duplicate at worst, never a loss)."""
    then = DecodedRecord(API, events(0, 3))
    now = DecodedRecord(
        API, [*events(0, 1), LogEvent(NOW_MS, "new first", 35, 0, 1), *events(0, 2, first=2)]
    )
    recall = without_landed([now], {0: [mark(then, 0, 1)]})
    assert recall.mismatched == (0,)
    assert recall.dropped == 0
    assert recall.decoded == [now]
    assert recall.before == {}


# --- lookup --------------------------------------------------------------------------------------


def test_a_first_sqs_delivery_looks_up_nothing_and_a_redelivery_its_own_item_once():
    batch = [sqs_record("m1", 1), sqs_record("m2", 2), sqs_record("m3", None), sqs_record("m2", 2)]
    wanted = lookup(SQS, batch)
    assert wanted.items == (
        CheckpointKey(f"{QUEUE}/m2", SQS_SORT),
        CheckpointKey(f"{QUEUE}/m3", SQS_SORT),
    )
    assert not lookup(SQS, [sqs_record("m1", 1)])


def test_a_kinesis_batch_looks_up_each_shard_at_its_first_sequence_number():
    batch = [kinesis_record("10"), kinesis_record("9"), kinesis_record("5", "shardId-1")]
    wanted = lookup(KINESIS, batch)
    assert wanted.shards == (
        ShardStart(f"{STREAM}/shardId-000000000000", "9".zfill(129)),
        ShardStart(f"{STREAM}/shardId-1", "5".zfill(129)),
    )
    # Padded, sequence numbers sort as numbers ("9" before "10") and none prefixes another.
    assert "9".zfill(129) < "10".zfill(129)
    assert not "10".zfill(129).startswith("1".zfill(129))


# --- recall: leave out what landed ---------------------------------------------------------------


def test_recall_leaves_out_the_landed_events_of_every_destination():
    record = DecodedRecord(API, events(0, 3), elsewhere=((JOBS, events(0, 2, first=3)),))
    other = DecodedRecord(API, events(1, 2))
    claims = recalled(
        [sqs_record("m1", 2), sqs_record("m2", 2)],
        [Checkpoint(CheckpointKey("k", SQS_SORT), {"m1": mark(record, 0, 2, 3)})],
    )
    recall = without_landed([record, other], claims)
    assert recall.dropped == 3
    assert recall.before == {0: Landed.of([0, 2, 3])}
    parts = [(d, [e.ordinal for e in es]) for d, es in recall.decoded[0].parts()]
    assert parts == [(API, [1]), (JOBS, [4])]
    assert recall.decoded[1] is other


def test_a_record_whose_every_event_landed_has_nothing_left_to_send():
    record = DecodedRecord(API, events(0, 2), elsewhere=((JOBS, events(0, 1, first=2)),))
    recall = without_landed([record], {0: [mark(record, 0, 1, 2)]})
    assert recall.dropped == 3
    assert isinstance(recall.decoded[0], DecodedRecord)
    assert list(recall.decoded[0].parts()) == []


def test_a_claim_on_a_record_that_no_longer_decodes_is_ignored():
    invalid = InvalidRecord("not JSON")
    claim = mark(DecodedRecord(API, events(0, 1)), 0)
    recall = without_landed([invalid], {0: [claim]})
    assert recall.decoded == [invalid]
    assert recall.mismatched == (0,)


def test_claims_of_one_record_under_several_keys_add_up():
    item = DecodedRecord(API, events(0, 3))
    found = [
        Checkpoint(CheckpointKey("a", "1"), {"7": mark(item, 0)}),
        Checkpoint(CheckpointKey("a", "2"), {"7": mark(item, 2), "8": mark(item, 0)}),
    ]
    recall = without_landed([item], recalled([kinesis_record("7")], found))
    assert recall.before == {0: Landed.of([0, 2])}


# --- remember ------------------------------------------------------------------------------------


def test_a_batch_with_no_record_reported_failed_writes_nothing():
    batch = [sqs_record("m1", 1), kinesis_record("1")]
    decoded = [DecodedRecord(API, events(0, 2)), DecodedRecord(API, events(1, 1))]
    outcomes = [accepted(*events(0, 2))]
    for source in (SQS, KINESIS):
        assert to_remember(source, batch, decoded, [DELIVERED] * 2, {}, outcomes).checkpoints == []


def test_an_sqs_record_partly_rejected_remembers_its_accepted_events_and_what_it_knew():
    batch = [sqs_record("m1", 2), sqs_record("m2", 1)]
    decoded = [DecodedRecord(API, events(0, 4)), DecodedRecord(API, events(1, 1))]
    outcomes = [
        accepted(*events(0, 2, first=1), *events(1, 1), too_new_start=1),  # ordinal 2 too new
        failed(*events(0, 1, first=3)),
    ]
    remember = to_remember(SQS, batch, decoded, [FAILED, DELIVERED], {0: Landed.of([0])}, outcomes)
    (checkpoint,) = remember.checkpoints
    assert checkpoint.key == CheckpointKey(f"{QUEUE}/m1", SQS_SORT)
    assert checkpoint.marks == {"m1": mark(decoded[0], 0, 1)}


def test_a_failed_sqs_record_of_which_nothing_landed_writes_nothing():
    batch = [sqs_record("m1", 1)]
    decoded = [DecodedRecord(API, events(0, 2))]
    assert to_remember(SQS, batch, decoded, [FAILED], {}, [failed(*events(0, 2))]).checkpoints == []


def test_what_could_not_be_read_is_not_overwritten_but_counted():
    """A write would replace what the table knows of the record with less."""
    batch = [sqs_record("m1", 2)]
    decoded = [DecodedRecord(API, events(0, 3))]
    unread = {f"{QUEUE}/m1"}
    remember = to_remember(SQS, batch, decoded, [FAILED], {}, [accepted(*events(0, 2))], unread)
    assert remember.checkpoints == []
    assert remember.unremembered == 2


def test_a_kinesis_shard_that_could_not_be_read_still_writes_beside_what_the_table_knows():
    """Kinesis items are only added (each invocation's token in its key): nothing is hidden."""
    batch = [kinesis_record("100"), kinesis_record("101")]
    decoded = [DecodedRecord(API, events(p, 1)) for p in range(2)]
    unread = {f"{STREAM}/shardId-000000000000"}
    remember = to_remember(
        KINESIS, batch, decoded, [DELIVERED, FAILED], {}, [accepted(*events(0, 1))], unread, "t2"
    )
    assert [c.marks for c in remember.checkpoints] == [{"100": mark(decoded[0], 0)}] * 2
    assert remember.unremembered == 0


def test_a_kinesis_failure_remembers_its_shard_under_the_batch_start_and_the_failure():
    batch = [
        kinesis_record("100"),
        kinesis_record("101"),
        kinesis_record("102"),
        kinesis_record("7", "shardId-other"),
    ]
    decoded = [DecodedRecord(API, events(p, 2)) for p in range(4)]
    outcomes = [
        accepted(*events(0, 1), *events(2, 2), *events(3, 1)),
        failed(*events(1, 1)),
    ]
    fates = [DELIVERED, FAILED, DELIVERED, DELIVERED]
    remember = to_remember(KINESIS, batch, decoded, fates, {}, outcomes, token="t1")
    shard = f"{STREAM}/shardId-000000000000"
    assert [c.key for c in remember.checkpoints] == [
        CheckpointKey(shard, "100".zfill(129) + "#t1"),  # the whole batch again starts here
        CheckpointKey(shard, "101".zfill(129) + "#t1"),  # Lambda retries from the failure
    ]
    expected = {"100": mark(decoded[0], 0), "102": mark(decoded[2], 0, 1)}
    assert all(c.marks == expected for c in remember.checkpoints)


def test_a_kinesis_item_too_large_is_split_into_parts_under_one_sort_key(monkeypatch):
    monkeypatch.setattr(checkpoints, "MAX_ITEM_TEXT", 80)
    batch = [kinesis_record(str(n)) for n in range(1, 6)]
    decoded = [DecodedRecord(API, events(p, 1)) for p in range(5)]
    outcomes = [accepted(*(e for p in range(5) for e in events(p, 1)))]
    fates = [FAILED, *[DELIVERED] * 4]
    remember = to_remember(KINESIS, batch, decoded, fates, {}, outcomes, token="t")
    start = "1".zfill(129) + "#t"
    assert len(remember.checkpoints) > 1
    assert remember.checkpoints[0].key.sort == start
    assert [c.key.sort for c in remember.checkpoints[1:]] == [
        f"{start}.{n}" for n in range(1, len(remember.checkpoints))
    ]
    # One query of the batch's first sequence number reads them all, and no other batch's.
    assert all(c.key.sort.startswith("1".zfill(129)) for c in remember.checkpoints)
    assert not any(c.key.sort.startswith("10".zfill(129)) for c in remember.checkpoints)
    assert {rid for c in remember.checkpoints for rid in c.marks} == {"1", "2", "3", "4", "5"}


@given(st.lists(st.integers(1, 6), min_size=1, max_size=8), st.data())
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
    written = to_remember(SQS, batch, decoded, fates, {}, outcomes).checkpoints
    stored = [Checkpoint.decode(c.key, c.encode()) for c in written]  # through the table's text
    recall = without_landed(decoded, recalled(batch, stored))
    assert recall.dropped == sum(len(s) for s in landed.values())
    assert recall.mismatched == ()
    for p, item in enumerate(recall.decoded):
        assert isinstance(item, DecodedRecord)
        sent = {e.ordinal for e in item.every_event()}
        assert sent == set(range(event_counts[p])) - landed[p]
