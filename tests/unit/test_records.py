"""Decode: every payload form, the bounds, the name rules, the allow-list and the entity, and a
decoder that never raises whatever the bytes."""

from __future__ import annotations

import base64
import gzip
import json
import random
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.limits import EVENT_OVERHEAD_BYTES, MAX_EVENT_BYTES
from forwarder.model import (
    DecodedRecord,
    Destination,
    Entity,
    InvalidRecord,
    LogEvent,
    SourceRecord,
)
from forwarder.records import MAX_DECOMPRESSED_BYTES, RecordDecoder, _gunzip
from forwarder.settings import ConfigurationError, Settings
from tests.unit.strategies import (
    gzipped,
    json_values,
    subscription_document,
    texts_with_surrogates,
    utf8_size,
)

ARRIVAL_MS = 1_700_000_123_456
WITH_DEFAULT = Settings(default_log_group="/default/group", default_log_stream="fallback")
WITHOUT_DEFAULT = Settings()


def decode(payload, settings=WITHOUT_DEFAULT, position=0, **record):
    source = SourceRecord(record.pop("record_id", "id-1"), payload, ARRIVAL_MS, **record)
    return RecordDecoder(settings).decode(source, position)


def decoded(payload, settings=WITHOUT_DEFAULT, position=0) -> DecodedRecord:
    result = decode(payload, settings, position)
    assert isinstance(result, DecodedRecord), result
    return result


def invalid(payload, settings=WITHOUT_DEFAULT) -> str:
    result = decode(payload, settings)
    assert isinstance(result, InvalidRecord), result
    assert result.reason
    return result.reason


def one_event(**fields) -> str:
    document = {"logGroupName": "/app/api", "logStreamName": "web-1", "message": "hello"}
    document.update(fields)
    return json.dumps(document)


def many_events(events, **fields) -> str:
    document = {"logGroupName": "/app/api", "logStreamName": "web-1", "logEvents": events}
    document.update(fields)
    return json.dumps(document)


def assert_events_consistent(result: DecodedRecord, position: int) -> None:
    for e in result.events:
        assert e.message
        assert e.size == utf8_size(e.message) + EVENT_OVERHEAD_BYTES
        assert e.size <= MAX_EVENT_BYTES
        assert e.record == position


# --- the four payload forms -------------------------------------------------------------------


def test_one_event_object():
    result = decoded(one_event(timestamp=1_700_000_000_000, message="hello é"), position=4)
    assert result.destination == Destination("/app/api", "web-1")
    assert result.events == [LogEvent(1_700_000_000_000, "hello é", 8 + 26, 4, 0)]
    assert (result.skipped_empty, result.split_events) == (0, 0)


def test_many_events_keep_their_order_and_sizes():
    payload = many_events(
        [
            {"timestamp": 3, "message": "c"},
            {"timestamp": 1, "message": "a€"},
            {"timestamp": 2, "message": "😀"},
        ]
    )
    result = decoded(payload, position=2)
    assert result.destination == Destination("/app/api", "web-1")
    assert [(e.timestamp, e.message, e.size) for e in result.events] == [
        (3, "c", 27),
        (1, "a€", 30),
        (2, "😀", 30),
    ]
    assert_events_consistent(result, 2)


def test_subscription_data_message_as_raw_gzip_bytes():
    result = decoded(gzipped(subscription_document()), position=1)
    assert result.destination == Destination(
        "/aws/lambda/app", "2024/01/01/[$LATEST]0123456789abcdef"
    )
    assert [(e.timestamp, e.message) for e in result.events] == [
        (1_700_000_000_000, "first"),
        (1_700_000_000_500, "second é"),
    ]
    assert_events_consistent(result, 1)


def test_subscription_data_message_as_base64_text_in_an_sqs_body():
    body = base64.b64encode(gzipped(subscription_document())).decode("ascii")
    assert body.startswith("H4sI")
    assert decoded(body) == decoded(gzipped(subscription_document()))


