"""The real forwarder (``forwarder.handler.handler``, unchanged) through the loop: records sent
to the local queue and stream end up landed in CloudWatch Logs or in a dead-letter queue, each
one counted. The strict layer checks every request (see ``conftest.strict``)."""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from infra.blueprint import Blueprint
from local.deploy import Deployment
from local.emulator import Emulator
from local.lambda_events import one_event
from local.readback import check_streams, read_groups, read_stream
from local.workload import Fate, Outbound, Producer, demo_workload
from tests.e2e.helpers import fast_blueprint


def now_ms() -> int:
    return int(time.time() * 1000)


def producer(deployment: Deployment) -> Producer:
    endpoints = deployment.endpoints
    return Producer(
        endpoints.client("sqs"),
        endpoints.client("kinesis"),
        deployment.queue("SqsQueue").url,
        deployment.stream("KinesisStream").name,
    )


def bodies(sqs: Any, url: str) -> list[str]:
    found: dict[str, str] = {}
    for _ in range(3):
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        found |= {m["MessageId"]: m["Body"] for m in answer.get("Messages", [])}
    return list(found.values())


def test_a_mixed_workload_lands_completely_and_in_order(deploy, logs, sqs, log_group):
    deployment = deploy(fast_blueprint(shards=2, visibility_s=1, max_receive_count=2))
    workload = demo_workload(now_ms(), prefix=log_group)
    for group in workload.log_groups + workload.created_groups:  # this function creates none
        logs.create_log_group(logGroupName=group)
    producer(deployment).send_all(workload.records)

    with Emulator(deployment, in_process=True) as emulator:
        assert emulator.run_until_drained(40)

    checks = check_streams(
        workload.expected, read_groups(logs, workload.log_groups + workload.created_groups)
    )
    assert [c for c in checks if not c.ok] == []
    assert len(checks) == 8  # streams, the KPL aggregate's among them
    # every record is accounted for, exactly
    assert emulator.sqs is not None
    assert emulator.kinesis is not None
    stale = bodies(sqs, deployment.queue("SqsDeadLetterQueue").url)
    assert len(emulator.sqs.stats.deleted) + len(stale) == workload.count("sqs")
    assert len(stale) == workload.count("sqs", Fate.SQS_DLQ) == 1
    stats = emulator.kinesis.stats
    assert stats.succeeded + sum(stats.discarded.values()) == workload.count("kinesis")
    # the event 2 h 10 min ahead is too new until the retries run out: given up, data and all
    assert sum(stats.discarded.values()) == workload.count("kinesis", Fate.ON_FAILURE) == 1
    (given_up,) = [json.loads(b) for b in deployment.on_failure_records()]
    (record,) = json.loads(given_up["payload"])["Records"]
    assert "a little early" in base64.b64decode(record["kinesis"]["data"]).decode()
    letters = [json.loads(b) for b in bodies(sqs, deployment.queue("KinesisDeadLetterQueue").url)]
    assert len(letters) == workload.count("kinesis", Fate.DEAD_LETTERED) == 2
    (malformed,) = [letter for letter in letters if "timestamp must be" in letter["reason"]]
    assert json.loads(malformed["payload"])["timestamp"] == "yesterday"
    # the event 3 h ahead is past the retry horizon: dead-lettered with its payload at once
    (ahead,) = [letter for letter in letters if "too-far-ahead" in letter["reason"]]
    assert json.loads(ahead["payload"])["message"] == "clock skew!"


def test_a_poison_message_reaches_the_sqs_dlq_after_max_receive_count(deploy, logs, sqs, log_group):
    deployment = deploy(fast_blueprint(visibility_s=1, max_receive_count=2))
    start = now_ms() - 60_000
    good = [one_event(log_group, "app", f"line {i}", start + i) for i in range(10)]
    poison = json.dumps({"logGroupName": log_group, "logStreamName": "app", "logEvents": "x"})
    send = producer(deployment)
    for body in [*good[:5], poison, *good[5:]]:
        send.send(_sqs(body))

    with Emulator(deployment, in_process=True) as emulator:
        assert emulator.run_until_drained(30)

    assert bodies(sqs, deployment.queue("SqsDeadLetterQueue").url) == [poison]
    assert read_stream(logs, log_group, "app") == [(start + i, f"line {i}") for i in range(10)]
    assert emulator.sqs is not None
    assert len(emulator.sqs.stats.deleted) == 10
    failures = emulator.functions["sqs"].logs.undelivered()
    assert len(failures) == 2  # once per receive, until the redrive policy moved it
    assert {f.reason for f in failures} == {failures[0].reason}
    assert "logEvents" in failures[0].reason


