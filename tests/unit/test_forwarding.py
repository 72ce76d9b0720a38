"""The pipeline with fake edges: which records are held back before sending, which are sent, and
how each one is reported.

Within an ordered group (an SQS FIFO message group, a Kinesis shard), Lambda delivers again the
records that follow a failed one; so once a record is known to fail, the later records of its group
are reported failed, "held back". On SQS FIFO they are not sent at all; on Kinesis they are not
sent only behind a record deferred by the decompression budget (it gets through on the retry):
behind a record that fails for good they are sent, so that they land even when Lambda's retries
run out and give the rest of the batch up to the on-failure destination.
"""

from __future__ import annotations

import base64
import gzip
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder import forwarding
from forwarder.dead_letters import DeadLetter
from forwarder.forwarding import Forwarder, ForwardingResult
from forwarder.limits import MAX_AGE_MS
from forwarder.model import PlannedRequest, Rejection, RequestOutcome, SourceRecord
from forwarder.sending import Deadline
from forwarder.settings import InvalidRecordPolicy, Settings
from forwarder.sources import source_records
from local.aggregation import aggregate
from local.lambda_events import kinesis_event, many_events, one_event, sqs_event

GROUP = "/app/orders"
HOUR_MS = 3_600_000
#: Past the 2 h bound and its clock-skew margin, within the retry horizon: retryable too new.
SOON_TOO_NEW_MS = 2 * HOUR_MS + 20 * 60_000
FAIL, DEAD_LETTER, DROP = (
    InvalidRecordPolicy.FAIL,
    InvalidRecordPolicy.DEAD_LETTER,
    InvalidRecordPolicy.DROP,
)


class FakeSender:
    """Accepts every request, or fails those ``fail`` names a reason for; keeps what it got."""

    def __init__(self, fail: Callable[[PlannedRequest], Rejection | None] = lambda _: None) -> None:
        self.fail = fail
        self.requests: list[PlannedRequest] = []

    def send(self, requests: Sequence[PlannedRequest], deadline: Deadline) -> list[RequestOutcome]:
        self.requests.extend(requests)
        return [RequestOutcome(request, self.fail(request)) for request in requests]

    @property
    def messages(self) -> list[str]:
        return sorted(event.message for request in self.requests for event in request.events)

    def take_problems(self) -> list[str]:
        return []


