"""Dead-lettering: the original payload of a record that can never succeed, with the reason, is
sent to an SQS queue (``INVALID_RECORDS=dead-letter``). I/O; knows nothing about CloudWatch Logs.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:  # the stubs are a dev dependency only, never in the asset
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

from forwarder.limits import SQS_MAX_BATCH_ENTRIES, SQS_MAX_MESSAGE_BYTES
from forwarder.model import InvalidPart, SourceRecord

#: What SQS refuses in a message body and JSON text may still hold: lone surrogates and the
#: noncharacters U+FFFE / U+FFFF (control characters are escaped by ``json.dumps`` already).
_REFUSED_BY_SQS = re.compile("[\ud800-\udfff\ufffe\uffff]")
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]")


#: Each call of the dead-letter clients (SQS and S3) may take this long at most: one attempt,
#: 0.4 s to connect and 0.8 s to read. A call starts only if this, and the time to answer,
#: remain; a large letter's two calls (S3, then SQS) fit the default 3 s reserve.
CALL_TIMEOUT_MS = 1_200
#: Kept back after the last call: the response and the metrics.
RESPONSE_MS = 250
#: The SQS extended client's pointer (amazon-sqs-extended-client, Java and Python alike): the
#: message body names the S3 object, and this attribute its size in bytes.
POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
SIZE_ATTRIBUTE = "ExtendedPayloadSize"
#: Where large dead letters go in the bucket (the bucket may hold other things under others).
KEY_PREFIX = "dead-letters/"


def _client_config() -> Config:
    """One attempt, bounded: a letter not sent fails its record, which its source delivers again,
    so a retry here would only risk the time reserve (and, on a lost answer, a second letter)."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=CALL_TIMEOUT_MS / 3000,
        read_timeout=CALL_TIMEOUT_MS / 1500,
    )


def make_sqs_client() -> SQSClient:
    """The dead-letter queue's client. It runs after sending, in the time the function keeps
    back (``TIME_RESERVE_MS``), where botocore's default of 60 s a read would run past it."""
    return boto3.client("sqs", config=_client_config())


