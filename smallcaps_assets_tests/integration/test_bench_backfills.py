"""The backfill benchmark of ``make bench``, at its quick size: both modes run end to end in
child processes and their figures hang together."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from benchmarks import bench_backfills
from smallcaps_assets.core import calendar
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.defs.raw import RAW_DATASETS


@pytest.fixture(scope="module")
def figures() -> dict[str, dict[str, object]]:
    result = bench_backfills.run(quick=True)
    return {name: section for name, section in result.items() if isinstance(section, dict)}


def test_both_modes_wrote_the_same_partition_files(figures):
    comparison = figures["comparison"]
    # The window and the sessions added after it, in both roots.
    sessions = bench_backfills.QUICK.sessions + bench_backfills.QUICK.incremental_sessions
    assert comparison["same_partition_files"] is True
    # The raw datasets also hold the warm-up session; raw/minute_bars and minute_requests,
    # processed, features and labels do not.
    with_warmup = len(RAW_DATASETS)
    window_only = comparison["datasets_compared"] - with_warmup
    expected_files = with_warmup * (sessions + 1) + window_only * sessions
    assert comparison["partition_files_compared"] == expected_files


def test_timings_are_consistent(figures):
    single, per_partition = figures["single_run"], figures["per_partition"]
    assert single["runs"] == 1
    assert per_partition["runs"] == bench_backfills.QUICK.sessions
    assert figures["comparison"]["per_partition_over_single_run"] > 0
    for mode in (single, per_partition):
        assert mode["wall_s"] > 0
        assert 0 < mode["compute_s_per_session"] < mode["s_per_session"]
        assert 0 < mode["event_writes_s_per_session"] < mode["s_per_session"]
    # A run writes its per-step events once: spread over the range in a single run, paid again
    # by every per-partition run.
    assert per_partition["events_per_session"] > single["events_per_session"]


def test_incremental_session_follows_the_window(figures):
    last = str(figures["setup"]["window"]).split(" … ")[-1]
    following = calendar.next_session(dt.date.fromisoformat(last)).isoformat()
    incremental = figures["incremental"]
    assert incremental["sessions"] == following
    # Added after each of the two backfills.
    assert incremental["runs"] == 2 * bench_backfills.QUICK.incremental_sessions
    assert 0 < incremental["fastest_s"] <= incremental["median_s"] <= incremental["slowest_s"]
    assert incremental["median_over_single_run_s_per_session"] > 0


def test_memory_is_measured_in_the_children(figures):
    memory = figures["memory"]
    sessions = bench_backfills.QUICK.sessions
    after_imports = memory["rss_after_imports_mib"]
    assert 0 < after_imports <= memory[f"single_run_{sessions}_sessions_peak_rss_mib"]
    assert after_imports <= memory[f"per_partition_{sessions}_sessions_peak_rss_mib"]


def test_the_comparison_refuses_different_files(tmp_path):
    sessions = ["2024-01-02", "2024-01-03"]
    frame = pl.DataFrame({"ticker": ["AAA", "BBB"], "close": [1.0, 2.0]})
    left, right = DataStore(str(tmp_path / "a")), DataStore(str(tmp_path / "b"))
    for store in (left, right):
        for key in sessions:
            store.write("processed", "daily_bars", key, frame)
    assert bench_backfills.same_partitions(tmp_path / "a", tmp_path / "b", sessions) == 2
    right.write("processed", "daily_bars", sessions[1], frame.with_columns(close=pl.lit(3.0)))
    with pytest.raises(AssertionError, match="frames differ"):
        bench_backfills.same_partitions(tmp_path / "a", tmp_path / "b", sessions)
    right.write("processed", "daily_bars", "2024-01-04", frame)
    left.write("processed", "daily_bars", sessions[1], frame.with_columns(close=pl.lit(3.0)))
    # A later session outside the window is ignored; a missing one is not.
    assert bench_backfills.same_partitions(tmp_path / "a", tmp_path / "b", sessions) == 2
    (tmp_path / "a/processed/daily_bars/date=2024-01-03/part-0.parquet").unlink()
    with pytest.raises(AssertionError, match="partitions differ"):
        bench_backfills.same_partitions(tmp_path / "a", tmp_path / "b", sessions)
