"""Hypothesis fuzzing with hostile payloads: random structure, types, names, numbers, text and
bytes, in every payload form, whole or cut short.

- Through the real handler against moto behind the strict layer, one hostile record with two
  good ones (``batch_with``): the handler never raises, reports nothing but the hostile record,
  the good records land, and no request breaks a rule of the real service.
- Through the decoder and planner alone, many more examples: decode never raises and whatever it
  accepts plans into valid requests.

``FUZZ_EXAMPLES`` raises the number of handler examples (default 60; the decoder gets 8 times as
many) for a longer campaign, e.g.
``FUZZ_EXAMPLES=2000 .venv/bin/pytest tests/fuzz/test_fuzz.py``.
"""

from __future__ import annotations

import itertools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forwarder.limits import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_SPAN_MS
from forwarder.model import DecodedRecord, InvalidRecord, SourceRecord
from forwarder.planning import plan_requests
from forwarder.records import RecordDecoder
from forwarder.settings import Settings
from local.lambda_events import LambdaContext, failed_ids, now_ms
from local.readback import read_stream as read_events
from tests.fuzz.batches import batch_with
from tests.fuzz.hostile import KINESIS, hostile_payloads

HANDLER_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
DECODER_EXAMPLES = 8 * HANDLER_EXAMPLES
NOW_MS = 1_767_225_600_000
_streams = itertools.count()


def test_hostile_records_through_the_handler(load_handler, strict, logs, log_group):
    handler = load_handler(
        ALLOWED_LOG_GROUPS="/app/*", DEFAULT_LOG_GROUP=log_group, DEFAULT_LOG_STREAM="raw"
    )

    # The strict layer and the log group are set up once; each example has a stream of its own.
    @settings(
        max_examples=HANDLER_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(data=st.data())
    def one_example(data: st.DataObject) -> None:
        now = now_ms()
        source, payload = data.draw(hostile_payloads(log_group, now), label="hostile")
        stream = f"good-{next(_streams)}"
        event, hostile_id, good = batch_with(source, payload, log_group, now, stream)

        response = handler.handler(event, LambdaContext())  # must not raise

        assert set(failed_ids(response)) <= {hostile_id}
        assert [m for _, m in read_events(logs, log_group, stream)] == good
        violations = list(strict.state.violations)
        strict.state.violations.clear()
        assert not violations, f"{source} {payload!r:.300}: {violations}"

    one_example()


DECODERS = [
    RecordDecoder(Settings()),
    RecordDecoder(Settings(default_log_group="/app/raw", default_log_stream="raw")),
    RecordDecoder(
        Settings(
            allowed_log_groups=("/app/*", "/replicated/*"),
            subscription_log_group="/replicated/{owner}{logGroup}",
            subscription_log_stream="{logStream}",
        )
    ),
]


@settings(
    max_examples=DECODER_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(hostile=hostile_payloads("/app/x", NOW_MS))
def test_decode_never_raises_and_what_it_accepts_plans_validly(hostile):
    source, payload = hostile
    record = SourceRecord("id", payload, NOW_MS)
    for decoder in DECODERS:
        decoded = decoder.decode(record, 0)
        assert isinstance(decoded, DecodedRecord | InvalidRecord)
        if isinstance(decoded, InvalidRecord):
            assert decoded.reason
            continue
        groups = dict(decoded.parts())
        if not groups:
            continue
        plan = plan_requests(groups, NOW_MS)
        planned = sum(len(r.events) for r in plan.requests) + len(plan.prejudged)
        assert planned == sum(1 for _ in decoded.every_event())
        for request in plan.requests:
            assert 1 <= len(request.events) <= MAX_BATCH_EVENTS
            assert request.size <= MAX_BATCH_BYTES
            stamps = [e.timestamp for e in request.events]
            assert stamps == sorted(stamps)
            assert stamps[-1] - stamps[0] <= MAX_SPAN_MS
            for e in request.events:
                assert e.message
                assert len(e.message.encode("utf-8")) + 26 == e.size
    assert source in {KINESIS, "sqs"}
