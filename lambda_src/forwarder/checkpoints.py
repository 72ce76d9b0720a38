"""The delivery checkpoint, its pure half: what to look up, what to drop, what to remember.

A record reported failed may have landed in part (a rejected event among accepted ones, a
Kinesis record behind a failure, a request lost at the deadline). Its source delivers it whole
again, and CloudWatch Logs does not deduplicate. So the function remembers, durably, which events
of such a record landed (``Landed``, by ``LogEvent.ordinal``), and when the record comes back it
sends only the others (``without_landed``). Pure: no I/O; ``checkpoint_store`` reads and writes.

A claim names the record it was made of (``RecordMark``: how many events it decodes to and a
digest of them). It is applied only to a record that decodes to the same events, so a record
decoded differently on its next delivery (another version of the forwarder, other settings) is
sent whole: a duplicate at worst, never a loss.

Keys are designed so that the happy path costs nothing and a retry costs one read:

- **SQS**: one item per record, ``<queue ARN>/<message id>``. Only a redelivery
  (``ApproximateReceiveCount`` above 1) can have one, so a first delivery reads nothing.
- **Kinesis**: per failed batch, ``<stream ARN>/<shard id>``, sorted by a sequence number and
  the writing invocation's token: the same item under the batch's first record (where the whole
  batch starts again) and under its lowest failed record (where Lambda retries from, and
  bisects). Items are only ever added, never replaced, so a write cannot hide what an earlier
  delivery knew. A retry cannot be told from a first delivery, so each batch reads once: the
  items under its own first record.

A batch in which no record is reported failed writes nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

from forwarder.fates import Fate, RecordFate
from forwarder.model import DecodedRecord, InvalidRecord, RequestOutcome, SourceRecord
from forwarder.sources import KINESIS, SQS

#: The table's item: string keys ``pk`` and ``sk``, the checkpoint's text, and the epoch second it
#: expires (the table's TTL attribute). ``checkpoint_store`` reads and writes these;
#: ``infra.delivery_checkpoint`` and ``local.deploy`` create tables with them.
PARTITION_KEY, SORT_KEY, LANDED_ATTRIBUTE, TTL_ATTRIBUTE = "pk", "sk", "landed", "expires"
#: Kinesis sequence numbers are decimal strings "0|([1-9]\d{0,128})" (service model); padded to
#: one width, they sort as numbers and none is the prefix of another.
_SEQUENCE_WIDTH = 129
#: Between a Kinesis item's sequence number and the writing invocation's token, and between
#: that and the number of its part, when it has several.
TOKEN_SEPARATOR, PART_SEPARATOR = "#", "."
#: The sort key of an SQS record's item (it has one item per record).
SQS_SORT = "sqs"
#: An item holds at most this much of ``landed`` text; DynamoDB's limit is 400 KB an item. A
#: record whose claim alone is longer is not remembered (it is counted).
MAX_ITEM_TEXT = 300_000
_DIGEST_BYTES = 8


@dataclass(frozen=True, slots=True)
class Landed:
    """Ordinals of a record's events that landed, as sorted, disjoint ``[start, end)`` ranges."""

    ranges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, indexes: Iterable[int]) -> Landed:
        ranges: list[tuple[int, int]] = []
        for index in sorted(set(indexes)):
            if ranges and ranges[-1][1] == index:
                ranges[-1] = (ranges[-1][0], index + 1)
            else:
                ranges.append((index, index + 1))
        return cls(tuple(ranges))

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        position = bisect.bisect_right(self.ranges, (index, float("inf"))) - 1
        return position >= 0 and self.ranges[position][0] <= index < self.ranges[position][1]

    def __len__(self) -> int:
        return sum(end - start for start, end in self.ranges)

    def __iter__(self) -> Iterator[int]:
        for start, end in self.ranges:
            yield from range(start, end)

    def union(self, other: Landed) -> Landed:
        return Landed.of([*self, *other])

    def encode(self) -> str:
        """``"0:5,7:9"``: compact, and a whole record is one range."""
        return ",".join(f"{start}:{end}" for start, end in self.ranges)

    @classmethod
    def decode(cls, text: str) -> Landed:
        """The ranges ``encode`` wrote; ``ValueError`` for anything else."""
        if not text:
            return cls()
        ranges = []
        for part in text.split(","):
            start, _, end = part.partition(":")
            if not (_ordinal(start) and _ordinal(end) and int(start) < int(end)):
                raise ValueError(f"not a range of ordinals: {part[:80]!r}")
            ranges.append((int(start), int(end)))
        if ranges != sorted(ranges) or any(a[1] > b[0] for a, b in pairwise(ranges)):
            raise ValueError(f"ranges not sorted and disjoint: {text[:80]!r}")
        return cls(tuple(ranges))


