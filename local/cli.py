"""``python -m local``: the demo, the local endpoints, your own records, one-off invocations.

  demo    the whole product end to end on local endpoints, checked, with a short report
  serve   start the endpoints, queues, stream and both event source mappings; run until Ctrl-C
  send    send records to the running ``serve`` (its SQS queue, or its Kinesis stream)
  read    print what landed in a log group of the running ``serve``
  invoke  run the function once, in its own awslambdaric process, with an event file, and print
          its response (``sam local invoke`` without Docker)
  event   print a Lambda SQS or Kinesis event carrying the given payloads, for ``invoke``
  replay  invoke the Kinesis function again with the batches its mapping gave up (the S3
          on-failure records of the running ``serve``)

Run from the repository's root with the project's virtual environment (``make demo`` does).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from forwarder.aggregates import user_records
from infra.blueprint import Blueprint
from infra.config import ConfigError
from local.aggregation import aggregate
from local.cloud import LocalCloud
from local.demo import demo_blueprint, run_demo
from local.deploy import Deployment
from local.emulator import Emulator, make_function
from local.lambda_events import kinesis_event, one_event, sqs_event
from local.loop import BatchOutcome, EventSourceLoop
from local.readback import read_groups
from local.replay import NotReplayable, replay
from local.specs import ROOT, load_blueprint
from local.state import ServeState, clear
from local.template import TemplateError
from local.workload import Outbound, Producer

DEFAULT_LOG_GROUP = "/app/local"


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; the process's exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    command = {
        "demo": _demo,
        "serve": _serve,
        "send": _send,
        "read": _read,
        "invoke": _invoke,
        "event": _event,
        "replay": _replay,
    }[args.command]
    return command(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description="Run the forwarder locally: moto in server mode, the strict CloudWatch Logs "
        "layer and Lambda's event source mappings emulated on 127.0.0.1.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    # What the loop runs: the CDK app's configuration (cdk.json, -c overrides) or cdk.out.
    stack_options = argparse.ArgumentParser(add_help=False)
    stack_options.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a CDK context value over cdk.json's, as `cdk synth -c` takes it (repeatable)",
    )
    stack_options.add_argument(
        "--template",
        action="store_true",
        help="run what `cdk synth` wrote to cdk.out (and its bundled asset) instead",
    )
    stack_options.add_argument("--stack", help="the stack in cdk.out to run (implies --template)")

    demo = commands.add_parser(
        "demo", help="the end-to-end demo with a report", parents=[stack_options]
    )
    demo.add_argument("--in-process", action="store_true", help="call the handler in-process")
    demo.add_argument("--logs", action="store_true", help="also print the functions' output")
    demo.add_argument("--timeout", type=float, default=45.0, help="seconds to drain (45)")

    serve = commands.add_parser(
        "serve", help="run the endpoints and the loop until Ctrl-C", parents=[stack_options]
    )
    serve.add_argument("--in-process", action="store_true", help="call the handler in-process")
    serve.add_argument("--logs", action="store_true", help="print the functions' output")
    serve.add_argument(
        "--create-log-group",
        action="append",
        metavar="GROUP",
        help=f"log group to create (repeatable; default {DEFAULT_LOG_GROUP})",
    )
    serve.add_argument(
        "--template-timings",
        action="store_true",
        help="keep the template's visibility timeout, maxReceiveCount and batching window "
        "(by default the demo's short ones are used, so that retries show within seconds)",
    )

    send = commands.add_parser("send", help="send records to the running serve")
    send.add_argument("text", nargs="*", help="one record per argument (or one event's message)")
    send.add_argument("--to", choices=("sqs", "kinesis"), default="sqs")
    send.add_argument("--file", action="append", default=[], help="a payload file ('-': stdin)")
    send.add_argument("--group", help="wrap each text as one event for this log group")
    send.add_argument("--stream", default="cli", help="log stream for --group (cli)")
    send.add_argument("--partition-key", default="cli", help="Kinesis partition key")
    send.add_argument("--message-group-id", help="MessageGroupId (FIFO queues)")
    send.add_argument(
        "--aggregate",
        action="store_true",
        help="with --to kinesis: pack the records into KPL aggregated records, as the KPL does",
    )

    read = commands.add_parser("read", help="print what landed in a log group")
    read.add_argument("group", nargs="?", default=DEFAULT_LOG_GROUP)
    read.add_argument("stream", nargs="?", help="only this stream")
    read.add_argument("--full", action="store_true", help="do not shorten long messages")

    invoke = commands.add_parser(
        "invoke", help="run the function once with an event file", parents=[stack_options]
    )
    invoke.add_argument("event", help="a Lambda event JSON file ('-': stdin)")
    invoke.add_argument("--function", choices=("sqs", "kinesis"), help="default: from the event")
    invoke.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    invoke.add_argument("--in-process", action="store_true", help="call the handler in-process")
    invoke.add_argument(
        "--create-log-group", action="append", default=[], metavar="GROUP", help="(repeatable)"
    )

    replay = commands.add_parser(
        "replay",
        help="invoke the Kinesis function again with what its mapping gave up (S3 on-failure "
        "records) in the running serve",
        parents=[stack_options],
    )
    replay.add_argument(
        "--delete", action="store_true", help="remove each on-failure record that replays whole"
    )
    replay.add_argument("--in-process", action="store_true", help="call the handler in-process")

    event = commands.add_parser("event", help="print a Lambda event for payloads")
    event.add_argument("source", choices=("sqs", "kinesis"))
    event.add_argument("text", nargs="*", help="one record per argument")
    event.add_argument("--file", action="append", default=[], help="a payload file ('-': stdin)")
    return parser


def _demo(args: argparse.Namespace) -> int:
    echo = sys.stderr if args.logs else None
    return run_demo(
        ROOT,
        in_process=args.in_process,
        echo=echo,
        timeout_s=args.timeout,
        blueprint=_blueprint(args),
    )


def _blueprint(args: argparse.Namespace) -> Blueprint:
    """The blueprint the command's stack options name."""
    overrides = {}
    for item in args.context:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise SystemExit(f"-c {item!r}: give KEY=VALUE")
        overrides[key] = value
    try:
        return load_blueprint(ROOT, overrides=overrides, template=args.template, stack=args.stack)
    except (ConfigError, TemplateError) as problem:
        raise SystemExit(str(problem)) from None


