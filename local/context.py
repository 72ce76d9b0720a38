"""The Lambda context object for in-process invocations, with a real time budget."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LocalContext:
    """What the handler reads from Lambda's context. ``deadline_ms`` is epoch milliseconds, as
    the Runtime API's ``Lambda-Runtime-Deadline-Ms`` header gives it;
    ``get_remaining_time_in_millis`` counts down to it in real time."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline_ms: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))
