"""The handler end to end against moto in server mode behind the strict CloudWatch Logs layer."""

from __future__ import annotations

import base64
import json
import random
import time

import pytest

from forwarder.records import split_message
from forwarder.settings import ConfigurationError
from local.aggregation import aggregate
from local.lambda_events import (
    LambdaContext,
    failed_ids,
    kinesis_event,
    many_events,
    now_ms,
    one_event,
    sqs_event,
    subscription_payload,
)
from local.readback import read_stream as read_events
from local.readback import stream_names

ALLOW = {"ALLOWED_LOG_GROUPS": "/app/*"}


def test_out_of_order_events_land_sorted_in_one_request(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW)
    logs.create_log_stream(logGroupName=log_group, logStreamName="app")
    base = now_ms() - 60_000
    stamps = [base + offset for offset in random.Random(7).sample(range(50_000), 200)]
    event = sqs_event([one_event(log_group, "app", f"line {t}", t) for t in stamps])

    response = handler.handler(event, LambdaContext())

    assert failed_ids(response) == []
    assert read_events(logs, log_group, "app") == [(t, f"line {t}") for t in sorted(stamps)]
    assert len(strict.state.calls_of("PutLogEvents")) == 1


def test_equal_timestamps_keep_arrival_order(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW)
    stamp = now_ms()
    event = sqs_event([one_event(log_group, "app", f"#{i}", stamp) for i in range(20)])

    assert failed_ids(handler.handler(event, LambdaContext())) == []
    assert [m for _, m in read_events(logs, log_group, "app")] == [f"#{i}" for i in range(20)]


def test_several_streams_each_get_their_events(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW)
    stamp = now_ms()
    bodies = [one_event(log_group, f"stream-{i % 3}", f"m{i}", stamp + i) for i in range(30)]
    for s in range(3):
        logs.create_log_stream(logGroupName=log_group, logStreamName=f"stream-{s}")

    assert failed_ids(handler.handler(sqs_event(bodies), LambdaContext())) == []
    for s in range(3):
        expected = [(stamp + i, f"m{i}") for i in range(30) if i % 3 == s]
        assert read_events(logs, log_group, f"stream-{s}") == expected
    assert len(strict.state.calls_of("PutLogEvents")) == 3


def test_newline_delimited_json_lands_at_every_destination_it_names(
    load_handler, strict, logs, log_group
):
    handler = load_handler(**ALLOW)
    for stream in ("fluent-0", "fluent-1", "x"):
        logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
    stamp = now_ms()
    lines = [one_event(log_group, f"fluent-{i % 2}", f"line {i}", stamp + i) for i in range(6)]
    event = kinesis_event(
        ["\n".join(lines).encode() + b"\n", one_event(log_group, "x", "y", stamp).encode()]
    )

    assert failed_ids(handler.handler(event, LambdaContext())) == []
    for s in range(2):
        expected = [(stamp + i, f"line {i}") for i in range(6) if i % 2 == s]
        assert read_events(logs, log_group, f"fluent-{s}") == expected
    assert len(strict.state.calls_of("PutLogEvents")) == 3  # one per stream


def test_missing_stream_is_created_once(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW)
    event = sqs_event([one_event(log_group, "new-stream", "hello", now_ms())])

    assert failed_ids(handler.handler(event, LambdaContext())) == []
    assert stream_names(logs, log_group) == {"new-stream"}
    assert len(strict.state.calls_of("CreateLogStream")) == 1
    assert strict.state.calls_of("CreateLogGroup") == []


def test_a_stream_still_missing_after_creation_is_retried_not_dead_lettered(
    load_handler, strict, logs, log_group, sqs
):
    queue = sqs.create_queue(QueueName=f"letters-{time.time_ns()}")["QueueUrl"]
    handler = load_handler(**ALLOW, INVALID_RECORDS="dead-letter", DEAD_LETTER_QUEUE_URL=queue)
    logs.create_log_stream(logGroupName=log_group, logStreamName="s")
    event = kinesis_event([one_event(log_group, "s", "hello", now_ms()).encode()])
    strict.inject("PutLogEvents", "missing", 2)  # before and after the (needless) creation

    response = handler.handler(event, LambdaContext())

    assert failed_ids(response) == [event["Records"][0]["kinesis"]["sequenceNumber"]]
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)  # valid: not dead-lettered
    assert len(strict.state.calls_of("CreateLogStream")) == 1
    assert failed_ids(handler.handler(event, LambdaContext())) == []  # the retry lands it
    assert [m for _, m in read_events(logs, log_group, "s")] == ["hello"]


