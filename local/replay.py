"""Replay what a Kinesis mapping gave up: its on-failure records in S3 carry the batch's event.

With an S3 on-failure destination Lambda writes, for each batch it gives up after its retries,
the invocation record with ``payload``: the event the function got. Replaying it is invoking the
function with that event again, as ``aws lambda invoke`` does in AWS (README, "Replaying
given-up Kinesis records"): the function sends what has not landed (the delivery checkpoint
leaves out what has, while its items live) and reports what fails again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from infra.config import ON_FAILURE_PREFIX
from local.deploy import Deployment, LocalBucket
from local.invocation import Function


class NotReplayable(ValueError):
    """An on-failure record without the batch's event (a queue's: metadata only)."""


@dataclass(frozen=True, slots=True)
class Replayed:
    """One on-failure record replayed: its key, how many records it held, which of them
    failed again (their sequence numbers), and the function's error if it raised."""

    key: str
    records: int
    failed: tuple[str, ...]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed


def replay_event(document: dict[str, Any]) -> dict[str, Any]:
    """The Lambda event an on-failure record carries (``payload``: JSON text, or an object)."""
    payload = document.get("payload")
    if payload is None:
        raise NotReplayable(
            "the on-failure record holds metadata only (an SQS destination): read the records "
            "from the stream by its KinesisBatchInfo while the stream still keeps them"
        )
    event = json.loads(payload) if isinstance(payload, str) else payload
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise NotReplayable("the on-failure record's payload is not a Lambda event")
    return event


def replay(deployment: Deployment, function: Function, *, delete: bool = False) -> list[Replayed]:
    """Invoke ``function`` with the event of every on-failure record of the deployment's
    Kinesis mapping, in key order (mapping, shard, then time); with ``delete``, remove each
    record that replayed whole. A record that cannot be read is reported and skipped."""
    kinesis = deployment.blueprint.kinesis
    destination = kinesis and kinesis.mapping.on_failure
    bucket = deployment.destination(destination) if destination else None
    if not isinstance(bucket, LocalBucket):
        raise NotReplayable(
            "the Kinesis mapping's on-failure destination is not a bucket (kinesisOnFailure=sqs "
            "keeps metadata only): nothing to replay"
        )
    s3 = deployment.endpoints.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket.name, Prefix=ON_FAILURE_PREFIX
    )
    keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
    results = []
    for key in keys:
        try:
            document = json.loads(s3.get_object(Bucket=bucket.name, Key=key)["Body"].read())
            event = replay_event(document if isinstance(document, dict) else {})
        except ValueError as error:  # NotReplayable, and JSON that does not parse
            results.append(Replayed(key, 0, (), f"not replayed: {error}"))
            continue
        invocation = function.invoke(event)
        if invocation.error is not None:
            error = f"{invocation.error.error_type}: {invocation.error.message}"
            results.append(Replayed(key, len(event["Records"]), (), error))
            continue
        response = invocation.response if isinstance(invocation.response, dict) else {}
        failed = tuple(
            str(item.get("itemIdentifier")) for item in response.get("batchItemFailures", [])
        )
        results.append(Replayed(key, len(event["Records"]), failed))
        if delete and not failed:
            s3.delete_object(Bucket=bucket.name, Key=key)
    return results