@pytest.mark.parametrize(
    ("policy", "checkpoint"),
    [("fail", True), ("fail", False), ("dead-letter", True)],
    ids=["fail", "fail-without-checkpoint", "dead-letter"],
)
def test_a_kinesis_poison_record_does_not_block_the_shard(
    deploy, logs, sqs, log_group, policy, checkpoint
):
    deployment = deploy(fast_blueprint(kinesis_retries=2))
    start = now_ms() - 60_000
    payloads = [one_event(log_group, "k", f"event {i}", start + i) for i in range(10)]
    poison = json.dumps({"logGroupName": log_group, "logStreamName": "k", "timestamp": "soon"})
    send = producer(deployment)
    for payload in [*payloads[:5], poison, *payloads[5:]]:
        send.send(_kinesis(payload))
    overrides = {"kinesis": {"INVALID_RECORDS": policy}}
    if not checkpoint:
        overrides["kinesis"]["CHECKPOINT_TABLE"] = ""  # blank: unset, at-least-once

    with Emulator(deployment, in_process=True, overrides=overrides) as emulator:
        assert emulator.run_until_drained(30)
        send.send(_kinesis(one_event(log_group, "k", "later", start + 100)))
        assert emulator.run_until_drained(30)

    landed = Counter(read_stream(logs, log_group, "k"))
    expected = [(start + i, f"event {i}") for i in range(10)] + [(start + 100, "later")]
    assert set(landed) == set(expected)  # nothing lost, the shard went on
    on_failure = [json.loads(b) for b in deployment.on_failure_records()]
    letters = bodies(sqs, deployment.queue("KinesisDeadLetterQueue").url)
    if policy == "dead-letter":
        # the function keeps the payload and moves on: no retry, no duplicate
        assert all(count == 1 for count in landed.values())
        assert on_failure == []
        assert [json.loads(letter)["payload"] for letter in letters] == [poison]
    else:
        # reported failed: Lambda retries from it (twice), then gives the rest of the batch up;
        # its data is not kept anywhere. The records after it were sent on every delivery:
        # with the checkpoint they landed once, without it once a delivery.
        copies = 1 if checkpoint else 3
        assert [landed[e] for e in expected] == [1] * 5 + [copies] * 5 + [1]
        (letter,) = on_failure
        assert letter["requestContext"]["approximateInvokeCount"] == 3
        assert letter["KinesisBatchInfo"]["batchSize"] == 6
        assert letters == []


@pytest.mark.parametrize(
    ("fault", "in_process"),
    [("throttle", True), ("unavailable", False), ("drop", True)],
    ids=["throttle", "unavailable-awslambdaric", "drop"],
)
def test_faults_delay_delivery_but_lose_nothing(
    deploy, logs, sqs, strict, log_group, fault, in_process
):
    deployment = deploy(fast_blueprint(visibility_s=1, max_receive_count=10, kinesis_retries=-1))
    start = now_ms() - 60_000
    send = producer(deployment)
    for i in range(4):
        send.send(_sqs(one_event(log_group, "from-sqs", f"q{i}", start + i)))
        send.send(_kinesis(one_event(log_group, "from-kinesis", f"k{i}", start + i)))
    # two attempts per request (botocore), six faults: the first calls of both functions fail
    strict.inject("PutLogEvents", fault, 6)
    overrides = {source: {"AWS_MAX_ATTEMPTS": "2"} for source in ("sqs", "kinesis")}

    with Emulator(deployment, in_process=in_process, overrides=overrides) as emulator:
        assert emulator.run_until_drained(60)

    assert read_stream(logs, log_group, "from-sqs") == [(start + i, f"q{i}") for i in range(4)]
    assert read_stream(logs, log_group, "from-kinesis") == [(start + i, f"k{i}") for i in range(4)]
    assert bodies(sqs, deployment.queue("SqsDeadLetterQueue").url) == []
    assert deployment.on_failure_records() == []
    assert emulator.sqs is not None
    assert emulator.kinesis is not None
    redeliveries = emulator.sqs.stats.received - 4
    assert redeliveries + emulator.kinesis.stats.retries >= 1  # delayed, not lost
    assert not strict.state.faults["PutLogEvents"]  # every injected fault was met