def test_gzip_of_a_plain_event_object_is_decoded_like_the_object():
    assert decoded(gzip.compress(one_event().encode())) == decoded(one_event())


def test_multi_member_gzip_is_read_whole():
    text = one_event(message="part one, part two")
    data = gzip.compress(text[:20].encode()) + gzip.compress(text[20:].encode())
    assert decoded(data) == decoded(text)


def test_many_empty_gzip_members_and_members_across_slices_are_read_whole():
    """Members that end inside a slice, span many slices, or hold nothing: all read, in order."""
    text = one_event(message="x" * 50_000)
    incompressible = random.Random(3).randbytes(5000).hex()  # a member of many input slices
    data = (
        gzip.compress(b"") * 50_000
        + gzip.compress(text[:10].encode())
        + gzip.compress(b"")
        + gzip.compress(text[10:].encode())
    )
    assert decoded(data) == decoded(text)
    noisy = gzip.compress(incompressible.encode()) + gzip.compress(b"")
    limit = MAX_DECOMPRESSED_BYTES
    assert _gunzip(noisy, limit, limit) == incompressible.encode()


def test_subscription_control_message_has_no_events():
    document = subscription_document(
        message_type="CONTROL_MESSAGE",
        log_group="",
        log_stream="",
        events=[{"id": "", "timestamp": 1, "message": "CWL CONTROL MESSAGE: Checking health"}],
    )
    result = decoded(gzipped(document))
    assert result.events == []


def test_unknown_subscription_message_type_is_invalid():
    reason = invalid(gzipped(subscription_document(message_type="SOMETHING_ELSE")))
    assert "SOMETHING_ELSE" in reason


@pytest.mark.parametrize(
    "text",
    [
        "plain log line",
        "  leading and trailing spaces  ",
        '{"level": "info", "msg": "structured, but no log event keys"}',
        "[1, 2, 3]",
        "{not json",
        "H4sI but not base64 !",
        "✓ unicode line",
    ],
)
def test_raw_text_goes_to_the_default_destination(text):
    result = decoded(text, WITH_DEFAULT, position=5)
    assert result.destination == Destination("/default/group", "fallback")
    assert [(e.timestamp, e.message) for e in result.events] == [(ARRIVAL_MS, text)]
    assert_events_consistent(result, 5)


def test_a_leading_byte_order_mark_is_not_part_of_the_payload():
    assert decoded("\ufeff" + one_event(), WITH_DEFAULT) == decoded(one_event(), WITH_DEFAULT)
    from_bytes = decoded(("\ufeff" + one_event()).encode(), WITH_DEFAULT)
    assert from_bytes.destination == Destination("/app/api", "web-1")
    raw = decoded("\ufeffplain line", WITH_DEFAULT)
    assert [e.message for e in raw.events] == ["plain line"]


@pytest.mark.parametrize(
    "text",
    [
        '{"logGroupName": "/app/x", "logStreamName": "s", "message": "m",}',  # trailing comma
        '{"logGroupName": "/app/x", "logStreamName": "s", "message": "a"}'
        '{"logGroupName": "/app/x", "logStreamName": "s", "message": "b"}',  # two on one line
        '{"logGroupName": "/app/x", "logStreamName": "s", "message": "unterminated',
    ],
)
def test_text_that_names_a_destination_but_does_not_parse_is_invalid_not_rerouted(text):
    reason = invalid(text, WITH_DEFAULT)
    assert reason.startswith("payload names a destination but is not one JSON object")
    assert "line " in reason


# --- newline-delimited JSON ---------------------------------------------------------------


def test_newline_delimited_json_is_many_events_of_one_record():
    text = "\n".join(
        [
            one_event(message="a", timestamp=1),
            many_events([{"timestamp": 2, "message": "b"}, {"timestamp": 3, "message": "c"}]),
            one_event(message="d", timestamp=4),
        ]
    )
    result = decoded(text, position=3)
    assert result.destination == Destination("/app/api", "web-1")
    assert [(e.timestamp, e.message) for e in result.events] == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
        (4, "d"),
    ]
    assert result.elsewhere == ()
    assert_events_consistent(result, 3)