def test_missing_group_fails_unless_creation_is_enabled(load_handler, strict, logs):
    group = f"/app/absent-{time.time_ns()}"
    event = sqs_event([one_event(group, "s", "hello", now_ms())])

    handler = load_handler(**ALLOW)
    response = handler.handler(event, LambdaContext())
    assert failed_ids(response) == [event["Records"][0]["messageId"]]
    assert strict.state.calls_of("CreateLogGroup") == []

    handler = load_handler(**ALLOW, CREATE_LOG_GROUPS="true")
    assert failed_ids(handler.handler(event, LambdaContext())) == []
    assert read_events(logs, group, "s")[0][1] == "hello"


def test_missing_stream_fails_when_creation_is_disabled(load_handler, strict, log_group):
    handler = load_handler(**ALLOW, CREATE_LOG_STREAMS="false")
    event = sqs_event([one_event(log_group, "nope", "hello", now_ms())])

    assert failed_ids(handler.handler(event, LambdaContext())) == [event["Records"][0]["messageId"]]
    assert strict.state.calls_of("CreateLogStream") == []


def test_disallowed_group_fails_alone(load_handler, strict, logs, log_group, capsys):
    handler = load_handler(ALLOWED_LOG_GROUPS="/app/*")
    event = sqs_event(
        [
            one_event("/secret/audit", "s", "sneaky", now_ms()),
            one_event(log_group, "s", "fine", now_ms()),
        ]
    )

    response = handler.handler(event, LambdaContext())

    assert failed_ids(response) == [event["Records"][0]["messageId"]]
    assert read_events(logs, log_group, "s")[0][1] == "fine"
    assert "not allowed by ALLOWED_LOG_GROUPS" in capsys.readouterr().out


def test_drop_policy_reports_nothing_and_logs_the_drop(load_handler, strict, capsys):
    handler = load_handler(ALLOWED_LOG_GROUPS="/app/*", INVALID_RECORDS="drop")
    event = sqs_event([one_event("/secret/audit", "s", "sneaky", now_ms())])

    assert failed_ids(handler.handler(event, LambdaContext())) == []
    out = capsys.readouterr().out
    assert '"disposition":"dropped"' in out
    assert '"RecordsDropped":[1.0]' in out


def test_payload_forms_over_sqs(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW, DEFAULT_LOG_GROUP=log_group, DEFAULT_LOG_STREAM="raw")
    t = now_ms() - 10_000
    subscription = subscription_payload(log_group, "from-sub", [(t + 5, "s1"), (t + 6, "s2")])
    bodies = [
        one_event(log_group, "one", {"level": "info", "n": 1}, t),
        many_events(log_group, "many", [(t + 2, "b"), (t + 1, "a")]),
        "plain text, not JSON",
        json.dumps({"some": "json without a destination"}),
        base64.b64encode(subscription).decode(),
        base64.b64encode(subscription_payload("x", "y", [], "CONTROL_MESSAGE")).decode(),
    ]
    event = sqs_event(bodies)

    assert failed_ids(handler.handler(event, LambdaContext())) == []
    assert read_events(logs, log_group, "one") == [(t, '{"level":"info","n":1}')]
    assert read_events(logs, log_group, "many") == [(t + 1, "a"), (t + 2, "b")]
    raw = [m for _, m in read_events(logs, log_group, "raw")]
    assert raw == ["plain text, not JSON", '{"some": "json without a destination"}']
    assert read_events(logs, log_group, "from-sub") == [(t + 5, "s1"), (t + 6, "s2")]


