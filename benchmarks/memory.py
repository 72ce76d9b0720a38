"""Memory: peak RSS of one invocation on a full batch, in a process of its own.

A fresh interpreter imports the handler (RSS after imports), reads the event's JSON and decodes
it as the Lambda runtime does (RSS with the event), resets the kernel's high-water mark
(``/proc/self/clear_refs``) and runs one invocation against the instant endpoint; the peak of
the invocation is the high-water mark after it (``VmHWM``). N fresh processes, medians.

Cases: the CPU benchmark's 10,000-record SQS event of about 6 MB; and (full run only) a hostile
one: a single 65 KB SQS body, gzip and base64, that decompresses to just under the decoder's
16 MiB cap and holds 400,000 one-character events; and seven of them in one batch (460 KB of
SQS messages), their events 30 days old so that they are judged and never sent (the decoded
events are held all the same). And (full run only) Kinesis's large records: a stream may take
records of up to 10 MiB, but Lambda invokes a function with at most 6 MB of event, the data in
base64, so the largest record a function can get is about 4.4 MB: one such record holding one
4.4 MB message (split into five events), and one such KPL aggregate of 4,400 user records. The
function is configured with 512 MB (``infra/config.py``).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import LAMBDA_SRC, RESULTS, ROOT
from benchmarks.common import AWS_ENV, Row, median, run_alone, spread
from benchmarks.endpoint import InstantLogsEndpoint
from benchmarks.workloads import BENCH_GROUP, sqs_batch
from local.aggregation import aggregate
from local.lambda_events import kinesis_event, one_event, sqs_event

LAMBDA_MEMORY_MB = 512  # infra/config.py: memorySize
MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024  # forwarder.records.MAX_DECOMPRESSED_BYTES

_CHILD = r"""
import json, os, resource, sys

def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def hwm_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

from local.lambda_events import LambdaContext  # first: its 0.1 MB is among the imports
sys.stdout = open(os.devnull, "w")  # the handler's log lines
import forwarder.handler as module
figures = {"imports_mb": rss_mb()}
with open(sys.argv[1], "rb") as source:
    event = json.loads(source.read())
figures["event_mb"] = rss_mb()
try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM to the current RSS
    figures["hwm_reset"] = True
except OSError:
    figures["hwm_reset"] = False
response = module.handler(event, LambdaContext(budget_ms=300_000))
figures["peak_mb"] = hwm_mb()
figures["after_mb"] = rss_mb()
figures["failed"] = len(response["batchItemFailures"])
with open(sys.argv[2], "w") as out:
    json.dump(figures, out)
"""


def dense_record_event(now_ms: int, records: int = 1) -> dict[str, Any]:
    """``records`` SQS bodies, each gunzipping to just under 16 MiB of one-character events."""
    item = json.dumps({"timestamp": now_ms, "message": "a"}, separators=(",", ":")) + ","
    head = json.dumps({"logGroupName": BENCH_GROUP, "logStreamName": "dense"})[:-1]
    head += ',"logEvents":['
    count = (MAX_DECOMPRESSED_BYTES - len(head) - 2) // len(item)
    document = head + item * (count - 1) + item[:-1] + "]}"
    body = base64.b64encode(gzip.compress(document.encode(), 9)).decode()
    return sqs_event([body] * records)


#: The most record data one Lambda event carries: 6 MB of event, the data in base64 (4/3).
LARGEST_DELIVERABLE_BYTES = 4_400_000


def large_record_event(now_ms: int) -> dict[str, Any]:
    """One Kinesis record of about 4.4 MB: one event whose message is nearly all of it."""
    text = "x" * (LARGEST_DELIVERABLE_BYTES - 200)
    return kinesis_event([one_event(BENCH_GROUP, "large", text, now_ms).encode()])


def large_aggregate_event(now_ms: int) -> dict[str, Any]:
    """One Kinesis record of about 4.4 MB: a KPL aggregate of 4,400 one-kilobyte events."""
    users = [
        (f"device-{i % 16}", one_event(BENCH_GROUP, "kpl", f"{i:05} " + "y" * 900, now_ms).encode())
        for i in range(4400)
    ]
    (record,) = aggregate(users, max_bytes=LARGEST_DELIVERABLE_BYTES + 100_000)
    return kinesis_event([record[1]])


def _run_child(event_path: Path, url: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env |= AWS_ENV | {
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": url,
        "PYTHONPATH": str(LAMBDA_SRC),
    }
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, "-c", _CHILD, str(event_path), out.name],
            env=env,
            cwd=ROOT,
            check=True,
            timeout=600,
        )
        return json.loads(Path(out.name).read_text())


def run(quick: bool = False, out: Path = RESULTS) -> list[Row]:
    repetitions = 1 if quick else 5
    now = int(time.time() * 1000)
    cases: dict[str, dict[str, Any]] = {"one 6 MB invocation (10,000 records)": sqs_batch()}
    if not quick:  # deterministic and slow (400k events a body): measured once
        stale = now - 30 * 24 * 3600 * 1000  # too old: judged, not sent, so this one is quick
        one, seven = "one 65 KB body", "seven such bodies, 30 days old (460 KB of SQS messages)"
        cases[f"hostile: {one} that gunzips to 16 MiB of 400k events"] = dense_record_event(now)
        cases[f"hostile: {seven}"] = dense_record_event(stale, 7)
        cases["Kinesis: one 4.4 MB record, one 4.4 MB message"] = large_record_event(now)
        cases["Kinesis: one 4.4 MB KPL aggregate of 4,400 user records"] = large_aggregate_event(
            now
        )
    rows = []
    with tempfile.TemporaryDirectory() as scratch, InstantLogsEndpoint() as endpoint:
        paths = {}
        for index, (name, event) in enumerate(cases.items()):
            paths[name] = Path(scratch) / f"event-{index}.json"
            paths[name].write_text(json.dumps(event))
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
        for round_ in range(repetitions):
            for name, path in paths.items():
                if round_ == 0 or not name.startswith(("hostile", "Kinesis")):
                    results[name].append(_run_child(path, endpoint.url))
        for name, runs in results.items():
            peak = [r["peak_mb"] for r in runs]
            imports = median([r["imports_mb"] for r in runs])
            loaded = median([r["event_mb"] for r in runs])
            size = paths[name].stat().st_size / 1e6
            rows.append(
                Row(
                    "memory",
                    f"peak RSS, {name}",
                    f"{median(peak):.0f} MB (spread {spread(peak)}); "
                    f"+{median(peak) - loaded:.0f} MB for the invocation; records failed "
                    f"{max(r['failed'] for r in runs)}",
                    f"after imports {imports:.0f} MB; with the {size:.1f} MB event "
                    f"{loaded:.0f} MB; function memory {LAMBDA_MEMORY_MB} MB",
                    median(peak) / LAMBDA_MEMORY_MB,
                    f"< {LAMBDA_MEMORY_MB} MB",
                    median(peak) < LAMBDA_MEMORY_MB,
                    {"runs": runs, "event_bytes": int(size * 1e6)},
                )
            )
    return rows


if __name__ == "__main__":
    run_alone(run, __doc__, sys.argv[1:])
