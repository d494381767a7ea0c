"""The simulated market held against the real small-cap ranges (core/realism.REAL_RANGES).

A year of the default demo market (300 names) holds about 165 gap days, concentrated in few
names; the whole-ticker bootstrap interval of a gap-day median is then ~4 % wide, against real
ranges under 1 % wide. So the demo market must be inside every range or within its sampling
error of it (never ``outside``), and a market large enough to judge (1,000 names) must be
inside every range outright, at signal 0 and at the default signal.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from smallcaps_assets.core.realism import REAL_RANGES
from smallcaps_assets.research.market_realism import measure_simulated_market
from smallcaps_assets.sources.simulator import SimConfig, SimulatedMarket

YEAR = (date(2024, 1, 2), date(2024, 12, 31))
RANGED = [key for key, spec in REAL_RANGES.items() if spec.low is not None]


def statuses(seed: int, tickers: int, signal: float) -> dict[str, str]:
    market = SimulatedMarket(SimConfig(seed=seed, n_tickers=tickers, signal=signal))
    report = measure_simulated_market(market, *YEAR)
    facts = report.facts.filter(pl.col("key").is_in(RANGED))
    return dict(zip(facts["key"], facts["status"], strict=True))


@pytest.mark.parametrize("signal", [0.0, 1.0])
def test_the_default_demo_market_is_never_outside_a_real_range(signal: float) -> None:
    found = statuses(seed=7, tickers=300, signal=signal)
    assert set(found) == set(RANGED)
    assert "outside" not in found.values(), found
    assert "insufficient" not in found.values(), found
    assert sum(status == "inside" for status in found.values()) >= len(RANGED) - 2, found


@pytest.mark.parametrize("signal", [0.0, 1.0])
def test_a_market_large_enough_to_judge_is_inside_every_real_range(signal: float) -> None:
    found = statuses(seed=7, tickers=1_000, signal=signal)
    assert found == dict.fromkeys(RANGED, "inside"), found
