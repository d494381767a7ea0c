"""Recovery from run processes that died without reporting (``kill -9``, OOM, a machine reset).

The local run launcher (``DefaultRunLauncher``) cannot report a run worker's health, so Dagster's
run monitoring never notices such a run: it stays STARTED and keeps its pool slots, and every later
step of that pool (the ``polygon_api`` raw steps, the 16:45 schedule) waits forever. The
``stale_run_sweeper`` sensor stands in for the missing health check.

How a run's process is found: Dagster records the pid of the process that executes a run as
run-level engine events. The run worker started by the launcher logs "Started process for run
(pid: N)", the executors log "Executing steps in process (pid: N)" (in-process, e.g. ``smallcaps
demo``) or "Executing steps using multiprocess executor: parent process (pid: N)" (``dagster asset
materialize``, launched runs), each with ``pid`` in the event's metadata. Step subprocesses log
"Executing step ... in subprocess" (``STEP_WORKER_STARTED``) with their own pid. A run is stale
when the last recorded run process is gone and no step process of an unfinished step is alive.

A pid is alive when ``/proc/<pid>`` exists, is no zombie, and its process started no later than
the event that named it (a later start means the pid was reused). This only means something on
the host that ran the run, so pids are checked only where every run of the instance runs on this
host: SQLite storage (one machine by construction) or ``SMALLCAPS_RUNS_ON_ONE_HOST=1`` (e.g.
PostgreSQL on one machine). A launcher with worker health checks (``K8sRunLauncher``) is left to
Dagster's run monitoring. Slots held by runs that have already finished are freed everywhere.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

SWEEPER_NAME = "stale_run_sweeper"
SWEEP_INTERVAL_SECONDS = 45
ONE_HOST_ENV = "SMALLCAPS_RUNS_ON_ONE_HOST"
# A process's start time read from /proc is good to a clock tick, the boot time to a second.
START_TIME_SLACK_SECONDS = 2.0

Status = dg.DagsterRunStatus
# Runs that may have a process: QUEUED runs wait in the coordinator and have none yet.
UNFINISHED = (Status.NOT_STARTED, Status.STARTING, Status.STARTED, Status.CANCELING)
FINISHED = (Status.SUCCESS, Status.FAILURE, Status.CANCELED)
_STEP_ENDS = {
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
    dg.DagsterEventType.STEP_UP_FOR_RETRY,
}
_PID_EVENTS = {dg.DagsterEventType.ENGINE_EVENT, dg.DagsterEventType.STEP_WORKER_STARTED}


@dataclass(frozen=True)
class Process:
    """A process named in a run's event log: its pid and when the event was stored."""

    pid: int
    recorded_at: float


Liveness = Callable[[Process], bool]


@dataclass(frozen=True)
class SlotHold:
    """One pool slot claimed by a run's step, or a step of it queued for one."""

    pool: str
    run_id: str
    step_key: str
    claimed: bool  # False: pending (queued for a slot, or assigned one it has not taken yet)


