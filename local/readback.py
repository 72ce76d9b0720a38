"""Read back what landed in (moto's) CloudWatch Logs and compare it with what should have.

CloudWatch Logs returns a stream's events by timestamp (moto too, ties in arrival order). A
message the forwarder split (over 1 MB) lands as several events with one timestamp, in any
order: ``check_streams`` puts them back together before comparing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Event = tuple[int, str]
StreamKey = tuple[str, str]
SPLIT_ABOVE_BYTES = 1_048_576 - 26


def read_stream(logs: Any, group: str, stream: str) -> list[Event]:
    """Every event of a stream as (timestamp, message), following the pagination tokens."""
    events: list[Event] = []
    token = None
    while True:
        arguments: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream,
            "startFromHead": True,
        }
        if token:
            arguments["nextToken"] = token
        page = logs.get_log_events(**arguments)
        events.extend((e["timestamp"], e["message"]) for e in page["events"])
        if not page["events"] or page["nextForwardToken"] == token:
            return events
        token = page["nextForwardToken"]


def stream_names(logs: Any, group: str) -> set[str]:
    """The names of a group's streams (its first page: up to 50)."""
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    return {stream["logStreamName"] for stream in streams}


def read_groups(logs: Any, groups: Iterable[str]) -> dict[StreamKey, list[Event]]:
    """Every stream of every group in ``groups``, with its events."""
    landed: dict[StreamKey, list[Event]] = {}
    for group in groups:
        paginator = logs.get_paginator("describe_log_streams")
        for page in paginator.paginate(logGroupName=group):
            for stream in page["logStreams"]:
                name = stream["logStreamName"]
                landed[(group, name)] = read_stream(logs, group, name)
    return landed


@dataclass(frozen=True, slots=True)
class StreamCheck:
    """One stream: events expected and landed (split parts counted one by one), and ``ok`` when
    every expected event landed once, in timestamp order, and nothing else did."""

    group: str
    stream: str
    expected: int
    landed: int
    ok: bool
    problem: str = ""


def check_streams(
    expected: Mapping[StreamKey, list[Event]], landed: Mapping[StreamKey, list[Event]]
) -> list[StreamCheck]:
    """Compare every stream that was expected or landed; sorted by group and stream."""
    checks = []
    for key in sorted(set(expected) | set(landed)):
        wanted = sorted(expected.get(key, []), key=lambda event: event[0])
        got = landed.get(key, [])
        joined = _join_split_parts(got, [m for _, m in wanted if _split(m)])
        problem = ""
        if joined != wanted:
            missing = len([e for e in wanted if e not in joined])
            extra = len([e for e in joined if e not in wanted])
            duplicated = len(joined) - len(set(joined))
            problem = f"{missing} missing, {extra} unexpected, {duplicated} duplicated"
            if not (missing or extra or duplicated):
                problem = "out of order"
        checks.append(StreamCheck(key[0], key[1], len(wanted), len(got), not problem, problem))
    return checks


def _split(message: str) -> bool:
    return len(message.encode()) > SPLIT_ABOVE_BYTES


def _join_split_parts(events: list[Event], split_messages: list[str]) -> list[Event]:
    """``events`` with the parts of each message in ``split_messages`` joined back into it."""
    result = list(events)
    for message in split_messages:
        parts = [e for e in result if e[1] and e[1] in message and e[1] != message]
        stamps = {t for t, _ in parts}
        if len(stamps) != 1:
            continue
        ordered = sorted(parts, key=lambda event: message.find(event[1]))
        if "".join(m for _, m in ordered) != message:
            continue
        first = result.index(ordered[0])
        result = [e for e in result if e not in parts]
        result.insert(first, (stamps.pop(), message))
    return result
