"""The backtest engine on hand-built candidate trades: sizing, risk rules, accounting."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from smallcaps_assets.core.backtest import RiskRules, run_backtest
from smallcaps_assets.core.costs import CostModel

NY = dt.timezone(dt.timedelta(hours=-5))  # 2024-03-05 is EST
NO_COSTS = CostModel(
    ecn_fee_per_share=0,
    sec_fee_per_million=0,
    slippage_factor=0,
    ssr_slippage_factor=0,
    min_spread=0,
)


def trade(hhmm: str, minutes: int, entry: float, exit_: float, **extra: Any) -> dict[str, Any]:
    start = dt.datetime.combine(dt.date(2024, 3, 5), dt.time.fromisoformat(hhmm), tzinfo=NY)
    row = {
        "date": dt.date(2024, 3, 5),
        "ticker": extra.pop("ticker", "AAA"),
        "pattern": "orb",
        "ts": start.astimezone(dt.UTC) - dt.timedelta(minutes=0),
        "path_complete": True,
        "entry_ts": start.astimezone(dt.UTC),
        "entry_price": entry,
        "exit_ts": (start + dt.timedelta(minutes=minutes)).astimezone(dt.UTC),
        "exit_price": exit_,
        "exit_reason": "timeout",
        "atr_pct_14": 0.10,
        "spread_est": 0.01,
        "ssr_active": False,
        "entry_bar_volume": 1e9,
    }
    return row | extra


def frame(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows)).with_columns(
        pl.col("ts", "entry_ts", "exit_ts").cast(pl.Datetime("ms", "UTC"))
    )


def test_size_from_atr_risk_capped_by_position_size_and_participation():
    rules = RiskRules(account_size=100_000, risk_per_trade=0.005, max_position_fraction=0.2)
    # Risk $500 over a 10 % ATR stop on a $5 stock: 1,000 shares ($5,000, under the 20 % cap).
    result = run_backtest(frame(trade("10:00", 15, 5.0, 5.5)), rules, NO_COSTS)
    assert result.trades.get_column("shares").to_list() == [1_000.0]
    assert result.trades.get_column("net_pnl").to_list() == [pytest.approx(500.0)]
    thin = run_backtest(
        frame(trade("10:00", 15, 5.0, 5.5, entry_bar_volume=4_000)), rules, NO_COSTS
    )
    assert thin.trades.get_column("shares").to_list() == [200.0]  # 5 % of the bar's 4,000 shares
    tight = run_backtest(frame(trade("10:00", 15, 5.0, 5.5, atr_pct_14=0.001)), rules, NO_COSTS)
    assert tight.trades.get_column("shares").to_list() == [4_000.0]  # 20 % of equity at $5


def test_entry_hours_open_positions_missing_entry_bars_and_end_of_day_exits():
    rules = RiskRules(max_open_positions=1)
    result = run_backtest(
        frame(
            trade("10:00", 15, 5.0, 5.1),
            trade("10:05", 15, 5.0, 5.1, ticker="BBB"),  # first still open: skipped
            trade("10:20", 15, 5.0, 5.1, ticker="CCC"),  # first closed at 10:15: taken
            trade("15:50", 5, 5.0, 5.1, ticker="DDD"),  # after the last entry time
            trade("11:00", 15, 5.0, 5.1, ticker="EEE", entry_ts=None, exit_ts=None),
            # A horizon cut by the close (path incomplete) is still traded to the close.
            trade("15:45", 15, 5.0, 5.2, ticker="FFF", exit_reason="end_of_day"),
        ),
        rules,
        NO_COSTS,
    )
    assert result.trades.get_column("ticker").to_list() == ["AAA", "CCC", "FFF"]
    assert result.trades.get_column("exit_reason").to_list()[-1] == "end_of_day"
    assert result.skipped == {
        "max_open_positions": 1,
        "outside_entry_hours": 1,
        "no_entry_bar": 1,
    }


def test_daily_loss_stops_entries_only_once_the_loss_is_realized():
    rules = RiskRules(account_size=100_000, max_daily_loss=0.004, max_open_positions=5)
    result = run_backtest(
        frame(
            trade("10:00", 15, 5.0, 4.5),  # -$500 (1,000 shares), realized at 10:15
            trade("10:05", 15, 5.0, 5.0, ticker="BBB"),  # loss not known yet: taken
            trade("10:30", 15, 5.0, 5.0, ticker="CCC"),  # -0.5 % of the day realized: skipped
        ),
        rules,
        NO_COSTS,
    )
    assert result.trades.get_column("ticker").to_list() == ["AAA", "BBB"]
    assert result.skipped == {"max_daily_loss": 1}


def test_kill_switch_after_the_drawdown_limit():
    rules = RiskRules(
        account_size=10_000,
        kill_switch_drawdown=0.05,
        max_position_fraction=1.0,
        risk_per_trade=1.0,
    )
    result = run_backtest(
        frame(
            trade("10:00", 5, 10.0, 5.0),  # loses half the position
            trade("10:30", 5, 10.0, 11.0, ticker="BBB"),
        ),
        rules,
        NO_COSTS,
    )
    assert result.trades.height == 1
    assert result.skipped == {"kill_switch": 1}
    assert result.killed_at is not None


def test_costs_are_booked_and_cash_balances_to_zero_drift():
    rows = [
        trade(
            f"{10 + i // 4}:{(i % 4) * 15:02d}", 10, 5.0 + i * 0.1, 5.2 + i * 0.05, ticker=f"T{i}"
        )
        for i in range(12)
    ]
    result = run_backtest(frame(*rows), RiskRules(max_open_positions=2), CostModel())
    trades = result.trades
    assert trades.height > 0
    gross_minus_costs = (
        trades.get_column("gross_pnl")
        - trades.get_column("ecn_fees")
        - trades.get_column("sec_fee")
        - trades.get_column("slippage")
    )
    assert (gross_minus_costs - trades.get_column("net_pnl")).abs().max() < 1e-9
    assert (trades.get_column("net_pnl") < trades.get_column("gross_pnl")).all()
    assert result.accounting_drift == pytest.approx(0.0, abs=1e-6)
    assert result.final_cash == pytest.approx(100_000 + trades.get_column("net_pnl").sum())


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="atr_pct_14"):
        run_backtest(frame(trade("10:00", 15, 5.0, 5.5)).drop("atr_pct_14"))


def test_fill_check_flags_entries_and_exits_outside_traded_ranges():
    from smallcaps_assets.core.backtest import fills_outside_bars

    t0 = dt.datetime(2024, 3, 5, 15, 0, tzinfo=dt.UTC)
    bars = pl.DataFrame(
        {
            "ticker": ["AAA"] * 3,
            "ts": [t0 + dt.timedelta(minutes=i) for i in range(3)],
            "open": [5.0, 5.1, 5.2],
            "high": [5.2, 5.3, 5.6],
            "low": [4.9, 5.0, 5.1],
            "close": [5.1, 5.2, 5.5],
            "volume": [1e4] * 3,
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))

    def trades(entry: float, exit_: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "ticker": ["AAA"],
                "entry_ts": [t0],
                "entry_price": [entry],
                "exit_ts": [t0 + dt.timedelta(minutes=3)],
                "exit_price": [exit_],
            }
        ).with_columns(pl.col("entry_ts", "exit_ts").cast(pl.Datetime("ms", "UTC")))

    assert fills_outside_bars(trades(5.0, 5.55), bars) == 0
    assert fills_outside_bars(trades(5.3, 5.55), bars) == 1  # entry above the entry bar's high
    assert fills_outside_bars(trades(5.0, 6.0), bars) == 1  # exit never traded on the path


SHORT = "vwap_reject"  # a short pattern (core.events.DIRECTION)
NO_COSTS_NO_BORROW = CostModel(
    ecn_fee_per_share=0,
    sec_fee_per_million=0,
    slippage_factor=0,
    ssr_slippage_factor=0,
    min_spread=0,
    borrow_fee_annual=0,
)


def test_a_short_hitting_its_take_profit_sells_at_entry_and_buys_back_lower():
    # Risk $500 over a 10 % ATR on a $5 stock: 1,000 shares short; take profit 15 % lower.
    result = run_backtest(
        frame(trade("10:00", 15, 5.0, 4.25, pattern=SHORT, exit_reason="take_profit")),
        costs=NO_COSTS_NO_BORROW,
    )
    row = result.trades.row(0, named=True)
    assert row["direction"] == "short"
    assert row["shares"] == 1_000.0
    assert row["gross_pnl"] == pytest.approx(750.0)  # 1,000 x (5.00 - 4.25)
    assert row["net_pnl"] == pytest.approx(750.0)
    assert result.final_cash == pytest.approx(100_750.0)
    assert result.accounting_drift == pytest.approx(0.0, abs=1e-9)


def test_a_short_stopped_out_or_gapping_through_its_stop_loses():
    result = run_backtest(
        frame(
            trade("10:00", 15, 5.0, 5.5, pattern=SHORT, exit_reason="stop"),
            # Gapped through the 5.50 stop: the labels fill it at the 6.00 open.
            trade("11:00", 3, 5.0, 6.0, pattern=SHORT, exit_reason="stop", ticker="BBB"),
        ),
        costs=NO_COSTS_NO_BORROW,
    )
    # The second is sized on the equity left after the first loss: 995 shares.
    assert result.trades.get_column("shares").to_list() == [1_000.0, 995.0]
    assert result.trades.get_column("gross_pnl").to_list() == [
        pytest.approx(-500.0),
        pytest.approx(-995.0),
    ]
    assert result.final_cash == pytest.approx(100_000 - 500.0 - 995.0)


def test_no_short_entry_under_the_short_sale_restriction():
    result = run_backtest(
        frame(
            trade("10:00", 15, 5.0, 4.5, pattern=SHORT, ssr_active=True),
            trade("10:00", 15, 5.0, 5.5, ticker="BBB", ssr_active=True),  # a long: allowed
            trade("10:30", 15, 5.0, 4.5, pattern=SHORT, ticker="CCC"),  # no SSR: taken
        ),
        costs=NO_COSTS_NO_BORROW,
    )
    assert result.skipped == {"ssr_short": 1}
    assert result.trades.select("ticker", "direction").rows() == [
        ("BBB", "long"),
        ("CCC", "short"),
    ]


def test_the_borrow_fee_is_charged_on_the_short_notional_for_the_time_held():
    costs = CostModel(
        ecn_fee_per_share=0,
        sec_fee_per_million=0,
        slippage_factor=0,
        ssr_slippage_factor=0,
        min_spread=0,
        borrow_fee_annual=0.50,
    )
    result = run_backtest(
        frame(trade("10:00", 15, 5.0, 5.0, pattern=SHORT), trade("11:00", 15, 5.0, 5.0)),
        costs=costs,
    )
    short, long_ = result.trades.row(0, named=True), result.trades.row(1, named=True)
    # $5,000 short for 15 minutes at 50 %/year: 5,000 x 0.5 x 15 / 525,600 = $0.0713
    assert short["borrow_fee"] == pytest.approx(5_000 * 0.5 * 15 / 525_600)
    assert short["net_pnl"] == pytest.approx(-short["borrow_fee"])
    assert long_["borrow_fee"] == 0.0
    assert result.final_cash == pytest.approx(100_000 - short["borrow_fee"])


def test_a_short_ties_up_cash_like_a_long_of_its_notional():
    rules = RiskRules(account_size=10_000, risk_per_trade=1.0, max_position_fraction=1.0)
    result = run_backtest(
        frame(
            trade("10:00", 30, 5.0, 5.0, pattern=SHORT),  # 2,000 shares: all the cash
            trade("10:05", 15, 5.0, 5.0, ticker="BBB"),  # nothing left to buy with
        ),
        rules,
        NO_COSTS_NO_BORROW,
    )
    assert result.trades.get_column("shares").to_list() == [2_000.0]
    assert result.skipped == {"size_zero": 1}


def test_cash_balances_to_zero_drift_with_longs_and_shorts_and_every_cost():
    rows = [
        trade(
            f"{10 + i // 4}:{(i % 4) * 15:02d}",
            10 + i,
            5.0 + i * 0.1,
            5.2 - i * 0.07,
            ticker=f"T{i}",
            pattern=SHORT if i % 2 else "orb",
        )
        for i in range(12)
    ]
    result = run_backtest(frame(*rows), RiskRules(max_open_positions=2), CostModel())
    trades = result.trades
    assert set(trades.get_column("direction")) == {"long", "short"}
    costs = (
        trades.get_column("ecn_fees")
        + trades.get_column("sec_fee")
        + trades.get_column("borrow_fee")
        + trades.get_column("slippage")
    )
    assert (
        trades.get_column("gross_pnl") - costs - trades.get_column("net_pnl")
    ).abs().max() < 1e-9
    shorts = trades.filter(pl.col("direction") == "short")
    assert (shorts.get_column("borrow_fee") > 0).all()
    assert (
        shorts.get_column("gross_pnl")
        - shorts.get_column("shares")
        * (shorts.get_column("entry_price") - shorts.get_column("exit_price"))
    ).abs().max() < 1e-9
    assert result.accounting_drift == pytest.approx(0.0, abs=1e-6)
    assert result.final_cash == pytest.approx(100_000 + trades.get_column("net_pnl").sum())
