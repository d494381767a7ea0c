"""`smallcaps realism` on data roots written by hand: the table, the verdicts and exit codes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from smallcaps_assets import cli
from smallcaps_assets.core.realism import REAL_RANGES
from smallcaps_assets_tests.realism_fixtures import Knobs, build_market, write_processed


@pytest.fixture(scope="module")
def realistic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("realistic") / "data"
    write_processed(str(root), build_market())
    return root


@pytest.fixture(scope="module")
def drifting_root(tmp_path_factory) -> Path:
    # Gappers that run +50 % past their open: the artefact issue 15 found in the old simulator.
    root = tmp_path_factory.mktemp("drifting") / "data"
    write_processed(str(root), build_market(Knobs(gap_day_drift=0.5)))
    return root


def realism(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["realism", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_every_fact_beside_its_range_and_exits_zero(capsys, realistic_root):
    code, out, _ = realism(capsys, "--data-dir", str(realistic_root), "--strict")
    assert code == 0
    assert f"market realism of {realistic_root}" in out
    assert "2024-01-03 … 2024-06-28, 123 sessions" in out  # 01-02 is only a previous close
    for spec in REAL_RANGES.values():
        assert spec.label in out
    assert "13 inside, 0 consistent" in out
    assert "0 outside, 0 insufficient" in out
    assert "three real US small-cap panels" in out


def test_strict_exits_one_when_a_fact_is_outside(capsys, drifting_root):
    code, out, _ = realism(capsys, "--data-dir", str(drifting_root))
    assert code == 0  # a report by default
    assert "outside: " in out
    assert "gap_day_median_open_to_close" in out.split("outside: ")[1]
    code, _, _ = realism(capsys, "--data-dir", str(drifting_root), "--strict")
    assert code == 1


def test_a_short_window_is_insufficient_and_never_fails_strict(capsys, drifting_root):
    code, out, _ = realism(
        capsys,
        "--data-dir",
        str(drifting_root),
        "--start",
        "2024-03-04",
        "--end",
        "2024-03-08",
        "--strict",
    )
    assert code == 0, out
    assert "2024-03-04 … 2024-03-08, 5 sessions" in out
    assert "0 outside" in out


def test_the_data_dir_comes_from_the_environment(capsys, monkeypatch, realistic_root):
    monkeypatch.setenv("SMALLCAPS_DATA_DIR", str(realistic_root))
    code, out, _ = realism(capsys, "--end", "2024-02-01")
    assert code == 0
    assert str(realistic_root) in out
    assert "… 2024-02-01" in out


def test_an_empty_root_or_window_is_a_clear_error(capsys, tmp_path, realistic_root):
    code, _, err = realism(capsys, "--data-dir", str(tmp_path))
    assert code == 2
    assert "no processed/daily_bars partition" in err
    assert "materialize the processed layer first" in err
    code, _, err = realism(
        capsys, "--data-dir", str(realistic_root), "--start", str(dt.date(2025, 1, 2))
    )
    assert code == 2
    assert "124 stored in all" in err
    code, _, err = realism(capsys, "--start", "2024-03-08", "--end", "2024-03-01")
    assert code == 2
