"""The Lambda entry point (``forwarder.handler.handler``): wiring only.

Settings, clients, the thread pool and telemetry are built once per cold start; a bad setting
stops the function here with a message naming the variable.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from forwarder.checkpoint_store import CheckpointStore, make_dynamodb_client
from forwarder.dead_letters import DeadLetterQueue, make_s3_client, make_sqs_client
from forwarder.forwarding import Forwarder
from forwarder.sending import LogsSender, NewLogGroups, make_logs_client
from forwarder.settings import Settings, check_time_reserve
from forwarder.sources import source_records
from forwarder.telemetry import publish

settings = Settings.from_env(os.environ)
logger = Logger()
metrics = Metrics(namespace=settings.metrics_namespace)
forwarder = Forwarder(
    settings,
    LogsSender(
        make_logs_client(
            settings.max_concurrent_requests, settings.retry_mode, settings.max_attempts
        ),
        max_concurrent_requests=settings.max_concurrent_requests,
        create_log_streams=settings.create_log_streams,
        create_log_groups=settings.create_log_groups,
        new_log_groups=NewLogGroups(
            settings.new_log_group_retention_days,
            settings.new_log_group_kms_key_id,
            settings.new_log_group_class,
            settings.new_log_group_tags,
            settings.new_log_group_deletion_protection,
        ),
    ),
    DeadLetterQueue(
        make_sqs_client(),
        settings.dead_letter_queue_url,
        s3_client=make_s3_client() if settings.dead_letter_bucket else None,
        bucket=settings.dead_letter_bucket,
    )
    if settings.dead_letter_queue_url
    else None,
    CheckpointStore(
        make_dynamodb_client(),
        settings.checkpoint_table,
        ttl_seconds=settings.checkpoint_ttl_seconds,
    )
    if settings.checkpoint_table
    else None,
)

# Everything built so far lives as long as the execution environment: move it out of the
# collector's sight, so the collections a 10,000-record batch triggers do not rescan botocore's
# and Powertools' objects each time (about a fifth of the handler's CPU on such a batch).
gc.freeze()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Forward an SQS or Kinesis batch; return the partial-batch response."""
    check_time_reserve(settings, context.get_remaining_time_in_millis())
    source, records = source_records(event)
    if not records:
        logger.error("event has no SQS or Kinesis records; nothing to do", event_type=source)
    result = forwarder.forward(source, records, context.get_remaining_time_in_millis)
    publish(result, logger, metrics)
    return result.response()
