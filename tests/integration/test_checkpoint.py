"""The delivery checkpoint end to end: the handler against moto (CloudWatch Logs behind the strict
layer, and DynamoDB), delivering the same records again as Lambda does."""

from __future__ import annotations

import copy
import json
import time
from collections import Counter

import pytest

from local.aggregation import aggregate
from local.lambda_events import (
    LambdaContext,
    failed_ids,
    kinesis_event,
    many_events,
    now_ms,
    one_event,
    sqs_event,
)
from local.readback import read_stream as read_events

ALLOW = {"ALLOWED_LOG_GROUPS": "/app/*"}
HOUR = 3600 * 1000


def redelivered(event: dict, ids: list[str] | None = None) -> dict:
    """The records of ``event`` (those of ``ids``, by default all) delivered again: SQS
    counts one more receive."""
    again = copy.deepcopy(event)
    records = again["Records"]
    if ids is not None:
        records = [
            r for r in records if (r.get("messageId") or r["kinesis"]["sequenceNumber"]) in ids
        ]
    for record in records:
        if "attributes" in record:
            count = int(record["attributes"]["ApproximateReceiveCount"])
            record["attributes"]["ApproximateReceiveCount"] = str(count + 1)
    return {"Records": records}


def kinesis_tail(event: dict, first: str) -> dict:
    """What Lambda delivers when it retries a shard from sequence number ``first``."""
    records = event["Records"]
    start = next(i for i, r in enumerate(records) if r["kinesis"]["sequenceNumber"] == first)
    return {"Records": copy.deepcopy(records[start:])}


def landed_messages(logs, group: str, streams: list[str]) -> Counter[str]:
    return Counter(m for stream in streams for _, m in read_events(logs, group, stream))


def put_messages(strict) -> list[str]:
    return [
        e["message"] for call in strict.state.calls_of("PutLogEvents") for e in call["logEvents"]
    ]


def test_a_kinesis_retry_from_the_lowest_failure_lands_none_of_the_tail_twice(
    load_handler, strict, logs, log_group, checkpoint_table
):
    handler = load_handler(**ALLOW, CHECKPOINT_TABLE=checkpoint_table)
    missing = f"{log_group}-later"  # does not exist yet: the record fails until it does
    t = now_ms()
    payloads = [
        one_event(log_group, "k", "first", t),
        one_event(missing, "k", "blocked", t + 1),
        one_event(log_group, "k", "tail 1", t + 2),
        one_event(log_group, "k", "tail 2", t + 3),
    ]
    event = kinesis_event([p.encode() for p in payloads])
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]

    assert failed_ids(handler.handler(event, LambdaContext())) == sequence[1:]
    logs.create_log_group(logGroupName=missing)
    strict.state.calls.clear()
    # Lambda retries the shard from the lowest failure: the tail comes back with it.
    assert failed_ids(handler.handler(kinesis_tail(event, sequence[1]), LambdaContext())) == []

    assert set(put_messages(strict)) == {"blocked"}  # with its retry after creating its stream
    assert landed_messages(logs, log_group, ["k"]) == Counter(["first", "tail 1", "tail 2"])
    assert [m for _, m in read_events(logs, missing, "k")] == ["blocked"]


@pytest.mark.parametrize("with_table", [True, False])
def test_a_failed_user_record_fails_its_aggregate_and_the_retry_lands_only_it(
    load_handler, strict, logs, log_group, checkpoint_table, with_table, capsys
):
    """Lambda's batchItemFailures names the parent's sequence number only, so it delivers the
    whole aggregate again: the checkpoint names its landed events across its user records."""
    table = {"CHECKPOINT_TABLE": checkpoint_table} if with_table else {}
    missing = f"{log_group}-later"
    t = now_ms()
    users = [
        ("a", one_event(log_group, "k", "user 0", t).encode()),
        ("b", one_event(missing, "k", "user 1 blocked", t + 1).encode()),
        ("c", one_event(log_group, "k", "user 2", t + 2).encode()),
    ]
    ((_, parent),) = aggregate(users)
    event = kinesis_event([parent, one_event(log_group, "k", "next", t + 3).encode()])
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]

    first = load_handler(**ALLOW, **table)
    assert failed_ids(first.handler(event, LambdaContext())) == sequence
    logs.create_log_group(logGroupName=missing)
    strict.state.calls.clear()
    capsys.readouterr()
    retry = load_handler(**ALLOW, **table)  # another environment: only the table knows
    assert failed_ids(retry.handler(copy.deepcopy(event), LambdaContext())) == []

    assert [m for _, m in read_events(logs, missing, "k")] == ["user 1 blocked"]
    landed = landed_messages(logs, log_group, ["k"])
    summary = _summary(capsys.readouterr().out)
    if with_table:
        assert set(put_messages(strict)) == {"user 1 blocked"}
        assert landed == Counter(["user 0", "user 2", "next"])
        assert summary["events_already_landed"] == 3
    else:  # today's duplicates without the checkpoint: what landed lands again
        assert landed == Counter({"user 0": 2, "user 2": 2, "next": 2})


