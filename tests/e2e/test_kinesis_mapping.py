"""Lambda's Kinesis event source mapping as the loop emulates it, with a scripted function
against a real (moto) stream: checkpoints, retries, bisection, record age, the on-failure
destination's message, shards; and the replay of what it gave up."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from infra.blueprint import Blueprint
from local.deploy import Deployment
from local.emulator import Emulator, make_function
from local.lambda_events import one_event
from local.readback import read_stream
from local.replay import NotReplayable, replay, replay_event
from tests.e2e.helpers import Records, ScriptedHandler, fail_where, fast_blueprint, payload


class Stream:
    """A deployment's stream, a scripted function on it, and what ended up on the side."""

    def __init__(self, deploy: Callable[..., Deployment], blueprint: Blueprint) -> None:
        self.deployment = deploy(blueprint)
        self.endpoints = self.deployment.endpoints
        assert blueprint.kinesis is not None
        self.name = self.deployment.stream(blueprint.kinesis.stream.logical_id).name
        self.kinesis = self.endpoints.client("kinesis")

    def put(self, *payloads: str, key: str = "k") -> list[str]:
        return [
            self.kinesis.put_record(StreamName=self.name, Data=p.encode(), PartitionKey=key)[
                "SequenceNumber"
            ]
            for p in payloads
        ]

    def emulator(self, respond: Callable[[Records], Any]) -> tuple[Emulator, ScriptedHandler]:
        handler = ScriptedHandler(respond)
        emulator = Emulator(self.deployment, handlers={"kinesis": handler}, sources=("kinesis",))
        return emulator, handler

    def run(self, respond: Callable[[Records], Any]) -> tuple[Emulator, ScriptedHandler]:
        emulator, handler = self.emulator(respond)
        with emulator:
            assert emulator.run_until_drained(30)
        return emulator, handler

    def on_failure(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.deployment.on_failure_records()]


def test_a_partial_failure_retries_from_the_lowest_reported_record(deploy):
    stream = Stream(deploy, fast_blueprint())
    sequence = stream.put("r0", "r1", "r2", "r3", "r4")
    calls: list[int] = []

    def fail_r2_and_r4_once(records: Records) -> dict[str, Any]:
        calls.append(len(records))
        if len(calls) > 1:
            return {"batchItemFailures": []}
        return fail_where(lambda text: text in {"r4", "r2"})(records)

    emulator, handler = stream.run(fail_r2_and_r4_once)

    assert handler.payloads() == [["r0", "r1", "r2", "r3", "r4"], ["r2", "r3", "r4"]]
    assert emulator.kinesis is not None
    assert emulator.kinesis.checkpoints() == {"shardId-000000000000": sequence[-1]}
    assert emulator.kinesis.stats.succeeded == 5
    assert stream.on_failure() == []


def test_an_invalid_response_retries_the_whole_batch(deploy):
    stream = Stream(deploy, fast_blueprint(bisect=False))
    stream.put("a", "b")
    answers = iter([{"batchItemFailures": [{"itemIdentifier": ""}]}, None])

    _, handler = stream.run(lambda records: next(answers))

    assert handler.payloads() == [["a", "b"], ["a", "b"]]


