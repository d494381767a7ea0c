"""The ``smallcaps`` command: run the demo, open the UIs, query the data."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from smallcaps_assets import processes, settings

DEFAULT_START = dt.date(2024, 1, 2)
DEFAULT_END = dt.date(2024, 12, 31)
# The simulated universe, its daily panel and its minute paths live in memory: 5,000 names take
# ~20 s and 1.2 GB to build, and the pipeline's time grows with them (2,000 names: ~45 minutes
# per canary seed). Larger counts spent minutes building before a run could even start.
MAX_TICKERS = 5_000


class CliError(Exception):
    """A user-facing error: printed without a traceback."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2); ``--help`` shows the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from exc


def _ticker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if not 1 <= count <= MAX_TICKERS:
        raise argparse.ArgumentTypeError(f"{count} is outside 1..{MAX_TICKERS}")
    return count


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if seed < 0:
        raise argparse.ArgumentTypeError(f"{seed} is negative (seeds are 0 or more)")
    return seed


def _signal_strength(text: str) -> float:
    try:
        strength = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not math.isfinite(strength) or strength < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number >= 0")
    return strength


def _partition_keys(start: dt.date, end: dt.date) -> tuple[list[dt.date], list[str]]:
    """The NYSE sessions of [start, end] and those of them that are daily partitions."""
    from smallcaps_assets.core import calendar
    from smallcaps_assets.defs.partitions import trading_days

    sessions = calendar.sessions(start, end)
    keys = [d.isoformat() for d in sessions if trading_days.has_partition_key(d.isoformat())]
    if not keys:
        raise CliError(
            f"no NYSE session between {start} and {end} is a partition "
            f"(partitions run from {calendar.FIRST_SESSION} to the last completed session)"
        )
    return sessions, keys


def _check_writable_root(root: str, what: str) -> None:
    """A local data root must be a folder this process can create files in (or create)."""
    if "://" in root:
        return  # object storage: checked by its first write
    path = Path(root).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        if existing == path:
            raise CliError(f"{what} {path} is a file, not a folder")
        raise CliError(f"{what} {path} cannot be created: {existing} is a file")
    try:
        # A real probe (the permission bits do not tell root or a read-only mount); it leaves
        # nothing behind.
        tempfile.TemporaryDirectory(dir=existing, prefix=".smallcaps-probe-").cleanup()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if existing == path:
            raise CliError(f"{what} {path} is not writable ({reason})") from exc
        raise CliError(f"{what} {path} cannot be created in {existing} ({reason})") from exc


def _check_inputs(args: argparse.Namespace) -> None:
    """Everything about the arguments that can be refused before anything is written."""
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start and end and end < start:
        raise CliError(f"--end {end} is before --start {start}")
    if args.command in ("demo", "canary"):
        _partition_keys(start, end)
        if args.command == "demo":
            roots = [args.data_dir or settings.data_root()]
        else:
            roots = [str(_canary_data_dir(args, seed)) for seed in args.seeds or [args.seed]]
        for root in roots:
            _check_writable_root(root, "--data-dir" if args.data_dir else "the data root")
    if args.command == "realism" and start and end:
        from smallcaps_assets.core import calendar

        if not calendar.sessions(start, end):
            raise CliError(f"no NYSE session between {start} and {end}")


def _ensure_instance() -> Path:
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
    from smallcaps_assets import instance_setup

    instance_setup.prepare(home)  # first use serialized: concurrent first runs can't corrupt it
    return home


@dataclass
class Layer:
    name: str
    selection: list[str]  # asset keys as user strings, e.g. "raw/daily_bars"
    partitioned: bool = True
    # Monthly layers run one partition per run (the walk-forward months inside the window).
    monthly: bool = False
    # Skipped when the window holds no walk-forward month (nothing to report on).
    needs_walk_forward: bool = False
    # Only the window's last session (the daily report a user reads next).
    last_session_only: bool = False
    # Sessions before the window this layer also covers: the universe of the first session
    # screens on the previous session's raw bars.
    warmup_sessions: int = 0


