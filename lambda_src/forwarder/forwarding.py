"""The pipeline: decode -> recall -> hold back -> plan -> send -> judge -> decide -> dead-letter
-> remember -> report.

``Forwarder`` wires the pure steps to the I/O edges it is given (a ``LogsSender``, an optional
``DeadLetterQueue`` and an optional ``CheckpointStore``), so the handler only builds it once and
calls ``forward``. Recall and remember are the delivery checkpoint (``checkpoints``): without a
store they do nothing.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from forwarder.checkpoint_store import CheckpointStore
from forwarder.checkpoints import (
    Landed,
    Ledger,
    Recall,
    RecordMark,
    landed_now,
    lookup,
    partition_of,
    recalled,
    to_remember,
    unchecked_events,
    without_landed,
)
from forwarder.dead_letters import DeadLetter, DeadLetterQueue
from forwarder.fates import Fate, RecordFate, decide, held_back
from forwarder.model import (
    Deadline,
    DecodedRecord,
    Destination,
    InvalidRecord,
    LogEvent,
    RecordVerdict,
    Rejection,
    RequestOutcome,
    SourceRecord,
)
from forwarder.planning import Plan, TimeBounds, plan_requests
from forwarder.records import DecompressionBudget, RecordDecoder
from forwarder.sending import LogsSender
from forwarder.settings import Settings
from forwarder.verdicts import judge

#: The share of the time left to send that planning may spend looking for fewer requests than
#: the contiguous cut; past it the cut stands (valid, perhaps a request or two more).
PLANNING_SHARE = 0.5
#: The share of the time left to send that reading the delivery checkpoint may take: a read
#: starts only if, after it, at least as much is left to send.
READ_SHARE = 0.5
#: How long an invocation waits, at most, for requests abandoned at an earlier deadline to
#: answer (and at most this share of its time to send): what they landed is not sent again.
LATE_WAIT_S, LATE_SHARE = 1.0, 0.25
#: Abandoned requests, and records they landed, kept in mind before the memory is cleared.
_MAX_FOLLOWED = 4096


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record that was not delivered: what became of it and why."""

    record_id: str
    disposition: Fate  # FAILED (in batchItemFailures), DEAD_LETTERED or DROPPED
    reason: str


