"""Dead-lettering: the original payload of a record that can never succeed, with the reason, is
sent to an SQS queue (``INVALID_RECORDS=dead-letter``). I/O; knows nothing about CloudWatch Logs.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from forwarder.limits import SQS_MAX_BATCH_ENTRIES, SQS_MAX_MESSAGE_BYTES
from forwarder.model import SourceRecord

#: What SQS refuses in a message body and JSON text may still hold: lone surrogates and the
#: noncharacters U+FFFE / U+FFFF (control characters are escaped by ``json.dumps`` already).
_REFUSED_BY_SQS = re.compile("[\ud800-\udfff\ufffe\uffff]")


def make_sqs_client(max_attempts: int = 2) -> Any:
    """The dead-letter queue's client, with timeouts that fit the default time reserve (3 s):
    it runs after sending, in the time the function keeps back, where botocore's default of
    60 s a read would run past the deadline. A send that times out fails its record, which is
    then retried: never lost."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=0.5,
        read_timeout=1,
    )
    return boto3.client("sqs", config=config)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: SourceRecord
    reason: str
    source: str  # "aws:sqs" or "aws:kinesis"


def dead_letter_body(letter: DeadLetter) -> str:
    """The message body: JSON with the reason, the record's id and its untouched payload."""
    payload = letter.record.payload
    if isinstance(payload, bytes):
        try:
            text, encoding = payload.decode("utf-8"), "text"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(payload).decode("ascii"), "base64"
    else:
        text, encoding = payload, "text"
    body = json.dumps(
        {
            "reason": letter.reason,
            "source": letter.source,
            "recordId": letter.record.record_id,
            "arrivalTimestamp": letter.record.arrival_ms,
            "payloadEncoding": encoding,
            "payload": text,
        },
        ensure_ascii=False,
    )
    # Inside JSON these can only stand in strings, where a JSON \u escape means the same.
    return _REFUSED_BY_SQS.sub(lambda match: f"\\u{ord(match.group()):04x}", body)


class DeadLetterQueue:
    """Sends dead letters to one SQS queue in batches; reports which could not be sent."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url
        self._fifo = queue_url.endswith(".fifo")

    def send(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        """Send every letter; return ``{record_id: why}`` for those that were not enqueued."""
        failed: dict[str, str] = {}
        batch: list[tuple[DeadLetter, str]] = []
        batch_bytes = 0
        for letter in letters:
            body = dead_letter_body(letter)
            size = len(body.encode("utf-8"))
            if size > SQS_MAX_MESSAGE_BYTES:
                failed[letter.record.record_id] = f"dead letter of {size} bytes exceeds SQS's limit"
                continue
            if len(batch) == SQS_MAX_BATCH_ENTRIES or batch_bytes + size > SQS_MAX_MESSAGE_BYTES:
                failed.update(self._send_batch(batch))
                batch, batch_bytes = [], 0
            batch.append((letter, body))
            batch_bytes += size
        if batch:
            failed.update(self._send_batch(batch))
        return failed

    def _send_batch(self, batch: list[tuple[DeadLetter, str]]) -> dict[str, str]:
        entries = [
            {"Id": str(index), "MessageBody": body, **(_fifo_fields(letter) if self._fifo else {})}
            for index, (letter, body) in enumerate(batch)
        ]
        try:
            response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as error:
            return {letter.record.record_id: f"dead-letter queue: {error}" for letter, _ in batch}
        return {
            batch[int(entry["Id"])][
                0
            ].record.record_id: f"dead-letter queue: {entry.get('Message')}"
            for entry in response.get("Failed", [])
        }


def _fifo_fields(letter: DeadLetter) -> dict[str, str]:
    """A FIFO dead-letter queue needs a group; the record's own keeps its order there too."""
    return {
        "MessageGroupId": letter.record.message_group or "forwarder",
        "MessageDeduplicationId": letter.record.record_id[:128],
    }