def test_another_environment_reads_the_checkpoint_from_the_table(
    load_handler, strict, logs, log_group, checkpoint_table, capsys
):
    handler = load_handler(**ALLOW, CHECKPOINT_TABLE=checkpoint_table)
    missing = f"{log_group}-later"
    t = now_ms()
    payloads = [one_event(missing, "k", "blocked", t), one_event(log_group, "k", "tail", t + 1)]
    event = kinesis_event([p.encode() for p in payloads])
    handler.handler(event, LambdaContext())
    logs.create_log_group(logGroupName=missing)
    strict.state.calls.clear()
    capsys.readouterr()

    fresh = load_handler(**ALLOW, CHECKPOINT_TABLE=checkpoint_table)  # a new environment
    assert failed_ids(fresh.handler(copy.deepcopy(event), LambdaContext())) == []

    assert set(put_messages(strict)) == {"blocked"}  # with its retry after creating its stream
    summary = _summary(capsys.readouterr().out)
    assert summary["checkpoint_items_read"] == 1
    assert summary["events_already_landed"] == 1


def test_an_sqs_redelivery_of_a_partly_rejected_record_sends_only_the_rejected_events(
    load_handler, strict, logs, log_group, checkpoint_table
):
    handler = load_handler(**ALLOW, CHECKPOINT_TABLE=checkpoint_table)
    logs.create_log_stream(logGroupName=log_group, logStreamName="s")
    now = now_ms()
    too_new = now + 2 * HOUR + 60_000  # inside the clock-skew margin: the service rejects it
    record = many_events(log_group, "s", [(now, "kept 1"), (now + 1, "kept 2"), (too_new, "soon")])
    event = sqs_event([record])

    assert failed_ids(handler.handler(event, LambdaContext())) == [event["Records"][0]["messageId"]]
    strict.state.calls.clear()
    assert failed_ids(handler.handler(redelivered(event), LambdaContext())) == [
        event["Records"][0]["messageId"]
    ]

    assert put_messages(strict) == ["soon"]
    assert landed_messages(logs, log_group, ["s"]) == Counter(["kept 1", "kept 2"])


def test_a_first_sqs_delivery_reads_nothing_and_a_clean_batch_writes_nothing(
    load_handler, strict, logs, log_group, checkpoint_table, dynamodb, capsys
):
    handler = load_handler(**ALLOW, CHECKPOINT_TABLE=checkpoint_table)
    event = sqs_event([one_event(log_group, "s", f"m{i}", now_ms()) for i in range(5)])

    assert failed_ids(handler.handler(event, LambdaContext())) == []

    summary = _summary(capsys.readouterr().out)
    assert summary["checkpoint_items_read"] == 0
    assert summary["checkpoint_items_written"] == 0
    assert dynamodb.scan(TableName=checkpoint_table)["Count"] == 0


@pytest.mark.parametrize("environment", ["same", "another"])
def test_the_whole_kinesis_batch_again_after_the_deadline_lands_only_the_ambiguous_twice(
    load_handler, strict, logs, log_group, checkpoint_table, capsys, environment
):
    """In the environment that abandoned a request at its deadline, the batch's next delivery
    waits for its answer and leaves out what it landed; elsewhere that event is sent again."""
    environ = dict(
        **ALLOW,
        CHECKPOINT_TABLE=checkpoint_table,
        TIME_RESERVE_MS="1500",
        MAX_CONCURRENT_REQUESTS="1",
    )
    handler = load_handler(**environ)
    for stream in ("a", "b", "c"):
        logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
    t = now_ms()
    event = kinesis_event(
        [one_event(log_group, s, f"to {s}", t + i).encode() for i, s in enumerate("abc")]
    )
    # 2 s to send: "to a" lands at 1.2 s, "to b" is still on its way at 2 s (it may land: it
    # does, at 2.4 s), "to c" never starts.
    strict.inject("PutLogEvents", "delay", 2, seconds=1.2)
    first = handler.handler(event, LambdaContext(budget_ms=3500))
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert failed_ids(first) == sequence[1:]
    summary = _summary(capsys.readouterr().out)
    assert summary["events_ambiguous"] == 1
    # One item under the batch's first record, one under its lowest failure.
    assert summary["checkpoint_items_written"] == 2

    # The response is lost (the invocation timed out, say): Lambda delivers the whole batch.
    again = handler if environment == "same" else load_handler(**environ)
    assert failed_ids(again.handler(copy.deepcopy(event), LambdaContext())) == []

    # What is known to have landed lands once; the ambiguous request's event twice unless
    # the environment that sent it saw its answer.
    deadline = time.monotonic() + 10
    while strict.state.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)  # the request abandoned at the deadline is still being answered
    copies = 1 if environment == "same" else 2
    assert landed_messages(logs, log_group, ["a", "b", "c"]) == Counter(
        {"to a": 1, "to b": copies, "to c": 1}
    )


