"""``make`` names the instance in .env without touching anything else kept there (a key)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from smallcaps_assets.settings import project_root

SCRIPT = project_root() / "scripts" / "env-dagster-home.sh"


def _run(cwd: Path, home: str) -> None:
    subprocess.run(["bash", str(SCRIPT), home], cwd=cwd, check=True)


def test_a_key_kept_in_env_survives_and_only_the_home_line_changes(tmp_path):
    env = tmp_path / ".env"
    env.write_text("POLYGON_API_KEY=kept\nDAGSTER_HOME=/elsewhere\nSMALLCAPS_SIM_SEED=3\n")
    env.chmod(0o600)
    _run(tmp_path, "/checkout/.dagster_home")
    assert env.read_text().splitlines() == [
        "POLYGON_API_KEY=kept",
        "SMALLCAPS_SIM_SEED=3",
        "DAGSTER_HOME=/checkout/.dagster_home",
    ]
    assert env.stat().st_mode & 0o777 == 0o600  # a file holding a key stays private
    assert not list(tmp_path.glob(".env.*"))


def test_an_env_that_already_names_the_home_is_not_written(tmp_path):
    env = tmp_path / ".env"
    env.write_text("POLYGON_API_KEY=kept\nDAGSTER_HOME=/h\n")
    before = env.stat().st_mtime_ns
    os.utime(env, ns=(before - 10**9, before - 10**9))
    _run(tmp_path, "/h")
    assert env.stat().st_mtime_ns == before - 10**9


def test_a_missing_env_is_created_with_the_home(tmp_path):
    _run(tmp_path, "/h")
    assert (tmp_path / ".env").read_text() == "DAGSTER_HOME=/h\n"
