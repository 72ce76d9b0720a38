"""Records to send, how to send them, and the demo's mixed workload.

``demo_workload`` builds what a newcomer should see handled: several services' logs with
out-of-order timestamps over SQS and Kinesis, both payload shapes, a message over 1 MB that must
be split (gzip-compressed, so it fits in an SQS message), an event with an entity, a
subscription-filter payload, a KPL producer's aggregated record, one event too old to accept,
one malformed record, one event from a clock three hours fast and one a little early (retried,
then given up with its data). Each record says what should become of it, and the workload knows
every event that must land, per stream, so the demo can check the result rather than just print
it."""

from __future__ import annotations

import base64
import gzip
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from local.aggregation import aggregate
from local.lambda_events import many_events, one_event, subscription_payload
from local.readback import Event, StreamKey

DAY_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000


class Fate(StrEnum):
    """Where a record should end up."""

    LANDS = "lands in CloudWatch Logs"
    SQS_DLQ = "SQS dead-letter queue (redrive after maxReceiveCount)"
    DEAD_LETTERED = "function's dead-letter queue (payload and reason)"
    ON_FAILURE = "Kinesis on-failure destination (after the retries)"


@dataclass(frozen=True, slots=True)
class Outbound:
    """One record to send. ``payload`` is the SQS body (text) or the Kinesis data (bytes)."""

    source: str  # "sqs" or "kinesis"
    payload: str | bytes
    label: str
    fate: Fate = Fate.LANDS
    partition_key: str = "default"


@dataclass(slots=True)
class Workload:
    """Records in sending order, the log groups they need, and the events that must land."""

    records: list[Outbound] = field(default_factory=list)
    log_groups: list[str] = field(default_factory=list)
    #: Groups no one creates beforehand: the forwarder does (CREATE_LOG_GROUPS).
    created_groups: list[str] = field(default_factory=list)
    expected: dict[StreamKey, list[Event]] = field(default_factory=lambda: defaultdict(list))

    def count(self, source: str, fate: Fate | None = None) -> int:
        return sum(
            1 for r in self.records if r.source == source and (fate is None or r.fate == fate)
        )


class Producer:
    """Sends records to one queue and one stream, as an application would."""

    def __init__(self, sqs: Any, kinesis: Any, queue_url: str, stream_name: str) -> None:
        self._sqs = sqs
        self._kinesis = kinesis
        self._queue_url = queue_url
        self._stream_name = stream_name

    def send(self, record: Outbound, *, message_group: str | None = None) -> str:
        """Send one record; the SQS message id or the Kinesis sequence number. To a FIFO queue,
        the message group is ``message_group`` or else the record's partition key, and each
        message gets a deduplication id of its own."""
        if record.source == "sqs":
            arguments: dict[str, Any] = {
                "QueueUrl": self._queue_url,
                "MessageBody": sqs_body(record.payload),
            }
            if self._queue_url.endswith(".fifo"):
                arguments["MessageGroupId"] = message_group or record.partition_key
                arguments["MessageDeduplicationId"] = uuid.uuid4().hex
            elif message_group is not None:
                arguments["MessageGroupId"] = message_group
            return str(self._sqs.send_message(**arguments)["MessageId"])
        answer = self._kinesis.put_record(
            StreamName=self._stream_name, Data=_data(record), PartitionKey=record.partition_key
        )
        return str(answer["SequenceNumber"])

    def send_all(self, records: list[Outbound]) -> None:
        for record in records:
            self.send(record)

    def send_many(self, records: Sequence[Outbound]) -> list[tuple[str, str]]:
        """Send many records with the batch APIs (SendMessageBatch: 10 messages, 256 KiB;
        PutRecords: 500 records, 5 MiB), in order; per record its shard (Kinesis) and its id
        (the SQS message id or the Kinesis sequence number). Not for FIFO queues. Raises if an
        entry is refused: the caller's ledger must not count a record that was never sent."""
        found: dict[int, tuple[str, str]] = {}
        for source, limit, max_bytes in (("sqs", 10, 256 * 1024), ("kinesis", 500, 5 << 20)):
            chosen = [(i, r) for i, r in enumerate(records) if r.source == source]
            for chunk in _chunks(chosen, limit, max_bytes):
                found |= self._send_sqs(chunk) if source == "sqs" else self._send_kinesis(chunk)
        return [found[i] for i in range(len(records))]

    def _send_sqs(self, chunk: list[tuple[int, Outbound]]) -> dict[int, tuple[str, str]]:
        entries = [{"Id": str(i), "MessageBody": sqs_body(r.payload)} for i, r in chunk]
        answer = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        if answer.get("Failed"):
            raise RuntimeError(f"SendMessageBatch refused {answer['Failed']}")
        return {int(e["Id"]): ("", str(e["MessageId"])) for e in answer["Successful"]}

    def _send_kinesis(self, chunk: list[tuple[int, Outbound]]) -> dict[int, tuple[str, str]]:
        entries = [{"Data": _data(r), "PartitionKey": r.partition_key} for _, r in chunk]
        answer = self._kinesis.put_records(StreamName=self._stream_name, Records=entries)
        if answer.get("FailedRecordCount"):
            raise RuntimeError(f"PutRecords refused {answer['FailedRecordCount']} records")
        return {
            i: (str(result["ShardId"]), str(result["SequenceNumber"]))
            for (i, _), result in zip(chunk, answer["Records"], strict=True)
        }


