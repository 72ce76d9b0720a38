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
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:  # the stubs are a dev dependency only, never in the asset
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

from forwarder.checkpoints import (
    LANDED_ATTRIBUTE,
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
    Checkpoint,
    CheckpointKey,
    Ledger,
    Lookup,
    ShardStart,
)
from forwarder.dead_letters import RESPONSE_MS

#: DynamoDB's own limits: BatchGetItem reads 100 keys a call, BatchWriteItem writes 25 items.
BATCH_GET_KEYS = 100
BATCH_WRITE_ITEMS = 25
#: Each attempt of a call takes at most 0.2 s to connect and 0.4 s to read. A write runs in the
#: time the function keeps back (``TIME_RESERVE_MS``), after the dead letters, and so fits beside
#: the response in the quarter of a 4 s timeout; reads, before sending, take at most half of the
#: time left to send. A call that fails costs at most a duplicate.
CONNECT_S, READ_S = 0.2, 0.4
CALL_MS = round((CONNECT_S + READ_S) * 1000)
#: A call is tried again at once if time allows (the fault campaign's reads, one call in eight
#: faulted, lost twice as many events to duplicates with one attempt).
ATTEMPTS = 2
_Answer = TypeVar("_Answer")

#: A Kinesis batch's items are at most a few hundred KB each: more pages than this is not
#: something this function wrote.
MAX_QUERY_PAGES = 8


def make_dynamodb_client() -> DynamoDBClient:
    """The table's client, bounded as above (the endpoint comes from botocore:
    ``AWS_ENDPOINT_URL_DYNAMODB``)."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=CONNECT_S,
        read_timeout=READ_S,
    )
    return boto3.client("dynamodb", config=config)


class CheckpointStore:
    """Reads and writes checkpoints. It keeps no memory of its own: what another environment
    wrote since would be hidden by it."""

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

    def read(
        self, lookup: Lookup, time_left_ms: Callable[[], int], ledger: Ledger
    ) -> list[Checkpoint]:
        """The checkpoints ``lookup`` names that exist. An attempt starts only if it fits in
        ``time_left_ms`` (the share of the invocation reads may take); what is not read, or
        does not parse, is a problem in ``ledger`` and its partition ``unread``."""
        found: list[Checkpoint] = []
        keys = list(lookup.items)
        for start in range(0, len(keys), BATCH_GET_KEYS):
            found += self._get(keys[start : start + BATCH_GET_KEYS], time_left_ms, ledger)
        for shard in lookup.shards:
            found += self._query(shard, time_left_ms, ledger)
        return found

    def write(
        self,
        checkpoints: Sequence[Checkpoint],
        remaining_ms: Callable[[], int],
        ledger: Ledger,
    ) -> None:
        """Write ``checkpoints`` (each replaces the item of its key), each attempt only while
        it and the response fit in ``remaining_ms``. Problems go to ``ledger``."""
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

        def time_left_ms() -> int:
            return remaining_ms() - RESPONSE_MS

        for start in range(0, len(items), BATCH_WRITE_ITEMS):
            chunk = items[start : start + BATCH_WRITE_ITEMS]
            response = self._attempt(
                partial(self._client.batch_write_item, RequestItems={self._table: chunk}),
                time_left_ms,
                ledger,
                "write",
            )
            if response is None:
                written = checkpoints[start : start + len(chunk)]
                ledger.events_unremembered += sum(c.events() for c in written)
                continue
            unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
            ledger.items_written += len(chunk) - len(unprocessed)
            if unprocessed:
                ledger.problems.append(
                    f"checkpoint write: {len(unprocessed)} of {len(chunk)} items not processed "
                    "(throttled)"
                )
                keys = {_item_key(request["PutRequest"]["Item"]) for request in unprocessed}
                ledger.events_unremembered += sum(c.events() for c in checkpoints if c.key in keys)

    def _get(
        self, keys: Sequence[CheckpointKey], time_left_ms: Callable[[], int], ledger: Ledger
    ) -> list[Checkpoint]:
        request: dict[str, Any] = {
            self._table: {
                "Keys": [
                    {PARTITION_KEY: {"S": k.partition}, SORT_KEY: {"S": k.sort}} for k in keys
                ],
                "ConsistentRead": True,
            }
        }
        response = self._attempt(
            lambda: self._client.batch_get_item(RequestItems=request), time_left_ms, ledger, "read"
        )
        if response is None:
            ledger.unread.update(key.partition for key in keys)
            return []
        pending = response.get("UnprocessedKeys", {}).get(self._table)
        if pending and pending.get("Keys"):
            ledger.problems.append(
                f"checkpoint read: {len(pending['Keys'])} of {len(keys)} keys not processed"
            )
            ledger.unread.update(_item_key(key).partition for key in pending["Keys"])
        return self._parse(response.get("Responses", {}).get(self._table, []), ledger)

    def _query(
        self, shard: ShardStart, time_left_ms: Callable[[], int], ledger: Ledger
    ) -> list[Checkpoint]:
        """The items under the batch's first record, with their parts."""
        items: list[dict[str, Any]] = []
        condition = f"{PARTITION_KEY} = :shard AND begins_with({SORT_KEY}, :first)"
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": {
                ":shard": {"S": shard.partition},
                ":first": {"S": shard.first},
            },
            "ConsistentRead": True,
        }
        for _ in range(MAX_QUERY_PAGES):
            response = self._attempt(
                lambda: self._client.query(**arguments), time_left_ms, ledger, "read"
            )
            if response is None:
                ledger.unread.add(shard.partition)
                return []
            items += response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return self._parse(items, ledger)
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        ledger.problems.append(f"checkpoint read: more than {MAX_QUERY_PAGES} pages, not read")
        ledger.unread.add(shard.partition)
        return []

    @staticmethod
    def _attempt(
        call: Callable[[], _Answer], time_left_ms: Callable[[], int], ledger: Ledger, what: str
    ) -> _Answer | None:
        """``call``'s answer, after at most ``ATTEMPTS`` attempts, each started only if it fits
        in ``time_left_ms``; None, with the problem in ``ledger``, if none succeeded. Retried
        at once: botocore's backoff (up to a second) would take the records' time."""
        problem = "too little time left"
        for _ in range(ATTEMPTS):
            if time_left_ms() < CALL_MS:
                break
            try:
                return call()
            except (ClientError, BotoCoreError) as error:
                problem = _describe(error)
        ledger.problems.append(f"checkpoint {what} not done: {problem}")
        return None

    def _parse(self, items: Sequence[dict[str, Any]], ledger: Ledger) -> list[Checkpoint]:
        found = []
        for item in items:
            ledger.items_read += 1
            try:
                key = _item_key(item)
                found.append(Checkpoint.decode(key, item[LANDED_ATTRIBUTE]["S"]))
            except (KeyError, TypeError, ValueError) as error:
                ledger.problems.append(f"checkpoint item unreadable, ignored: {error!r}"[:300])
                partition = item.get(PARTITION_KEY, {})
                if isinstance(partition, dict) and isinstance(partition.get("S"), str):
                    ledger.unread.add(partition["S"])
        return found


def _item_key(item: Any) -> CheckpointKey:
    return CheckpointKey(item[PARTITION_KEY]["S"], item[SORT_KEY]["S"])


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', '')}: {details.get('Message', '')}"
    return f"{type(error).__name__}: {error}"
