"""Judge: map what happened to events back to the records that carried them.

Pure: no I/O. A record is delivered only when every one of its events was accepted; otherwise its
verdict counts the lost events by reason. ``fifo_blocked`` is the shape of an ordered group (an
SQS FIFO message group or a Kinesis shard: once a record fails, Lambda delivers every later one
again); ``fates`` applies it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from forwarder.model import (
    DecodedRecord,
    InvalidRecord,
    RecordVerdict,
    RequestOutcome,
    SourceRecord,
)
from forwarder.planning import Plan


def judge(
    records: Sequence[SourceRecord],
    decoded: Sequence[DecodedRecord | InvalidRecord],
    plan: Plan,
    outcomes: Iterable[RequestOutcome],
    held_back: Mapping[int, int] | None = None,
) -> list[RecordVerdict]:
    """One verdict per record, in batch order. ``held_back`` maps the positions of records not
    sent because an earlier record of their group was known to fail (``fifo_blocked``) to the
    position of that failure; their verdicts get ``blocked_by``."""
    verdicts = [RecordVerdict(record.record_id) for record in records]
    for verdict, result in zip(verdicts, decoded, strict=True):
        if isinstance(result, InvalidRecord):
            if result.retryable:
                verdict.deferred_reason = result.reason
            else:
                verdict.invalid_reason = result.reason
        else:  # an aggregate with user records that did not decode is invalid, sent or not
            verdict.invalid_reason = result.invalid_reason
    for position, first in (held_back or {}).items():
        verdicts[position].blocked_by = records[first].record_id
    for event, reason in plan.prejudged:
        rejections = verdicts[event.record].rejections
        rejections[reason] = rejections.get(reason, 0) + 1
    for outcome in outcomes:
        if outcome.fully_accepted:  # the usual case: no per-event lookup
            for event in outcome.request.events:
                verdicts[event.record].accepted_events += 1
            continue
        for index, event in enumerate(outcome.request.events):
            verdict = verdicts[event.record]
            rejection = outcome.rejection_of(index)
            if rejection is None:
                verdict.accepted_events += 1
            else:
                verdict.rejections[rejection] = verdict.rejections.get(rejection, 0) + 1
    return verdicts


def fifo_blocked(records: Sequence[SourceRecord], failed: Iterable[int]) -> dict[int, int]:
    """Positions of records that follow a failed record of the same ordered group
    (``SourceRecord.message_group``: an SQS FIFO message group or a Kinesis shard), each mapped
    to the position of the first failure of its group. A later record that fails itself is
    blocked too: Lambda delivers it again after the first failure whatever it holds, so none of
    its events is sent now. Records without a group (standard queues) never block nor are
    blocked."""
    failed = set(failed)
    first_failure: dict[str, int] = {}
    blocked: dict[int, int] = {}
    for position, record in enumerate(records):
        group = record.message_group
        if group is None:
            continue
        if group in first_failure:
            blocked[position] = first_failure[group]
        elif position in failed:
            first_failure[group] = position
    return blocked
