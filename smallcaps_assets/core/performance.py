"""Backtest statistics from a trade list and a daily equity curve.

Conventions: trade P&L in dollars (net of costs unless said), daily returns as fractions of the
previous day's equity, Sharpe annualized with 252 sessions and no risk-free rate, drawdowns as
fractions of the running peak, CAR compounded over calendar years (365.25 days).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import polars as pl

from smallcaps_assets.core.events import DIRECTION

__all__ = [
    "SUMMARY_COLUMNS",
    "car",
    "drawdown_curve",
    "expectancy",
    "expectancy_t",
    "hit_rate_by_direction",
    "hit_rate_by_pattern",
    "json_safe",
    "max_drawdown",
    "mean_difference_t",
    "percentile_loss",
    "profit_factor",
    "sharpe",
    "summarize_backtest",
    "summary_table",
]

SESSIONS_PER_YEAR = 252


def expectancy(pnl: Sequence[float]) -> float:
    """Mean P&L per trade (NaN without trades)."""
    return float(np.mean(pnl)) if len(pnl) else float("nan")


def expectancy_t(pnl: Sequence[float]) -> tuple[float, float, float]:
    """Mean P&L per trade, its standard error and t statistic (mean / s.e.): whether the
    expectancy is distinguishable from zero, trades taken as independent. NaNs with fewer than
    two trades; t is NaN when every trade made the same."""
    values = np.asarray(pnl, dtype=float)
    if values.size < 2:
        return float("nan"), float("nan"), float("nan")
    se = float(values.std(ddof=1) / math.sqrt(values.size))
    mean = float(values.mean())
    return mean, se, mean / se if se > 0 else float("nan")


def mean_difference_t(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Difference of mean P&L per trade (``a`` minus ``b``), its Welch standard error and t:
    whether a selection of trades is distinguishable from another set, trades independent.
    NaNs when either side has fewer than two trades; t is NaN without variation."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        return float("nan"), float("nan"), float("nan")
    diff = float(x.mean() - y.mean())
    se = math.sqrt(float(x.var(ddof=1)) / x.size + float(y.var(ddof=1)) / y.size)
    return diff, se, diff / se if se > 0 else float("nan")


def profit_factor(pnl: Sequence[float]) -> float:
    """Gross profits / gross losses (inf without losses, NaN without trades)."""
    values = np.asarray(pnl, dtype=float)
    if values.size == 0:
        return float("nan")
    losses = -values[values < 0].sum()
    gains = values[values > 0].sum()
    return float(gains / losses) if losses > 0 else float("inf")


def sharpe(daily_returns: Sequence[float]) -> float:
    """Annualized Sharpe of daily returns (NaN with fewer than 2 days or no variation)."""
    values = np.asarray(daily_returns, dtype=float)
    if values.size < 2:
        return float("nan")
    sd = values.std(ddof=1)
    return float(values.mean() / sd * math.sqrt(SESSIONS_PER_YEAR)) if sd > 0 else float("nan")


def max_drawdown(equity: Sequence[float]) -> float:
    """Largest peak-to-trough fall as a positive fraction of the peak (0 if never down)."""
    values = np.asarray(equity, dtype=float)
    if values.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(values)
    return float(np.max((peaks - values) / peaks))


def car(start_equity: float, end_equity: float, start: dt.date, end: dt.date) -> float:
    """Compound annual return between two dates."""
    years = (end - start).days / 365.25
    if years <= 0 or start_equity <= 0:
        return float("nan")
    return float((end_equity / start_equity) ** (1.0 / years) - 1.0)


def percentile_loss(pnl: Sequence[float], q: float = 95.0) -> float:
    """The loss exceeded by only (100 - q) % of trades, as a positive number (0 if none lose)."""
    values = np.asarray(pnl, dtype=float)
    if values.size == 0:
        return float("nan")
    return float(max(0.0, -np.percentile(values, 100.0 - q)))


def summarize_backtest(
    trades: pl.DataFrame, account: float, oos_auc: float, source: str
) -> dict[str, Any]:
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
    dates: list[dt.date] = trades.get_column("date").to_list()
    start = min(dates) if dates else None
    end = max(dates) if dates else None
    minutes_held = float(
        (trades.get_column("exit_ts") - trades.get_column("entry_ts")).dt.total_minutes().sum()
        if trades.height
        else 0
    )
    sessions = daily.height
    by_pattern = hit_rate_by_pattern(trades)
    by_direction = hit_rate_by_direction(trades)
    _, gross_se, gross_t = expectancy_t(gross)

    def total(column: str) -> float:
        return float(trades.get_column(column).sum()) if trades.height else 0.0

    cagr = (
        car(account, float(equity[-1]), start, end) if start and end and end > start else math.nan
    )
    drawdown = max_drawdown(equity.tolist())
    summary: dict[str, Any] = {
        "n_trades": trades.height,
        "expectancy_gross": expectancy(gross),
        "expectancy_gross_se": gross_se,
        "expectancy_gross_t": gross_t,
        "costs_per_trade": expectancy(
            (trades.get_column("gross_pnl") - trades.get_column("net_pnl")).to_list()
        ),
        "expectancy_net": expectancy(pnl),
        "profit_factor": profit_factor(pnl),
        "sharpe": sharpe(returns.tolist()),
        "max_drawdown": drawdown,
        "cagr": cagr,
        "hit_rate": float(np.mean(np.asarray(pnl) > 0)) if pnl else float("nan"),
        "auc_oos": oos_auc,
        "fees": total("ecn_fees") + total("sec_fee"),
        "borrow_fees": total("borrow_fee") if "borrow_fee" in trades.columns else 0.0,
        "slippage": total("slippage"),
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "source": source,
        "loss_p95": percentile_loss(pnl),
        "exposure_minutes_per_session": minutes_held / sessions if sessions else 0.0,
        "turnover": float(
            (trades.get_column("shares") * trades.get_column("entry_price")).sum() or 0.0
        )
        / account,
        "hit_rate_by_pattern": _by(by_pattern, "pattern", "hit_rate", float),
        "trades_by_pattern": _by(by_pattern, "pattern", "trades", int),
        "net_pnl_by_pattern": _by(by_pattern, "pattern", "net_pnl", float),
        "direction_by_pattern": _by(by_pattern, "pattern", "direction", str),
        "hit_rate_by_direction": _by(by_direction, "direction", "hit_rate", float),
        "trades_by_direction": _by(by_direction, "direction", "trades", int),
        "net_pnl_by_direction": _by(by_direction, "direction", "net_pnl", float),
        "equity": equity.tolist(),
        "car_mdd": cagr / drawdown if drawdown else math.nan,
    }
    return summary


def _by(table: pl.DataFrame, key: str, value: str, kind: Any) -> dict[str, Any]:
    return {str(k): kind(v) for k, v in table.select(key, value).iter_rows()}


def _with_direction(trades: pl.DataFrame) -> pl.DataFrame:
    """Trades with their ``direction``: the column when stored, else the pattern's."""
    if "direction" in trades.columns:
        return trades
    return trades.with_columns(
        direction=pl.col("pattern").replace_strict(
            DIRECTION, default="long", return_dtype=pl.String
        )
    )


