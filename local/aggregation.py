"""A KPL producer's records: user records packed into aggregated Kinesis records.

Built with ``aws-kinesis-agg``'s own aggregator (a dev dependency), the reference of the format,
so what the local loop, the demo and the tests send is what a KPL producer writes, not this
project's reading of it (``forwarder.aggregates`` reads it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aws_kinesis_agg
from aws_kinesis_agg.aggregator import RecordAggregator

#: The most a Kinesis record holds by default (a stream can be raised to 10 MiB).
KINESIS_RECORD_BYTES = 1024 * 1024
#: The most a stream can be raised to take (``MaxRecordSizeInKiB`` 10240).
LARGEST_RECORD_BYTES = 10 * 1024 * 1024


def aggregate(
    user_records: Iterable[tuple[str, bytes]], max_bytes: int = KINESIS_RECORD_BYTES
) -> list[tuple[str, bytes]]:
    """``(partition key, data)`` user records packed, in order, into as few aggregated records
    of at most ``max_bytes`` as they fit: each ``(partition key, data)``, the key being its first
    user record's, as the KPL puts them. The package stops at 1 MiB, the limit of its day; the
    format has none, so up to a large-record stream's 10 MiB its bound is lifted."""
    if not 0 < max_bytes <= LARGEST_RECORD_BYTES:
        raise ValueError(f"max_bytes {max_bytes}: a Kinesis record holds 1 to 10 MiB")
    bound = aws_kinesis_agg.MAX_BYTES_PER_RECORD
    aws_kinesis_agg.MAX_BYTES_PER_RECORD = max(KINESIS_RECORD_BYTES, max_bytes)
    try:
        aggregator = RecordAggregator(max_size=max_bytes)
        records: list[tuple[str, bytes]] = []
        for partition_key, data in user_records:
            full = aggregator.add_user_record(partition_key, data)
            if full is not None:
                records.append(_contents(full))
        last = aggregator.clear_and_get()
        if last is not None:
            records.append(_contents(last))
        return records
    finally:
        aws_kinesis_agg.MAX_BYTES_PER_RECORD = bound


def _contents(record: Any) -> tuple[str, bytes]:
    partition_key, _, data = record.get_contents()
    return str(partition_key), bytes(data)
