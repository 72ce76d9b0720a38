"""Helpers of the end-to-end tests: fast blueprints, scripted handlers, record decoding."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from local.specs import fast_blueprint

__all__ = ["Records", "ScriptedHandler", "fail_where", "fast_blueprint", "payload", "record_id"]

Records = list[dict[str, Any]]


class ScriptedHandler:
    """A stand-in for the forwarder: keeps every batch it is given and answers what
    ``respond(records)`` returns (or raises)."""

    def __init__(self, respond: Callable[[Records], Any]) -> None:
        self.batches: list[Records] = []
        self._respond = respond

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.batches.append(event["Records"])
        return self._respond(event["Records"])

    def payloads(self) -> list[list[str]]:
        """The payload of each record of each batch, in order."""
        return [[payload(r) for r in batch] for batch in self.batches]


def payload(record: dict[str, Any]) -> str:
    """An SQS record's body or a Kinesis record's data, as text."""
    if "kinesis" in record:
        return base64.b64decode(record["kinesis"]["data"]).decode()
    return str(record["body"])


def record_id(record: dict[str, Any]) -> str:
    """What ``batchItemFailures`` names: the SQS message id or the Kinesis sequence number."""
    if "kinesis" in record:
        return str(record["kinesis"]["sequenceNumber"])
    return str(record["messageId"])


def fail_where(predicate: Callable[[str], bool]) -> Callable[[Records], dict[str, Any]]:
    """A response that reports the records whose payload matches ``predicate``."""

    def respond(records: Records) -> dict[str, Any]:
        failed = [{"itemIdentifier": record_id(r)} for r in records if predicate(payload(r))]
        return {"batchItemFailures": failed}

    return respond
