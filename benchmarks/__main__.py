"""``python -m benchmarks [--quick] [--only NAME,...] [--out DIR]``: run the benchmarks, print
one table.

The full run (what ``make bench`` runs) writes ``results.json``, ``table.md``, ``packing.png``
and ``importtime.txt`` to ``benchmarks/results/``. ``--quick`` is the smoke run CI does through
``tests/bench``: every benchmark on small inputs with few repetitions, in well under a minute; it
writes to a temporary directory unless ``--out`` is given, so it never touches the committed
results. No benchmark fails on a figure: the table says which targets were met; the exit status
is non-zero only when a benchmark could not run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import RESULTS
from benchmarks.common import Row, format_table, machine, write_results

#: The name ``--only`` takes -> its module; the last two are end-to-end campaigns, not timings.
BENCHMARKS = {name: name for name in ("packing", "cpu", "concurrency", "cold_start", "memory")}
BENCHMARKS |= {"faults": "campaign_faults", "load": "campaign_load"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the smoke run (under a minute)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {tuple(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, help="where results go (default: see above)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {tuple(BENCHMARKS)}")
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-")) if args.quick else RESULTS)

    rows: list[Row] = []
    elapsed: dict[str, float] = {}
    failed: list[str] = []
    started = time.perf_counter()
    for name in chosen:
        print(f"running {name}{' (quick)' if args.quick else ''}...", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{BENCHMARKS[name]}")
            rows.extend(module.run(quick=args.quick, out=out))
        except Exception:
            traceback.print_exc()
            failed.append(name)
        elapsed[name] = time.perf_counter() - begun
    total = time.perf_counter() - started
    meta = machine() | {
        "quick": args.quick,
        "elapsed_s": {name: round(s, 1) for name, s in elapsed.items()},
        "total_s": round(total, 1),
        "failed": failed,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    write_results(rows, out, meta)
    print(format_table(rows))
    times = ", ".join(f"{name} {s:.0f} s" for name, s in elapsed.items())
    print(f"\n{total:.0f} s ({times}); results in {out}")
    if failed:
        print(f"could not run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