def _layers() -> list[Layer]:
    from smallcaps_assets.defs.processed import EVENT_DATASETS, PROCESSED_DATASETS
    from smallcaps_assets.defs.raw import MINUTE_BARS, RAW_DATASETS

    return [
        Layer("raw", [f"raw/{d.name}" for d in RAW_DATASETS], warmup_sessions=1),
        Layer(
            "processed",
            [
                *(f"processed/{d.name}" for d in PROCESSED_DATASETS),
                f"raw/{MINUTE_BARS.name}",
            ],
        ),
        Layer("events", [f"{d.layer}/{d.name}" for d in EVENT_DATASETS]),
        Layer(
            "models",
            ["ml/model", "ml/predictions", "backtest/trades"],
            partitioned=False,
            monthly=True,
        ),
        Layer("backtest", ["backtest/report"], partitioned=False, needs_walk_forward=True),
        Layer("watchlist", ["research/watchlist"], last_session_only=True),
        Layer(
            "catalog",
            ["catalog/raw", "catalog/processed", *(f"catalog/{d.layer}" for d in EVENT_DATASETS)],
            partitioned=False,
        ),
    ]


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
        from smallcaps_assets import progress

        progress.add_listener(self)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        from smallcaps_assets import progress

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
            f"{len(self.done)} asset(s) started, {assets_done} finished · elapsed {_fmt_secs(elapsed)}",
            flush=True,
        )


