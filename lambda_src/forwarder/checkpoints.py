"""The delivery checkpoint, its pure half: what to look up, what to drop, what to remember.

A record reported failed may have landed in part (a rejected event among accepted ones, a
Kinesis record behind a failure, a request lost at the deadline). Its source delivers it whole
again, and CloudWatch Logs does not deduplicate. So the function remembers, durably, which events
of such a record landed (``Landed``, by ``LogEvent.ordinal``), and when the record comes back it
sends only the others (``without_landed``). Pure: no I/O; ``checkpoint_store`` reads and writes.

Keys are designed so that the happy path costs nothing and a retry costs one read:

- **SQS**: one item per record, ``<queue ARN>/<message id>``. Only a redelivery
  (``ApproximateReceiveCount`` above 1) can have one, so a first delivery reads nothing.
- **Kinesis**: one item per failed batch and shard, ``<stream ARN>/<shard id>`` sorted by the
  sequence number of the batch's first record. A retry cannot be told from a first delivery, so
  every batch reads once: the few newest items that start at or before its last record.

A batch in which no record is reported failed writes nothing.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

from forwarder.fates import Fate, RecordFate
from forwarder.model import DecodedRecord, InvalidRecord, RequestOutcome, SourceRecord
from forwarder.sources import KINESIS, SQS

#: The table's item: string keys ``pk`` and ``sk``, the checkpoint's text, and the epoch second it
#: expires (the table's TTL attribute). ``checkpoint_store`` reads and writes these;
#: ``infra.delivery_checkpoint`` and ``local.deploy`` create tables with them.
PARTITION_KEY, SORT_KEY, LANDED_ATTRIBUTE, TTL_ATTRIBUTE = "pk", "sk", "landed", "expires"
#: Kinesis sequence numbers are decimal strings "0|([1-9]\d{0,128})" (service model); padded,
#: they sort as numbers.
_SEQUENCE_WIDTH = 129
#: The sort key of an SQS record's item (it has one item per record).
SQS_SORT = "sqs"
#: An item holds at most this much of ``landed`` text; DynamoDB's limit is 400 KB an item.
MAX_ITEM_TEXT = 300_000
#: The newest items read for a Kinesis batch: a retry starts at the first record of the newest
#: one, and a bisected half inside it; older ones only add what they knew before.
KINESIS_ITEMS_READ = 8


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


@dataclass(frozen=True, slots=True, order=True)
class CheckpointKey:
    """An item's key: the partition names the record (SQS) or the shard (Kinesis)."""

    partition: str
    sort: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What landed of some records, by record id, under one key."""

    key: CheckpointKey
    landed: Mapping[str, Landed]

    def encode(self) -> str:
        return json.dumps({rid: landed.encode() for rid, landed in self.landed.items()})

    @classmethod
    def decode(cls, key: CheckpointKey, text: str) -> Checkpoint:
        """The checkpoint an item holds; ``ValueError`` if it does not parse."""
        try:
            document = json.loads(text)
        except ValueError as error:
            raise ValueError(f"landed is not JSON: {error}") from None
        if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
            raise ValueError("landed is not an object of range strings")
        try:
            return cls(key, {str(rid): Landed.decode(text) for rid, text in document.items()})
        except ValueError as error:
            raise ValueError(f"landed of {key.partition!r}: {error}") from None


@dataclass(frozen=True, slots=True)
class ShardRange:
    """A Kinesis batch's records of one shard: the sort keys of its first and last."""

    partition: str
    first: str
    last: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """What to read for a batch: exact items (SQS), and for each shard the newest items that
    start at or before its last record (Kinesis: a query)."""

    items: tuple[CheckpointKey, ...] = ()
    shards: tuple[ShardRange, ...] = ()

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
    #: Partitions (an SQS record's, a Kinesis shard's) whose items could not be read: what
    #: lands of their records now may have landed before.
    unread: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def lookup(source: str, records: Sequence[SourceRecord]) -> Lookup:
    """The items that may hold checkpoints of ``records``."""
    if source == SQS:
        return Lookup(
            items=tuple(
                _sqs_key(record)
                for record in records
                if record.receive_count is None or record.receive_count > 1
            )
        )
    if source == KINESIS:
        sorts: dict[str, list[str]] = {}
        for record in records:
            sorts.setdefault(_shard_partition(record), []).append(_sequence_sort(record.record_id))
        return Lookup(shards=tuple(ShardRange(p, min(s), max(s)) for p, s in sorted(sorts.items())))
    return Lookup()


