"""The plain values that flow through the function: records in, events, requests, outcomes.

Every step of the pipeline takes and returns these frozen values, so each step can be tested on
its own with no endpoint at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record of the Lambda event, reduced to what forwarding needs.

    ``record_id`` is what ``batchItemFailures`` reports (SQS ``messageId``, Kinesis
    ``sequenceNumber``); ``payload`` is the SQS body (text) or the decoded Kinesis data (bytes);
    ``arrival_ms`` is the timestamp used for events that carry none.

    ``message_group`` names an ordered group whose later records Lambda delivers again once one of
    them is reported failed: an SQS FIFO message group (``MessageGroupId``) or a Kinesis shard
    (Lambda retries a shard's batch from its lowest reported sequence number). None for records
    of a standard queue, which are retried one by one.
    """

    record_id: str
    payload: str | bytes
    arrival_ms: int
    message_group: str | None = None
    envelope_error: str | None = None  # the envelope itself was unreadable (e.g. bad base64)
    #: The queue's or the stream's ARN (``eventSourceARN``): with ``record_id``, the record's
    #: identity across deliveries.
    source_arn: str = ""
    #: SQS ``ApproximateReceiveCount``: above 1 the record may have landed in part before. None
    #: where a delivery cannot be told from a redelivery (Kinesis).
    receive_count: int | None = None


@dataclass(frozen=True, slots=True)
class Entity:
    """The PutLogEvents ``entity``, hashable so that it can be part of a destination."""

    key_attributes: tuple[tuple[str, str], ...]
    attributes: tuple[tuple[str, str], ...] = ()

    def to_api(self) -> dict[str, dict[str, str]]:
        api = {"keyAttributes": dict(self.key_attributes)}
        if self.attributes:
            api["attributes"] = dict(self.attributes)
        return api


@dataclass(frozen=True, slots=True)
class Destination:
    """Where events go: one log stream of one log group, with an optional entity."""

    log_group: str
    log_stream: str
    entity: Entity | None = None


class LogEvent(NamedTuple):
    """One CloudWatch Logs event. ``size`` is its weight in a batch (UTF-8 bytes + 26);
    ``record`` is the position of the source record in the batch, to map outcomes back;
    ``ordinal`` its place among the record's events in decode order, the same on every delivery
    (the delivery checkpoint names landed events by it).

    A named tuple rather than a frozen dataclass: a batch makes tens of thousands of them, and a
    tuple is built several times faster."""

    timestamp: int
    message: str
    size: int
    record: int
    ordinal: int


@dataclass(frozen=True, slots=True)
class InvalidPart:
    """A user record of a KPL aggregate that did not decode: its sub-sequence number, partition
    key and data (what its dead letter carries), and why."""

    sub_sequence: int
    partition_key: str
    data: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """A record that decoded: its destination and events, in arrival order. A record with
    nothing to send (a subscription CONTROL_MESSAGE, only empty messages) has no events.

    A record of newline-delimited JSON, or a KPL aggregate, may name several destinations:
    ``destination`` and ``events`` are its first line's, ``elsewhere`` the other destinations'
    (each once, in order of first appearance). ``parts`` gives them all.

    ``user_records``: how many user records an aggregate holds (0: the record is no aggregate);
    ``invalid_parts``: those that did not decode. The others' events are sent; the record is
    invalid (``invalid_reason``), and its dead letters are those parts."""

    destination: Destination | None
    events: list[LogEvent]
    skipped_empty: int = 0
    split_events: int = 0
    elsewhere: tuple[tuple[Destination, list[LogEvent]], ...] = ()
    user_records: int = 0
    invalid_parts: tuple[InvalidPart, ...] = ()

    @property
    def invalid_reason(self) -> str | None:
        """Why the record is invalid although it decoded: its first invalid user record."""
        if not self.invalid_parts:
            return None
        first, more = self.invalid_parts[0], len(self.invalid_parts) - 1
        also = f" (and {more} more user record{'s' * (more > 1)})" if more else ""
        return f"user record {first.sub_sequence} of the KPL aggregate: {first.reason}{also}"

    def parts(self) -> Iterator[tuple[Destination, list[LogEvent]]]:
        """Every destination of the record with its events; none without events."""
        if self.destination is not None and self.events:
            yield self.destination, self.events
        yield from self.elsewhere

    def every_event(self) -> Iterator[LogEvent]:
        for _, events in self.parts():
            yield from events


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    """A record that cannot be forwarded, with a reason a person can act on. ``retryable``
    records may succeed in another batch (the batch's decompression budget was spent)."""

    reason: str
    retryable: bool = False


