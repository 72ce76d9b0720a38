"""The demo: the whole product on one machine, in one command, checked and reported.

It starts the local endpoints, creates the blueprint's queues and stream and the log groups,
sends ``demo_workload`` through SQS and Kinesis, runs both event source mappings with the
functions in their own awslambdaric processes until the sources are drained, reads back what
landed, prints the report and stops everything. Exit status 0 when every record is accounted for:
each event landed once and in order, every other record sits where it should, and the strict
layer refused no request.

To show redrive within seconds, the demo shortens the SQS queue's visibility timeout to 2 s,
its ``maxReceiveCount`` to 3 and the batching window to 1 s (the report shows the template's
values). Lambda would refuse a visibility timeout shorter than the function's timeout; the local
loop does not check that rule.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO

from infra.blueprint import Blueprint, FunctionSpec, QueueSpec
from local.cloud import LocalCloud
from local.deploy import Deployment, LocalBucket, LocalQueue
from local.emulator import Emulator
from local.readback import check_streams, read_groups
from local.report import (
    CHECKPOINT_METRICS,
    CreatedGroup,
    DemoReport,
    QueueSnapshot,
    SourceSummary,
    peek_queue,
    render,
)
from local.specs import ROOT, load_blueprint
from local.workload import Fate, Producer, Workload, demo_workload

VISIBILITY_TIMEOUT_S = 2
MAX_RECEIVE_COUNT = 3
SQS_BATCHING_WINDOW_S = 1.0
TIMEOUT_S = 45.0


#: How the demo's SQS function makes the group it creates, unless the configuration says.
DEMO_NEW_LOG_GROUPS = {
    "CREATE_LOG_GROUPS": "true",
    "NEW_LOG_GROUP_RETENTION_DAYS": "30",
    "NEW_LOG_GROUP_CLASS": "INFREQUENT_ACCESS",
    "NEW_LOG_GROUP_TAGS": json.dumps({"team": "audit", "created-by": "forwarder"}),
}


def demo_blueprint(blueprint: Blueprint) -> Blueprint:
    """``blueprint`` with the demo's short SQS timings (see the module's docstring), a
    dead-letter queue for the SQS source if it has none (an existing queue, whose redrive
    policy the template does not show), and, unless the configuration makes its own, the
    demo's way of making the log group the forwarder creates (``DEMO_NEW_LOG_GROUPS``)."""
    assert blueprint.sqs is not None
    source = blueprint.sqs
    environment = source.function.environment
    if not any(
        str(v).lower() == "true" for k, v in environment.items() if k == "CREATE_LOG_GROUPS"
    ):
        function = replace(source.function, environment=dict(environment) | DEMO_NEW_LOG_GROUPS)
        source = replace(source, function=function)
        blueprint = replace(blueprint, sqs=source)
    queue = blueprint.queues[source.queue]
    target = queue.redrive_target
    if target is None:
        target = f"{source.queue}DemoDeadLetterQueue"
        queues = dict(blueprint.queues) | {target: QueueSpec(target, fifo=queue.fifo)}
        blueprint = replace(blueprint, queues=queues)
    tuned = blueprint.with_queue(
        source.queue,
        visibility_timeout_s=VISIBILITY_TIMEOUT_S,
        max_receive_count=MAX_RECEIVE_COUNT,
        redrive_target=target,
    )
    fifo = blueprint.queues[source.queue].fifo  # Lambda has no batching window for FIFO queues
    window = source.mapping.batching_window_s if fifo else SQS_BATCHING_WINDOW_S
    mapping = replace(source.mapping, batching_window_s=window)
    return replace(tuned, sqs=replace(source, mapping=mapping))


def run_demo(
    root: Path = ROOT,
    *,
    in_process: bool = False,
    out: TextIO = sys.stdout,
    echo: TextIO | None = None,
    timeout_s: float = TIMEOUT_S,
    prefix: str = "demo",
    log_prefix: str = "/app",
    blueprint: Blueprint | None = None,
) -> int:
    """Run the demo, print its report to ``out`` (function logs to ``echo`` when given);
    0 when everything is accounted for, 1 otherwise. Queues and stream are named
    ``<prefix>-...``, log groups ``<log_prefix>/...``: moto keeps one state per process, so a
    second demo in the same process needs prefixes of its own."""
    started = time.monotonic()
    original = blueprint or load_blueprint(root)
    out.write("Starting moto and the strict CloudWatch Logs layer on 127.0.0.1...\n")
    out.flush()
    with LocalCloud() as cloud:
        deployment = Deployment.create(cloud.endpoints, demo_blueprint(original), prefix=prefix)
        workload = demo_workload(int(time.time() * 1000), prefix=log_prefix)
        _send(deployment, workload)
        out.write(
            f"Sent {len(workload.records)} records; running the event source mappings "
            f"({'in-process' if in_process else 'awslambdaric processes'})...\n\n"
        )
        out.flush()
        with Emulator(deployment, in_process=in_process, echo=echo) as emulator:
            drained = emulator.run_until_drained(timeout_s)
        # Collected once the functions are stopped: their output has been read to the end.
        report = _collect(cloud, deployment, emulator, workload, original, in_process)
    report = replace(report, drained=drained, elapsed_s=time.monotonic() - started)
    out.write(render(report) + "\n")
    out.flush()
    return 0 if report.ok else 1


