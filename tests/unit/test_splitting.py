"""Oversize messages: cut on character boundaries into events that each fit the event limit."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.limits import EVENT_OVERHEAD_BYTES, MAX_EVENT_BYTES, MAX_MESSAGE_BYTES
from forwarder.model import DecodedRecord, SourceRecord
from forwarder.records import RecordDecoder, split_message
from forwarder.settings import Settings
from tests.unit.strategies import WIDE_CHARS, utf8_size

DECODER = RecordDecoder(Settings(default_log_group="/default", default_log_stream="fallback"))

#: Characters of every UTF-8 width, with the widest ones well represented.
MIXED_CHARS = st.one_of(
    st.sampled_from([*WIDE_CHARS.values(), "\x00", "\u07ff", "\u0800", "\uffff", "\U0010ffff"]),
    st.characters(exclude_categories=["Cs"]),
)


def assert_parts(message: str, parts: list[tuple[str, int]], limit: int) -> None:
    assert "".join(part for part, _ in parts) == message
    for index, (part, size) in enumerate(parts):
        assert part, "no empty part"
        assert size == utf8_size(part)
        assert size <= limit
        if index + 1 < len(parts):
            # each cut is as late as the limit allows: the next character would not have fit
            following = parts[index + 1][0][0]
            assert size + utf8_size(following) > limit


@settings(max_examples=300, deadline=None)
@given(message=st.text(MIXED_CHARS, min_size=1, max_size=200), limit=st.integers(4, 64))
def test_split_message_property(message, limit):
    parts = split_message(message, limit)
    assert_parts(message, parts, limit)
    if utf8_size(message) <= limit:
        assert parts == [(message, utf8_size(message))]
    else:
        assert len(parts) >= 2


def test_split_message_at_the_limit_is_one_part():
    assert split_message("a" * 10, 10) == [("a" * 10, 10)]
    assert split_message("😀😀", 8) == [("😀😀", 8)]
    assert split_message("😀😀", 7) == [("😀", 4), ("😀", 4)]


def test_split_message_never_cuts_a_character():
    assert split_message("aé€😀", 4) == [("aé", 3), ("€", 3), ("😀", 4)]


def decode_single(message: str, timestamp: int = 1_700_000_000_000) -> DecodedRecord:
    payload = json.dumps(
        {"logGroupName": "/app", "logStreamName": "s", "timestamp": timestamp, "message": message}
    )
    result = DECODER.decode(SourceRecord("id", payload, 0), 6)
    assert isinstance(result, DecodedRecord), result
    return result


def assert_split_events(result: DecodedRecord, message: str, timestamp: int) -> None:
    assert "".join(e.message for e in result.events) == message
    assert result.split_events == len(result.events) - 1
    for e in result.events:
        assert e.timestamp == timestamp
        assert e.record == 6
        assert e.size == utf8_size(e.message) + EVENT_OVERHEAD_BYTES
        assert e.size <= MAX_EVENT_BYTES


def test_real_size_mixed_message_is_split_into_events_that_fit():
    unit = "log line " + "é" * 7 + "😀" * 3 + " end\n"
    message = unit * (2_500_000 // utf8_size(unit) + 1)
    assert utf8_size(message) > 2_500_000
    result = decode_single(message, 1_700_000_000_042)
    assert_split_events(result, message, 1_700_000_000_042)
    assert len(result.events) == 3


def test_message_exactly_at_the_event_limit_is_not_split():
    for message in ("a" * MAX_MESSAGE_BYTES, "é" * (MAX_MESSAGE_BYTES // 2)):
        result = decode_single(message)
        assert [e.size for e in result.events] == [MAX_EVENT_BYTES]
        assert result.split_events == 0


def test_message_one_byte_over_the_event_limit_is_split_in_two():
    message = "a" * (MAX_MESSAGE_BYTES + 1)
    result = decode_single(message, 5)
    assert_split_events(result, message, 5)
    assert [e.size for e in result.events] == [MAX_EVENT_BYTES, 1 + EVENT_OVERHEAD_BYTES]


def test_wide_character_straddling_the_limit_moves_to_the_next_event():
    message = "a" * (MAX_MESSAGE_BYTES - 2) + "😀" + "b"
    result = decode_single(message, 5)
    assert_split_events(result, message, 5)
    assert [e.message for e in result.events] == ["a" * (MAX_MESSAGE_BYTES - 2), "😀b"]


def test_oversize_raw_text_and_many_events_are_split_too():
    big = "€" * (MAX_MESSAGE_BYTES // 3 + 10)
    raw = DECODER.decode(SourceRecord("id", big, 77), 6)
    assert_split_events(raw, big, 77)
    payload = json.dumps(
        {
            "logGroupName": "/app",
            "logStreamName": "s",
            "logEvents": [{"timestamp": 1, "message": "small"}, {"timestamp": 2, "message": big}],
        }
    )
    many = DECODER.decode(SourceRecord("id", payload, 0), 6)
    assert [e.timestamp for e in many.events] == [1, 2, 2]
    assert many.split_events == 1
    assert "".join(e.message for e in many.events[1:]) == big