def test_newline_delimited_json_may_name_several_destinations():
    text = "\n".join(
        [
            one_event(message="a", logStreamName="s1"),
            one_event(message="b", logStreamName="s2"),
            one_event(message="c", logStreamName="s1"),
            json.dumps({"level": "info", "msg": "no destination"}),  # raw: the default one
        ]
    )
    result = decoded(text, WITH_DEFAULT)
    parts = [(d.log_stream, [e.message for e in events]) for d, events in result.parts()]
    assert parts == [
        ("s1", ["a", "c"]),
        ("s2", ["b"]),
        ("fallback", ['{"level": "info", "msg": "no destination"}']),
    ]
    assert [e.message for e in result.every_event()] == ["a", "c", "b", parts[2][1][0]]


def test_json_lines_without_destination_keys_are_one_raw_event_each():
    lines = [json.dumps({"level": "info", "n": n}) for n in range(3)]
    result = decoded("\r\n".join(lines) + "\r\n\n", WITH_DEFAULT)  # CRLF, blank lines
    assert [e.message for e in result.events] == lines
    assert result.destination == Destination("/default/group", "fallback")
    assert "has no destination" in invalid("\n".join(lines))


def test_one_object_over_several_lines_is_one_document():
    pretty = json.dumps(json.loads(one_event(message="pretty")), indent=2)
    assert [e.message for e in decoded(pretty).events] == ["pretty"]


def test_text_lines_that_are_not_all_objects_are_one_raw_event():
    text = json.dumps({"level": "info"}) + "\nplain text line"
    assert [e.message for e in decoded(text, WITH_DEFAULT).events] == [text]


def test_a_bad_line_of_newline_delimited_json_makes_the_record_invalid_naming_it():
    shape = "\n".join([one_event(message="a"), one_event(message=None)])
    assert invalid(shape) == "line 2 of newline-delimited JSON: message is missing"
    syntax = "\n".join([one_event(message="a"), one_event(message="b")[:-1] + ",}"])
    reason = invalid(syntax, WITH_DEFAULT)
    assert reason.startswith("payload names a destination but is not one JSON object, nor one")
    assert "(line 2: " in reason


def test_raw_bytes_are_read_as_utf8_text():
    result = decoded("ligne brute é".encode(), WITH_DEFAULT)
    assert [e.message for e in result.events] == ["ligne brute é"]


def test_raw_text_without_a_default_destination_is_invalid():
    reason = invalid("plain log line")
    assert "DEFAULT_LOG_GROUP" in reason


# --- subscription renaming --------------------------------------------------------------------


def test_subscription_renaming_templates():
    renaming = Settings(
        subscription_log_group="/replicated/{owner}{logGroup}",
        subscription_log_stream="{logStream}-from-{owner}",
    )
    document = subscription_document(
        log_group="/aws/lambda/app", log_stream="stream-7", owner="123456789012"
    )
    result = decoded(gzipped(document), renaming)
    assert result.destination == Destination(
        "/replicated/123456789012/aws/lambda/app", "stream-7-from-123456789012"
    )


def test_subscription_renaming_to_an_invalid_name_is_invalid():
    renaming = Settings(subscription_log_group="/replicated/{owner}/{logGroup}")
    reason = invalid(gzipped(subscription_document(owner="not:valid")), renaming)
    assert "log group name" in reason


def test_subscription_renaming_respects_the_allow_list():
    renaming = Settings(
        subscription_log_group="/replicated{logGroup}", allowed_log_groups=("/replicated/*",)
    )
    assert decoded(gzipped(subscription_document()), renaming).events
    plain = Settings(allowed_log_groups=("/replicated/*",))
    assert "ALLOWED_LOG_GROUPS" in invalid(gzipped(subscription_document()), plain)


