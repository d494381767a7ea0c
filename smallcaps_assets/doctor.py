"""``smallcaps doctor``: the instance's health, held pool slots and stuck runs; ``--fix`` frees them.

Exit 0 when nothing needs attention, 1 when a problem was found and not fixed. Problems: a run whose
process is gone (``--fix`` marks it failed and frees its slots, as the ``stale_run_sweeper`` sensor
does every 45 s under the daemon), a slot held by a finished run (``--fix`` frees it), and a run
that has logged nothing for ``--stuck-minutes`` (reported only: its process still runs, or none was
recorded, so nothing proves it dead; stop it from the UI).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

import dagster as dg

from smallcaps_assets.defs import recovery

# Dagster's daemon beats every 30 s; older than this the daemon is not running.
HEARTBEAT_STALE_SECONDS = 120


def _ago(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "never"
    seconds = max(0, int(now - timestamp))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _name(obj: object) -> str:
    return type(obj).__name__


def _instance_lines(instance: dg.DagsterInstance, now: float) -> list[str]:
    launcher = instance.run_launcher
    if launcher.supports_check_run_worker_health:
        monitoring = "worker health checks: Dagster's run monitoring fails dead runs"
    elif recovery.pids_are_local(instance):
        monitoring = f"no worker health checks: the {recovery.SWEEPER_NAME} sensor checks pids"
    else:
        monitoring = (
            "no worker health checks, and runs may be on other hosts: pids are not checked "
            f"(set {recovery.ONE_HOST_ENV}=1 if every run is on this host)"
        )
    beats = instance.get_daemon_heartbeats()
    if beats:
        daemon = ", ".join(
            f"{kind} {_ago(beat.timestamp, now)}"
            + (" (stale)" if now - beat.timestamp > HEARTBEAT_STALE_SECONDS else "")
            for kind, beat in sorted(beats.items())
        )
    else:
        daemon = "no heartbeat: no daemon has run (schedules and sensors need `make ui`)"
    return [
        f"instance     {os.environ.get('DAGSTER_HOME', '(DAGSTER_HOME not set)')}",
        f"  storage    runs {_name(instance.run_storage)}, events "
        f"{_name(instance.event_log_storage)}, schedules {_name(instance.schedule_storage)}",
        f"  launcher   {_name(launcher)} ({monitoring})",
        f"  queue      {_name(instance.run_coordinator)}",
        f"  daemon     {daemon}",
    ]


def _diagnose(
    instance: dg.DagsterInstance, stuck_seconds: float, now: float
) -> tuple[list[str], list[recovery.Verdict], list[str]]:
    """(report lines, verdicts the sweeper would act on, problems it cannot fix)."""
    states = recovery.instance_run_states(instance)
    check_pids = recovery.pids_are_local(instance)
    verdicts = recovery.judge_runs(states, recovery.process_alive, check_pids=check_pids)
    by_run = {v.run.run_id: v for v in verdicts}
    lines = ["pools"]
    limits = recovery.pool_limits(instance)
    holds = recovery.slot_holds(instance)
    if not limits:
        lines.append("  none used yet")
    for pool, limit in sorted(limits.items()):
        claimed = [h for h in holds if h.pool == pool and h.claimed]
        waiting = [h for h in holds if h.pool == pool and not h.claimed]
        lines.append(
            f"  {pool:<15} {len(claimed)}/{limit if limit is not None else '-'} slots held"
            + (f", {len(waiting)} step(s) waiting" if waiting else "")
        )
        for hold in [*claimed, *waiting]:
            state = next((s for s in states if s.run_id == hold.run_id), None)
            status = state.status.value if state else "?"
            verdict = by_run.get(hold.run_id)
            note = f": {verdict.reason}" if verdict else ""
            lines.append(
                f"      {'holds' if hold.claimed else 'waits'}  run {hold.run_id} {status} "
                f"step {hold.step_key}{note}"
            )
    unfinished = [s for s in states if s.status in recovery.UNFINISHED]
    queued = instance.get_runs_count(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    lines += ["runs", f"  {len(unfinished)} in progress, {queued} queued"]
    unfixable: list[str] = []
    for state in unfinished:
        verdict = by_run.get(state.run_id)
        process = (
            f"run process {state.run_process.pid}"
            if state.run_process
            else "no run process recorded yet"
        )
        note = verdict.reason if verdict else process
        silent = now - state.last_event_at if state.last_event_at is not None else 0.0
        flag = ""
        if verdict and verdict.action == "fail":
            flag = "  -> STALE (process gone)"
        elif silent > stuck_seconds:
            flag = f"  -> STUCK? nothing logged for {int(silent // 60)} min"
            unfixable.append(
                f"run {state.run_id} has logged nothing since {_ago(state.last_event_at, now)} "
                f"({note}); not proven dead, so not fixed: stop it from the UI if it hangs"
            )
        lines.append(
            f"  {state.run_id} {state.status.value:<10} {state.job_name}  last event "
            f"{_ago(state.last_event_at, now)}  {note}{flag}"
        )
    return lines, verdicts, unfixable


def _problems(verdicts: list[recovery.Verdict]) -> list[str]:
    out = []
    for v in verdicts:
        if v.action == "fail":
            held = f" (holds {recovery.slots_text(v.run)})" if v.run.holds else ""
            out.append(f"run {v.run.run_id} {v.run.status.value}: {v.reason}{held}")
        elif v.action == "free":
            out.append(f"run {v.run.run_id}: {v.reason}")
        else:
            out.append(f"run {v.run.run_id}: {v.reason} (not fixable until that process ends)")
    return out


def run(*, fix: bool, stuck_minutes: float = 60.0, out: TextIO | None = None) -> int:
    """Print the report; with ``fix``, act on dead runs and leaked slots. Returns the exit code."""
    out = out or sys.stdout
    now = time.time()
    with dg.DagsterInstance.get() as instance:
        lines = _instance_lines(instance, now)
        report, verdicts, unfixable = _diagnose(instance, stuck_minutes * 60, now)
        lines += report
        problems = _problems(verdicts) + unfixable
        if not problems:
            lines += ["healthy: no dead run, no leaked slot, no stuck run"]
            print("\n".join(lines), file=out)
            return 0
        lines += ["problems", *(f"  {p}" for p in problems)]
        if not fix:
            if any(v.action != "wait" for v in verdicts):
                lines.append("  fix with: smallcaps doctor --fix")
            print("\n".join(lines), file=out)
            return 1
        done = recovery.apply_verdicts(instance, verdicts)
        lines.append("fixed")
        lines += [f"  marked run {run_id} failed" for run_id in done.failed]
        lines += [f"  freed the pool slots of run {run_id}" for run_id in done.freed]
        _, left, unfixable = _diagnose(instance, stuck_minutes * 60, time.time())
        remaining = _problems(left) + unfixable
        if remaining:
            lines += ["still wrong", *(f"  {p}" for p in remaining)]
        print("\n".join(lines), file=out)
        return 1 if remaining else 0
