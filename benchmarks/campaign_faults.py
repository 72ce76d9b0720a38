"""Fault campaign: the real forwarder through the local event-source loop while CloudWatch Logs
misbehaves, then an exact ledger of every record.

Records of every payload form (one event, the PutLogEvents shape, gzip subscription payloads)
go through SQS and Kinesis to the two functions, each in its own awslambdaric process, with the
event source mappings' retry, redrive, bisect and on-failure rules (``local/``). Their
destinations are log streams that do not exist yet (new ones keep appearing), so streams are
created along the way. A few records are poison: too old for the service, malformed, or from a
clock 3 h fast. The strict CloudWatch Logs layer draws a fault for each PutLogEvents and
CreateLogStream call from a seeded ``Chaos`` mix: throttling, 503s, connections dropped before
the call, answers lost after it, "stream does not exist", and latency spikes long enough to leave
the function too little time (the functions get a 4 s timeout and keep 1 s in reserve, the
production 60 s and 3 s scaled down, so that spikes of up to 3.5 s outlast the time left).

The delivery checkpoint's DynamoDB calls (BatchGetItem, Query, BatchWriteItem) go through the
same layer and meet the same mix of faults (but ``missing``).

At the end every record must be accounted for exactly once (``local.ledger``): landed whole,
or dead-lettered where its kind of failure belongs (the SQS dead-letter queue after redrive, the
function's dead-letter queue, the Kinesis on-failure destination); lost = 0, and the strict
layer refused no request. Duplicates (events that landed twice) are counted, not hidden, and
must be at most 0.5 % of the events and no more than the functions' own ledger names as
possibly twice: events of a request whose answer never came (a lost answer, a request in flight
at the deadline: ``EventsAmbiguous``), landed events whose checkpoint could not be written
(``EventsUnremembered``) and events sent when it could not be read (``EventsUnchecked``).
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import RESULTS
from benchmarks.common import Row, run_alone
from local.cloud import LocalCloud
from local.deploy import Deployment
from local.emulator import Emulator
from local.lambda_events import many_events, one_event, subscription_payload
from local.ledger import Account, DeadLetters, Ledger, Outcome, Tracked
from local.loop import BatchOutcome
from local.readback import read_groups
from local.specs import fast_blueprint
from local.strict_logs import Chaos
from local.workload import Outbound, Producer

SEED = 20261122
#: Per call of PutLogEvents / CreateLogStream: one call in eight meets a fault.
RATES = {
    "throttle": 0.03,
    "unavailable": 0.02,
    "drop": 0.02,
    "lose": 0.01,
    "missing": 0.02,
    "delay": 0.025,
}
DELAY_S = (0.5, 3.5)
#: The delivery checkpoint's calls, faulted as the CloudWatch Logs calls are.
CHECKPOINT_OPERATIONS = frozenset({"BatchGetItem", "BatchWriteItem", "Query"})
#: The most duplicate events the campaign accepts, as a share of the events sent.
MAX_DUPLICATE_SHARE = 0.005
#: What the functions' ledger names as possibly landed twice.
POSSIBLY_TWICE = ("EventsAmbiguous", "EventsUnremembered", "EventsUnchecked")
FUNCTION_TIMEOUT_S = 4
TIME_RESERVE_MS = 1000
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Size:
    sqs_records: int
    kinesis_records: int
    poison_every: int  # one record in this many is poison


FULL = Size(sqs_records=800, kinesis_records=400, poison_every=50)
QUICK = Size(sqs_records=150, kinesis_records=60, poison_every=30)


@dataclass(frozen=True, slots=True)
class CampaignResult:
    account: Account
    invocations: Counter[str]
    faults_met: Counter[str]
    put_log_events: int
    create_log_stream: int
    checkpoint_calls: Counter[str]
    faults_by_operation: Counter[str]
    violations: list[str]
    metrics: Counter[str]
    drained: bool
    elapsed_s: float


def workload(size: Size, now_ms: int, seed: int, prefix: str) -> tuple[list[str], list[Tracked]]:
    """The campaign's log groups and records, in sending order (seeded)."""
    rng = random.Random(seed)
    groups = [f"{prefix}/svc-{k}" for k in range(4)]
    records: list[Tracked] = []
    counter = iter(range(10**9))
    sources = ["sqs"] * size.sqs_records + ["kinesis"] * size.kinesis_records
    rng.shuffle(sources)

    def message(record: int) -> str:
        return f"r{record:06d}.{next(counter)} {rng.choice(VERBS)} {'x' * rng.randint(0, 300)}"

    for index, source in enumerate(sources):
        group = rng.choice(groups)
        stream = f"host-{rng.randrange(4 + index // 25)}"  # new streams keep appearing
        if rng.randrange(size.poison_every) == 0:
            records.append(_poison(source, rng, group, stream, now_ms, message(index)))
            continue
        form = rng.random()
        stamps = [now_ms - rng.randrange(3_600_000) for _ in range(rng.randint(2, 40))]
        if form < 0.5:
            text = message(index)
            payload: str | bytes = one_event(group, stream, text, stamps[0])
            messages = (text,)
        elif form < 0.8 or source == "sqs":
            events = [(t, message(index)) for t in stamps]
            payload, messages = many_events(group, stream, events), tuple(m for _, m in events)
        else:
            events = [(t, message(index)) for t in stamps]
            payload = subscription_payload(group, stream, events)
            messages = tuple(m for _, m in events)
        if source == "kinesis" and isinstance(payload, str):
            payload = payload.encode()
        records.append(Tracked(source, payload, messages))
    return groups, records


