"""Run event source mappings the way Lambda's pollers do: each in its own thread, until the
sources are drained or a stop is asked for.

A mapping (``SqsEventSourceMapping``, ``KinesisEventSourceMapping``) is a ``Poller``: ``poll``
takes one batch (or one per shard) and invokes the function with it, ``drained`` says whether
nothing is left to deliver: no message visible or in flight, no record after a shard's checkpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from local.batch_response import BatchVerdict
from local.invocation import Invocation


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One invocation by a mapping: how many records it carried and what came of them."""

    mapping: str
    size: int
    invocation: Invocation
    verdict: BatchVerdict


BatchListener = Callable[[BatchOutcome], None]


class Poller(Protocol):
    """An event source mapping as the loop sees it."""

    name: str

    def poll(self) -> bool:
        """Deliver at most one batch (per shard); ``False`` when there was nothing to take."""
        ...

    def drained(self) -> bool:
        """Nothing left to deliver, now."""
        ...


class EventSourceLoop:
    """Runs pollers concurrently, one thread each; a poller's exception ends the run and is
    raised again in the caller's thread."""

    def __init__(self, pollers: Sequence[Poller], idle_pause_s: float = 0.1) -> None:
        self._pollers = list(pollers)
        self._idle_pause_s = idle_pause_s

    def run_until_drained(self, timeout_s: float) -> bool:
        """Poll until every source is drained; ``False`` if ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        finished: dict[str, bool] = {}
        abort = threading.Event()

        def work(poller: Poller) -> None:
            while time.monotonic() < deadline and not abort.is_set():
                if not poller.poll():
                    if poller.drained():
                        finished[poller.name] = True
                        return
                    abort.wait(self._idle_pause_s)
            finished[poller.name] = False

        self._run(work, abort)
        return all(finished.get(p.name, False) for p in self._pollers)

    def run_until_stopped(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (the ``serve`` command)."""

        def work(poller: Poller) -> None:
            while not stop.is_set():
                if not poller.poll():
                    stop.wait(self._idle_pause_s)

        self._run(work, stop)

    def _run(self, work: Callable[[Poller], None], abort: threading.Event) -> None:
        errors: list[BaseException] = []

        def guarded(poller: Poller) -> None:
            try:
                work(poller)
            except BaseException as error:
                errors.append(error)
                abort.set()

        threads = [
            threading.Thread(target=guarded, args=(p,), name=f"poller-{p.name}", daemon=True)
            for p in self._pollers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
