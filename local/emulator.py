"""A deployment's functions and event source mappings, wired and ready to run.

Each source (SQS, Kinesis) gets its own function, as in the CDK app: its own process started
by awslambdaric (the default, as Lambda runs it) or, with ``in_process=True``, a handler called
in this interpreter (fast, for tests). Close it (or use it as a context manager) to stop the
function processes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import TracebackType
from typing import TextIO

from infra.blueprint import FunctionSpec
from local.deploy import Deployment
from local.function_logs import FunctionLogs
from local.in_process import Handler, InProcessFunction
from local.invocation import Function
from local.kinesis_mapping import KinesisEventSourceMapping
from local.loop import BatchListener, EventSourceLoop, Poller
from local.ric_process import RicFunction
from local.sqs_mapping import SqsEventSourceMapping


def make_function(
    deployment: Deployment,
    spec: FunctionSpec,
    *,
    in_process: bool = False,
    overrides: Mapping[str, str] | None = None,
    handler: Handler | None = None,
    echo: TextIO | None = None,
    label: str = "",
) -> tuple[Function, list[str]]:
    """One function of the deployment, and the warnings about its environment. A ``handler``
    (a scripted stand-in) implies ``in_process``."""
    environment, warnings = deployment.function_environment(spec, overrides)
    name = deployment.function_name(spec)
    arn = deployment.function_arn(spec)
    logs = FunctionLogs(name, echo, f"[{label or name}] ")
    if in_process or handler is not None:
        return InProcessFunction(name, arn, spec, environment, handler=handler, logs=logs), warnings
    return RicFunction(name, arn, spec, environment, logs=logs), warnings


class Emulator:
    """The SQS and Kinesis sources of a deployment, each with its function and mapping.

    ``overrides`` and ``handlers`` are keyed by source (``"sqs"``, ``"kinesis"``): extra
    environment variables, or a scripted handler in place of the real one. ``sources`` limits
    which sources run. ``on_batch`` hears about every invocation.
    """

    def __init__(
        self,
        deployment: Deployment,
        *,
        in_process: bool = False,
        overrides: Mapping[str, Mapping[str, str]] | None = None,
        handlers: Mapping[str, Handler] | None = None,
        echo: TextIO | None = None,
        on_batch: BatchListener | None = None,
        sqs_poll_wait_s: int = 1,
        sources: Collection[str] = ("sqs", "kinesis"),
    ) -> None:
        blueprint = deployment.blueprint
        endpoints = deployment.endpoints
        overrides = overrides or {}
        handlers = handlers or {}
        self.deployment = deployment
        self.functions: dict[str, Function] = {}
        self.warnings: list[str] = []
        self.sqs: SqsEventSourceMapping | None = None
        self.kinesis: KinesisEventSourceMapping | None = None
        sqs_client = endpoints.client("sqs")
        if blueprint.sqs is not None and "sqs" in sources:
            source = blueprint.sqs
            function = self._function("sqs", source.function, in_process, overrides, handlers, echo)
            self.sqs = SqsEventSourceMapping(
                sqs_client,
                deployment.queue(source.queue),
                function,
                source.mapping,
                endpoints.region,
                poll_wait_s=sqs_poll_wait_s,
                on_batch=on_batch,
            )
        if blueprint.kinesis is not None and "kinesis" in sources:
            source = blueprint.kinesis
            function = self._function(
                "kinesis", source.function, in_process, overrides, handlers, echo
            )
            on_failure = source.mapping.on_failure
            self.kinesis = KinesisEventSourceMapping(
                endpoints.client("kinesis"),
                sqs_client,
                deployment.stream(source.stream.logical_id),
                function,
                source.mapping,
                endpoints.region,
                on_failure=deployment.destination(on_failure) if on_failure else None,
                s3=endpoints.client("s3"),
                on_batch=on_batch,
            )

    @property
    def pollers(self) -> list[Poller]:
        return [p for p in (self.sqs, self.kinesis) if p is not None]

    def run_until_drained(self, timeout_s: float) -> bool:
        """Run every mapping until its source is drained; ``False`` on timeout."""
        return EventSourceLoop(self.pollers).run_until_drained(timeout_s)

    def close(self) -> None:
        for function in self.functions.values():
            function.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _function(
        self,
        source: str,
        spec: FunctionSpec,
        in_process: bool,
        overrides: Mapping[str, Mapping[str, str]],
        handlers: Mapping[str, Handler],
        echo: TextIO | None,
    ) -> Function:
        function, warnings = make_function(
            self.deployment,
            spec,
            in_process=in_process,
            overrides=overrides.get(source),
            handler=handlers.get(source),
            echo=echo,
            label=source,
        )
        self.functions[source] = function
        self.warnings.extend(warnings)
        return function
