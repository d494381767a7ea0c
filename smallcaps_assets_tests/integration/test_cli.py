"""The commands a user types, run as subprocesses from the project root against a fresh instance."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from smallcaps_assets.defs.raw import RAW_DATASETS

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def env(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    environment = {k: v for k, v in os.environ.items() if k != "POLYGON_API_KEY"}
    environment.update(
        DAGSTER_HOME=str(home),
        SMALLCAPS_DATA_DIR=str(tmp_path / "data"),
        SMALLCAPS_SIM_TICKERS="30",
        SMALLCAPS_SIM_SEED="5",
    )
    return environment


def run(
    args: list[str], env: dict[str, str], cwd: Path = PROJECT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def materialize_command(select: str, *partitions: str) -> list[str]:
    """`dagster asset materialize` of the project's definitions, as a user types it."""
    return [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "smallcaps_assets.definitions",
        "--select",
        select,
        *partitions,
    ]


def test_definitions_validate_is_clean(env):
    done = run([str(BIN / "dagster"), "definitions", "validate"], env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_materialize_one_partition_from_the_cli(env, tmp_path):
    done = run(
        materialize_command('key:"raw/daily_bars"', "--partition", "2024-03-01"),
        env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "data/raw/daily_bars/date=2024-03-01/part-0.parquet").exists()
    assert "simulated" in (done.stdout + done.stderr).lower()


def test_partition_range_runs_the_raw_layer_as_one_run(env, tmp_path):
    done = run(
        materialize_command("group:raw", "--partition-range", "2024-03-01...2024-03-05"),
        env,
        # Outside the project: its .env (written by make) pins DAGSTER_HOME to the project's
        # instance, and the dagster CLI lets .env override the environment.
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for dataset in RAW_DATASETS:
        folders = sorted(p.name for p in (tmp_path / "data/raw" / dataset.name).iterdir())
        assert folders == ["date=2024-03-01", "date=2024-03-04", "date=2024-03-05"]
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    try:
        runs = instance.get_runs()
        assert len(runs) == 1
        assert runs[0].tags["dagster/asset_partition_range_start"] == "2024-03-01"
        assert runs[0].tags["dagster/asset_partition_range_end"] == "2024-03-05"
    finally:
        instance.dispose()


def test_invalid_partition_on_the_cli_is_a_clear_error(env, tmp_path):
    done = run(
        materialize_command('key:"raw/daily_bars"', "--partition", "2024-07-04"),
        env,
    )
    assert done.returncode != 0
    assert "2024-07-04" in done.stderr + done.stdout
    assert not (tmp_path / "data/raw").exists()


def test_smallcaps_demo_small_window(env, tmp_path):
    done = run(
        [
            str(BIN / "smallcaps"),
            "demo",
            "--start",
            "2024-03-01",
            "--end",
            "2024-03-05",
            "--tickers",
            "30",
            "--seed",
            "5",
        ],
        env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Summary" in out
    assert "raw/daily_bars" in out
    assert "layer processed  ok" in out
    assert "layer events     ok" in out
    assert "layer backtest   skipped" in out  # no walk-forward month in three sessions
    assert "labels/events" in out
    assert "processed/universe" in out
    assert "processed layer by month" in out
    assert "avg_universe" in out
    assert "3/3" in out
    assert "SIMULATED" in out
    assert "asset partitions" in out  # progress lines


def test_smallcaps_demo_rejects_a_window_without_sessions(env):
    done = run(
        [str(BIN / "smallcaps"), "demo", "--start", "2024-07-04", "--end", "2024-07-04"], env
    )
    assert done.returncode == 2
    assert "no NYSE session" in done.stderr
