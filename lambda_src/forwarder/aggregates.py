"""KPL aggregated records: one Kinesis record that carries many user records. Pure: no I/O.

The Kinesis Producer Library (and the Fluent Bit, Vector and ``aws-kinesis-agg`` aggregators)
write the format of amazon-kinesis-producer's ``aggregation-format.md``: the 4 magic bytes
``F3 89 9A C2``, a protobuf ``AggregatedRecord``, and the 16-byte MD5 digest of that protobuf
message. The message, of ``messages.proto``::

    message AggregatedRecord {
      repeated string partition_key_table     = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                 = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;
    }

Read here rather than with the ``protobuf`` runtime (about 1 MB in the asset and an import on
every cold start, for three fields) or with ``aws-kinesis-agg`` (which prints a parse error and
drops the rest of the record): this reader is strict, and every way an aggregate can be wrong
is a ``CorruptAggregate`` whose message says which.

No valid UTF-8 text and no gzip stream starts with the magic bytes (``F3`` opens a four-byte
UTF-8 sequence that ``C2`` cannot continue), so a payload that starts with them is taken to be an
aggregate and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: "4-byte magic number": the first bytes of every aggregated record.
MAGIC = b"\xf3\x89\x9a\xc2"
#: "16-byte MD5 digest of the serialized protobuf message", after it.
DIGEST_BYTES = 16

# Protobuf wire types (encoding.md): what follows a field's key.
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5
_MAX_VARINT_BYTES = 10  # 64 bits, 7 a byte


class CorruptAggregate(ValueError):
    """An aggregate that cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One user record of an aggregate: its ``sub_sequence`` number (its index in the
    aggregate, as Lambda and the KCL number them), its partition key and its data."""

    sub_sequence: int
    partition_key: str
    data: bytes


def is_aggregate(payload: str | bytes) -> bool:
    """Whether ``payload`` is (meant as) a KPL aggregate: Kinesis data starting with the magic."""
    return isinstance(payload, bytes) and payload.startswith(MAGIC)


def user_records(payload: bytes) -> list[UserRecord]:
    """The aggregate's user records, in order. Raises ``CorruptAggregate``: the payload is
    too short, its digest does not match (cut short or altered), or its message is not an
    ``AggregatedRecord`` (a truncated field, a missing ``data``, an index past its table)."""
    if not payload.startswith(MAGIC):
        raise CorruptAggregate("does not start with the KPL magic bytes F3 89 9A C2")
    if len(payload) < len(MAGIC) + DIGEST_BYTES:
        raise CorruptAggregate(f"{len(payload)} bytes: too short for the magic and the MD5 digest")
    message = payload[len(MAGIC) : -DIGEST_BYTES]
    if hashlib.md5(message, usedforsecurity=False).digest() != payload[-DIGEST_BYTES:]:
        raise CorruptAggregate(
            "its MD5 digest does not match its message (cut short or altered in transit)"
        )
    keys: list[str] = []
    records: list[tuple[int, bytes]] = []
    for number, value in _fields(message, "AggregatedRecord"):
        if number == 1:
            keys.append(_text(value, "partition_key_table"))
        elif number == 3:
            if not isinstance(value, bytes):
                raise CorruptAggregate(f"user record {len(records)} is not a message")
            records.append(_record(value, len(records)))
        # 2 (explicit hash keys) and fields of later versions are not needed to forward.
    result = []
    for sub_sequence, (key_index, data) in enumerate(records):
        if key_index >= len(keys):
            raise CorruptAggregate(
                f"user record {sub_sequence}: partition_key_index {key_index} is past the "
                f"table of {len(keys)} partition keys"
            )
        result.append(UserRecord(sub_sequence, keys[key_index], data))
    return result


def _record(message: bytes, sub_sequence: int) -> tuple[int, bytes]:
    """(partition_key_index, data) of one ``Record``."""
    key_index: int | None = None
    data: bytes | None = None
    for number, value in _fields(message, f"user record {sub_sequence}"):
        if number == 1:
            key_index = _integer(value, sub_sequence, "partition_key_index")
        elif number == 3:
            if not isinstance(value, bytes):
                raise CorruptAggregate(f"user record {sub_sequence}: data is not bytes")
            data = value
    if key_index is None or data is None:
        missing = "partition_key_index" if key_index is None else "data"
        raise CorruptAggregate(f"user record {sub_sequence}: required field {missing} is missing")
    return key_index, data


def _fields(message: bytes, what: str) -> list[tuple[int, int | bytes]]:
    """The message's fields in order: (field number, value), a varint's value as an int and
    anything else as its bytes."""
    fields: list[tuple[int, int | bytes]] = []
    position, end = 0, len(message)
    while position < end:
        key, position = _varint(message, position, what)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise CorruptAggregate(f"{what}: field number 0 at byte {position}")
        value: int | bytes
        if wire_type == _VARINT:
            value, position = _varint(message, position, what)
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _varint(message, position, what)
            if length > end - position:
                raise CorruptAggregate(
                    f"{what}: field {number} claims {length} bytes, {end - position} remain "
                    "(truncated)"
                )
            value, position = message[position : position + length], position + length
        elif wire_type in (_FIXED64, _FIXED32):
            size = 8 if wire_type == _FIXED64 else 4
            if size > end - position:
                raise CorruptAggregate(f"{what}: field {number} is cut short (truncated)")
            value, position = message[position : position + size], position + size
        else:
            raise CorruptAggregate(f"{what}: field {number} has wire type {wire_type}")
        fields.append((number, value))
    return fields


def _varint(message: bytes, position: int, what: str) -> tuple[int, int]:
    """The base-128 varint at ``position`` and the position after it."""
    if position < len(message) and message[position] < 0x80:  # most are one byte
        return message[position], position + 1
    value = shift = 0
    for offset in range(_MAX_VARINT_BYTES):
        if position + offset >= len(message):
            raise CorruptAggregate(f"{what}: a number is cut short (truncated)")
        byte = message[position + offset]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:
                raise CorruptAggregate(f"{what}: a number runs past 64 bits")
            return value, position + offset + 1
        shift += 7
    raise CorruptAggregate(f"{what}: a number runs past {_MAX_VARINT_BYTES} bytes")


def _integer(value: int | bytes, sub_sequence: int, field: str) -> int:
    if not isinstance(value, int):
        raise CorruptAggregate(f"user record {sub_sequence}: {field} is not a number")
    return value


def _text(value: int | bytes, field: str) -> str:
    if not isinstance(value, bytes):
        raise CorruptAggregate(f"{field}: an entry is not a string")
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        raise CorruptAggregate(f"{field}: an entry is not UTF-8") from None
