"""Decide: which records are sent, and what becomes of every record. Pure: no I/O.

A record ends delivered, reported failed (in ``batchItemFailures``: the source delivers it
again), dead-lettered or dropped. Three rules decide it, each here once:

- **The policy.** A failure that may succeed later (throttling, too new, the decompression
  budget spent, held back) is always reported failed. A permanent one (invalid, too old, too far
  ahead, a refused request...) is reported failed under ``INVALID_RECORDS=fail``, dead-lettered
  under ``dead-letter`` and dropped under ``drop`` (``reported_failed``).
- **The ordered-group rule.** Once a record of an SQS FIFO message group or a Kinesis shard is
  reported failed, Lambda delivers every later record of that group again, so each of them is
  reported failed too ("held back"), whatever it holds, but for those whose fate is settled
  already: a sent dead letter or a drop is not undone.
- **What is known before sending** holds records back from the plan (``held_back``), so that
  their events are not sent now to land twice when Lambda delivers them again.

``decide`` is called once the requests are sent: its dead-lettered fates are the letters to
send. It is called again, with the letters that could not be sent, only when there are some.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from forwarder.model import (
    DecodedRecord,
    InvalidRecord,
    RecordVerdict,
    SourceRecord,
    held_back_reason,
)
from forwarder.planning import TimeBounds
from forwarder.settings import InvalidRecordPolicy
from forwarder.sources import KINESIS
from forwarder.verdicts import fifo_blocked


class Fate(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"  # in batchItemFailures
    DEAD_LETTERED = "dead-lettered"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class RecordFate:
    """What becomes of one record, and why (empty when delivered)."""

    fate: Fate
    reason: str = ""


DELIVERED = RecordFate(Fate.DELIVERED)


def reported_failed(retryable: bool, policy: InvalidRecordPolicy) -> bool:
    """Whether a record failing for a reason of this kind is reported in batchItemFailures."""
    return retryable or policy is InvalidRecordPolicy.FAIL


def held_back(
    source: str,
    records: Sequence[SourceRecord],
    decoded: Sequence[DecodedRecord | InvalidRecord],
    bounds: TimeBounds,
    policy: InvalidRecordPolicy,
    *,
    checkpointed: bool = False,
) -> dict[int, int]:
    """The records not to send, each mapped to the first known failure of its group: those
    that follow, in their ordered group, a record known before sending to be reported failed.

    On SQS FIFO that is a record the budget deferred, an invalid record or an event the time
    bounds reject, each when the policy reports it failed. On Kinesis only a deferred record
    holds the rest of its shard back (it gets through on the retry): a record that fails for
    good would, once Lambda's retries run out, take the rest of its batch to the on-failure
    destination, which keeps only their sequence numbers, so the records after it are sent.
    With the delivery checkpoint (``checkpointed``) nothing is held back on Kinesis: what lands
    behind a failure is remembered, and not sent again when Lambda retries the shard.
    """
    if checkpointed and source == KINESIS:
        return {}
    known: set[int] = set()
    for position, item in enumerate(decoded):
        if records[position].message_group is None:
            continue  # a standard queue: nothing is held back
        if isinstance(item, InvalidRecord):
            if item.retryable if source == KINESIS else reported_failed(item.retryable, policy):
                known.add(position)
        elif source != KINESIS and any(
            (reason := bounds.rejection(event.timestamp)) is not None
            and reported_failed(reason.retryable, policy)
            for event in item.every_event()
        ):
            known.add(position)
    return fifo_blocked(records, known)


def decide(
    records: Sequence[SourceRecord],
    verdicts: Sequence[RecordVerdict],
    policy: InvalidRecordPolicy,
    letters_not_sent: Mapping[int, str] | None = None,
) -> list[RecordFate]:
    """The fate of every record, in batch order. ``letters_not_sent`` maps the positions of
    dead letters that could not be sent (from an earlier call's fates) to why: each fails its
    record, and so the later records of its group but for those settled already."""
    fates = [_own_fate(verdict, policy) for verdict in verdicts]
    _fail_the_rest_of_each_group(records, fates)
    if letters_not_sent:
        for position, why in letters_not_sent.items():
            assert fates[position].fate is Fate.DEAD_LETTERED, "only a letter can fail to send"
            reason = f"{fates[position].reason}; and could not be dead-lettered: {why}"
            fates[position] = RecordFate(Fate.FAILED, reason)
        _fail_the_rest_of_each_group(records, fates, letters_sent=True)
    return fates


def _own_fate(verdict: RecordVerdict, policy: InvalidRecordPolicy) -> RecordFate:
    if verdict.delivered:
        return DELIVERED
    if reported_failed(verdict.retryable, policy):
        return RecordFate(Fate.FAILED, verdict.describe())
    if policy is InvalidRecordPolicy.DEAD_LETTER:
        return RecordFate(Fate.DEAD_LETTERED, verdict.describe())
    return RecordFate(Fate.DROPPED, verdict.describe())


def _fail_the_rest_of_each_group(
    records: Sequence[SourceRecord], fates: list[RecordFate], *, letters_sent: bool = False
) -> None:
    """Report failed every record after a failed one of its group, but for those failed
    already (they keep their own reason). Before the letters are sent, a record that follows a
    failure is never dead-lettered or dropped: it is judged again when it comes back. After,
    a sent letter (or a drop) is settled and stays."""
    failed = [position for position, fate in enumerate(fates) if fate.fate is Fate.FAILED]
    replaced = (
        (Fate.DELIVERED,) if letters_sent else (Fate.DELIVERED, Fate.DEAD_LETTERED, Fate.DROPPED)
    )
    for position, first in fifo_blocked(records, failed).items():
        if fates[position].fate in replaced:
            fates[position] = RecordFate(Fate.FAILED, held_back_reason(records[first].record_id))
