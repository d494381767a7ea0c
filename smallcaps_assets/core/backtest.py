"""Event-driven backtest of selected events: sizing, risk rules, costs and cash accounting.

Input rows are candidate trades in time order of entry: the model selected the event, and the
triple-barrier path (``core.labels``) already fixed the fill prices and times — entry at the
open of the first bar after the signal (after a halt, the resumption bar: no fill while halted),
exit by take profit, stop, timeout, at the resumption after a halt, or at the close when the
horizon reaches past it (``end_of_day``: the last quarter hour, half-day sessions). This module
decides which candidates are taken and with how many shares, and books the money:

* each event is traded in its pattern's direction (``core.events.DIRECTION``): a long buys at
  the entry and sells at the exit, a short sells at the entry and buys back at the exit
  (gross P&L ``shares x (entry - exit)``), paying a borrow fee (``core.costs``); shares to
  short are assumed locatable;
* entries only between ``first_entry`` and ``last_entry`` (New York time), and only for events
  with an entry bar;
* no short entry while the ticker's short-sale restriction is active (``ssr_active``: SEC Rule
  201, after a 10 % fall from the prior close, for the rest of that day and the next). Under
  SSR a short may only be sold above the national best bid; minute bars cannot show the bid,
  so no fill could be proven and the backtest does not short then (skip ``ssr_short``);
* at most ``max_open_positions`` at once (a position is open from entry to exit);
* shares = equity x ``risk_per_trade`` / (entry x ATR% x ``atr_stop_multiple``), capped by
  ``max_position_fraction`` of equity, by ``participation_cap`` x the entry bar's volume and by
  cash; fewer than one share means no trade;
* no new entries on a day once its realized loss (closed trades only: a trade's outcome is not
  known at the next entry) reaches ``max_daily_loss`` of the day's starting equity, and none at
  all after equity falls ``kill_switch_drawdown`` below its peak.

Cash: a long's entry pays ``shares x entry + entry-side costs`` and its exit receives
``shares x exit - exit-side costs``; a short's entry receives ``shares x entry - entry-side
costs`` and its exit pays ``shares x exit + exit-side costs`` (the borrow fee among them). A
short's sale proceeds stay as collateral and it ties up as much cash again (100 % margin), so
it reduces the cash that sizes later trades as a long of the same notional would. With every
position closed, final cash equals starting cash plus the sum of net P&L; :func:`run_backtest`
returns that drift (it must be 0).
"""

from __future__ import annotations

import datetime as dt
import heapq
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from smallcaps_assets.core import calendar
from smallcaps_assets.core.costs import CostModel, trade_costs
from smallcaps_assets.core.events import DIRECTION
from smallcaps_assets.core.schemas import OHLCV
from smallcaps_assets.core.validation import CheckReport, condition_report

__all__ = [
    "TRADES_SCHEMA",
    "BacktestResult",
    "RiskRules",
    "fills_outside_bars",
    "month_candidates",
    "month_checks",
    "month_figures",
    "run_backtest",
]

TRADES_SCHEMA: Final = pl.Schema(
    {
        "date": pl.Date(),
        "ticker": pl.String(),
        "pattern": pl.String(),
        "signal_ts": pl.Datetime("ms", "UTC"),
        "entry_ts": pl.Datetime("ms", "UTC"),
        "entry_price": pl.Float64(),
        "exit_ts": pl.Datetime("ms", "UTC"),
        "exit_price": pl.Float64(),
        "exit_reason": pl.String(),
        "direction": pl.String(),
        "shares": pl.Float64(),
        "gross_pnl": pl.Float64(),
        "ecn_fees": pl.Float64(),
        "sec_fee": pl.Float64(),
        "borrow_fee": pl.Float64(),
        "slippage": pl.Float64(),
        "net_pnl": pl.Float64(),
    }
)

REQUIRED: Final = (
    "date",
    "ticker",
    "pattern",
    "ts",
    "entry_ts",
    "entry_price",
    "exit_ts",
    "exit_price",
    "exit_reason",
    "atr_pct_14",
    "spread_est",
    "ssr_active",
    "entry_bar_volume",
)


@dataclass(frozen=True)
class RiskRules:
    account_size: float = 100_000.0
    risk_per_trade: float = 0.005
    atr_stop_multiple: float = 1.0
    max_position_fraction: float = 0.2
    participation_cap: float = 0.05
    max_open_positions: int = 3
    max_daily_loss: float = 0.02
    kill_switch_drawdown: float = 0.15
    first_entry: dt.time = dt.time(9, 30)
    last_entry: dt.time = dt.time(15, 45)