@pytest.mark.parametrize(
    "template",
    ["{logGroup!x}", "{logGroup:d}", "{owner:%}", "/x{logStream!z}"],
)
def test_a_subscription_template_from_env_never_makes_decode_raise(template):
    """Either Settings refuses the template at start, or decode copes with it per record."""
    try:
        renaming = Settings.from_env({"SUBSCRIPTION_LOG_GROUP": template})
    except ConfigurationError:
        return
    result = decode(gzipped(subscription_document()), renaming)
    assert isinstance(result, DecodedRecord | InvalidRecord)


# --- timestamps and messages ------------------------------------------------------------------


def test_missing_timestamp_takes_the_arrival_time():
    assert [e.timestamp for e in decoded(one_event()).events] == [ARRIVAL_MS]
    result = decoded(many_events([{"message": "a"}, {"timestamp": 5, "message": "b"}]))
    assert [e.timestamp for e in result.events] == [ARRIVAL_MS, 5]


def test_null_timestamp_takes_the_arrival_time():
    assert [e.timestamp for e in decoded(one_event(timestamp=None)).events] == [ARRIVAL_MS]


def test_float_timestamp_is_accepted_as_milliseconds():
    assert [e.timestamp for e in decoded(one_event(timestamp=1_700_000_000_000.0)).events] == [
        1_700_000_000_000
    ]


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"a": [1, 2], "b": "é", "c": None}, '{"a":[1,2],"b":"é","c":null}'),
        ([1, "two", {"three": 3}], '[1,"two",{"three":3}]'),
        ({}, "{}"),
        (42, "42"),
        (True, "true"),
    ],
)
def test_structured_message_becomes_compact_json_text(message, text):
    result = decoded(one_event(message=message))
    assert [e.message for e in result.events] == [text]
    assert json.loads(result.events[0].message) == message
    assert_events_consistent(result, 0)


def test_empty_messages_are_skipped_and_counted():
    payload = many_events(
        [{"timestamp": 1, "message": ""}, {"timestamp": 2, "message": "x"}, {"message": ""}]
    )
    result = decoded(payload)
    assert [e.message for e in result.events] == ["x"]
    assert result.skipped_empty == 2


def test_only_empty_messages_leave_a_record_with_nothing_to_send():
    result = decoded(one_event(message=""))
    assert result.events == []
    assert result.skipped_empty == 1
    assert decoded("", WITH_DEFAULT).events == []


def test_missing_message_is_invalid():
    reason = invalid(json.dumps({"logGroupName": "/g", "logStreamName": "s", "timestamp": 1}))
    assert "message" in reason


def test_empty_log_events_list_is_a_record_with_nothing_to_send():
    result = decoded(many_events([]))
    assert result.events == []


# --- bytes that are not what they claim -------------------------------------------------------


@pytest.mark.parametrize("data", [b"\xff\xfe\xfd", b"ok then \x80", "é".encode("latin-1")])
def test_invalid_utf8_bytes_are_invalid_with_a_clear_reason(data):
    reason = invalid(data, WITH_DEFAULT)
    assert "UTF-8" in reason


