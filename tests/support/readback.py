"""Reading back what landed in (moto's) CloudWatch Logs; the reading itself is the local loop's."""

from __future__ import annotations

from typing import Any

from local.readback import read_stream as read_events

__all__ = ["read_events", "stream_names"]


def stream_names(logs: Any, group: str) -> set[str]:
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    return {stream["logStreamName"] for stream in streams}