def _fmt_secs(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def cmd_demo(args: argparse.Namespace) -> int:
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

    import dagster as dg

    from smallcaps_assets.core.storage import DataStore
    from smallcaps_assets.defs.resources import simulator_settings

    sessions, keys = _partition_keys(args.start, args.end)
    store = DataStore(settings.data_root())
    try:
        # Refuses a mismatched data root or invalid SMALLCAPS_SIM_* values before writing.
        sim = simulator_settings(store)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    home = _ensure_instance()

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
                    _print_failure(failed)
                _print_summary(store, keys, summary, started, home)
                return 1
            continue
        layer_keys = (
            keys[-1:] if layer.last_session_only else _with_warmup(keys, layer.warmup_sessions)
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
            _print_failure(result)
            _print_summary(store, keys, summary, started, home)
            return 1
    _print_summary(store, keys, summary, started, home)
    return 0


def walk_forward_months(first: dt.date, last: dt.date) -> list[dt.date]:
    """Model months whose training, validation and test windows all lie inside [first, last]."""
    from smallcaps_assets.core.walkforward import windows_for

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
    all_assets: list[object],
    instance: object,
    layer: Layer,
    sessions: list[dt.date],
    started: float,
) -> tuple[bool, list[object]]:
    import dagster as dg

    months = walk_forward_months(sessions[0], sessions[-1])
    if not months:
        print(
            f"  [{layer.name}] skipped: the window is too short for a walk-forward month "
            "(7 months of history + the month itself)",
            flush=True,
        )
        return True, []
    failures: list[object] = []
    for month in months:
        result = dg.materialize(
            all_assets,  # type: ignore[arg-type]
            instance=instance,  # type: ignore[arg-type]
            selection=[dg.AssetKey.from_user_string(k) for k in layer.selection],
            partition_key=month.isoformat(),
            tags={"smallcaps/launched_by": "smallcaps demo"},
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            raise_on_error=False,
        )
        elapsed = _fmt_secs(time.monotonic() - started)
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
    from smallcaps_assets.core import calendar
    from smallcaps_assets.defs.partitions import trading_days

    first = dt.date.fromisoformat(keys[0])
    earlier: list[str] = []
    for _ in range(sessions):
        first = calendar.previous_session(first)
        if not trading_days.has_partition_key(first.isoformat()):
            break
        earlier.insert(0, first.isoformat())
    return [*earlier, *keys]


def _print_failure(result: object) -> None:
    import dagster as dg

    assert isinstance(result, dg.ExecuteInProcessResult)
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            message = error.message.strip() if error else "unknown error"
            print(f"  step {event.step_key} failed: {message}", file=sys.stderr)
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            print(
                f"  check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed",
                file=sys.stderr,
            )


def _print_summary(
    store: object,
    keys: list[str],
    summary: list[tuple[str, str, float]],
    started: float,
    home: Path,
) -> None:
    import polars as pl

    from smallcaps_assets.core.storage import DataStore
    from smallcaps_assets.defs.processed import EVENT_DATASETS, PROCESSED_DATASETS
    from smallcaps_assets.defs.raw import MINUTE_BARS, RAW_DATASETS

    assert isinstance(store, DataStore)
    print("\nSummary")
    for layer, status, seconds in summary:
        print(f"  layer {layer:<10} {status:<7} {_fmt_secs(seconds)}")
    print(f"\n  {'dataset':<28}{'partitions':>12}{'rows':>14}")
    datasets = [
        *(("raw", d.name) for d in [*RAW_DATASETS, MINUTE_BARS]),
        *(("processed", d.name) for d in PROCESSED_DATASETS),
        *((d.layer, d.name) for d in EVENT_DATASETS),
    ]
    for layer, name in datasets:
        present = sorted(set(store.partitions(layer, name)) & set(keys))
        paths = [store.url(store.partition_path(layer, name, key)) for key in present]
        # Row counts come from the parquet footers; no partition is read.
        rows = pl.scan_parquet(paths).select(pl.len()).collect().item() if paths else 0
        print(f"  {layer + '/' + name:<28}{len(present):>6}/{len(keys):<5}{rows:>14,}")
    monthly = _monthly_summary()
    if monthly:
        print("\n  processed layer by month (also in the Dagster UI: catalog/processed metadata)")
        print(monthly)
    walk_forward = _walk_forward_summary(store)
    if walk_forward:
        print(walk_forward)
    headline = _backtest_headline(store)
    if headline:
        print(headline)
    print(
        f"\n  total time {_fmt_secs(time.monotonic() - started)}; data was SIMULATED "
        f"(no API key used)\n"
        f"  data files:  {store.root}\n"
        f"  instance:    {home}\n"
        f"  look at it:  make ui   (Dagster UI http://127.0.0.1:3000, MLflow UI http://127.0.0.1:5000)\n"
        f'  query it:    uv run smallcaps sql "select * from processed.universe limit 5"\n'
        f"  one partition from the CLI: uv run dagster asset materialize -m smallcaps_assets.definitions "
        f"--select 'key:\"raw/daily_bars\"' --partition {keys[-1]}"
    )


def _walk_forward_summary(store: object) -> str:

    from smallcaps_assets.core.modeling import pooled_out_of_sample
    from smallcaps_assets.core.storage import DataStore

    assert isinstance(store, DataStore)
    months = store.partitions("ml", "predictions")
    if not months:
        return ""
    predictions = store.read_many("ml", "predictions", months)
    label_days = store.partitions("labels", "events")
    labels = store.read_many("labels", "events", label_days)
    pooled = pooled_out_of_sample(predictions, labels)
    return (
        f"\n  walk-forward: {int(pooled['months'])} month(s) {months[0][:7]} … {months[-1][:7]}, "
        f"{int(pooled['events']):,} out-of-sample events, pooled AUC {pooled['auc']:.3f} "
        f"(winning-trade base rate {pooled['base_rate']:.3f}, top-decile hit rate "
        f"{pooled['precision_at_top']:.3f}); runs in MLflow: make ui → http://127.0.0.1:5000"
    )


def dollars(value: float) -> str:
    """-14.15 as -$14.15 (the sign before the currency symbol)."""
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def _backtest_headline(store: object) -> str:
    import json

    from smallcaps_assets.core.storage import DataStore
    from smallcaps_assets.defs.backtest import SUMMARY_FILE

    assert isinstance(store, DataStore)
    text = store.read_text(SUMMARY_FILE)
    if not text:
        return ""
    s = json.loads(text)

    def money(value: float | None) -> str:
        return "n/a" if value is None else dollars(value)

    def number(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    return (
        f"\n  BACKTEST ({s['source']}, {s['start']} … {s['end']}): {s['n_trades']:,} trades, "
        f"expectancy {money(s['expectancy_gross'])} gross / {money(s['expectancy_net'])} net per "
        f"trade, profit factor {number(s['profit_factor'], '.2f')}, Sharpe "
        f"{number(s['sharpe'], '.2f')}, max drawdown {number(s['max_drawdown'], '.1%')}, "
        f"fees {money(s['fees'])}, slippage {money(s['slippage'])}\n"
        f"  THE DATA WAS SIMULATED: these figures describe the simulator, not a market.\n"
        f"  summary: {store.root}/{SUMMARY_FILE}\n"
        f"  latest daily watchlist: {store.root}/reports/watchlist/"
    )


def _monthly_summary() -> str:
    """The processed layer's month table from the catalog, indented; empty when unavailable."""
    import duckdb

    from smallcaps_assets.core.catalog import PROCESSED_MONTHLY_SQL

    try:
        con = _catalog_connection()
    except CliError:
        return ""
    try:
        frame = con.sql(PROCESSED_MONTHLY_SQL).pl()
    except duckdb.Error:
        return ""
    finally:
        con.close()
    import polars as pl

    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        return "\n".join("  " + line for line in str(frame).splitlines())


def cmd_ui(args: argparse.Namespace) -> int:
    home = _ensure_instance()
    dagster_bin = shutil.which("dagster")
    mlflow_bin = shutil.which("mlflow")
    if dagster_bin is None or mlflow_bin is None:
        raise CliError("dagster/mlflow are not on PATH; run `make ui` (it installs first)")
    mlruns = settings.mlruns_root().resolve()
    mlruns.mkdir(parents=True, exist_ok=True)
    mlflow_command = [
        mlflow_bin,
        "server",
        "--backend-store-uri",
        f"sqlite:///{mlruns / 'mlflow.db'}",
        "--default-artifact-root",
        (mlruns / "artifacts").as_uri(),
        "--host",
        args.host,
        "--port",
        str(args.mlflow_port),
        "--workers",
        "1",
    ]
    print(
        f"Dagster UI:  http://{args.host}:{args.dagster_port}   (instance {home})\n"
        f"MLflow UI:   http://{args.host}:{args.mlflow_port}   (store {mlruns})\n"
        "Ctrl-C stops both.",
        flush=True,
    )
    if os.environ.get("MLFLOW_TRACKING_URI"):
        # The URI itself is not printed: a tracking server URI may carry credentials.
        print(
            "Note: MLFLOW_TRACKING_URI is set, so new runs are tracked on that server, "
            "not in the local store shown here.",
            flush=True,
        )
    # dagster dev runs in the instance folder: the dagster CLI lets a .env in its working
    # directory override DAGSTER_HOME, and the checkout's .env (written by make) names the
    # project's instance, not necessarily the one printed above. The code location still runs
    # from the checkout.
    with tempfile.TemporaryDirectory(prefix="smallcaps-ui-") as scratch:
        workspace = Path(scratch) / "workspace.yaml"
        workspace.write_text(
            "load_from:\n"
            "  - python_module:\n"
            "      module_name: smallcaps_assets.definitions\n"
            "      location_name: smallcaps_assets\n"
            f"      working_directory: {json.dumps(str(settings.project_root()))}\n"
        )
        dagster_command = [
            dagster_bin,
            "dev",
            "-w",
            str(workspace),
            "--host",
            args.host,
            "--port",
            str(args.dagster_port),
        ]
        # Each server leads its own process group; leaving the block (dagster dev ended, or
        # SIGTERM, SIGINT or SIGHUP arrived) stops both groups with every child in them.
        with processes.Supervisor(grace=15.0) as servers:
            try:
                servers.start(mlflow_command, cwd=settings.project_root())
                return servers.start(dagster_command, cwd=home).wait()
            except processes.Stopped as stop:
                print(f"smallcaps ui: {stop.name}: stopping both servers", flush=True)
                return 0 if stop.signum == signal.SIGINT else stop.exit_code


CANARY_TOLERANCE = 0.02
CANARY_MIN_EVENTS = 4_000
CANARY_MIN_MONTHS = 6
CANARY_MAX_GROSS_T = 2.0


def cmd_canary(args: argparse.Namespace) -> int:
    """The leakage canary, on every seed of ``--seeds``: the whole pipeline on a market whose
    gap-day paths carry no signal (signal 0) must score out of sample at AUC 0.50 +/- 0.02, and
    the model's selected trades must earn no more than trading every event (the no-skill
    baseline) under the same rules and costs, with a negative net expectancy."""
    seeds = args.seeds or [args.seed]
    if args.data_dir and len(seeds) > 1:
        print("error: --data-dir holds one market; give one seed with it", file=sys.stderr)
        return 2
    verdicts: list[tuple[int, bool]] = []
    for seed in seeds:
        data_dir = _canary_data_dir(args, seed)
        run = argparse.Namespace(**{**vars(args), "seed": seed, "data_dir": str(data_dir)})
        os.environ[settings.MLRUNS_DIR_ENV] = str(data_dir.resolve() / "mlruns")
        code = cmd_demo(run)
        if code != 0:
            return code
        verdicts.append((seed, _canary_verdict(data_dir, run.signal, seed)))
    if len(verdicts) > 1:
        print(
            "\ncanary over seeds: "
            + ", ".join(f"seed {s} {'PASS' if ok else 'FAIL'}" for s, ok in verdicts)
        )
    return 0 if all(ok for _, ok in verdicts) else 1


def _canary_data_dir(args: argparse.Namespace, seed: int) -> Path:
    return Path(
        args.data_dir
        or settings.project_root() / "data" / f"canary-signal{args.signal:g}-seed{seed}"
    )


def _canary_verdict(data_dir: Path, signal: float, seed: int) -> bool:
    from smallcaps_assets.core.modeling import pooled_out_of_sample
    from smallcaps_assets.core.storage import DataStore

    store = DataStore(str(data_dir.resolve()))
    months = store.partitions("ml", "predictions")
    pooled = pooled_out_of_sample(
        store.read_many("ml", "predictions", months),
        store.read_many("labels", "events", store.partitions("labels", "events")),
    )
    enough = pooled["events"] >= CANARY_MIN_EVENTS and pooled["months"] >= CANARY_MIN_MONTHS
    print(
        f"\nleakage canary (signal {signal:g}, seed {seed}): pooled out-of-sample AUC "
        f"{pooled['auc']:.4f} over {int(pooled['events']):,} events in {int(pooled['months'])} "
        f"months (winning-trade base rate {pooled['base_rate']:.3f})"
    )
    skill = _baseline_comparison(store)
    if signal != 0:
        print("  (signal > 0: the comparison run; the selected trades should beat the baseline)")
        return skill is not None and skill > CANARY_MAX_GROSS_T
    if not enough:
        print(
            f"  INCONCLUSIVE: needs >= {CANARY_MIN_EVENTS:,} events over >= {CANARY_MIN_MONTHS} "
            "months; raise --tickers or widen the window"
        )
        return False
    auc_ok = abs(pooled["auc"] - 0.5) <= CANARY_TOLERANCE
    if auc_ok:
        print(f"  PASS: AUC within 0.50 +/- {CANARY_TOLERANCE}")
    else:
        print(f"  FAIL: AUC outside 0.50 +/- {CANARY_TOLERANCE}: something sees the future")
    skill_ok = skill is not None and abs(skill) < CANARY_MAX_GROSS_T
    print(
        f"  {'PASS' if skill_ok else 'FAIL'}: selected trades "
        f"{'indistinguishable from' if skill_ok else 'differ from'} the no-skill baseline "
        f"(|t| < {CANARY_MAX_GROSS_T:g})"
    )
    return auc_ok and skill_ok and _backtest_canary(store)


def _baseline_comparison(store: object) -> float | None:
    """Mean net P&L per trade of the model's selected trades against trading every event under
    the same rules and costs; prints both and returns the t statistic of the difference."""
    from smallcaps_assets.core import performance
    from smallcaps_assets.core.storage import DataStore
    from smallcaps_assets.defs.backtest import BacktestSettingsResource, no_skill_trades

    assert isinstance(store, DataStore)
    months = store.partitions("backtest", "trades")
    if not months:
        print("  baseline: no backtest trades were written")
        return None
    selected = store.read_many("backtest", "trades", months).get_column("net_pnl")
    settings_ = BacktestSettingsResource()
    baseline = no_skill_trades(store, settings_.rules(), settings_.costs()).get_column("net_pnl")
    diff, se, t = performance.mean_difference_t(selected.to_list(), baseline.to_list())
    print(
        f"  selected {selected.len():,} trades, net {dollars(float(selected.mean() or 0.0))} per "
        f"trade; no-skill baseline (every event) {baseline.len():,} trades, net "
        f"{dollars(float(baseline.mean() or 0.0))}; difference {dollars(diff)} "
        f"(s.e. {dollars(se)}, t = {t:.2f})"
    )
    return None if t != t else t


def _backtest_canary(store: object) -> bool:
    """Without signal the selected trades' net expectancy must be negative (the modelled
    costs and the gappers' fade are all they earn)."""
    import json

    from smallcaps_assets.core.storage import DataStore
    from smallcaps_assets.defs.backtest import SUMMARY_FILE

    assert isinstance(store, DataStore)
    text = store.read_text(SUMMARY_FILE)
    if not text:
        print("  backtest: FAIL: no backtest summary was written")
        return False
    s = json.loads(text)
    gross, se, t = s["expectancy_gross"], s["expectancy_gross_se"], s["expectancy_gross_t"]
    net, costs = s["expectancy_net"], s["costs_per_trade"]
    if gross is None or t is None:
        print(f"  backtest: INCONCLUSIVE: {s['n_trades']} trades")
        return False
    print(
        f"  backtest at signal 0: {s['n_trades']:,} trades, gross expectancy {dollars(gross)} per "
        f"trade (s.e. {dollars(se)}, t = {t:.2f}); net {dollars(net)} = gross - "
        f"{dollars(costs)} costs"
    )
    net_ok = net < 0
    print(
        f"  {'PASS' if net_ok else 'FAIL'}: net expectancy "
        f"{'negative' if net_ok else 'not negative'} (modelled costs {dollars(costs)} per trade)"
    )
    return net_ok


def _catalog_connection():  # type: ignore[no-untyped-def]
    """Read-only on the catalog file; in-memory views when the file is missing or locked by a writer."""
    import duckdb

    from smallcaps_assets.core.catalog import ViewSpec, view_statements
    from smallcaps_assets.core.storage import DataStore, dataset_glob
    from smallcaps_assets.defs.catalog import default_duckdb_path

    path = default_duckdb_path()
    if Path(path).exists():
        try:
            return duckdb.connect(path, read_only=True)
        except duckdb.Error:
            pass  # a run holds the write lock; fall back to fresh views over the same files
    store = DataStore(settings.data_root())
    views = []
    for layer_dir in sorted(Path(store.root).glob("*/")) if "://" not in store.root else []:
        if layer_dir.name.startswith(("_", ".")):
            continue
        for dataset_dir in sorted(layer_dir.glob("*/")):
            if store.partitions(layer_dir.name, dataset_dir.name):
                views.append(
                    ViewSpec(
                        layer_dir.name,
                        dataset_dir.name,
                        dataset_glob(store, layer_dir.name, dataset_dir.name),
                    )
                )
    if not views:
        raise CliError(f"no data under {store.root}: run `make demo` first")
    con = duckdb.connect()
    for statement in view_statements(views):
        con.execute(statement)
    return con


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb
    import polars as pl

    con = _catalog_connection()
    try:
        frame = con.sql(args.query).pl()
    except duckdb.Error as exc:
        raise CliError(f"query failed: {exc}") from exc
    finally:
        con.close()
    with pl.Config(tbl_rows=args.max_rows, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60):
        print(frame)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    _ensure_instance()
    from smallcaps_assets import doctor

    return doctor.run(fix=args.fix, stuck_minutes=args.stuck_minutes)


def cmd_realism(args: argparse.Namespace) -> int:
    """Stylized facts of a data root's stored processed bars beside real small-cap ranges,
    read straight from the partitions (no Dagster run)."""
    from smallcaps_assets.core.storage import DataStore
    from smallcaps_assets.research.market_realism import measure_data_root, report_text

    root = args.data_dir or settings.data_root()
    if "://" not in root:
        root = str(Path(root).expanduser().resolve())
    try:
        report = measure_data_root(DataStore(root), args.start, args.end)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    print(report_text(report, root))
    return 1 if args.strict and report.outside else 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="smallcaps", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="materialize every asset for a window on the simulated market"
    )
    demo.add_argument(
        "--start", type=_iso_date, default=DEFAULT_START, help="first session (YYYY-MM-DD)"
    )
    demo.add_argument(
        "--end", type=_iso_date, default=DEFAULT_END, help="last session (YYYY-MM-DD)"
    )
    demo.add_argument(
        "--tickers",
        type=_ticker_count,
        default=None,
        help=f"simulated tickers, 1..{MAX_TICKERS} (default 300; the market is built in memory, "
        "5,000 names take ~20 s and 1.2 GB before the first session)",
    )
    demo.add_argument(
        "--seed", type=_seed, default=None, help="simulator seed, 0 or more (default 7)"
    )
    demo.add_argument(
        "--signal",
        type=_signal_strength,
        default=None,
        help="planted signal strength >= 0, 0 = noise (default 1.0)",
    )
    demo.add_argument(
        "--data-dir", default=None, help="data root (default ./data or $SMALLCAPS_DATA_DIR)"
    )
    demo.set_defaults(func=cmd_demo)

    canary = sub.add_parser(
        "canary",
        help="leakage canary: the full pipeline at signal 0 must score AUC 0.50 +/- 0.02",
    )
    canary.add_argument("--start", type=_iso_date, default=dt.date(2024, 1, 2))
    canary.add_argument("--end", type=_iso_date, default=dt.date(2025, 2, 28))
    canary.add_argument(
        "--tickers",
        type=_ticker_count,
        default=2000,
        help=f"simulated tickers, 1..{MAX_TICKERS} (default 2000: ~45 minutes per seed)",
    )
    canary.add_argument("--seed", type=_seed, default=11, help="one seed (default 11)")
    canary.add_argument(
        "--seeds", type=_seed, nargs="+", default=None, help="several seeds, one market each"
    )
    canary.add_argument(
        "--signal", type=_signal_strength, default=0.0, help="planted signal >= 0 (default 0)"
    )
    canary.add_argument(
        "--data-dir", default=None, help="default data/canary-signal<signal>-seed<seed>"
    )
    canary.set_defaults(func=cmd_canary)

    ui = sub.add_parser("ui", help="start the Dagster UI and the MLflow UI on 127.0.0.1")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--dagster-port", type=int, default=3000)
    ui.add_argument("--mlflow-port", type=int, default=5000)
    ui.set_defaults(func=cmd_ui)

    sql = sub.add_parser(
        "sql",
        help='query every layer with DuckDB, e.g. smallcaps sql "select count(*) from raw.daily_bars"',
    )
    sql.add_argument("query")
    sql.add_argument("--max-rows", type=int, default=40)
    sql.set_defaults(func=cmd_sql)

    realism = sub.add_parser(
        "realism",
        help="stylized facts of a data root (gaps, volatility, gap-day fade, intraday volume, "
        "high of day) beside real small-cap ranges",
    )
    realism.add_argument(
        "--data-dir", default=None, help="data root (default ./data or $SMALLCAPS_DATA_DIR)"
    )
    realism.add_argument("--start", type=_iso_date, default=None, help="first session")
    realism.add_argument("--end", type=_iso_date, default=None, help="last session")
    realism.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a fact with enough observations is outside its real range",
    )
    realism.set_defaults(func=cmd_realism)

    doctor = sub.add_parser(
        "doctor", help="instance health, held pool slots and stuck runs; --fix frees them"
    )
    doctor.add_argument(
        "--fix", action="store_true", help="mark runs whose process is gone failed, free slots"
    )
    doctor.add_argument("--stuck-minutes", type=float, default=60.0, help="quiet run threshold")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_inputs(args)
        if args.command not in ("demo", "canary"):
            return int(args.func(args))
        # Dagster runs in this process and takes over SIGTERM/SIGINT while it does; the watch
        # makes a stop signal end the command within seconds whatever the run is doing.
        with processes.StopWatch(grace=10.0) as watch:
            code = int(args.func(args))
        if watch.received is not None:
            print(f"smallcaps: stopped by {signal.Signals(watch.received).name}", file=sys.stderr)
            return 128 + watch.received
        return code
    except CliError as exc:
        print(f"smallcaps: {exc}", file=sys.stderr)
        return 2
    except processes.Stopped as stop:
        print(f"smallcaps: stopped by {stop.name}", file=sys.stderr)
        return stop.exit_code


if __name__ == "__main__":
    sys.exit(main())
