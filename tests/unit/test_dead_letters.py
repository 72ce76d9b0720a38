"""Dead letters are always deliverable: bodies SQS accepts, a client the time reserve bounds."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from forwarder.dead_letters import (
    CALL_TIMEOUT_MS,
    RESPONSE_MS,
    DeadLetter,
    DeadLetterQueue,
    dead_letter_body,
    letter_key,
    make_s3_client,
    make_sqs_client,
)
from forwarder.limits import SQS_MAX_MESSAGE_BYTES
from forwarder.model import InvalidPart, SourceRecord
from forwarder.settings import Settings

#: The characters SQS accepts in a message body (SendMessage reference).
SQS_BODY = re.compile("[\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


@pytest.mark.parametrize(
    "payload",
    [
        "noncharacters \ufffe and \uffff",
        "a lone surrogate \ud83d, half an emoji",
        "controls \x00\x01\x0b\x0c\x1f and \x7f",
        "plain text, an emoji \U0001f600 and é",
    ],
)
def test_a_dead_letter_body_holds_only_what_sqs_accepts_and_keeps_the_payload(payload):
    letter = DeadLetter(SourceRecord("id-1", payload, 1_700_000_000_000), "bad \uffff", "aws:sqs")

    body = dead_letter_body(letter)

    assert SQS_BODY.fullmatch(body)
    document = json.loads(body)
    assert document["payload"] == payload
    assert document["reason"] == "bad \uffff"


@pytest.mark.parametrize("make_client", [make_sqs_client, make_s3_client])
def test_a_dead_letter_call_cannot_outlast_its_share_of_the_time_reserve(monkeypatch, make_client):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = make_client().meta.config

    attempts = config.retries["total_max_attempts"]
    worst_ms = round((config.connect_timeout + config.read_timeout) * attempts * 1000)
    assert worst_ms <= CALL_TIMEOUT_MS
    # a large letter takes two calls (S3, then SQS); both fit the default reserve
    assert Settings().time_reserve_ms >= 2 * CALL_TIMEOUT_MS + RESPONSE_MS


# --- large letters go to S3, with the extended client's pointer in the queue --------------------

BUCKET = "forwarder-failures"
ARRIVAL_MS = 1_767_225_600_000  # 2026-01-01


class FakeSqs:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail = fail

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.fail:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "Send")
        self.batches.append(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class FakeS3:
    def __init__(self, fail: bool = False) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.fail = fail

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str) -> dict[str, Any]:
        if self.fail:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")
        self.objects[(Bucket, Key)] = Body
        return {}


def letter(payload: str | bytes, record_id: str = "49590000000000000000001") -> DeadLetter:
    return DeadLetter(SourceRecord(record_id, payload, ARRIVAL_MS), "not JSON", "aws:kinesis")


def queue(sqs: FakeSqs, s3: FakeS3 | None = None) -> DeadLetterQueue:
    return DeadLetterQueue(
        sqs, "https://sqs.example/123/dlq", s3_client=s3, bucket=BUCKET if s3 else None
    )


def test_a_letter_sqs_can_carry_goes_whole_to_the_queue():
    sqs, s3 = FakeSqs(), FakeS3()
    small = letter(b"x" * 1000)
    assert queue(sqs, s3).send([small]) == {}
    ((entry,),) = sqs.batches
    assert json.loads(entry["MessageBody"])["payload"] == "x" * 1000
    assert "MessageAttributes" not in entry
    assert s3.objects == {}


def test_a_letter_too_large_for_sqs_goes_to_s3_with_a_pointer_in_the_queue():
    sqs, s3 = FakeSqs(), FakeS3()
    payload = bytes(range(256)) * 3200  # 800 KB, not UTF-8: over 1 MiB in base64
    large = letter(payload)

    assert queue(sqs, s3).send([large]) == {}

    key = "dead-letters/kinesis/2026/01/01/49590000000000000000001.json"
    stored = s3.objects[(BUCKET, key)]
    assert len(stored) > SQS_MAX_MESSAGE_BYTES
    document = json.loads(stored)
    assert base64.b64decode(document["payload"]) == payload
    assert document["reason"] == "not JSON"
    ((entry,),) = sqs.batches
    assert json.loads(entry["MessageBody"]) == [
        "software.amazon.payloadoffloading.PayloadS3Pointer",
        {"s3BucketName": BUCKET, "s3Key": key},
    ]
    assert entry["MessageAttributes"] == {
        "ExtendedPayloadSize": {"DataType": "Number", "StringValue": str(len(stored))}
    }


def test_a_large_letter_is_stored_under_the_same_key_when_it_comes_again():
    s3 = FakeS3()
    large = letter("é" * 600_000)
    for _ in range(2):
        assert queue(FakeSqs(), s3).send([large]) == {}
    assert len(s3.objects) == 1


def test_a_record_id_cannot_leave_the_prefix_of_its_key():
    assert letter_key(letter("x", record_id="../../etc/passwd")) == (
        "dead-letters/kinesis/2026/01/01/.._.._etc_passwd.json"
    )


def test_without_a_bucket_a_large_letter_fails_its_record_naming_the_setting():
    sqs = FakeSqs()
    not_sent = queue(sqs).send([letter("é" * 600_000, "big"), letter("small", "ok")])
    assert list(not_sent) == ["big"]
    assert "DEAD_LETTER_BUCKET is not set" in not_sent["big"]
    assert [[e["Id"] for e in batch] for batch in sqs.batches] == [["0"]]


def test_a_letter_s3_refuses_fails_its_record_and_is_not_enqueued():
    sqs = FakeSqs()
    not_sent = queue(sqs, FakeS3(fail=True)).send([letter("é" * 600_000, "big")])
    assert not_sent["big"].startswith("dead-letter bucket: ")
    assert sqs.batches == []


def test_no_call_starts_without_time_for_it_and_the_answer():
    sqs, s3 = FakeSqs(), FakeS3()
    enough = CALL_TIMEOUT_MS + RESPONSE_MS + 1
    letters = [letter("é" * 600_000, "big"), letter("small", "ok")]

    not_sent = queue(sqs, s3).send(letters, lambda: enough - 1)

    assert set(not_sent) == {"big", "ok"}
    assert "too little time" in not_sent["big"]
    assert sqs.batches == []
    assert s3.objects == {}
    assert queue(sqs, s3).send(letters, lambda: enough) == {}


def test_letters_are_batched_within_sqs_limits():
    sqs = FakeSqs()
    letters = [letter("x" * 300_000, f"r{i}") for i in range(7)] + [
        letter("y", f"s{i}") for i in range(12)
    ]
    assert queue(sqs).send(letters) == {}
    sizes = [sum(len(e["MessageBody"].encode()) for e in batch) for batch in sqs.batches]
    assert all(size <= SQS_MAX_MESSAGE_BYTES for size in sizes)
    assert all(len(batch) <= 10 for batch in sqs.batches)
    assert sum(len(batch) for batch in sqs.batches) == 19


def test_a_queue_that_fails_fails_every_letter_of_the_batch():
    not_sent = queue(FakeSqs(fail=True)).send([letter("a", "r1"), letter("b", "r2")])
    assert set(not_sent) == {"r1", "r2"}
    assert all(why.startswith("dead-letter queue: ") for why in not_sent.values())


def test_a_checkpoint_write_fits_beside_the_response_in_the_reserve_of_a_short_timeout(
    monkeypatch,
):
    from forwarder.checkpoint_store import CALL_MS as CHECKPOINT_CALL_MS
    from forwarder.checkpoint_store import make_dynamodb_client
    from infra.blueprint import time_reserve_ms

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = make_dynamodb_client().meta.config
    attempts = config.retries["total_max_attempts"]
    assert (
        round((config.connect_timeout + config.read_timeout) * attempts * 1000)
        <= CHECKPOINT_CALL_MS
    )
    # The CDK app keeps a quarter of a 4 s timeout: the write and the response fit in it.
    assert time_reserve_ms(4) >= CHECKPOINT_CALL_MS + RESPONSE_MS


# --- the user records of a KPL aggregate travel in one letter --------------------------------


def test_the_letter_of_an_aggregate_carries_its_bad_user_records_alone():
    parent = SourceRecord("49590000000000000000001", b"<the whole aggregate>", ARRIVAL_MS)
    parts = (
        InvalidPart(3, "device-7", b"\xff\xfe binary", "payload is neither UTF-8 text nor gzip"),
        InvalidPart(5, "device-8", b"raw text", "no destination"),
    )
    letter = DeadLetter(parent, "user record 3 of the KPL aggregate: ...", "aws:kinesis", parts)

    document = json.loads(dead_letter_body(letter))

    assert document["recordId"] == parent.record_id
    assert document["reason"] == letter.reason
    assert "payload" not in document  # not the whole aggregate
    users = document["userRecords"]
    assert [u["subSequenceNumber"] for u in users] == [3, 5]
    assert [u["partitionKey"] for u in users] == ["device-7", "device-8"]
    assert [u["reason"] for u in users] == [part.reason for part in parts]
    assert base64.b64decode(users[0]["payload"]) == b"\xff\xfe binary"
    assert (users[1]["payloadEncoding"], users[1]["payload"]) == ("text", "raw text")


def test_an_aggregate_of_many_bad_user_records_is_one_message_or_one_large_letter():
    """Each user record a letter of its own would let one hostile 1 MiB record of 150,000 tiny
    bad user records fill the queue (and, half sent, repeat on every retry): one letter holds
    them all, in S3 when it is too large for SQS."""
    parent = SourceRecord("49590000000000000000001", b"agg", ARRIVAL_MS, message_group="shard-0")
    parts = tuple(InvalidPart(n, "k", b"\xff" * 8, "not text") for n in range(150_000))
    sqs, s3 = FakeSqs(), FakeS3()

    assert queue(sqs, s3).send([DeadLetter(parent, "bad", "aws:kinesis", parts)]) == {}

    ((message,),) = sqs.batches
    ((_, key),) = s3.objects
    stored = json.loads(s3.objects[(BUCKET, key)])
    assert len(stored["userRecords"]) == 150_000
    assert json.loads(message["MessageBody"])[1]["s3Key"] == key
