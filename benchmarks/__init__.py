"""Benchmarks of the forwarder: packing, CPU, concurrency, cold start and memory; and two
end-to-end campaigns through the local loop, ``campaign_faults`` and ``campaign_load``.

Run them all with ``python -m benchmarks`` (``--quick`` for the smoke CI runs), or one with
``python -m benchmarks.packing`` and so on. Each prints figures and ratios measured side by side
in the same run; none of them asserts an absolute time. See ``docs/benchmarks.md``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The function's code root; FORWARDER_SRC points the benchmarks at another copy (a candidate
#: fix) so that before and after are measured the same way.
LAMBDA_SRC = Path(os.environ.get("FORWARDER_SRC") or ROOT / "lambda_src").resolve()
RESULTS = Path(__file__).resolve().parent / "results"

for _path in (str(LAMBDA_SRC), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
