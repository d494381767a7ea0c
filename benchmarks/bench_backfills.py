"""Backfills of the daily graph: one single-run backfill versus one run per partition.

* What runs: every daily-partitioned asset (the raw datasets incl. raw/minute_bars, processed/*,
  features/events, labels/events: 17 assets with their checks). research/watchlist is left out:
  it needs a trained monthly model. Each mode gets a fresh data root on the same small simulated
  market and a fresh in-memory Dagster instance (``DagsterInstance.ephemeral()``: the two modes
  compare Dagster's run model, not disk speed), in its own interpreter so its peak RSS is its own.
  The first per-partition runs are repeated on a SQLite-backed instance
  (``DagsterInstance.local_temp``, the storage of the project's dagster.yaml) to show what that
  storage adds per event. Runs go through ``dg.materialize`` (the in-process executor), like
  ``smallcaps demo``.
* Single run: the whole daily graph for N sessions as one ranged run (every asset has
  ``BackfillPolicy.single_run()``, so one run can hold the whole graph). Per partition: the same
  N sessions as N runs, one per session in order, each run materializing the whole graph. Both
  first ingest the raw datasets of the session before the window, untimed: the first session's
  universe screens on the previous session's bars (the demo's warm-up). Every partition file of
  the two data roots is compared (same partitions, equal frames) before any time is reported.
* Incremental: after each backfill, one run of the whole graph for each following session.
* Scaling: single-run backfills of N/4 and N/2 sessions on fresh roots (checked against the
  N-session root); for the per-partition mode the first N/4 and N/2 runs of the N-run backfill
  are exactly those backfills.
* Where the time goes: seconds inside the asset bodies (``compute``), seconds the instance spends
  handling events (``event_writes``: planned/step/materialization/check events and their SQLite
  writes), and the rest of Dagster (``other``: building and planning the run, data-version and
  check lookups in the instance, serializing events).

Measured (2 cores, 40 tickers, 60 sessions; RESULTS.md has the figures of the last run): the
per-partition mode costs about 2.5 times the single-run backfill, more on SQLite. A one-session
run of the 17-asset graph writes ~230 events to the instance (planned events for every asset and
check, start/output/success per step, materializations, check evaluations, logs) and looks up
data versions and check targets step by step; that fixed per-run bookkeeping is about half of
each per-partition run. The single-run backfill pays the per-step part once and only the
per-partition events (materializations and check evaluations, ~37 per session) for each extra
session.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import memory

PROJECT = Path(__file__).resolve().parents[1]
# Every daily-partitioned asset except research/watchlist (it needs a trained monthly model).
DAILY_LAYERS = ("raw", "processed", "features", "labels")
FIRST_SESSION = dt.date(2024, 1, 2)
SEED = 7
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class Sizes:
    tickers: int
    sessions: int
    # Single-run backfills of these many sessions as well: cost and memory at 1x, 2x, 4x.
    scaling_sessions: tuple[int, ...]
    # The first per-partition runs again on a SQLite-backed instance (the project's storage).
    sqlite_sessions: int
    # New sessions added after each backfill, one run each.
    incremental_sessions: int


FULL = Sizes(
    tickers=40, sessions=60, scaling_sessions=(15, 30), sqlite_sessions=3, incremental_sessions=3
)
QUICK = Sizes(
    tickers=30, sessions=2, scaling_sessions=(), sqlite_sessions=0, incremental_sessions=1
)
INSTANCES = ("ephemeral", "sqlite")


# -- the child process: one backfill on a fresh data root and a fresh instance ----------------
class Stopwatch:
    """Seconds spent in, and calls of, the functions it wraps."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(
        self, fn: Callable[..., Any], *, excluding: Stopwatch | None = None
    ) -> Callable[..., Any]:
        """``excluding``: time another stopwatch counts while ``fn`` runs (events an asset body
        logs) is not counted twice. A generator function (an asset runner that yields its
        results) is timed while it computes each item, not while its consumer handles one."""

        def measure(started: float, nested_before: float) -> None:
            nested = (excluding.seconds if excluding else 0.0) - nested_before
            self.seconds += time.perf_counter() - started - nested

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            nested_before = excluding.seconds if excluding else 0.0
            try:
                return fn(*args, **kwargs)
            finally:
                measure(started, nested_before)
                self.calls += 1

        def timed_generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            self.calls += 1
            generator = fn(*args, **kwargs)
            while True:
                started = time.perf_counter()
                nested_before = excluding.seconds if excluding else 0.0
                try:
                    item = next(generator)
                except StopIteration as stop:
                    return stop.value
                finally:
                    measure(started, nested_before)
                yield item

        return timed_generator if inspect.isgeneratorfunction(fn) else timed


