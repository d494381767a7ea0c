"""The cost model pinned on hand-computed trades."""

from __future__ import annotations

import datetime as dt

import pytest

from smallcaps_assets.core.costs import CostModel, borrow_fee, trade_costs


def test_a_plain_round_trip():
    # 1,000 shares bought at $5.00, sold at $5.50, spread 1 %.
    costs = trade_costs(1_000, 5.00, 5.50, spread=0.01)
    assert costs.ecn_fees == pytest.approx(6.00)  # 2,000 shares x $0.003
    assert costs.sec_fee == pytest.approx(5_500 * 27.80 / 1e6)  # $0.1529 on the sale
    # 0.5 x 1 % on each fill: 5.00 x 0.005 x 1,000 + 5.50 x 0.005 x 1,000
    assert costs.slippage == pytest.approx(25.0 + 27.5)
    assert costs.total == pytest.approx(6.00 + 0.1529 + 52.5)


def test_ssr_quadruples_the_slippage_factor_and_imbalance_scales_it():
    base = trade_costs(100, 10.0, 10.0, spread=0.02)
    ssr_exit = trade_costs(100, 10.0, 10.0, spread=0.02, ssr_at_exit=True)
    assert base.slippage == pytest.approx(2 * 10.0 * 0.02 * 0.5 * 100)
    assert ssr_exit.slippage == pytest.approx(10.0 * 0.02 * 100 * (0.5 + 2.0))
    imbalanced = trade_costs(100, 10.0, 10.0, spread=0.02, imbalance=0.5)
    assert imbalanced.slippage == pytest.approx(base.slippage * 1.5)


def test_a_zero_spread_estimate_is_floored():
    costs = trade_costs(1_000, 2.0, 2.0, spread=0.0, model=CostModel(min_spread=0.002))
    assert costs.slippage == pytest.approx(2 * 2.0 * 0.002 * 0.5 * 1_000)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="imbalance"):
        trade_costs(1, 1.0, 1.0, spread=0.01, imbalance=2.0)
    with pytest.raises(ValueError, match="prices"):
        trade_costs(1, 0.0, 1.0, spread=0.01)
    with pytest.raises(ValueError, match="non-negative"):
        CostModel(ecn_fee_per_share=-1)


def test_a_short_pays_the_sec_fee_on_its_entry_sale_and_a_borrow_fee_for_the_time_held():
    # 1,000 shares sold short at $5.00, bought back at $4.50 after 15 minutes, 30 %/year borrow.
    costs = trade_costs(
        1_000, 5.00, 4.50, spread=0.01, direction="short", held=dt.timedelta(minutes=15)
    )
    assert costs.sec_fee == pytest.approx(5_000 * 27.80 / 1e6)  # the sale is the entry
    # $5,000 notional x 30 % x 15 / (365 x 24 x 60) minutes = $0.0428
    assert costs.borrow_fee == pytest.approx(5_000 * 0.30 * 15 / 525_600)
    assert costs.borrow_fee == pytest.approx(0.0428, abs=1e-4)
    assert costs.fees == pytest.approx(costs.ecn_fees + costs.sec_fee)
    assert costs.total == pytest.approx(costs.fees + costs.slippage + costs.borrow_fee)


def test_the_borrow_fee_is_the_annual_rate_pro_rata_and_longs_pay_none():
    model = CostModel(borrow_fee_annual=0.73)
    assert borrow_fee(10_000, dt.timedelta(days=365), model) == pytest.approx(7_300)
    assert borrow_fee(10_000, dt.timedelta(days=1), model) == pytest.approx(20.0)
    long_ = trade_costs(100, 10.0, 10.0, spread=0.01, held=dt.timedelta(days=1), model=model)
    assert long_.borrow_fee == 0.0
    free = trade_costs(
        100,
        10.0,
        10.0,
        spread=0.01,
        direction="short",
        held=dt.timedelta(hours=1),
        model=CostModel(borrow_fee_annual=0.0),
    )
    assert free.borrow_fee == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        CostModel(borrow_fee_annual=-0.1)
