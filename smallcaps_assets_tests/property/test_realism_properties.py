"""Market-realism facts as properties: they describe the market, not how its rows are stored.

Whatever the bars, the facts do not depend on row order, and a split recorded in
``split_factor_to_d`` changes none of them but the price level itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smallcaps_assets.core import calendar
from smallcaps_assets.core.realism import SampleMinimums, measure_realism
from smallcaps_assets_tests.realism_fixtures import Knobs, gap_day_minute_bars

DAYS = calendar.sessions(dt.date(2024, 3, 1), dt.date(2024, 3, 12))
# Every fact is judged, however few the rows: the properties are about values and verdicts.
ANY_SIZE = SampleMinimums(ticker_days=1, gap_days=1, gap_days_with_minutes=1)
# Opens relative to the previous close: fades, flat, small and big gaps.
GAP_RATIOS = (0.93, 1.0, 1.04, 1.12, 1.25, 1.6)
# Powers of two rescale floats exactly, so a split can be compared bit for bit.
SPLIT_RATIOS = (2.0, 0.5)

settings.register_profile(
    "realism", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("realism")

prices = st.floats(min_value=1.0, max_value=8.0, allow_nan=False).map(lambda p: round(p, 2))


@st.composite
def markets(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Daily bars of 2-4 tickers over the sessions of DAYS, and minute bars of every day."""
    rows: list[dict[str, Any]] = []
    for i in range(draw(st.integers(2, 4))):
        ticker = f"T{i}"
        previous = draw(prices)
        for day in DAYS:
            open_ = round(previous * draw(st.sampled_from(GAP_RATIOS)), 4)
            close = draw(prices)
            rows.append(
                {
                    "ticker": ticker,
                    "date": day,
                    "open": open_,
                    "high": max(open_, close) * draw(st.sampled_from((1.0, 1.02, 1.3))),
                    "low": min(open_, close) * 0.97,
                    "close": close,
                    "volume": draw(st.sampled_from((10_000.0, 80_000.0, 500_000.0))),
                    "split_factor_to_d": 1.0,
                }
            )
            previous = close
    daily = pl.DataFrame(rows)
    hod = draw(st.lists(st.integers(0, 389), min_size=len(rows), max_size=len(rows)))
    planted = daily.select("ticker", "date").with_columns(
        hod_minute=pl.Series(hod, dtype=pl.Int64),
        halts=pl.Series([h % 3 == 0 for h in hod], dtype=pl.Int64),
    )
    minutes = gap_day_minute_bars(planted, Knobs(premarket_share=0.04, first30_share=0.2))
    return daily, minutes


def assert_same_facts(a: pl.DataFrame, b: pl.DataFrame, *, skip: tuple[str, ...] = ()) -> None:
    a, b = a.filter(~pl.col("key").is_in(skip)), b.filter(~pl.col("key").is_in(skip))
    assert a.drop("value").equals(b.drop("value"))
    for left, right in zip(a.get_column("value"), b.get_column("value"), strict=True):
        assert (left is None) == (right is None)
        if left is not None:
            assert left == pytest.approx(right, rel=1e-12, abs=1e-15)


@given(markets(), st.randoms(use_true_random=False))
def test_facts_do_not_depend_on_row_order(market, rng):
    daily, minutes = market
    shuffled_daily = daily.sample(fraction=1.0, shuffle=True, seed=rng.randrange(2**32))
    shuffled_minutes = minutes.sample(fraction=1.0, shuffle=True, seed=rng.randrange(2**32))
    assert_same_facts(
        measure_realism(daily, minutes, minimums=ANY_SIZE).facts,
        measure_realism(shuffled_daily, shuffled_minutes, minimums=ANY_SIZE).facts,
    )


@given(
    markets(),
    st.integers(0, 3),
    st.integers(1, len(DAYS) - 1),
    st.sampled_from(SPLIT_RATIOS),
)
def test_a_recorded_split_changes_nothing_but_the_price_level(market, which, first, ratio):
    daily, minutes = market
    ticker = f"T{which % daily.get_column('ticker').n_unique()}"
    execution = DAYS[first]
    # ``ratio`` new shares per old share from the execution date on: prices / ratio, volumes
    # x ratio, and the index I(D) = split_from / split_to = 1 / ratio.
    after = (pl.col("ticker") == ticker) & (pl.col("date") >= execution)
    split_daily = daily.with_columns(
        *(
            pl.when(after).then(pl.col(c) / ratio).otherwise(pl.col(c))
            for c in ("open", "high", "low", "close")
        ),
        pl.when(after).then(pl.col("volume") * ratio).otherwise(pl.col("volume")),
        pl.when(after)
        .then(1.0 / ratio)
        .otherwise(pl.col("split_factor_to_d"))
        .alias("split_factor_to_d"),
    )
    split_minutes = minutes.with_columns(
        pl.when(after).then(pl.col("high") / ratio).otherwise(pl.col("high")),
        pl.when(after).then(pl.col("volume") * ratio).otherwise(pl.col("volume")),
    )
    assert_same_facts(
        measure_realism(daily, minutes, minimums=ANY_SIZE).facts,
        measure_realism(split_daily, split_minutes, minimums=ANY_SIZE).facts,
        # The one fact about the price level itself.
        skip=("median_previous_close",),
    )