VERBS = ("GET /cart 200", "POST /pay 201", "worker done", "cache miss", "retrying", "ok")


def _poison(
    source: str, rng: random.Random, group: str, stream: str, now: int, text: str
) -> Tracked:
    kind = rng.choice(("too old", "malformed", "too new"))
    if kind == "too old":
        payload: str | bytes = one_event(group, stream, text, now - 15 * DAY_MS)
    elif kind == "malformed":  # the timestamp is text
        payload = json.dumps(
            {"logGroupName": group, "logStreamName": stream, "timestamp": "noon", "message": text}
        )
    else:
        payload = one_event(group, stream, text, now + 3 * 3600 * 1000)
    if source == "kinesis":
        payload = payload.encode()
    return Tracked(source, payload, (text,), poison=True)


def run_campaign(size: Size, seed: int = SEED, in_process: bool = False) -> CampaignResult:
    """Run one campaign on endpoints of its own; the ledger and what the layer saw."""
    started = time.monotonic()
    blueprint = fast_blueprint(
        visibility_s=FUNCTION_TIMEOUT_S + 1,
        max_receive_count=5,  # the CDK app's default (sqsMaxReceiveCount)
        sqs_batch=5,
        kinesis_batch=20,
        kinesis_retries=3,  # the CDK app's default (kinesisMaxRetryAttempts)
        timeout_s=FUNCTION_TIMEOUT_S,
    )
    with LocalCloud() as cloud:
        overrides = {
            source: {
                "TIME_RESERVE_MS": str(TIME_RESERVE_MS),
                # The checkpoint's table through the strict layer, to meet its faults.
                "AWS_ENDPOINT_URL_DYNAMODB": cloud.proxy.url,
            }
            for source in ("sqs", "kinesis")
        }
        prefix = f"c{uuid.uuid4().hex[:8]}"
        deployment = Deployment.create(cloud.endpoints, blueprint, prefix)
        logs = cloud.endpoints.client("logs")
        groups, records = workload(size, int(time.time() * 1000), seed, f"/app/{prefix}")
        ledger = send(cloud, deployment, groups, records)
        print(
            f"  ... sent {len(records)} records in {time.monotonic() - started:.0f} s",
            file=sys.stderr,
        )
        operations = Chaos(RATES).operations | CHECKPOINT_OPERATIONS
        cloud.proxy.unleash(Chaos(RATES, operations=operations, delay_s=DELAY_S, seed=seed))
        progress = Progress(len(records))
        with Emulator(
            deployment, in_process=in_process, overrides=overrides, on_batch=progress
        ) as emulator:
            drained = emulator.run_until_drained(timeout_s=900)
        cloud.proxy.unleash(None)
        state = cloud.proxy.state
        account = ledger.account(read_groups(logs, groups), dead_letters(cloud, deployment))
        assert emulator.sqs is not None
        assert emulator.kinesis is not None
        metrics: Counter[str] = Counter()
        for function in emulator.functions.values():
            metrics.update(function.logs.metric_totals())
        return CampaignResult(
            account=account,
            invocations=Counter(
                {
                    "sqs": emulator.sqs.stats.invocations,
                    "kinesis": emulator.kinesis.stats.invocations,
                    "timed out or failed": emulator.sqs.stats.failed_invocations
                    + emulator.kinesis.stats.failed_invocations,
                }
            ),
            faults_met=Counter(state.met),
            put_log_events=len(state.calls_of("PutLogEvents")),
            create_log_stream=len(state.calls_of("CreateLogStream")),
            checkpoint_calls=Counter(
                {name: len(state.calls_of(name)) for name in sorted(CHECKPOINT_OPERATIONS)}
            ),
            faults_by_operation=Counter(state.met_by_operation),
            violations=list(state.violations),
            metrics=metrics,
            drained=drained,
            elapsed_s=time.monotonic() - started,
        )


