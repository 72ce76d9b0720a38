"""Before/after: the handler of this tree and of a candidate copy, side by side in one process.

``python -m benchmarks.ab /path/to/candidate/lambda_src [--repetitions 21]``

The candidate's ``forwarder`` package is copied under another name (``forwarder_candidate``, its
imports rewritten), so both handlers and the CPU baseline run interleaved in the same process on
the same 6 MB batch, against the same instant endpoint. Rounds rotate the order; the figures are
medians. This is how a proposed fix in ``lambda_src`` is measured before it is applied.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import Row, format_table, load_handler, median, quiet_stdout, side_by_side
from benchmarks.cpu import Baseline
from benchmarks.endpoint import InstantLogsEndpoint
from benchmarks.workloads import sqs_batch
from local.lambda_events import LambdaContext

_IMPORT = re.compile(r"\b(from|import)\s+forwarder(?=[\s.])")


def load_candidate(source: Path, workdir: Path) -> Any:
    """Import ``source/forwarder`` as ``forwarder_candidate`` and return its handler module
    (the environment must already be set, as ``load_handler`` leaves it)."""
    target = workdir / "forwarder_candidate"
    shutil.copytree(source / "forwarder", target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in target.glob("*.py"):
        path.write_text(_IMPORT.sub(r"\1 forwarder_candidate", path.read_text()))
    sys.path.insert(0, str(workdir))
    with quiet_stdout():
        return importlib.import_module("forwarder_candidate.handler")


def run(candidate: Path, repetitions: int) -> list[Row]:
    event = sqs_batch()
    with InstantLogsEndpoint() as endpoint, tempfile.TemporaryDirectory() as workdir:
        current = load_handler(endpoint.url)
        other = load_candidate(candidate, Path(workdir))
        baseline = Baseline(current.settings.max_concurrent_requests)

        def call(module: Any) -> None:
            with quiet_stdout():
                assert module.handler(event, LambdaContext()) == {"batchItemFailures": []}

        contenders = {
            "current": lambda: call(current),
            "candidate": lambda: call(other),
            "baseline": lambda: baseline(event),
        }
        for warm in contenders.values():
            warm()
        samples = side_by_side(contenders, repetitions)
        baseline.close()
    base = median(samples["baseline"].cpu)
    rows = []
    for name in ("current", "candidate"):
        cpu = median(samples[name].cpu)
        rows.append(
            Row(
                "ab",
                f"{name} handler, CPU per 6 MB batch",
                f"{cpu * 1000:.0f} ms",
                f"baseline {base * 1000:.0f} ms",
                cpu / base,
                "<= 1.5x",
                cpu / base <= 1.5,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidate", type=Path, help="a copy of lambda_src with the change")
    parser.add_argument("--repetitions", type=int, default=21)
    args = parser.parse_args(argv)
    print(format_table(run(args.candidate.resolve(), args.repetitions)))


if __name__ == "__main__":
    main(sys.argv[1:])
