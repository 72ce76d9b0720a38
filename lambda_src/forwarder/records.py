"""Decode: one source record into log events and their destinations, or an invalid verdict.

Pure: no I/O. The payload forms, in the order they are recognised:

1. gzip (raw bytes from Kinesis, or base64 text starting ``H4sI`` in an SQS body): decompressed
   with a hard bound, then decoded as below; a CloudWatch Logs subscription-filter payload
   (``messageType`` ``DATA_MESSAGE`` / ``CONTROL_MESSAGE``) is recognised here.
2. A JSON object with ``logEvents``: many events in the PutLogEvents request shape.
3. A JSON object with ``logGroupName`` / ``logStreamName``: one event.
4. Newline-delimited JSON (two or more lines, each one JSON object): each line in one of these
   forms; the record's events are its lines', bound for the destinations they name.
5. Anything else: one event whose message is the raw text, sent to the default destination.

A Kinesis record that is a KPL aggregate (``aggregates``) is read as its user records, each in
one of these forms, in order: one record whose events are theirs.

A JSON object that names any of those keys is taken at its word: if its shape is wrong the record
is invalid, rather than forwarded somewhere its sender did not mean.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import replace
from fnmatch import translate
from typing import Any

from forwarder.aggregates import CorruptAggregate, is_aggregate, user_records
from forwarder.limits import (
    ENTITY_KEY_ATTRIBUTE_NAMES,
    ENTITY_MAX_ATTRIBUTES,
    ENTITY_MAX_KEY_ATTRIBUTES,
    ENTITY_MAX_KEY_LENGTH,
    ENTITY_MAX_VALUE_LENGTH,
    ENTITY_MIN_KEY_ATTRIBUTES,
    EVENT_OVERHEAD_BYTES,
    LOG_GROUP_NAME_CHARS,
    LOG_STREAM_FORBIDDEN_CHARS,
    MAX_DECOMPRESSED_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_NAME_LENGTH,
)
from forwarder.model import (
    DecodedRecord,
    Destination,
    Entity,
    InvalidPart,
    InvalidRecord,
    LogEvent,
    SourceRecord,
)
from forwarder.settings import DECODED_MEMORY_FACTOR, Settings

#: How many checked destinations are remembered before the memory is cleared.
_CHECKED_NAMES_CACHE = 4096
#: Latest timestamp accepted (9999-12-31T23:59:59.999Z); anything later is not a real time.
MAX_TIMESTAMP_MS = 253_402_300_799_999

_GZIP_MAGIC = b"\x1f\x8b"
#: The first slice of compressed input fed to zlib for each gzip member (see ``_gunzip``).
_FIRST_SLICE_BYTES = 1024
_BASE64_GZIP_PREFIX = "H4sI"  # base64 of the gzip magic and the deflate method byte
_STRUCTURE_KEYS = frozenset({"messageType", "logEvents", "logGroupName", "logStreamName"})
_OBJECT_START = re.compile(r"\s*\{")
_BOM = "\ufeff"
#: How ``_gunzip`` starts the reason of a payload past its allowance.
_EXPANDS_BEYOND = "gzip payload expands beyond"


class InvalidPayload(ValueError):
    """Raised inside decoding; becomes an ``InvalidRecord`` with the message as reason."""


class DeferredPayload(ValueError):
    """Raised inside decoding when the batch's decompression budget is spent; the record becomes
    a retryable ``InvalidRecord``."""


class DecompressionBudget:
    """How many decompressed bytes one batch may still produce. Decoded events take about ten
    times their bytes in memory, so the budget bounds the invocation's memory whatever the mix
    of records: a batch of gzip bombs defers its late records instead of running out of memory.

    Progress is guaranteed: the first gzip record of a batch may expand to its full allowance
    (``allowance``: the per-record bound, or the whole budget when the function's memory is
    smaller; ``Settings.decompression_allowance_bytes``), so a deferred record gets through
    once it comes first; a record larger than its allowance can never fit this function and is
    invalid, not deferred."""

    def __init__(self, total_bytes: int, allowance_bytes: int | None = None) -> None:
        self.remaining = total_bytes
        self.allowance = (
            min(MAX_DECOMPRESSED_BYTES, total_bytes) if allowance_bytes is None else allowance_bytes
        )


class RecordDecoder:
    """Turns ``SourceRecord`` values into ``DecodedRecord`` or ``InvalidRecord``.

    Built once per cold start from ``Settings``: the allow-list is compiled to one regular
    expression and the subscription renaming templates are kept ready.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._allowed = re.compile("|".join(translate(p) for p in settings.allowed_log_groups))
        self._checked: dict[tuple[str, str, Entity | None], Destination | str] = {}
        self._default = (
            Destination(settings.default_log_group, settings.default_log_stream)
            if settings.default_log_group and settings.default_log_stream
            else None
        )

    def decode(
        self, record: SourceRecord, position: int, budget: DecompressionBudget | None = None
    ) -> DecodedRecord | InvalidRecord:
        """Decode one record; ``position`` is its index in the batch; ``budget`` is shared by
        the batch's records (unbounded but for the per-record limit when None). Never raises."""
        try:
            return self._decode(record, position, budget)
        except InvalidPayload as error:
            return InvalidRecord(str(error))
        except DeferredPayload as error:
            return InvalidRecord(str(error), retryable=True)

    def _decode(
        self, record: SourceRecord, position: int, budget: DecompressionBudget | None
    ) -> DecodedRecord:
        if record.envelope_error is not None:
            raise InvalidPayload(record.envelope_error)
        if is_aggregate(record.payload):
            return self._aggregate(record, position, budget)
        return self._payload(record.payload, record, position, budget)

    def _aggregate(
        self, record: SourceRecord, position: int, budget: DecompressionBudget | None
    ) -> DecodedRecord:
        """A KPL aggregate: its user records' events, numbered across them in order. A user
        record that does not decode is set aside (``invalid_parts``); the others are sent."""
        assert isinstance(record.payload, bytes)
        try:
            users = user_records(record.payload)
        except CorruptAggregate as error:
            raise InvalidPayload(f"KPL aggregated record is corrupt: {error}") from None
        # The aggregate is one record to the decompression bounds: its user records share one
        # record's allowance, so it can never need more than a batch's first record gets.
        batch = budget or DecompressionBudget(MAX_DECOMPRESSED_BYTES)
        left = batch.allowance
        parts: list[DecodedRecord] = []
        invalid: list[InvalidPart] = []
        first_index = 0
        for user in users:
            share = DecompressionBudget(batch.remaining, left)
            try:
                part = self._payload(user.data, record, position, share, first_index)
            except InvalidPayload as error:
                reason = str(error)
                if left < batch.allowance and reason.startswith(_EXPANDS_BEYOND):
                    reason = (
                        f"gzip payload expands beyond the {left} bytes left of the "
                        f"{batch.allowance} one record may expand to, which this KPL "
                        "aggregate's user records share"
                    )
                invalid.append(
                    InvalidPart(user.sub_sequence, user.partition_key, user.data, reason)
                )
                continue
            finally:
                used = batch.remaining - share.remaining
                batch.remaining -= used
                left -= used
            parts.append(part)
            first_index += _event_count(part)
        return replace(_combine(parts), user_records=len(users), invalid_parts=tuple(invalid))

    def _payload(
        self,
        payload: str | bytes,
        record: SourceRecord,
        position: int,
        budget: DecompressionBudget | None,
        first_index: int = 0,
    ) -> DecodedRecord:
        """One payload (a record's, or a user record's of an aggregate) in any of the forms;
        its events numbered from ``first_index``."""
        # A leading byte order mark, as some Windows tools write, is not part of the payload.
        text = _payload_text(payload, budget).removeprefix(_BOM)
        documents = _json_documents(text)
        if len(documents) == 1:
            return self._document(*documents[0], record, position, first_index)
        parts: list[DecodedRecord] = []
        # events are numbered across the lines, in decode order
        for number, (line, document) in enumerate(documents, start=1):
            try:
                part = self._document(line, document, record, position, first_index)
            except InvalidPayload as error:
                raise InvalidPayload(f"line {number} of newline-delimited JSON: {error}") from None
            parts.append(part)
            first_index += _event_count(part)
        return _combine(parts)

    def _document(
        self,
        text: str,
        document: dict[str, Any] | None,
        record: SourceRecord,
        position: int,
        first_index: int = 0,
    ) -> DecodedRecord:
        """One payload form: ``document`` is the text's JSON object when it names a
        destination key, else None (raw text). Its events are numbered from ``first_index``."""
        if document is None:
            return self._raw(text, record, position, first_index)
        if "messageType" in document:
            return self._subscription(document, position, first_index)
        destination = self._destination(
            _name(document, "logGroupName"),
            _name(document, "logStreamName"),
            _entity(document.get("entity")),
        )
        if "logEvents" in document:
            items = document["logEvents"]
            if not isinstance(items, list):
                raise InvalidPayload("logEvents must be a list of {timestamp, message} objects")
            pairs = (_event_fields(item, i, record.arrival_ms) for i, item in enumerate(items))
            return _build(destination, pairs, position, first_index)
        pair = _event_fields(document, None, record.arrival_ms)
        return _build(destination, iter([pair]), position, first_index)

    def _raw(
        self, text: str, record: SourceRecord, position: int, first_index: int
    ) -> DecodedRecord:
        if self._default is None:
            raise InvalidPayload(
                "payload is not a log event object and DEFAULT_LOG_GROUP/DEFAULT_LOG_STREAM "
                "are not set, so it has no destination"
            )
        return _build(self._default, iter([(record.arrival_ms, text)]), position, first_index)

    def _subscription(
        self, document: dict[str, Any], position: int, first_index: int
    ) -> DecodedRecord:
        kind = document["messageType"]
        if kind == "CONTROL_MESSAGE":
            return DecodedRecord(destination=None, events=[])
        if kind != "DATA_MESSAGE":
            raise InvalidPayload(f"unknown subscription messageType {kind!r}")
        names = {key: _name(document, key) for key in ("logGroup", "logStream", "owner")}
        destination = self._destination(
            self._settings.subscription_log_group.format_map(names),
            self._settings.subscription_log_stream.format_map(names),
            None,
        )
        items = document.get("logEvents")
        if not isinstance(items, list):
            raise InvalidPayload("subscription logEvents must be a list")
        pairs = (_event_fields(item, i, None) for i, item in enumerate(items))
        return _build(destination, pairs, position, first_index)

    def _destination(self, group: str, stream: str, entity: Entity | None) -> Destination:
        """The checked destination. Cached per cold start: a batch names a handful of
        destinations thousands of times."""
        key = (group, stream, entity)
        known = self._checked.get(key)
        if known is None:
            if len(self._checked) >= _CHECKED_NAMES_CACHE:
                self._checked.clear()
            try:
                self._validate_names(group, stream)
                known = Destination(group, stream, entity)
            except InvalidPayload as error:
                known = str(error)
            self._checked[key] = known
        if isinstance(known, str):
            raise InvalidPayload(known)
        return known

    def _validate_names(self, group: str, stream: str) -> None:
        if not 1 <= len(group) <= MAX_NAME_LENGTH or not set(group) <= LOG_GROUP_NAME_CHARS:
            raise InvalidPayload(
                f"log group name {group[:80]!r} is not valid: 1 to 512 letters, digits or . - _ / #"
            )
        if (
            not 1 <= len(stream) <= MAX_NAME_LENGTH
            or set(stream) & LOG_STREAM_FORBIDDEN_CHARS
            or not _is_unicode(stream)
        ):
            raise InvalidPayload(
                f"log stream name {stream[:80]!r} is not valid: 1 to 512 characters, none of : or *"
            )
        if not self._allowed.match(group):
            raise InvalidPayload(
                f"log group {group!r} is not allowed by ALLOWED_LOG_GROUPS "
                f"({','.join(self._settings.allowed_log_groups)})"
            )


