"""How the loop reads a partial-batch response, as Lambda documents it. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from local.batch_response import judge_response
from local.invocation import FunctionError, Invocation

IDS = ["a", "b", "c"]


def verdict(response: Any, report: bool = True) -> tuple[tuple[str, ...], bool]:
    result = judge_response(Invocation("r", response), IDS, report)
    return result.failed, result.whole_batch


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"other": 1}],
)
def test_empty_or_null_responses_are_a_complete_success(response: Any) -> None:
    assert verdict(response) == ((), False)


def test_reported_records_fail_in_batch_order_and_the_others_succeed() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "c"}, {"itemIdentifier": "a"}]}
    assert verdict(response) == (("a", "c"), False)


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "z"}]},  # not a record of the batch
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifer": "a"}]},  # misspelt key
        {"batchItemFailures": ["a"]},
        {"batchItemFailures": "a"},
        "not an object",
    ],
)
def test_malformed_responses_fail_the_whole_batch(response: Any) -> None:
    assert verdict(response) == (tuple(IDS), True)


def test_a_function_error_fails_the_whole_batch() -> None:
    invocation = Invocation("r", error=FunctionError("ValueError", "boom"))
    result = judge_response(invocation, IDS, True)
    assert (result.failed, result.whole_batch) == (tuple(IDS), True)
    assert result.reason == "ValueError: boom"


def test_without_report_batch_item_failures_the_response_is_ignored() -> None:
    assert verdict({"batchItemFailures": [{"itemIdentifier": "a"}]}, report=False) == ((), False)
