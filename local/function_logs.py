"""What a function printed, kept line by line, with its structured lines read back.

The forwarder logs JSON (Powertools Logger) and its metrics as EMF JSON lines on stdout; Lambda
would ship both to the function's log group. Here they are kept in memory, so the demo can say
which records were not delivered and why, exactly as a person would read it in CloudWatch Logs.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass(frozen=True, slots=True)
class Undelivered:
    """One ``record not delivered`` line: the record, what became of it, and why."""

    function: str
    record_id: str
    disposition: str
    reason: str


class FunctionLogs:
    """A thread-safe collection of a function's output lines. With ``echo``, each line is also
    written there as it arrives (prefixed with ``prefix``)."""

    def __init__(self, name: str, echo: TextIO | None = None, prefix: str = "") -> None:
        self.name = name
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._echo = echo
        self._prefix = prefix

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)
        if self._echo is not None:
            self._echo.write(f"{self._prefix}{line}\n")
            self._echo.flush()

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def documents(self) -> list[dict[str, Any]]:
        """Every line that is a JSON object."""
        found = []
        for line in self.lines():
            text = line.strip()
            if not text.startswith("{"):
                continue
            try:
                document = json.loads(text)
            except ValueError:
                continue
            if isinstance(document, dict):
                found.append(document)
        return found

    def undelivered(self, request_id: str | None = None) -> list[Undelivered]:
        """The ``record not delivered`` lines (of one invocation, given its ``request_id``)."""
        return [
            Undelivered(
                self.name,
                str(d.get("record_id")),
                str(d.get("disposition")),
                str(d.get("reason")),
            )
            for d in self.documents()
            if d.get("message") == "record not delivered"
            and (request_id is None or d.get("function_request_id") == request_id)
        ]

    def metric_totals(self) -> Counter[str]:
        """Each EMF metric summed over every invocation."""
        totals: Counter[str] = Counter()
        for document in self.documents():
            directives = document.get("_aws", {}).get("CloudWatchMetrics", [])
            for directive in directives:
                for metric in directive.get("Metrics", []):
                    value = document.get(metric.get("Name"))
                    values = value if isinstance(value, list) else [value]
                    totals[metric["Name"]] += int(sum(v for v in values if v is not None))
        return totals


class LineWriter(io.TextIOBase):
    """A text stream that hands each complete line to a ``FunctionLogs``."""

    def __init__(self, logs: FunctionLogs) -> None:
        self._logs = logs
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._partial += text
            *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self._logs.add(line)
        return len(text)

    def flush(self) -> None:
        pass
