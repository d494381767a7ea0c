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
from smallcaps_assets.core import backtest, modeling, performance, research_schemas, walkforward
from smallcaps_assets.core.costs import CostModel
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.core.validation import validate_schema
from smallcaps_assets.defs import automation
from smallcaps_assets.defs.checks import CheckSet, PartitionPublisher, PublishEvent
from smallcaps_assets.defs.models import PREDICTIONS_KEY, MLflowResource
from smallcaps_assets.defs.partitions import months
from smallcaps_assets.defs.plots import png_image, render_png
from smallcaps_assets.defs.resources import DataStoreResource, MarketDataResource

LAYER = "backtest"
TRADES_KEY = dg.AssetKey([LAYER, "trades"])
REPORT_KEY = dg.AssetKey([LAYER, "report"])
SUMMARY_FILE = "reports/backtest_summary.json"


class BacktestSettingsResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Risk rules and costs of the backtest (``core.backtest``, ``core.costs``).
    ``borrow_fee_annual`` is the annualized borrow rate shorts pay on their notional for the
    time held (default 30 %); locates are assumed available, and no short is entered while the
    ticker is under the short-sale restriction (Rule 201)."""

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
    borrow_fee_annual: float = 0.30

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
            borrow_fee_annual=self.borrow_fee_annual,
        )


def _month_candidates(
    store: DataStore, month: dt.date, *, selected_only: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Selected predictions of the month (every event of the month without ``selected_only``:
    the no-skill baseline) as candidate trades, and the month's minute bars."""
    sessions = [d.isoformat() for d in walkforward.windows_for(month).test.sessions()]
    days = [d for d in sessions if store.exists("labels", "events", d)]
    predictions = store.read("ml", "predictions", month)
    if selected_only:
        predictions = predictions.filter(pl.col("selected"))
    bars = store.read_many("processed", "minute_bars", days).select(backtest.BAR_COLUMNS)
    candidates = backtest.month_candidates(
        predictions,
        store.read_many("labels", "events", days),
        store.read_many("features", "events", days),
        bars,
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


def _trades_checks() -> CheckSet:
    return CheckSet(
        TRADES_KEY,
        research_schemas.TRADES_MODEL,
        {
            "no_trade_before_signal": "Every entry is at or after its signal.",
            "fills_inside_bars": "Every fill price lies inside a traded bar's high/low range.",
            "cash_balances": "Cash after the month equals cash before plus net P&L (zero drift).",
        },
    )


@dg.asset(
    key=TRADES_KEY,
    group_name=LAYER,
    automation_condition=automation.when_month_ends(),
    partitions_def=months,
    deps=[PREDICTIONS_KEY],
    description="Trades of month M's selected out-of-sample events, long or short by pattern: "
    "next-bar-open entries, take profit / stop / timeout exits, ATR sizing, participation cap, "
    "daily loss and drawdown stops, no shorts under SSR, ECN + SEC fees, borrow fees and "
    "spread slippage.",
    check_specs=_trades_checks().specs(),
    kinds={"polars", "parquet"},
)
def backtest_trades(
    context: dg.AssetExecutionContext,
    data: DataStoreResource,
    backtest_settings: BacktestSettingsResource,
) -> Iterator[PublishEvent]:
    store, key = data.store(), context.partition_key
    month = dt.date.fromisoformat(key)
    candidates, bars = _month_candidates(store, month)
    result = backtest.run_backtest(candidates, backtest_settings.rules(), backtest_settings.costs())
    publisher = PartitionPublisher(context, _trades_checks(), store, LAYER, "trades")
    publisher.submit(
        key,
        result.trades,
        publisher.checks.audit(
            key, result.trades, backtest.month_checks(result, bars, partition=key)
        ),
        functools.partial(store.write, LAYER, "trades", month, result.trades),
        lambda report: {
            "dagster/row_count": result.trades.height,
            **_dollar_figures(backtest.month_figures(result, candidates)),
            "path": dg.MetadataValue.path(report.path),
        },
    )
    progress.partition_done(TRADES_KEY.to_user_string(), key)
    yield from publisher.outcome({})


def _dollar_figures(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in figures.items()}


def _curve_png(values: np.ndarray[Any, Any], title: str, fill: bool = False) -> bytes:
    def draw(ax: Any) -> None:
        if fill:
            ax.fill_between(range(len(values)), values, 0, color="tab:red", alpha=0.4)
        else:
            ax.plot(values)
        ax.set_title(title)
        ax.set_xlabel("session")

    return render_png(draw, figsize=(7, 3), dpi=80)


def _report_checks() -> CheckSet:
    return CheckSet(
        REPORT_KEY,
        research_schemas.BACKTEST_SUMMARY_MODEL,
        {
            "patterns_table": "Pandera HitRateByPatternModel: one row per known pattern with its "
            "trade count and a hit rate in [0, 1]."
        },
    )


@dg.asset(
    key=REPORT_KEY,
    group_name=LAYER,
    automation_condition=automation.after_any_update(),
    deps=[TRADES_KEY],
    description="The stitched walk-forward backtest: expectancy, profit factor, Sharpe, CAR/MDD, "
    "hit rate by pattern, 95th-percentile loss, exposure, turnover, fees and slippage, trials; "
    "equity and drawdown plots; reports/backtest_summary.json.",
    check_specs=_report_checks().specs(),
    kinds={"mlflow", "json"},
)
def backtest_report(
    context: dg.AssetExecutionContext,
    data: DataStoreResource,
    market: MarketDataResource,
    mlflow_tracking: MLflowResource,
    backtest_settings: BacktestSettingsResource,
) -> Iterator[PublishEvent]:
    store = data.store()
    trades, oos_auc, trials = _stitched(store)
    source = market.source_label(store)
    summary = performance.summarize_backtest(
        trades, backtest_settings.account_size, oos_auc, source
    )
    summary["trials"] = trials  # one model configuration per month, no search
    table, patterns = performance.summary_table(summary), performance.hit_rate_by_pattern(trades)
    key = store.partitions(LAYER, "trades")[-1]  # the stitched range's last month
    publisher = PartitionPublisher(context, _report_checks(), store, LAYER, "report")
    patterns_report = validate_schema(research_schemas.HIT_RATE_BY_PATTERN_MODEL, patterns)
    publisher.submit(
        key,
        table,
        publisher.checks.audit(key, table, {"patterns_table": patterns_report}),
        lambda: _publish_report(context, store, mlflow_tracking, summary),
        lambda metadata: metadata,
    )
    yield from publisher.outcome({})


def _stitched(store: DataStore) -> tuple[pl.DataFrame, float, int]:
    """Every month's trades, the pooled out-of-sample AUC and the months (trials) stitched."""
    month_keys = store.partitions(LAYER, "trades")
    if not month_keys:
        raise ValueError(
            "backtest/report: no backtest/trades partitions yet; materialize them first"
        )
    trades = store.read_many(LAYER, "trades", month_keys)
    predictions = store.read_many("ml", "predictions", store.partitions("ml", "predictions"))
    labels = store.read_many("labels", "events", store.partitions("labels", "events"))
    return trades, modeling.pooled_out_of_sample(predictions, labels)["auc"], len(month_keys)


def _publish_report(
    context: dg.AssetExecutionContext,
    store: DataStore,
    mlflow_tracking: MLflowResource,
    summary: dict[str, Any],
) -> dict[str, Any]:
    """Write reports/backtest_summary.json, log the report to MLflow; returns the metadata."""
    equity = np.asarray(summary.pop("equity"))
    equity_png = _curve_png(equity, "Equity (net, months stitched)")
    drawdown_png = _curve_png(performance.drawdown_curve(equity), "Drawdown", fill=True)
    text = json.dumps(performance.json_safe(summary), indent=2) + "\n"
    path = store.write_text(SUMMARY_FILE, text)
    mlflow = mlflow_tracking.client()
    with mlflow.start_run(run_name="backtest report") as run:
        mlflow.set_tags(
            {
                "dagster_run_id": context.run.run_id,
                "data_source": summary["source"],
                "kind": "backtest",
            }
        )
        mlflow.log_metrics(
            {
                k: float(v)
                for k, v in summary.items()
                if isinstance(v, (int, float)) and np.isfinite(v)
            }
        )
        mlflow.log_text(text, "backtest_summary.json")
        for name, payload in (("equity.png", equity_png), ("drawdown.png", drawdown_png)):
            mlflow.log_image(png_image(payload), name)
        run_id = run.info.run_id

    def image(payload: bytes) -> dg.MetadataValue:
        return dg.MetadataValue.md(
            f"![plot](data:image/png;base64,{base64.b64encode(payload).decode()})"
        )

    return {
        **{k: summary[k] for k in performance.SUMMARY_COLUMNS if k != "costs_per_trade"},
        "hit_rate_by_pattern": dg.MetadataValue.json(
            performance.json_safe(summary["hit_rate_by_pattern"])
        ),
        "trades_by_pattern": dg.MetadataValue.json(summary["trades_by_pattern"]),
        "by_direction": dg.MetadataValue.json(
            performance.json_safe(
                {
                    d: {
                        "trades": n,
                        "hit_rate": summary["hit_rate_by_direction"][d],
                        "net_pnl": summary["net_pnl_by_direction"][d],
                    }
                    for d, n in summary["trades_by_direction"].items()
                }
            )
        ),
        "equity_curve": image(equity_png),
        "drawdown": image(drawdown_png),
        "summary_file": dg.MetadataValue.path(path),
        "mlflow_run_id": run_id,
        "source": summary["source"],
    }


backtest_assets = [backtest_trades, backtest_report]
