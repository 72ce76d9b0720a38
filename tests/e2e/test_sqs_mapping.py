"""Lambda's SQS event source mapping as the loop emulates it, with a scripted function against a
real (moto) queue: batching, deletion, visibility, redrive, the event's shape."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from infra.blueprint import Blueprint
from local.deploy import Deployment
from local.emulator import Emulator
from tests.e2e.helpers import Records, ScriptedHandler, fail_where, fast_blueprint, payload


def run(
    deploy: Callable[..., Deployment],
    blueprint: Blueprint,
    respond: Callable[[Records], Any],
    send: Callable[[Any, str], None],
    sqs: Any,
) -> tuple[ScriptedHandler, Emulator, Deployment]:
    deployment = deploy(blueprint)
    assert blueprint.sqs is not None
    handler = ScriptedHandler(respond)
    send(sqs, deployment.queue(blueprint.sqs.queue).url)
    with Emulator(
        deployment, handlers={"sqs": handler}, sources=("sqs",), sqs_poll_wait_s=0
    ) as emulator:
        assert emulator.run_until_drained(30)
    return handler, emulator, deployment


def sender(*bodies: str, **arguments: Any) -> Callable[[Any, str], None]:
    def send(sqs: Any, url: str) -> None:
        for body in bodies:
            sqs.send_message(QueueUrl=url, MessageBody=body, **arguments)

    return send


def dead_letters(sqs: Any, deployment: Deployment) -> list[str]:
    url = deployment.queue("SqsDeadLetterQueue").url
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return sorted(m["Body"] for m in answer.get("Messages", []))


def test_only_reported_failures_come_back_after_the_visibility_timeout(deploy, sqs):
    seen: set[str] = set()

    def fail_b_once(records: Records) -> dict[str, Any]:
        response = fail_where(lambda body: body == "b" and body not in seen)(records)
        seen.update(payload(r) for r in records)
        return response

    started = time.monotonic()
    handler, emulator, deployment = run(
        deploy, fast_blueprint(visibility_s=1), fail_b_once, sender("a", "b", "c"), sqs
    )

    assert [sorted(batch) for batch in handler.payloads()] == [["a", "b", "c"], ["b"]]
    assert handler.batches[1][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert time.monotonic() - started >= 1  # b waited for its visibility timeout
    assert emulator.sqs is not None
    assert len(emulator.sqs.stats.deleted) == 3
    assert dead_letters(sqs, deployment) == []


def test_an_unknown_item_identifier_fails_the_whole_batch(deploy, sqs):
    calls: list[int] = []

    def invalid_then_fine(records: Records) -> dict[str, Any]:
        calls.append(len(records))
        if len(calls) == 1:
            return {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]}
        return {"batchItemFailures": []}

    handler, _, _ = run(deploy, fast_blueprint(), invalid_then_fine, sender("a", "b"), sqs)

    assert [sorted(batch) for batch in handler.payloads()] == [["a", "b"], ["a", "b"]]


def test_a_handler_exception_fails_the_batch_until_redrive_moves_it_to_the_dlq(deploy, sqs):
    def always_raise(records: Records) -> None:
        raise RuntimeError("cannot handle this")

    blueprint = fast_blueprint(visibility_s=1, max_receive_count=2)
    handler, emulator, deployment = run(deploy, blueprint, always_raise, sender("x", "y"), sqs)

    # each message received twice, then moved by the redrive policy (a loaded machine may hand
    # the two messages out in separate batches, so count receipts, not batches)
    received = sorted(body for batch in handler.payloads() for body in batch)
    assert received == ["x", "x", "y", "y"]
    assert dead_letters(sqs, deployment) == ["x", "y"]
    assert emulator.sqs is not None
    assert emulator.sqs.stats.deleted == set()
    assert emulator.sqs.stats.failed_invocations == len(handler.batches)


def test_the_batching_window_gathers_what_arrives_during_it(deploy, sqs):
    def send(client: Any, url: str) -> None:
        client.send_message(QueueUrl=url, MessageBody="first")

        def later() -> None:
            time.sleep(0.3)
            for body in ("second", "third"):
                client.send_message(QueueUrl=url, MessageBody=body)

        threading.Thread(target=later).start()

    blueprint = fast_blueprint(visibility_s=5, sqs_window_s=1.5)
    handler, _, _ = run(deploy, blueprint, lambda records: None, send, sqs)

    assert [sorted(batch) for batch in handler.payloads()] == [["first", "second", "third"]]


def test_batch_size_and_the_6_mb_invocation_payload_bound_the_batch(deploy, sqs):
    small = [f"m{i}" for i in range(12)]
    handler, _, _ = run(
        deploy, fast_blueprint(sqs_batch=5), lambda records: None, sender(*small), sqs
    )
    assert [len(batch) for batch in handler.batches] == [5, 5, 2]

    big = [f"{i}" * 1_000_000 for i in range(7)]  # 7 messages of 1 MB; at most 6 fit in 6 MB
    handler, emulator, _ = run(
        deploy, fast_blueprint(sqs_batch=10), lambda records: None, sender(*big), sqs
    )
    assert [len(batch) for batch in handler.batches] == [6, 1]
    assert emulator.sqs is not None
    assert emulator.sqs.stats.released == 1


def test_records_are_shaped_like_lambdas_sqs_event(deploy, sqs):
    attributes = {"tenant": {"DataType": "String", "StringValue": "acme"}}
    handler, _, deployment = run(
        deploy,
        fast_blueprint(),
        lambda records: None,
        sender("hello", MessageAttributes=attributes),
        sqs,
    )

    ((record,),) = handler.batches
    queue = deployment.queue("SqsQueue")
    assert set(record) == {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
    }  # fmt: skip
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.arn
    assert record["awsRegion"] == "us-east-1"
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId"} <= set(record["attributes"])
    assert record["messageAttributes"] == {
        "tenant": {
            "stringValue": "acme",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }


def test_fifo_records_carry_their_group_and_failed_groups_come_back(deploy, sqs):
    seen: list[str] = []

    def fail_group_a_once(records: Records) -> dict[str, Any]:
        first_time = not seen
        seen.extend(payload(r) for r in records)
        if not first_time:
            return {"batchItemFailures": []}
        # the forwarder's FIFO rule: a failed record fails the later records of its group
        failed = [r for r in records if r["attributes"]["MessageGroupId"] == "A"]
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in failed]}

    def send(client: Any, url: str) -> None:
        for body, group in (("a1", "A"), ("b1", "B"), ("a2", "A")):
            client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)

    handler, _, _ = run(deploy, fast_blueprint(fifo=True), fail_group_a_once, send, sqs)

    first, *rest = handler.batches
    assert {r["attributes"]["MessageGroupId"] for r in first} == {"A", "B"}
    assert [payload(r) for r in first if r["attributes"]["MessageGroupId"] == "A"] == ["a1", "a2"]
    again = [payload(r) for batch in rest for r in batch]
    # Both come back. (In which order is moto's business: moto 5.2 hands a2 out before a1 once
    # both are visible again, where SQS keeps the group's order; see docs/local.md.)
    assert sorted(again) == ["a1", "a2"]