@dataclass
class BacktestResult:
    trades: pl.DataFrame
    skipped: dict[str, int]
    final_cash: float
    accounting_drift: float
    killed_at: dt.datetime | None


def _shares(row: dict[str, Any], equity: float, cash: float, rules: RiskRules) -> float:
    price = float(row["entry_price"])
    atr = row["atr_pct_14"]
    if atr is None or not atr > 0:
        return 0.0
    by_risk = equity * rules.risk_per_trade / (price * float(atr) * rules.atr_stop_multiple)
    by_size = equity * rules.max_position_fraction / price
    volume = row["entry_bar_volume"] or 0.0
    by_volume = rules.participation_cap * float(volume)
    by_cash = cash / price
    return float(int(min(by_risk, by_size, by_volume, by_cash)))


def run_backtest(
    candidates: pl.DataFrame, rules: RiskRules | None = None, costs: CostModel | None = None
) -> BacktestResult:
    """Simulate the candidates (columns :data:`REQUIRED`) in order of entry."""
    rules = rules or RiskRules()
    missing = [c for c in REQUIRED if c not in candidates.columns]
    if missing:
        raise ValueError(f"backtest candidates lack columns {missing}")
    rows = candidates.sort("entry_ts", "ticker", "pattern", nulls_last=True).iter_rows(named=True)
    cash = rules.account_size
    peak = rules.account_size
    # (exit_ts, id, exit proceeds, net P&L, entry day): P&L counts as realized only at the exit.
    open_positions: list[tuple[dt.datetime, int, float, float, dt.date]] = []
    held_cost: dict[int, float] = {}
    held_total = 0.0  # sum of held_cost, kept as it changes: summing per candidate is quadratic
    # Cash a short holds back: its sale proceeds (collateral) plus its notional again (margin).
    locked: dict[int, float] = {}
    locked_total = 0.0
    day_start_equity: dict[dt.date, float] = {}
    day_realized: dict[dt.date, float] = {}
    killed_at: dt.datetime | None = None
    skipped: dict[str, int] = {}
    trades: list[dict[str, Any]] = []
    total_net = 0.0

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    def equity_now() -> float:
        # Open positions at cost: marked at entry (their exits are booked when they happen).
        return cash + held_total

    def close_until(moment: dt.datetime) -> None:
        nonlocal cash, peak, held_total, locked_total
        while open_positions and open_positions[0][0] <= moment:
            _, trade_id, proceeds, net, day = heapq.heappop(open_positions)
            cash += proceeds
            held_total -= held_cost.pop(trade_id)
            locked_total -= locked.pop(trade_id, 0.0)
            day_realized[day] = day_realized.get(day, 0.0) + net
            peak = max(peak, equity_now())

    for trade_id, row in enumerate(rows):
        if row["entry_ts"] is None or row["exit_ts"] is None:
            skip("no_entry_bar")
            continue
        entry_ts: dt.datetime = row["entry_ts"]
        close_until(entry_ts)
        equity = equity_now()
        if killed_at is None and equity <= peak * (1.0 - rules.kill_switch_drawdown):
            killed_at = entry_ts
        if killed_at is not None:
            skip("kill_switch")
            continue
        local = entry_ts.astimezone(calendar.NY)
        if not rules.first_entry <= local.time() <= rules.last_entry:
            skip("outside_entry_hours")
            continue
        day = local.date()
        day_start_equity.setdefault(day, equity)
        if -day_realized.get(day, 0.0) >= rules.max_daily_loss * day_start_equity[day]:
            skip("max_daily_loss")
            continue
        direction = DIRECTION.get(row["pattern"], "long")
        short = direction == "short"
        if short and row["ssr_active"]:
            skip("ssr_short")
            continue
        if len(open_positions) >= rules.max_open_positions:
            skip("max_open_positions")
            continue
        shares = _shares(row, equity, cash - locked_total, rules)
        if shares < 1:
            skip("size_zero")
            continue
        entry, exit_ = float(row["entry_price"]), float(row["exit_price"])
        spread = float(row["spread_est"] or 0.0)
        parts = trade_costs(
            shares,
            entry,
            exit_,
            spread=spread,
            ssr_at_entry=bool(row["ssr_active"]),
            ssr_at_exit=bool(row["ssr_active"]),
            model=costs,
            direction=direction,
            held=row["exit_ts"] - entry_ts,
        )
        # Entry-side costs: half the ECN fees, the entry fill's slippage share and, on a short
        # (the sale is its entry), the SEC fee. The borrow fee is paid at the exit.
        entry_slippage = parts.slippage * entry / (entry + exit_)
        entry_cost = parts.ecn_fees / 2.0 + entry_slippage + (parts.sec_fee if short else 0.0)
        exit_cost = parts.total - entry_cost
        side = -1.0 if short else 1.0
        # A long pays for its shares, a short receives the sale proceeds; costs are paid either way.
        cash -= side * shares * entry + entry_cost
        held_cost[trade_id] = side * shares * entry + entry_cost
        held_total += held_cost[trade_id]
        if short:
            locked[trade_id] = 2.0 * shares * entry
            locked_total += locked[trade_id]
        gross = side * shares * (exit_ - entry)
        net = gross - parts.total
        heapq.heappush(
            open_positions,
            (row["exit_ts"], trade_id, side * shares * exit_ - exit_cost, net, day),
        )
        total_net += net
        trades.append(
            {
                "date": day,
                "ticker": row["ticker"],
                "pattern": row["pattern"],
                "signal_ts": row["ts"],
                "entry_ts": entry_ts,
                "entry_price": entry,
                "exit_ts": row["exit_ts"],
                "exit_price": exit_,
                "exit_reason": row["exit_reason"],
                "direction": direction,
                "shares": shares,
                "gross_pnl": gross,
                "ecn_fees": parts.ecn_fees,
                "sec_fee": parts.sec_fee,
                "borrow_fee": parts.borrow_fee,
                "slippage": parts.slippage,
                "net_pnl": net,
            }
        )
    close_until(dt.datetime.max.replace(tzinfo=dt.UTC))
    frame = (
        pl.DataFrame(trades, schema=TRADES_SCHEMA) if trades else pl.DataFrame(schema=TRADES_SCHEMA)
    )
    return BacktestResult(
        trades=frame,
        skipped=skipped,
        final_cash=cash,
        accounting_drift=cash - (rules.account_size + total_net),
        killed_at=killed_at,
    )