def test_kinesis_subscription_payload_with_renaming(load_handler, strict, logs, log_group):
    handler = load_handler(
        ALLOWED_LOG_GROUPS="/app/*",
        SUBSCRIPTION_LOG_GROUP=log_group,
        SUBSCRIPTION_LOG_STREAM="{owner}/{logGroup}/{logStream}",
    )
    t = now_ms() - 5_000
    data = subscription_payload("/source/app", "i-123", [(t, "from another account")])
    event = kinesis_event([data, json.dumps({"nothing": 1}).encode(), b"\xff\xfe not utf-8"])

    response = handler.handler(event, LambdaContext())

    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    # no default destination: the JSON without one and the binary record fail, each alone
    assert failed_ids(response) == sequence[1:]
    stream = "123456789012//source/app/i-123"
    assert read_events(logs, log_group, stream) == [(t, "from another account")]


def test_kinesis_bad_base64_fails_and_the_rest_of_its_shard_is_sent_and_reported_after(
    load_handler, strict, logs, log_group, capsys
):
    handler = load_handler(**ALLOW)
    logs.create_log_stream(logGroupName=log_group, logStreamName="k")
    t = now_ms()
    event = kinesis_event([one_event(log_group, "k", f"ok {i}", t + i).encode() for i in range(4)])
    event["Records"][1]["kinesis"]["data"] = "not*base64"
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]

    response = handler.handler(event, LambdaContext())

    # Lambda retries the shard from the bad record, so the later ones are reported with it; but
    # they are sent now, so that they land even if the bad record is given up with its batch
    assert failed_ids(response) == sequence[1:]
    assert [m for _, m in read_events(logs, log_group, "k")] == ["ok 0", "ok 2", "ok 3"]
    (call,) = strict.state.calls_of("PutLogEvents")
    assert [e["message"] for e in call["logEvents"]] == ["ok 0", "ok 2", "ok 3"]
    assert f"held back: record {sequence[1]} of the same message group or shard" in (
        capsys.readouterr().out
    )


def test_entity_is_sent_and_its_rejection_fails_nothing(
    load_handler, strict, logs, log_group, capsys
):
    handler = load_handler(**ALLOW)
    entity = {"keyAttributes": {"Type": "Service", "Name": "checkout", "Environment": "prod"}}
    event = sqs_event([one_event(log_group, "e", "with entity", now_ms(), entity=entity)])
    logs.create_log_stream(logGroupName=log_group, logStreamName="e")
    strict.state.reject_entities = "InvalidEntity"

    assert failed_ids(handler.handler(event, LambdaContext())) == []
    (call,) = strict.state.calls_of("PutLogEvents")
    assert call["entity"] == entity
    assert read_events(logs, log_group, "e")[0][1] == "with entity"
    out = capsys.readouterr().out
    assert '"error_type":"InvalidEntity"' in out
    assert '"EntityRejections":[1.0]' in out


def test_oversized_message_is_split_and_joins_back(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW)
    message = ("é" * 300_000 + "x" * 700_000) * 2  # 2,600,000 UTF-8 bytes
    event = sqs_event([one_event(log_group, "big", message, now_ms())])

    assert failed_ids(handler.handler(event, LambdaContext())) == []
    parts = [m for _, m in read_events(logs, log_group, "big")]
    expected = [part for part, _ in split_message(message)]
    assert len(expected) == 3  # ceil(2,600,000 / 1,048,550)
    assert "".join(expected) == message
    # each part is an event of its own (and a request of its own): they land in any order
    assert sorted(parts) == sorted(expected)
    assert len({t for t, _ in read_events(logs, log_group, "big")}) == 1


def test_large_batch_uses_the_fewest_valid_requests(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW)
    t = now_ms() - 1000
    logs.create_log_stream(logGroupName=log_group, logStreamName="s")
    sizes = [600_000, 300_000, 600_000, 100_000, 400_000, 20_000, 10_000]  # 2,030,000 bytes
    bodies = [one_event(log_group, "s", "z" * size, t + i) for i, size in enumerate(sizes)]

    assert failed_ids(handler.handler(sqs_event(bodies), LambdaContext())) == []
    # a contiguous cut needs 3 requests; {600k, 400k, 20k} + {600k, 300k, 100k, 10k} needs 2
    assert len(strict.state.calls_of("PutLogEvents")) == 2
    landed = read_events(logs, log_group, "s")
    assert sorted(len(m) for _, m in landed) == sorted(sizes)


