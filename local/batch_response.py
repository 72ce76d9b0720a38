"""How Lambda reads a function's partial-batch response (``ReportBatchItemFailures``). Pure.

The batch is a complete success when the response is null, an empty object, or has a null or
empty ``batchItemFailures``. It is a complete failure when the function errored, or when the
response is not well formed: ``batchItemFailures`` that is not a list, an item without an
``itemIdentifier`` (or with a null, empty or misspelt one), or an identifier that is not a record
of this batch. Otherwise the reported records failed and the others succeeded. Without
``ReportBatchItemFailures`` on the mapping, any response counts as a complete success.
A response that is neither null nor a JSON object is taken as a complete failure (an assumption:
Lambda does not document it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from local.invocation import Invocation


@dataclass(frozen=True, slots=True)
class BatchVerdict:
    """What the mapping does next: ``failed`` identifiers in batch order (all of them when
    ``whole_batch``), and why, for people."""

    failed: tuple[str, ...]
    whole_batch: bool
    reason: str

    @property
    def succeeded(self) -> bool:
        return not self.failed


def judge_response(
    invocation: Invocation, batch_ids: Sequence[str], report_batch_item_failures: bool
) -> BatchVerdict:
    """The verdict on one invocation of a batch whose records have ``batch_ids``."""
    everything = tuple(batch_ids)
    if invocation.error is not None:
        error = invocation.error
        return BatchVerdict(everything, True, f"{error.error_type}: {error.message}")
    response = invocation.response
    if not report_batch_item_failures or response is None:
        return BatchVerdict((), False, "success")
    if not isinstance(response, dict):
        return BatchVerdict(everything, True, "invalid response: not a JSON object")
    items = response.get("batchItemFailures")
    if not items:
        if items is None or isinstance(items, list):
            return BatchVerdict((), False, "success")
        return BatchVerdict(everything, True, "invalid response: batchItemFailures not a list")
    if not isinstance(items, list):
        return BatchVerdict(everything, True, "invalid response: batchItemFailures not a list")
    known = set(everything)
    reported: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier:
            return BatchVerdict(everything, True, f"invalid response: item {item!r}")
        if identifier not in known:
            return BatchVerdict(
                everything, True, f"invalid response: {identifier!r} is not in the batch"
            )
        reported.add(identifier)
    failed = tuple(i for i in everything if i in reported)
    return BatchVerdict(failed, False, f"{len(failed)} of {len(everything)} reported failed")
