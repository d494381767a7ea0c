"""Backtest statistics from a trade list and a daily equity curve.

Conventions: trade P&L in dollars (net of costs unless said), daily returns as fractions of the
previous day's equity, Sharpe annualized with 252 sessions and no risk-free rate, drawdowns as
fractions of the running peak, CAR compounded over calendar years (365.25 days).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "car",
    "expectancy",
    "expectancy_t",
    "max_drawdown",
    "mean_difference_t",
    "percentile_loss",
    "profit_factor",
    "sharpe",
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