class Rejection(StrEnum):
    """Why an event was not accepted. ``retryable`` decides between retry and the invalid policy."""

    TOO_NEW = "too-new"  # ahead of what the service accepts, but not for long: retried
    TOO_FAR_AHEAD = "too-far-ahead"  # acceptable only after the source stops retrying it
    TOO_OLD = "too-old"
    EXPIRED = "expired"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    OUT_OF_TIME = "out-of-time"
    MISSING_DESTINATION = "missing-destination"
    ACCESS_DENIED = "access-denied"
    REFUSED = "refused"

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {Rejection.TOO_NEW, Rejection.THROTTLED, Rejection.UNAVAILABLE, Rejection.OUT_OF_TIME}
)


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One PutLogEvents request: events in chronological order, ``size`` in batch bytes."""

    destination: Destination
    events: tuple[LogEvent, ...]
    size: int


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What the service did with one request.

    ``failure`` set: no event of the request was accepted. Otherwise the request was accepted
    except for the events named by the service's ``rejectedLogEventsInfo`` indexes
    (``too_new_start`` inclusive; ``too_old_end`` and ``expired_end`` exclusive).

    ``ambiguous``: an attempt of the request got no answer (the connection lost once it was on
    its way, a read timeout, still in flight at the deadline): its events may have landed even
    if it failed, and twice if a later attempt was accepted.
    """

    request: PlannedRequest
    failure: Rejection | None = None
    detail: str = ""
    too_new_start: int | None = None
    too_old_end: int | None = None
    expired_end: int | None = None
    entity_rejection: str | None = None
    ambiguous: bool = False

    @property
    def fully_accepted(self) -> bool:
        return self.failure is None and (
            self.too_new_start is None and self.too_old_end is None and self.expired_end is None
        )

    def rejection_of(self, index: int) -> Rejection | None:
        """The reason event ``index`` of the request was not accepted, or None if it was."""
        if self.failure is not None:
            return self.failure
        if self.too_old_end is not None and index < self.too_old_end:
            return Rejection.TOO_OLD
        if self.expired_end is not None and index < self.expired_end:
            return Rejection.EXPIRED
        if self.too_new_start is not None and index >= self.too_new_start:
            return Rejection.TOO_NEW
        return None


@dataclass(slots=True)
class RecordVerdict:
    """The fate of one record: delivered, or failed with the reasons of its lost events."""

    record_id: str
    invalid_reason: str | None = None
    blocked_by: str | None = None  # held back: the id of the first failed record of its group
    deferred_reason: str | None = None  # not decoded in this batch; may succeed in another
    rejections: dict[Rejection, int] = field(default_factory=dict)
    accepted_events: int = 0

    @property
    def delivered(self) -> bool:
        return (
            self.invalid_reason is None
            and self.blocked_by is None
            and self.deferred_reason is None
            and not self.rejections
        )

    @property
    def retryable(self) -> bool:
        """A failure that may succeed later (throttling, too new...): always reported failed."""
        return (
            self.blocked_by is not None
            or self.deferred_reason is not None
            or any(r.retryable for r in self.rejections)
        )

    def describe(self) -> str:
        """One sentence a person can act on. A held-back record is described as such even when
        it is invalid: it is reported failed, and what its invalidity leads to comes later."""
        if self.blocked_by is not None:
            return held_back_reason(self.blocked_by)
        if self.invalid_reason is not None:
            return self.invalid_reason
        if self.deferred_reason is not None:
            return self.deferred_reason
        lost = ", ".join(f"{n} {reason.value}" for reason, n in sorted(self.rejections.items()))
        return f"events not accepted: {lost}; {self.accepted_events} accepted"


def held_back_reason(first_failed: str) -> str:
    """Why a record was reported failed because an earlier record of its group failed."""
    return f"held back: record {first_failed} of the same message group or shard failed first"


@dataclass(frozen=True, slots=True)
class Deadline:
    """The invocation's time budget: ``remaining_ms`` is the Lambda context's clock, and
    ``reserve_ms`` is kept back for dead-lettering, the response and the metrics."""

    remaining_ms: Callable[[], int]
    reserve_ms: int

    def allows_request(self) -> bool:
        return self.remaining_ms() > self.reserve_ms

    def seconds_left(self) -> float:
        return max(0.0, (self.remaining_ms() - self.reserve_ms) / 1000)

    def leaving(self, share: float) -> Deadline:
        """A deadline that passes while ``share`` of the time now left (beyond the reserve)
        still remains: for a step that must leave time to the steps after it."""
        left = max(0, self.remaining_ms() - self.reserve_ms)
        return Deadline(self.remaining_ms, self.reserve_ms + int(left * share))