def _payload_text(payload: str | bytes, budget: DecompressionBudget | None = None) -> str:
    """The payload as text, after bounded gunzip when it is gzip."""
    if isinstance(payload, str):
        if not payload.startswith(_BASE64_GZIP_PREFIX):
            return payload
        try:
            decoded = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return payload  # plain text that happens to start with H4sI
        payload = decoded
    if payload[:2] == _GZIP_MAGIC:
        if budget is None:
            payload = _gunzip(payload, MAX_DECOMPRESSED_BYTES, MAX_DECOMPRESSED_BYTES)
        else:
            limit = max(0, min(budget.allowance, budget.remaining))
            payload = _gunzip(payload, limit, budget.allowance)
            budget.remaining -= len(payload)
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidPayload(f"payload is neither UTF-8 text nor gzip ({error.reason})") from None


def _gunzip(data: bytes, limit: int, allowance: int) -> bytes:
    """Decompress every gzip member, refusing to produce more than ``limit`` bytes. Past the
    record's whole ``allowance`` it is invalid (a bomb past MAX_DECOMPRESSED_BYTES, or larger
    than this function's memory allows); past a smaller limit (what the batch's budget has
    left) it is deferred to another batch.

    Input is fed in slices that double within a member: zlib copies what follows a member's end
    (``unused_data``), so feeding it the whole rest would cost quadratic time on a payload of
    many tiny members; a slice bounds each copy by twice what the member consumed."""
    out = bytearray()
    view = memoryview(data)
    position = 0
    while position < len(data):
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        step = _FIRST_SLICE_BYTES
        while not inflater.eof and position < len(data):
            piece = view[position : position + step]
            try:
                out += inflater.decompress(piece, limit + 1 - len(out))
            except zlib.error as error:
                raise InvalidPayload(f"gzip payload is corrupt ({error})") from None
            if len(out) > limit:
                if limit >= MAX_DECOMPRESSED_BYTES:
                    raise InvalidPayload(
                        f"gzip payload expands beyond {MAX_DECOMPRESSED_BYTES} bytes "
                        "(possible gzip bomb)"
                    )
                if limit >= allowance:
                    raise InvalidPayload(
                        f"gzip payload expands beyond {allowance} bytes, the most this "
                        f"function's memory allows one batch (a {DECODED_MEMORY_FACTOR}th of "
                        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE); raise the memory size (memorySize) "
                        f"to at least {MAX_DECOMPRESSED_BYTES * DECODED_MEMORY_FACTOR >> 20} MB"
                    )
                raise DeferredPayload(
                    "this batch's decompression budget is spent (earlier records expanded to "
                    "many bytes); the record is retried in another batch"
                )
            position += len(piece) - len(inflater.unused_data)
            step *= 2
        if not inflater.eof:
            raise InvalidPayload("gzip payload is truncated")
    return bytes(out)