def _zeros_bomb(total: int, chunk: int = 1 << 20) -> bytes:
    """gzip of ``total`` zero bytes, compressed chunk by chunk (never holds ``total`` bytes)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(chunk)
    parts = [compressor.compress(zeros) for _ in range(total // chunk)]
    parts.append(compressor.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _zeros_bomb(100 * 1024 * 1024)


@pytest.mark.parametrize("form", ["bytes", "base64"])
def test_gzip_bomb_is_invalid_without_inflating_it_all(bomb, form):
    assert len(bomb) < 1024 * 1024
    payload = bomb if form == "bytes" else base64.b64encode(bomb).decode("ascii")
    tracemalloc.start()
    try:
        result = decode(payload, WITH_DEFAULT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(result, InvalidRecord)
    assert str(MAX_DECOMPRESSED_BYTES) in result.reason
    # the bound, a copy of it and the input at most: far below the 100 MB the bomb holds
    assert peak < 3 * MAX_DECOMPRESSED_BYTES + 4 * len(payload)


def test_gzip_just_at_the_bound_is_accepted_and_one_byte_more_is_not():
    at_bound = gzip.compress(b"a" * MAX_DECOMPRESSED_BYTES, compresslevel=1)
    result = decoded(at_bound, WITH_DEFAULT)
    assert sum(utf8_size(e.message) for e in result.events) == MAX_DECOMPRESSED_BYTES
    beyond = gzip.compress(b"a" * (MAX_DECOMPRESSED_BYTES + 1), compresslevel=1)
    assert str(MAX_DECOMPRESSED_BYTES) in invalid(beyond, WITH_DEFAULT)


def test_gzip_bomb_spread_over_several_members_is_invalid():
    member = _zeros_bomb(6 * 1024 * 1024)
    reason = invalid(member * 3, WITH_DEFAULT)
    assert str(MAX_DECOMPRESSED_BYTES) in reason


def test_truncated_gzip_is_invalid():
    data = gzipped(subscription_document())
    for cut in (3, 10, len(data) // 2, len(data) - 1):
        reason = invalid(data[:cut], WITH_DEFAULT)
        assert "gzip" in reason


def test_corrupt_gzip_is_invalid():
    data = bytearray(gzipped(subscription_document()))
    data[len(data) // 2] ^= 0xFF
    assert "gzip" in invalid(bytes(data), WITH_DEFAULT)
    tail = bytearray(gzipped(subscription_document()))
    tail[-6] ^= 0x01  # the CRC
    assert "gzip" in invalid(bytes(tail), WITH_DEFAULT)


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 100_000,
        "{" * 100_000,
        '{"logGroupName": "/g", "logStreamName": "s", "message": ' + "[" * 100_000,
        '{"logGroupName": "/g", "logStreamName": "s", "message": '
        + "[" * 100_000
        + "]" * 100_000
        + "}",
        '{"logGroupName": "/g", "logStreamName": "s", "message": "x", "timestamp": '
        + "9" * 5000
        + "}",
        '{"logGroupName": "/g", "logStreamName": "s", "message": ' + "9" * 5000 + "}",
        '{"logGroupName": "/g", "logStreamName": "s", "message": 1e999}',
        '{"logGroupName": "/g", "logStreamName": "s", "message": "x", "timestamp": 1e999}',
        '{"logGroupName": "/g", "logStreamName": "s", "message": "x", "timestamp": NaN}',
    ],
)
@pytest.mark.parametrize("settings", [WITH_DEFAULT, WITHOUT_DEFAULT], ids=["default", "none"])
def test_deep_nesting_and_huge_numbers_do_not_raise(payload, settings):
    result = decode(payload, settings)
    assert isinstance(result, DecodedRecord | InvalidRecord)
    if isinstance(result, DecodedRecord):
        assert_events_consistent(result, 0)


@pytest.mark.parametrize(
    "timestamp", [10**30, -1, 253_402_300_800_000, float("inf"), 2**63], ids=str
)
def test_timestamps_outside_the_calendar_are_invalid(timestamp):
    text = one_event().replace('"hello"', f'"hello", "timestamp": {json.dumps(timestamp)}')
    reason = invalid(text)
    assert "timestamp" in reason


def test_lone_surrogate_in_a_message_does_not_make_decode_raise():
    """JSON allows "\\ud83d" (half of an emoji, e.g. from a string cut in two). It cannot be
    encoded to UTF-8, so it can never be sent: decode must say so, or repair it, not raise."""
    for message in ('"\\ud83d"', '"ok \\ud83d then"', '{"a": "\\udc00"}'):
        text = '{"logGroupName": "/g", "logStreamName": "s", "message": ' + message + "}"
        result = decode(text)
        assert isinstance(result, DecodedRecord | InvalidRecord)
        if isinstance(result, DecodedRecord):
            assert_events_consistent(result, 0)


def test_lone_surrogate_in_a_stream_name_is_invalid():
    """A stream name that cannot be encoded to UTF-8 can never be sent; accepting it makes the
    record fail as retryable on every attempt instead of once as invalid."""
    text = '{"logGroupName": "/g", "logStreamName": "web-\\ud83d", "message": "x"}'
    reason = invalid(text)
    assert "log stream name" in reason


# --- wrong types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "mentions"),
    [
        (one_event(timestamp="1700000000000"), "timestamp"),
        (one_event(timestamp=True), "timestamp"),
        (one_event(timestamp=[1]), "timestamp"),
        (one_event(timestamp={"ms": 1}), "timestamp"),
        (many_events("not a list"), "logEvents"),
        (many_events({"timestamp": 1, "message": "x"}), "logEvents"),
        (many_events([{"timestamp": 1, "message": "x"}, "bare string"]), "logEvents[1]"),
        (many_events([{"timestamp": "1", "message": "x"}]), "logEvents[0].timestamp"),
        (one_event(logGroupName=5), "logGroupName"),
        (one_event(logGroupName=None), "logGroupName"),
        (one_event(logStreamName=["s"]), "logStreamName"),
        (json.dumps({"logStreamName": "s", "message": "x"}), "logGroupName"),
        (json.dumps({"logEvents": [{"timestamp": 1, "message": "x"}]}), "logGroupName"),
    ],
)
def test_wrong_types_are_invalid(payload, mentions):
    assert mentions in invalid(payload, WITH_DEFAULT)


def test_subscription_with_wrong_types_is_invalid():
    assert "logEvents" in invalid(gzipped(subscription_document(events="nope")))
    bad_group = subscription_document()
    bad_group["logGroup"] = 42
    assert "logGroup" in invalid(gzipped(bad_group))
    no_time = subscription_document(events=[{"id": "1", "message": "no timestamp"}])
    assert "timestamp" in invalid(gzipped(no_time))


# --- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "stream", "mentions"),
    [
        ("/app:api", "web-1", "log group name"),
        ("/app api", "web-1", "log group name"),
        ("/app/é", "web-1", "log group name"),
        ("", "web-1", "log group name"),
        ("/" + "a" * 512, "web-1", "log group name"),
        ("/app/api", "web:1", "log stream name"),
        ("/app/api", "web*", "log stream name"),
        ("/app/api", "", "log stream name"),
        ("/app/api", "s" * 513, "log stream name"),
    ],
)
def test_invalid_names_are_invalid(group, stream, mentions):
    assert mentions in invalid(one_event(logGroupName=group, logStreamName=stream))


def test_names_at_512_characters_and_with_every_allowed_character_are_valid():
    group = ("/._-#aZ09" * 60)[:512]
    stream = ("[$LATEST] é/ 😀" * 60)[:512]
    result = decoded(one_event(logGroupName=group, logStreamName=stream))
    assert result.destination == Destination(group, stream)


# --- the allow-list -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "group", "allowed"),
    [
        ("/app/*", "/app/x", True),
        ("/app/*", "/app/x/y", True),
        ("/app/*", "/other", False),
        ("/app/*", "/app", False),
        ("/app/*", "/evil/app/x", False),
        ("/app/*", "/app2/x", False),
        ("/app/*", "/APP/x", False),
        ("/app/*, /ops/??", "/ops/db", True),
        ("/app/*, /ops/??", "/ops/dbx", False),
        ("/exact", "/exact", True),
        ("/exact", "/exact/more", False),
        ("/exact", "/exac", False),
        ("*", "/anything/at/all", True),
    ],
)
def test_allowed_log_groups_globs(patterns, group, allowed):
    settings = Settings.from_env({"ALLOWED_LOG_GROUPS": patterns})
    result = decode(one_event(logGroupName=group), settings)
    if allowed:
        assert isinstance(result, DecodedRecord)
        assert result.destination.log_group == group
    else:
        assert isinstance(result, InvalidRecord)
        assert "ALLOWED_LOG_GROUPS" in result.reason
        assert group in result.reason


# --- the entity ---------------------------------------------------------------------------


def with_entity(entity, **fields) -> str:
    return one_event(entity=entity, **fields)


@pytest.mark.parametrize(
    "keys",
    [
        {"Type": "Service", "Name": "api"},
        {"Type": "Service", "Name": "api", "Environment": "prod"},
        {"Type": "Resource", "ResourceType": "AWS::S3::Bucket", "Identifier": "b", "Name": "n"},
    ],
)
def test_valid_entity_becomes_part_of_the_destination(keys):
    attributes = {f"attr{i}": f"value{i}" for i in range(10)}
    result = decoded(with_entity({"keyAttributes": keys, "attributes": attributes}))
    entity = result.destination.entity
    assert entity is not None
    assert entity.to_api() == {"keyAttributes": keys, "attributes": attributes}


def test_entity_without_attributes():
    result = decoded(with_entity({"keyAttributes": {"Type": "Service", "Name": "api"}}))
    assert result.destination.entity.to_api() == {
        "keyAttributes": {"Type": "Service", "Name": "api"}
    }


@pytest.mark.parametrize(
    ("entity", "mentions"),
    [
        ({"keyAttributes": {"Type": "Service"}}, "keyAttributes"),
        ({"keyAttributes": {}}, "keyAttributes"),
        (
            {
                "keyAttributes": {
                    "Type": "t",
                    "ResourceType": "r",
                    "Identifier": "i",
                    "Name": "n",
                    "Environment": "e",
                }
            },
            "keyAttributes",
        ),
        ({"keyAttributes": {"Type": "Service", "Colour": "blue"}}, "Colour"),
        (
            {
                "keyAttributes": {"Type": "Service", "Name": "api"},
                "attributes": {f"a{i}": "v" for i in range(11)},
            },
            "attributes",
        ),
        ({"keyAttributes": {"Type": "Service", "Name": 7}}, "Name"),
        ({"keyAttributes": {"Type": "Service", "Name": None}}, "Name"),
        ({"keyAttributes": {"Type": "Service", "Name": "api"}, "attributes": {"k": 1}}, "k"),
        ({"keyAttributes": {"Type": "Service", "Name": ""}}, "Name"),
        ({"keyAttributes": {"Type": "Service", "Name": "x" * 513}}, "Name"),
        ({"keyAttributes": ["Type", "Service"]}, "keyAttributes"),
        ({"attributes": {"k": "v"}}, "keyAttributes"),
        ({"keyAttributes": {"Type": "S", "Name": "a"}, "extra": {}}, "entity"),
        ("Service", "entity"),
    ],
)
def test_invalid_entity_is_invalid_with_a_reason(entity, mentions):
    reason = invalid(with_entity(entity))
    assert "entity" in reason
    assert mentions in reason


def test_entity_distinguishes_destinations():
    keys_a = {"keyAttributes": {"Type": "Service", "Name": "a"}}
    keys_b = {"keyAttributes": {"Type": "Service", "Name": "b"}}
    plain = decoded(one_event()).destination
    first = decoded(with_entity(keys_a)).destination
    same = decoded(with_entity({"keyAttributes": {"Name": "a", "Type": "Service"}})).destination
    other = decoded(with_entity(keys_b)).destination
    assert (plain.log_group, plain.log_stream) == (first.log_group, first.log_stream)
    assert len({plain, first, other}) == 3
    assert first == same, "the order of the keys does not make another destination"
    assert hash(first) == hash(same)
    assert first.entity == Entity((("Name", "a"), ("Type", "Service")))


def test_entity_on_many_events():
    payload = many_events(
        [{"timestamp": 1, "message": "x"}],
        entity={"keyAttributes": {"Type": "Service", "Name": "api"}},
    )
    assert decoded(payload).destination.entity is not None


# --- the envelope -----------------------------------------------------------------------------


def test_envelope_error_makes_the_record_invalid_with_that_reason():
    result = decode(one_event(), WITH_DEFAULT, envelope_error="Kinesis data is not valid base64")
    assert result == InvalidRecord("Kinesis data is not valid base64")


# --- never raises -----------------------------------------------------------------------------

ANY_SETTINGS = st.sampled_from(
    [
        WITH_DEFAULT,
        WITHOUT_DEFAULT,
        Settings(allowed_log_groups=("/app/*",), subscription_log_group="/r/{owner}{logGroup}"),
    ]
)


def assert_decodes_without_raising(payload, settings, position):
    result = decode(payload, settings, position)
    assert isinstance(result, DecodedRecord | InvalidRecord)
    if isinstance(result, DecodedRecord):
        assert_events_consistent(result, position)
        if result.events:
            assert result.destination is not None
    else:
        assert isinstance(result.reason, str)
        assert result.reason


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)), ANY_SETTINGS, st.integers(0, 9))
def test_decode_never_raises_on_arbitrary_bytes_or_text(payload, settings, position):
    assert_decodes_without_raising(payload, settings, position)


def mostly(usual: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """``usual`` three times out of four, so that decoding goes deep often."""
    return st.integers(0, 3).flatmap(lambda pick: usual if pick else odd)


group_names = mostly(st.sampled_from(["/app/api", "/app/x/y", "/other", "bad name"]), json_values)
stream_names = mostly(st.sampled_from(["web-1", "[$LATEST]"]), json_values)
messages = st.one_of(st.text(max_size=30), texts_with_surrogates, json_values)
timestamps = mostly(st.integers(0, 2**45), st.one_of(st.integers(-(2**70), 2**70), json_values))
event_objects = st.fixed_dictionaries(
    {"message": messages, "timestamp": timestamps}, optional={"id": json_values}
)
entities = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"keyAttributes": st.dictionaries(st.sampled_from(["Type", "Name", "X"]), json_values)},
        optional={"attributes": json_values},
    ),
)
one_event_documents = st.fixed_dictionaries(
    {"logGroupName": group_names, "logStreamName": stream_names, "message": messages},
    optional={"timestamp": timestamps, "entity": entities},
)
many_event_documents = st.fixed_dictionaries(
    {
        "logGroupName": group_names,
        "logStreamName": stream_names,
        "logEvents": mostly(st.lists(event_objects, max_size=4), json_values),
    },
    optional={"entity": entities},
)
subscription_documents = st.fixed_dictionaries(
    {
        "messageType": mostly(st.sampled_from(["DATA_MESSAGE", "CONTROL_MESSAGE"]), json_values),
        "logGroup": mostly(st.just("/app/x"), json_values),
        "logStream": stream_names,
        "owner": mostly(st.just("123456789012"), json_values),
        "logEvents": mostly(st.lists(event_objects, max_size=4), json_values),
    }
)
any_documents = st.dictionaries(
    st.sampled_from(["logGroupName", "logStreamName", "logEvents", "messageType", "message", "x"]),
    json_values,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        one_event_documents,
        many_event_documents,
        subscription_documents,
        any_documents,
        json_values,
    ),
    st.sampled_from(["text", "bytes", "gzip", "base64-gzip"]),
    ANY_SETTINGS,
)
def test_decode_never_raises_on_arbitrary_json(document, form, settings):
    text = json.dumps(document)
    payload = {
        "text": text,
        "bytes": text.encode(),
        "gzip": gzip.compress(text.encode()),
        "base64-gzip": base64.b64encode(gzip.compress(text.encode())).decode(),
    }[form]
    assert_decodes_without_raising(payload, settings, 3)
