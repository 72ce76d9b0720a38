"""The pipeline: records -> decode -> plan -> send -> judge -> policy -> batchItemFailures.

``Forwarder`` wires the pure steps to the two I/O edges it is given (a ``LogsSender`` and an
optional ``DeadLetterQueue``), so the handler only builds it once and calls ``forward``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
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
from forwarder.planning import plan_requests
from forwarder.records import DecompressionBudget, RecordDecoder
from forwarder.sending import Deadline, LogsSender
from forwarder.settings import InvalidRecordPolicy, Settings
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
        budget = DecompressionBudget(self._settings.decompression_budget_bytes)
        decoded = [self._decoder.decode(record, i, budget) for i, record in enumerate(records)]
        # Invalid records that will be reported failed are known now: the later records of their
        # group (FIFO message group, Kinesis shard) would be failed anyway, so they are not sent.
        known_failures = (
            [i for i, d in enumerate(decoded) if isinstance(d, InvalidRecord)]
            if self._settings.invalid_records is InvalidRecordPolicy.FAIL
            else []
        )
        held_back = fifo_blocked(records, known_failures)

        groups: dict[Destination, list[LogEvent]] = {}
        for position, item in enumerate(decoded):
            if isinstance(item, DecodedRecord):
                result.counts["EventsSkipped"] += item.skipped_empty
                result.counts["EventsSplit"] += item.split_events
                if item.events and position not in held_back:
                    groups.setdefault(item.destination, []).extend(item.events)
        plan = plan_requests(groups, int(self._clock() * 1000))
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
        letters: list[tuple[int, DeadLetter]] = []
        policy = self._settings.invalid_records
        for position, verdict in enumerate(verdicts):
            if verdict.delivered:
                continue
            reason = verdict.describe()
            if verdict.invalid_reason is not None:
                result.counts["RecordsInvalid"] += 1
            if verdict.deferred_reason is not None:
                result.counts["RecordsDeferred"] += 1
            if verdict.retryable or policy is InvalidRecordPolicy.FAIL:
                failed[position] = reason
            elif policy is InvalidRecordPolicy.DEAD_LETTER:
                letters.append((position, DeadLetter(records[position], reason, source)))
            else:
                result.failures.append(RecordFailure(verdict.record_id, "dropped", reason))
                result.counts["RecordsDropped"] += 1
        if letters:
            self._dead_letter(letters, failed, result)
        for position, first in fifo_blocked(records, failed).items():
            failed[position] = held_back_reason(records[first].record_id)
        for position in sorted(failed):
            record_id = records[position].record_id
            result.failed_ids.append(record_id)
            result.failures.append(RecordFailure(record_id, "failed", failed[position]))
        result.counts["RecordsFailed"] = len(failed)
        return result

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