def sessions_from(first: dt.date, count: int) -> list[str]:
    from smallcaps_assets.core import calendar

    days = [first]
    while len(days) < count:
        days.append(calendar.next_session(days[-1]))
    return [d.isoformat() for d in days]


def _backfill(
    mode: str, keys: list[str], instance_kind: str, instance_dir: str, incremental: int
) -> dict[str, Any]:
    """One backfill in this interpreter; the environment names the data root and the market."""
    import dagster as dg

    from smallcaps_assets.core import calendar
    from smallcaps_assets.definitions import defs
    from smallcaps_assets.defs import processed, raw

    rss_after_import_kib = memory.peak_rss_kib()
    instance = (
        dg.DagsterInstance.local_temp(instance_dir, overrides={"telemetry": {"enabled": False}})
        if instance_kind == "sqlite"
        else dg.DagsterInstance.ephemeral()
    )
    repo = defs.get_repository_def()
    all_assets = list(repo.assets_defs_by_key.values())
    daily_graph = [
        key
        for key, asset in repo.assets_defs_by_key.items()
        if key.path[0] in DAILY_LAYERS and asset.partitions_def is not None
    ]
    raw_datasets = [dataset.key for dataset in raw.RAW_DATASETS]

    # The asset bodies call these module globals, so wrapping them times exactly our code.
    compute, events = Stopwatch(), Stopwatch()
    raw.materialize_raw = compute.wrap(  # type: ignore[assignment]
        raw.materialize_raw, excluding=events
    )
    processed.materialize_processed = compute.wrap(  # type: ignore[assignment]
        processed.materialize_processed, excluding=events
    )
    instance.handle_new_event = events.wrap(instance.handle_new_event)  # type: ignore[method-assign]
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

    def one_run(selection: list[dg.AssetKey], run_keys: list[str]) -> dict[str, Any]:
        compute_before, events_before, calls_before = compute.seconds, events.seconds, events.calls
        ranged = len(run_keys) > 1
        started = time.perf_counter()
        result = dg.materialize(
            all_assets,
            instance=instance,
            selection=selection,
            partition_key=None if ranged else run_keys[0],
            tags={RANGE_START_TAG: run_keys[0], RANGE_END_TAG: run_keys[-1]} if ranged else None,
            run_config=quiet,
            raise_on_error=True,
        )
        return {
            "wall_s": time.perf_counter() - started,
            "compute_s": compute.seconds - compute_before,
            "event_writes_s": events.seconds - events_before,
            "events": events.calls - calls_before,
            "materializations": len(result.get_asset_materialization_events()),
        }

    # The first session's universe screens on the previous session's raw bars.
    warmup = calendar.previous_session(dt.date.fromisoformat(keys[0])).isoformat()
    one_run(raw_datasets, [warmup])

    out: dict[str, Any] = {
        "assets": sorted(key.to_user_string() for key in daily_graph),
        "warmup_session": warmup,
        "rss_after_import_kib": rss_after_import_kib,
    }
    if mode == "single_run":
        out["runs"] = [one_run(daily_graph, keys)]
    else:
        out["runs"] = [one_run(daily_graph, [key]) for key in keys]
    # A high-water mark: read before the (smaller) incremental runs.
    out["peak_rss_kib"] = memory.peak_rss_kib()
    following = keys[-1]
    out["incremental"] = []
    for _ in range(incremental):
        following = calendar.next_session(dt.date.fromisoformat(following)).isoformat()
        out["incremental"].append({"session": following, **one_run(daily_graph, [following])})
    return out