def _json_documents(text: str) -> list[tuple[str, dict[str, Any] | None]]:
    """The payload's documents, each as its text and its JSON object when that names a
    destination key (None: the text is raw). One document, or one per line of newline-delimited
    JSON (two or more lines, each one JSON object, blank lines aside), as Fluent Bit, Vector and
    many SDKs write them.

    Text that does not parse but names a destination key was meant as log event objects (a
    trailing comma, a number too long, a cut-off body): it is refused, never rerouted as raw
    text to the default destination."""
    if not _OBJECT_START.match(text):
        return [(text, None)]
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        lines = [line.removesuffix("\r") for line in text.split("\n")]
        lines = [line for line in lines if line.strip()]
        if len(lines) > 1 and all(_OBJECT_START.match(line) for line in lines):
            return _json_lines(text, lines)
        if _names_a_destination(text):
            raise InvalidPayload(
                f"payload names a destination but is not one JSON object ({_where(error)})"
            ) from None
        return [(text, None)]
    return [(text, _structured(document))]


def _json_lines(text: str, lines: list[str]) -> list[tuple[str, dict[str, Any] | None]]:
    """Each line with its object, or the whole text as raw when a line is not an object."""
    documents = []
    for number, line in enumerate(lines, start=1):
        try:
            document = json.loads(line)
        except (ValueError, RecursionError) as error:
            if _names_a_destination(text):
                raise InvalidPayload(
                    "payload names a destination but is not one JSON object, nor one per line "
                    f"(line {number}: {_where(error)})"
                ) from None
            return [(text, None)]
        if not isinstance(document, dict):
            return [(text, None)]
        documents.append((line, _structured(document)))
    return documents


