"""Backtest of the walk-forward predictions: monthly trades and the stitched report.

``backtest/trades`` for month M trades M's selected out-of-sample events on their minute paths
(fills from the triple-barrier engine, sizing/risk/costs from ``core.backtest``); every month
starts from the configured account size, so months are independent and can be backfilled in
any order. ``backtest/report`` stitches every month.
"""

import base64
import datetime as dt
import functools
import json
from collections.abc import Iterator
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from smallcaps_assets import progress
from smallcaps_assets.core import backtest, performance, walkforward
from smallcaps_assets.core.costs import CostModel
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.core.validation import condition_report
from smallcaps_assets.defs.checks import NamedChecks, PartitionPublisher, PublishEvent
from smallcaps_assets.defs.models import PREDICTIONS_KEY, MLflowResource
from smallcaps_assets.defs.partitions import months
from smallcaps_assets.defs.plots import png_image, render_png
from smallcaps_assets.defs.resources import DataStoreResource, MarketDataResource

LAYER = "backtest"
TRADES_KEY = dg.AssetKey([LAYER, "trades"])
REPORT_KEY = dg.AssetKey([LAYER, "report"])
SUMMARY_FILE = "reports/backtest_summary.json"


class BacktestSettingsResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    account_size: float = 100_000.0
    risk_per_trade: float = 0.005
    max_position_fraction: float = 0.2
    participation_cap: float = 0.05
    max_open_positions: int = 3
    max_daily_loss: float = 0.02
    kill_switch_drawdown: float = 0.15
    ecn_fee_per_share: float = 0.003
    sec_fee_per_million: float = 27.80
    slippage_factor: float = 0.5
    ssr_slippage_factor: float = 2.0
    min_spread: float = 0.001

    def rules(self) -> backtest.RiskRules:
        return backtest.RiskRules(
            account_size=self.account_size,
            risk_per_trade=self.risk_per_trade,
            max_position_fraction=self.max_position_fraction,
            participation_cap=self.participation_cap,
            max_open_positions=self.max_open_positions,
            max_daily_loss=self.max_daily_loss,
            kill_switch_drawdown=self.kill_switch_drawdown,
        )

    def costs(self) -> CostModel:
        return CostModel(
            ecn_fee_per_share=self.ecn_fee_per_share,
            sec_fee_per_million=self.sec_fee_per_million,
            slippage_factor=self.slippage_factor,
            ssr_slippage_factor=self.ssr_slippage_factor,
            min_spread=self.min_spread,
        )


