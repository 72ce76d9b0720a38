"""Packing: PutLogEvents requests planned versus the lower bound, beside the contiguous cut.

Pure (planning only, no I/O). For each workload the planner (``plan_requests``) and the
contiguous greedy cut that other forwarders use (``contiguous_cut`` on the same time-sorted
events) are counted against the lower bound: per destination (group, stream, entity) the largest
of ceil(bytes / 1,048,576), ceil(events / 10,000) and the fewest 24 h windows covering the
timestamps. Every planned request is checked against the limits, so a plan cannot win by
breaking a rule.

Where the planner sits above that bound, a tighter (still valid) bound is shown as well, the
largest of: that bound; the Martello-Toth L2 bound of bin packing over the destination's event
sizes (time ignored), which counts among others the events over half a request that can never
share one; and the time-separated bound (``separated_bound``), which adds up the bytes of
stretches of time more than 24 h apart. The plot (``packing.png``) shows requests / lower bound
per workload for both packings.
"""

from __future__ import annotations

import math
import random
import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path

from benchmarks import RESULTS
from benchmarks.common import Row, median, run_alone
from forwarder.limits import EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES, MAX_EVENT_BYTES, BatchLimits
from forwarder.model import Destination, Entity, LogEvent
from forwarder.planning import contiguous_cut, lower_bound, plan_requests

LIMITS = BatchLimits()
NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z; workloads end before it
HOUR = 3_600_000
DAY = 24 * HOUR
Groups = dict[Destination, list[LogEvent]]


def _event(rng: random.Random, timestamp: int, size: int, record: int) -> LogEvent:
    """An event of batch weight ``size`` (message bytes + 26), mostly ASCII with some wide
    characters, so that weights are UTF-8 sizes as in the real decoder."""
    body = size - EVENT_OVERHEAD_BYTES
    wide = body // 40 if rng.random() < 0.1 else 0  # 2-byte characters
    message = "é" * wide + "x" * (body - 2 * wide)
    return LogEvent(timestamp, message, size, record, 0)


def small_uniform(rng: random.Random, scale: float) -> Groups:
    """10 streams, events of 100 to 300 bytes within one hour, arriving slightly out of order."""
    groups: Groups = {}
    per_stream = int(25_000 * scale)
    for s in range(10):
        destination = Destination("/app/api", f"web-{s}")
        base = NOW_MS - 2 * HOUR
        events = [
            _event(
                rng, base + i * HOUR // per_stream + rng.randrange(2000), rng.randint(126, 326), i
            )
            for i in range(per_stream)
        ]
        groups[destination] = events
    return groups


def heavy_tailed(rng: random.Random, scale: float) -> Groups:
    """3 streams, Pareto sizes (alpha 1.1, from 300 bytes) capped at 1 MB per event, one hour:
    mostly small events, a few hundred kilobytes and the odd one near 1 MB."""
    groups: Groups = {}
    per_stream = int(8_000 * scale)
    for s in range(3):
        destination = Destination("/app/batch", f"worker-{s}")
        base = NOW_MS - 2 * HOUR
        events = []
        for i in range(per_stream):
            size = min(MAX_EVENT_BYTES, int(300 * rng.paretovariate(1.1)) + EVENT_OVERHEAD_BYTES)
            events.append(_event(rng, base + rng.randrange(HOUR), size, i))
        groups[destination] = events
    return groups


def spread_over_days(rng: random.Random, scale: float) -> Groups:
    """2 streams, timestamps over 13 days in bursts (a backfill), sizes log-normal around 2 KB,
    so that both the 24 h rule and the byte limit bind."""
    groups: Groups = {}
    per_stream = int(12_000 * scale)
    for s in range(2):
        destination = Destination("/app/backfill", f"host-{s}")
        start = NOW_MS - 13 * DAY
        bursts = [start + rng.randrange(13 * DAY) for _ in range(40)]
        events = []
        for i in range(per_stream):
            stamp = min(NOW_MS - HOUR, rng.choice(bursts) + int(rng.expovariate(1 / (3 * HOUR))))
            size = min(MAX_EVENT_BYTES, int(rng.lognormvariate(math.log(2000), 1.0)) + 26)
            events.append(_event(rng, stamp, size, i))
        groups[destination] = events
    return groups


