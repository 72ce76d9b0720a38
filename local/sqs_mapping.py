"""Lambda's SQS event source mapping, emulated against a real (local) queue.

One poll: receive up to ``batch_size`` messages (10 per ``ReceiveMessage``, all system and
message attributes), waiting up to ``batching_window_s`` from the first message for more, and
stopping at the 6 MB invocation payload (messages beyond it are released at once with
``ChangeMessageVisibility 0``); build the SQS event; invoke; then delete every message that
succeeded (``local.batch_response`` says which). Failed messages are left alone: SQS makes them
visible again after the queue's visibility timeout, and its redrive policy moves a message to the
dead-letter queue once it has been received ``maxReceiveCount`` times. A function error, a
timeout or an invalid response fails the whole batch.

One poller, one batch at a time: Lambda's scaling to several concurrent batches
(``MaximumConcurrency``) is not emulated.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from infra.blueprint import SqsMappingSpec
from local.batch_response import judge_response
from local.deploy import LocalQueue
from local.invocation import Function
from local.lambda_events import event, payload_size, sqs_record
from local.loop import BatchListener, BatchOutcome

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(slots=True)
class SqsMappingStats:
    """What the mapping did. ``deleted`` holds the id of every message deleted after success."""

    received: int = 0
    invocations: int = 0
    failed_invocations: int = 0
    partial_batches: int = 0
    released: int = 0
    deleted: set[str] = field(default_factory=set)


class SqsEventSourceMapping:
    """Polls one queue and invokes one function, as Lambda's SQS poller does."""

    def __init__(
        self,
        sqs: Any,
        queue: LocalQueue,
        function: Function,
        spec: SqsMappingSpec,
        region: str,
        *,
        name: str = "sqs",
        poll_wait_s: int = 1,
        on_batch: BatchListener | None = None,
    ) -> None:
        self.name = name
        self.stats = SqsMappingStats()
        self._sqs = sqs
        self._queue = queue
        self._function = function
        self._spec = spec
        self._region = region
        self._poll_wait_s = poll_wait_s
        self._on_batch = on_batch

    def poll(self) -> bool:
        """Receive one batch and deliver it; ``False`` if no message came within the wait."""
        messages = self._receive_batch()
        if not messages:
            return False
        records = [sqs_record(m, self._queue.arn, self._region) for m in messages]
        invocation = self._function.invoke(event(records))
        ids = [m["MessageId"] for m in messages]
        verdict = judge_response(invocation, ids, self._spec.report_batch_item_failures)
        failed = set(verdict.failed)
        self._delete([m for m in messages if m["MessageId"] not in failed])
        self.stats.invocations += 1
        self.stats.failed_invocations += verdict.whole_batch
        self.stats.partial_batches += bool(failed) and not verdict.whole_batch
        if self._on_batch is not None:
            self._on_batch(BatchOutcome(self.name, len(messages), invocation, verdict))
        return True

    def drained(self) -> bool:
        """No message visible, in flight or delayed."""
        answer = self._sqs.get_queue_attributes(QueueUrl=self._queue.url, AttributeNames=_COUNTS)
        return all(int(answer["Attributes"].get(name, 0)) == 0 for name in _COUNTS)

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        size = 0
        window_end: float | None = None
        while len(batch) < self._spec.batch_size:
            if window_end is None:
                wait = float(self._poll_wait_s)
            else:
                wait = window_end - time.monotonic()
                if wait <= 0:
                    break
            answer = self._sqs.receive_message(
                QueueUrl=self._queue.url,
                MaxNumberOfMessages=min(10, self._spec.batch_size - len(batch)),
                WaitTimeSeconds=min(20, math.ceil(wait)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            self.stats.received += len(messages)
            if not messages and window_end is None:
                return batch
            overflow = []
            for message in messages:
                if self._refresh(batch, message):
                    continue
                record_size = payload_size(len(message.get("Body", "").encode()))
                if batch and (overflow or size + record_size > MAX_PAYLOAD_BYTES):
                    overflow.append(message)
                    continue
                batch.append(message)
                size += record_size
            if overflow:
                self._release(overflow)
                break
            if window_end is None:
                if self._spec.batching_window_s <= 0:
                    break
                window_end = time.monotonic() + self._spec.batching_window_s
        return batch

    @staticmethod
    def _refresh(batch: list[dict[str, Any]], message: dict[str, Any]) -> bool:
        """A message received again while the batch gathers (its visibility timeout is shorter
        than the window: a misconfiguration) stays once, with its newest receipt handle."""
        for index, held in enumerate(batch):
            if held["MessageId"] == message["MessageId"]:
                batch[index] = message
                return True
        return False

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ]
            answer = self._sqs.delete_message_batch(QueueUrl=self._queue.url, Entries=entries)
            done = {entry["Id"] for entry in answer.get("Successful", [])}
            self.stats.deleted.update(m["MessageId"] for i, m in enumerate(chunk) if str(i) in done)

    def _release(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue.url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        self.stats.released += len(messages)