def _month_candidates(
    store: DataStore, month: dt.date, *, selected_only: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Selected predictions of the month (every event of the month without ``selected_only``:
    the no-skill baseline) with their fills, sizing inputs and the minute bars."""
    sessions = [d.isoformat() for d in walkforward.windows_for(month).test.sessions()]
    days = [d for d in sessions if store.exists("labels", "events", d)]
    keys = ["ticker", "ts", "pattern"]
    predictions = store.read("ml", "predictions", month)
    if selected_only:
        predictions = predictions.filter(pl.col("selected"))
    labels = store.read_many("labels", "events", days)
    features = store.read_many("features", "events", days).select(
        *keys, "atr_pct_14", "spread_est", "ssr_active"
    )
    bars = store.read_many("processed", "minute_bars", days).select(
        "ticker", "ts", "open", "high", "low", "close", "volume"
    )
    entry_volume = bars.select(
        "ticker", pl.col("ts").alias("entry_ts"), pl.col("volume").alias("entry_bar_volume")
    )
    candidates = (
        predictions.select(*keys, "score")
        .join(labels.drop("date"), on=keys, how="inner")
        .join(features, on=keys, how="left")
        .join(entry_volume, on=["ticker", "entry_ts"], how="left")
        .with_columns(
            date=pl.col("ts").dt.convert_time_zone("America/New_York").dt.date(),
            ssr_active=pl.col("ssr_active") > 0,
        )
    )
    return candidates, bars


def no_skill_trades(store: DataStore, rules: backtest.RiskRules, costs: CostModel) -> pl.DataFrame:
    """Every month's trades when *every* out-of-sample event is a candidate, under the same
    rules and costs as the model's selection: what trading without skill earns."""
    months = [dt.date.fromisoformat(m) for m in store.partitions("ml", "predictions")]
    trades = [
        backtest.run_backtest(
            _month_candidates(store, m, selected_only=False)[0], rules, costs
        ).trades
        for m in months
    ]
    return pl.concat(trades) if trades else pl.DataFrame(schema=backtest.TRADES_SCHEMA)


def fills_outside_bars(trades: pl.DataFrame, bars: pl.DataFrame) -> int:
    """Trades whose entry is not inside its entry bar's range or whose exit price was not
    traded by any bar of the path (entry bar through the exit time)."""
    if trades.is_empty():
        return 0
    entry = trades.join(
        bars.rename({"ts": "entry_ts"}), on=["ticker", "entry_ts"], how="left"
    ).filter(~pl.col("entry_price").is_between(pl.col("low"), pl.col("high")).fill_null(False))
    path = (
        trades.select("ticker", "entry_ts", "exit_ts", "exit_price")
        .join(bars, on="ticker")
        .filter((pl.col("ts") >= pl.col("entry_ts")) & (pl.col("ts") <= pl.col("exit_ts")))
        .group_by("ticker", "entry_ts")
        .agg(
            traded=(pl.col("exit_price") >= pl.col("low") - 1e-9)
            .and_(pl.col("exit_price") <= pl.col("high") + 1e-9)
            .any()
        )
    )
    exits = trades.join(path, on=["ticker", "entry_ts"], how="left").filter(
        ~pl.col("traded").fill_null(False)
    )
    return entry.height + exits.height


def _trades_checks() -> NamedChecks:
    return NamedChecks(
        TRADES_KEY,
        {
            "no_trade_before_signal": "Every entry is at or after its signal.",
            "fills_inside_bars": "Every fill price lies inside a traded bar's high/low range.",
            "cash_balances": "Cash after the month equals cash before plus net P&L (zero drift).",
        },
    )


@dg.asset(
    key=TRADES_KEY,
    group_name=LAYER,
    partitions_def=months,
    deps=[PREDICTIONS_KEY],
    description="Trades of month M's selected out-of-sample events: next-bar-open entries, "
    "take profit / stop / timeout exits, ATR sizing, participation cap, daily loss and "
    "drawdown stops, ECN + SEC fees and spread slippage.",
    check_specs=_trades_checks().specs(),
    kinds={"polars", "parquet"},
)
def backtest_trades(
    context: dg.AssetExecutionContext,
    data: DataStoreResource,
    backtest_settings: BacktestSettingsResource,
) -> Iterator[PublishEvent]:
    store = data.store()
    key = context.partition_key
    month = dt.date.fromisoformat(key)
    candidates, bars = _month_candidates(store, month)
    result = backtest.run_backtest(candidates, backtest_settings.rules(), backtest_settings.costs())
    trades = result.trades
    early = trades.filter(pl.col("entry_ts") < pl.col("signal_ts")).height
    outside = fills_outside_bars(trades, bars)
    drift = abs(result.accounting_drift)
    publisher = PartitionPublisher(context, _trades_checks(), store, LAYER, "trades")
    report = publisher.submit(
        key,
        trades,
        {
            "no_trade_before_signal": condition_report(
                "entry at or after the signal", early == 0, f"{early} early trades", partition=key
            ),
            "fills_inside_bars": condition_report(
                "fill inside the bar's range", outside == 0, f"{outside} fills", partition=key
            ),
            "cash_balances": condition_report(
                "cash after = cash before + net P&L", drift < 1e-6, f"drift {drift}", partition=key
            ),
        },
        functools.partial(store.write, LAYER, "trades", month, trades),
    )
    progress.partition_done(TRADES_KEY.to_user_string(), key)

    def total(column: str) -> float:
        return float(trades.get_column(column).sum()) if trades.height else 0.0

    if report is not None:
        publisher.describe(
            key,
            {
                "dagster/row_count": trades.height,
                "candidates": candidates.height,
                "skipped": dg.MetadataValue.json(result.skipped),
                "gross_pnl": total("gross_pnl"),
                "net_pnl": total("net_pnl"),
                "fees": total("ecn_fees") + total("sec_fee"),
                "slippage": total("slippage"),
                "path": dg.MetadataValue.path(report.path),
                "early_trades": early,
                "fills_outside": outside,
                "drift": drift,
            },
        )
    yield from publisher.outcome({})


def _curve_png(values: np.ndarray[Any, Any], title: str, fill: bool = False) -> bytes:
    def draw(ax: Any) -> None:
        if fill:
            ax.fill_between(range(len(values)), values, 0, color="tab:red", alpha=0.4)
        else:
            ax.plot(values)
        ax.set_title(title)
        ax.set_xlabel("session")

    return render_png(draw, figsize=(7, 3), dpi=80)


def summarize(trades: pl.DataFrame, account: float, oos_auc: float, source: str) -> dict[str, Any]:
    """The stitched report's figures (the keys of reports/backtest_summary.json and more)."""
    pnl = trades.get_column("net_pnl").to_list()
    gross = trades.get_column("gross_pnl").to_list()
    daily = (
        trades.group_by(
            pl.col("exit_ts").dt.convert_time_zone("America/New_York").dt.date().alias("day")
        )
        .agg(pl.col("net_pnl").sum())
        .sort("day")
    )
    # Months restart at the account size; the stitched curve compounds nothing: P&L adds up.
    equity = (
        account + np.cumsum(daily.get_column("net_pnl").to_numpy())
        if daily.height
        else np.array([account])
    )
    returns = np.diff(np.concatenate([[account], equity])) / np.concatenate(
        [[account], equity[:-1]]
    )
    start = trades.get_column("date").min() if trades.height else None
    end = trades.get_column("date").max() if trades.height else None
    minutes_held = (
        (trades.get_column("exit_ts") - trades.get_column("entry_ts")).dt.total_minutes().sum()
        if trades.height
        else 0
    )
    sessions = daily.height
    by_pattern = (
        trades.group_by("pattern")
        .agg(hit_rate=(pl.col("net_pnl") > 0).mean(), trades=pl.len())
        .sort("pattern")
    )
    _, gross_se, gross_t = performance.expectancy_t(gross)
    summary = {
        "n_trades": trades.height,
        "expectancy_gross": performance.expectancy(gross),
        "expectancy_gross_se": gross_se,
        "expectancy_gross_t": gross_t,
        "costs_per_trade": performance.expectancy(
            (trades.get_column("gross_pnl") - trades.get_column("net_pnl")).to_list()
        ),
        "expectancy_net": performance.expectancy(pnl),
        "profit_factor": performance.profit_factor(pnl),
        "sharpe": performance.sharpe(returns.tolist()),
        "max_drawdown": performance.max_drawdown(equity.tolist()),
        "cagr": performance.car(account, float(equity[-1]), start, end)
        if start and end and end > start
        else float("nan"),
        "hit_rate": float(np.mean(np.asarray(pnl) > 0)) if pnl else float("nan"),
        "auc_oos": oos_auc,
        "fees": float(trades.get_column("ecn_fees").sum() + trades.get_column("sec_fee").sum())
        if trades.height
        else 0.0,
        "slippage": float(trades.get_column("slippage").sum()) if trades.height else 0.0,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "source": source,
        "loss_p95": performance.percentile_loss(pnl),
        "exposure_minutes_per_session": float(minutes_held) / sessions if sessions else 0.0,
        "turnover": float(
            (trades.get_column("shares") * trades.get_column("entry_price")).sum() / account
        )
        if trades.height
        else 0.0,
        "hit_rate_by_pattern": {str(p): float(h) for p, h, _ in by_pattern.iter_rows()},
        "equity": equity.tolist(),
    }
    summary["car_mdd"] = (
        summary["cagr"] / summary["max_drawdown"] if summary["max_drawdown"] else float("nan")
    )
    return summary


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


@dg.asset(
    key=REPORT_KEY,
    group_name=LAYER,
    deps=[TRADES_KEY],
    description="The stitched walk-forward backtest: expectancy, profit factor, Sharpe, CAR/MDD, "
    "hit rate by pattern, 95th-percentile loss, exposure, turnover, fees and slippage, trials; "
    "equity and drawdown plots; reports/backtest_summary.json.",
    kinds={"mlflow", "json"},
)
def backtest_report(
    context: dg.AssetExecutionContext,
    data: DataStoreResource,
    market: MarketDataResource,
    mlflow_tracking: MLflowResource,
    backtest_settings: BacktestSettingsResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    from smallcaps_assets.core.modeling import pooled_out_of_sample

    store = data.store()
    month_keys = store.partitions(LAYER, "trades")
    if not month_keys:
        raise ValueError(
            "backtest/report: no backtest/trades partitions yet; materialize them first"
        )
    trades = store.read_many(LAYER, "trades", month_keys)
    predictions = store.read_many("ml", "predictions", store.partitions("ml", "predictions"))
    labels = store.read_many("labels", "events", store.partitions("labels", "events"))
    oos = pooled_out_of_sample(predictions, labels)
    source = market.source_label(store)
    summary = summarize(trades, backtest_settings.account_size, oos["auc"], source)
    equity = np.asarray(summary.pop("equity"))
    peaks = np.maximum.accumulate(equity)
    drawdown = -(peaks - equity) / peaks
    equity_png = _curve_png(equity, "Equity (net, months stitched)")
    drawdown_png = _curve_png(drawdown, "Drawdown", fill=True)
    summary["trials"] = len(month_keys)  # one model configuration per month, no search
    path = store.write_text(SUMMARY_FILE, json.dumps(_json_safe(summary), indent=2) + "\n")
    mlflow = mlflow_tracking.client()
    with mlflow.start_run(run_name="backtest report") as run:
        mlflow.set_tags(
            {"dagster_run_id": context.run.run_id, "data_source": source, "kind": "backtest"}
        )
        mlflow.log_metrics(
            {
                k: float(v)
                for k, v in summary.items()
                if isinstance(v, (int, float)) and np.isfinite(v)
            }
        )
        mlflow.log_text(json.dumps(_json_safe(summary), indent=2), "backtest_summary.json")
        for name, payload in (("equity.png", equity_png), ("drawdown.png", drawdown_png)):
            mlflow.log_image(png_image(payload), name)
        run_id = run.info.run_id

    def image(payload: bytes) -> dg.MetadataValue:  # type: ignore[type-arg]
        return dg.MetadataValue.md(
            f"![plot](data:image/png;base64,{base64.b64encode(payload).decode()})"
        )

    return dg.MaterializeResult(
        metadata={
            "n_trades": summary["n_trades"],
            "expectancy_gross": summary["expectancy_gross"],
            "expectancy_net": summary["expectancy_net"],
            "profit_factor": summary["profit_factor"],
            "sharpe": summary["sharpe"],
            "max_drawdown": summary["max_drawdown"],
            "auc_oos": summary["auc_oos"],
            "fees": summary["fees"],
            "slippage": summary["slippage"],
            "hit_rate_by_pattern": dg.MetadataValue.json(
                _json_safe(summary["hit_rate_by_pattern"])
            ),
            "equity_curve": image(equity_png),
            "drawdown": image(drawdown_png),
            "summary_file": dg.MetadataValue.path(path),
            "mlflow_run_id": run_id,
            "source": source,
        }
    )


backtest_assets = [backtest_trades, backtest_report]