def _structured(document: Any) -> dict[str, Any] | None:
    """The document when it is an object naming a destination key, else None (raw text)."""
    if isinstance(document, dict) and not document.keys().isdisjoint(_STRUCTURE_KEYS):
        return document
    return None


def _names_a_destination(text: str) -> bool:
    return any(f'"{key}"' in text for key in _STRUCTURE_KEYS)


def _where(error: ValueError | RecursionError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return f"{type(error).__name__}: nested too deep or a number too long"


def _combine(parts: list[DecodedRecord]) -> DecodedRecord:
    """One record of the lines' records: events by destination, in order of first appearance."""
    by_destination: dict[Destination, list[LogEvent]] = {}
    for part in parts:
        for destination, events in part.parts():
            by_destination.setdefault(destination, []).extend(events)
    skipped = sum(part.skipped_empty for part in parts)
    split = sum(part.split_events for part in parts)
    if not by_destination:
        return DecodedRecord(None, [], skipped, split)
    (first, events), *elsewhere = by_destination.items()
    return DecodedRecord(first, events, skipped, split, tuple(elsewhere))


def _event_count(record: DecodedRecord) -> int:
    return sum(len(events) for _, events in record.parts())


def _name(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str):
        raise InvalidPayload(f"{key} must be a string, got {type(value).__name__}")
    return value


def _entity(value: Any) -> Entity | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"keyAttributes", "attributes"}:
        raise InvalidPayload("entity must be an object with keyAttributes and optional attributes")
    keys = _string_map(value.get("keyAttributes"), "keyAttributes")
    extra = _string_map(value.get("attributes", {}), "attributes")
    if not ENTITY_MIN_KEY_ATTRIBUTES <= len(keys) <= ENTITY_MAX_KEY_ATTRIBUTES:
        raise InvalidPayload(
            f"entity.keyAttributes has {len(keys)} entries: "
            f"{ENTITY_MIN_KEY_ATTRIBUTES} to {ENTITY_MAX_KEY_ATTRIBUTES} are allowed"
        )
    unknown = set(keys) - ENTITY_KEY_ATTRIBUTE_NAMES
    if unknown:
        raise InvalidPayload(
            f"entity.keyAttributes {sorted(unknown)} not allowed: use "
            f"{', '.join(sorted(ENTITY_KEY_ATTRIBUTE_NAMES))}"
        )
    if len(extra) > ENTITY_MAX_ATTRIBUTES:
        raise InvalidPayload(f"entity.attributes has more than {ENTITY_MAX_ATTRIBUTES} entries")
    return Entity(tuple(sorted(keys.items())), tuple(sorted(extra.items())))