class Progress:
    """Says on stderr, now and then, how many invocations ran and what they carried."""

    def __init__(self, records: int, every_s: float = 15.0) -> None:
        self._records, self._every_s = records, every_s
        self._started = self._said = time.monotonic()
        self.invocations: Counter[str] = Counter()
        self.busy_ms = 0  # the invocations' total duration

    def __call__(self, outcome: BatchOutcome) -> None:
        self.invocations[outcome.mapping] += 1
        self.busy_ms += outcome.invocation.duration_ms
        now = time.monotonic()
        if now - self._said >= self._every_s:
            self._said = now
            counts = ", ".join(f"{n} {name}" for name, n in sorted(self.invocations.items()))
            print(
                f"  ... {now - self._started:.0f} s: invocations {counts} "
                f"({self._records} records sent)",
                file=sys.stderr,
                flush=True,
            )


def send(
    cloud: LocalCloud, deployment: Deployment, groups: list[str], records: list[Tracked]
) -> Ledger:
    """Create the log groups, send the records to the deployment's queue and stream (the batch
    APIs), and return the ledger of what was sent."""
    logs = cloud.endpoints.client("logs")
    for group in groups:
        logs.create_log_group(logGroupName=group)
    producer = Producer(
        cloud.endpoints.client("sqs"),
        cloud.endpoints.client("kinesis"),
        deployment.queue("SqsQueue").url,
        deployment.stream("KinesisStream").name,
    )
    outbound = [Outbound(r.source, r.payload, "benchmark") for r in records]
    ledger = Ledger()
    for record, (shard, identifier) in zip(records, producer.send_many(outbound), strict=True):
        ledger.sent(record, identifier, shard)
    return ledger


def dead_letters(cloud: LocalCloud, deployment: Deployment) -> DeadLetters:
    """What the SQS dead-letter queue, the Kinesis function's dead-letter queue and the on-failure
    destination hold."""
    sqs = cloud.endpoints.client("sqs")
    return DeadLetters(
        redriven=read_queue(sqs, deployment.queue("SqsDeadLetterQueue").url),
        function=read_queue(sqs, deployment.queue("KinesisDeadLetterQueue").url),
        on_failure=deployment.on_failure_records(),
    )