def test_service_rejections_map_back_to_their_records(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW)
    logs.put_retention_policy(logGroupName=log_group, retentionInDays=1)
    for stream in ("old", "new"):
        logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
    now = now_ms()
    hour = 3600 * 1000
    expired = now - 24 * hour - 10 * 60_000  # within 14 days, beyond the 1-day retention
    recent = now - 20 * 60_000  # less than 24 h after the expired one: one request
    too_new = now + 2 * hour + 60_000  # inside the clock-skew margin: the service judges
    event = sqs_event(
        [
            one_event(log_group, "old", "expired", expired),
            one_event(log_group, "old", "fine 1", recent),
            one_event(log_group, "new", "fine 2", now),
            one_event(log_group, "new", "too new", too_new),
        ]
    )
    ids = [r["messageId"] for r in event["Records"]]

    response = handler.handler(event, LambdaContext())

    assert failed_ids(response) == [ids[0], ids[3]]
    assert read_events(logs, log_group, "old") == [(recent, "fine 1")]
    assert read_events(logs, log_group, "new") == [(now, "fine 2")]
    calls = {c["logStreamName"]: c for c in strict.state.calls_of("PutLogEvents")}
    assert [e["message"] for e in calls["old"]["logEvents"]] == ["expired", "fine 1"]
    assert [e["message"] for e in calls["new"]["logEvents"]] == ["fine 2", "too new"]


def test_events_clearly_too_old_or_too_new_are_not_sent(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW)
    logs.create_log_stream(logGroupName=log_group, logStreamName="r")
    now = now_ms()
    event = sqs_event(
        [
            one_event(log_group, "r", "ancient", now - 15 * 24 * 3600 * 1000),
            one_event(log_group, "r", "fine", now),
            one_event(log_group, "r", "future", now + 3 * 3600 * 1000),
        ]
    )
    ids = [r["messageId"] for r in event["Records"]]

    assert failed_ids(handler.handler(event, LambdaContext())) == [ids[0], ids[2]]
    (call,) = strict.state.calls_of("PutLogEvents")
    assert [e["message"] for e in call["logEvents"]] == ["fine"]


def test_fifo_group_after_a_failure_is_held_back(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW)
    t = now_ms()
    first = sqs_event(
        [
            one_event(log_group, "f", "a1", t),
            one_event("/forbidden", "f", "a2", t + 1),
            one_event(log_group, "f", "a3", t + 2),
        ],
        group="A",
    )
    other = sqs_event([one_event(log_group, "f", "b1", t + 3)], group="B")
    event = {"Records": first["Records"] + other["Records"]}
    ids = [r["messageId"] for r in event["Records"]]

    response = handler.handler(event, LambdaContext())

    assert failed_ids(response) == [ids[1], ids[2]]
    assert [m for _, m in read_events(logs, log_group, "f")] == ["a1", "b1"]


def test_dead_letter_policy_keeps_payload_and_reason(load_handler, strict, sqs, logs, log_group):
    queue_url = sqs.create_queue(QueueName=f"dlq-{time.time_ns()}")["QueueUrl"]
    handler = load_handler(**ALLOW, INVALID_RECORDS="dead-letter", DEAD_LETTER_QUEUE_URL=queue_url)
    bad = one_event("/forbidden", "s", "payload kept", now_ms())
    event = sqs_event([bad, one_event(log_group, "s", "fine", now_ms())])

    assert failed_ids(handler.handler(event, LambdaContext())) == []
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    (letter,) = [json.loads(m["Body"]) for m in messages]
    assert letter["payload"] == bad
    assert letter["recordId"] == event["Records"][0]["messageId"]
    assert "not allowed" in letter["reason"]
    assert read_events(logs, log_group, "s")[0][1] == "fine"