def test_without_a_table_a_request_abandoned_at_the_deadline_is_followed_all_the_same(
    load_handler, strict, logs, log_group
):
    """Following abandoned requests is the environment's own memory: no table needed."""
    handler = load_handler(**ALLOW, TIME_RESERVE_MS="1500", MAX_CONCURRENT_REQUESTS="1")
    logs.create_log_stream(logGroupName=log_group, logStreamName="k")
    event = sqs_event([one_event(log_group, "k", "late", now_ms())])
    strict.inject("PutLogEvents", "delay", 1, seconds=2.5)  # answers after the 2 s to send

    assert failed_ids(handler.handler(event, LambdaContext(budget_ms=3500))) != []
    # SQS delivers it again to this environment: it waits for the answer, sends nothing.
    assert failed_ids(handler.handler(redelivered(event), LambdaContext())) == []

    assert landed_messages(logs, log_group, ["k"]) == Counter({"late": 1})
    assert put_messages(strict) == ["late"]


def test_an_answer_lost_after_the_call_is_named_ambiguous_though_the_retry_succeeded(
    load_handler, strict, logs, log_group, capsys
):
    """PutLogEvents has no idempotency token: botocore's retry of a call whose answer was lost
    lands its events again. The forwarder cannot prevent that; it names it."""
    handler = load_handler(**ALLOW)
    logs.create_log_stream(logGroupName=log_group, logStreamName="k")
    strict.inject("PutLogEvents", "lose")
    event = sqs_event([one_event(log_group, "k", "once or twice", now_ms())])

    assert failed_ids(handler.handler(event, LambdaContext())) == []

    assert landed_messages(logs, log_group, ["k"]) == Counter({"once or twice": 2})
    summary = _summary(capsys.readouterr().out)
    assert summary["events_ambiguous"] == 1
    assert summary["events_forwarded"] == 1


@pytest.mark.parametrize("fault", ["missing-table", "throttled", "garbage"])
def test_a_checkpoint_that_fails_costs_at_most_a_duplicate_never_a_record(
    load_handler, strict, logs, log_group, checkpoint_table, dynamodb, fault, capsys
):
    table = "no-such-table" if fault == "missing-table" else checkpoint_table

    def environment():
        module = load_handler(**ALLOW, CHECKPOINT_TABLE=table)
        if fault == "throttled":
            store = module.forwarder._checkpoints
            store._client = _Throttled(store._client)
        return module

    missing = f"{log_group}-later"
    t = now_ms()
    payloads = [one_event(missing, "k", "blocked", t), one_event(log_group, "k", "tail", t + 1)]
    event = kinesis_event([p.encode() for p in payloads])
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]

    assert failed_ids(environment().handler(event, LambdaContext())) == sequence
    # The tail landed; if that could not be written down, the ledger says it may land again.
    first = _summary(capsys.readouterr().out)
    assert first["events_unremembered"] == (0 if fault == "garbage" else 1)
    if fault == "garbage":
        for item in dynamodb.scan(TableName=checkpoint_table)["Items"]:
            item["landed"] = {"S": "{not json"}
            dynamodb.put_item(TableName=checkpoint_table, Item=item)
    logs.create_log_group(logGroupName=missing)

    retry = environment()  # another environment: it must read the table
    assert failed_ids(retry.handler(copy.deepcopy(event), LambdaContext())) == []

    # Every record landed; the tail twice at worst, and the problem is in the summary.
    assert [m for _, m in read_events(logs, missing, "k")] == ["blocked"]
    assert landed_messages(logs, log_group, ["k"]) == Counter({"tail": 2})
    again = _summary(capsys.readouterr().out)
    assert again["checkpoint_problems"] >= 1
    # Sent without knowing what had landed, both records of the shard are named in the ledger
    # (an upper bound): one of them was a duplicate.
    assert again["events_unchecked"] == 2


class _Throttled:
    """A DynamoDB client whose every call is throttled."""

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name):
        from botocore.exceptions import ClientError

        def throttled(**_):
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                name,
            )

        return throttled


def _summary(output: str) -> dict:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (summary,) = [line for line in lines if line.get("message") == "batch forwarded"]
    return summary
