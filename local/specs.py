"""Where the local loop's blueprint comes from: the CDK app's own configuration, by default.

``load_blueprint`` exports it (``infra.blueprint.export_blueprint``) from ``cdk.json``'s context
with the command line's ``-c key=value`` over it, the way ``cdk synth`` reads it, so a fresh clone
needs no synth and an edit of ``cdk.json`` is what the loop runs next. With ``template=True`` it
reads what ``cdk synth`` wrote to ``cdk.out`` instead (and runs the bundled asset). The demo shows
both sources: one the configuration leaves out comes from the same configuration with it on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from infra.blueprint import SQS_DEAD_LETTER_QUEUE, Blueprint, export_blueprint
from infra.config import ForwarderConfig
from local.template import TemplateError, find_template, read_blueprint

ROOT = Path(__file__).resolve().parent.parent


def app_context(root: Path = ROOT, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``cdk.json``'s context with ``overrides`` over it (values as ``-c`` gives them)."""
    context = json.loads((root / "cdk.json").read_text()).get("context", {})
    return dict(context) | dict(overrides or {})


def config_blueprint(root: Path = ROOT, overrides: Mapping[str, Any] | None = None) -> Blueprint:
    """What the CDK app builds with ``cdk.json`` and ``overrides``, with both sources."""
    context = app_context(root, overrides)
    given = [f"-c {key}={value}" for key, value in (overrides or {}).items()]
    exported = export_blueprint(ForwarderConfig.from_context(context), _origin(given))
    if exported.sqs and exported.kinesis:
        return exported
    # The sources left off, from the same configuration with only them on.
    only_missing = {"sqsEnabled": exported.sqs is None, "kinesisEnabled": exported.kinesis is None}
    turned_on = [f"-c {key}=true" for key, on in only_missing.items() if on]
    others = ForwarderConfig.from_context(context | only_missing)
    return exported.with_sources_of(export_blueprint(others, _origin(given + turned_on)))


def _origin(overrides: list[str]) -> str:
    return "cdk.json's context" + (f" with {' '.join(overrides)}" if overrides else "")


def load_blueprint(
    root: Path = ROOT,
    *,
    overrides: Mapping[str, Any] | None = None,
    template: bool = False,
    stack: str | None = None,
) -> Blueprint:
    """The blueprint the loop runs: exported from the configuration, or (``template`` or a
    ``stack`` named) read from ``root/cdk.out``, a source it lacks from the configuration."""
    if not template and stack is None:
        return config_blueprint(root, overrides)
    path = find_template(root / "cdk.out", stack)
    if path is None:
        raise TemplateError(
            f"no synthesized template{f' of stack {stack!r}' if stack else ''} in "
            f"{root / 'cdk.out'}: run `make synth` first, or leave out --template"
        )
    return read_blueprint(path).with_sources_of(config_blueprint(root, overrides))


def default_blueprint() -> Blueprint:
    """What the CDK app builds with ``cdk.json``'s defaults and both sources."""
    return config_blueprint(ROOT)


def fast_blueprint(
    *,
    visibility_s: int = 1,
    max_receive_count: int = 3,
    fifo: bool = False,
    sqs_batch: int = 10,
    sqs_window_s: float = 0.0,
    shards: int = 1,
    kinesis_batch: int = 100,
    kinesis_window_s: float = 0.0,
    starting_position: str = "TRIM_HORIZON",
    bisect: bool = True,
    kinesis_retries: int = 2,
    max_record_age_s: int = -1,
    timeout_s: int | None = None,
    kinesis_on_failure: str | None = None,
) -> Blueprint:
    """``default_blueprint`` with timings short enough for tests and campaigns: every queue,
    mapping and (with ``timeout_s``) function setting named here replaces the default;
    ``kinesis_on_failure`` (``s3`` or ``sqs``) is the ``kinesisOnFailure`` context key."""
    blueprint = (
        default_blueprint()
        if kinesis_on_failure is None
        else config_blueprint(ROOT, {"kinesisOnFailure": kinesis_on_failure})
    )
    assert blueprint.sqs is not None
    assert blueprint.kinesis is not None
    blueprint = blueprint.with_queue(
        blueprint.sqs.queue,
        visibility_timeout_s=visibility_s,
        max_receive_count=max_receive_count,
        fifo=fifo,
        content_based_deduplication=fifo,
    )
    if fifo:
        blueprint = blueprint.with_queue(SQS_DEAD_LETTER_QUEUE, fifo=True)
    sqs_function, kinesis_function = blueprint.sqs.function, blueprint.kinesis.function
    if timeout_s is not None:
        sqs_function = replace(sqs_function, timeout_s=timeout_s)
        kinesis_function = replace(kinesis_function, timeout_s=timeout_s)
    sqs = replace(
        blueprint.sqs,
        function=sqs_function,
        mapping=replace(
            blueprint.sqs.mapping, batch_size=sqs_batch, batching_window_s=sqs_window_s
        ),
    )
    kinesis = replace(
        blueprint.kinesis,
        function=kinesis_function,
        stream=replace(blueprint.kinesis.stream, shard_count=shards),
        mapping=replace(
            blueprint.kinesis.mapping,
            batch_size=kinesis_batch,
            batching_window_s=kinesis_window_s,
            starting_position=starting_position,
            bisect_on_error=bisect,
            max_retry_attempts=kinesis_retries,
            max_record_age_s=max_record_age_s,
        ),
    )
    return replace(blueprint, sqs=sqs, kinesis=kinesis)
