"""What invoking a function gives back, and the one interface both ways of running it share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from local.function_logs import FunctionLogs


@dataclass(frozen=True, slots=True)
class FunctionError:
    """An invocation that did not return: the handler raised, timed out or its runtime died.
    ``error_type`` is Lambda's (e.g. ``ValueError``, ``Sandbox.Timedout``,
    ``Runtime.ExitError``)."""

    error_type: str
    message: str


@dataclass(frozen=True, slots=True)
class Invocation:
    """One call of the function: the decoded JSON response, or the error."""

    request_id: str
    response: Any = None
    error: FunctionError | None = None
    duration_ms: int = 0

    @property
    def failed(self) -> bool:
        return self.error is not None


class Function(Protocol):
    """A Lambda function the event source mappings can invoke synchronously, one call at a time.

    ``invoke`` never raises for what the function does: a handler exception, a timeout or a
    crash comes back as ``Invocation.error``.
    """

    name: str
    arn: str
    logs: FunctionLogs

    def invoke(self, event: Mapping[str, Any]) -> Invocation: ...

    def close(self) -> None: ...
