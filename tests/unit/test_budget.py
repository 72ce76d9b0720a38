"""The batch's decompression budget: many large gzip records defer, they do not exhaust memory."""

from __future__ import annotations

import gzip
import json

from forwarder.model import DecodedRecord, InvalidRecord, SourceRecord
from forwarder.planning import Plan
from forwarder.records import MAX_DECOMPRESSED_BYTES, DecompressionBudget, RecordDecoder
from forwarder.settings import Settings
from forwarder.verdicts import judge


def gzip_record(index: int, message_bytes: int) -> SourceRecord:
    document = {
        "logGroupName": "/app/g",
        "logStreamName": "s",
        "logEvents": [{"timestamp": 1_800_000_000_000, "message": "x" * message_bytes}],
    }
    return SourceRecord(f"r{index}", gzip.compress(json.dumps(document).encode()), 0)


def test_records_past_the_budget_are_deferred_and_retryable():
    decoder = RecordDecoder(Settings())
    records = [gzip_record(i, 1_000_000) for i in range(4)]
    budget = DecompressionBudget(2_500_000)

    decoded = [decoder.decode(record, i, budget) for i, record in enumerate(records)]

    assert [type(d) for d in decoded] == [
        DecodedRecord,
        DecodedRecord,
        InvalidRecord,
        InvalidRecord,
    ]
    assert all(d.retryable and "budget" in d.reason for d in decoded[2:])
    verdicts = judge(records, decoded, Plan([], [], 0), [])
    assert [v.retryable for v in verdicts[2:]] == [True, True]
    assert verdicts[2].invalid_reason is None
    assert "budget" in verdicts[2].describe()


def test_a_record_past_the_per_record_limit_is_a_bomb_not_deferred():
    decoder = RecordDecoder(Settings())
    bomb = SourceRecord("b", gzip.compress(b" " * (MAX_DECOMPRESSED_BYTES + 1)), 0)

    result = decoder.decode(bomb, 0, DecompressionBudget(10 * MAX_DECOMPRESSED_BYTES))

    assert isinstance(result, InvalidRecord)
    assert not result.retryable
    assert "gzip bomb" in result.reason


def test_plain_records_do_not_spend_the_budget():
    decoder = RecordDecoder(Settings())
    budget = DecompressionBudget(10)
    text = SourceRecord(
        "t", json.dumps({"logGroupName": "/g", "logStreamName": "s", "message": "m" * 100}), 0
    )

    assert isinstance(decoder.decode(text, 0, budget), DecodedRecord)
    assert budget.remaining == 10


def test_the_budget_follows_the_function_memory():
    assert Settings.from_env(
        {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}
    ).decompression_budget_bytes == (512 * 1024 * 1024 // 20)
    assert Settings.from_env({}).decompression_budget_bytes == 1024 * 1024 * 1024 // 20


def test_a_deferred_record_gets_through_once_it_comes_first():
    """Progress: the first gzip record of a batch has its full allowance, whatever came before."""
    decoder = RecordDecoder(Settings())
    records = [gzip_record(i, 1_000_000) for i in range(3)]
    budget = DecompressionBudget(2_500_000)
    deferred = [decoder.decode(record, i, budget) for i, record in enumerate(records)][2]
    assert isinstance(deferred, InvalidRecord)
    assert deferred.retryable

    again = decoder.decode(records[2], 0, DecompressionBudget(2_500_000))

    assert isinstance(again, DecodedRecord)


def test_a_record_larger_than_the_memory_allows_is_invalid_not_deferred_forever():
    """At 128 MB the batch may decompress 6.4 MiB: a 7 MB record could never fit, in any batch."""
    decoder = RecordDecoder(Settings())
    small_memory = Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"})
    record = gzip_record(0, 7_000_000)

    result = decoder.decode(record, 0, DecompressionBudget(small_memory.decompression_budget_bytes))

    assert isinstance(result, InvalidRecord)
    assert not result.retryable
    assert "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" in result.reason
    assert "at least 320 MB" in result.reason