class FakeDeadLetters:
    """Takes every dead letter."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def send(self, letters: Sequence[DeadLetter], remaining_ms: Any = None) -> dict[str, str]:
        self.letters.extend(letters)
        return {}


def now_ms() -> int:
    return int(time.time() * 1000)


def forward(
    event: dict[str, Any],
    policy: InvalidRecordPolicy = FAIL,
    sender: FakeSender | None = None,
    **overrides: Any,
) -> tuple[ForwardingResult, FakeSender, FakeDeadLetters, list[SourceRecord]]:
    """Forward a Lambda event, shaped as Lambda sends it, with fake edges."""
    settings_ = Settings(
        allowed_log_groups=("/app/*",),
        invalid_records=policy,
        dead_letter_queue_url="https://sqs.example/dlq" if policy is DEAD_LETTER else None,
        **overrides,
    )
    sender = sender or FakeSender()
    dead_letters = FakeDeadLetters()
    source, records = source_records(event)
    forwarder = Forwarder(settings_, sender, dead_letters)  # type: ignore[arg-type]
    return forwarder.forward(source, records, lambda: 60_000), sender, dead_letters, records


def bodies(*messages: str, at: int | None = None) -> list[str]:
    stamp = now_ms() if at is None else at
    return [one_event(GROUP, "s", message, stamp + i) for i, message in enumerate(messages)]


def ids_of(event: dict[str, Any]) -> list[str]:
    return [
        r["kinesis"]["sequenceNumber"] if "kinesis" in r else r["messageId"]
        for r in event["Records"]
    ]


def reasons(result: ForwardingResult) -> dict[str, str]:
    return {f.record_id: f.reason for f in result.failures if f.disposition == "failed"}


def kinesis(payloads: Sequence[str | bytes]) -> dict[str, Any]:
    return kinesis_event([p.encode() if isinstance(p, str) else p for p in payloads])


# --- Kinesis: the shard is the ordered group -------------------------------------------------


def test_a_kinesis_record_invalid_under_fail_is_reported_and_the_rest_of_its_shard_sent():
    payloads = bodies(*[f"m{i}" for i in range(10)])
    payloads[2] = one_event("/forbidden", "s", "m2", now_ms())  # record 3 of 10
    event = kinesis(payloads)
    ids = ids_of(event)

    result, sender, _, _ = forward(event)

    # sent, so that they land even if record 3 fails until Lambda gives the batch up...
    assert sender.messages == sorted(f"m{i}" for i in range(10) if i != 2)
    assert len(sender.requests) == 1
    # ...and reported after it, since Lambda retries the shard from record 3 all the same
    assert result.failed_ids == ids[2:]
    why = reasons(result)
    assert "not allowed" in why[ids[2]]
    assert all(
        why[i] == f"held back: record {ids[2]} of the same message group or shard failed first"
        for i in ids[3:]
    )
    assert result.counts["RecordsFailed"] == 8
    assert result.counts["EventsForwarded"] == 9


@pytest.mark.parametrize("policy", list(InvalidRecordPolicy))
def test_a_kinesis_record_with_a_too_new_event_does_not_hold_back_the_later_ones(policy):
    now = now_ms()
    payloads = bodies("m0", "m1", "m2", "m3", "m4", at=now)
    payloads[1] = one_event(GROUP, "s", "future", now + SOON_TOO_NEW_MS)
    event = kinesis(payloads)
    ids = ids_of(event)

    result, sender, dead_letters, _ = forward(event, policy)

    assert sender.messages == ["m0", "m2", "m3", "m4"]
    assert result.failed_ids == ids[1:]
    assert "1 too-new" in reasons(result)[ids[1]]
    assert reasons(result)[ids[4]].startswith(f"held back: record {ids[1]} ")
    assert dead_letters.letters == []


@pytest.mark.parametrize("policy", list(InvalidRecordPolicy))
def test_a_kinesis_record_too_old_never_keeps_the_later_ones_from_being_sent(policy):
    now = now_ms()
    payloads = bodies("m0", "m1", "m2", "m3", at=now)
    payloads[1] = one_event(GROUP, "s", "ancient", now - MAX_AGE_MS - HOUR_MS)
    event = kinesis(payloads)
    ids = ids_of(event)

    result, sender, dead_letters, _ = forward(event, policy)

    assert sender.messages == ["m0", "m2", "m3"]
    if policy is FAIL:
        assert result.failed_ids == ids[1:]
    else:  # dead-lettered or dropped: handled, so the shard goes on
        assert result.failed_ids == []
        assert len(dead_letters.letters) == (policy is DEAD_LETTER)


@pytest.mark.parametrize("fifo", [False, True], ids=["kinesis", "sqs-fifo"])
def test_a_deferred_record_holds_back_its_successors_under_the_dead_letter_policy(fifo):
    stamp = now_ms()
    deferred = gzip.compress(one_event(GROUP, "s", "x" * 5_000, stamp).encode())
    plain = bodies("m0", "m2", "m3", at=stamp)
    if fifo:
        from base64 import b64encode

        event = sqs_event([plain[0], b64encode(deferred).decode(), *plain[1:]], group="g")
    else:
        event = kinesis([plain[0], deferred, *plain[1:]])
    ids = ids_of(event)

    result, sender, dead_letters, _ = forward(event, DEAD_LETTER, decompression_budget_bytes=1_000)

    assert sender.messages == ["m0"]
    assert result.failed_ids == ids[1:]
    why = reasons(result)
    assert "budget" in why[ids[1]]
    assert why[ids[2]].startswith(f"held back: record {ids[1]} ")
    assert dead_letters.letters == []
    assert result.counts["RecordsDeferred"] == 1


def test_an_invalid_record_after_a_known_failure_is_held_back_not_dead_lettered():
    """Lambda delivers it again after the failure: dead-lettering it now would do it twice."""
    stamp = now_ms()
    event = kinesis(
        [
            one_event(GROUP, "s", "future", stamp + SOON_TOO_NEW_MS),
            one_event("/forbidden", "s", "bad", stamp),
            one_event(GROUP, "s", "fine", stamp),
        ]
    )
    ids = ids_of(event)

    result, sender, dead_letters, _ = forward(event, DEAD_LETTER)

    assert sender.messages == ["fine"]
    assert result.failed_ids == ids
    assert dead_letters.letters == []
    assert reasons(result)[ids[1]].startswith(f"held back: record {ids[0]} ")
    assert result.counts["RecordsInvalid"] == 1


def test_each_kinesis_shard_is_a_group_of_its_own():
    stamp = now_ms()
    deferred = gzip.compress(one_event(GROUP, "s", "x" * 5_000, stamp).encode())
    payloads: list[str | bytes] = list(bodies("a0", "a1", "b0", "b1", "a2", "b2", at=stamp))
    payloads[1] = deferred
    event = kinesis(payloads)
    for record, shard in zip(event["Records"], "AABBAB", strict=True):
        sequence = record["kinesis"]["sequenceNumber"]
        record["eventID"] = f"shardId-00000000000{shard == 'B':d}:{sequence}"
    ids = ids_of(event)

    result, sender, _, _ = forward(event, decompression_budget_bytes=1_000)

    assert sender.messages == ["a0", "b0", "b1", "b2"]
    assert result.failed_ids == [ids[1], ids[4]]


# --- SQS: FIFO groups are held back, standard queues never -----------------------------------


def test_records_of_a_standard_queue_are_never_held_back():
    stamp = now_ms()
    event = sqs_event(
        [
            one_event("/forbidden", "s", "bad", stamp),
            one_event(GROUP, "s", "future", stamp + SOON_TOO_NEW_MS),
            one_event(GROUP, "s", "m2", stamp),
            one_event(GROUP, "s", "m3", stamp),
        ]
    )
    ids = ids_of(event)

    result, sender, _, records = forward(event)

    assert all(record.message_group is None for record in records)
    assert sender.messages == ["m2", "m3"]
    assert result.failed_ids == ids[:2]
    assert not any(reason.startswith("held back") for reason in reasons(result).values())


def test_a_fifo_record_with_a_too_new_event_holds_back_only_its_own_group():
    stamp = now_ms()
    first = sqs_event(
        [
            one_event(GROUP, "s", "a0", stamp),
            one_event(GROUP, "s", "future", stamp + SOON_TOO_NEW_MS),
            one_event(GROUP, "s", "a2", stamp),
        ],
        group="A",
    )
    other = sqs_event([one_event(GROUP, "s", "b0", stamp)], group="B")
    event = {"Records": first["Records"] + other["Records"]}
    ids = ids_of(event)

    result, sender, _, _ = forward(event)

    assert sender.messages == ["a0", "b0"]
    assert result.failed_ids == ids[1:3]


def test_a_fifo_record_that_fails_itself_after_a_known_failure_sends_nothing():
    """Each record has a valid event and one too new: the second is delivered again after the
    first, so its valid event must not land now (it would land twice)."""
    stamp = now_ms()
    soon = stamp + SOON_TOO_NEW_MS
    event = sqs_event(
        [
            many_events(GROUP, "s", [(stamp, "a0 fine"), (soon, "a0 future")]),
            many_events(GROUP, "s", [(stamp, "a1 fine"), (soon, "a1 future")]),
        ],
        group="A",
    )
    ids = ids_of(event)

    result, sender, _, _ = forward(event)

    assert sender.messages == ["a0 fine"]  # the first failure's own valid event is sent
    assert result.failed_ids == ids
    assert reasons(result)[ids[1]].startswith(f"held back: record {ids[0]} ")


# --- planning once, without the held-back records ------------------------------------------


@pytest.mark.parametrize(
    ("future", "planned"),
    [(None, ["m0", "m1", "m2", "m3"]), (3, ["m0", "m1", "m2"]), (1, ["m0"])],
    ids=["nothing-prejudged", "prejudged-last", "prejudged-holds-back"],
)
def test_the_batch_is_planned_once_without_the_records_a_prejudged_one_holds_back(
    monkeypatch, future, planned
):
    calls: list[list[str]] = []
    real = forwarding.plan_requests

    def counting(groups: Any, *arguments: Any, **options: Any) -> Any:
        calls.append([e.message for events in groups.values() for e in events])
        return real(groups, *arguments, **options)

    monkeypatch.setattr(forwarding, "plan_requests", counting)
    stamp = now_ms()
    payloads = bodies("m0", "m1", "m2", "m3", at=stamp)
    if future is not None:
        payloads[future] = one_event(GROUP, "s", "future", stamp + SOON_TOO_NEW_MS)

    forward(sqs_event(payloads, group="g"))
    # the prejudged record's own valid events are planned (and judged there), never the later
    assert calls == [planned + (["future"] if future is not None else [])]
    calls.clear()
    forward(kinesis(payloads))  # too new never holds a shard back
    assert [len(planned) for planned in calls] == [4]


# --- failures known only after sending --------------------------------------------------------


def stream_fails(stream: str, reason: Rejection = Rejection.THROTTLED) -> FakeSender:
    return FakeSender(lambda request: reason if request.destination.log_stream == stream else None)


def test_a_failure_known_after_sending_fails_the_later_records_of_its_group():
    # one stream per record, so one request per record, and only record 0's fails
    event = kinesis([one_event(GROUP, f"s{i}", f"m{i}", now_ms()) for i in range(3)])
    ids = ids_of(event)

    result, sender, _, _ = forward(event, sender=stream_fails("s0"))

    assert sender.messages == ["m0", "m1", "m2"]  # sent: the failure was not known before
    assert result.failed_ids == ids
    assert reasons(result)[ids[2]].startswith(f"held back: record {ids[0]} ")


def test_a_record_failed_after_a_failure_known_after_sending_is_not_also_dead_lettered():
    stamp = now_ms()
    first = sqs_event(
        [one_event(GROUP, "s0", "a0", stamp), one_event("/forbidden", "s", "a1", stamp)],
        group="A",
    )
    other = sqs_event([one_event("/forbidden", "s", "b0", stamp)], group="B")
    event = {"Records": first["Records"] + other["Records"]}
    ids = ids_of(event)

    result, _, dead_letters, _ = forward(event, DEAD_LETTER, sender=stream_fails("s0"))

    assert result.failed_ids == ids[:2]
    assert [letter.record.record_id for letter in dead_letters.letters] == [ids[2]]
    dispositions = [(f.record_id, f.disposition) for f in result.failures]
    assert sorted(dispositions) == sorted(
        [(ids[0], "failed"), (ids[1], "failed"), (ids[2], "dead-lettered")]
    )


# --- the rule, over random batches -------------------------------------------------------------

KINDS = ("good", "invalid", "too-new", "too-far-ahead", "too-old", "deferred")


def payload_of(kind: str, position: int, now: int) -> str | bytes:
    if kind == "invalid":
        return one_event("/forbidden", "s", f"m{position}", now)
    if kind == "deferred":  # past the batch's decompression budget
        return gzip.compress(one_event(GROUP, "s", "x" * 200, now).encode())
    offset = {
        "good": 0,
        "too-new": SOON_TOO_NEW_MS,
        "too-far-ahead": 3 * 24 * HOUR_MS,
        "too-old": -MAX_AGE_MS - HOUR_MS,
    }[kind]
    return one_event(GROUP, "s", f"m{position}", now + offset)


@settings(max_examples=300, deadline=None)
@given(
    batch=st.lists(
        st.tuples(st.sampled_from([None, "a", "b"]), st.sampled_from(KINDS)), max_size=12
    ),
    policy=st.sampled_from(list(InvalidRecordPolicy)),
    source=st.sampled_from(["aws:sqs", "aws:kinesis"]),
)
def test_held_back_records_are_exactly_those_after_a_known_failure_of_their_group(
    batch, policy, source
):
    now = now_ms()
    records = [
        SourceRecord(f"r{i}", payload_of(kind, i, now), now, message_group=group)
        for i, (group, kind) in enumerate(batch)
    ]
    settings_ = Settings(
        allowed_log_groups=("/app/*",),
        invalid_records=policy,
        dead_letter_queue_url="https://sqs.example/dlq",
        decompression_budget_bytes=10,
    )
    sender, dead_letters = FakeSender(), FakeDeadLetters()
    forwarder = Forwarder(settings_, sender, dead_letters)  # type: ignore[arg-type]

    result = forwarder.forward(source, records, lambda: 60_000)

    # The rule written out independently: what is reported failed before anything is sent...
    def fails(kind: str) -> bool:
        return kind in {"too-new", "deferred"} or (kind != "good" and policy is FAIL)

    def holds_back(kind: str) -> bool:  # ...and which of those keep the group's rest unsent
        return kind == "deferred" if source == "aws:kinesis" else fails(kind)

    first_failure: dict[str, int] = {}
    first_holding: dict[str, int] = {}
    held_back: dict[int, int] = {}
    unsent: set[int] = set()
    for i, (group, kind) in enumerate(batch):
        if group is None:
            continue
        if group in first_holding:
            unsent.add(i)
            held_back[i] = first_holding[group]  # named: the failure that kept it unsent
        elif group in first_failure and not fails(kind):
            held_back[i] = first_failure[group]
        if fails(kind):
            first_failure.setdefault(group, i)
        if holds_back(kind):
            first_holding.setdefault(group, i)
    # ...and what becomes of each record.
    sent = [f"m{i}" for i, (_, kind) in enumerate(batch) if kind == "good" and i not in unsent]
    failed = [f"r{i}" for i, (_, kind) in enumerate(batch) if fails(kind) or i in held_back]
    settled = [
        f"r{i}"
        for i, (_, kind) in enumerate(batch)
        if kind in {"invalid", "too-far-ahead", "too-old"}
        and not fails(kind)
        and i not in held_back
    ]
    assert sender.messages == sorted(sent)
    assert result.failed_ids == failed
    why = reasons(result)
    for i, first in held_back.items():
        assert why[f"r{i}"] == (
            f"held back: record r{first} of the same message group or shard failed first"
        )
    letters = [letter.record.record_id for letter in dead_letters.letters]
    dropped = [f.record_id for f in result.failures if f.disposition == "dropped"]
    assert letters + dropped == settled
    assert len(result.failures) == len(failed) + len(settled)  # one fate per record


# --- KPL aggregates: one Kinesis record, many user records -----------------------------------


def aggregate_of(*payloads: str | bytes) -> bytes:
    (record,) = aggregate(
        (f"key-{i}", p.encode() if isinstance(p, str) else p) for i, p in enumerate(payloads)
    )
    return record[1]


def test_an_aggregate_with_a_bad_user_record_sends_the_rest_and_dead_letters_only_that_one():
    good = bodies("a0", "a2", "after")
    event = kinesis([aggregate_of(good[0], b"\xff not text", good[1]), good[2]])
    ids = ids_of(event)

    result, sender, dead_letters, _ = forward(event, DEAD_LETTER)

    assert sender.messages == ["a0", "a2", "after"]
    assert result.failed_ids == []
    (letter,) = dead_letters.letters
    assert letter.record.record_id == ids[0]
    ((sub_sequence, data),) = [(p.sub_sequence, p.data) for p in letter.parts]
    assert (sub_sequence, data) == (1, b"\xff not text")
    assert result.counts["RecordsDeadLettered"] == 1
    assert result.counts["EventsForwarded"] == 3


def test_an_aggregate_with_events_refused_as_well_is_dead_lettered_whole():
    too_old = one_event(GROUP, "s", "old", now_ms() - MAX_AGE_MS - HOUR_MS)
    event = kinesis([aggregate_of(too_old, b"\xff not text")])

    result, _, dead_letters, _ = forward(event, DEAD_LETTER)

    (letter,) = dead_letters.letters
    assert letter.parts == ()  # the whole aggregate: its too-old event is in it
    assert letter.record.payload == event_payload(event, 0)
    assert result.counts["RecordsDeadLettered"] == 1


def test_an_aggregate_with_a_bad_user_record_under_fail_is_reported_with_its_reason():
    good = bodies("a0", "after")
    event = kinesis([aggregate_of(good[0], b"\xff not text"), good[1]])
    ids = ids_of(event)

    result, sender, _, _ = forward(event, FAIL)

    assert sender.messages == ["a0", "after"]  # sent: Kinesis holds nothing back behind it
    assert result.failed_ids == ids
    assert reasons(result)[ids[0]].startswith("user record 1 of the KPL aggregate: payload is")


def test_a_corrupt_aggregate_is_dead_lettered_whole_and_the_rest_of_the_shard_lands():
    good = bodies("a0", "after")
    corrupt = bytearray(aggregate_of(good[0]))
    corrupt[-1] ^= 0xFF
    event = kinesis([bytes(corrupt), good[1]])

    result, sender, dead_letters, _ = forward(event, DEAD_LETTER)

    assert sender.messages == ["after"]
    (letter,) = dead_letters.letters
    assert letter.parts == ()
    assert "KPL aggregated record is corrupt" in letter.reason
    assert result.failed_ids == []


def event_payload(event: dict[str, Any], position: int) -> bytes:
    return base64.b64decode(event["Records"][position]["kinesis"]["data"])
