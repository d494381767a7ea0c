"""Backtest statistics on hand-computed cases."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
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
