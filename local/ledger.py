"""An exact ledger of records: where each one ended up, counted once.

Every event a campaign sends carries a message of its own, so what landed in CloudWatch Logs maps
back to the record that carried it; what reached a dead-letter queue maps back by its payload
(the SQS dead-letter queue after redrive, the function's dead-letter queue) or by its sequence
numbers (the Kinesis on-failure destination, which holds metadata only). ``Ledger.account``
gives each record one fate and counts what went wrong: records lost (neither landed whole nor
dead-lettered), records both landed and dead-lettered, events that landed more than once, and
events nobody sent.

An on-failure record names a range of sequence numbers: Lambda gives up the whole rest of a
batch after the retries, records that already landed included. A record that landed whole and
sits in such a range counts as landed (and is counted apart); one that did not is dead-lettered
there (its data stays in the stream, which the on-failure record points to).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from local.readback import Event, StreamKey
from local.workload import sqs_body


class Outcome(StrEnum):
    LANDED = "landed"
    DEAD_LETTERED = "dead-lettered"
    BOTH = "landed and dead-lettered"
    PARTLY_LANDED = "partly landed"  # some of its events, and no dead letter: a loss
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class Tracked:
    """One record sent: its payload, the messages of the events it must land, and whether it
    should land (``poison`` records should be dead-lettered)."""

    source: str  # "sqs" or "kinesis"
    payload: str | bytes
    messages: tuple[str, ...]
    poison: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """What the dead-letter places hold at the end: SQS message bodies (after redrive), the
    function's dead letters (its JSON bodies), and the on-failure destination's records."""

    redriven: list[str] = field(default_factory=list)
    function: list[str] = field(default_factory=list)
    on_failure: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Account:
    """The ledger's totals. ``ok`` when nothing was lost, no record has two fates, every poison
    record was dead-lettered and nothing landed that was not sent."""

    sent: int
    events_sent: int
    outcomes: Counter[Outcome]
    dead_lettered_by: Counter[str]
    poison: int  # records sent that should be dead-lettered
    valid_dead_lettered: int  # valid records dead-lettered (e.g. Kinesis retries exhausted)
    poison_landed: int
    landed_in_on_failure_range: int  # landed whole, and named by an on-failure record too
    duplicate_events: int  # landed copies beyond the first
    duplicates_by_source: Counter[str]
    unknown_events: int  # landed, but no record carried them
    events_landed: int  # distinct

    @property
    def lost(self) -> int:
        return self.outcomes[Outcome.LOST] + self.outcomes[Outcome.PARTLY_LANDED]

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.outcomes[Outcome.BOTH] == 0
            and self.poison_landed == 0
            and self.unknown_events == 0
            and sum(self.outcomes.values()) == self.sent
        )

    def lines(self) -> list[str]:
        outcomes = ", ".join(f"{n} {o.value}" for o, n in sorted(self.outcomes.items()))
        where = ", ".join(f"{n} {place}" for place, n in sorted(self.dead_lettered_by.items()))
        return [
            f"records sent {self.sent} ({self.events_sent} events, {self.poison} poison): "
            f"{outcomes}",
            f"dead-lettered: {where or 'none'}; valid records among them "
            f"{self.valid_dead_lettered}; poison records landed {self.poison_landed}; landed "
            f"records also inside an on-failure range {self.landed_in_on_failure_range}",
            f"events landed {self.events_landed}, duplicate copies {self.duplicate_events} ("
            + (
                ", ".join(f"{n} {s}" for s, n in sorted(self.duplicates_by_source.items()))
                or "none"
            )
            + "), "
            f"landed but never sent {self.unknown_events}; records lost {self.lost}",
        ]


class Ledger:
    """Records as they are sent, and the account of where they ended up."""

    def __init__(self) -> None:
        self.records: list[Tracked] = []
        self._ids: list[tuple[str, str]] = []

    def sent(self, record: Tracked, identifier: str, shard: str = "") -> None:
        """``identifier``: the SQS message id, or the Kinesis sequence number and its shard."""
        self.records.append(record)
        self._ids.append((shard, identifier))

    def account(self, landed: Mapping[StreamKey, list[Event]], letters: DeadLetters) -> Account:
        owner = {m: i for i, r in enumerate(self.records) for m in r.messages}
        copies: Counter[int] = Counter()  # landed events per record, distinct
        seen: Counter[str] = Counter()
        unknown = 0
        for events in landed.values():
            for _, message in events:
                if message not in owner:
                    unknown += 1
                    continue
                seen[message] += 1
                if seen[message] == 1:
                    copies[owner[message]] += 1
        lettered: Counter[str] = Counter()
        where: dict[int, str] = {}  # records whose payload reached a dead-letter queue
        ranged: set[int] = set()  # records an on-failure record names (metadata only)
        by_payload = {_key(r): i for i, r in enumerate(self.records)}
        for body in letters.redriven:
            if body in by_payload:
                where[by_payload[body]] = "SQS dead-letter queue"
        by_identifier = {identifier: i for i, (_, identifier) in enumerate(self._ids)}
        for body in letters.function:
            document = json.loads(body)
            if "payload" in document:
                index = by_payload.get(str(document["payload"]))
            else:  # a KPL aggregate's bad user records: the letter names its record
                index = by_identifier.get(str(document.get("recordId")))
            if index is not None:
                where[index] = "function's dead-letter queue"
        for body in letters.on_failure:
            ranged.update(self._in_range(json.loads(body)))
        outcomes: Counter[Outcome] = Counter()
        valid_lettered = poison_landed = landed_in_range = 0
        for index, record in enumerate(self.records):
            whole, some = copies[index] == len(record.messages), copies[index] > 0
            if index in ranged and index not in where and not whole:
                # its data stays in the stream, where the on-failure record points
                where[index] = "Kinesis on-failure destination"
            landed_in_range += whole and index in ranged
            outcome = _outcome(whole, some, index in where)
            outcomes[outcome] += 1
            if index in where:
                lettered[where[index]] += 1
                valid_lettered += not record.poison
            poison_landed += record.poison and some
        return Account(
            sent=len(self.records),
            events_sent=sum(len(r.messages) for r in self.records),
            outcomes=outcomes,
            dead_lettered_by=lettered,
            poison=sum(r.poison for r in self.records),
            valid_dead_lettered=valid_lettered,
            poison_landed=poison_landed,
            landed_in_on_failure_range=landed_in_range,
            duplicate_events=sum(n - 1 for n in seen.values()),
            duplicates_by_source=Counter(
                {
                    source: sum(
                        n - 1 for m, n in seen.items() if self.records[owner[m]].source == source
                    )
                    for source in ("sqs", "kinesis")
                }
            )
            - Counter(),
            unknown_events=unknown,
            events_landed=len(seen),
        )

    def _in_range(self, info: Mapping[str, Any]) -> Iterable[int]:
        """The Kinesis records an on-failure record names (by sequence number range)."""
        batch = info["KinesisBatchInfo"]
        first, last = int(batch["startSequenceNumber"]), int(batch["endSequenceNumber"])
        for index, (shard, sequence) in enumerate(self._ids):
            if (
                self.records[index].source == "kinesis"
                and shard in ("", batch["shardId"])
                and first <= int(sequence) <= last
            ):
                yield index


def _outcome(whole: bool, some: bool, lettered: bool) -> Outcome:
    if lettered:
        return Outcome.BOTH if some else Outcome.DEAD_LETTERED
    if whole:
        return Outcome.LANDED
    return Outcome.PARTLY_LANDED if some else Outcome.LOST


def _key(record: Tracked) -> str:
    """A record's payload as its dead letters show it: the SQS body as sent (bytes go as
    base64), the Kinesis data as text, or as base64 when it is not UTF-8 (the function's dead
    letters say ``payloadEncoding: base64`` then)."""
    payload = record.payload
    if isinstance(payload, str) or record.source == "sqs":
        return sqs_body(payload)
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode()