def read_queue(sqs: Any, url: str) -> list[str]:
    """Every message body of a queue, each once (they stay hidden while it is read)."""
    bodies: dict[str, str] = {}
    while True:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=900)
        messages = answer.get("Messages", [])
        if not messages:
            return list(bodies.values())
        bodies |= {m["MessageId"]: m["Body"] for m in messages}


def run(quick: bool = False, out: Path = RESULTS) -> list[Row]:
    result = run_campaign(QUICK if quick else FULL)
    account = result.account
    faults = ", ".join(f"{n} {kind}" for kind, n in sorted(result.faults_met.items()))
    invocations = result.invocations["sqs"] + result.invocations["kinesis"]
    possibly_twice = {name: result.metrics.get(name, 0) for name in POSSIBLY_TWICE}
    duplicate_share = account.duplicate_events / max(account.events_sent, 1)
    attributed = account.duplicate_events <= sum(possibly_twice.values())
    facts = {
        "sent": account.sent,
        "events_sent": account.events_sent,
        "outcomes": {o.value: n for o, n in account.outcomes.items()},
        "dead_lettered_by": dict(account.dead_lettered_by),
        "valid_dead_lettered": account.valid_dead_lettered,
        "poison_landed": account.poison_landed,
        "duplicate_events": account.duplicate_events,
        "duplicates_by_source": dict(account.duplicates_by_source),
        "unknown_events": account.unknown_events,
        "events_landed": account.events_landed,
        "lost": account.lost,
        "ok": account.ok,
        "invocations": dict(result.invocations),
        "faults_met": dict(result.faults_met),
        "put_log_events": result.put_log_events,
        "create_log_stream": result.create_log_stream,
        "checkpoint_calls": dict(result.checkpoint_calls),
        "faults_by_operation": dict(result.faults_by_operation),
        "possibly_twice": possibly_twice,
        "duplicate_share": round(duplicate_share, 5),
        "violations": result.violations,
        "drained": result.drained,
        "elapsed_s": round(result.elapsed_s, 1),
        "metrics": dict(result.metrics),
    }
    for line in account.lines():
        print(f"  faults: {line}")
    ok = account.ok and result.drained and not result.violations
    named = ", ".join(
        f"{n} {name.removeprefix('Events').lower()}" for name, n in possibly_twice.items()
    )
    dynamodb = ", ".join(f"{n} {name}" for name, n in result.checkpoint_calls.items())
    by_source = ", ".join(f"{n} {s}" for s, n in sorted(account.duplicates_by_source.items()))
    return [
        Row(
            "faults",
            f"{account.sent} records, {invocations} invocations, seeded faults: {faults}",
            f"lost {account.lost}; landed {account.outcomes[Outcome.LANDED]}, dead-lettered "
            f"{account.outcomes[Outcome.DEAD_LETTERED]} ({account.poison} poison, "
            f"{account.valid_dead_lettered} valid)",
            f"{result.put_log_events} PutLogEvents, {result.create_log_stream} CreateLogStream, "
            f"{dynamodb}; refused {len(result.violations)}; {result.elapsed_s:.0f} s",
            None,
            "lost 0, each record once",
            ok,
            facts,
        ),
        Row(
            "duplicates",
            "the same campaign: events that landed more than once",
            f"{account.duplicate_events} of {account.events_sent} ({by_source}); the functions' "
            f"ledger names {named}",
            f"{MAX_DUPLICATE_SHARE:.1%} of the events: "
            f"{round(MAX_DUPLICATE_SHARE * account.events_sent)}",
            duplicate_share / MAX_DUPLICATE_SHARE,
            "<= 0.5 %, each named",
            duplicate_share <= MAX_DUPLICATE_SHARE and attributed,
            {
                "duplicate_events": account.duplicate_events,
                "events_sent": account.events_sent,
                "share": round(duplicate_share, 5),
                "possibly_twice": possibly_twice,
                "named": attributed,
            },
        ),
    ]


if __name__ == "__main__":
    run_alone(run, __doc__)