def _child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="one backfill, run by bench_backfills.run()")
    parser.add_argument("--mode", choices=("single_run", "per_partition"), required=True)
    parser.add_argument("--first", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--instance", choices=INSTANCES, required=True)
    parser.add_argument("--instance-dir", required=True)
    parser.add_argument("--incremental", type=int, default=0, help="new sessions afterwards")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    keys = sessions_from(args.first, args.sessions)
    figures = _backfill(args.mode, keys, args.instance, args.instance_dir, args.incremental)
    Path(args.out).write_text(json.dumps({"sessions": keys, **figures}))
    return 0


# -- the harness -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Backfill:
    mode: str
    data_root: Path
    sessions: list[str]
    figures: dict[str, Any]

    @property
    def runs(self) -> list[dict[str, Any]]:
        return list(self.figures["runs"])

    def total(self, figure: str, first_runs: int | None = None) -> float:
        return float(sum(run[figure] for run in self.runs[:first_runs]))

    @property
    def peak_rss_mib(self) -> float:
        return float(self.figures["peak_rss_kib"]) / 1024


def run_backfill(
    workdir: Path,
    mode: str,
    sizes: Sizes,
    sessions: int,
    instance: str = "ephemeral",
    *,
    incremental: int = 0,
) -> Backfill:
    """One backfill in a fresh interpreter, on a fresh data root and instance under ``workdir``."""
    home = workdir / f"{mode}-{sessions}-{instance}"
    data_root, instance_dir, out = home / "data", home / "instance", home / "figures.json"
    instance_dir.mkdir(parents=True)
    env = {
        key: value
        for key, value in os.environ.items()
        # Only the simulated market, and exactly the one named here (source.json pins it).
        if key != "POLYGON_API_KEY" and not key.startswith("SMALLCAPS_")
    }
    env.update(
        SMALLCAPS_DATA_DIR=str(data_root),
        SMALLCAPS_SIM_TICKERS=str(sizes.tickers),
        SMALLCAPS_SIM_SEED=str(SEED),
        SMALLCAPS_MLRUNS_DIR=str(home / "mlruns"),
        DAGSTER_HOME=str(instance_dir),
    )
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        # Without .pyc files every child would compile ~3,000 modules again (~6 s of CPU, not
        # part of any figure); a private cache shared by the children avoids it.
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_backfills",
        f"--mode={mode}",
        f"--first={FIRST_SESSION.isoformat()}",
        f"--sessions={sessions}",
        f"--instance={instance}",
        f"--instance-dir={instance_dir}",
        f"--out={out}",
        f"--incremental={incremental}",
    ]
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} backfill of {sessions} sessions failed:\n{done.stderr[-4000:]}")
    figures = json.loads(out.read_text())
    return Backfill(mode, data_root, figures["sessions"], figures)


def daily_datasets(root: Path) -> list[str]:
    """The daily graph's ``layer/dataset`` folders under a root (raw/minute_requests too)."""
    return sorted(
        f"{layer}/{dataset.name}"
        for layer in DAILY_LAYERS
        if (root / layer).is_dir()
        for dataset in (root / layer).iterdir()
        if dataset.is_dir() and not dataset.name.startswith(("_", "."))
    )


def same_partitions(expected: Path, actual: Path, sessions: list[str]) -> int:
    """Require the same partition files with equal frames in both roots for ``sessions`` and the
    warm-up session before them; returns how many files were compared."""
    import polars as pl

    from smallcaps_assets.core.storage import DataStore

    datasets = daily_datasets(expected)
    if datasets != daily_datasets(actual):
        raise AssertionError(f"datasets differ: {datasets} vs {daily_datasets(actual)}")
    left, right = DataStore(str(expected)), DataStore(str(actual))

    def in_window(store: DataStore, layer: str, dataset: str) -> list[str]:
        # A root may hold later sessions (the incremental ones); the warm-up is the only earlier.
        return [k for k in store.partitions(layer, dataset) if k <= sessions[-1]]

    compared = 0
    for name in datasets:
        layer, dataset = name.split("/")
        keys = in_window(left, layer, dataset)
        if keys != in_window(right, layer, dataset):
            raise AssertionError(
                f"{name}: partitions differ: {keys} vs {in_window(right, layer, dataset)}"
            )
        if keys[-len(sessions) :] != sessions or len(keys) > len(sessions) + 1:
            raise AssertionError(f"{name}: expected the sessions {sessions}, found {keys}")
        for key in keys:
            # Byte-identical files are equal frames; anything else is decoded and compared.
            if (
                Path(left.partition_path(layer, dataset, key)).read_bytes()
                == Path(right.partition_path(layer, dataset, key)).read_bytes()
            ):
                compared += 1
                continue
            a, b = left.read(layer, dataset, key), right.read(layer, dataset, key)
            if not a.equals(b):
                unmatched = pl.concat([a, b]).unique(keep="none").height
                raise AssertionError(f"{name} {key}: frames differ ({unmatched} unmatched rows)")
            compared += 1
    return compared


