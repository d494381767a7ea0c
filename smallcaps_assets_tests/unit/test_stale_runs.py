"""Which runs the stale-run sweeper acts on, given run records and a liveness test."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dagster as dg
import pytest

from smallcaps_assets.defs.recovery import (
    Process,
    RunState,
    SlotHold,
    judge_runs,
    process_alive,
)

S = dg.DagsterRunStatus
LIVE = {101, 202}


def alive(process: Process) -> bool:
    return process.pid in LIVE


def run(status: S, pid: int | None = None, steps: tuple[int, ...] = (), holds: bool = True):
    return RunState(
        run_id=f"run-{status.value}-{pid}-{steps}",
        status=status,
        run_process=Process(pid, 1.0) if pid is not None else None,
        step_processes=tuple(Process(p, 2.0) for p in steps),
        holds=(SlotHold("polygon_api", "r", "raw__daily_bars", True),) if holds else (),
    )


def actions(*runs: RunState, check_pids: bool = True) -> list[tuple[str, str]]:
    return [(v.run.run_id, v.action) for v in judge_runs(runs, alive, check_pids=check_pids)]


@pytest.mark.parametrize("status", [S.STARTED, S.STARTING, S.NOT_STARTED, S.CANCELING])
def test_an_unfinished_run_whose_process_is_gone_is_failed(status):
    dead = run(status, pid=999)
    assert actions(dead) == [(dead.run_id, "fail")]
    # Also when it holds no slot: it would block the automation's in-progress checks.
    dead_free = run(status, pid=999, holds=False)
    assert actions(dead_free) == [(dead_free.run_id, "fail")]


def test_a_run_whose_process_lives_is_left_alone():
    assert actions(run(S.STARTED, pid=101), run(S.STARTING, pid=202)) == []


def test_a_run_without_a_recorded_process_is_left_alone():
    # Just created, or still starting: Dagster's run monitoring times out runs that never start.
    assert actions(run(S.STARTED), run(S.STARTING), run(S.NOT_STARTED)) == []


def test_queued_runs_have_no_process_and_are_never_failed():
    assert actions(run(S.QUEUED, pid=999)) == []


def test_a_dead_run_whose_step_process_still_runs_waits_for_it():
    orphaned = run(S.STARTED, pid=999, steps=(101,))
    assert actions(orphaned) == [(orphaned.run_id, "wait")]
    finished_steps = run(S.STARTED, pid=999, steps=(998,))
    assert actions(finished_steps) == [(finished_steps.run_id, "fail")]


def test_a_finished_run_still_holding_a_slot_has_it_freed():
    for status in (S.SUCCESS, S.FAILURE, S.CANCELED):
        leaked = run(status, pid=101)  # even with its pid (reused) alive
        assert actions(leaked) == [(leaked.run_id, "free")]
    assert actions(run(S.SUCCESS, pid=999, holds=False)) == []
    still_stepping = run(S.FAILURE, pid=999, steps=(202,))
    assert actions(still_stepping) == [(still_stepping.run_id, "wait")]


def test_without_local_pids_only_finished_runs_are_judged():
    leaked = run(S.FAILURE, pid=999)
    assert actions(run(S.STARTED, pid=999), leaked, check_pids=False) == [(leaked.run_id, "free")]


def test_process_alive_on_this_host():
    me = Process(os.getpid(), time.time())
    assert process_alive(me)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(Process(child.pid, time.time()))


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs procfs")
def test_a_pid_reused_by_a_later_process_counts_as_dead():
    # This process started long after an event "recorded" an hour ago with its pid.
    assert not process_alive(Process(os.getpid(), time.time() - 3600))
