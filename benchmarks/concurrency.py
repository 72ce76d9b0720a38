"""Concurrency: 40 requests against an endpoint that answers each after 50 ms.

The handler gets 40 small records, each bound for a stream of its own, so it sends 40
PutLogEvents requests; the instant endpoint (in a process of its own) holds each answer 50 ms.
With ``MAX_CONCURRENT_REQUESTS`` = c the ideal wall time is ceil(40 / c) x 50 ms; the target is
1.25x that. The default (8) is the headline; the full run also sweeps 1, 4, 16 and 40.
The most requests the endpoint saw in flight at once is reported beside it, and so is the wall
time of the same 40 requests sent by botocore alone (same client settings, a thread pool of the
same size), measured interleaved with the handler: what is left above the ideal there is
botocore's own CPU per request (about 2 ms: serialising, signing, parsing), which the threads
share under the GIL, and the endpoint's.
"""

from __future__ import annotations

import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import RESULTS
from benchmarks.common import Row, load_handler, median, quiet_stdout, run_alone, spread
from benchmarks.endpoint import InstantLogsEndpoint
from benchmarks.workloads import one_per_stream
from forwarder.sending import make_logs_client
from local.lambda_events import LambdaContext

REQUESTS = 40
LATENCY_S = 0.050
TARGET = 1.25
DEFAULT_BOUND = 8


def run(quick: bool = False, out: Path = RESULTS) -> list[Row]:
    bounds = [8] if quick else [8, 1, 4, 16, 40]
    repetitions = 3 if quick else 9
    event = one_per_stream(REQUESTS)
    now = int(time.time() * 1000)
    requests = [
        {
            "logGroupName": "/app/bench",
            "logStreamName": f"c-{i}",
            "logEvents": [{"timestamp": now, "message": "x" * 120}],
        }
        for i in range(REQUESTS)
    ]
    rows = []
    with InstantLogsEndpoint(latency=LATENCY_S) as endpoint:
        for bound in bounds:
            module = load_handler(endpoint.url, MAX_CONCURRENT_REQUESTS=str(bound))
            client = make_logs_client(bound)
            pool = ThreadPoolExecutor(bound)

            def handler(module: Any = module) -> None:
                with quiet_stdout():
                    response = module.handler(event, LambdaContext())
                assert response == {"batchItemFailures": []}, response

            def botocore(client: Any = client, pool: ThreadPoolExecutor = pool) -> None:
                list(pool.map(lambda arguments: client.put_log_events(**arguments), requests))

            handler()  # the first calls open the connections: a cold start, not counted
            botocore()
            walls: dict[str, list[float]] = {"handler": [], "botocore": []}
            in_flight, calls = [], []
            for round_ in range(repetitions):
                order = [("handler", handler), ("botocore", botocore)]
                for name, call in order if round_ % 2 == 0 else order[::-1]:
                    endpoint.reset()
                    started = time.perf_counter()
                    call()
                    walls[name].append(time.perf_counter() - started)
                    if name == "handler":
                        stats = endpoint.stats()
                        in_flight.append(stats["max_in_flight"])
                        calls.append(stats["calls"].get("PutLogEvents", 0))
            pool.shutdown()
            ideal = math.ceil(REQUESTS / bound) * LATENCY_S
            wall = median(walls["handler"])
            alone = median(walls["botocore"])
            ratio = wall / ideal
            headline = bound == DEFAULT_BOUND
            rows.append(
                Row(
                    "concurrency",
                    f"{REQUESTS} requests, 50 ms each, MAX_CONCURRENT_REQUESTS={bound}",
                    f"{wall * 1000:.0f} ms (spread "
                    f"{spread([w * 1000 for w in walls['handler']])}); "
                    f"at most {max(in_flight)} in flight",
                    f"ideal ceil({REQUESTS}/{bound}) x 50 ms = {ideal * 1000:.0f} ms",
                    ratio,
                    f"<= {TARGET}x" if headline else "",
                    ratio <= TARGET if headline else None,
                    {
                        "bound": bound,
                        "walls_s": walls["handler"],
                        "botocore_walls_s": walls["botocore"],
                        "ideal_s": ideal,
                        "ratio": ratio,
                        "max_in_flight": max(in_flight),
                        "put_calls": calls,
                    },
                )
            )
            rows.append(
                Row(
                    "concurrency",
                    f"  the same {REQUESTS} requests from botocore alone, pool of {bound}",
                    f"{alone * 1000:.0f} ms",
                    f"handler {wall * 1000:.0f} ms",
                    alone / ideal,
                    "",
                    None,
                    {"bound": bound, "handler_over_botocore": wall / alone},
                )
            )
    return rows


if __name__ == "__main__":
    run_alone(run, __doc__, sys.argv[1:])
