"""What every benchmark shares: result rows, the table, side-by-side timing, the handler loader."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forwarder.settings import VARIABLES

#: Dummy credentials and region: the endpoints are local, nothing ever reaches AWS.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "log-forwarder-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "LogForwarderBench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",  # as Lambda sets it; infra/config.py memorySize
}


@dataclass
class Row:
    """One line of the table: a figure, what it is compared with, and the ratio of the two."""

    benchmark: str
    case: str
    measured: str
    reference: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # machine-readable, for the tests

    def ratio_text(self) -> str:
        if self.ratio is None:
            return ""
        return f"{self.ratio:.2f}" if math.isfinite(self.ratio) else str(self.ratio)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def spread(values: list[float]) -> str:
    """min-max of a sample, for the reader to judge the noise."""
    return f"{min(values):.3g}-{max(values):.3g}" if values else ""


@dataclass
class Sample:
    """Wall and CPU seconds of repeated runs of one contender."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def side_by_side(contenders: dict[str, Callable[[], Any]], repetitions: int) -> dict[str, Sample]:
    """Run every contender ``repetitions`` times, interleaved (the order rotates each round, so
    no contender always runs first or after the same neighbour). CPU is ``process_time``: every
    thread of this process, so the send pool's threads count and a server in another process
    does not."""
    samples = {name: Sample() for name in contenders}
    names = list(contenders)
    for round_ in range(repetitions):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            cpu, wall = time.process_time(), time.perf_counter()
            contenders[name]()
            samples[name].wall.append(time.perf_counter() - wall)
            samples[name].cpu.append(time.process_time() - cpu)
    return samples


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send what the handler prints (Powertools log lines and EMF metrics) to /dev/null. The
    writes still happen, so their cost is counted."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def load_handler(logs_url: str, **env: str) -> Any:
    """Import ``forwarder.handler`` afresh (a cold start) against ``logs_url``, with the
    forwarder's variables set to ``env`` and dummy credentials. Its Powertools log lines go to
    /dev/null (they are still formatted and written, so their cost counts)."""
    for name in VARIABLES:  # the forwarder's own: a benchmark sees only what it sets
        os.environ.pop(name, None)
    os.environ.update(AWS_ENV)
    os.environ["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] = logs_url
    os.environ.update(env)
    with quiet_stdout():
        if "forwarder.handler" in sys.modules:
            module = importlib.reload(sys.modules["forwarder.handler"])
        else:
            module = importlib.import_module("forwarder.handler")
    # Powertools binds the named logger's handler to the stdout of the first load.
    for handler in logging.getLogger(AWS_ENV["POWERTOOLS_SERVICE_NAME"]).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = _DEVNULL
    return module


_DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def format_table(rows: list[Row]) -> str:
    """A Markdown table (it reads as well in a terminal as in docs/benchmarks.md)."""
    header = ["benchmark", "case", "measured", "reference", "ratio", "target", "met"]
    lines = [
        [
            r.benchmark,
            r.case,
            r.measured,
            r.reference,
            r.ratio_text(),
            r.target,
            {True: "yes", False: "NO", None: ""}[r.met],
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def render(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [render(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(render(line) for line in lines)
    return "\n".join(out)


def write_results(rows: list[Row], out: Path, meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1, default=str) + "\n"
    )
    (out / "table.md").write_text(format_table(rows) + "\n")


def machine() -> dict[str, Any]:
    """What the figures were measured on, and which code: the commit, and whether the function's
    code differed from it (uncommitted changes, or FORWARDER_SRC pointing elsewhere)."""
    import platform
    import subprocess

    from benchmarks import LAMBDA_SRC, ROOT

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
        # The ratios moved with what else the machine ran (docs/benchmarks.md, "Timing").
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "commit": git("rev-parse", "--short", "HEAD"),
        "lambda_src_changed": bool(git("status", "--porcelain", "--", "lambda_src")),
        "forwarder_src": str(LAMBDA_SRC),
    }


def run_alone(
    run: Callable[..., list[Row]], doc: str | None, argv: list[str] | None = None
) -> None:
    """``python -m benchmarks.NAME [--quick] [--out DIR]``: one benchmark, its table printed;
    with ``--out``, its rows and facts also written to ``DIR/results.json`` (the full run's
    results stay as they are)."""
    import argparse

    from benchmarks import RESULTS

    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = run(args.quick, args.out or RESULTS)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_results(rows, args.out, machine())
    print(format_table(rows))