def _sqs(body: str) -> Outbound:
    return Outbound("sqs", body, "test")


def _kinesis(payload: str) -> Outbound:
    return Outbound("kinesis", payload.encode(), "test")


def _dead_letters_after(
    deployment: Deployment, logs: Any, sqs: Any, log_group: str, data: bytes, *, seconds: int
) -> list[Any]:
    """Put ``data`` on the stream and a good record after it, drain, check that the good one
    landed (the shard went on), and return the Kinesis dead-letter queue's messages."""
    start = now_ms() - 60_000
    send = producer(deployment)
    send.send(Outbound("kinesis", data, "t"))
    send.send(_kinesis(one_event(log_group, "k", "after it", start)))
    with Emulator(deployment, in_process=True) as emulator:
        assert emulator.run_until_drained(seconds)
    assert read_stream(logs, log_group, "k") == [(start, "after it")]
    return [json.loads(b) for b in bodies(sqs, deployment.queue("KinesisDeadLetterQueue").url)]


def test_a_dead_letter_too_large_for_sqs_ends_in_s3_with_its_payload(deploy, logs, sqs, log_group):
    deployment = deploy(fast_blueprint())
    binary = bytes(range(256)) * 3200  # 800 KB, not UTF-8: a 1.1 MB letter in base64
    (pointer,) = _dead_letters_after(deployment, logs, sqs, log_group, binary, seconds=30)
    assert pointer[0] == "software.amazon.payloadoffloading.PayloadS3Pointer"
    assert pointer[1]["s3BucketName"] == deployment.bucket("FailureStoreBucket").name
    s3 = deployment.endpoints.client("s3")
    stored = s3.get_object(Bucket=pointer[1]["s3BucketName"], Key=pointer[1]["s3Key"])
    letter = json.loads(stored["Body"].read())
    assert base64.b64decode(letter["payload"]) == binary
    assert "neither UTF-8 text nor gzip" in letter["reason"]
    assert deployment.on_failure_records() == []


def _gzip_events(log_group: str, stream: str, start: int, count: int, size: int) -> bytes:
    """A Kinesis record of ``count`` events of ``size`` bytes, gzip-compressed (tiny on the wire,
    ``count * size`` bytes once decompressed)."""
    events = [
        {"timestamp": start + i, "message": f"{i:06d}" + "x" * (size - 6)} for i in range(count)
    ]
    document = {"logGroupName": log_group, "logStreamName": stream, "logEvents": events}
    return gzip.compress(json.dumps(document).encode())


def _with_memory(blueprint: Blueprint, memory_mb: int) -> Blueprint:
    assert blueprint.kinesis is not None
    function = replace(blueprint.kinesis.function, memory_mb=memory_mb)
    return replace(blueprint, kinesis=replace(blueprint.kinesis, function=function))


def test_records_deferred_by_the_decompression_budget_all_land_in_order(
    deploy, logs, sqs, log_group
):
    # 320 MB: a batch may decompress 16 MiB; three records of 6 MiB each do not fit one batch
    deployment = deploy(_with_memory(fast_blueprint(kinesis_retries=2), 320))
    start = now_ms() - 60_000
    send = producer(deployment)
    for r in range(3):
        send.send(
            Outbound("kinesis", _gzip_events(log_group, "big", start + 100 * r, 60, 100_000), "t")
        )

    with Emulator(deployment, in_process=True) as emulator:
        assert emulator.run_until_drained(60)

    landed = [m[:6] for _, m in read_stream(logs, log_group, "big")]
    assert landed == [f"{i:06d}" for i in range(60)] * 3
    assert emulator.kinesis is not None
    assert emulator.kinesis.stats.retries >= 1  # the third was deferred, then got through
    assert deployment.on_failure_records() == []


def test_a_record_this_memory_can_never_hold_is_dead_lettered_and_the_shard_goes_on(
    deploy, logs, sqs, log_group
):
    # 128 MB: a batch may decompress 6.4 MB, less than this one record's 8 MB
    deployment = deploy(_with_memory(fast_blueprint(kinesis_retries=2), 128))
    huge = _gzip_events(log_group, "big", now_ms() - 60_000, 80, 100_000)
    (letter,) = _dead_letters_after(deployment, logs, sqs, log_group, huge, seconds=60)
    assert base64.b64decode(letter["payload"]) == huge
    assert "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" in letter["reason"]
    assert deployment.on_failure_records() == []
