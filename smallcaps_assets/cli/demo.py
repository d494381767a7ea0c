"""``smallcaps demo``: every layer for a window of sessions on the simulated market, one
in-process Dagster run per layer (per month for the models), with progress lines and a summary."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg

import smallcaps_assets.warnings_filter  # noqa: F401  (before the assets are declared)
from smallcaps_assets import progress, settings
from smallcaps_assets.cli.args import check_writable_root
from smallcaps_assets.cli.errors import CliError
from smallcaps_assets.cli.instance import ensure_instance
from smallcaps_assets.cli.layers import Layer, _layers
from smallcaps_assets.cli.report import fmt_secs, print_failure, print_summary
from smallcaps_assets.core import calendar
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.core.walkforward import windows_for
from smallcaps_assets.defs.partitions import trading_days
from smallcaps_assets.sources.provenance import simulator_settings


def check(args: argparse.Namespace) -> None:
    """The window holds partitions and the data root can be written, before anything runs."""
    partition_keys(args.start, args.end)
    root = args.data_dir or settings.data_root()
    check_writable_root(root, "--data-dir" if args.data_dir else "the data root")


def partition_keys(start: dt.date, end: dt.date) -> tuple[list[dt.date], list[str]]:
    """The NYSE sessions of [start, end] and those of them that are daily partitions."""
    sessions = calendar.sessions(start, end)
    keys = [d.isoformat() for d in sessions if trading_days.has_partition_key(d.isoformat())]
    if not keys:
        raise CliError(
            f"no NYSE session between {start} and {end} is a partition "
            f"(partitions run from {calendar.FIRST_SESSION} to the last completed session)"
        )
    return sessions, keys


class ProgressPrinter:
    """Prints 'partitions done of total' for the running layer every few seconds."""

    def __init__(self, total: int, per_asset: int, label: str, started: float) -> None:
        self.total = total
        self.per_asset = per_asset
        self.label = label
        self.started = started
        self.done: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __call__(self, asset: str, _partition: str) -> None:
        self.done[asset] += 1

    def __enter__(self) -> ProgressPrinter:
        progress.add_listener(self)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        progress.remove_listener(self)
        self._stop.set()
        self._thread.join()
        self._print()

    def _loop(self) -> None:
        while not self._stop.wait(3.0):
            self._print()

    def _print(self) -> None:
        done = sum(self.done.values())
        assets_done = sum(
            1 for n in self.done.values() if n >= self.total // max(len(self.done), 1)
        )
        elapsed = time.monotonic() - self.started
        pct = 100.0 * done / self.total if self.total else 100.0
        print(
            f"  [{self.label}] {done}/{self.total} asset partitions ({pct:.0f}%), "
            f"{len(self.done)} asset(s) started, {assets_done} finished · elapsed {fmt_secs(elapsed)}",
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    if args.data_dir:
        os.environ[settings.DATA_DIR_ENV] = str(Path(args.data_dir).expanduser().resolve())
    if settings.polygon_api_key():
        print(
            "note: the demo always runs on the simulated market; POLYGON_API_KEY is ignored here."
        )
        os.environ.pop(settings.API_KEY_ENV, None)
    for value, env in (
        (args.seed, "SMALLCAPS_SIM_SEED"),
        (args.tickers, "SMALLCAPS_SIM_TICKERS"),
        (args.signal, "SMALLCAPS_SIM_SIGNAL"),
    ):
        if value is not None:
            os.environ[env] = str(value)
    # MLflow logs every registered version and pip resolution at INFO/WARNING; the runs
    # themselves are what to look at (MLflow UI).
    logging.getLogger("mlflow").setLevel(logging.ERROR)

    sessions, keys = partition_keys(args.start, args.end)
    store = DataStore(settings.data_root())
    try:
        # Refuses a mismatched data root or invalid SMALLCAPS_SIM_* values before writing.
        sim = simulator_settings(store)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    home = ensure_instance()

    # Imported once the environment above is set and the instance is prepared.
    from smallcaps_assets.definitions import defs

    print(
        f"smallcaps demo: {len(keys)} sessions {keys[0]} … {keys[-1]} on the SIMULATED market "
        f"(seed={sim.seed}, tickers={sim.n_tickers}, signal={sim.signal})\n"
        f"  data:     {store.root}\n  instance: {home}",
        flush=True,
    )
    instance = dg.DagsterInstance.get()
    repo = defs.get_repository_def()
    all_assets = list(repo.assets_defs_by_key.values())
    started = time.monotonic()
    summary: list[tuple[str, str, float]] = []
    for layer in _layers():
        layer_started = time.monotonic()
        if layer.needs_walk_forward and not walk_forward_months(sessions[0], sessions[-1]):
            summary.append((layer.name, "skipped", 0.0))
            continue
        if layer.monthly:
            ok, results = _run_months(all_assets, instance, layer, sessions, started)
            summary.append((layer.name, "ok" if ok else "FAILED", time.monotonic() - layer_started))
            if not ok:
                for failed in results:
                    print_failure(failed)
                print_summary(store, keys, summary, started, home)
                return 1
            continue
        layer_keys = (
            [last_session_with_gappers(store, keys)]
            if layer.last_session_only
            else _with_warmup(keys, layer.warmup_sessions)
        )
        total = (
            len(layer_keys) * len(layer.selection) if layer.partitioned else len(layer.selection)
        )
        tags = {"smallcaps/launched_by": "smallcaps demo"}
        if layer.partitioned:
            tags["dagster/asset_partition_range_start"] = layer_keys[0]
            tags["dagster/asset_partition_range_end"] = layer_keys[-1]
        per_asset = len(layer_keys) if layer.partitioned else 1
        with ProgressPrinter(total, per_asset, layer.name, started):
            result = dg.materialize(
                all_assets,
                instance=instance,
                selection=[dg.AssetKey.from_user_string(k) for k in layer.selection],
                tags=tags,
                # Progress lines replace Dagster's per-event console log; the run's full log is
                # in the instance (and the UI).
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                raise_on_error=False,
            )
        status = "ok" if result.success else "FAILED"
        summary.append((layer.name, status, time.monotonic() - layer_started))
        if not result.success:
            print_failure(result)
            print_summary(store, keys, summary, started, home)
            return 1
    print_summary(store, keys, summary, started, home)
    return 0


def last_session_with_gappers(store: DataStore, keys: list[str]) -> str:
    """The window's last session that had gap candidates (its watchlist is the one worth
    reading), or the last session when none had any."""
    for key in reversed(keys):
        if store.exists("processed", "watchlist", key) and store.row_count(
            "processed", "watchlist", key
        ):
            return key
    return keys[-1]


def walk_forward_months(first: dt.date, last: dt.date) -> list[dt.date]:
    """Model months whose training, validation and test windows all lie inside [first, last]."""
    out: list[dt.date] = []
    month = dt.date(first.year, first.month, 1)
    while month <= last:
        try:
            w = windows_for(month)
        except ValueError:
            w = None
        if w and w.train.first_session >= first and w.test.last_session <= last:
            out.append(month)
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return out


def _run_months(
    all_assets: list[dg.AssetsDefinition],
    instance: dg.DagsterInstance,
    layer: Layer,
    sessions: list[dt.date],
    started: float,
) -> tuple[bool, list[dg.ExecuteInProcessResult]]:
    months = walk_forward_months(sessions[0], sessions[-1])
    if not months:
        print(
            f"  [{layer.name}] skipped: the window is too short for a walk-forward month "
            "(7 months of history + the month itself)",
            flush=True,
        )
        return True, []
    failures: list[dg.ExecuteInProcessResult] = []
    for month in months:
        result = dg.materialize(
            all_assets,
            instance=instance,
            selection=[dg.AssetKey.from_user_string(k) for k in layer.selection],
            partition_key=month.isoformat(),
            tags={"smallcaps/launched_by": "smallcaps demo"},
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            raise_on_error=False,
        )
        elapsed = fmt_secs(time.monotonic() - started)
        auc = ""
        for event in result.get_asset_materialization_events():
            value = event.materialization.metadata.get("test_auc")
            if value is not None:
                auc = f"out-of-sample AUC {float(value.value):.3f}"  # type: ignore[arg-type]
        print(
            f"  [{layer.name}] {month:%Y-%m} {'ok' if result.success else 'FAILED'} {auc} · elapsed {elapsed}",
            flush=True,
        )
        if not result.success:
            failures.append(result)
            break
    return not failures, failures


def _with_warmup(keys: list[str], sessions: int) -> list[str]:
    first = dt.date.fromisoformat(keys[0])
    earlier: list[str] = []
    for _ in range(sessions):
        first = calendar.previous_session(first)
        if not trading_days.has_partition_key(first.isoformat()):
            break
        earlier.insert(0, first.isoformat())
    return [*earlier, *keys]