def many_destinations(rng: random.Random, scale: float) -> Groups:
    """500 streams x 4 entities (none and three services): 2,000 destinations with 1 to 20 small
    events each, as a busy fleet's batch looks."""
    entities: list[Entity | None] = [None] + [
        Entity((("Environment", "prod"), ("Name", f"svc-{k}"), ("Type", "Service")))
        for k in range(3)
    ]
    groups: Groups = {}
    streams = max(10, int(500 * scale))
    record = 0
    for s in range(streams):
        for entity in entities:
            destination = Destination("/app/fleet", f"i-{s:05x}", entity)
            events = []
            for _ in range(rng.randint(1, 20)):
                stamp = NOW_MS - HOUR + rng.randrange(HOUR)
                events.append(_event(rng, stamp, rng.randint(60, 600), record))
                record += 1
            groups[destination] = events
    return groups


WORKLOADS: dict[str, Callable[[random.Random, float], Groups]] = {
    "small uniform": small_uniform,
    "heavy-tailed sizes to 1 MB": heavy_tailed,
    "timestamps over 13 days": spread_over_days,
    "many streams and entities": many_destinations,
}


def one_byte_events_in_two_bursts(events: int) -> Groups:
    """The planner's worst case as issue #9 found it: one destination of one-byte events (27
    batch bytes: two small gzip bodies can expand to 1.6 million of them) in two one-hour
    bursts more than 24 h apart, each half a request off a round count, so the contiguous cut
    misses the lower bound by one. The bursts can share no request, so no packing does
    better; first-fit-decreasing ran over every event anyway, in O(events x requests)."""
    first = events // 2 + 5_000
    start = NOW_MS - 3 * DAY
    second = start + DAY + 2 * HOUR
    stamps = [start + i * (HOUR // first) for i in range(first)]
    stamps += [second + i * (HOUR // (events - first)) for i in range(events - first)]
    destination = Destination("/app/expanded", "gzip-bodies")
    return {destination: [LogEvent(t, "x", 27, i, 0) for i, t in enumerate(stamps)]}


def one_byte_events_and_a_large_one_in_7000(events: int) -> Groups:
    """One-byte events with a 400 KB event every 7,000, in one hour: the cut misses the bound
    by one and first-fit-decreasing does run over every event."""
    destination = Destination("/app/expanded", "mixed")
    start = NOW_MS - 2 * HOUR
    return {
        destination: [
            LogEvent(start + i, "x", 400_000 if i % 7_000 == 0 else 27, i, 0) for i in range(events)
        ]
    }


WORST_CASES: dict[str, Callable[[int], Groups]] = {
    "one-byte events in two bursts 24 h apart": one_byte_events_in_two_bursts,
    "one-byte events, one of 400 KB in 7,000": one_byte_events_and_a_large_one_in_7000,
}


def worst_case_rows(events: int) -> list[Row]:
    """Plan time per million events on the worst cases, beside the contiguous cut (sort and
    cut, what other forwarders do) on the same events in the same run."""
    rows = []
    for name, build in WORST_CASES.items():
        groups = build(events)
        (arrived,) = groups.values()
        planner_s, cut_s = [], []
        plan = None
        for _ in range(3):
            copies = {d: list(v) for d, v in groups.items()}
            started = time.perf_counter()
            plan = plan_requests(copies, NOW_MS)
            planner_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            cut = contiguous_cut(sorted(arrived, key=lambda e: e.timestamp), LIMITS)
            cut_s.append(time.perf_counter() - started)
        assert plan is not None
        assert sum(len(r.events) for r in plan.requests) == events
        per_million = 1e6 / events
        planner, baseline = median(planner_s) * per_million, median(cut_s) * per_million
        facts = {
            "events": events,
            "planned": len(plan.requests),
            "contiguous": len(cut),
            "lower_bound": plan.lower_bound,
            "planner_s_per_million": planner,
            "cut_s_per_million": baseline,
        }
        rows.append(
            Row(
                "packing",
                f"worst case: {events:,} {name}",
                f"planner {planner:.2f} s per million events ({len(plan.requests)} requests)",
                f"contiguous cut {baseline:.2f} s per million ({len(cut)} requests, "
                f"bound {plan.lower_bound})",
                planner / baseline,
                facts=facts,
            )
        )
    return rows


def l2_bound(sizes: list[int], capacity: int = MAX_BATCH_BYTES, candidates: int = 512) -> int:
    """Martello and Toth's L2 lower bound for bin packing (sizes only). Tries at most
    ``candidates`` thresholds, which keeps it a valid (if possibly weaker) bound."""
    if not sizes:
        return 0
    ordered = sorted(sizes)
    prefix = [0, *accumulate(ordered)]
    total = prefix[-1]
    half = capacity / 2
    small = sorted({s for s in ordered if s <= half})
    if len(small) > candidates:
        step = len(small) / candidates
        small = [small[int(i * step)] for i in range(candidates)]
    best = -(-total // capacity)
    for k in [0, *small]:
        # J1: > capacity - k; J2: (half, capacity - k]; J3: [k, half]
        j1_start = bisect_right(ordered, capacity - k)
        j2_start = bisect_right(ordered, half)
        j3_start = bisect_left(ordered, k)
        n1 = len(ordered) - j1_start
        n2 = max(0, j1_start - j2_start)
        sum2 = prefix[j1_start] - prefix[j2_start] if n2 else 0
        sum3 = prefix[j2_start] - prefix[j3_start] if j2_start > j3_start else 0
        spare = n2 * capacity - sum2
        best = max(best, n1 + n2 + max(0, -(-(sum3 - spare) // capacity)))
    return best


def separated_bound(
    events: list[LogEvent], limits: BatchLimits = LIMITS, bucket_ms: int = 15 * 60 * 1000
) -> int:
    """A lower bound that weighs bytes and time together (events sorted by timestamp).

    Two sets of events more than 24 h apart can never share a request, so for any choice of
    time intervals that are pairwise more than 24 h apart, the sum over the intervals of
    max(ceil(bytes / max_bytes), ceil(events / max_events)) is a lower bound. A dynamic
    programme over 15-minute buckets picks the intervals that maximise it. (The bound of the
    issue counts windows or bytes; this one counts the bytes of each far-apart stretch.)
    """
    if not events:
        return 0
    first = events[0].timestamp
    buckets = (events[-1].timestamp - first) // bucket_ms + 1
    size = [0] * buckets
    count = [0] * buckets
    for event in events:
        index = (event.timestamp - first) // bucket_ms
        size[index] += event.size
        count[index] += 1
    size_prefix = [0, *accumulate(size)]
    count_prefix = [0, *accumulate(count)]
    # An interval of buckets [i, j] holds times in [first + i*b, first + (j+1)*b); the next one
    # may start at bucket k only if first + k*b - (first + (j+1)*b) > max_span_ms.
    gap = limits.max_span_ms // bucket_ms + 2
    best = [0] * (buckets + 1)  # best[j]: the largest sum using buckets before j
    for end in range(1, buckets + 1):
        value = best[end - 1]
        for start in range(end - 1, -1, -1):
            events_in = count_prefix[end] - count_prefix[start]
            if not events_in:
                continue
            need = max(
                -(-(size_prefix[end] - size_prefix[start]) // limits.max_bytes),
                -(-events_in // limits.max_events),
            )
            before = start - gap + 1
            value = max(value, need + (best[before] if before > 0 else 0))
        best[end] = value
    return best[buckets]


def measure(groups: Groups, timing_repetitions: int) -> dict[str, float]:
    """Requests of both packings, the bounds, and the planner's time (median)."""
    timings = []
    plan = None
    for _ in range(timing_repetitions):
        copies = {d: list(events) for d, events in groups.items()}
        started = time.perf_counter()
        plan = plan_requests(copies, NOW_MS)
        timings.append(time.perf_counter() - started)
    assert plan is not None
    assert not plan.prejudged, "workloads stay inside the accepted time range"
    for request in plan.requests:  # a plan may not win by breaking a rule
        assert 1 <= len(request.events) <= LIMITS.max_events
        assert sum(e.size for e in request.events) == request.size <= LIMITS.max_bytes
        stamps = [e.timestamp for e in request.events]
        assert stamps == sorted(stamps)
        assert stamps[-1] - stamps[0] <= LIMITS.max_span_ms
    contiguous = 0
    tight = 0
    for events in groups.values():
        ordered = sorted(events, key=lambda e: e.timestamp)
        contiguous += len(contiguous_cut(ordered, LIMITS))
        tight += max(
            lower_bound(ordered, LIMITS),
            l2_bound([e.size for e in ordered]),
            separated_bound(ordered),
        )
    events = sum(len(v) for v in groups.values())
    return {
        "destinations": len(groups),
        "events": events,
        "megabytes": sum(e.size for v in groups.values() for e in v) / 1e6,
        "lower_bound": plan.lower_bound,
        "planned": len(plan.requests),
        "contiguous": contiguous,
        "tight_bound": tight,
        "plan_ms": median(timings) * 1000,
        "events_per_s": events / median(timings),
    }


def run(quick: bool = False, out: Path = RESULTS) -> list[Row]:
    seeds = [1] if quick else [1, 2, 3, 4, 5]
    scale = 0.2 if quick else 1.0
    timing_repetitions = 1 if quick else 3
    rows = []
    figures: dict[str, tuple[float, float, float]] = {}
    for name, build in WORKLOADS.items():
        keys = ("planned", "contiguous", "lower_bound", "tight_bound", "events", "destinations")
        totals = dict.fromkeys(keys, 0)
        megabytes = 0.0
        worst = 0.0
        times = []
        for seed in seeds:
            result = measure(build(random.Random(seed), scale), timing_repetitions)
            for key in totals:
                totals[key] += int(result[key])
            megabytes += result["megabytes"]
            worst = max(worst, result["planned"] / result["lower_bound"])
            times.append(result["plan_ms"])
        bound, tight = totals["lower_bound"], totals["tight_bound"]
        planner_ratio = totals["planned"] / bound
        contiguous_ratio = totals["contiguous"] / bound
        figures[name] = (planner_ratio, contiguous_ratio, tight / bound)
        facts = totals | {
            "seeds": len(seeds),
            "planner_ratio": planner_ratio,
            "contiguous_ratio": contiguous_ratio,
            "tight_ratio": totals["planned"] / tight,
            "worst_seed_ratio": worst,
            "plan_ms": median(times),
        }
        n = len(seeds)
        shape = (
            f"{totals['events'] // n:,} events, {megabytes / n:.1f} MB, "
            f"{totals['destinations'] // n:,} destinations per batch"
        )
        rows.append(
            Row(
                "packing",
                f"{name}: planner",
                f"{totals['planned']:,} requests ({n} batch{'es' if n > 1 else ''} of {shape})",
                f"lower bound {bound:,}",
                planner_ratio,
                "1.00",
                planner_ratio <= 1.0,
                facts,
            )
        )
        rows.append(
            Row(
                "packing",
                f"{name}: contiguous cut",
                f"{totals['contiguous']:,} requests",
                f"lower bound {bound:,}",
                contiguous_ratio,
            )
        )
        if totals["planned"] > bound:
            rows.append(
                Row(
                    "packing",
                    f"{name}: planner vs the tight bound",
                    f"{totals['planned']:,} requests",
                    f"tight bound {tight:,} (L2 and time-separated)",
                    totals["planned"] / tight,
                )
            )
        per_batch = median(times)
        rows.append(
            Row(
                "packing",
                f"{name}: planning time",
                f"{per_batch:.1f} ms per batch ({totals['events'] / n / per_batch:,.0f}k events/s)",
            )
        )
    rows.extend(worst_case_rows(200_000 if quick else 1_600_000))
    plot(figures, out / "packing.png")
    return rows


def plot(figures: dict[str, tuple[float, float, float]], path: Path) -> None:
    """Requests / lower bound per workload, planner beside the contiguous cut, with the tight
    bound marked where it is above the lower bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(figures)
    planner = [figures[n][0] for n in names]
    contiguous = [figures[n][1] for n in names]
    figure, axes = plt.subplots(figsize=(7.5, 3.4), dpi=100)
    positions = range(len(names))
    width = 0.38
    bars_p = axes.bar([p - width / 2 for p in positions], planner, width, label="planner")
    bars_c = axes.bar([p + width / 2 for p in positions], contiguous, width, label="contiguous cut")
    axes.bar_label(bars_p, fmt="%.2f", fontsize=8)
    axes.bar_label(bars_c, fmt="%.2f", fontsize=8)
    tight = [(p, figures[n][2]) for p, n in zip(positions, names, strict=True) if figures[n][2] > 1]
    if tight:
        axes.hlines(
            [t for _, t in tight],
            [p - width for p, _ in tight],
            [p + width for p, _ in tight],
            colors="black",
            linewidth=1.5,
            label="tight bound (L2, time-separated)",
        )
    axes.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    axes.set_xticks(list(positions), [n.replace(" ", "\n", 1) for n in names], fontsize=8)
    axes.set_ylabel("requests / lower bound")
    axes.set_ylim(0.9, max(1.1, max(contiguous + planner) * 1.08))
    axes.set_title("PutLogEvents requests per batch, relative to the lower bound", fontsize=10)
    axes.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


if __name__ == "__main__":
    run_alone(run, __doc__, sys.argv[1:])