def _note(message: str) -> None:
    print(f"  [backfills] {message}", file=sys.stderr, flush=True)


def _cost_split(backfill: Backfill) -> dict[str, float]:
    """Seconds per session, and where they went."""
    sessions = len(backfill.sessions)
    wall, compute, writes, events = (
        backfill.total(figure) for figure in ("wall_s", "compute_s", "event_writes_s", "events")
    )
    return {
        "s_per_session": round(wall / sessions, 3),
        "compute_s_per_session": round(compute / sessions, 3),
        "event_writes_s_per_session": round(writes / sessions, 3),
        "other_dagster_s_per_session": round((wall - compute - writes) / sessions, 3),
        "events_per_session": round(events / sessions, 1),
        "ms_per_event": round(1000 * writes / events, 1),
    }


def _materialized_everything(backfill: Backfill) -> None:
    """Every run materialized every asset of the graph for each of its sessions."""
    assets = len(backfill.figures["assets"])
    per_run = len(backfill.sessions) if backfill.mode == "single_run" else 1
    added = backfill.figures["incremental"]
    expected = [assets * per_run] * len(backfill.runs) + [assets] * len(added)
    found = [run["materializations"] for run in [*backfill.runs, *added]]
    if found != expected:
        raise AssertionError(f"{backfill.mode}: materializations per run {found}, not {expected}")


def _comparison(single: Backfill, per_partition: Backfill) -> tuple[float, int]:
    """per-partition / single-run wall time, once both roots hold the same partitions (the
    window and the sessions added after it)."""
    if single.sessions != per_partition.sessions:
        raise AssertionError("the two modes backfilled different sessions")
    added = [run["session"] for run in single.figures["incremental"]]
    if added != [run["session"] for run in per_partition.figures["incremental"]]:
        raise AssertionError("the two modes added different sessions")
    for backfill in (single, per_partition):
        _materialized_everything(backfill)
    compared = same_partitions(
        single.data_root, per_partition.data_root, [*single.sessions, *added]
    )
    return per_partition.total("wall_s") / single.total("wall_s"), compared


def _median(runs: list[dict[str, Any]], figure: str) -> float:
    return float(statistics.median(run[figure] for run in runs))


def _incremental(single: Backfill, per_partition: Backfill) -> dict[str, object]:
    """One run per new session after each backfill, against the backfills' cost per session."""
    after_single = single.figures["incremental"]
    after_per_partition = per_partition.figures["incremental"]
    walls = sorted(run["wall_s"] for run in [*after_single, *after_per_partition])
    median = statistics.median(walls)
    sessions = [run["session"] for run in after_single]
    return {
        "sessions": " … ".join(dict.fromkeys([sessions[0], sessions[-1]])),
        "runs": len(walls),
        "median_s": round(median, 2),
        "fastest_s": round(walls[0], 2),
        "slowest_s": round(walls[-1], 2),
        "after_single_run_median_s": round(_median(after_single, "wall_s"), 2),
        "after_per_partition_median_s": round(_median(after_per_partition, "wall_s"), 2),
        "median_compute_s": round(_median([*after_single, *after_per_partition], "compute_s"), 2),
        "median_event_writes_s": round(
            _median([*after_single, *after_per_partition], "event_writes_s"), 2
        ),
        "median_over_single_run_s_per_session": round(
            median / (single.total("wall_s") / len(single.sessions)), 2
        ),
        "median_over_per_partition_s_per_session": round(
            median / (per_partition.total("wall_s") / len(per_partition.sessions)), 2
        ),
    }


def _sqlite_instance(
    workdir: Path, sizes: Sizes, per_partition: Backfill
) -> tuple[dict[str, object], int]:
    """The first sessions of the per-partition backfill again, on a SQLite-backed instance."""
    m = sizes.sqlite_sessions
    on_sqlite = run_backfill(workdir, "per_partition", sizes, m, "sqlite")
    _materialized_everything(on_sqlite)
    # The instance must not change a file.
    compared = same_partitions(per_partition.data_root, on_sqlite.data_root, on_sqlite.sessions)
    sqlite_split = _cost_split(on_sqlite)
    ephemeral_s = per_partition.total("wall_s", first_runs=m) / m
    ephemeral_events = per_partition.total("event_writes_s", first_runs=m)
    return {
        "per_partition_runs": m,
        "s_per_session": sqlite_split["s_per_session"],
        "compute_s_per_session": sqlite_split["compute_s_per_session"],
        "event_writes_s_per_session": sqlite_split["event_writes_s_per_session"],
        "other_dagster_s_per_session": sqlite_split["other_dagster_s_per_session"],
        "ms_per_event": sqlite_split["ms_per_event"],
        # The same sessions in the ephemeral per-partition backfill (its first m runs).
        "ephemeral_s_per_session": round(ephemeral_s, 3),
        "ephemeral_ms_per_event": round(
            1000 * ephemeral_events / per_partition.total("events", first_runs=m), 1
        ),
        "sqlite_over_ephemeral": round(sqlite_split["s_per_session"] / ephemeral_s, 2),
    }, compared


