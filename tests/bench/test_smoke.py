"""The quick smoke of every benchmark (``python -m benchmarks --quick``), so that they never rot.

No absolute time is asserted (these machines are noisy): only what must hold on any machine, such
as the planner meeting the lower bound on small uniform events, both CPU contenders sending the
same requests, the concurrency bound being respected, and every ratio being a finite number.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    results["out"] = out
    results["stdout"] = done.stdout
    return results


def rows(smoke: dict[str, Any], benchmark: str) -> list[dict[str, Any]]:
    found = [row for row in smoke["rows"] if row["benchmark"] == benchmark]
    assert found, f"no {benchmark} rows"
    return found


def test_every_benchmark_ran_and_printed_its_table(smoke):
    assert smoke["meta"]["failed"] == []
    assert {row["benchmark"] for row in smoke["rows"]} == {
        "packing",
        "cpu",
        "concurrency",
        "cold start",
        "memory",
        "faults",
        "duplicates",
        "load",
    }
    assert "| benchmark" in smoke["stdout"]
    assert (smoke["out"] / "table.md").read_text().startswith("| benchmark")


def test_every_ratio_is_a_finite_positive_number(smoke):
    ratios = [row["ratio"] for row in smoke["rows"] if row["ratio"] is not None]
    assert ratios
    assert all(isinstance(r, float | int) and math.isfinite(r) and r > 0 for r in ratios)


def test_packing_meets_the_bound_on_small_uniform_events_and_never_loses_to_the_cut(smoke):
    planners = {
        r["case"]: r["facts"] for r in rows(smoke, "packing") if r["case"].endswith(": planner")
    }
    assert len(planners) == 4
    small = planners["small uniform: planner"]
    assert small["planned"] == small["lower_bound"]
    for facts in planners.values():
        assert facts["lower_bound"] <= facts["planned"] <= facts["contiguous"]
        assert facts["lower_bound"] <= facts["tight_bound"] <= facts["planned"]
    many = planners["many streams and entities: planner"]
    assert many["planned"] == many["destinations"], "one request per destination"
    assert (smoke["out"] / "packing.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cpu_handler_and_baseline_send_the_same_requests(smoke):
    (headline,) = [r for r in rows(smoke, "cpu") if r["target"]]
    facts = headline["facts"]
    assert facts["records"] == 10_000
    assert 5_000_000 < facts["event_bytes"] <= 6 * 1024 * 1024
    assert facts["handler_requests"] == facts["baseline_requests"] == 10
    assert all(math.isfinite(x) and x > 0 for x in facts["handler_cpu_s"] + facts["baseline_cpu_s"])


def test_concurrency_respects_the_bound_and_cannot_beat_the_ideal(smoke):
    (headline,) = [r for r in rows(smoke, "concurrency") if r["target"]]
    facts = headline["facts"]
    assert facts["max_in_flight"] <= facts["bound"] == 8
    assert set(facts["put_calls"]) == {40}
    assert facts["ratio"] >= 0.95  # 40 requests of 50 ms, 8 at a time, take 250 ms at least


def test_cold_start_and_memory_figures_are_sane(smoke):
    cold = rows(smoke, "cold start")
    size = next(r for r in cold if r["case"] == "bundled asset size")["facts"]
    assert size["files"] > 0
    assert 0 < size["zipped_bytes"] < size["bytes"]
    (memory,) = rows(smoke, "memory")
    for run in memory["facts"]["runs"]:
        assert run["failed"] == 0
        assert run["imports_mb"] < run["event_mb"] < run["peak_mb"] + 1  # MB, page noise


def test_the_fault_campaign_met_every_fault_and_lost_nothing(smoke):
    (row,) = rows(smoke, "faults")
    facts = row["facts"]
    assert facts["drained"]
    assert facts["violations"] == []
    assert facts["ok"]
    assert facts["lost"] == 0
    assert set(facts["faults_met"]) == {
        "throttle",
        "unavailable",
        "drop",
        "lose",
        "missing",
        "delay",
    }
    outcomes = facts["outcomes"]
    assert sum(outcomes.values()) == facts["sent"]
    assert outcomes["landed"] > 0.9 * facts["sent"]
    assert facts["poison_landed"] == 0
    assert row["met"] is True
    # The checkpoint's calls met faults too, and every duplicate is one the functions named.
    assert set(facts["faults_by_operation"]) & {"BatchGetItem", "BatchWriteItem", "Query"}
    (duplicates,) = rows(smoke, "duplicates")
    assert duplicates["facts"]["duplicate_events"] == facts["duplicate_events"]
    assert duplicates["facts"]["named"] is True


def test_the_load_landed_every_event_exactly_once(smoke):
    (row,) = rows(smoke, "load")
    facts = row["facts"]
    assert facts["drained"]
    assert facts["violations"] == []
    assert facts["events"] == facts["events_landed"] == 40_000
    assert facts["duplicate_events"] == facts["lost"] == 0
    assert facts["lower_bound"] <= facts["requests_sent"] <= facts["put_log_events"]
    # Nothing failed, so the delivery checkpoint wrote nothing; Kinesis read once a batch.
    assert facts["checkpoint_calls"]["BatchWriteItem"] == 0
    assert facts["checkpoint_calls"]["Query"] > 0
    assert row["met"] is True


def test_the_planner_worst_cases_plan_every_event_validly_and_say_how_long(smoke):
    worst = [r for r in rows(smoke, "packing") if r["case"].startswith("worst case: ")]
    assert len(worst) == 2
    for row in worst:
        facts = row["facts"]
        assert facts["lower_bound"] < facts["contiguous"], "the cut misses the bound"
        assert facts["lower_bound"] <= facts["planned"] <= facts["contiguous"]
        assert facts["planner_s_per_million"] > 0
        assert math.isclose(
            row["ratio"], facts["planner_s_per_million"] / facts["cut_s_per_million"]
        )