def sqs_body(payload: str | bytes) -> str:
    """The SQS body a payload travels as: text as is, bytes as base64."""
    return base64.b64encode(payload).decode() if isinstance(payload, bytes) else payload


def _data(record: Outbound) -> bytes:
    payload = record.payload
    return payload if isinstance(payload, bytes) else payload.encode()


def _chunks(
    items: list[tuple[int, Outbound]], limit: int, max_bytes: int
) -> Iterator[list[tuple[int, Outbound]]]:
    chunk: list[tuple[int, Outbound]] = []
    size = 0
    for item in items:
        length = len(_data(item[1])) * 4 // 3 + 4  # a bound on either form (base64 is larger)
        if chunk and (len(chunk) == limit or size + length > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += length
    if chunk:
        yield chunk


def demo_workload(now_ms: int, seed: int = 7, prefix: str = "/app") -> Workload:
    """The demo's mixed workload, timestamps relative to ``now_ms``, its log groups named
    ``<prefix>/checkout``, ``<prefix>/payments``, ``<prefix>/search`` and ``<prefix>/billing``."""
    rng = random.Random(seed)
    checkout_group, payments_group = f"{prefix}/checkout", f"{prefix}/payments"
    search_group, billing_group = f"{prefix}/search", f"{prefix}/billing"
    groups = [checkout_group, payments_group, search_group, billing_group]
    audit_group = f"{prefix}/audit"
    workload = Workload(log_groups=groups, created_groups=[audit_group])
    base = now_ms - 10 * 60_000

    def expect(group: str, stream: str, timestamp: int, message: Any) -> None:
        text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
        workload.expected[(group, stream)].append((timestamp, text))

    def add(record: Outbound) -> None:
        workload.records.append(record)

    # checkout: web access logs over SQS, one event per message, sent out of order.
    checkout = []
    for i, offset in enumerate(rng.sample(range(0, 300_000, 7), 12)):
        stream = f"web-{i % 2 + 1}"
        message = f"GET /cart/{1000 + i} 200 {rng.randint(3, 90)}ms"
        checkout.append((base + offset, stream, message))
    for timestamp, stream, message in checkout:
        access_log = one_event(checkout_group, stream, message, timestamp)
        add(Outbound("sqs", access_log, "access log line", partition_key=stream))
        expect(checkout_group, stream, timestamp, message)
    # An entity ties the event to a service in CloudWatch's explorer.
    entity = {
        "keyAttributes": {"Type": "Service", "Name": "checkout", "Environment": "demo"},
        "attributes": {"PlatformType": "Generic"},
    }
    timestamp = base + 123_456
    add(
        Outbound(
            "sqs",
            one_event(checkout_group, "web-1", "checkout ready", timestamp, entity=entity),
            "event with an entity",
            partition_key="web-1",
        )
    )
    expect(checkout_group, "web-1", timestamp, "checkout ready")
    # search: batches in the PutLogEvents shape, events out of order, JSON messages.
    for batch in range(2):
        events = []
        for j in range(5):
            t = base + 400_000 + batch * 10_000 + rng.randint(0, 9_000) + j
            hits = rng.randint(0, 50)
            events.append((t, {"level": "info", "query": f"q{batch}-{j}", "hits": hits}))
        rng.shuffle(events)
        batch_payload = many_events(search_group, "api-1", events)
        label = "batch in the PutLogEvents shape"
        add(Outbound("sqs", batch_payload, label, partition_key="api-1"))
        for t, message in events:
            expect(search_group, "api-1", t, message)
    # A 1.5 MB export line: split into two events; gzip lets it travel in one SQS message.
    big = "".join(f"row {n:07d};" for n in range(125_000))
    timestamp = base + 500_000
    compressed = gzip.compress(one_event(search_group, "bulk-export", big, timestamp).encode())
    add(Outbound("sqs", compressed, "message of 1.5 MB (gzip, base64)", partition_key="export"))
    expect(search_group, "bulk-export", timestamp, big)
    # audit: a group that does not exist yet; the forwarder creates it, made as NEW_LOG_GROUP_*
    # asks (the demo sets retention, class and tags).
    timestamp = base + 234_567
    audit = one_event(audit_group, "trail", "user 7 changed the shipping address", timestamp)
    add(Outbound("sqs", audit, "event to a group the forwarder creates", partition_key="audit"))
    expect(audit_group, "trail", timestamp, "user 7 changed the shipping address")
    # Too old to be accepted: 15 days back. Fails, is received maxReceiveCount times, redriven.
    stale = one_event(checkout_group, "web-1", "replayed from a backup", now_ms - 15 * DAY_MS)
    add(Outbound("sqs", stale, "event 15 days old", Fate.SQS_DLQ, partition_key="backup"))
    # payments: worker logs over Kinesis, out of order, several partition keys.
    for i, offset in enumerate(rng.sample(range(0, 300_000, 11), 8)):
        timestamp = base + offset
        message = f"payment {5000 + i} settled amount={rng.randint(5, 500)}.00 EUR"
        add(
            Outbound(
                "kinesis",
                one_event(payments_group, "worker-1", message, timestamp).encode(),
                "worker log line",
                partition_key=f"payment-{i}",
            )
        )
        expect(payments_group, "worker-1", timestamp, message)
    # payments too: a KPL producer packs many user records into one Kinesis record.
    user_records = []
    for k in range(24):
        timestamp = base + 250_000 + k * 700
        message = f"card terminal t-{k % 4} heartbeat {k}"
        user_records.append(
            (f"t-{k % 4}", one_event(payments_group, "terminals", message, timestamp).encode())
        )
        expect(payments_group, "terminals", timestamp, message)
    ((key, packed),) = aggregate(user_records)
    add(Outbound("kinesis", packed, "KPL aggregate of 24 user records", partition_key=key))
    # billing: a subscription filter's delivery (another account's logs, say).
    sub_events = [(base + 200_000 + k * 1_000, f"invoice {k} issued") for k in range(3)]
    add(
        Outbound(
            "kinesis",
            subscription_payload(billing_group, "i-0a1b2c3d", sub_events),
            "subscription-filter payload (gzip)",
            partition_key="billing",
        )
    )
    for t, message in sub_events:
        expect(billing_group, "i-0a1b2c3d", t, message)
    # Malformed: the timestamp is text. The Kinesis function dead-letters it with the reason.
    malformed = json.dumps(
        {
            "logGroupName": payments_group,
            "logStreamName": "worker-1",
            "timestamp": "yesterday",
            "message": "refund 77 issued",
        }
    )
    add(Outbound("kinesis", malformed.encode(), "malformed record", Fate.DEAD_LETTERED, "bad"))
    # A producer whose clock is 3 h fast: past the too-new retry horizon, so retrying cannot help;
    # dead-lettered with its payload, at once (not retried into the metadata-only on-failure).
    future = one_event(payments_group, "worker-1", "clock skew!", now_ms + 3 * HOUR_MS)
    add(Outbound("kinesis", future.encode(), "event 3 h in the future", Fate.DEAD_LETTERED, "skew"))
    # 2 h 10 min ahead: too new for now, so retried; the retries run out first, and Lambda gives
    # it up to the mapping's on-failure destination (the failure store), its data included. Last
    # of its shard, so that nothing else is in the batch given up.
    soon = one_event(payments_group, "worker-1", "a little early", now_ms + 130 * 60_000)
    add(Outbound("kinesis", soon.encode(), "event 2 h 10 min ahead", Fate.ON_FAILURE, "early"))
    return workload