@dataclass(frozen=True, slots=True)
class RecordMark:
    """What a checkpoint says of one record: which of its events landed, and what the record
    decoded to when they did (``events``, and ``digest`` of their destinations, timestamps and
    messages in ordinal order)."""

    landed: Landed
    events: int
    digest: str

    @classmethod
    def of(cls, landed: Landed, item: DecodedRecord) -> RecordMark:
        events, digest = fingerprint(item)
        return cls(landed, events, digest)

    def encode(self) -> str:
        """``"12|<digest>|0:5,7:9"``."""
        return f"{self.events}|{self.digest}|{self.landed.encode()}"

    @classmethod
    def decode(cls, text: str) -> RecordMark:
        """The mark ``encode`` wrote; ``ValueError`` for anything else."""
        parts = text.split("|")
        if len(parts) != 3 or not _ordinal(parts[0]) or len(parts[1]) != 2 * _DIGEST_BYTES:
            raise ValueError(f"not a record mark: {text[:80]!r}")
        events, digest, ranges = parts
        landed = Landed.decode(ranges)
        if landed.ranges and landed.ranges[-1][1] > int(events):
            raise ValueError(f"ranges beyond the record's {events} events: {text[:80]!r}")
        return cls(landed, int(events), digest)


def fingerprint(item: DecodedRecord) -> tuple[int, str]:
    """How many events ``item`` decodes to, and a digest of them in ordinal order."""
    digest = hashlib.blake2b(digest_size=_DIGEST_BYTES)
    events = sorted(
        ((event.ordinal, where, event) for where, part in item.parts() for event in part),
        key=lambda entry: entry[0],
    )
    for ordinal, where, event in events:
        head = f"{ordinal}\0{where.log_group}\0{where.log_stream}\0{event.timestamp}\0"
        digest.update(head.encode("utf-8", "surrogatepass"))
        digest.update(event.message.encode("utf-8", "surrogatepass"))
        digest.update(b"\1")
    return len(events), digest.hexdigest()


@dataclass(frozen=True, slots=True, order=True)
class CheckpointKey:
    """An item's key: the partition names the record (SQS) or the shard (Kinesis)."""

    partition: str
    sort: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What landed of some records, by record id, under one key."""

    key: CheckpointKey
    marks: Mapping[str, RecordMark]

    def encode(self) -> str:
        return json.dumps({rid: mark.encode() for rid, mark in self.marks.items()})

    def events(self) -> int:
        """The landed events it names."""
        return sum(len(mark.landed) for mark in self.marks.values())

    @classmethod
    def decode(cls, key: CheckpointKey, text: str) -> Checkpoint:
        """The checkpoint an item holds; ``ValueError`` if it does not parse."""
        try:
            document = json.loads(text)
        except ValueError as error:
            raise ValueError(f"landed is not JSON: {error}") from None
        if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
            raise ValueError("landed is not an object of record marks")
        try:
            return cls(key, {str(rid): RecordMark.decode(t) for rid, t in document.items()})
        except ValueError as error:
            raise ValueError(f"landed of {key.partition!r}: {error}") from None


@dataclass(frozen=True, slots=True)
class ShardStart:
    """A Kinesis batch's records of one shard: the sort key of its first record."""

    partition: str
    first: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """What to read for a batch: exact items (SQS), and for each shard the items under the
    batch's first record (Kinesis: a query of that sort key and its parts)."""

    items: tuple[CheckpointKey, ...] = ()
    shards: tuple[ShardStart, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items or self.shards)


@dataclass(slots=True)
class Ledger:
    """What the checkpoint did in one invocation, for the summary log and the metrics."""

    items_read: int = 0
    items_written: int = 0
    events_already_landed: int = 0
    #: Landed events whose checkpoint could not be written: they may land again.
    events_unremembered: int = 0
    #: Partitions (an SQS record's, a Kinesis shard's) whose items could not be read, or held a
    #: claim that did not match its record: what lands of their records now may have landed
    #: before, and what the table knows of them is not overwritten.
    unread: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def lookup(source: str, records: Sequence[SourceRecord]) -> Lookup:
    """The items that may hold checkpoints of ``records``."""
    if source == SQS:
        keys = (
            _sqs_key(record)
            for record in records
            if record.receive_count is None or record.receive_count > 1
        )
        return Lookup(items=tuple(dict.fromkeys(keys)))  # a message id may come twice
    if source == KINESIS:
        first: dict[str, str] = {}
        for record in records:
            partition, sort = _shard_partition(record), _sequence_sort(record.record_id)
            first[partition] = min(first.get(partition, sort), sort)
        return Lookup(shards=tuple(ShardStart(p, s) for p, s in sorted(first.items())))
    return Lookup()


