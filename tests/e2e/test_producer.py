"""Sending many records at once: the batch APIs, in order, each record's id given back."""

from __future__ import annotations

from local.workload import Outbound, Producer


def test_send_many_keeps_the_order_and_returns_each_records_id(deploy, sqs, kinesis):
    deployment = deploy()
    queue = deployment.queue("SqsQueue").url
    stream = deployment.stream("KinesisStream").name
    producer = Producer(sqs, kinesis, queue, stream)
    records = [
        Outbound("sqs" if i % 3 else "kinesis", f"record {i} " + "x" * 40_000, "t")
        for i in range(40)
    ]
    records.append(Outbound("sqs", b"\x1f\x8b binary", "t"))

    identifiers = producer.send_many(records)

    assert len(identifiers) == len(records)
    received: dict[str, str] = {}
    while answer := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        received |= {m["MessageId"]: m["Body"] for m in answer}
    sent_to_sqs = {
        identifier: record.payload
        for record, (_, identifier) in zip(records, identifiers, strict=True)
        if record.source == "sqs"
    }
    assert set(received) == set(sent_to_sqs)
    assert received[identifiers[-1][1]] == "H4sgYmluYXJ5"  # bytes travel as base64
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    stored = kinesis.get_records(ShardIterator=iterator)["Records"]
    kinesis_ids = [
        (s, i) for r, (s, i) in zip(records, identifiers, strict=True) if r.source == "kinesis"
    ]
    assert [(shard, r["SequenceNumber"]) for r in stored] == kinesis_ids
    assert [r["Data"].decode() for r in stored] == [
        r.payload for r in records if r.source == "kinesis"
    ]
