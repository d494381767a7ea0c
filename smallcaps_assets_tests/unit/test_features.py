"""Feature helpers: cross-sectional normalization, SIC sectors, the time-of-day baseline and the
daily context on a split."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from smallcaps_assets.core.features import (
    FeatureConfig,
    daily_context,
    normalize_cross_section,
    sector_from_sic,
    tod_volume_baseline,
)
from smallcaps_assets.sources import parsers
from smallcaps_assets_tests.minute_fixtures import DAY, NY


def test_winsorize_then_zscore_per_date():
    frame = pl.DataFrame(
        {
            "date": [DAY] * 5 + [DAY + dt.timedelta(days=1)] * 2,
            "gap_pct": [0.1, 0.2, 0.3, 0.4, 10.0, 1.0, 3.0],
        }
    )
    clipped = normalize_cross_section(frame, FeatureConfig(winsorize=0.25))
    assert clipped.get_column("gap_pct").to_list()[:5] == [0.2, 0.2, 0.3, 0.4, 0.4]
    scored = normalize_cross_section(frame, FeatureConfig(zscore=True))
    by_date = scored.group_by("date").agg(
        pl.col("gap_pct").mean(), pl.col("gap_pct").std().alias("sd")
    )
    assert by_date.get_column("gap_pct").to_list() == pytest.approx([0.0, 0.0], abs=1e-12)
    assert by_date.get_column("sd").to_list() == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="winsorize"):
        normalize_cross_section(frame, FeatureConfig(winsorize=0.7))


def test_sector_from_sic_maps_divisions_and_unknowns():
    codes = pl.DataFrame({"sic": ["2834", "7372", "6022", None, "abc", "3674"]})
    sectors = codes.select(sector_from_sic(pl.col("sic"))).to_series().to_list()
    assert sectors == [
        "chemicals_pharma",
        "software_services",
        "finance",
        "unknown",
        "unknown",
        "tech_hardware",
    ]


def test_tod_baseline_averages_cumulative_volume_at_each_minute_over_prior_sessions():
    def bar(day: dt.date, hhmm: str, volume: float) -> dict:
        t = dt.datetime.combine(day, dt.time.fromisoformat(hhmm), tzinfo=NY)
        return {"t": int(t.timestamp() * 1000), "o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": volume}

    rows = [
        bar(dt.date(2024, 3, 1), "09:30", 100.0),
        bar(dt.date(2024, 3, 1), "09:32", 50.0),
        bar(dt.date(2024, 3, 4), "09:31", 300.0),
        bar(dt.date(2024, 3, 4), "08:00", 9_999.0),  # premarket: not in the regular curve
        bar(DAY, "09:30", 7_777.0),  # the session itself: not in its own baseline
    ]
    baseline = tod_volume_baseline(parsers.parse_aggregates(rows, "AAA"), DAY)
    first = baseline.filter(pl.col("minutes_since_open") <= 2).get_column("avg_cum_volume")
    assert first.to_list() == [50.0, 200.0, 225.0]
    assert baseline.get_column("baseline_sessions").unique().to_list() == [2]


def test_daily_context_puts_history_on_one_basis_across_a_split():
    days = [dt.date(2024, 2, 26) + dt.timedelta(days=i) for i in range(5)]
    frame = pl.DataFrame(
        {
            "ticker": ["AAA"] * 5,
            "date": days,
            "open": [10.0, 10.0, 10.0, 1.0, 1.0],
            "high": [10.0, 10.0, 10.0, 1.0, 1.0],
            "low": [10.0, 10.0, 10.0, 1.0, 1.0],
            "close": [10.0, 10.0, 10.0, 1.0, 1.1],
            "volume": [100.0, 100.0, 100.0, 1000.0, 1000.0],
            # A 10-for-1 split executed on day 3: the index I(t) steps from 1 to 1/10.
            "split_factor_to_d": [1.0, 1.0, 1.0, 0.1, 0.1],
        }
    )
    context = daily_context(frame, DAY).row(0, named=True)
    assert context["ret_1d"] == pytest.approx(0.1)
    assert context["ret_5d"] is None  # five sessions of history: no close five sessions back
    assert context["avg_volume_20d"] == pytest.approx(1000.0)
    # A crash that is only a split would show as a 90 % true range; on one basis it is 10 %.
    assert context["atr_pct_14"] < 0.05


def test_walk_forward_months_of_a_window():
    from smallcaps_assets.cli.demo import walk_forward_months

    months = walk_forward_months(dt.date(2024, 1, 2), dt.date(2024, 12, 31))
    assert months == [dt.date(2024, m, 1) for m in range(8, 13)]
    assert walk_forward_months(dt.date(2024, 3, 1), dt.date(2024, 9, 30)) == []


def test_volume_gini_is_the_same_computed_in_ticker_chunks():
    from smallcaps_assets.core.features import _gini_until_event

    start = dt.datetime(2024, 3, 5, 14, 30, tzinfo=dt.UTC)
    bars = pl.DataFrame(
        {
            "ticker": [t for t in ("AAA", "BBB", "CCC") for _ in range(30)],
            "ts": [start + dt.timedelta(minutes=i) for _ in range(3) for i in range(30)],
            "volume": [float((7 * i + 3 * k) % 11 + 1) for k in range(3) for i in range(30)],
        }
    )
    events = pl.DataFrame(
        {
            "ticker": ["AAA", "AAA", "BBB", "CCC"],
            "ts": [start + dt.timedelta(minutes=m) for m in (5, 20, 12, 29)],
            "pattern": ["orb"] * 4,
        }
    ).with_columns(signal_bar_ts=pl.col("ts") - dt.timedelta(minutes=1))
    whole = _gini_until_event(events, bars).sort("ticker", "ts")
    chunked = _gini_until_event(events, bars, max_join_rows=10).sort("ticker", "ts")
    assert chunked.equals(whole)
    assert whole.height == 4
    # By hand for AAA's first event: volumes of bars 0..4 are 1, 8, 4, 11, 7.
    values = sorted([1.0, 8.0, 4.0, 11.0, 7.0])
    expected = 2 * sum((i + 1) * v for i, v in enumerate(values)) / (5 * sum(values)) - 6 / 5
    assert whole.row(0, named=True)["volume_gini"] == pytest.approx(expected)
