"""Load: a million events through the local event-source loop, every one of them accounted for.

Half the events travel over SQS (messages in the PutLogEvents shape), half over Kinesis (gzip
subscription payloads), 500 events a record, to 10 log streams in 2 groups that the functions
create. Both functions run in their own awslambdaric processes with the CDK app's default
mapping settings (batches of 100 records, windows of 5 s for SQS and 1 s for Kinesis), against
moto behind the strict layer. Records of 500 events, not 1: moto scans the whole queue on every
ReceiveMessage, so a queue of a million messages would measure moto.

The figures: events per second from the first invocation to the drained sources (sending and
reading back are timed apart), PutLogEvents calls against the planner's lower bound, and the
ledger: every event landed exactly once, nothing lost; and the delivery checkpoint's DynamoDB
calls (sent through the strict layer to be counted): no write when nothing fails, the reads per
million events. On this machine moto (one Python process
with the strict layer and the pollers) is the bottleneck, not the forwarder: the invocations'
total duration is reported beside the wall time.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks import RESULTS
from benchmarks.campaign_faults import CHECKPOINT_OPERATIONS, Progress, dead_letters, send
from benchmarks.common import Row, run_alone
from local.cloud import LocalCloud
from local.deploy import Deployment
from local.emulator import Emulator
from local.lambda_events import many_events, subscription_payload
from local.ledger import Outcome, Tracked
from local.readback import read_groups
from local.specs import default_blueprint


@dataclass(frozen=True, slots=True)
class Size:
    sqs_messages: int
    kinesis_records: int


FULL = Size(sqs_messages=1_000, kinesis_records=1_000)  # 1,000,000 events
QUICK = Size(sqs_messages=40, kinesis_records=40)  # 40,000 events
EVENTS_PER_RECORD = 500


def workload(size: Size, now_ms: int, prefix: str) -> tuple[list[str], list[Tracked]]:
    rng = random.Random(7)
    groups = [f"{prefix}/api", f"{prefix}/worker"]
    records: list[Tracked] = []
    sources = ["sqs"] * size.sqs_messages + ["kinesis"] * size.kinesis_records
    for index, source in enumerate(sources):
        group, stream = rng.choice(groups), f"node-{rng.randrange(5)}"
        events = [
            (
                now_ms - rng.randrange(1_800_000),
                f"r{index:07d}.{j:03d} GET /item/{rng.randrange(10**6)} 200",
            )
            for j in range(EVENTS_PER_RECORD)
        ]
        messages = tuple(m for _, m in events)
        if source == "sqs":
            records.append(Tracked("sqs", many_events(group, stream, events), messages))
        else:
            records.append(
                Tracked("kinesis", subscription_payload(group, stream, events), messages)
            )
    return groups, records


def run(quick: bool = False, out: Path = RESULTS) -> list[Row]:
    size = QUICK if quick else FULL
    blueprint = default_blueprint()
    with LocalCloud() as cloud:
        prefix = f"l{uuid.uuid4().hex[:8]}"
        deployment = Deployment.create(cloud.endpoints, blueprint, prefix)
        groups, records = workload(size, int(time.time() * 1000), f"/app/{prefix}")
        begun = time.perf_counter()
        ledger = send(cloud, deployment, groups, records)
        sending_s = time.perf_counter() - begun
        progress = Progress(len(records))
        # The checkpoint's table through the strict layer, to count its calls.
        overrides = {
            source: {"AWS_ENDPOINT_URL_DYNAMODB": cloud.proxy.url} for source in ("sqs", "kinesis")
        }
        with Emulator(deployment, on_batch=progress, overrides=overrides) as emulator:
            begun = time.perf_counter()
            drained = emulator.run_until_drained(timeout_s=1200)
            forwarding_s = time.perf_counter() - begun
        busy_s = progress.busy_ms / 1000
        assert emulator.sqs is not None
        assert emulator.kinesis is not None
        invocations = emulator.sqs.stats.invocations + emulator.kinesis.stats.invocations
        summaries = [
            d
            for f in emulator.functions.values()
            for d in f.logs.documents()
            if d.get("message") == "batch forwarded"
        ]
        bound = sum(int(d.get("requests_lower_bound", 0)) for d in summaries)
        requests = sum(int(d.get("requests_sent", 0)) for d in summaries)
        begun = time.perf_counter()
        landed = read_groups(cloud.endpoints.client("logs"), groups)
        reading_s = time.perf_counter() - begun
        account = ledger.account(landed, dead_letters(cloud, deployment))
        state = cloud.proxy.state
        put_calls = len(state.calls_of("PutLogEvents"))
        dynamodb = {name: len(state.calls_of(name)) for name in sorted(CHECKPOINT_OPERATIONS)}
        violations = list(state.violations)
    events = account.events_sent
    reads = dynamodb["BatchGetItem"] + dynamodb["Query"]
    for line in account.lines():
        print(f"  load: {line}")
    facts = {
        "records": account.sent,
        "events": events,
        "events_landed": account.events_landed,
        "duplicate_events": account.duplicate_events,
        "lost": account.lost,
        "ok": account.ok,
        "landed_records": account.outcomes[Outcome.LANDED],
        "invocations": invocations,
        "put_log_events": put_calls,
        "checkpoint_calls": dynamodb,
        "checkpoint_reads_per_million_events": round(reads * 1e6 / max(events, 1), 1),
        "requests_sent": requests,
        "lower_bound": bound,
        "violations": violations,
        "drained": drained,
        "sending_s": round(sending_s, 1),
        "forwarding_s": round(forwarding_s, 1),
        "reading_s": round(reading_s, 1),
        "invocations_s": round(busy_s, 1),
    }
    ok = (
        account.ok
        and drained
        and not violations
        and account.duplicate_events == 0
        and dynamodb["BatchWriteItem"] == 0
    )
    return [
        Row(
            "load",
            f"{events:,} events in {account.sent:,} records (SQS and Kinesis), {invocations} "
            "invocations",
            f"{events / forwarding_s:,.0f} events/s ({forwarding_s:.0f} s; invocations' "
            f"duration {busy_s:.0f} s); landed {account.events_landed:,}, duplicates "
            f"{account.duplicate_events}, lost {account.lost}",
            f"{requests} requests, lower bound {bound} ({put_calls - requests} more calls: "
            f"streams not there yet); DynamoDB: {reads} reads "
            f"({reads * 1e6 / max(events, 1):,.0f} per million events), "
            f"{dynamodb['BatchWriteItem']} writes; send {sending_s:.0f} s, read back "
            f"{reading_s:.0f} s",
            requests / bound if bound else None,
            "every event once, no checkpoint write",
            ok,
            facts,
        )
    ]


if __name__ == "__main__":
    run_alone(run, __doc__)
