"""KPL aggregated records: the reader against the format's reference aggregator
(``aws-kinesis-agg``), every way an aggregate can be corrupt, and the decoder on aggregates of
user records in every payload form."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.aggregates import MAGIC, CorruptAggregate, UserRecord, is_aggregate, user_records
from forwarder.model import DecodedRecord, Destination, InvalidRecord, SourceRecord
from forwarder.records import DecompressionBudget, RecordDecoder
from forwarder.settings import Settings
from local.aggregation import aggregate
from tests.unit.strategies import subscription_document

ARRIVAL_MS = 1_700_000_123_456
DEFAULT = Settings(default_log_group="/default/group", default_log_stream="fallback")


def one_aggregate(*user_records: tuple[str, bytes]) -> bytes:
    (record,) = aggregate(user_records)
    return record[1]


def framed(message: bytes) -> bytes:
    """``message`` as an aggregate: the magic, the message and its digest."""
    return MAGIC + message + hashlib.md5(message).digest()


def decode(payload: bytes, settings: Settings = DEFAULT, position: int = 0):
    return RecordDecoder(settings).decode(SourceRecord("49-seq", payload, ARRIVAL_MS), position)


# --- the reader against the reference aggregator -----------------------------------------------

user_record_lists = st.lists(
    st.tuples(st.text(min_size=1, max_size=20), st.binary(max_size=300)), min_size=1, max_size=40
)


@settings(max_examples=150, deadline=None)
@given(user_record_lists)
def test_the_reader_gives_back_what_the_reference_aggregator_packed(records):
    packed = aggregate(records)
    read = [user for _, data in packed for user in user_records(data)]
    assert [(u.partition_key, u.data) for u in read] == records
    # sub-sequence numbers count within each aggregate, from 0, as Lambda and the KCL number them
    counts = [len(user_records(data)) for _, data in packed]
    assert sum(counts) == len(records)
    assert [u.sub_sequence for _, data in packed for u in user_records(data)] == [
        i for count in counts for i in range(count)
    ]


def test_an_aggregate_near_one_mebibyte_is_read_whole():
    records = [(f"key-{i % 7}", bytes([i % 251]) * 1000) for i in range(2000)]
    packed = aggregate(records)
    assert len(packed) == 2  # the reference aggregator fills the first to its 1 MiB bound
    first = packed[0][1]
    assert 1_040_000 < len(first) <= 1024 * 1024
    read = [u for _, data in packed for u in user_records(data)]
    assert [(u.partition_key, u.data) for u in read] == records


def test_a_payload_is_an_aggregate_only_as_bytes_starting_with_the_magic():
    assert is_aggregate(one_aggregate(("k", b"x")))
    assert not is_aggregate(MAGIC.decode("latin-1"))  # SQS bodies are text
    assert not is_aggregate(b'{"message": "x"}')
    with pytest.raises(UnicodeDecodeError):
        MAGIC.decode("utf-8")  # so no text payload can be mistaken for one


# --- corrupt aggregates: each a clear reason, never a partial read ------------------------------


def test_a_changed_byte_is_caught_by_the_digest():
    data = bytearray(one_aggregate(("k", b"hello"), ("k", b"world")))
    data[len(MAGIC) + 8] ^= 0x01
    with pytest.raises(CorruptAggregate, match="MD5 digest does not match"):
        user_records(bytes(data))


def test_an_aggregate_cut_short_is_caught_by_the_digest():
    data = one_aggregate(("k", b"hello"), ("k", b"world"))
    for end in (len(data) - 1, len(data) - 16, len(MAGIC) + 20):
        with pytest.raises(CorruptAggregate):
            user_records(data[:end])


def test_too_short_for_a_digest():
    with pytest.raises(CorruptAggregate, match="too short"):
        user_records(MAGIC + b"\x00" * 15)


def test_a_truncated_message_with_a_matching_digest_is_named_truncated():
    message = one_aggregate(("k", b"hello world"))[len(MAGIC) : -16]
    with pytest.raises(CorruptAggregate, match="truncated"):
        user_records(framed(message[:-3]))


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        # partition key table "k", then a record with data but no partition_key_index
        (b"\x0a\x01k" + b"\x1a\x03" + b"\x1a\x01x", "required field partition_key_index"),
        # a record with its index but no data
        (b"\x0a\x01k" + b"\x1a\x02" + b"\x08\x00", "required field data"),
        # index 1 into a table of one key
        (b"\x0a\x01k" + b"\x1a\x05" + b"\x08\x01\x1a\x01x", "past the table of 1 partition keys"),
        # field 3 sent as a varint, not a message
        (b"\x0a\x01k" + b"\x18\x05", "user record 0 is not a message"),
        # wire type 3 (a deprecated group)
        (b"\x0b", "wire type 3"),
        # a varint of eleven bytes
        (b"\x08" + b"\xff" * 11, "past 10 bytes"),
        # field number 0
        (b"\x00\x00", "field number 0"),
        # a partition key that is not UTF-8
        (b"\x0a\x01\xff", "not UTF-8"),
    ],
)
def test_a_message_that_is_no_aggregated_record_says_why(message, reason):
    with pytest.raises(CorruptAggregate, match=reason):
        user_records(framed(message))


def test_the_partition_key_table_may_follow_the_records():
    """Protobuf fields come in any order: indexes are checked once the whole message is read."""
    message = b"\x1a\x05\x08\x01\x1a\x01y" + b"\x1a\x05\x08\x00\x1a\x01x" + b"\x0a\x01a\x0a\x01b"
    assert user_records(framed(message)) == [UserRecord(0, "b", b"y"), UserRecord(1, "a", b"x")]


def test_a_number_past_64_bits_is_refused():
    message = b"\x0a\x01k\x1a\x0e\x08" + b"\xff" * 9 + b"\x7f" + b"\x1a\x01x"
    with pytest.raises(CorruptAggregate, match="past 64 bits"):
        user_records(framed(message))


def test_unknown_fields_and_explicit_hash_keys_are_skipped():
    message = (
        b"\x0a\x01k"  # partition key table
        + b"\x12\x02eh"  # explicit hash key table
        + b"\x1a\x0c\x08\x00\x10\x00\x1a\x01x\x22\x03\x0a\x01t"  # record with ehk index and tag
        + b"\x28\x07"  # field 5, a varint: from a later version
        + b"\x31"
        + b"\x00" * 8  # field 6, fixed 64 bits
    )
    assert user_records(framed(message)) == [UserRecord(0, "k", b"x")]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_message_reads_or_is_refused_with_a_reason(message):
    outcome = read_or_reason(framed(message))  # anything else raised fails the test
    if isinstance(outcome, str):
        assert outcome
    else:
        assert all(isinstance(u.data, bytes) for u in outcome)


def read_or_reason(data: bytes) -> list[UserRecord] | str:
    try:
        return user_records(data)
    except CorruptAggregate as error:
        return str(error)


# --- decoding an aggregate -------------------------------------------------------------------


def test_user_records_in_every_payload_form_decode_in_order_numbered_across_them():
    t = 1_700_000_000_000
    forms = [
        json.dumps(
            {"logGroupName": "/app/a", "logStreamName": "s", "timestamp": t, "message": "one"}
        ),
        json.dumps(
            {
                "logGroupName": "/app/a",
                "logStreamName": "s",
                "logEvents": [
                    {"timestamp": t + 1, "message": "two"},
                    {"timestamp": t + 2, "message": "three"},
                ],
            }
        ),
        gzip.compress(json.dumps(subscription_document()).encode()),
        "raw text four",
        "\n".join(
            json.dumps(
                {"logGroupName": "/app/b", "logStreamName": "s", "timestamp": t, "message": m}
            )
            for m in ("five", "six")
        ),
    ]
    payload = one_aggregate(
        *((f"k{i}", f if isinstance(f, bytes) else f.encode()) for i, f in enumerate(forms))
    )
    result = decode(payload, position=3)
    assert isinstance(result, DecodedRecord)
    assert not result.invalid_parts
    events = sorted(result.every_event(), key=lambda e: e.ordinal)
    assert [e.ordinal for e in events] == list(range(len(events)))
    assert {e.record for e in events} == {3}
    messages = [e.message for e in events]
    subscription = [e["message"] for e in subscription_document()["logEvents"]]
    assert messages == ["one", "two", "three", *subscription, "raw text four", "five", "six"]
    destinations = [d for d, _ in result.parts()]
    assert destinations[0] == Destination("/app/a", "s")
    assert Destination("/default/group", "fallback") in destinations
    assert Destination("/app/b", "s") in destinations


def test_a_user_record_that_does_not_decode_is_set_aside_and_the_rest_is_sent():
    good = json.dumps({"logGroupName": "/app/a", "logStreamName": "s", "message": "good"})
    payload = one_aggregate(
        ("k", good.encode()), ("bad-key", b"\xff\xfe not text"), ("k", good.encode())
    )
    result = decode(payload, settings=Settings())
    assert isinstance(result, DecodedRecord)
    assert [e.message for e in result.events] == ["good", "good"]
    assert [e.ordinal for e in result.events] == [0, 1]
    (part,) = result.invalid_parts
    assert (part.sub_sequence, part.partition_key, part.data) == (
        1,
        "bad-key",
        b"\xff\xfe not text",
    )
    assert "neither UTF-8 text nor gzip" in part.reason
    assert result.invalid_reason == f"user record 1 of the KPL aggregate: {part.reason}"


def test_a_raw_text_user_record_without_a_default_destination_is_invalid_on_its_own():
    payload = one_aggregate(("k", b"just text"), ("k", b"more text"))
    result = decode(payload, settings=Settings())
    assert isinstance(result, DecodedRecord)
    assert result.events == []
    assert [p.sub_sequence for p in result.invalid_parts] == [0, 1]
    assert result.invalid_reason.endswith("(and 1 more user record)")


def test_a_corrupt_aggregate_is_an_invalid_record_with_its_reason():
    data = bytearray(one_aggregate(("k", b"hello")))
    data[-1] ^= 0xFF
    result = decode(bytes(data))
    assert isinstance(result, InvalidRecord)
    assert not result.retryable
    assert result.reason.startswith("KPL aggregated record is corrupt: its MD5 digest")


# --- the decompression bounds: an aggregate is one record ------------------------------------

MiB = 1024 * 1024


def gzipped_event(size: int) -> bytes:
    """A gzip user record that expands to about ``size`` bytes (one event of 'x's)."""
    document = {"logGroupName": "/app/a", "logStreamName": "s", "message": "x" * size}
    return gzip.compress(json.dumps(document).encode(), 9)


def decode_with(payload: bytes, budget: DecompressionBudget):
    record = SourceRecord("49-seq", payload, ARRIVAL_MS)
    return RecordDecoder(Settings()).decode(record, 0, budget)


def test_user_records_that_together_pass_one_record_s_allowance_are_invalid_not_deferred():
    """Two user records of 13 MiB each: together past the 16 MiB one record may expand to. On a
    fresh budget (a 512 MB function's 25.6 MiB) the first decodes and the second is set aside
    for good: deferring it would bring it back deferred again, forever."""
    payload = one_aggregate(("k", gzipped_event(13 * MiB)), ("k", gzipped_event(13 * MiB)))
    budget = DecompressionBudget(int(25.6 * MiB), 16 * MiB)

    result = decode_with(payload, budget)

    assert isinstance(result, DecodedRecord)
    assert len(result.events) == 14  # the first user record, split into events of 1 MB - 26
    (part,) = result.invalid_parts
    assert part.sub_sequence == 1
    assert "left of the 16777216 one record may expand to" in part.reason
    assert "share" in part.reason


def test_an_aggregate_that_fits_one_record_s_allowance_is_deferred_behind_others_then_decoded():
    payload = one_aggregate(("k", gzipped_event(6 * MiB)), ("k", gzipped_event(6 * MiB)))
    spent = DecompressionBudget(int(25.6 * MiB), 16 * MiB)
    spent.remaining = 8 * MiB  # earlier records of the batch took the rest

    deferred = decode_with(payload, spent)
    fresh = decode_with(payload, DecompressionBudget(int(25.6 * MiB), 16 * MiB))

    assert isinstance(deferred, InvalidRecord)
    assert deferred.retryable
    assert isinstance(fresh, DecodedRecord)
    assert not fresh.invalid_parts
    assert sum(len(e.message) for e in fresh.events) > 12 * 1_000_000


def test_without_a_batch_budget_an_aggregate_is_bounded_as_one_record():
    bombs = [("k", gzipped_event(10 * MiB)) for _ in range(3)]  # 30 MiB in all, 30 KB sent

    result = decode(one_aggregate(*bombs), settings=Settings())

    assert isinstance(result, DecodedRecord)
    assert [p.sub_sequence for p in result.invalid_parts] == [1, 2]
