"""The rules of PutLogEvents, named once, each with the sentence of the API reference it comes from.

Source: the boto3 ``put_log_events`` reference (``shared/reference``). Everything that packs or
judges events reads its numbers from here, so a change of quota is a change of one line.
"""

from __future__ import annotations

from dataclasses import dataclass

#: "calculated as the sum of all event messages in UTF-8, plus 26 bytes for each log event"
EVENT_OVERHEAD_BYTES = 26
#: "The maximum batch size is 1,048,576 bytes."
MAX_BATCH_BYTES = 1_048_576
#: "The maximum number of log events in a batch is 10,000."
MAX_BATCH_EVENTS = 10_000
#: "Each log event can be no larger than 1 MB." Counted like the batch: message bytes + overhead.
MAX_EVENT_BYTES = 1_048_576
#: The longest message one event may carry; longer messages are split into several events.
MAX_MESSAGE_BYTES = MAX_EVENT_BYTES - EVENT_OVERHEAD_BYTES
#: "the time span in a single batch cannot exceed 24 hours": a span of exactly 24 hours is
#: allowed, and a millisecond kept inside it would cost a request at the boundary.
MAX_SPAN_MS = 24 * 3600 * 1000
#: "Events more than 2 hours in the future are rejected while processing remaining valid events."
MAX_FUTURE_MS = 2 * 3600 * 1000
#: "Events older than 14 days or preceding the log group's retention period are rejected".
MAX_AGE_MS = 14 * 24 * 3600 * 1000
#: Events judged before sending are judged only when they are this far past a bound, so that a
#: few minutes of clock skew between Lambda and the service never rejects an event the service
#: would have kept. Events inside the margin are sent and the service decides.
CLOCK_SKEW_MARGIN_MS = 5 * 60 * 1000

#: Largest decompressed payload accepted from one record; beyond it the record is a gzip bomb.
#: (The forwarder's own bound, not an API rule: it keeps one record's decoding within memory.)
MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024

#: SQS (dead letters): "The maximum message size is 1 MiB" (1,048,576 bytes, since August 2025),
#: and a SendMessageBatch holds at most 10 messages of at most 1 MiB in all.
SQS_MAX_MESSAGE_BYTES = 1_048_576
SQS_MAX_BATCH_ENTRIES = 10

#: PutRetentionPolicy's retentionInDays (service model, shape Days): "Possible values are: 1, 3,
#: 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
#: and 3653."
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip

#: CreateLogGroup's logGroupClass the forwarder offers (service model: also DELIVERY, for vended
#: logs, and ESSENTIALS, neither of which a PutLogEvents writer creates).
LOG_GROUP_CLASSES = ("STANDARD", "INFREQUENT_ACCESS")
#: CreateLogGroup's tags (service model, shapes Tags, TagKey, TagValue): 1 to 50 entries, keys
#: of 1 to 128 and values of 0 to 256 letters, digits, spaces and _ . : / = + - @.
MAX_TAGS, MAX_TAG_KEY_LENGTH, MAX_TAG_VALUE_LENGTH = 50, 128, 256

#: Log group names: "[\\.\\-_/#A-Za-z0-9]+", 1 to 512 characters (service model).
LOG_GROUP_NAME_CHARS = frozenset(
    "._-/#ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)
#: Log stream names: "[^:*]*", 1 to 512 characters (service model).
LOG_STREAM_FORBIDDEN_CHARS = frozenset(":*")
MAX_NAME_LENGTH = 512

#: Entity (service model): 2 to 4 key attributes from this set; up to 10 other attributes.
ENTITY_KEY_ATTRIBUTE_NAMES = frozenset(
    {"Type", "ResourceType", "Identifier", "Name", "Environment"}
)
ENTITY_MIN_KEY_ATTRIBUTES = 2
ENTITY_MAX_KEY_ATTRIBUTES = 4
ENTITY_MAX_ATTRIBUTES = 10
ENTITY_MAX_KEY_LENGTH = {"keyAttributes": 32, "attributes": 256}
ENTITY_MAX_VALUE_LENGTH = 512


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """The limits one request must satisfy. Tests shrink them to reach the edges quickly."""

    max_bytes: int = MAX_BATCH_BYTES
    max_events: int = MAX_BATCH_EVENTS
    max_span_ms: int = MAX_SPAN_MS
    event_overhead: int = EVENT_OVERHEAD_BYTES
