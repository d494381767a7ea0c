"""Recovery from a killed run: a raw run's process is SIGKILLed while it holds the ``polygon_api``
slot, and the next raw run completes once the stale-run sweeper has evaluated; ``smallcaps doctor``
shows and frees a held slot; concurrent first uses of a fresh instance leave it working.

Every instance here is a SQLite ``DAGSTER_HOME`` with the project's ``dagster.yaml`` (pools
``default_limit: 1``, ``granularity: op``), as ``make install`` links it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData

from smallcaps_assets import instance_setup, settings
from smallcaps_assets.cli import main as smallcaps
from smallcaps_assets.defs import recovery

PROJECT_CONFIG = settings.project_root() / "dagster.yaml"
POOL = "polygon_api"
SESSION = "2024-03-05"
DAGSTER = str(Path(sys.executable).with_name("dagster"))

# Run A: the project's raw daily bars for one session, in process (as `smallcaps demo` runs
# them), with every request to the market source hanging, so the step sits holding its slot.
HANGING_RUN = textwrap.dedent(
    """
    import asyncio, sys
    import httpx
    import dagster as dg

    async def _hang(self, *args, **kwargs):
        await asyncio.sleep(3600)

    httpx.AsyncClient.send = _hang

    from smallcaps_assets.definitions import defs

    assets = list(defs.get_repository_def().assets_defs_by_key.values())
    with dg.DagsterInstance.get() as instance:
        dg.materialize(assets, instance=instance, partition_key=sys.argv[1],
                       selection=[dg.AssetKey(["raw", "daily_bars"])], raise_on_error=False)
    """
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(PROJECT_CONFIG)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SMALLCAPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "40")
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "11")
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.delenv(recovery.ONE_HOST_ENV, raising=False)
    return home


def _wait_for(what: str, condition: Callable[[], object], timeout: float, *procs) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"process exited ({proc.returncode}) before {what}:\n{out[-3000:]}")
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def _holds(instance: dg.DagsterInstance, claimed: bool) -> list[recovery.SlotHold]:
    return [h for h in recovery.slot_holds(instance) if h.pool == POOL and h.claimed is claimed]


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    # cwd outside the checkout: the dagster CLI would read the checkout's .env (DAGSTER_HOME).
    return subprocess.Popen(
        args,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_raw_run_killed_holding_the_pool_slot_no_longer_blocks_the_next_raw_run(
    home, tmp_path, processes
):
    script = tmp_path / "hanging_run.py"
    script.write_text(HANGING_RUN)
    instance = dg.DagsterInstance.get()
    killed = _spawn([sys.executable, str(script), SESSION], tmp_path)
    processes.append(killed)
    [held] = _wait_for(  # type: ignore[misc]
        "run A to claim the polygon_api slot", lambda: _holds(instance, True), 90, killed
    )
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()

    # The wedge: the killed run stays STARTED and keeps the pool's only slot.
    run_a = instance.get_run_by_id(held.run_id)
    assert run_a is not None
    assert run_a.status == dg.DagsterRunStatus.STARTED
    assert [h.run_id for h in _holds(instance, True)] == [run_a.run_id]

    # The next raw run, as an operator would start it: it queues for the pool's slot.
    command = [DAGSTER, "asset", "materialize", "-m", "smallcaps_assets.definitions"]
    nxt = _spawn([*command, "--select", "raw/daily_bars", "--partition", SESSION], tmp_path)
    processes.append(nxt)
    [waiting] = _wait_for(  # type: ignore[misc]
        "run B to queue for the slot", lambda: _holds(instance, False), 90, nxt
    )
    assert waiting.run_id != run_a.run_id
    assert [h.run_id for h in _holds(instance, True)] == [run_a.run_id]

    # One tick of the sweeper, as the daemon evaluates it every 45 s.
    result = recovery.stale_run_sweeper(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SkipReason)
    assert run_a.run_id[:8] in (result.skip_message or "")

    out, _ = nxt.communicate(timeout=90)
    assert nxt.returncode == 0, out[-3000:]
    run_a = instance.get_run_by_id(run_a.run_id)
    assert run_a is not None
    assert run_a.status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(run_a.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert "is gone" in (failure[-1].message or "")
    run_b = instance.get_run_by_id(waiting.run_id)
    assert run_b is not None
    assert run_b.status == dg.DagsterRunStatus.SUCCESS
    assert recovery.slot_holds(instance) == []
    materialized = instance.get_materialized_partitions(dg.AssetKey(["raw", "daily_bars"]))
    assert materialized == {SESSION}
    # A second tick finds nothing to do.
    again = recovery.stale_run_sweeper(dg.build_sensor_context(instance=instance))
    assert "no run with a dead process" in (again.skip_message or "")  # type: ignore[union-attr]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _started_run(instance: dg.DagsterInstance, pid: int, *, claims: bool) -> dg.DagsterRun:
    """A STARTED run whose recorded process is ``pid``, asking for the polygon_api slot (and
    getting it when ``claims``: the pool has one slot)."""
    run = instance.add_run(
        dg.DagsterRun(job_name="daily_ingest", status=dg.DagsterRunStatus.STARTED)
    )
    instance.report_engine_event(
        f"Executing steps in process (pid: {pid})", run, EngineEventData.in_process(pid)
    )
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(POOL)
    claim = storage.claim_concurrency_slot(POOL, run.run_id, "raw__daily_bars")
    assert claim.is_claimed is claims
    return run


def test_doctor_shows_the_slot_held_by_a_dead_run_and_fix_frees_it(home, capsys):
    instance = dg.DagsterInstance.get()
    dead = _started_run(instance, _dead_pid(), claims=True)
    alive = _started_run(instance, os.getpid(), claims=False)  # queued behind the dead run

    assert smallcaps(["doctor"]) == 1
    report = capsys.readouterr().out
    assert "polygon_api     1/1 slots held" in report
    assert f"holds  run {dead.run_id} STARTED step raw__daily_bars: run process" in report
    assert "-> STALE (process gone)" in report
    assert "smallcaps doctor --fix" in report
    assert "SqliteRunStorage" in report
    assert "no heartbeat" in report
    # The live run is not touched.
    assert f"{alive.run_id} STARTED" in report
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.STARTED  # type: ignore[union-attr]

    assert smallcaps(["doctor", "--fix"]) == 0
    fixed = capsys.readouterr().out
    assert f"marked run {dead.run_id} failed" in fixed
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]
    assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED  # type: ignore[union-attr]
    assert all(h.run_id != dead.run_id for h in recovery.slot_holds(instance))

    assert smallcaps(["doctor"]) == 0
    assert "healthy" in capsys.readouterr().out


def test_doctor_reports_a_slot_leaked_by_a_finished_run_and_frees_it(home, capsys):
    instance = dg.DagsterInstance.get()
    run = _started_run(instance, os.getpid(), claims=True)
    instance.report_run_failed(run, "failed without freeing its slot")
    assert smallcaps(["doctor"]) == 1
    assert "FAILURE but still holds pool slot(s) of polygon_api" in capsys.readouterr().out
    assert smallcaps(["doctor", "--fix"]) == 0
    assert recovery.slot_holds(instance) == []


def _alembic_heads(home: Path) -> dict[str, list[str]]:
    heads = {}
    for name in instance_setup.SQLITE_FILES:
        with sqlite3.connect(home / name) as db:
            heads[name] = [row[0] for row in db.execute("select version_num from alembic_version")]
    return heads


def test_concurrent_first_uses_of_a_fresh_instance_leave_one_schema_head(tmp_path):
    # Without the lock this left schedules.db with two alembic heads about one time in five.
    homes = []
    for trial in range(2):
        home = tmp_path / f"home{trial}"
        home.mkdir()
        (home / "dagster.yaml").symlink_to(PROJECT_CONFIG)
        homes.append(home)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "smallcaps_assets.instance_setup", str(home)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for home in homes
        for _ in range(3)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
    for home in homes:
        heads = _alembic_heads(home)
        assert all(len(revs) == 1 for revs in heads.values()), heads
        assert len({revs[0] for revs in heads.values()}) == 1, heads
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert instance.get_runs_count() == 0


def test_the_sweeper_is_part_of_the_code_location_and_on_by_default():
    from smallcaps_assets.definitions import defs

    sensor = defs.resolve_sensor_def(recovery.SWEEPER_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert 30 <= sensor.minimum_interval_seconds <= 60  # type: ignore[operator]
    assert not sensor.targets  # it requests no run; it only repairs the instance
