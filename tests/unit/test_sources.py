"""The envelope: each record's ordered group (``SourceRecord.message_group``)."""

from __future__ import annotations

from typing import Any

import pytest

from forwarder.dead_letters import DeadLetter, DeadLetterQueue
from forwarder.sources import UNKNOWN_SHARD, source_records
from local.lambda_events import kinesis_event, sqs_event


def test_a_kinesis_record_belongs_to_its_shard():
    event = kinesis_event([b"a", b"b"])
    event["Records"][1]["eventID"] = "shardId-000000000007:49590000000000000000000000000001"

    source, records = source_records(event)

    assert source == "aws:kinesis"
    assert [r.message_group for r in records] == ["shardId-000000000000", "shardId-000000000007"]
    assert [r.record_id for r in records] == [
        r["kinesis"]["sequenceNumber"] for r in event["Records"]
    ]


@pytest.mark.parametrize("event_id", [None, "", "no-colon", ":4959", 17])
def test_a_kinesis_record_without_a_readable_shard_still_has_a_group(event_id):
    event = kinesis_event([b"a", b"b"])
    for record in event["Records"]:
        if event_id is None:
            del record["eventID"]
        else:
            record["eventID"] = event_id

    _, records = source_records(event)

    # a batch comes from one shard: its records still form one group
    assert [r.message_group for r in records] == [UNKNOWN_SHARD, UNKNOWN_SHARD]


def test_a_kinesis_record_with_bad_base64_keeps_its_shard():
    event = kinesis_event([b"a"])
    event["Records"][0]["kinesis"]["data"] = "not*base64"

    (record,) = source_records(event)[1]

    assert record.envelope_error is not None
    assert record.message_group == "shardId-000000000000"


def test_sqs_records_have_their_fifo_group_or_none():
    assert [r.message_group for r in source_records(sqs_event(["a", "b"]))[1]] == [None, None]
    fifo = source_records(sqs_event(["a", "b"], group="orders"))[1]
    assert [r.message_group for r in fifo] == ["orders", "orders"]


def test_a_fair_queue_group_is_not_an_ordered_group():
    """Standard queues carry MessageGroupId too (fair queues): only a .fifo queue holds back."""
    event = sqs_event(["a", "b"], group="tenant-1")
    for raw in event["Records"]:
        raw["eventSourceARN"] = raw["eventSourceARN"].removesuffix(".fifo")

    assert [r.message_group for r in source_records(event)[1]] == [None, None]


class RecordingSqs:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_a_kinesis_dead_letter_in_a_fifo_queue_is_grouped_by_its_shard():
    _, records = source_records(kinesis_event([b"a"]))
    _, sqs_records = source_records(sqs_event(["b"]))
    client = RecordingSqs()

    not_sent = DeadLetterQueue(client, "https://sqs.example/123/dlq.fifo").send(
        [DeadLetter(records[0], "bad", "aws:kinesis"), DeadLetter(sqs_records[0], "bad", "aws:sqs")]
    )

    assert not_sent == {}
    assert [e["MessageGroupId"] for e in client.entries] == ["shardId-000000000000", "forwarder"]
    assert client.entries[0]["MessageDeduplicationId"] == records[0].record_id