@dataclass(frozen=True)
class RunState:
    """What the instance says about one run, as far as its liveness goes."""

    run_id: str
    status: dg.DagsterRunStatus
    job_name: str = ""
    run_process: Process | None = None
    # Step subprocesses of steps that have not finished (empty for in-process runs).
    step_processes: tuple[Process, ...] = ()
    last_event_at: float | None = None
    holds: tuple[SlotHold, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """What to do with a run: ``fail`` (its process is gone: mark it failed, free its slots),
    ``free`` (it has finished but still holds slots) or ``wait`` (not provably dead yet)."""

    run: RunState
    action: str
    reason: str


def judge_runs(
    runs: Iterable[RunState], alive: Liveness, *, check_pids: bool = True
) -> list[Verdict]:
    """The runs that need action or attention, given a liveness test for recorded processes.

    * An unfinished run whose last recorded run process is dead, and none of whose unfinished
      steps' subprocesses is alive, is ``fail``.
    * A run process that is gone while a step subprocess still runs (an orphan that may still be
      calling the API) is ``wait``: its slot is freed once that process is gone too.
    * A finished run that still holds or queues for slots is ``free`` unless a step process of it
      is alive.
    * A run without a recorded process (just created, or still starting) is left alone: Dagster's
      run monitoring fails runs that take too long to start.
    With ``check_pids=False`` (the runs may live on other hosts) only finished runs are judged.
    """
    verdicts: list[Verdict] = []
    for run in runs:
        live_steps = [p.pid for p in run.step_processes if alive(p)] if check_pids else []
        if run.status in FINISHED:
            if not run.holds:
                continue
            if live_steps:
                verdicts.append(
                    Verdict(run, "wait", f"finished, but step process {live_steps} still runs")
                )
            else:
                verdicts.append(
                    Verdict(run, "free", f"{run.status.value} but still holds {slots_text(run)}")
                )
            continue
        if run.status not in UNFINISHED or not check_pids or run.run_process is None:
            continue
        if alive(run.run_process):
            continue
        gone = f"run process {run.run_process.pid} is gone"
        if live_steps:
            verdicts.append(Verdict(run, "wait", f"{gone}, step process {live_steps} still runs"))
        else:
            verdicts.append(Verdict(run, "fail", gone))
    return verdicts


def slots_text(run: RunState) -> str:
    pools = sorted({h.pool for h in run.holds})
    return f"pool slot(s) of {', '.join(pools)}"


# -- liveness on this host -------------------------------------------------------------------------


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_alive(process: Process) -> bool:
    """Whether the process a run's event log names still runs on this host."""
    stat = Path(f"/proc/{process.pid}/stat")
    boot = _boot_time()
    if boot is None:  # no procfs: existence only
        try:
            os.kill(process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        text = stat.read_text()
    except OSError:
        return False
    # Fields after the parenthesised command name: state is the 3rd, starttime the 22nd.
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] in {"Z", "X"}:
        return False
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started <= process.recorded_at + START_TIME_SLACK_SECONDS


# -- reading the instance ---------------------------------------------------------------------------


def slot_holds(instance: dg.DagsterInstance) -> list[SlotHold]:
    """Every claimed pool slot and every step queued for one, across all pools."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holds: list[SlotHold] = []
    infos = storage.get_concurrency_infos(sorted(storage.get_concurrency_keys()))
    for pool, info in sorted(infos.items()):
        claimed = {(s.run_id, s.step_key) for s in info.claimed_slots}
        holds.extend(SlotHold(pool, run_id, step, True) for run_id, step in sorted(claimed))
        holds.extend(
            SlotHold(pool, p.run_id, p.step_key, False)
            for p in info.pending_steps
            if (p.run_id, p.step_key) not in claimed
        )
    return holds


def pool_limits(instance: dg.DagsterInstance) -> dict[str, int | None]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    infos = storage.get_concurrency_infos(sorted(storage.get_concurrency_keys()))
    return {pool: info.limit for pool, info in infos.items()}


def _pid(entry: dg.EventLogEntry) -> int | None:
    event = entry.dagster_event
    data = event.event_specific_data if event else None
    metadata = getattr(data, "metadata", None) or {}
    value = metadata.get("pid")
    text = getattr(value, "text", value)
    try:
        return int(text) if text is not None else None
    except (TypeError, ValueError):
        return None


def run_state(
    instance: dg.DagsterInstance, run: dg.DagsterRun, holds: Sequence[SlotHold] = ()
) -> RunState:
    """A run's recorded processes and last event, read from its event log."""
    run_process: Process | None = None
    step_pids: dict[str, Process] = {}
    ended: set[str] = set()
    for entry in instance.all_logs(run.run_id, of_type=_PID_EVENTS | _STEP_ENDS):
        event_type = entry.dagster_event_type
        if event_type in _STEP_ENDS and entry.step_key:
            ended.add(entry.step_key)
            continue
        pid = _pid(entry)
        if pid is None:
            continue
        if entry.step_key is None and event_type == dg.DagsterEventType.ENGINE_EVENT:
            run_process = Process(pid, entry.timestamp)  # the last one wins (a resumed run)
        elif entry.step_key is not None and event_type == dg.DagsterEventType.STEP_WORKER_STARTED:
            step_pids[entry.step_key] = Process(pid, entry.timestamp)
    last = instance.event_log_storage.get_records_for_run(run.run_id, ascending=False, limit=1)
    return RunState(
        run_id=run.run_id,
        status=run.status,
        job_name=run.job_name,
        run_process=run_process,
        step_processes=tuple(p for step, p in step_pids.items() if step not in ended),
        last_event_at=last.records[0].timestamp if last.records else None,
        holds=tuple(h for h in holds if h.run_id == run.run_id),
    )


def instance_run_states(instance: dg.DagsterInstance) -> list[RunState]:
    """Every unfinished (non-queued) run and every run that holds or queues for a pool slot."""
    holds = slot_holds(instance)
    runs = {
        record.dagster_run.run_id: record.dagster_run
        for record in instance.get_run_records(filters=dg.RunsFilter(statuses=list(UNFINISHED)))
    }
    holders = sorted({h.run_id for h in holds} - set(runs))
    if holders:
        for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=holders)):
            runs[record.dagster_run.run_id] = record.dagster_run
    by_run: dict[str, list[SlotHold]] = defaultdict(list)
    for hold in holds:
        by_run[hold.run_id].append(hold)
    states = [run_state(instance, run, by_run[run_id]) for run_id, run in runs.items()]
    # Slots of a run the instance no longer has (deleted) are orphans: treat it as finished.
    states.extend(
        RunState(run_id=run_id, status=Status.CANCELED, holds=tuple(by_run[run_id]))
        for run_id in holders
        if run_id not in runs
    )
    return states