def partition_of(source: str, record: SourceRecord) -> str:
    """The partition of ``record``'s item: the record's own (SQS), or its shard's (Kinesis)."""
    return _shard_partition(record) if source == KINESIS else _sqs_partition(record)


def recalled(
    records: Sequence[SourceRecord], checkpoints: Iterable[Checkpoint]
) -> dict[int, list[RecordMark]]:
    """By position in the batch, what the checkpoints say of each record."""
    by_id: dict[str, list[RecordMark]] = {}
    for checkpoint in checkpoints:
        for record_id, mark in checkpoint.marks.items():
            by_id.setdefault(record_id, []).append(mark)
    return {
        position: by_id[record.record_id]
        for position, record in enumerate(records)
        if record.record_id in by_id
    }


@dataclass(frozen=True, slots=True)
class Recall:
    """The records to send, the events of each that landed before (by position) and how many
    were left out; and the positions whose claims did not match the record as it came back."""

    decoded: list[DecodedRecord | InvalidRecord]
    before: dict[int, Landed]
    dropped: int
    mismatched: tuple[int, ...]


def without_landed(
    decoded: Sequence[DecodedRecord | InvalidRecord], claims: Mapping[int, Sequence[RecordMark]]
) -> Recall:
    """The records with the events that landed before left out. A claim counts only if it
    was made of the record as it decodes now. A record whose every event landed has none
    left: it is delivered."""
    result = list(decoded)
    before: dict[int, Landed] = {}
    dropped = 0
    mismatched = []
    for position, marks in claims.items():
        item = decoded[position]
        # One digest of the record, however many claims it has.
        now = fingerprint(item) if isinstance(item, DecodedRecord) else None
        matching = [m for m in marks if (m.events, m.digest) == now]
        if len(matching) < len(marks):
            mismatched.append(position)
        known = Landed()
        for mark in matching:
            known = known.union(mark.landed)
        if not known or not isinstance(item, DecodedRecord):
            continue
        before[position] = known
        parts = [
            (destination, [event for event in events if event.ordinal not in known])
            for destination, events in item.parts()
        ]
        dropped += sum(len(events) for _, events in item.parts()) - sum(
            len(events) for _, events in parts
        )
        kept = [(destination, events) for destination, events in parts if events]
        if not kept:
            result[position] = replace(item, destination=None, events=[], elsewhere=())
        else:
            (first, events), *elsewhere = kept
            result[position] = replace(
                item, destination=first, events=events, elsewhere=tuple(elsewhere)
            )
    return Recall(result, before, dropped, tuple(mismatched))


def landed_now(outcomes: Iterable[RequestOutcome], positions: Iterable[int]) -> dict[int, set[int]]:
    """For the records at ``positions``, the indexes of their events this invocation landed."""
    wanted = set(positions)
    landed: dict[int, set[int]] = {}
    if not wanted:
        return landed
    for outcome in outcomes:
        if outcome.failure is not None:
            continue
        accepted_all = outcome.fully_accepted
        for i, event in enumerate(outcome.request.events):
            if event.record in wanted and (accepted_all or outcome.rejection_of(i) is None):
                landed.setdefault(event.record, set()).add(event.ordinal)
    return landed


def unchecked_events(
    source: str,
    records: Sequence[SourceRecord],
    outcomes: Iterable[RequestOutcome],
    unread: set[str],
) -> int:
    """Events landed now of records whose checkpoint could not be read: each may be a
    duplicate, and the ledger says so."""
    if not unread:
        return 0
    positions = [p for p, record in enumerate(records) if partition_of(source, record) in unread]
    return sum(len(ordinals) for ordinals in landed_now(outcomes, positions).values())


@dataclass(frozen=True, slots=True)
class Remember:
    """The checkpoints to write, and the landed events left unremembered: those of SQS records
    that could not be read (a write would replace what the table knows) and of claims too long
    for an item."""

    checkpoints: list[Checkpoint]
    unremembered: int = 0