def _send(deployment: Deployment, workload: Workload) -> None:
    blueprint = deployment.blueprint
    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    endpoints = deployment.endpoints
    logs = endpoints.client("logs")
    for group in workload.log_groups:  # the created_groups the forwarder makes itself
        logs.create_log_group(logGroupName=group)
    Producer(
        endpoints.client("sqs"),
        endpoints.client("kinesis"),
        deployment.queue(blueprint.sqs.queue).url,
        deployment.stream(blueprint.kinesis.stream.logical_id).name,
    ).send_all(workload.records)


def _collect(
    cloud: LocalCloud,
    deployment: Deployment,
    emulator: Emulator,
    workload: Workload,
    original: Blueprint,
    in_process: bool,
) -> DemoReport:
    blueprint = deployment.blueprint
    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    assert emulator.sqs is not None
    assert emulator.kinesis is not None
    sqs = deployment.endpoints.client("sqs")
    queue_spec = blueprint.queues[blueprint.sqs.queue]
    redrive = deployment.queue(queue_spec.redrive_target) if queue_spec.redrive_target else None
    on_failure_id = blueprint.kinesis.mapping.on_failure
    on_failure = deployment.destination(on_failure_id) if on_failure_id else None
    kinesis_letters = _dead_letter_queue(deployment, blueprint.kinesis.function)
    snapshots: dict[str, QueueSnapshot] = {}
    for title, queue in (
        ("SQS dead-letter queue after redrive", redrive),
        ("Kinesis function's dead-letter queue", kinesis_letters),
        ("Kinesis on-failure destination", on_failure),
    ):
        if isinstance(queue, LocalQueue) and queue.url not in snapshots:
            snapshots[queue.url] = peek_queue(sqs, queue.url, title, queue.name)
        elif isinstance(queue, LocalBucket):
            records = deployment.on_failure_records()
            snapshots[queue.arn] = QueueSnapshot(
                f"{title} (S3, aws/lambda/)",
                queue.name,
                len(records),
                tuple(records[:3]),
                "object(s)",
            )
    sqs_stats, kinesis_stats = emulator.sqs.stats, emulator.kinesis.stats
    dead_lettered = sum(
        1
        for u in emulator.functions["kinesis"].logs.undelivered()
        if u.disposition == "dead-lettered"
    )
    sources = (
        SourceSummary(
            "SQS",
            workload.count("sqs"),
            _kinds(workload, "sqs"),
            f"{sqs_stats.invocations} invocations, {sqs_stats.received} messages received "
            f"({sqs_stats.received - workload.count('sqs')} redeliveries), "
            f"{sqs_stats.partial_batches} partial batch responses",
            len(sqs_stats.deleted),
            snapshots[redrive.url].count if redrive else 0,
            "the SQS dead-letter queue",
            workload.count("sqs", Fate.SQS_DLQ),
        ),
        SourceSummary(
            "Kinesis",
            workload.count("kinesis"),
            _kinds(workload, "kinesis"),
            f"{kinesis_stats.invocations} invocations, {kinesis_stats.retries} retries, "
            f"{kinesis_stats.bisections} bisections, checkpoints "
            f"{_checkpoints(emulator.kinesis.checkpoints())}",
            kinesis_stats.succeeded,
            sum(kinesis_stats.discarded.values()),
            "the on-failure destination",
            workload.count("kinesis", Fate.ON_FAILURE),
            dead_lettered=dead_lettered,
            expected_dead_lettered=workload.count("kinesis", Fate.DEAD_LETTERED),
        ),
    )
    state = cloud.proxy.state
    logs = deployment.endpoints.client("logs")
    landed = read_groups(logs, workload.log_groups + workload.created_groups)
    created = tuple(_created(logs, state, group) for group in workload.created_groups)
    undelivered = [u for f in emulator.functions.values() for u in f.logs.undelivered()]
    metrics: Counter[str] = Counter()
    for function in emulator.functions.values():
        metrics.update(function.logs.metric_totals())
    return DemoReport(
        settings=tuple(_settings(deployment, original, emulator, in_process)),
        sources=sources,
        streams=tuple(check_streams(workload.expected, landed)),
        put_log_events=len(state.calls_of("PutLogEvents")),
        create_log_stream=len(state.calls_of("CreateLogStream")),
        refused=tuple(state.violations),
        undelivered=tuple(undelivered),
        checkpoint=Counter({name: metrics[name] for name in CHECKPOINT_METRICS}),
        queues=tuple(snapshots.values()),
        drained=False,
        elapsed_s=0.0,
        created_groups=tuple(group for group in created if group is not None),
    )


