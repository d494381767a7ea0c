"""The Dagster instance the commands run against."""

from __future__ import annotations

import os
from pathlib import Path

from smallcaps_assets import instance_setup, settings


def ensure_instance() -> Path:
    """Point Dagster at the project's instance folder, with the project's dagster.yaml."""
    home = Path(
        os.environ.get("DAGSTER_HOME") or settings.project_root() / ".dagster_home"
    ).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    project_config = settings.project_root() / "dagster.yaml"
    if not config.exists() and project_config.exists():
        config.symlink_to(project_config)
    os.environ["DAGSTER_HOME"] = str(home)
    instance_setup.prepare(home)  # first use serialized: concurrent first runs can't corrupt it
    return home
