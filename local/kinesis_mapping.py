"""Lambda's Kinesis event source mapping, emulated against a real (local) stream.

Per shard, in order, one batch at a time:

- Read up to ``batch_size`` records after the shard's checkpoint (from ``starting_position``
  before the first one), waiting up to ``batching_window_s`` from the first record for more, and
  stopping at the 6 MB invocation payload (the rest is read next time).
- Records older than ``max_record_age_s`` at the head of a batch are not sent: they are given up
  with the condition ``RecordAgeExceeded``.
- Invoke. On success the checkpoint moves to the batch's last record. On a partial-batch
  response the checkpoint moves to just before the lowest reported sequence number and the
  records from there are retried (a retry). On a function error, timeout or invalid response,
  with ``bisect_on_error`` a batch of two or more records is split in two halves that are tried
  in turn (a split is not a retry; each half keeps the retry count of its batch); otherwise the
  batch is retried.
- A batch that fails after ``max_retry_attempts`` retries (``-1``: no limit) is given up with the
  condition ``RetryAttemptsExhausted``.
- Given-up records move the checkpoint past them, and Lambda's invocation record goes to the
  on-failure destination: to a queue, their metadata only (shard, first and last sequence
  number, arrival times, count); to a bucket, the same with ``payload``, the batch's whole event
  as JSON text, under ``aws/lambda/<mapping UUID>/<shard>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<UUID>``
  (the Lambda developer guide's shape and key); without a destination they are dropped.

Differences from Lambda, on purpose: a retry carries exactly the same records (Lambda re-reads
from the checkpoint and may add records that arrived since); shards are polled in turn by one
thread, not concurrently; ``ParallelizationFactor``, tumbling windows, resharding (parent before
child shards), stream retention expiry and enhanced fan-out are not emulated;
``AT_TIMESTAMP`` starts at ``TRIM_HORIZON``. Sequence numbers are compared as numbers: moto's
are small per-shard integers, real ones have 56 digits.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.blueprint import KinesisMappingSpec
from infra.config import ON_FAILURE_PREFIX
from local.batch_response import judge_response
from local.deploy import LocalBucket, LocalQueue, LocalStream
from local.invocation import Function, FunctionError
from local.lambda_events import StreamRecord, event, kinesis_record, payload_size
from local.loop import BatchListener, BatchOutcome

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


@dataclass(slots=True)
class KinesisMappingStats:
    """What the mapping did; every record read is eventually ``succeeded`` or ``discarded``
    (given up), exactly once."""

    invocations: int = 0
    failed_invocations: int = 0
    partial_batches: int = 0
    retries: int = 0
    bisections: int = 0
    succeeded: int = 0
    discarded: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Batch:
    records: list[StreamRecord]
    retries: int = 0


@dataclass(slots=True)
class ShardCursor:
    """Where the mapping stands in one shard: the last record done with (``checkpoint``), the
    ``LATEST`` iterator taken when the mapping started (used until the first checkpoint), and
    the batches waiting to be retried, in order."""

    shard_id: str
    checkpoint: str | None = None
    latest_iterator: str | None = None
    pending: deque[_Batch] = field(default_factory=deque)


class ShardReader:
    """Reads batches from a shard after its cursor: up to ``batch_size`` records, waiting up to
    ``batching_window_s`` from the first one for more, never past the 6 MB payload."""

    def __init__(self, kinesis: Any, stream: LocalStream, spec: KinesisMappingSpec) -> None:
        self._kinesis = kinesis
        self._stream = stream
        self._spec = spec

    def cursors(self) -> list[ShardCursor]:
        """A cursor per shard, at the mapping's starting position."""
        shards = self._kinesis.list_shards(StreamName=self._stream.name)["Shards"]
        cursors = [ShardCursor(shard["ShardId"]) for shard in shards]
        if self._spec.starting_position == "LATEST":
            for cursor in cursors:
                cursor.latest_iterator = self._new_iterator(cursor.shard_id, "LATEST")
        return cursors

    def read(self, cursor: ShardCursor) -> list[StreamRecord]:
        records: list[StreamRecord] = []
        size = 0
        iterator: str | None = self._iterator(cursor)
        window_end: float | None = None
        while iterator is not None and len(records) < self._spec.batch_size:
            fetched, iterator = self._fetch(iterator, self._spec.batch_size - len(records))
            for raw in fetched:
                record = StreamRecord(
                    cursor.shard_id,
                    raw["SequenceNumber"],
                    raw["PartitionKey"],
                    raw["Data"],
                    raw["ApproximateArrivalTimestamp"].timestamp(),
                )
                record_size = payload_size(len(record.data), base64_encoded=True)
                if records and size + record_size > MAX_PAYLOAD_BYTES:
                    return records
                records.append(record)
                size += record_size
            if not records or self._spec.batching_window_s <= 0:
                break
            if window_end is None:
                window_end = time.monotonic() + self._spec.batching_window_s
            remaining = window_end - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(0.1, remaining))
        return records

    def has_more(self, cursor: ShardCursor) -> bool:
        """Whether a record follows the cursor's position."""
        return bool(self._fetch(self._iterator(cursor), 1)[0])

    def _fetch(self, iterator: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        answer = self._kinesis.get_records(ShardIterator=iterator, Limit=min(limit, 10_000))
        return answer.get("Records", []), answer.get("NextShardIterator")

    def _iterator(self, cursor: ShardCursor) -> str:
        if cursor.checkpoint is not None:
            return self._new_iterator(cursor.shard_id, "AFTER_SEQUENCE_NUMBER", cursor.checkpoint)
        if cursor.latest_iterator is not None:
            return cursor.latest_iterator
        return self._new_iterator(cursor.shard_id, "TRIM_HORIZON")

    def _new_iterator(self, shard_id: str, kind: str, sequence_number: str | None = None) -> str:
        arguments: dict[str, Any] = {
            "StreamName": self._stream.name,
            "ShardId": shard_id,
            "ShardIteratorType": kind,
        }
        if sequence_number is not None:
            arguments["StartingSequenceNumber"] = sequence_number
        return self._kinesis.get_shard_iterator(**arguments)["ShardIterator"]


class OnFailureDestination:
    """Where given-up records are reported: an SQS queue receiving ``on_failure_record``
    messages, an S3 bucket receiving them with the batch's event, or nowhere (``None``: the
    records are dropped)."""

    def __init__(
        self,
        clients: Callable[[str], Any],
        destination: LocalQueue | LocalBucket | None,
        stream_arn: str,
        function_arn: str,
    ) -> None:
        self._clients = clients
        self._destination = destination
        self._stream_arn = stream_arn
        self._function_arn = function_arn
        self._mapping_uuid = str(uuid.uuid4())

    def send(
        self,
        shard_id: str,
        records: list[StreamRecord],
        condition: str,
        invoke_count: int,
        error: FunctionError | None,
        payload: dict[str, Any],
    ) -> None:
        """Report ``records`` given up; ``payload`` is their event as the function got it."""
        if self._destination is None:
            return
        body = on_failure_record(
            shard_id, records, self._stream_arn, self._function_arn, condition, invoke_count,
            error,
        )  # fmt: skip
        if isinstance(self._destination, LocalQueue):
            self._clients("sqs").send_message(
                QueueUrl=self._destination.url, MessageBody=json.dumps(body)
            )
            return
        body["payload"] = json.dumps(payload)
        self._clients("s3").put_object(
            Bucket=self._destination.name,
            Key=on_failure_key(self._mapping_uuid, shard_id, time.time()),
            Body=json.dumps(body).encode(),
        )


class KinesisEventSourceMapping:
    """Reads every shard of one stream and invokes one function, as Lambda's poller does: the
    checkpoint, retry, bisection and give-up rules of the module's docstring."""

    def __init__(
        self,
        kinesis: Any,
        sqs: Any,
        stream: LocalStream,
        function: Function,
        spec: KinesisMappingSpec,
        region: str,
        *,
        on_failure: LocalQueue | LocalBucket | None = None,
        s3: Any = None,
        name: str = "kinesis",
        retry_pause_s: float = 0.05,
        on_batch: BatchListener | None = None,
    ) -> None:
        self.name = name
        self.stats = KinesisMappingStats()
        self._reader = ShardReader(kinesis, stream, spec)
        clients = {"sqs": sqs, "s3": s3}
        self._destination = OnFailureDestination(
            clients.__getitem__, on_failure, stream.arn, function.arn
        )
        self._stream = stream
        self._function = function
        self._spec = spec
        self._region = region
        self._retry_pause_s = retry_pause_s
        self._on_batch = on_batch
        self._role_arn = f"arn:aws:iam::{stream.arn.split(':')[4]}:role/{function.name}-role"
        self._cursors = self._reader.cursors()

    def poll(self) -> bool:
        """Deliver at most one batch per shard; ``False`` if no shard had anything."""
        busy = False
        for cursor in self._cursors:
            if cursor.pending:
                batch = cursor.pending.popleft()
                time.sleep(self._retry_pause_s)
            else:
                records = self._reader.read(cursor)
                if not records:
                    continue
                batch = _Batch(records)
            self._deliver(cursor, batch)
            busy = True
        return busy

    def drained(self) -> bool:
        """No retry pending and no record after any shard's checkpoint."""
        return all(
            not cursor.pending and not self._reader.has_more(cursor) for cursor in self._cursors
        )

    def checkpoints(self) -> dict[str, str | None]:
        return {cursor.shard_id: cursor.checkpoint for cursor in self._cursors}

    def _deliver(self, cursor: ShardCursor, batch: _Batch) -> None:
        records = self._without_expired(cursor, batch)
        if not records:
            return
        invocation = self._function.invoke(self._event(records))
        verdict = judge_response(
            invocation, [r.sequence_number for r in records], self._spec.report_batch_item_failures
        )
        self.stats.invocations += 1
        if self._on_batch is not None:
            self._on_batch(BatchOutcome(self.name, len(records), invocation, verdict))
        if verdict.succeeded:
            self._advance(cursor, records, succeeded=True)
        elif not verdict.whole_batch:
            self.stats.partial_batches += 1
            failed = set(verdict.failed)
            lowest = min(r.position for r in records if r.sequence_number in failed)
            index = next(i for i, r in enumerate(records) if r.position == lowest)
            self._advance(cursor, records[:index], succeeded=True)
            self._retry_or_give_up(cursor, _Batch(records[index:], batch.retries), None)
        else:
            self.stats.failed_invocations += 1
            if self._spec.bisect_on_error and len(records) > 1:
                self.stats.bisections += 1
                middle = len(records) // 2
                cursor.pending.appendleft(_Batch(records[middle:], batch.retries))
                cursor.pending.appendleft(_Batch(records[:middle], batch.retries))
            else:
                self._retry_or_give_up(cursor, _Batch(records, batch.retries), invocation.error)

    def _retry_or_give_up(
        self, cursor: ShardCursor, batch: _Batch, error: FunctionError | None
    ) -> None:
        limit = self._spec.max_retry_attempts
        if limit >= 0 and batch.retries >= limit:
            self._give_up(cursor, batch.records, RETRY_ATTEMPTS_EXHAUSTED, batch.retries + 1, error)
            return
        self.stats.retries += 1
        cursor.pending.appendleft(_Batch(batch.records, batch.retries + 1))

    def _without_expired(self, cursor: ShardCursor, batch: _Batch) -> list[StreamRecord]:
        records = batch.records
        if self._spec.max_record_age_s < 0:
            return records
        oldest_allowed = time.time() - self._spec.max_record_age_s
        expired = 0
        while expired < len(records) and records[expired].arrival_s < oldest_allowed:
            expired += 1
        if expired:
            self._give_up(cursor, records[:expired], RECORD_AGE_EXCEEDED, batch.retries, None)
        return records[expired:]

    def _give_up(
        self,
        cursor: ShardCursor,
        records: list[StreamRecord],
        condition: str,
        invoke_count: int,
        error: FunctionError | None,
    ) -> None:
        self._advance(cursor, records, succeeded=False)
        self.stats.discarded[condition] += len(records)
        self._destination.send(
            cursor.shard_id, records, condition, invoke_count, error, self._event(records)
        )

    def _event(self, records: list[StreamRecord]) -> dict[str, Any]:
        """The Lambda event of ``records``, as the function gets it."""
        return event(
            [kinesis_record(r, self._stream.arn, self._region, self._role_arn) for r in records]
        )

    def _advance(
        self, cursor: ShardCursor, records: list[StreamRecord], *, succeeded: bool
    ) -> None:
        if not records:
            return
        cursor.checkpoint = records[-1].sequence_number
        if succeeded:
            self.stats.succeeded += len(records)


def on_failure_record(
    shard_id: str,
    records: list[StreamRecord],
    stream_arn: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    error: FunctionError | None,
) -> dict[str, Any]:
    """The message Lambda sends to a Kinesis mapping's on-failure destination: metadata only,
    never the records' data. ``responseContext`` is left out when the records were never sent
    to the function; ``functionError`` only when the last invocation errored."""
    document: dict[str, Any] = {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "version": "1.0",
        "timestamp": _iso(time.time()),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": _iso(records[0].arrival_s),
            "approximateArrivalOfLastRecord": _iso(records[-1].arrival_s),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
    if invoke_count:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if error is not None:
            response["functionError"] = "Unhandled"
        document["responseContext"] = response
    return document


def on_failure_key(mapping_uuid: str, shard_id: str, seconds: float) -> str:
    """Where Lambda puts an on-failure record in an S3 destination: "aws/lambda/<ESM-UUID>/
    <shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>" (Lambda developer guide)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return (
        f"{ON_FAILURE_PREFIX}{mapping_uuid}/{shard_id}/{moment:%Y/%m/%d}/"
        f"{moment:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
    )


def _iso(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