def _serve(args: argparse.Namespace) -> int:
    blueprint = _blueprint(args)
    if not args.template_timings:
        blueprint = demo_blueprint(blueprint)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    printer = _BatchPrinter(sys.stdout)
    with LocalCloud() as cloud:
        deployment = Deployment.create(cloud.endpoints, blueprint, prefix="local")
        logs = cloud.endpoints.client("logs")
        groups = args.create_log_group or [DEFAULT_LOG_GROUP]
        for group in groups:
            logs.create_log_group(logGroupName=group)
        echo = sys.stderr if args.logs else None
        with Emulator(
            deployment, in_process=args.in_process, echo=echo, on_batch=printer
        ) as emulator:
            printer.emulator = emulator
            ServeState.of(deployment).save()
            _print_serve_banner(deployment, groups, sys.stdout)
            try:
                EventSourceLoop(emulator.pollers).run_until_stopped(stop)
            finally:
                clear()
                print("stopping", flush=True)
    return 0


def _print_serve_banner(deployment: Deployment, groups: list[str], out: TextIO) -> None:
    endpoints = deployment.endpoints
    blueprint = deployment.blueprint
    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    queue = deployment.queue(blueprint.sqs.queue)
    stream = deployment.stream(blueprint.kinesis.stream.logical_id)
    lines = [
        "Local endpoints are up (Ctrl-C stops them).",
        f"  SQS queue       {queue.url}",
        f"  Kinesis stream  {stream.name}",
        f"  log groups      {', '.join(groups)} (the functions may write to /app/*)",
        "",
        "Try:",
        f'  python -m local send --group {groups[0]} "hello from the queue"',
        f'  python -m local send --to kinesis --group {groups[0]} "hello from the stream"',
        f"  python -m local read {groups[0]}",
        "",
        "Or use any AWS client:",
        f"  export AWS_ENDPOINT_URL={endpoints.moto_url}",
        f"  export AWS_ENDPOINT_URL_CLOUDWATCH_LOGS={endpoints.logs_url}  # the strict layer",
        "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        f"AWS_DEFAULT_REGION={endpoints.region}",
        "",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


class _BatchPrinter:
    """Prints one line per invocation, and each record that was not delivered, with why."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.emulator: Emulator | None = None

    def __call__(self, outcome: BatchOutcome) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        self._out.write(
            f"{stamp} {outcome.mapping}: {outcome.size} record(s), {outcome.verdict.reason}\n"
        )
        if self.emulator is not None:
            function = self.emulator.functions[outcome.mapping]
            for item in function.logs.undelivered(outcome.invocation.request_id):
                self._out.write(f"    {item.record_id}: {item.disposition}: {item.reason}\n")
        self._out.flush()


def _send(args: argparse.Namespace) -> int:
    state = ServeState.load()
    if state is None:
        print("no `python -m local serve` is running: start one first", file=sys.stderr)
        return 2
    payloads = _payloads(args.text, args.file, args.to)
    if args.group:
        now = int(time.time() * 1000)
        payloads = [
            one_event(args.group, args.stream, p if isinstance(p, str) else p.decode(), now)
            for p in payloads
        ]
    if not payloads:
        print("nothing to send: give text arguments or --file", file=sys.stderr)
        return 2
    endpoints = state.endpoints
    producer = Producer(
        endpoints.client("sqs"),
        endpoints.client("kinesis"),
        state.queues[state.queue].url,
        state.streams[state.stream].name,
    )
    if args.aggregate:
        if args.to != "kinesis":
            print("--aggregate packs Kinesis records: use it with --to kinesis", file=sys.stderr)
            return 2
        users = [(args.partition_key, p if isinstance(p, bytes) else p.encode()) for p in payloads]
        for key, packed in aggregate(users):
            count = len(user_records(packed))
            identifier = producer.send(Outbound("kinesis", packed, "cli", partition_key=key))
            print(f"sent to kinesis: {identifier} (a KPL aggregate of {count} user records)")
        return 0
    for payload in payloads:
        record = Outbound(args.to, payload, "cli", partition_key=args.partition_key)
        identifier = producer.send(record, message_group=args.message_group_id)
        print(f"sent to {args.to}: {identifier}")
    return 0


def _read(args: argparse.Namespace) -> int:
    state = ServeState.load()
    if state is None:
        print("no `python -m local serve` is running: start one first", file=sys.stderr)
        return 2
    logs = state.endpoints.client("logs")
    for (_, stream), events in sorted(read_groups(logs, [args.group]).items()):
        if args.stream and stream != args.stream:
            continue
        print(f"{args.group} {stream}: {len(events)} event(s)")
        for timestamp, message in events:
            shown = message if args.full or len(message) <= 160 else message[:157] + "..."
            when = datetime.fromtimestamp(timestamp / 1000, UTC).isoformat(timespec="milliseconds")
            print(f"  {when}  {shown}")
    return 0


def _invoke(args: argparse.Namespace) -> int:
    event = json.loads(_read_file(args.event).decode())
    source = args.function or _source_of(event)
    blueprint = _blueprint(args)
    selected = blueprint.kinesis if source == "kinesis" else blueprint.sqs
    assert selected is not None
    overrides = dict(item.split("=", 1) for item in args.env)
    state = ServeState.load()
    with contextlib.ExitStack() as stack:
        if state is not None:
            deployment = state.deployment(blueprint)
            print(f"using the endpoints of the running serve ({state.endpoints.moto_url})",
                  file=sys.stderr)  # fmt: skip
        else:
            cloud = stack.enter_context(LocalCloud())
            # moto keeps one state per process: a prefix of its own for each call
            prefix = f"invoke-{uuid.uuid4().hex[:8]}"
            deployment = Deployment.create(cloud.endpoints, blueprint, prefix=prefix)
            print("no serve running: fresh local endpoints for this call", file=sys.stderr)
        logs = deployment.endpoints.client("logs")
        for group in args.create_log_group:
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=group)
        function, warnings = make_function(
            deployment,
            selected.function,
            in_process=args.in_process,
            overrides=overrides,
            echo=sys.stderr,
            label=source,
        )
        stack.callback(function.close)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        invocation = function.invoke(event)
    if invocation.error is not None:
        error = {"errorType": invocation.error.error_type, "errorMessage": invocation.error.message}
        print(json.dumps(error, indent=2))
        return 1
    print(json.dumps(invocation.response, indent=2))
    return 0


def _replay(args: argparse.Namespace) -> int:
    state = ServeState.load()
    if state is None:
        print("no `python -m local serve` is running: start one first", file=sys.stderr)
        return 2
    blueprint = _blueprint(args)
    if blueprint.kinesis is None:
        print("the blueprint has no Kinesis source", file=sys.stderr)
        return 2
    deployment = state.deployment(blueprint)
    function, warnings = make_function(
        deployment,
        blueprint.kinesis.function,
        in_process=args.in_process,
        echo=sys.stderr,
        label="kinesis",
    )
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        results = replay(deployment, function, delete=args.delete)
    except NotReplayable as error:
        print(str(error), file=sys.stderr)
        return 2
    finally:
        function.close()
    if not results:
        print("nothing to replay: no on-failure records")
    for result in results:
        if result.error is not None:
            outcome = f"the function failed ({result.error})"
        elif result.failed:
            outcome = f"{len(result.failed)} failed again: {', '.join(result.failed)}"
        else:
            outcome = "all handled" + (", record deleted" if args.delete else "")
        print(f"{result.key}: {result.records} record(s), {outcome}")
    return 0 if all(result.ok for result in results) else 1


def _event(args: argparse.Namespace) -> int:
    payloads = _payloads(args.text, args.file, args.source)
    if args.source == "sqs":
        document = sqs_event([p if isinstance(p, str) else p.decode() for p in payloads])
    else:
        document = kinesis_event([p.encode() if isinstance(p, str) else p for p in payloads])
    print(json.dumps(document, indent=2))
    return 0


def _payloads(texts: list[str], files: list[str], source: str) -> list[str | bytes]:
    """Text arguments as they are; files as text, except gzip (and, for Kinesis, any binary)."""
    payloads: list[str | bytes] = list(texts)
    for name in files:
        data = _read_file(name)
        if data[:2] == b"\x1f\x8b" or source == "kinesis":
            payloads.append(data)
        else:
            payloads.append(data.decode("utf-8", "replace"))
    return payloads


def _read_file(name: str) -> bytes:
    return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()


def _source_of(event: Any) -> str:
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return "kinesis" if records[0].get("eventSource") == "aws:kinesis" else "sqs"
    return "sqs"
