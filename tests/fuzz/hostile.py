"""Hostile payloads: a fixed corpus of named cases and hypothesis strategies for more.

Each corpus case is one record's payload, the source that carries it (an SQS body is text; a
Kinesis record carries bytes) and what the handler must make of it when the function has a
default destination for raw text: ``FAILS`` (only this record is reported), or delivered:
``TO_RAW`` (acceptable raw text, routed to the default stream), ``TO_HOSTILE`` (to the stream it
names, perhaps split in parts) or ``SKIPPED`` (nothing to send).
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from local.aggregation import aggregate

FAILS = "fails"  # only this record is reported
TO_RAW = "raw"  # delivered: raw text, to the default stream (named "raw" in the tests)
TO_HOSTILE = "hostile"  # delivered: to the stream the payload names ("hostile")
SKIPPED = "skipped"  # delivered: nothing to send (an empty message)
DELIVERED = frozenset({TO_RAW, TO_HOSTILE, SKIPPED})
SQS = "sqs"
KINESIS = "kinesis"

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Hostile:
    name: str
    source: str  # SQS (a text body) or KINESIS (bytes; a str is the raw ``data``, bad base64)
    payload: str | bytes | None  # None: the record has no body at all (SQS envelope)
    expected: str  # FAILS, TO_RAW, TO_HOSTILE or SKIPPED
    why: str = ""


def _event(group: Any = "{group}", stream: Any = TO_HOSTILE, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"logGroupName": group, "logStreamName": stream}
    document.update(fields)
    return document


def _json(document: Any) -> str:
    return json.dumps(document, allow_nan=True)


@functools.cache
def gzip_bomb(expanded: int = 20 * 1024 * 1024) -> bytes:
    """``expanded`` zero bytes, gzip-compressed (about 1,000 times smaller)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1024 * 1024)
    out = [compressor.compress(chunk) for _ in range(expanded // len(chunk))]
    return b"".join([*out, compressor.flush()])


@functools.cache
def multi_member_bomb(members: int = 40, each: int = 1024 * 1024) -> bytes:
    """Many small gzip members, concatenated: each alone is harmless, together 40 MiB."""
    member = gzip.compress(bytes(each), 9)
    return member * members


def kpl(*user_records: bytes) -> bytes:
    """One KPL aggregate of ``user_records``, by the reference aggregator."""
    (record,) = aggregate((f"key-{i}", data) for i, data in enumerate(user_records))
    return record[1]


def kpl_framed(message: bytes) -> bytes:
    """``message`` framed as an aggregate (magic, message, its MD5) whatever it holds."""
    return KPL_MAGIC + message + hashlib.md5(message).digest()


KPL_MAGIC = b"\xf3\x89\x9a\xc2"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def corpus(group: str, now_ms: int) -> list[Hostile]:
    """The named cases, bound for ``group`` (allowed) unless they say otherwise."""

    def body(document: Any) -> str:
        return _json(document).replace("{group}", group)

    def event(**fields: Any) -> str:
        fields.setdefault("timestamp", now_ms)
        fields.setdefault("message", "hostile")
        return body(_event(**fields))

    deep = 100_000
    cases = [
        # --- not UTF-8 --------------------------------------------------------------------
        Hostile("invalid-utf8", KINESIS, b"\xff\xfe\xfd not utf-8", FAILS),
        Hostile("overlong-utf8", KINESIS, b"\xc0\xaf\xc0\xaf", FAILS),
        Hostile("utf8-encoded-surrogate", KINESIS, b"\xed\xa0\x80 half an emoji", FAILS),
        Hostile("invalid-utf8-inside-gzip", KINESIS, gzip.compress(b"\xff\xfe\xfd"), FAILS),
        Hostile(
            "json-escaped-lone-surrogate-in-message",
            SQS,
            event(message="\ud83d cut emoji"),
            FAILS,
            "valid JSON escape, not encodable to UTF-8",
        ),
        Hostile(
            "json-escaped-lone-surrogate-in-logEvents",
            SQS,
            body(_event(logEvents=[{"timestamp": now_ms, "message": "ok \udc00"}])),
            FAILS,
        ),
        Hostile("json-escaped-lone-surrogate-in-stream", SQS, event(stream="s-\ud800"), FAILS),
        Hostile(
            "json-escaped-lone-surrogate-in-entity",
            SQS,
            event(entity={"keyAttributes": {"Type": "Service", "Name": "x\udfff"}}),
            FAILS,
        ),
        # --- deep JSON --------------------------------------------------------------------
        Hostile("deep-json-array-raw", SQS, "[" * deep + "]" * deep, TO_RAW, "raw text"),
        Hostile("deep-json-object-raw", SQS, '{"a":' * deep + "1" + "}" * deep, TO_RAW),
        Hostile(
            "deep-json-in-a-log-event-object",
            SQS,
            event(message="x")[:-1] + ', "extra": ' + "[" * deep + "]" * deep + "}",
            FAILS,
            "an object naming a destination is taken at its word: too deep to read is invalid",
        ),
        Hostile(
            "deep-json-message-within-limits",
            SQS,
            event(message=json.loads("[" * 500 + "]" * 500)),
            TO_HOSTILE,
            "sent as its compact JSON text",
        ),
        # --- huge numbers -----------------------------------------------------------------
        Hostile("timestamp-1e30", SQS, event(timestamp=10**30), FAILS),
        Hostile("timestamp-2^63", SQS, event(timestamp=2**63), FAILS),
        Hostile("timestamp-negative", SQS, event(timestamp=-1), FAILS),
        Hostile(
            "timestamp-5000-digits",
            SQS,
            event().replace(str(now_ms), "9" * 5000),
            FAILS,
            "beyond Python's 4,300-digit int parsing limit: still an object naming a destination",
        ),
        Hostile("timestamp-float-overflow", SQS, event().replace(str(now_ms), "1e400"), FAILS),
        Hostile("timestamp-nan", SQS, event(timestamp=float("nan")), FAILS),
        Hostile("timestamp-infinity", SQS, event(timestamp=float("-inf")), FAILS),
        Hostile(
            "message-huge-integer",
            SQS,
            event(message=10**4000),
            TO_HOSTILE,
            "a 4,001-digit number is a message like any other",
        ),
        Hostile(
            "message-float-overflow", SQS, event(message=1.0).replace("1.0", "1e999"), TO_HOSTILE
        ),
        # --- wrong types ------------------------------------------------------------------
        Hostile("group-is-a-number", SQS, event(group=5), FAILS),
        Hostile("stream-is-null", SQS, event(stream=None), FAILS),
        Hostile("stream-is-a-list", SQS, event(stream=["a"]), FAILS),
        Hostile("logEvents-is-an-object", SQS, body(_event(logEvents={"a": 1})), FAILS),
        Hostile("logEvents-of-numbers", SQS, body(_event(logEvents=[1, 2])), FAILS),
        Hostile(
            "logEvents-one-bad-among-good",
            SQS,
            body(
                _event(
                    logEvents=[
                        {"timestamp": now_ms, "message": "fine"},
                        {"timestamp": "yesterday", "message": "bad"},
                    ]
                )
            ),
            FAILS,
            "one bad event makes the record invalid; none of it is sent",
        ),
        Hostile("message-missing", SQS, body(_event(timestamp=now_ms)), FAILS),
        Hostile("message-null", SQS, event(message=None), FAILS),
        Hostile("timestamp-is-a-string", SQS, event(timestamp="1767225600000"), FAILS),
        Hostile("timestamp-is-true", SQS, event(timestamp=True), FAILS),
        Hostile("entity-is-a-list", SQS, event(entity=[]), FAILS),
        Hostile(
            "entity-one-key-attribute", SQS, event(entity={"keyAttributes": {"Type": "x"}}), FAILS
        ),
        Hostile(
            "entity-unknown-key-attribute",
            SQS,
            event(entity={"keyAttributes": {"Type": "x", "Colour": "red"}}),
            FAILS,
        ),
        Hostile(
            "entity-value-not-string",
            SQS,
            event(entity={"keyAttributes": {"Type": "x", "Name": 7}}),
            FAILS,
        ),
        Hostile("messageType-is-a-number", SQS, body({"messageType": 7}), FAILS),
        Hostile("messageType-unknown", SQS, body({"messageType": "BOGUS_MESSAGE"}), FAILS),
        Hostile(
            "subscription-owner-not-string",
            KINESIS,
            gzip.compress(
                body(
                    {
                        "messageType": "DATA_MESSAGE",
                        "owner": 123,
                        "logGroup": "{group}",
                        "logStream": "s",
                        "logEvents": [],
                    }
                ).encode()
            ),
            FAILS,
        ),
        Hostile(
            "subscription-logEvents-not-list",
            KINESIS,
            gzip.compress(
                body(
                    {
                        "messageType": "DATA_MESSAGE",
                        "owner": "1",
                        "logGroup": "{group}",
                        "logStream": "s",
                        "logEvents": "x",
                    }
                ).encode()
            ),
            FAILS,
        ),
        Hostile("json-null", SQS, "null", TO_RAW, "raw text"),
        Hostile("json-array", SQS, "[1, 2, 3]", TO_RAW, "raw text"),
        Hostile("json-string", SQS, '"logGroupName"', TO_RAW, "raw text"),
        # --- names ------------------------------------------------------------------------
        Hostile("group-with-space", SQS, event(group="/app/a b"), FAILS),
        Hostile("group-with-colon", SQS, event(group=group + ":x"), FAILS),
        Hostile("group-with-star", SQS, event(group=group + "*"), FAILS),
        Hostile("group-with-nul", SQS, event(group=group + "\x00"), FAILS),
        Hostile("group-non-ascii", SQS, event(group=group + "é"), FAILS),
        Hostile("group-empty", SQS, event(group=""), FAILS),
        Hostile("group-too-long", SQS, event(group="/app/" + "g" * 600), FAILS),
        Hostile("group-not-allowed", SQS, event(group="/secret/audit"), FAILS),
        Hostile(
            "group-dot-dot",
            SQS,
            event(group="/app/../secret"),
            FAILS,
            "a valid name under /app/*, but there is no such group (and no path traversal)",
        ),
        Hostile("stream-with-colon", SQS, event(stream="a:b"), FAILS),
        Hostile("stream-with-star", SQS, event(stream="a*"), FAILS),
        Hostile("stream-empty", SQS, event(stream=""), FAILS),
        Hostile("stream-too-long", SQS, event(stream="s" * 513), FAILS),
        # --- KPL aggregates ------------------------------------------------------------------
        Hostile("kpl-bad-md5", KINESIS, kpl(event().encode())[:-1] + b"\x00", FAILS),
        Hostile("kpl-truncated", KINESIS, kpl(event().encode(), event().encode())[:-30], FAILS),
        Hostile("kpl-magic-only", KINESIS, KPL_MAGIC, FAILS),
        Hostile("kpl-not-a-message", KINESIS, kpl_framed(b"\x0b\x00"), FAILS),
        Hostile(
            "kpl-index-past-the-key-table",
            KINESIS,
            kpl_framed(b"\x0a\x01k\x1a\x05\x08\x07\x1a\x01x"),
            FAILS,
        ),
        Hostile(
            "kpl-one-bad-user-record",
            KINESIS,
            kpl(event().encode(), b"\xff\xfe", event(message="third").encode()),
            FAILS,
            "the good user records are sent; the record is invalid",
        ),
        Hostile("kpl-no-user-records", KINESIS, kpl_framed(b""), SKIPPED, "nothing to send"),
        Hostile(
            "kpl-gzip-bomb-inside",
            KINESIS,
            kpl(gzip_bomb()),
            FAILS,
            "a user record's gzip is bounded as a record's is",
        ),
        Hostile(
            "kpl-aggregate-inside-an-aggregate",
            KINESIS,
            kpl(kpl(event().encode())),
            FAILS,
            "aggregates are not nested: the inner one is not text",
        ),
        # --- gzip -------------------------------------------------------------------------
        Hostile("gzip-bomb-kinesis", KINESIS, gzip_bomb(), FAILS),
        Hostile("gzip-bomb-sqs-base64", SQS, b64(gzip_bomb()), FAILS),
        Hostile("gzip-multi-member-bomb", KINESIS, multi_member_bomb(), FAILS),
        Hostile("gzip-truncated", KINESIS, gzip.compress(event().encode())[:-12], FAILS),
        Hostile("gzip-corrupt", KINESIS, b"\x1f\x8b\x08\x00" + b"\x00" * 40, FAILS),
        Hostile(
            "gzip-base64-truncated-at-a-quad-sqs",
            SQS,
            b64(gzip.compress(event().encode()))[:24],
            FAILS,
            "valid base64 of a truncated gzip stream",
        ),
        Hostile(
            "gzip-base64-truncated-mid-quad-sqs",
            SQS,
            b64(gzip.compress(event().encode()))[:22],
            TO_RAW,
            "not valid base64 any more, so it is plain text that starts with H4sI",
        ),
        # --- base64 -----------------------------------------------------------------------
        Hostile("kinesis-base64-truncated", KINESIS, "eyJsb2dHcm91cE5hbWUiOiA", FAILS),
        Hostile("kinesis-base64-garbage", KINESIS, "%%%%", FAILS, "not base64 at all"),
        Hostile(
            "kinesis-base64-with-stray-characters",
            KINESIS,
            "eyJ*hIjog*MX0=",
            FAILS,
            "base64 of a JSON text with stray characters in it",
        ),
        # --- size -------------------------------------------------------------------------
        Hostile(
            "5MB-raw-body",
            SQS,
            "x" * (5 * 1024 * 1024),
            TO_RAW,
            "raw text, split into 5 events of at most 1 MB",
        ),
        Hostile(
            "5MB-multibyte-message",
            KINESIS,
            event(message="é€😀" * (5 * 1024 * 1024 // 9)).encode(),
            TO_HOSTILE,
            "split on character boundaries",
        ),
        # --- newline-delimited JSON -------------------------------------------------------
        Hostile(
            "ndjson-10000-lines",
            SQS,
            "\n".join(event(message=f"line {n}") for n in range(10_000)),
            TO_HOSTILE,
            "one record of 10,000 events",
        ),
        Hostile(
            "ndjson-one-line-without-message",
            SQS,
            event(message="first") + "\n" + body(_event(timestamp=now_ms)),
            FAILS,
            "a bad line makes the whole record invalid: nothing of it is sent",
        ),
        Hostile(
            "ndjson-last-line-cut",
            KINESIS,
            (event(message="first") + "\n" + event(message="second")[:-9]).encode(),
            FAILS,
        ),
        Hostile(
            "ndjson-a-line-to-a-group-not-allowed",
            SQS,
            event(message="first") + "\n" + event(group="/secret/x"),
            FAILS,
        ),
        # --- odd but harmless -------------------------------------------------------------
        Hostile("empty-body", SQS, "", SKIPPED, "an empty message is skipped"),
        Hostile("whitespace-body", SQS, " \n\t ", TO_RAW, "raw text"),
        Hostile("control-characters", SQS, "\x00\x01\x1b[31m\x7f", TO_RAW, "raw text"),
        Hostile("missing-body", SQS, None, FAILS, "an SQS record without a body"),
        # --- time -------------------------------------------------------------------------
        Hostile("timestamp-15-days-old", SQS, event(timestamp=now_ms - 15 * DAY_MS), FAILS),
        Hostile("timestamp-3-hours-ahead", SQS, event(timestamp=now_ms + DAY_MS // 8), FAILS),
        Hostile("timestamp-year-9999", SQS, event(timestamp=253_402_300_799_999), FAILS),
    ]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "corpus names are unique"
    return cases


# --- hypothesis strategies -------------------------------------------------------------------

STRUCTURE_KEYS = (
    "logGroupName",
    "logStreamName",
    "logEvents",
    "messageType",
    "message",
    "timestamp",
    "entity",
    "keyAttributes",
    "attributes",
    "owner",
    "logGroup",
    "logStream",
    "Type",
    "Name",
)
NAME_ALPHABET = "/._-#aZ09:* é\x00\n\ud800"

#: Any text, control characters included, and text with lone surrogates (as JSON escapes such
#: as "\ud83d" produce them).
texts = st.one_of(
    st.text(max_size=40),
    st.tuples(st.text(max_size=8), st.text(st.characters(categories=["Cs"]), min_size=1)).map(
        "".join
    ),
)
names = st.one_of(
    st.text(NAME_ALPHABET, max_size=20),
    st.sampled_from(["", "/app/x", "/secret/x", "s" * 513, "/app/" + "g" * 600]),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**30, 2**63, -1, 0, 253_402_300_799_999, 253_402_300_800_000]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts, names)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(STRUCTURE_KEYS), texts), inner, max_size=5),
    ),
    max_leaves=16,
)
documents = st.dictionaries(st.sampled_from(STRUCTURE_KEYS), values, min_size=1, max_size=6)


@st.composite
def hostile_payloads(draw: st.DrawFn, group: str, now_ms: int) -> tuple[str, str | bytes]:
    """(source, payload) of one hostile record: random structure, names, numbers and text,
    in every payload form (JSON, gzip, base64 gzip, raw text, raw bytes), whole or cut short."""
    document = draw(documents)
    if draw(st.booleans()):  # aim a share of them at a real destination, so the rest is tested
        document.setdefault("logGroupName", group)
        document.setdefault("logStreamName", "hostile")
        if draw(st.booleans()):
            document.setdefault("timestamp", now_ms)
    kind = draw(
        st.sampled_from(
            [
                *("json", "json-cut", "ndjson", "gzip", "gzip-cut", "b64gzip", "text", "bytes"),
                *("deep", "kpl", "kpl-cut", "kpl-message"),
            ]
        )
    )
    text = json.dumps(document, allow_nan=True)
    if kind == "json":
        return SQS, text
    if kind == "ndjson":  # newline-delimited: a few documents, one per line, some cut
        lines = [text, *(json.dumps(d) for d in draw(st.lists(documents, max_size=4)))]
        return SQS, "\n".join(line[: draw(st.integers(0, len(line)))] for line in lines)
    if kind == "json-cut":
        return SQS, text[: draw(st.integers(0, len(text)))]
    if kind == "gzip":
        return KINESIS, gzip.compress(text.encode("utf-8", "surrogatepass"))
    if kind == "gzip-cut":
        packed = gzip.compress(text.encode("utf-8", "surrogatepass"))
        return KINESIS, packed[: draw(st.integers(0, len(packed)))]
    if kind == "b64gzip":
        return SQS, b64(gzip.compress(text.encode("utf-8", "surrogatepass")))
    if kind == "text":
        return SQS, draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=200))
    if kind == "bytes":
        return KINESIS, draw(st.binary(max_size=200))
    if kind == "kpl":  # user records of hostile text and bytes, in one aggregate
        others = draw(st.lists(st.binary(max_size=60) | texts.map(_utf8), max_size=3))
        return KINESIS, kpl(_utf8(text), *others)
    if kind == "kpl-cut":
        packed = kpl(_utf8(text))
        return KINESIS, packed[: draw(st.integers(0, len(packed)))]
    if kind == "kpl-message":  # any bytes as the message, with a digest that matches
        return KINESIS, kpl_framed(draw(st.binary(max_size=200)))
    depth = draw(st.integers(1, 3000))  # a message nested around the parser's limit
    return SQS, text[:-1] + ', "message": ' + "[" * depth + "]" * depth + "}"


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