EVENT_KEYS: Final = ("ticker", "ts", "pattern")
BAR_COLUMNS: Final = ("ticker", "ts", *OHLCV)
FEATURE_COLUMNS: Final = ("atr_pct_14", "spread_est", "ssr_active")


def month_candidates(
    predictions: pl.DataFrame, labels: pl.DataFrame, features: pl.DataFrame, bars: pl.DataFrame
) -> pl.DataFrame:
    """Candidate trades: scored events joined with their triple-barrier fills (labels), the
    sizing features known at the event and the entry bar's volume, with the New York session
    date. Which predictions are candidates (selected only, or every one) is the caller's choice."""
    keys = list(EVENT_KEYS)
    entry_volume = bars.select(
        "ticker", pl.col("ts").alias("entry_ts"), pl.col("volume").alias("entry_bar_volume")
    )
    return (
        predictions.select(*keys, "score")
        .join(labels.drop("date"), on=keys, how="inner")
        .join(features.select(*keys, *FEATURE_COLUMNS), on=keys, how="left")
        .join(entry_volume, on=["ticker", "entry_ts"], how="left")
        .with_columns(
            date=pl.col("ts").dt.convert_time_zone("America/New_York").dt.date(),
            ssr_active=pl.col("ssr_active") > 0,
        )
    )


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


def month_checks(
    result: BacktestResult, bars: pl.DataFrame, *, partition: str = ""
) -> dict[str, CheckReport]:
    """A month's trades: none entered before its signal, every fill traded by a bar, and cash
    that balances to the cent."""
    trades = result.trades
    early = trades.filter(pl.col("entry_ts") < pl.col("signal_ts")).height
    outside = fills_outside_bars(trades, bars)
    drift = abs(result.accounting_drift)
    return {
        "no_trade_before_signal": condition_report(
            "entry at or after the signal", early == 0, f"{early} early", partition=partition
        ),
        "fills_inside_bars": condition_report(
            "fill inside the bar's range", outside == 0, f"{outside} fills", partition=partition
        ),
        "cash_balances": condition_report(
            "cash after = cash before + net P&L", drift < 1e-6, f"{drift}", partition=partition
        ),
    }


def month_figures(result: BacktestResult, candidates: pl.DataFrame) -> dict[str, Any]:
    """A month's totals in dollars: gross and net P&L, fees, slippage, and what was skipped."""
    trades = result.trades

    def total(column: str) -> float:
        return float(trades.get_column(column).sum()) if trades.height else 0.0

    return {
        "trades": trades.height,
        "candidates": candidates.height,
        "skipped": dict(result.skipped),
        "gross_pnl": total("gross_pnl"),
        "net_pnl": total("net_pnl"),
        "fees": total("ecn_fees") + total("sec_fee"),
        "borrow_fees": total("borrow_fee"),
        "slippage": total("slippage"),
        "accounting_drift": abs(result.accounting_drift),
    }