def _hit_table(trades: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return (
        _with_direction(trades)
        .group_by(keys)
        .agg(
            trades=pl.len().cast(pl.Int64),
            hit_rate=(pl.col("net_pnl") > 0).mean(),
            net_pnl=pl.col("net_pnl").sum().cast(pl.Float64),
        )
        .select(keys[0], "trades", "hit_rate", *keys[1:], "net_pnl")
        .sort(keys[0])
    )


def hit_rate_by_pattern(trades: pl.DataFrame) -> pl.DataFrame:
    """Per pattern: trades, the share of them with a positive net P&L, the pattern's direction
    and its total net P&L in dollars."""
    return _hit_table(trades, ["pattern", "direction"])


def hit_rate_by_direction(trades: pl.DataFrame) -> pl.DataFrame:
    """Per direction (long, short): trades, the share with a positive net P&L and the total net
    P&L in dollars."""
    return _hit_table(trades, ["direction"])


SUMMARY_COLUMNS: Final = (
    "n_trades",
    "expectancy_gross",
    "expectancy_net",
    "costs_per_trade",
    "profit_factor",
    "sharpe",
    "max_drawdown",
    "hit_rate",
    "auc_oos",
    "fees",
    "slippage",
    "turnover",
)


def summary_table(summary: dict[str, Any]) -> pl.DataFrame:
    """The report's headline figures as one typed row (NaN as null), for its schema check."""
    values = json_safe({c: summary[c] for c in SUMMARY_COLUMNS})
    return pl.DataFrame(
        [values],
        schema={c: pl.Int64() if c == "n_trades" else pl.Float64() for c in SUMMARY_COLUMNS},
    )


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no NaN or infinity)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    return value


def drawdown_curve(equity: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Drawdown below the running peak at each point, as a negative fraction."""
    peaks = np.maximum.accumulate(equity)
    result: np.ndarray[Any, Any] = -(peaks - equity) / peaks
    return result
