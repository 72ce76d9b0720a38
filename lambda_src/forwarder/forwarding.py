"""The pipeline: records -> decode -> plan -> send -> judge -> policy -> batchItemFailures.

``Forwarder`` wires the pure steps to the two I/O edges it is given (a ``LogsSender`` and an
optional ``DeadLetterQueue``), so the handler only builds it once and calls ``forward``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field

from forwarder.dead_letters import DeadLetter, DeadLetterQueue
from forwarder.model import (
    DecodedRecord,
    Destination,
    InvalidRecord,
    LogEvent,
    Rejection,
    SourceRecord,
    held_back_reason,
)
from forwarder.planning import Plan, plan_requests
from forwarder.records import DecompressionBudget, RecordDecoder
from forwarder.sending import Deadline, LogsSender
from forwarder.settings import InvalidRecordPolicy, Settings
from forwarder.sources import KINESIS
from forwarder.verdicts import fifo_blocked, judge


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record that was not delivered: what became of it and why."""

    record_id: str
    disposition: str  # "failed" (in batchItemFailures), "dead-lettered" or "dropped"
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._decoder = RecordDecoder(settings)
        self._sender = sender
        self._dead_letters = dead_letters
        self._clock = clock

    def forward(
        self, source: str, records: Sequence[SourceRecord], remaining_ms: Callable[[], int]
    ) -> ForwardingResult:
        """Forward ``records``; ``remaining_ms`` is the Lambda context's remaining time."""
        result = ForwardingResult(source, len(records))
        budget = DecompressionBudget(
            self._settings.decompression_budget_bytes,
            self._settings.decompression_allowance_bytes,
        )
        decoded = [self._decoder.decode(record, i, budget) for i, record in enumerate(records)]
        for item in decoded:
            if isinstance(item, DecodedRecord):
                result.counts["EventsSkipped"] += item.skipped_empty
                result.counts["EventsSplit"] += item.split_events
        plan, held_back = self._plan(source, records, decoded)
        outcomes = self._sender.send(
            plan.requests, Deadline(remaining_ms, self._settings.time_reserve_ms)
        )
        verdicts = judge(records, decoded, plan, outcomes, held_back)

        for outcome in outcomes:
            if outcome.failure is not Rejection.OUT_OF_TIME:
                result.counts["RequestsSent"] += 1
                result.counts["BytesSent"] += outcome.request.size
            if outcome.entity_rejection:
                result.entity_rejections[outcome.entity_rejection] += 1
        result.counts["RequestsLowerBound"] += plan.lower_bound
        result.counts["EventsForwarded"] += sum(v.accepted_events for v in verdicts)
        for verdict in verdicts:
            if verdict.rejections:
                result.rejected_events.update(verdict.rejections)

        failed: dict[int, str] = {}
        permanent: dict[int, str] = {}
        for position, verdict in enumerate(verdicts):
            if verdict.delivered:
                continue
            reason = verdict.describe()
            if verdict.invalid_reason is not None:
                result.counts["RecordsInvalid"] += 1
            if verdict.deferred_reason is not None:
                result.counts["RecordsDeferred"] += 1
            if self._reported_failed(verdict.retryable):
                failed[position] = reason
            else:
                permanent[position] = reason
        # Failures known only now (throttling after botocore's retries, a request out of time...)
        # fail the later records of their group too, sent or not: Lambda delivers them again.
        _hold_back(records, failed)
        letters: list[tuple[int, DeadLetter]] = []
        for position, reason in permanent.items():
            if position in failed:  # held back: dead-lettered or dropped when it comes back
                continue
            if self._settings.invalid_records is InvalidRecordPolicy.DEAD_LETTER:
                letters.append((position, DeadLetter(records[position], reason, source)))
            else:
                result.failures.append(
                    RecordFailure(records[position].record_id, "dropped", reason)
                )
                result.counts["RecordsDropped"] += 1
        if letters:
            self._dead_letter(letters, failed, result)
            # A dead letter that could not be sent fails its record, and so the later records
            # of its group, but for those already dead-lettered or dropped.
            _hold_back(records, failed, settled=permanent.keys() - failed.keys())
        for position in sorted(failed):
            record_id = records[position].record_id
            result.failed_ids.append(record_id)
            result.failures.append(RecordFailure(record_id, "failed", failed[position]))
        result.counts["RecordsFailed"] = len(failed)
        return result

    def _plan(
        self,
        source: str,
        records: Sequence[SourceRecord],
        decoded: Sequence[DecodedRecord | InvalidRecord],
    ) -> tuple[Plan, dict[int, int]]:
        """The requests to send, and the records held back: those that follow, in their ordered
        group (``SourceRecord.message_group``), a record known before sending to be reported
        failed. Lambda delivers them again after that failure, so sending them now would only
        cost calls and land their events twice. Held-back records map to the position of the
        first known failure of their group.

        Known before sending, on SQS FIFO: records deferred by the decompression budget (under
        any policy), invalid records under ``INVALID_RECORDS=fail``, and records with events the
        planner judged without sending (too new: always; too old or expired: under ``fail``).
        The last are known only once planned, so the batch is planned again, without the
        records they hold back, only when there are such records.

        On Kinesis, only deferred records hold the rest of the shard back: they get through on
        the retry. A record that fails for good (invalid under ``fail``, or too new for every
        retry) would, once Lambda's retries run out, take the rest of its batch to the
        on-failure destination, which keeps only their sequence numbers; sent now, those records
        land (and land again on each retry: duplicates, never losses).
        """
        if source == KINESIS:
            deferred = {
                position
                for position, item in enumerate(decoded)
                if isinstance(item, InvalidRecord) and item.retryable
            }
            held_back = fifo_blocked(records, deferred)
            return plan_requests(_groups(decoded, held_back), int(self._clock() * 1000)), held_back
        known = {
            position
            for position, item in enumerate(decoded)
            if isinstance(item, InvalidRecord) and self._reported_failed(item.retryable)
        }
        held_back = fifo_blocked(records, known)
        now_ms = int(self._clock() * 1000)
        plan = plan_requests(_groups(decoded, held_back), now_ms)
        prejudged = {
            event.record
            for event, reason in plan.prejudged
            if self._reported_failed(reason.retryable)
        }
        if prejudged:
            blocked = fifo_blocked(records, known | prejudged)
            if blocked.keys() != held_back.keys():  # a superset: held-back records have none
                plan = plan_requests(_groups(decoded, blocked), now_ms)
            held_back = blocked  # the first failure of a group may now be an earlier record
        return plan, held_back

    def _reported_failed(self, retryable: bool) -> bool:
        """Whether a record failing for a reason of this kind is reported in batchItemFailures
        (rather than dead-lettered or dropped)."""
        return retryable or self._settings.invalid_records is InvalidRecordPolicy.FAIL

    def _dead_letter(
        self,
        letters: list[tuple[int, DeadLetter]],
        failed: dict[int, str],
        result: ForwardingResult,
    ) -> None:
        assert self._dead_letters is not None  # Settings guarantee a queue for this policy
        not_sent = self._dead_letters.send([letter for _, letter in letters])
        for position, letter in letters:
            record_id = letter.record.record_id
            if record_id in not_sent:
                failed[position] = (
                    f"{letter.reason}; and could not be dead-lettered: " + (not_sent[record_id])
                )
            else:
                result.failures.append(RecordFailure(record_id, "dead-lettered", letter.reason))
                result.counts["RecordsDeadLettered"] += 1


def _groups(
    decoded: Sequence[DecodedRecord | InvalidRecord], held_back: Mapping[int, int]
) -> dict[Destination, list[LogEvent]]:
    """The events to plan, by destination, in arrival order; none of the held-back records."""
    groups: dict[Destination, list[LogEvent]] = {}
    for position, item in enumerate(decoded):
        if position in held_back or not isinstance(item, DecodedRecord):
            continue
        if item.destination is not None and item.events:
            groups.setdefault(item.destination, []).extend(item.events)
    return groups


def _hold_back(
    records: Sequence[SourceRecord], failed: dict[int, str], settled: Set[int] = frozenset()
) -> None:
    """Add to ``failed`` the records that follow a failed record of their group, but for the
    ``settled`` ones (dead-lettered or dropped: their fate is told already) and those failed
    already (they keep their own reason)."""
    for position, first in fifo_blocked(records, failed).items():
        if position not in settled and position not in failed:
            failed[position] = held_back_reason(records[first].record_id)
