"""The delivery checkpoint's store: a DynamoDB table (``CHECKPOINT_TABLE``). I/O only; what
to read and write is decided in ``checkpoints``.

Items: ``checkpoints.PARTITION_KEY`` and ``SORT_KEY`` (strings), ``LANDED_ATTRIBUTE`` (the
checkpoint's text) and ``TTL_ATTRIBUTE`` (epoch seconds). The store never costs a record: a
call that fails, times out or answers something unreadable is a problem in the ledger (logged
and counted), and the batch goes on as if nothing were known, which may cost a duplicate and
never a loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:  # the stubs are a dev dependency only, never in the asset
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

from forwarder.checkpoints import (
    KINESIS_ITEMS_READ,
    LANDED_ATTRIBUTE,
    PARTITION_KEY,
    SORT_KEY,
    SQS_SORT,
    TTL_ATTRIBUTE,
    Checkpoint,
    CheckpointKey,
    Ledger,
    Lookup,
    ShardRange,
)

#: DynamoDB's own limits: BatchGetItem reads 100 keys a call, BatchWriteItem writes 25 items.
BATCH_GET_KEYS = 100
BATCH_WRITE_ITEMS = 25
#: Each call may take this long at most (one retry inside it, by botocore): the writes run in
#: the time the function keeps back, after the dead letters.
CALL_TIMEOUT_MS = 1_000
#: A call starts only with this much time left before the invocation's end.
MIN_TIME_LEFT_MS = CALL_TIMEOUT_MS + 250
#: What the environment remembers of the checkpoints it wrote, before it forgets them all.
_MAX_REMEMBERED_SHARDS = 1024


def make_dynamodb_client() -> DynamoDBClient:
    """The table's client: two attempts in all, short timeouts (the endpoint comes from botocore:
    ``AWS_ENDPOINT_URL_DYNAMODB``)."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 2},
        connect_timeout=CALL_TIMEOUT_MS / 4000,
        read_timeout=CALL_TIMEOUT_MS / 2000,
    )
    return boto3.client("dynamodb", config=config)


class CheckpointStore:
    """Reads and writes checkpoints; remembers, per shard, the last one it wrote itself, so
    that a Kinesis retry that comes back to the same environment reads nothing."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        #: shard partition -> the checkpoints this environment last wrote for it
        self._written: dict[str, list[Checkpoint]] = {}

    def read(
        self, lookup: Lookup, remaining_ms: Callable[[], int], ledger: Ledger
    ) -> list[Checkpoint]:
        """The checkpoints ``lookup`` names that exist. Problems go to ``ledger``."""
        found: list[Checkpoint] = []
        keys = list(lookup.items)
        for start in range(0, len(keys), BATCH_GET_KEYS):
            if not self._time_for_a_call(remaining_ms, ledger, "read"):
                return found
            found += self._get(keys[start : start + BATCH_GET_KEYS], ledger)
        for shard in lookup.shards:
            mine = self._written.get(shard.partition)
            if mine and mine[0].key.sort == shard.first:
                found += mine  # the whole batch again, in the environment that wrote it
                continue
            if not self._time_for_a_call(remaining_ms, ledger, "read"):
                return found
            found += self._query(shard, ledger)
        return found

    def write(
        self,
        checkpoints: Sequence[Checkpoint],
        remaining_ms: Callable[[], int],
        ledger: Ledger,
    ) -> None:
        """Write ``checkpoints`` (each replaces the item of its key). Problems go to
        ``ledger``."""
        expires = str(int(self._clock()) + self._ttl_seconds)
        items: list[WriteRequestTypeDef] = [
            {
                "PutRequest": {
                    "Item": {
                        PARTITION_KEY: {"S": c.key.partition},
                        SORT_KEY: {"S": c.key.sort},
                        LANDED_ATTRIBUTE: {"S": c.encode()},
                        TTL_ATTRIBUTE: {"N": expires},
                    }
                }
            }
            for c in checkpoints
        ]
        for start in range(0, len(items), BATCH_WRITE_ITEMS):
            if not self._time_for_a_call(remaining_ms, ledger, "write"):
                return
            chunk = items[start : start + BATCH_WRITE_ITEMS]
            try:
                response = self._client.batch_write_item(RequestItems={self._table: chunk})
            except (ClientError, BotoCoreError) as error:
                ledger.problems.append(f"checkpoint write failed: {_describe(error)}")
                continue
            unprocessed = len(response.get("UnprocessedItems", {}).get(self._table, []))
            ledger.items_written += len(chunk) - unprocessed
            if unprocessed:
                ledger.problems.append(
                    f"checkpoint write: {unprocessed} of {len(chunk)} items not processed "
                    "(throttled)"
                )
        self._remember_written(checkpoints)

    def _get(self, keys: Sequence[CheckpointKey], ledger: Ledger) -> list[Checkpoint]:
        request: dict[str, Any] = {
            self._table: {
                "Keys": [
                    {PARTITION_KEY: {"S": k.partition}, SORT_KEY: {"S": k.sort}} for k in keys
                ],
                "ConsistentRead": True,
            }
        }
        try:
            response = self._client.batch_get_item(RequestItems=request)
        except (ClientError, BotoCoreError) as error:
            ledger.problems.append(f"checkpoint read failed: {_describe(error)}")
            return []
        pending = response.get("UnprocessedKeys", {}).get(self._table)
        if pending and pending.get("Keys"):
            ledger.problems.append(
                f"checkpoint read: {len(pending['Keys'])} of {len(keys)} keys not processed"
            )
        return self._parse(response.get("Responses", {}).get(self._table, []), ledger)

    def _query(self, shard: ShardRange, ledger: Ledger) -> list[Checkpoint]:
        try:
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression=f"{PARTITION_KEY} = :shard AND {SORT_KEY} <= :last",
                ExpressionAttributeValues={
                    ":shard": {"S": shard.partition},
                    ":last": {"S": shard.last},
                },
                ScanIndexForward=False,
                Limit=KINESIS_ITEMS_READ,
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as error:
            ledger.problems.append(f"checkpoint read failed: {_describe(error)}")
            return []
        return self._parse(response.get("Items", []), ledger)

    def _parse(self, items: Sequence[dict[str, Any]], ledger: Ledger) -> list[Checkpoint]:
        found = []
        for item in items:
            ledger.items_read += 1
            try:
                key = CheckpointKey(item[PARTITION_KEY]["S"], item[SORT_KEY]["S"])
                found.append(Checkpoint.decode(key, item[LANDED_ATTRIBUTE]["S"]))
            except (KeyError, TypeError, ValueError) as error:
                ledger.problems.append(f"checkpoint item unreadable, ignored: {error!r}"[:300])
        return found

    def _remember_written(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Keep, per shard, what this invocation wrote: the whole batch again, in this
        environment, is then answered from memory."""
        by_shard: dict[str, list[Checkpoint]] = {}
        for checkpoint in checkpoints:
            if checkpoint.key.sort != SQS_SORT:
                by_shard.setdefault(checkpoint.key.partition, []).append(checkpoint)
        if len(self._written) + len(by_shard) > _MAX_REMEMBERED_SHARDS:
            self._written.clear()
        self._written.update(by_shard)

    @staticmethod
    def _time_for_a_call(remaining_ms: Callable[[], int], ledger: Ledger, what: str) -> bool:
        if remaining_ms() >= MIN_TIME_LEFT_MS:
            return True
        ledger.problems.append(f"checkpoint {what} skipped: too little time left")
        return False


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', '')}: {details.get('Message', '')}"
    return f"{type(error).__name__}: {error}"