def _string_map(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidPayload(f"entity.{field} must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str) or not 1 <= len(key) <= ENTITY_MAX_KEY_LENGTH[field]:
            raise InvalidPayload(f"entity.{field}[{key[:40]!r}] must be a string value")
        if not 1 <= len(item) <= ENTITY_MAX_VALUE_LENGTH or not _is_unicode(key + item):
            raise InvalidPayload(f"entity.{field}[{key!r}] must have 1 to 512 characters")
    return value


def _event_fields(item: Any, index: int | None, arrival_ms: int | None) -> tuple[int, str]:
    """(timestamp, message) of one event object; ``arrival_ms`` fills a missing timestamp."""
    where = "" if index is None else f"logEvents[{index}]."
    if not isinstance(item, dict):
        raise InvalidPayload(f"{where or 'event '}must be an object with timestamp and message")
    raw_time = item.get("timestamp")
    if raw_time is None and arrival_ms is not None:
        timestamp = arrival_ms
    elif isinstance(raw_time, int) and not isinstance(raw_time, bool):
        timestamp = raw_time
    elif isinstance(raw_time, float) and math.isfinite(raw_time):
        timestamp = int(raw_time)
    else:
        raise InvalidPayload(
            f"{where}timestamp must be milliseconds since the epoch, got {str(raw_time)[:40]!r}"
        )
    if not 0 <= timestamp <= MAX_TIMESTAMP_MS:
        raise InvalidPayload(f"{where}timestamp {timestamp} is outside year 1970 to 9999")
    message = item.get("message")
    if isinstance(message, str):
        return timestamp, message
    if message is None:
        raise InvalidPayload(f"{where}message is missing")
    # Objects and arrays (and bare numbers or booleans) are sent as their compact JSON text.
    return timestamp, json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _build(
    destination: Destination,
    pairs: Iterator[tuple[int, str]],
    position: int,
    first_index: int = 0,
) -> DecodedRecord:
    events: list[LogEvent] = []
    skipped = split = 0
    for timestamp, message in pairs:
        if not message:
            skipped += 1
            continue
        if message.isascii():
            size = len(message)
            if size <= MAX_MESSAGE_BYTES:
                events.append(
                    LogEvent(
                        timestamp,
                        message,
                        size + EVENT_OVERHEAD_BYTES,
                        position,
                        first_index + len(events),
                    )
                )
                continue
        try:
            parts = split_message(message)
        except UnicodeEncodeError:
            raise InvalidPayload(
                "message is not valid Unicode (a lone surrogate, e.g. half of an emoji)"
            ) from None
        split += len(parts) - 1
        start = first_index + len(events)
        events.extend(
            LogEvent(timestamp, part, size + EVENT_OVERHEAD_BYTES, position, start + i)
            for i, (part, size) in enumerate(parts)
        )
    return DecodedRecord(destination, events, skipped, split)


def _is_unicode(text: str) -> bool:
    """False for text with lone surrogates, which JSON escapes allow but UTF-8 cannot carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def split_message(message: str, limit: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    """Cut ``message`` into parts of at most ``limit`` UTF-8 bytes, on character boundaries.

    Returns ``(part, utf8_size)`` pairs; joined, the parts give back the message exactly.
    ``limit`` must hold the longest UTF-8 character (4 bytes). Raises ``UnicodeEncodeError``
    for text with lone surrogates.
    """
    if limit < 4:
        raise ValueError(f"limit {limit} cannot hold a 4-byte UTF-8 character")
    data = message.encode("utf-8")
    if len(data) <= limit:
        return [(message, len(data))]
    parts: list[tuple[str, int]] = []
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        # Step back over UTF-8 continuation bytes (10xxxxxx) so no character is cut in two.
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        parts.append((data[start:end].decode("utf-8"), end - start))
        start = end
    return parts