@pytest.mark.parametrize("destination", ["s3", "sqs"])
def test_exhausted_retries_go_to_the_on_failure_destination_and_the_shard_moves_on(
    deploy, destination
):
    blueprint = fast_blueprint(bisect=False, kinesis_retries=2, kinesis_on_failure=destination)
    stream = Stream(deploy, blueprint)
    sequence = stream.put("a", "poison", "c")
    emulator, handler = stream.emulator(fail_where(lambda text: text == "poison"))
    with emulator:
        assert emulator.run_until_drained(30)
        stream.put("d")  # the shard is not blocked: what comes next is delivered
        assert emulator.run_until_drained(30)

    # the first call, then 2 retries from the poison record; then the batch is given up
    assert handler.payloads() == [["a", "poison", "c"], ["poison", "c"], ["poison", "c"], ["d"]]
    (letter,) = stream.on_failure()
    assert letter["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert letter["requestContext"]["approximateInvokeCount"] == 3
    assert letter["requestContext"]["functionArn"].endswith(":function:" + letter_function(stream))
    assert letter["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    info = letter["KinesisBatchInfo"]
    assert info["shardId"] == "shardId-000000000000"
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (sequence[1], sequence[2])
    assert info["batchSize"] == 2
    assert info["streamArn"].endswith(f":stream/{stream.name}")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    if destination == "sqs":  # a queue gets the metadata only
        assert "payload" not in letter
        assert "data" not in json.dumps(letter)
    else:  # a bucket gets the records too, as the function got them
        records = json.loads(letter["payload"])["Records"]
        assert [r["kinesis"]["sequenceNumber"] for r in records] == sequence[1:3]
        assert [payload(r) for r in records] == ["poison", "c"]
    assert emulator.kinesis is not None
    assert emulator.kinesis.stats.discarded == {"RetryAttemptsExhausted": 2}


def letter_function(stream: Stream) -> str:
    blueprint = stream.deployment.blueprint
    assert blueprint.kinesis is not None
    return stream.deployment.function_name(blueprint.kinesis.function)


def test_bisection_on_function_errors_isolates_the_poison_record(deploy):
    stream = Stream(deploy, fast_blueprint(bisect=True, kinesis_retries=1))
    sequence = stream.put(*[f"r{i}" if i != 5 else "poison" for i in range(8)])

    def raise_on_poison(records: Records) -> None:
        if any(payload(r) == "poison" for r in records):
            raise ValueError("cannot parse this one")

    emulator, handler = stream.run(raise_on_poison)

    assert handler.payloads() == [
        ["r0", "r1", "r2", "r3", "r4", "poison", "r6", "r7"],
        ["r0", "r1", "r2", "r3"],
        ["r4", "poison", "r6", "r7"],
        ["r4", "poison"],
        ["r4"],
        ["poison"],
        ["poison"],  # the one retry; splitting did not count as one
        ["r6", "r7"],
    ]
    (letter,) = stream.on_failure()
    assert letter["requestContext"]["approximateInvokeCount"] == 2
    assert letter["responseContext"]["functionError"] == "Unhandled"
    assert letter["KinesisBatchInfo"]["startSequenceNumber"] == sequence[5]
    assert letter["KinesisBatchInfo"]["batchSize"] == 1
    assert emulator.kinesis is not None
    stats = emulator.kinesis.stats
    assert (stats.succeeded, sum(stats.discarded.values()), stats.bisections) == (7, 1, 3)


def test_records_older_than_the_maximum_age_are_given_up_without_being_sent(deploy):
    stream = Stream(deploy, fast_blueprint(max_record_age_s=1))
    stream.put("stale 1", "stale 2")
    time.sleep(1.3)

    _, handler = stream.run(lambda records: None)

    assert handler.batches == []
    (letter,) = stream.on_failure()
    assert letter["requestContext"]["condition"] == "RecordAgeExceeded"
    assert letter["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in letter
    assert letter["KinesisBatchInfo"]["batchSize"] == 2


def test_each_batch_comes_from_one_shard_in_sequence_order(deploy):
    stream = Stream(deploy, fast_blueprint(shards=2, kinesis_batch=4))
    for i in range(20):
        stream.put(f"m{i}", key=f"key-{i}")

    _, handler = stream.run(lambda records: None)

    delivered = []
    for batch in handler.batches:
        shards = {r["eventID"].split(":")[0] for r in batch}
        numbers = [int(r["kinesis"]["sequenceNumber"]) for r in batch]
        assert len(shards) == 1
        assert numbers == sorted(numbers)
        assert len(batch) <= 4
        delivered += [payload(r) for r in batch]
    assert sorted(delivered) == sorted(f"m{i}" for i in range(20))
    assert {r["eventID"].split(":")[0] for b in handler.batches for r in b} == {
        "shardId-000000000000",
        "shardId-000000000001",
    }


def test_latest_starts_after_what_the_stream_already_held(deploy):
    stream = Stream(deploy, fast_blueprint(starting_position="LATEST"))
    stream.put("before the mapping")
    emulator, handler = stream.emulator(lambda records: None)
    stream.put("after the mapping")
    with emulator:
        assert emulator.run_until_drained(30)

    assert handler.payloads() == [["after the mapping"]]


def test_records_are_shaped_like_lambdas_kinesis_event(deploy):
    stream = Stream(deploy, fast_blueprint())
    (sequence,) = stream.put("hello", key="tenant-1")

    _, handler = stream.run(lambda records: None)

    ((record,),) = handler.batches
    assert set(record) == {
        "kinesis", "eventSource", "eventVersion", "eventID", "eventName", "invokeIdentityArn",
        "awsRegion", "eventSourceARN",
    }  # fmt: skip
    assert record["kinesis"]["partitionKey"] == "tenant-1"
    assert record["kinesis"]["sequenceNumber"] == sequence
    assert record["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert abs(record["kinesis"]["approximateArrivalTimestamp"] - time.time()) < 60
    assert record["eventID"] == f"shardId-000000000000:{sequence}"
    assert record["eventName"] == "aws:kinesis:record"
    assert record["eventSourceARN"].endswith(f":stream/{stream.name}")


def test_what_was_given_up_is_replayed_from_s3_and_lands_once(deploy, logs, log_group):
    """The mapping gives a batch up while the function cannot take it; once it can, the
    replay invokes it again with the batch's event from the S3 on-failure record."""
    stream = Stream(deploy, fast_blueprint(bisect=False, kinesis_retries=1))
    start = int(time.time() * 1000) - 60_000
    stream.put(*(one_event(log_group, "k", f"given up {i}", start + i) for i in range(3)))
    emulator, _ = stream.emulator(fail_where(lambda text: True))  # an outage, say
    with emulator:
        assert emulator.run_until_drained(30)
    assert emulator.kinesis is not None
    assert emulator.kinesis.stats.discarded == {"RetryAttemptsExhausted": 3}
    assert read_stream_or_none(logs, log_group, "k") == []

    blueprint = stream.deployment.blueprint
    assert blueprint.kinesis is not None
    function, _ = make_function(stream.deployment, blueprint.kinesis.function, in_process=True)
    bucket = stream.deployment.destination(blueprint.kinesis.mapping.on_failure or "")
    s3 = stream.endpoints.client("s3")
    s3.put_object(Bucket=bucket.name, Key="aws/lambda/0-broken/shardId-0/x", Body=b"{not json")
    broken, replayed = replay(stream.deployment, function, delete=True)

    assert str(broken.error).startswith("not replayed:")
    assert (replayed.records, replayed.failed, replayed.error) == (3, (), None)
    assert [m for _, m in read_stream(logs, log_group, "k")] == [f"given up {i}" for i in range(3)]
    # deleted once replayed whole; what could not be read is left for a person
    assert stream.deployment.on_failure_records() == ["{not json"]


def test_an_on_failure_queue_has_nothing_to_replay(deploy):
    stream = Stream(deploy, fast_blueprint(kinesis_on_failure="sqs"))
    blueprint = stream.deployment.blueprint
    assert blueprint.kinesis is not None
    function, _ = make_function(stream.deployment, blueprint.kinesis.function, in_process=True)
    with pytest.raises(NotReplayable, match="metadata only"):
        replay(stream.deployment, function)
    with pytest.raises(NotReplayable, match="metadata only"):
        replay_event({"KinesisBatchInfo": {"shardId": "shardId-0"}})


def read_stream_or_none(logs: Any, group: str, stream: str) -> list[Any]:
    try:
        return read_stream(logs, group, stream)
    except logs.exceptions.ResourceNotFoundException:
        return []
