"""What ``smallcaps demo`` prints when its layers are done (or one failed): a line per layer,
the datasets' partitions and rows, the processed layer by month, the walk-forward and backtest
headlines, and where to look next."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

import smallcaps_assets.warnings_filter  # noqa: F401  (before the assets are declared)
from smallcaps_assets.cli.errors import CliError
from smallcaps_assets.cli.sql import catalog_connection
from smallcaps_assets.core.catalog import PROCESSED_MONTHLY_SQL
from smallcaps_assets.core.modeling import pooled_out_of_sample
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.defs.backtest import SUMMARY_FILE
from smallcaps_assets.defs.processed import EVENT_DATASETS, PROCESSED_DATASETS
from smallcaps_assets.defs.raw import MINUTE_BARS, RAW_DATASETS


def fmt_secs(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def dollars(value: float) -> str:
    """-14.15 as -$14.15 (the sign before the currency symbol)."""
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def print_failure(result: dg.ExecuteInProcessResult) -> None:
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


def print_summary(
    store: DataStore,
    keys: list[str],
    summary: list[tuple[str, str, float]],
    started: float,
    home: Path,
) -> None:
    print("\nSummary")
    for layer, status, seconds in summary:
        print(f"  layer {layer:<10} {status:<7} {fmt_secs(seconds)}")
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
    watchlist = watchlist_preview(store)
    if watchlist:
        print(watchlist)
    print(
        f"\n  total time {fmt_secs(time.monotonic() - started)}; data was SIMULATED "
        f"(no API key used)\n"
        f"  data files:  {store.root}\n"
        f"  instance:    {home}\n"
        f"  look at it:  make ui   (Dagster UI http://127.0.0.1:3000, MLflow UI http://127.0.0.1:5000)\n"
        f'  query it:    uv run smallcaps sql "select * from processed.universe limit 5"\n'
        f"  one partition from the CLI: uv run dagster asset materialize -m smallcaps_assets.definitions "
        f"--select 'key:\"raw/daily_bars\"' --partition {keys[-1]}"
    )


def _walk_forward_summary(store: DataStore) -> str:
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


def _backtest_headline(store: DataStore) -> str:
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
        f"  summary: {store.root}/{SUMMARY_FILE}"
    )


def watchlist_preview(store: DataStore, lines: int = 14) -> str:
    """The newest Markdown watchlist the run wrote (the demo builds it for the window's last
    session with gappers): its path and its first lines, gappers first."""
    reports = store.files("reports/watchlist/*.md")
    if not reports:
        return ""
    newest = reports[-1]
    text = store.read_text(newest) or ""
    body = [line for line in text.splitlines() if line.strip()][:lines]
    shown = "\n".join(f"    {line}" for line in body)
    return f"\n  WATCHLIST ({store.root}/{newest}):\n{shown}"


def _monthly_summary() -> str:
    """The processed layer's month table from the catalog, indented; empty when unavailable."""
    try:
        con = catalog_connection(quiet=True)
    except CliError:
        return ""
    try:
        frame = con.sql(PROCESSED_MONTHLY_SQL).pl()
    except duckdb.Error:
        return ""
    finally:
        con.close()
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        return "\n".join("  " + line for line in str(frame).splitlines())
