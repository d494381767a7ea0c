"""Bad input is refused by `smallcaps` before any run starts: exit code 2, one line on stderr
naming the problem, and nothing written (no instance files, no data root, no source.json)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.defs.resources import simulator_settings
from smallcaps_assets.settings import SOURCE_FILE

PROJECT = Path(__file__).resolve().parents[2]
SMALLCAPS = Path(sys.executable).parent / "smallcaps"


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """An empty instance folder, a data root that does not exist yet, a file, a working dir."""
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "cwd").mkdir()
    (tmp_path / "a_file").write_text("not a folder\n")
    return tmp_path


def smallcaps(sandbox: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k != "POLYGON_API_KEY" and not k.startswith("SMALLCAPS_")
    }
    environment.update(
        DAGSTER_HOME=str(sandbox / "dagster_home"),
        SMALLCAPS_DATA_DIR=str(sandbox / "data"),
        SMALLCAPS_MLRUNS_DIR=str(sandbox / "mlruns"),
    )
    environment.update(env)
    return subprocess.run(
        [str(SMALLCAPS), *args],
        cwd=sandbox / "cwd",
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _unwritable_dir(sandbox: Path) -> Path:
    """A folder this process cannot create files in (root ignores permission bits: /sys)."""
    if os.geteuid() == 0:
        return Path("/sys/smallcaps-test-data-root")
    locked = sandbox / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    return locked / "data"


BAD_INPUTS = {
    "demo-zero-tickers": (["demo", "--tickers", "0"], "--tickers: 0 is outside 1..5000"),
    "demo-negative-tickers": (["demo", "--tickers", "-5"], "--tickers: -5 is outside 1..5000"),
    "demo-too-many-tickers": (
        ["demo", "--tickers", "50000"],
        "--tickers: 50000 is outside 1..5000",
    ),
    "demo-tickers-not-a-number": (["demo", "--tickers", "many"], "'many' is not a whole number"),
    "demo-negative-seed": (["demo", "--seed", "-1"], "--seed: -1 is negative"),
    "demo-negative-signal": (["demo", "--signal", "-0.5"], "--signal: -0.5 is not a finite"),
    "demo-infinite-signal": (["demo", "--signal", "inf"], "--signal: inf is not a finite"),
    "canary-zero-tickers": (["canary", "--tickers", "0"], "--tickers: 0 is outside 1..5000"),
    "canary-too-many-tickers": (
        ["canary", "--tickers", "50000"],
        "--tickers: 50000 is outside 1..5000",
    ),
    "canary-negative-seed": (["canary", "--seeds", "11", "-3"], "--seeds: -3 is negative"),
    "canary-negative-signal": (["canary", "--signal", "-1"], "--signal: -1 is not a finite"),
    "demo-reversed-range": (
        ["demo", "--start", "2024-03-28", "--end", "2024-03-01"],
        "--end 2024-03-01 is before --start 2024-03-28",
    ),
    "demo-range-without-sessions": (
        ["demo", "--start", "2024-07-04", "--end", "2024-07-04"],
        "no NYSE session between 2024-07-04 and 2024-07-04",
    ),
    "canary-reversed-range": (
        ["canary", "--start", "2024-03-28", "--end", "2024-03-01"],
        "--end 2024-03-01 is before --start 2024-03-28",
    ),
    "canary-range-without-sessions": (
        ["canary", "--start", "2024-03-30", "--end", "2024-03-31"],
        "no NYSE session between 2024-03-30 and 2024-03-31",
    ),
    "realism-reversed-range": (
        ["realism", "--start", "2024-03-28", "--end", "2024-03-01"],
        "--end 2024-03-01 is before --start 2024-03-28",
    ),
    "realism-range-without-sessions": (
        ["realism", "--start", "2024-03-30", "--end", "2024-03-31"],
        "no NYSE session between 2024-03-30 and 2024-03-31",
    ),
}


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_argument_is_refused_with_one_line(sandbox, args, message):
    before = _tree(sandbox)
    done = smallcaps(sandbox, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert message in done.stderr
    assert _tree(sandbox) == before


def test_data_dir_that_is_a_file_is_refused(sandbox):
    before = _tree(sandbox)
    done = smallcaps(sandbox, "demo", "--data-dir", str(sandbox / "a_file"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        done.stderr.strip() == f"smallcaps: --data-dir {sandbox / 'a_file'} is a file, not a folder"
    )
    assert _tree(sandbox) == before


def test_data_dir_under_a_file_is_refused(sandbox):
    before = _tree(sandbox)
    done = smallcaps(sandbox, "demo", "--data-dir", str(sandbox / "a_file" / "data"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert f"{sandbox / 'a_file'} is a file" in done.stderr
    assert _tree(sandbox) == before


def test_data_dir_from_the_environment_that_is_a_file_is_refused(sandbox):
    before = _tree(sandbox)
    done = smallcaps(sandbox, "demo", SMALLCAPS_DATA_DIR=str(sandbox / "a_file"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"smallcaps: the data root {sandbox / 'a_file'} is a file, not a folder"
    )
    assert _tree(sandbox) == before


def test_canary_data_dir_that_is_a_file_is_refused(sandbox):
    before = _tree(sandbox)
    done = smallcaps(sandbox, "canary", "--data-dir", str(sandbox / "a_file"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "is a file, not a folder" in done.stderr
    assert _tree(sandbox) == before


def test_unwritable_data_dir_is_refused(sandbox):
    target = _unwritable_dir(sandbox)
    before = _tree(sandbox)
    done = smallcaps(sandbox, "demo", "--data-dir", str(target))
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert f"--data-dir {target} cannot be created in {target.parent}" in done.stderr
    assert _tree(sandbox) == before
    assert not target.exists()


def test_invalid_simulator_environment_is_refused_before_source_json(sandbox):
    # The flag is checked by the parser; the same value through the environment reaches the
    # simulator settings, which refuse it before the data root is claimed.
    before = _tree(sandbox)
    done = smallcaps(
        sandbox, "demo", "--start", "2024-03-01", "--end", "2024-03-05", SMALLCAPS_SIM_TICKERS="0"
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "SMALLCAPS_SIM_TICKERS=0 cannot be built: n_tickers must be within" in done.stderr
    assert _tree(sandbox) == before


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("SMALLCAPS_SIM_TICKERS", "0"),
        ("SMALLCAPS_SIM_TICKERS", "-5"),
        ("SMALLCAPS_SIM_SEED", "-1"),
        ("SMALLCAPS_SIM_SIGNAL", "-2"),
    ],
)
def test_invalid_simulator_settings_never_claim_a_data_root(tmp_path, monkeypatch, env, value):
    """What `dagster asset materialize` with a bad SMALLCAPS_SIM_* reaches: no source.json is
    written, so the next run with valid settings is not locked out of the data root."""
    for name in ("SMALLCAPS_SIM_TICKERS", "SMALLCAPS_SIM_SEED", "SMALLCAPS_SIM_SIGNAL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SMALLCAPS_LOCAL_BARS", raising=False)
    store = DataStore(str(tmp_path / "data"))
    monkeypatch.setenv(env, value)
    with pytest.raises(ValueError, match=f"{env}={value} cannot be built"):
        simulator_settings(store)
    assert store.read_text(SOURCE_FILE) is None
    monkeypatch.delenv(env)
    assert simulator_settings(store).n_tickers == 300  # the root is still free