@dataclass(slots=True)
class ForwardingResult:
    """Everything one invocation did, for the response, the logs and the metrics."""

    source: str
    records: int
    failed_ids: list[str] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    rejected_events: Counter[Rejection] = field(default_factory=Counter)
    entity_rejections: Counter[str] = field(default_factory=Counter)
    #: What went wrong with the delivery checkpoint (it cost no record; perhaps a duplicate).
    checkpoint_problems: list[str] = field(default_factory=list)
    #: Log groups created but not made as ``NEW_LOG_GROUP_*`` asks (their retention not set).
    log_group_problems: list[str] = field(default_factory=list)

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda partial-batch response."""
        return {"batchItemFailures": [{"itemIdentifier": rid} for rid in self.failed_ids]}


class Forwarder:
    """Forwards one batch of records and decides the fate of each one."""

    def __init__(
        self,
        settings: Settings,
        sender: LogsSender,
        dead_letters: DeadLetterQueue | None = None,
        checkpoints: CheckpointStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._decoder = RecordDecoder(settings)
        self._sender = sender
        self._dead_letters = dead_letters
        self._checkpoints = checkpoints
        self._clock = clock
        #: Requests abandoned at a deadline: for each, the identity of its records by position.
        self._in_flight: dict[int, dict[int, tuple[str, str]]] = {}
        #: What such requests landed once they answered, by record identity, for the records'
        #: next delivery to this environment.
        self._landed_late: dict[tuple[str, str], set[int]] = {}

    def forward(
        self, source: str, records: Sequence[SourceRecord], remaining_ms: Callable[[], int]
    ) -> ForwardingResult:
        """Forward ``records``; ``remaining_ms`` is the Lambda context's remaining time."""
        policy = self._settings.invalid_records
        deadline = Deadline(remaining_ms, self._settings.time_reserve_ms)
        now_ms = int(self._clock() * 1000)
        ledger = Ledger()
        full = self._decode(records)
        recall = self._recall(source, records, full, deadline, ledger)
        decoded = recall.decoded
        not_sent = held_back(
            source,
            records,
            decoded,
            TimeBounds.at(now_ms),
            policy,
            checkpointed=self._checkpoints is not None and not ledger.unread,
        )
        plan = plan_requests(
            _groups(decoded, not_sent),
            now_ms,
            in_time=deadline.leaving(PLANNING_SHARE).allows_request,
        )
        outcomes = self._sender.send(plan.requests, deadline)
        self._follow_abandoned(records, outcomes)
        verdicts = judge(records, decoded, plan, outcomes, not_sent)
        fates = decide(records, verdicts, policy)
        letters_not_sent = self._dead_letter(source, records, full, verdicts, fates, remaining_ms)
        if letters_not_sent:
            fates = decide(records, verdicts, policy, letters_not_sent)
        self._remember(source, records, full, fates, recall.before, outcomes, remaining_ms, ledger)
        group_problems = self._sender.take_problems()
        return _report(
            source, records, decoded, plan, outcomes, verdicts, fates, ledger, group_problems
        )

    def _recall(
        self,
        source: str,
        records: Sequence[SourceRecord],
        full: Sequence[DecodedRecord | InvalidRecord],
        deadline: Deadline,
        ledger: Ledger,
    ) -> Recall:
        """The records with the events that landed in an earlier delivery left out: those the
        checkpoint knows, and those that requests abandoned here at a deadline landed since."""
        claims = self._late_claims(records, full, deadline)
        if self._checkpoints is not None:
            wanted = lookup(source, records)
            reads = deadline.leaving(READ_SHARE)
            found = (
                self._checkpoints.read(wanted, lambda: int(reads.seconds_left() * 1000), ledger)
                if wanted
                else []
            )
            for position, marks in recalled(records, found).items():
                claims.setdefault(position, []).extend(marks)
        if not claims:
            return Recall(list(full), {}, 0, ())
        recall = without_landed(full, claims)
        for position in recall.mismatched:
            record = records[position]
            ledger.problems.append(
                f"checkpoint of record {record.record_id} is not of the record as it decodes "
                "now (another version or settings?): ignored"
            )
            ledger.unread.add(partition_of(source, record))
        ledger.events_already_landed = recall.dropped
        return recall

    def _follow_abandoned(
        self, records: Sequence[SourceRecord], outcomes: Sequence[RequestOutcome]
    ) -> None:
        """Note whose events each request abandoned at the deadline carries: it may land
        yet, and the records come back."""
        if len(self._in_flight) > _MAX_FOLLOWED:
            self._in_flight.clear()
        for outcome in outcomes:
            if outcome.failure is Rejection.OUT_OF_TIME and outcome.ambiguous:
                positions = {event.record for event in outcome.request.events}
                self._in_flight[id(outcome.request)] = {
                    p: (records[p].source_arn, records[p].record_id) for p in positions
                }

    def _late_claims(
        self,
        records: Sequence[SourceRecord],
        full: Sequence[DecodedRecord | InvalidRecord],
        deadline: Deadline,
    ) -> dict[int, list[RecordMark]]:
        """What requests abandoned at an earlier deadline landed of ``records``, once they
        answered (waiting for them a little: they were on their way). The same environment
        decodes a record the same way, so a claim is made of the record as it decodes now."""
        if self._in_flight:
            wait_s = min(LATE_WAIT_S, deadline.seconds_left() * LATE_SHARE)
            for outcome in self._sender.settle(wait_s):
                identities = self._in_flight.pop(id(outcome.request), None)
                if identities is None:
                    continue
                for position, ordinals in landed_now([outcome], identities).items():
                    self._landed_late.setdefault(identities[position], set()).update(ordinals)
            if len(self._landed_late) > _MAX_FOLLOWED:
                self._landed_late.clear()
        claims: dict[int, list[RecordMark]] = {}
        for position, record in enumerate(records):
            late = self._landed_late.get((record.source_arn, record.record_id))
            item = full[position]
            if late and isinstance(item, DecodedRecord):
                claims[position] = [RecordMark.of(Landed.of(late), item)]
        return claims

    def _remember(
        self,
        source: str,
        records: Sequence[SourceRecord],
        full: Sequence[DecodedRecord | InvalidRecord],
        fates: Sequence[RecordFate],
        before: Mapping[int, Landed],
        outcomes: Sequence[RequestOutcome],
        remaining_ms: Callable[[], int],
        ledger: Ledger,
    ) -> None:
        """Write what landed of the records reported failed, before the response."""
        if self._checkpoints is None:
            return
        token = uuid.uuid4().hex[:12]  # this invocation's Kinesis items, beside the others
        remember = to_remember(source, records, full, fates, before, outcomes, ledger.unread, token)
        ledger.events_unremembered += remember.unremembered
        if remember.checkpoints:
            self._checkpoints.write(remember.checkpoints, remaining_ms, ledger)

    def _decode(self, records: Sequence[SourceRecord]) -> list[DecodedRecord | InvalidRecord]:
        budget = DecompressionBudget(
            self._settings.decompression_budget_bytes,
            self._settings.decompression_allowance_bytes,
        )
        return [self._decoder.decode(record, i, budget) for i, record in enumerate(records)]

    def _dead_letter(
        self,
        source: str,
        records: Sequence[SourceRecord],
        full: Sequence[DecodedRecord | InvalidRecord],
        verdicts: Sequence[RecordVerdict],
        fates: Sequence[RecordFate],
        remaining_ms: Callable[[], int],
    ) -> dict[int, str]:
        """Send the dead letters ``fates`` name; the positions of those not sent, and why."""
        positions = [p for p, fate in enumerate(fates) if fate.fate is Fate.DEAD_LETTERED]
        if not positions:
            return {}
        assert self._dead_letters is not None  # Settings guarantee a queue for this policy
        letters = [
            _letter_of(source, records[p], full[p], verdicts[p], fates[p].reason) for p in positions
        ]
        not_sent = self._dead_letters.send(letters, remaining_ms)
        return {
            p: not_sent[records[p].record_id] for p in positions if records[p].record_id in not_sent
        }