def make_s3_client() -> S3Client:
    """The client of the bucket for dead letters too large for SQS; bounded like the queue's."""
    return boto3.client("s3", config=_client_config())


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that can never succeed; of a KPL aggregate whose only fault is user records
    that did not decode, those user records (``parts``) instead of the whole aggregate. One
    letter a record either way: it is sent or not, never in part, so a retry adds no second
    copy of what was sent."""

    record: SourceRecord
    reason: str
    source: str  # "aws:sqs" or "aws:kinesis"
    parts: tuple[InvalidPart, ...] = ()


def dead_letter_body(letter: DeadLetter) -> str:
    """The message body: JSON with the reason, the record's id and its untouched payload; for
    the user records of an aggregate (``userRecords``), each one's sub-sequence number, partition
    key, reason and own data in place of the payload."""
    document: dict[str, object] = {
        "reason": letter.reason,
        "source": letter.source,
        "recordId": letter.record.record_id,
        "arrivalTimestamp": letter.record.arrival_ms,
    }
    if letter.parts:
        document["userRecords"] = [
            {
                "subSequenceNumber": part.sub_sequence,
                "partitionKey": part.partition_key,
                "reason": part.reason,
                **_payload_fields(part.data),
            }
            for part in letter.parts
        ]
    else:
        document |= _payload_fields(letter.record.payload)
    body = json.dumps(document, ensure_ascii=False)
    # Inside JSON these can only stand in strings, where a JSON \u escape means the same.
    return _REFUSED_BY_SQS.sub(lambda match: f"\\u{ord(match.group()):04x}", body)


def _payload_fields(payload: str | bytes) -> dict[str, str]:
    """``payloadEncoding`` and ``payload``: text as it is, bytes that are not UTF-8 in base64."""
    if isinstance(payload, bytes):
        try:
            return {"payloadEncoding": "text", "payload": payload.decode("utf-8")}
        except UnicodeDecodeError:
            return {"payloadEncoding": "base64", "payload": base64.b64encode(payload).decode()}
    return {"payloadEncoding": "text", "payload": payload}


def letter_key(letter: DeadLetter) -> str:
    """The S3 key of a large letter: by source and arrival day, named by the record's id, so a
    record dead-lettered again overwrites its own letter rather than adding a second one."""
    day = time.strftime("%Y/%m/%d", time.gmtime(letter.record.arrival_ms / 1000))
    source = letter.source.removeprefix("aws:")
    name = _UNSAFE_KEY_CHARS.sub("_", letter.record.record_id)[:200]
    return f"{KEY_PREFIX}{source}/{day}/{name}.json"


@dataclass(frozen=True, slots=True)
class _Entry:
    """One message of a SendMessageBatch, and its size as SQS counts it (body and attributes)."""

    letter: DeadLetter
    body: str
    attributes: dict[str, MessageAttributeValueTypeDef]
    size: int


class DeadLetterQueue:
    """Sends dead letters to one SQS queue in batches; reports which could not be sent.

    A letter larger than SQS takes goes to ``bucket`` (S3, through ``s3_client``) and the queue
    gets the extended client's pointer to it, so a consumer built on that library reads the
    letter as if it had come whole. Every call starts only while the time left allows it."""

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        s3_client: S3Client | None = None,
        bucket: str | None = None,
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._fifo = queue_url.endswith(".fifo")
        self._s3 = s3_client
        self._bucket = bucket

    def send(
        self, letters: Sequence[DeadLetter], remaining_ms: Callable[[], int] = lambda: 60_000
    ) -> dict[str, str]:
        """Send every letter; return ``{record_id: why}`` for those that were not enqueued.
        ``remaining_ms`` is the invocation's time left."""
        failed: dict[str, str] = {}
        batch: list[_Entry] = []
        batch_bytes = 0
        for letter in letters:
            entry = self._entry(letter, remaining_ms)
            if isinstance(entry, str):
                failed[letter.record.record_id] = entry
                continue
            if (
                len(batch) == SQS_MAX_BATCH_ENTRIES
                or batch_bytes + entry.size > SQS_MAX_MESSAGE_BYTES
            ):
                failed.update(self._send_batch(batch, remaining_ms))
                batch, batch_bytes = [], 0
            batch.append(entry)
            batch_bytes += entry.size
        if batch:
            failed.update(self._send_batch(batch, remaining_ms))
        return failed

    def _entry(self, letter: DeadLetter, remaining_ms: Callable[[], int]) -> _Entry | str:
        """The letter as a message, its body stored in S3 first if SQS cannot carry it; or why
        it cannot be sent."""
        body = dead_letter_body(letter)
        size = len(body.encode("utf-8"))
        if size <= SQS_MAX_MESSAGE_BYTES:
            return _Entry(letter, body, {}, size)
        if self._bucket is None or self._s3 is None:
            return (
                f"dead letter of {size} bytes exceeds SQS's {SQS_MAX_MESSAGE_BYTES} and "
                "DEAD_LETTER_BUCKET is not set"
            )
        if not _time_for_a_call(remaining_ms):
            return "too little time left to store the dead letter in S3"
        key = letter_key(letter)
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body.encode("utf-8"),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as error:
            return f"dead-letter bucket: {error}"
        pointer = json.dumps([POINTER_CLASS, {"s3BucketName": self._bucket, "s3Key": key}])
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            SIZE_ATTRIBUTE: {"DataType": "Number", "StringValue": str(size)}
        }
        attribute_bytes = len(SIZE_ATTRIBUTE) + len("Number") + len(str(size))
        return _Entry(letter, pointer, attributes, len(pointer) + attribute_bytes)

    def _send_batch(self, batch: list[_Entry], remaining_ms: Callable[[], int]) -> dict[str, str]:
        if not _time_for_a_call(remaining_ms):
            why = "too little time left to send the dead letter"
            return {entry.letter.record.record_id: why for entry in batch}
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for index, entry in enumerate(batch):
            message: SendMessageBatchRequestEntryTypeDef = {
                "Id": str(index),
                "MessageBody": entry.body,
            }
            if entry.attributes:
                message["MessageAttributes"] = entry.attributes
            if self._fifo:
                # A FIFO queue needs a group; the record's own keeps its order there too.
                message["MessageGroupId"] = entry.letter.record.message_group or "forwarder"
                message["MessageDeduplicationId"] = entry.letter.record.record_id[:128]
            entries.append(message)
        try:
            response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as error:
            return {entry.letter.record.record_id: f"dead-letter queue: {error}" for entry in batch}
        return {
            batch[int(failure["Id"])].letter.record.record_id: (
                f"dead-letter queue: {failure.get('Message')}"
            )
            for failure in response.get("Failed", [])
        }


def _time_for_a_call(remaining_ms: Callable[[], int]) -> bool:
    return remaining_ms() > CALL_TIMEOUT_MS + RESPONSE_MS