def run(quick: bool = False) -> dict[str, object]:
    sizes = QUICK if quick else FULL
    n = sizes.sessions
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_backfills_") as tmp:
        workdir = Path(tmp)
        _note(f"single-run backfill of {n} sessions, {sizes.tickers} tickers ...")
        single = run_backfill(
            workdir, "single_run", sizes, n, incremental=sizes.incremental_sessions
        )
        _note(f"per-partition backfill of {n} sessions ({n} runs) ...")
        per_partition = run_backfill(
            workdir, "per_partition", sizes, n, incremental=sizes.incremental_sessions
        )
        ratio, files_compared = _comparison(single, per_partition)
        smaller: list[Backfill] = []
        for count in sizes.scaling_sessions:
            _note(f"single-run backfill of {count} sessions (scaling) ...")
            backfill = run_backfill(workdir, "single_run", sizes, count)
            _materialized_everything(backfill)
            # Ranged runs of any length must give each session the same partitions.
            files_compared += same_partitions(
                single.data_root, backfill.data_root, backfill.sessions
            )
            smaller.append(backfill)
        sqlite: dict[str, object] = {}
        if sizes.sqlite_sessions:
            _note(f"{sizes.sqlite_sessions} per-partition runs on a SQLite instance ...")
            sqlite, compared = _sqlite_instance(workdir, sizes, per_partition)
            files_compared += compared
        datasets = len(daily_datasets(single.data_root))

    single_runs = [*smaller, single]
    scaling: dict[str, object] = {}
    for backfill in single_runs:
        scaling[f"single_run_{len(backfill.sessions)}_sessions_s"] = round(
            backfill.total("wall_s"), 2
        )
    for count in [*sizes.scaling_sessions, n]:
        # The per-partition backfill of the first `count` sessions is exactly the first `count`
        # runs of this one (same fresh start, same order).
        scaling[f"per_partition_{count}_sessions_s"] = round(
            per_partition.total("wall_s", first_runs=count), 2
        )
    memory: dict[str, object] = {
        "rss_after_imports_mib": round(single.figures["rss_after_import_kib"] / 1024),
        **{
            f"single_run_{len(backfill.sessions)}_sessions_peak_rss_mib": round(
                backfill.peak_rss_mib
            )
            for backfill in single_runs
        },
        f"per_partition_{n}_sessions_peak_rss_mib": round(per_partition.peak_rss_mib),
    }
    figures: dict[str, object] = {
        "setup": {
            "sessions": n,
            "window": f"{single.sessions[0]} … {single.sessions[-1]}",
            "tickers": sizes.tickers,
            "assets": len(single.figures["assets"]),
            "left_out": "research/watchlist (needs a trained monthly model)",
            "instance": "DagsterInstance.ephemeral(), a fresh one per backfill",
            "executor": "in-process (dg.materialize), one process per backfill",
        },
        "single_run": {
            "runs": len(single.runs),
            "wall_s": round(single.total("wall_s"), 2),
            **_cost_split(single),
        },
        "per_partition": {
            "runs": len(per_partition.runs),
            "wall_s": round(per_partition.total("wall_s"), 2),
            **_cost_split(per_partition),
        },
        "comparison": {
            "per_partition_over_single_run": round(ratio, 2),
            "same_partition_files": True,
            "partition_files_compared": files_compared,
            "datasets_compared": datasets,
        },
        "incremental": _incremental(single, per_partition),
        "scaling": scaling,
        "memory": memory,
    }
    if sqlite:
        figures["sqlite_instance"] = sqlite
    figures["benchmark_s"] = round(time.perf_counter() - started, 1)
    return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--mode"):
        sys.exit(_child_main(sys.argv[1:]))
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2, ensure_ascii=False))