def _letter_of(
    source: str,
    record: SourceRecord,
    item: DecodedRecord | InvalidRecord,
    verdict: RecordVerdict,
    reason: str,
) -> DeadLetter:
    """A record's dead letter: of a KPL aggregate whose only fault is user records that did
    not decode (the rest landed), those user records; otherwise the record whole."""
    if isinstance(item, DecodedRecord) and item.invalid_parts and not verdict.rejections:
        return DeadLetter(record, reason, source, item.invalid_parts)
    return DeadLetter(record, reason, source)


def _groups(
    decoded: Sequence[DecodedRecord | InvalidRecord], held_back: Mapping[int, int]
) -> dict[Destination, list[LogEvent]]:
    """The events to plan, by destination, in arrival order; none of the held-back records."""
    groups: dict[Destination, list[LogEvent]] = {}
    for position, item in enumerate(decoded):
        if position in held_back or not isinstance(item, DecodedRecord):
            continue
        for destination, events in item.parts():
            groups.setdefault(destination, []).extend(events)
    return groups


def _report(
    source: str,
    records: Sequence[SourceRecord],
    decoded: Sequence[DecodedRecord | InvalidRecord],
    plan: Plan,
    outcomes: Sequence[RequestOutcome],
    verdicts: Sequence[RecordVerdict],
    fates: Sequence[RecordFate],
    ledger: Ledger,
    log_group_problems: Sequence[str] = (),
) -> ForwardingResult:
    """The response, the failures in batch order and the counts, from what each step did."""
    result = ForwardingResult(source, len(records))
    counts = result.counts
    result.log_group_problems = list(log_group_problems)
    counts["LogGroupRetentionFailures"] += len(log_group_problems)
    counts["EventsAlreadyLanded"] += ledger.events_already_landed
    counts["CheckpointItemsRead"] += ledger.items_read
    counts["CheckpointItemsWritten"] += ledger.items_written
    counts["CheckpointProblems"] += len(ledger.problems)
    counts["EventsUnremembered"] += ledger.events_unremembered
    counts["EventsUnchecked"] += unchecked_events(source, records, outcomes, ledger.unread)
    result.checkpoint_problems = ledger.problems
    for item in decoded:
        if isinstance(item, DecodedRecord):
            counts["EventsSkipped"] += item.skipped_empty
            counts["EventsSplit"] += item.split_events
            counts["UserRecordsReceived"] += item.user_records
    counts["RequestsLowerBound"] += plan.lower_bound
    for outcome in outcomes:
        if outcome.failure is not Rejection.OUT_OF_TIME:
            counts["RequestsSent"] += 1
            counts["BytesSent"] += outcome.request.size
        if outcome.entity_rejection:
            result.entity_rejections[outcome.entity_rejection] += 1
        if outcome.ambiguous:
            counts["EventsAmbiguous"] += len(outcome.request.events)
    for verdict in verdicts:
        counts["EventsForwarded"] += verdict.accepted_events
        result.rejected_events.update(verdict.rejections)
        counts["RecordsInvalid"] += verdict.invalid_reason is not None
        counts["RecordsDeferred"] += verdict.deferred_reason is not None
    dead_lettered_or_dropped: list[RecordFailure] = []
    for record, fate in zip(records, fates, strict=True):
        if fate.fate is Fate.FAILED:
            result.failed_ids.append(record.record_id)
            result.failures.append(RecordFailure(record.record_id, fate.fate, fate.reason))
        elif fate.fate is not Fate.DELIVERED:
            dead_lettered_or_dropped.append(RecordFailure(record.record_id, fate.fate, fate.reason))
    result.failures[:0] = dead_lettered_or_dropped
    counts["RecordsFailed"] = len(result.failed_ids)
    counts["RecordsDeadLettered"] += sum(f.fate is Fate.DEAD_LETTERED for f in fates)
    counts["RecordsDropped"] += sum(f.fate is Fate.DROPPED for f in fates)
    return result