def pids_are_local(instance: dg.DagsterInstance) -> bool:
    """Whether every run of this instance runs on this host, so a recorded pid can be checked."""
    if instance.run_launcher.supports_check_run_worker_health:
        return False  # Dagster's run monitoring asks the launcher instead
    if os.environ.get(ONE_HOST_ENV, "").strip() in {"1", "true", "yes"}:
        return True
    return type(instance.run_storage).__name__.startswith("Sqlite")


# -- acting -------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    verdicts: list[Verdict] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    freed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.verdicts:
            return "no run with a dead process, and no slot held by a finished run"
        parts = [f"{v.run.run_id[:8]} {v.action}: {v.reason}" for v in self.verdicts]
        return "; ".join(parts)


def apply_verdicts(instance: dg.DagsterInstance, verdicts: Iterable[Verdict]) -> SweepReport:
    """Mark dead runs failed (or canceled, if they were canceling) and free their slots."""
    from dagster._core.events import JobFailureData, RunFailureReason

    report = SweepReport()
    for verdict in verdicts:
        report.verdicts.append(verdict)
        if verdict.action == "wait":
            continue
        run_id = verdict.run.run_id
        if verdict.action == "fail":
            current = instance.get_run_by_id(run_id)
            if current is None or current.status != verdict.run.status:
                continue  # it moved on since it was read: judge it again next time
            message = (
                f"{verdict.reason}: marked failed by {SWEEPER_NAME} (the local run launcher "
                "reports no worker health); its pool slots were freed."
            )
            if current.status == Status.CANCELING:
                instance.report_run_canceled(current, message)
            else:
                # A crashed worker, not a failed step: run retries may re-launch it.
                instance.report_run_failed(
                    current,
                    message,
                    JobFailureData(
                        error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION
                    ),
                )
            report.failed.append(run_id)
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        report.freed.append(run_id)
    return report


def sweep(instance: dg.DagsterInstance, alive: Liveness = process_alive) -> SweepReport:
    """One pass: judge every unfinished or slot-holding run and act on the verdicts."""
    verdicts = judge_runs(instance_run_states(instance), alive, check_pids=pids_are_local(instance))
    return apply_verdicts(instance, verdicts)


@dg.sensor(
    name=SWEEPER_NAME,
    minimum_interval_seconds=SWEEP_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks runs whose process died without reporting (kill -9, OOM) as failed and "
    "frees the pool slots they hold, so a killed raw step never blocks the schedule. Also frees "
    "slots still held by finished runs.",
)
def stale_run_sweeper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    started = time.monotonic()
    report = sweep(context.instance)
    for verdict in report.verdicts:
        context.log.warning(f"run {verdict.run.run_id}: {verdict.action}: {verdict.reason}")
    return dg.SkipReason(f"{report.summary()} ({time.monotonic() - started:.1f} s)")