def test_a_dead_letter_too_large_for_sqs_lands_in_s3_with_a_pointer_in_the_queue(
    load_handler, strict, sqs, s3, logs, log_group
):
    queue_url = sqs.create_queue(QueueName=f"dlq-{time.time_ns()}")["QueueUrl"]
    bucket = f"failures-{time.time_ns()}"
    s3.create_bucket(Bucket=bucket)
    handler = load_handler(
        **ALLOW,
        INVALID_RECORDS="dead-letter",
        DEAD_LETTER_QUEUE_URL=queue_url,
        DEAD_LETTER_BUCKET=bucket,
    )
    payload = random.Random(5).randbytes(800_000)  # not UTF-8: over 1 MiB in base64
    event = kinesis_event([payload, one_event(log_group, "k", "fine", now_ms()).encode()])

    assert failed_ids(handler.handler(event, LambdaContext())) == []

    (message,) = sqs.receive_message(
        QueueUrl=queue_url, MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    pointer_class, pointer = json.loads(message["Body"])
    assert pointer_class == "software.amazon.payloadoffloading.PayloadS3Pointer"
    assert pointer["s3BucketName"] == bucket
    stored = s3.get_object(Bucket=bucket, Key=pointer["s3Key"])["Body"].read()
    size = message["MessageAttributes"]["ExtendedPayloadSize"]
    assert (size["DataType"], size["StringValue"]) == ("Number", str(len(stored)))
    letter = json.loads(stored)
    assert base64.b64decode(letter["payload"]) == payload
    assert letter["recordId"] == event["Records"][0]["kinesis"]["sequenceNumber"]
    assert [m for _, m in read_events(logs, log_group, "k")] == ["fine"]


def test_dead_letter_failure_falls_back_to_reporting(load_handler, strict):
    handler = load_handler(
        **ALLOW,
        INVALID_RECORDS="dead-letter",
        DEAD_LETTER_QUEUE_URL="http://127.0.0.1:1/123456789012/unreachable",
    )
    event = sqs_event([one_event("/forbidden", "s", "x", now_ms())])

    assert failed_ids(handler.handler(event, LambdaContext())) == [event["Records"][0]["messageId"]]


@pytest.mark.parametrize(("fault", "count"), [("throttle", 2), ("unavailable", 2), ("drop", 1)])
def test_transient_faults_are_retried_by_botocore(
    load_handler, strict, logs, log_group, fault, count
):
    handler = load_handler(**ALLOW)
    logs.create_log_stream(logGroupName=log_group, logStreamName="t")
    strict.inject("PutLogEvents", fault, count)
    event = sqs_event([one_event(log_group, "t", "survives", now_ms())])

    assert failed_ids(handler.handler(event, LambdaContext())) == []
    assert [m for _, m in read_events(logs, log_group, "t")] == ["survives"]
    assert len(strict.state.calls_of("PutLogEvents")) == count + 1


def test_persistent_throttling_fails_the_records_it_carried(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW, AWS_MAX_ATTEMPTS="2")
    logs.create_log_stream(logGroupName=log_group, logStreamName="t")
    strict.inject("PutLogEvents", "throttle", 2)
    event = sqs_event([one_event(log_group, "t", "throttled", now_ms())] * 3)

    response = handler.handler(event, LambdaContext())

    assert failed_ids(response) == [r["messageId"] for r in event["Records"]]
    assert read_events(logs, log_group, "t") == []
    assert len(strict.state.calls_of("PutLogEvents")) == 2  # one request, botocore's 2 attempts


def test_slow_endpoint_with_little_time_fails_in_time(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW, TIME_RESERVE_MS="500")
    logs.create_log_stream(logGroupName=log_group, logStreamName="slow")
    strict.inject("PutLogEvents", "delay", 1, seconds=4)
    event = sqs_event([one_event(log_group, "slow", "late", now_ms())])
    context = LambdaContext(budget_ms=2000)

    started = time.monotonic()
    response = handler.handler(event, context)

    assert time.monotonic() - started < 1.9
    assert failed_ids(response) == [event["Records"][0]["messageId"]]


def test_a_reserve_that_leaves_no_time_to_send_is_refused(load_handler, strict, log_group):
    """A 3 s timeout with the 3 s default reserve would fail every record on every delivery:
    the invocation fails, naming the variable, and nothing is sent (the batch is retried)."""
    handler = load_handler(**ALLOW, TIME_RESERVE_MS="1000")
    event = sqs_event([one_event(log_group, "slow", "x", now_ms())])

    with pytest.raises(ConfigurationError, match="TIME_RESERVE_MS=1000 leaves no time to send"):
        handler.handler(event, LambdaContext(budget_ms=900))

    assert strict.state.calls_of("PutLogEvents") == []


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": "nope"}, []])
def test_events_without_records_do_nothing(load_handler, strict, event):
    handler = load_handler(**ALLOW)
    assert handler.handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert strict.state.calls == []


def test_requests_run_concurrently_up_to_the_bound(load_handler, strict, logs, log_group):
    handler = load_handler(**ALLOW, MAX_CONCURRENT_REQUESTS="4")
    streams = [f"c{i}" for i in range(10)]
    for stream in streams:
        logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
    strict.inject("PutLogEvents", "delay", len(streams), seconds=0.3)
    event = sqs_event([one_event(log_group, s, "x", now_ms()) for s in streams])

    assert failed_ids(handler.handler(event, LambdaContext())) == []
    assert strict.state.max_in_flight == 4


# --- KPL aggregated records --------------------------------------------------------------------


def test_aggregated_records_land_in_order_in_the_fewest_requests(
    load_handler, strict, logs, log_group, capsys
):
    handler = load_handler(**ALLOW)
    t = now_ms() - 60_000
    users = [
        (f"device-{i % 5}", one_event(log_group, "kpl", f"m{i:04}", t + i).encode())
        for i in range(3000)
    ]
    aggregates = aggregate(users, max_bytes=64 * 1024)  # many aggregates, as a busy KPL writes
    assert len(aggregates) > 5
    event = kinesis_event([data for _, data in aggregates])

    assert failed_ids(handler.handler(event, LambdaContext())) == []

    assert [m for _, m in read_events(logs, log_group, "kpl")] == [f"m{i:04}" for i in range(3000)]
    summary = batch_summary(capsys.readouterr().out)
    assert summary["user_records_received"] == 3000
    assert summary["requests_sent"] == summary["requests_lower_bound"] == 1


def test_a_bad_user_record_is_dead_lettered_alone_and_a_corrupt_aggregate_whole(
    load_handler, strict, sqs, logs, log_group
):
    queue_url = sqs.create_queue(QueueName=f"dlq-{time.time_ns()}")["QueueUrl"]
    handler = load_handler(**ALLOW, INVALID_RECORDS="dead-letter", DEAD_LETTER_QUEUE_URL=queue_url)
    t = now_ms()
    ((_, with_a_bad_one),) = aggregate(
        [
            ("a", one_event(log_group, "kpl", "first", t).encode()),
            ("b", one_event("/forbidden", "kpl", "not allowed", t).encode()),
            ("c", one_event(log_group, "kpl", "third", t + 1).encode()),
        ]
    )
    ((_, corrupt),) = aggregate([("d", one_event(log_group, "kpl", "lost?", t).encode())])
    corrupt = corrupt[:-1] + bytes([corrupt[-1] ^ 0xFF])
    after = one_event(log_group, "kpl", "after", t + 2).encode()
    event = kinesis_event([with_a_bad_one, corrupt, after])
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]

    assert failed_ids(handler.handler(event, LambdaContext())) == []

    assert [m for _, m in read_events(logs, log_group, "kpl")] == ["first", "third", "after"]
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    letters = sorted((json.loads(m["Body"]) for m in messages), key=lambda d: d["recordId"])
    assert [d["recordId"] for d in letters] == sequence[:2]
    parts, whole = letters
    ((part),) = parts["userRecords"]
    assert (part["subSequenceNumber"], part["partitionKey"]) == (1, "b")
    assert json.loads(part["payload"])["message"] == "not allowed"
    assert "not allowed by ALLOWED_LOG_GROUPS" in part["reason"]
    assert parts["reason"].startswith("user record 1 of the KPL aggregate: ")
    assert "userRecords" not in whole
    assert base64.b64decode(whole["payload"]) == corrupt
    assert whole["reason"].startswith("KPL aggregated record is corrupt: its MD5 digest")


def batch_summary(output: str) -> dict:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (summary,) = [line for line in lines if line.get("message") == "batch forwarded"]
    return summary
