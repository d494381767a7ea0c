"""Backtest statistics on hand-computed cases."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from smallcaps_assets.core.performance import (
    car,
    expectancy,
    expectancy_t,
    max_drawdown,
    percentile_loss,
    profit_factor,
    sharpe,
)


def test_trade_statistics():
    pnl = [100.0, -50.0, 30.0, -20.0]
    assert expectancy(pnl) == pytest.approx(15.0)
    assert profit_factor(pnl) == pytest.approx(130.0 / 70.0)
    assert profit_factor([10.0]) == math.inf
    assert math.isnan(expectancy([]))


def test_sharpe_annualizes_daily_returns():
    returns = [0.01, -0.01, 0.02, 0.0]
    mean, sd = 0.005, math.sqrt(((0.005**2) + (0.015**2) + (0.015**2) + (0.005**2)) / 3)
    assert sharpe(returns) == pytest.approx(mean / sd * math.sqrt(252))
    assert math.isnan(sharpe([0.01, 0.01]))


def test_drawdown_and_car():
    assert max_drawdown([100, 120, 90, 130, 65]) == pytest.approx(0.5)
    assert max_drawdown([100, 101, 102]) == 0.0
    assert car(100.0, 121.0, dt.date(2024, 1, 1), dt.date(2025, 12, 31)) == pytest.approx(
        1.21 ** (365.25 / 730) - 1
    )


def test_percentile_loss():
    pnl = [float(x) for x in range(-10, 90)]  # 100 trades from -10 to 89
    assert percentile_loss(pnl, 95.0) == pytest.approx(10 - 0.05 * 99)
    assert percentile_loss([5.0, 6.0]) == 0.0


def test_expectancy_t_is_the_mean_over_its_standard_error():
    # Mean 2, sample sd of [1, 3, 2, 2] = sqrt(2/3), s.e. = sd / 2.
    mean, se, t = expectancy_t([1.0, 3.0, 2.0, 2.0])
    assert mean == pytest.approx(2.0)
    assert se == pytest.approx(math.sqrt(2 / 3) / 2)
    assert t == pytest.approx(2.0 / (math.sqrt(2 / 3) / 2))
    assert all(math.isnan(x) for x in expectancy_t([5.0]))
    assert math.isnan(expectancy_t([1.0, 1.0])[2])


def test_mean_difference_t_matches_welch_and_flags_a_real_edge():
    from scipy import stats

    from smallcaps_assets.core.performance import mean_difference_t

    rng = np.random.default_rng(3)
    baseline = rng.normal(-10.0, 50.0, 2_000)
    same = rng.normal(-10.0, 50.0, 300)
    edge = rng.normal(15.0, 50.0, 300)
    diff, se, t = mean_difference_t(same, baseline)
    assert se > 0
    welch = stats.ttest_ind(same, baseline, equal_var=False)
    assert t == pytest.approx(welch.statistic)
    assert diff == pytest.approx(same.mean() - baseline.mean())
    assert abs(t) < 2
    assert mean_difference_t(edge, baseline)[2] > 5
    assert all(np.isnan(mean_difference_t([1.0], baseline)))


def _trades(net: list[float], patterns: list[str]) -> pl.DataFrame:
    days = [dt.date(2024, 3, 4) + dt.timedelta(days=i) for i in range(len(net))]
    entry = [dt.datetime(d.year, d.month, d.day, 15, 0, tzinfo=dt.UTC) for d in days]
    return pl.DataFrame(
        {
            "date": days,
            "pattern": patterns,
            "entry_ts": entry,
            "exit_ts": [t + dt.timedelta(minutes=15) for t in entry],
            "shares": [100.0] * len(net),
            "entry_price": [5.0] * len(net),
            "gross_pnl": [n + 2.0 for n in net],
            "net_pnl": net,
            "ecn_fees": [1.5] * len(net),
            "sec_fee": [0.5] * len(net),
            "slippage": [0.0] * len(net),
        },
        schema_overrides={
            "date": pl.Date,
            "pattern": pl.String,
            "entry_ts": pl.Datetime("us", "UTC"),
            "exit_ts": pl.Datetime("us", "UTC"),
            **dict.fromkeys(("shares", "entry_price", "gross_pnl", "net_pnl"), pl.Float64),
            **dict.fromkeys(("ecn_fees", "sec_fee", "slippage"), pl.Float64),
        },
    )


def test_the_backtest_summary_adds_up_the_trades():
    from smallcaps_assets.core.performance import json_safe, summarize_backtest

    summary = summarize_backtest(
        _trades([100.0, -50.0, 30.0], ["gap_and_go", "gap_and_go", "vwap_reclaim"]),
        100_000.0,
        0.55,
        "simulated",
    )
    assert summary["n_trades"] == 3
    assert summary["expectancy_net"] == pytest.approx(80.0 / 3)
    assert summary["costs_per_trade"] == pytest.approx(2.0)
    assert summary["fees"] == pytest.approx(6.0)
    assert summary["equity"] == pytest.approx([100_100.0, 100_050.0, 100_080.0])
    assert summary["hit_rate_by_pattern"] == {"gap_and_go": 0.5, "vwap_reclaim": 1.0}
    assert summary["trades_by_pattern"] == {"gap_and_go": 2, "vwap_reclaim": 1}
    assert summary["net_pnl_by_pattern"] == {"gap_and_go": 50.0, "vwap_reclaim": 30.0}
    # Trades stored without a direction take their pattern's (unknown patterns: long).
    assert summary["hit_rate_by_direction"] == {"long": pytest.approx(2 / 3)}
    assert summary["borrow_fees"] == 0.0
    assert summary["exposure_minutes_per_session"] == pytest.approx(15.0)
    assert summary["turnover"] == pytest.approx(3 * 500.0 / 100_000.0)
    assert summary["start"] == "2024-03-04"
    assert json_safe({"x": math.nan, "y": 1.0}) == {"x": None, "y": 1.0}


def test_an_empty_backtest_summarizes_without_dividing_by_zero():
    from smallcaps_assets.core.performance import summarize_backtest

    summary = summarize_backtest(_trades([], []), 100_000.0, math.nan, "simulated")
    assert summary["n_trades"] == 0
    assert summary["equity"] == [100_000.0]
    assert summary["turnover"] == 0.0


def test_hit_rates_and_pnl_per_pattern_and_direction():
    from smallcaps_assets.core.performance import hit_rate_by_pattern, summarize_backtest

    trades = _trades(
        [100.0, -50.0, 30.0, -10.0], ["orb", "orb", "vwap_reject", "parabolic_exhaustion"]
    ).with_columns(direction=pl.Series(["long", "long", "short", "short"]), borrow_fee=pl.lit(0.25))
    summary = summarize_backtest(trades, 100_000.0, 0.55, "simulated")
    assert summary["hit_rate_by_direction"] == {"long": 0.5, "short": 0.5}
    assert summary["trades_by_direction"] == {"long": 2, "short": 2}
    assert summary["net_pnl_by_direction"] == {"long": 50.0, "short": 20.0}
    assert summary["direction_by_pattern"] == {
        "orb": "long",
        "parabolic_exhaustion": "short",
        "vwap_reject": "short",
    }
    assert summary["hit_rate_by_pattern"]["vwap_reject"] == 1.0
    assert summary["borrow_fees"] == pytest.approx(1.0)
    table = hit_rate_by_pattern(trades)
    assert table.columns == ["pattern", "trades", "hit_rate", "direction", "net_pnl"]
