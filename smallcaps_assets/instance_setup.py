"""Create a fresh instance's storage once, under a file lock.

Dagster creates a SQLite instance's tables and stamps their schema revision the first time a
process opens the instance. Two processes doing that at once (two first runs, or the webserver,
daemon and code server that ``dagster dev`` starts together) can both stamp ``schedules.db`` and
leave it with two alembic heads, after which no ``dagster`` command opens the instance. So the
first use happens here, one process at a time: ``smallcaps`` does it before any run or server
starts, and ``make install`` runs ``python -m smallcaps_assets.instance_setup`` once.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".instance-setup.lock"
READY_NAME = ".instance-ready"
SQLITE_FILES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): unserialized, as Dagster itself is
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ready(home: Path) -> bool:
    marker = home / READY_NAME
    if not marker.exists():
        return False
    # The files the instance had when it was set up (none for PostgreSQL) must still be there.
    return all((home / name).exists() for name in marker.read_text().split())


def prepare(home: Path) -> None:
    """Open the instance in ``home`` once (creating and stamping its storage), serialized."""
    home.mkdir(parents=True, exist_ok=True)
    if _ready(home):
        return
    with _locked(home / LOCK_NAME):
        if _ready(home):  # another process set it up while this one waited
            return
        import dagster as dg

        # Opening the instance creates (or migrates) the run, event-log and schedule storage.
        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs_count()
        present = [name for name in SQLITE_FILES if (home / name).exists()]
        (home / READY_NAME).write_text("\n".join(present) + "\n")


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ["DAGSTER_HOME"])
    prepare(target.resolve())
    print(f"instance ready: {target}")
