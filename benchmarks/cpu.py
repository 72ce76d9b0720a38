"""CPU: the handler on a full SQS batch versus a baseline that only decodes and sends.

The workload is a 10,000-record SQS event of about 6 MB (the Lambda payload limit) to 10 streams.
The handler runs in this process, imported as on a cold start, against the instant endpoint
(``endpoint.py``), which runs in a process of its own. The baseline, in the same process and the
same run, does what no forwarder can avoid: ``json.loads`` of each body, grouping by stream, and
the same number of PutLogEvents requests with a botocore client of botocore's defaults
(standard retries, a pool the size of the forwarder's) on a thread pool of the same size. Both
are timed interleaved, several times; the figures are medians. CPU is the process time of this
process (all its threads), so the endpoint's own work is not counted for either. A second
baseline, the same with botocore's parameter validation off (which a forwarder that has checked
every value may do), is the least any botocore forwarder can spend. The last row times each step
of the pipeline alone.

A full run also writes a pyinstrument profile of the handler on that batch
(``profile_cpu.txt``); ``python -m benchmarks.cpu --profile`` writes only that.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from benchmarks import RESULTS
from benchmarks.common import Row, load_handler, median, quiet_stdout, side_by_side, spread
from benchmarks.endpoint import InstantLogsEndpoint
from benchmarks.workloads import body_bytes, event_size, sqs_batch
from local.lambda_events import LambdaContext

TARGET = 1.5
MAX_BYTES = 1_048_576
MAX_EVENTS = 10_000
OVERHEAD = 26


class Baseline:
    """Decode the bodies and send them, nothing else: no validation, no planning, no verdicts."""

    def __init__(self, max_concurrent_requests: int, *, validate: bool = True) -> None:
        # Fixed here, not taken from the forwarder, so that the baseline stays the same whatever
        # the forwarder's client does: botocore's defaults (parameter validation on), standard
        # retries, and a connection pool the size of the thread pool.
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 5},
            max_pool_connections=max_concurrent_requests,
            parameter_validation=validate,
        )
        self.client = boto3.client("logs", config=config)
        self.pool = ThreadPoolExecutor(max_concurrent_requests)

    def __call__(self, event: dict[str, Any]) -> int:
        streams: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in event["Records"]:
            document = json.loads(record["body"])
            streams.setdefault((document["logGroupName"], document["logStreamName"]), []).append(
                {"timestamp": document["timestamp"], "message": document["message"]}
            )
        requests = []
        for (group, stream), events in streams.items():
            chunk: list[dict[str, Any]] = []
            size = 0
            for item in events:  # a contiguous cut, counting characters as bytes
                weight = len(item["message"]) + OVERHEAD
                if chunk and (size + weight > MAX_BYTES or len(chunk) == MAX_EVENTS):
                    requests.append((group, stream, chunk))
                    chunk, size = [], 0
                chunk.append(item)
                size += weight
            requests.append((group, stream, chunk))
        list(self.pool.map(self._put, requests))
        return len(requests)

    def _put(self, request: tuple[str, str, list[dict[str, Any]]]) -> None:
        group, stream, events = request
        self.client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def close(self) -> None:
        self.pool.shutdown()


def _cases(quick: bool) -> list[tuple[str, dict[str, Any]]]:
    cases = [("10,000 records, 6 MB event, 10 streams", {})]
    if not quick:
        cases.append(("10,000 records, 6 MB of bodies (over the limit)", {"bodies_only": True}))
    return cases


def run(quick: bool = False, out: Path = RESULTS) -> list[Row]:
    repetitions = 3 if quick else 15
    rows = []
    with InstantLogsEndpoint() as endpoint:
        module = load_handler(endpoint.url)
        bound = module.settings.max_concurrent_requests
        baseline = Baseline(bound)
        lean = Baseline(bound, validate=False)
        try:
            for name, options in _cases(quick):
                rows.extend(_measure(name, options, module, baseline, lean, endpoint, repetitions))
            rows.append(_breakdown(module, sqs_batch(), 1 if quick else 7))
        finally:
            baseline.close()
            lean.close()
    if not quick:
        profile(out)
    return rows


def _breakdown(module: Any, event: dict[str, Any], repetitions: int) -> Row:
    """CPU of each step of one invocation, timed one by one (medians), to show where it goes."""
    from forwarder.planning import plan_requests
    from forwarder.sending import Deadline
    from forwarder.sources import source_records
    from forwarder.verdicts import judge

    forwarder = module.forwarder
    decoder, sender = forwarder._decoder, forwarder._sender
    deadline = Deadline(lambda: 60_000, 0)
    steps: dict[str, list[float]] = {}
    for _ in range(repetitions):
        clock = [time.process_time()]

        def lap(step: str, clock: list[float] = clock) -> None:
            now = time.process_time()
            steps.setdefault(step, []).append(now - clock[0])
            clock[0] = now

        _, records = source_records(event)
        lap("envelope")
        decoded = [decoder.decode(record, i) for i, record in enumerate(records)]
        lap("decode")
        groups: dict[Any, list[Any]] = {}
        for item in decoded:
            for destination, events in item.parts():
                groups.setdefault(destination, []).extend(events)
        plan = plan_requests(groups, int(time.time() * 1000))
        lap("group+plan")
        outcomes = sender.send(plan.requests, deadline)
        lap("send")
        judge(records, decoded, plan, outcomes)
        lap("judge")
        with quiet_stdout():
            module.handler(event, LambdaContext())
        lap("whole handler")
    figures = {step: median(values) * 1000 for step, values in steps.items()}
    parts = "; ".join(f"{step} {ms:.0f}" for step, ms in figures.items())
    return Row("cpu", "where the handler's CPU goes (ms, each step alone)", parts, facts=figures)


def _measure(
    name: str,
    options: dict[str, Any],
    module: Any,
    baseline: Baseline,
    lean: Baseline,
    endpoint: InstantLogsEndpoint,
    repetitions: int,
) -> list[Row]:
    event = sqs_batch(**options)
    records = len(event["Records"])
    payload_mb = event_size(event) / 1e6
    bodies_mb = body_bytes(event) / 1e6

    def handler() -> None:
        with quiet_stdout():
            response = module.handler(event, LambdaContext())
        assert response == {"batchItemFailures": []}, response

    # Warm up both (connections, lazily loaded botocore models), and count their requests.
    endpoint.reset()
    handler()
    handler_requests = endpoint.put_calls()
    endpoint.reset()
    baseline(event)
    baseline_requests = endpoint.put_calls()

    lean(event)
    samples = side_by_side(
        {"handler": handler, "baseline": lambda: baseline(event), "lean": lambda: lean(event)},
        repetitions,
    )
    h, b, lean_cpu = samples["handler"], samples["baseline"], median(samples["lean"].cpu)
    cpu_ratio = median(h.cpu) / median(b.cpu)
    wall_ratio = median(h.wall) / median(b.wall)
    facts = {
        "records": records,
        "event_bytes": int(payload_mb * 1e6),
        "handler_requests": handler_requests,
        "baseline_requests": baseline_requests,
        "repetitions": repetitions,
        "handler_cpu_s": h.cpu,
        "baseline_cpu_s": b.cpu,
        "handler_wall_s": h.wall,
        "baseline_wall_s": b.wall,
        "cpu_ratio": cpu_ratio,
        "wall_ratio": wall_ratio,
    }
    wall = median(h.wall)
    return [
        Row(
            "cpu",
            f"{name}: CPU per batch",
            f"{median(h.cpu) * 1000:.0f} ms (spread {spread([x * 1000 for x in h.cpu])})",
            f"baseline {median(b.cpu) * 1000:.0f} ms (spread {spread([x * 1000 for x in b.cpu])})",
            cpu_ratio,
            f"<= {TARGET}x",
            cpu_ratio <= TARGET,
            facts,
        ),
        Row(
            "cpu",
            f"  {name}: baseline without botocore's parameter validation",
            f"{lean_cpu * 1000:.0f} ms",
            f"handler {median(h.cpu) * 1000:.0f} ms",
            median(h.cpu) / lean_cpu,
        ),
        Row(
            "cpu",
            f"{name}: wall per batch",
            f"{wall * 1000:.0f} ms",
            f"baseline {median(b.wall) * 1000:.0f} ms",
            wall_ratio,
        ),
        Row(
            "cpu",
            f"{name}: throughput",
            f"{records / wall:,.0f} events/s; {payload_mb / wall:.1f} MB/s of event "
            f"({bodies_mb / wall:.1f} MB/s of bodies)",
            f"{handler_requests} requests (baseline {baseline_requests}); "
            f"event {payload_mb:.2f} MB, bodies {bodies_mb:.2f} MB",
        ),
    ]


def profile(out: Path, repetitions: int = 5) -> Path:
    """A pyinstrument profile of the handler on the 6 MB batch (text and HTML)."""
    from pyinstrument import Profiler

    with InstantLogsEndpoint() as endpoint:
        module = load_handler(endpoint.url)
        event = sqs_batch()
        with quiet_stdout():
            module.handler(event, LambdaContext())  # warm
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for _ in range(repetitions):
                module.handler(event, LambdaContext())
            profiler.stop()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "profile_cpu.txt"
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true", help="write a pyinstrument profile")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.profile:
        print(profile(args.out))
        return
    from benchmarks.common import format_table

    print(format_table(run(args.quick, args.out)))


if __name__ == "__main__":
    main(sys.argv[1:])
