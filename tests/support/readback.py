"""Reading back what landed in (moto's) CloudWatch Logs."""

from __future__ import annotations

from typing import Any


def read_events(logs: Any, group: str, stream: str) -> list[tuple[int, str]]:
    """Every event of a stream as (timestamp, message), following the pagination tokens."""
    events: list[tuple[int, str]] = []
    token = None
    while True:
        arguments = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            arguments["nextToken"] = token
        page = logs.get_log_events(**arguments)
        events.extend((e["timestamp"], e["message"]) for e in page["events"])
        if not page["events"] or page["nextForwardToken"] == token:
            return events
        token = page["nextForwardToken"]


def stream_names(logs: Any, group: str) -> set[str]:
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    return {stream["logStreamName"] for stream in streams}