def _created(logs: Any, state: Any, name: str) -> CreatedGroup | None:
    """How ``name`` was made, if the forwarder created it."""
    found = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
    group = next((g for g in found if g["logGroupName"] == name), None)
    if group is None:
        return None
    asked = [c for c in state.calls_of("CreateLogGroup") if c.get("logGroupName") == name]
    return CreatedGroup(
        name,
        group.get("retentionInDays"),
        asked[0].get("logGroupClass", "STANDARD") if asked else "STANDARD",
        logs.list_tags_log_group(logGroupName=name).get("tags", {}),
        group.get("kmsKeyId"),
    )


def _settings(
    deployment: Deployment, original: Blueprint, emulator: Emulator, in_process: bool
) -> list[tuple[str, str]]:
    blueprint = deployment.blueprint
    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    assert original.sqs is not None
    endpoints = deployment.endpoints
    sqs, kinesis = blueprint.sqs, blueprint.kinesis
    queue = blueprint.queues[sqs.queue]
    template_queue = original.queues[original.sqs.queue]
    runtime = (
        "in-process handler calls (fast mode, not how Lambda runs it)"
        if in_process
        else f"each function in its own process: python -m awslambdaric "
        f"(awslambdaric {version('awslambdaric')}) against a local Runtime API"
    )
    k = kinesis.mapping
    rows = [
        ("endpoints", f"moto {endpoints.moto_url} (SQS, Kinesis, CloudWatch Logs)"),
        ("", f"strict CloudWatch Logs layer {endpoints.logs_url} (the functions write here)"),
        ("runtime", runtime),
        ("sqs", f"{sqs.function.handler}, timeout {sqs.function.timeout_s} s, from"),
        ("", blueprint.origin.get("sqs", "")),
        ("", f"code: {sqs.function.code.description}"),
        (
            "",
            f"batch {sqs.mapping.batch_size}, window {sqs.mapping.batching_window_s:g} s, "
            f"visibility {queue.visibility_timeout_s} s, maxReceiveCount {queue.max_receive_count} "
            f"(shortened from {original.sqs.mapping.batching_window_s:g} s, "
            f"{template_queue.visibility_timeout_s} s and {template_queue.max_receive_count}, "
            "so that redrive shows within seconds)",
        ),
    ]
    if sqs.function.environment != original.sqs.function.environment:
        rows.append(
            (
                "",
                "creates missing log groups with retention 30 days, class INFREQUENT_ACCESS and "
                "tags (the demo's; deploy the same with -c createLogGroups=true "
                "-c newLogGroupRetentionDays=30 -c newLogGroupClass=INFREQUENT_ACCESS "
                "-c newLogGroupTags='{...}')",
            )
        )
    rows += [
        ("kinesis", f"{kinesis.function.handler}, timeout {kinesis.function.timeout_s} s, from"),
        ("", blueprint.origin.get("kinesis", "")),
        ("", f"code: {kinesis.function.code.description}"),
        (
            "",
            f"{kinesis.stream.shard_count} shard(s), batch {k.batch_size}, window "
            f"{k.batching_window_s:g} s, {k.starting_position}, bisect "
            f"{'on' if k.bisect_on_error else 'off'}, {k.max_retry_attempts} retries, "
            f"max record age {k.max_record_age_s} s",
        ),
    ]
    rows += [("warning", warning) for warning in emulator.warnings]
    return rows


def _dead_letter_queue(deployment: Deployment, spec: FunctionSpec) -> LocalQueue | None:
    environment, _ = deployment.function_environment(spec)
    url = environment.get("DEAD_LETTER_QUEUE_URL")
    return next((q for q in deployment.queues.values() if q.url == url), None)


def _checkpoints(checkpoints: dict[str, str | None]) -> str:
    return ", ".join(f"{shard} at {sequence}" for shard, sequence in checkpoints.items())


def _kinds(workload: Workload, source: str) -> Counter[str]:
    return Counter(r.label for r in workload.records if r.source == source)
