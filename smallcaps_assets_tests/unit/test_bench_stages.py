"""The stage benchmark's quick run: its figures are consistent with each other (no timings are
asserted: they depend on the machine)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks import bench_stages

STAGES = [stage.name for stage in bench_stages.STAGES]


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return bench_stages.run(quick=True)


def test_backtest_counts_two_fills_per_trade_and_balances_its_cash(figures):
    for name in (
        "backtest_month",
        "backtest_vs_reference_default_rules",
        "backtest_vs_reference_every_candidate",
    ):
        section = figures[name]
        assert section["fills"] == 2 * section["trades"]
        assert 0 < section["trades"] <= section["candidates"]
        assert section["fills_per_s"] > 0
        assert section["candidates_per_s"] > 0
        assert abs(section["accounting_drift"]) < 1e-6
    month = figures["backtest_month"]
    skipped = json.loads(month["skipped"])
    assert month["trades"] + sum(skipped.values()) == month["candidates"]
    assert month["candidates"] == month["candidates_per_session"] * month["sessions"]


def test_every_candidate_rules_take_every_sized_candidate(figures):
    every = figures["backtest_vs_reference_every_candidate"]
    default = figures["backtest_vs_reference_default_rules"]
    assert every["candidates"] == default["candidates"]
    assert every["trades"] > default["trades"]
    for section in (every, default):
        assert section["speedup_vs_pandas_iterrows"] > 0
        assert section["backtest_over_bare_row_walk"] > 0


def test_candidates_come_from_the_detected_events(figures):
    session = figures["session"]
    assert session["events"] > 0
    assert sum(json.loads(session["events_by_pattern"]).values()) == session["events"]
    assert figures["backtest_month"]["candidates_per_session"] == session["events"]


def test_memory_has_a_peak_above_the_idle_interpreter_for_every_stage(figures):
    memory = figures["memory"]
    assert memory["idle_child_rss_gib"] > 0
    for stage in STAGES:
        assert memory[f"{stage}_peak_rss_gib"] >= memory["idle_child_rss_gib"]
        assert memory[f"{stage}_above_idle_gib"] >= 0
        assert memory[f"{stage}_input_gib"] >= 0


def test_scaling_reports_each_stage_at_three_sizes_with_positive_growth(figures):
    for stage in STAGES:
        section = figures[f"scaling_{stage}"]
        for scale in bench_stages.SCALES:
            assert section[f"wall_s_{scale}x"] > 0
            assert section[f"cpu_s_{scale}x"] >= 0
            assert section[f"peak_rss_gib_{scale}x"] > 0
        for scale in bench_stages.SCALES[1:]:
            assert section[f"wall_growth_{scale}x"] > 0
            assert section[f"cpu_growth_{scale}x"] > 0
