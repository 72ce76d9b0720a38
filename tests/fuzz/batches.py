"""Batches that put one hostile record between good ones, and the checks every test makes."""

from __future__ import annotations

import base64
from typing import Any

from local.lambda_events import kinesis_event, one_event, sqs_event
from tests.fuzz.hostile import KINESIS

GOOD_STREAM = "good"


def batch_with(
    source: str, payload: str | bytes | None, group: str, now_ms: int, stream: str = GOOD_STREAM
) -> tuple[dict[str, Any], str, list[str]]:
    """An event of [good, hostile, good] from SQS, [good, good, hostile] from Kinesis; returns
    the event, the hostile record's id and the messages of the good records.

    On Kinesis a failed record holds back the later records of its shard (Lambda retries the
    shard from it), so a good record after a hostile one would be reported failed too."""
    good = [f"good {i} {stream}" for i in range(2)]
    bodies = [one_event(group, stream, message, now_ms + i) for i, message in enumerate(good)]
    if source == KINESIS:
        placeholder = b"" if isinstance(payload, str) else (payload or b"")
        event = kinesis_event([bodies[0].encode(), bodies[1].encode(), placeholder])
        if isinstance(payload, str):  # raw ``data`` text, not base64 of anything
            event["Records"][2]["kinesis"]["data"] = payload
        else:
            assert event["Records"][2]["kinesis"]["data"] == base64.b64encode(placeholder).decode()
        hostile_id = event["Records"][2]["kinesis"]["sequenceNumber"]
    else:
        event = sqs_event([bodies[0], payload if isinstance(payload, str) else "", bodies[1]])
        if payload is None:
            del event["Records"][1]["body"]
        hostile_id = event["Records"][1]["messageId"]
    return event, hostile_id, good