def to_remember(
    source: str,
    records: Sequence[SourceRecord],
    decoded: Sequence[DecodedRecord | InvalidRecord],
    fates: Sequence[RecordFate],
    before: Mapping[int, Landed],
    outcomes: Iterable[RequestOutcome],
    unread: frozenset[str] | set[str] = frozenset(),
    token: str = "",
) -> Remember:
    """The checkpoints to write; none when no record is reported failed (the usual batch).

    ``decoded`` is every record as it decoded, before anything was left out. SQS: each record
    reported failed with events landed, now or before. Kinesis: once a record of a shard is
    reported failed, every record of the shard with events landed, under the batch's first
    record and under the lowest failed one: Lambda retries from the failure, and the whole
    batch again if the invocation ends without a response; one read finds either. ``token``
    tells this invocation's Kinesis items from those of other deliveries.
    """
    failed = [p for p, fate in enumerate(fates) if fate.fate is Fate.FAILED]
    if not failed:
        return Remember([])
    if source == KINESIS:
        shards = {_shard_partition(records[p]) for p in failed}
        positions = [p for p, r in enumerate(records) if _shard_partition(r) in shards]
    else:
        positions = failed
    now = landed_now(outcomes, positions)
    marks: dict[int, RecordMark] = {}
    unremembered = 0
    for position in positions:
        known = Landed.of(now.get(position, ())).union(before.get(position, Landed()))
        item = decoded[position]
        if not known or not isinstance(item, DecodedRecord):
            continue
        mark = RecordMark.of(known, item)
        replaces = source != KINESIS and partition_of(source, records[position]) in unread
        if replaces or len(mark.encode()) > MAX_ITEM_TEXT:
            unremembered += len(known)
            continue
        marks[position] = mark
    if source != KINESIS:
        by_key: dict[CheckpointKey, dict[str, RecordMark]] = {}
        for p, mark in marks.items():
            by_key.setdefault(_sqs_key(records[p]), {})[records[p].record_id] = mark
        return Remember([Checkpoint(k, m) for k, m in by_key.items()], unremembered)
    checkpoints: list[Checkpoint] = []
    for shard in sorted(shards):
        in_shard = sorted(
            (p for p in positions if _shard_partition(records[p]) == shard),
            key=_by_sequence(records),
        )
        lowest_failure = min(
            (p for p in failed if _shard_partition(records[p]) == shard), key=_by_sequence(records)
        )
        starts = dict.fromkeys(
            _sequence_sort(records[p].record_id) for p in (in_shard[0], lowest_failure)
        )
        for start in starts:
            key = f"{start}{TOKEN_SEPARATOR}{token}"
            checkpoints += _kinesis_items(shard, key, records, in_shard, marks)
    return Remember(checkpoints, unremembered)


def _kinesis_items(
    partition: str,
    start: str,
    records: Sequence[SourceRecord],
    positions: Sequence[int],
    marks: Mapping[int, RecordMark],
) -> Iterator[Checkpoint]:
    """The items of one shard under the sort key ``start``: one, or if it would grow too
    large, parts ``start``, ``start.1``, ``start.2``... (a query of the batch's first sequence
    number reads them all)."""
    chunks: list[dict[str, RecordMark]] = [{}]
    size = 0
    for position in positions:
        if position not in marks:
            continue
        record_id = records[position].record_id
        entry_size = len(record_id) + len(marks[position].encode()) + 8
        if chunks[-1] and size + entry_size > MAX_ITEM_TEXT:
            chunks.append({})
            size = 0
        chunks[-1][record_id] = marks[position]
        size += entry_size
    if not chunks[0]:
        return
    for number, chunk in enumerate(chunks):
        sort = start if number == 0 else f"{start}{PART_SEPARATOR}{number}"
        yield Checkpoint(CheckpointKey(partition, sort), chunk)


def _by_sequence(records: Sequence[SourceRecord]) -> Callable[[int], str]:
    return lambda position: _sequence_sort(records[position].record_id)


def _ordinal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _sqs_key(record: SourceRecord) -> CheckpointKey:
    return CheckpointKey(_sqs_partition(record), SQS_SORT)


def _sqs_partition(record: SourceRecord) -> str:
    return f"{record.source_arn}/{record.record_id}"


def _shard_partition(record: SourceRecord) -> str:
    return f"{record.source_arn}/{record.message_group}"


def _sequence_sort(sequence_number: str) -> str:
    return sequence_number.zfill(_SEQUENCE_WIDTH)