def recalled(
    records: Sequence[SourceRecord], checkpoints: Iterable[Checkpoint]
) -> dict[int, Landed]:
    """By position in the batch, the events of each record that landed before."""
    by_id: dict[str, Landed] = {}
    for checkpoint in checkpoints:
        for record_id, landed in checkpoint.landed.items():
            known = by_id.get(record_id)
            by_id[record_id] = landed if known is None else known.union(landed)
    return {
        position: by_id[record.record_id]
        for position, record in enumerate(records)
        if record.record_id in by_id
    }


def without_landed(
    decoded: Sequence[DecodedRecord | InvalidRecord], landed: Mapping[int, Landed]
) -> tuple[list[DecodedRecord | InvalidRecord], int]:
    """The records with the events that landed before left out, and how many were left out.
    A record whose every event landed has none left: it is delivered."""
    result = list(decoded)
    dropped = 0
    for position, known in landed.items():
        item = decoded[position]
        if not isinstance(item, DecodedRecord) or not known:
            continue
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
    return result, dropped


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
    partition = _sqs_partition if source == SQS else _shard_partition
    positions = [p for p, record in enumerate(records) if partition(record) in unread]
    return sum(len(ordinals) for ordinals in landed_now(outcomes, positions).values())


def to_remember(
    source: str,
    records: Sequence[SourceRecord],
    fates: Sequence[RecordFate],
    before: Mapping[int, Landed],
    outcomes: Iterable[RequestOutcome],
) -> list[Checkpoint]:
    """The checkpoints to write; none when no record is reported failed (the usual batch).

    SQS: each record reported failed with events landed, now or before. Kinesis: once a
    record of a shard is reported failed, every record of the shard with events landed, in one
    item keyed by the batch's first record: Lambda retries from the failure, and the whole batch
    again if the invocation ends without a response; one read finds either.
    """
    failed = [p for p, fate in enumerate(fates) if fate.fate is Fate.FAILED]
    if not failed:
        return []
    if source == KINESIS:
        shards = {_shard_partition(records[p]) for p in failed}
        positions = [p for p, r in enumerate(records) if _shard_partition(r) in shards]
    else:
        positions = failed
    now = landed_now(outcomes, positions)
    landed = {}
    for position in positions:
        known = Landed.of(now.get(position, ())).union(before.get(position, Landed()))
        if known:
            landed[position] = known
    if not landed:
        return []
    if source != KINESIS:
        return [
            Checkpoint(_sqs_key(records[p]), {records[p].record_id: known})
            for p, known in landed.items()
        ]
    by_shard: dict[str, list[int]] = {}
    for position in positions:
        by_shard.setdefault(_shard_partition(records[position]), []).append(position)
    return [
        checkpoint
        for partition, shard_positions in by_shard.items()
        for checkpoint in _kinesis_items(partition, records, shard_positions, landed)
    ]


def _kinesis_items(
    partition: str,
    records: Sequence[SourceRecord],
    positions: Sequence[int],
    landed: Mapping[int, Landed],
) -> Iterator[Checkpoint]:
    """The items of one shard: the first keyed by the batch's first record (where a whole
    batch starts again), the next ones, if it would grow too large, by their own first."""
    ordered = sorted(positions, key=lambda p: _sequence_sort(records[p].record_id))
    sort = _sequence_sort(records[ordered[0]].record_id)
    chunk: dict[str, Landed] = {}
    size = 0
    for position in ordered:
        if position not in landed:
            continue
        record_id = records[position].record_id
        entry_size = len(record_id) + len(landed[position].encode()) + 8
        if chunk and size + entry_size > MAX_ITEM_TEXT:
            yield Checkpoint(CheckpointKey(partition, sort), chunk)
            chunk, size, sort = {}, 0, _sequence_sort(record_id)
        chunk[record_id] = landed[position]
        size += entry_size
    if chunk:
        yield Checkpoint(CheckpointKey(partition, sort), chunk)


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
