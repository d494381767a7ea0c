"""Each pattern rule on hand-built minute bars: a case that fires it and one that does not."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from smallcaps_assets.core.events import PATTERNS, PatternRules, detect_events, regression_slope
from smallcaps_assets_tests.minute_fixtures import DAY, NY, bars_from


def fired(frame: pl.DataFrame, pattern: str, rules: PatternRules | None = None) -> list[str]:
    events = detect_events(frame, DAY, rules).filter(pl.col("pattern") == pattern)
    return [t.astimezone(NY).strftime("%H:%M") for t in events.get_column("ts").to_list()]


def test_regression_slope_is_exact_on_a_line_and_null_before_the_window():
    frame = pl.DataFrame({"y": [float(3 + 2 * i) for i in range(20)]})
    slope = frame.select(regression_slope(pl.col("y"), 15)).to_series()
    assert slope[:14].null_count() == 14
    assert slope[14:].to_list() == pytest.approx([2.0] * 6)


def test_events_are_stamped_at_the_signal_bars_close():
    flat = [10.0] * 6
    frame = bars_from([*flat, 10.5, 10.6], highs=[10.2, 10.3, 10.2, 10.1, 10.0, 10.0, None, None])
    events = detect_events(frame, DAY).filter(pl.col("pattern") == "orb")
    row = events.row(0, named=True)
    assert row["ts"] - row["signal_bar_ts"] == dt.timedelta(minutes=1)
    assert set(detect_events(frame, DAY).get_column("pattern")) <= set(PATTERNS)


# -- orb --------------------------------------------------------------------------------------------
def test_orb_fires_on_the_first_close_above_the_opening_range_and_premarket_high():
    closes = [10.0, 10.1, 10.2, 10.1, 10.0, 10.1, 10.4, 10.6, 10.8]
    frame = bars_from(closes, premarket=[10.3])
    # Bar 6 (09:36) closes at 10.4: above the range high (10.2) and the premarket high (10.3).
    assert fired(frame, "orb") == ["09:37"]


def test_orb_does_not_fire_below_the_premarket_high():
    closes = [10.0, 10.1, 10.2, 10.1, 10.0, 10.1, 10.4, 10.45, 10.3]
    assert fired(bars_from(closes, premarket=[11.0]), "orb") == []


# -- vwap reclaim / reject ----------------------------------------------------------------------------
def _below_vwap_then(
    last: list[float], last_highs: list[float | None] | None = None
) -> pl.DataFrame:
    closes = [10.0] * 5 + [9.6, 9.5, 9.5, 9.4] + last
    highs: list[float | None] = [None] * 9 + (last_highs or [None] * len(last))
    return bars_from(closes, highs=highs)


def test_vwap_reclaim_fires_when_price_closes_back_above_vwap_after_a_streak_below():
    assert fired(_below_vwap_then([10.3]), "vwap_reclaim") == ["09:40"]


def test_vwap_reclaim_needs_the_streak_below():
    # Only one close below VWAP before the reclaim.
    closes = [10.0] * 5 + [9.8, 10.4]
    assert fired(bars_from(closes), "vwap_reclaim") == []


def test_vwap_reject_fires_when_a_bar_tags_vwap_from_below_and_closes_under_it():
    frame = _below_vwap_then([9.45], last_highs=[10.5])
    assert fired(frame, "vwap_reject") == ["09:40"]
    assert fired(frame, "vwap_reclaim") == []


def test_vwap_reject_needs_the_bar_to_reach_vwap():
    assert fired(_below_vwap_then([9.45], last_highs=[9.6]), "vwap_reject") == []


# -- first pullback ------------------------------------------------------------------------------------
def test_first_pullback_fires_on_the_first_resumption_after_a_real_dip_from_the_high():
    closes = [10.0, 10.3, 10.6, 10.9, 11.2, 11.5, 11.0, 10.9, 11.3, 11.4]
    # Dip to 10.9 is -5% from the 11.5 high; bar 8 (09:38) closes 11.3 > the previous high 11.0.
    assert fired(bars_from(closes), "first_pullback") == ["09:39"]


def test_first_pullback_ignores_shallow_dips():
    closes = [10.0, 10.3, 10.6, 10.9, 11.2, 11.5, 11.4, 11.35, 11.45, 11.48]
    assert fired(bars_from(closes), "first_pullback") == []


# -- high-of-day breakout ------------------------------------------------------------------------------
def test_hod_breakout_fires_after_a_base_below_the_high():
    # High 11.0 set at bar 3, then a base at 10.5-10.8 for 14 bars, then a close at 11.2.
    closes = [10.0, 10.4, 10.8, 11.0] + [10.6, 10.7, 10.5, 10.8] * 4 + [11.2]
    assert fired(bars_from(closes), "hod_breakout") == ["09:51"]


def test_hod_breakout_is_not_a_running_extension():
    # A new high every bar: no base, no breakout signal.
    closes = [10.0 + 0.05 * i for i in range(25)]
    assert fired(bars_from(closes), "hod_breakout") == []


# -- halt resumption -----------------------------------------------------------------------------------
def test_halt_resumption_fires_on_the_bar_after_a_halt():
    closes = [10.0, 10.2, 10.4, 10.6] + [10.6] * 6 + [12.0, 12.1]
    opens: list[float | None] = [None] * 10 + [12.0, None]
    # Bars 4-9 missing: a six-minute hole, reopening 13% higher.
    frame = bars_from(closes, opens=opens, skip={4, 5, 6, 7, 8, 9})
    assert fired(frame, "halt_resumption") == ["09:41"]


def test_a_quiet_gap_without_a_price_jump_is_not_a_halt():
    closes = [10.0, 10.2, 10.4, 10.6] + [10.6] * 6 + [10.62, 10.63]
    frame = bars_from(closes, skip={4, 5, 6, 7, 8, 9})
    assert fired(frame, "halt_resumption") == []


# -- parabolic exhaustion ------------------------------------------------------------------------------
def _parabolic(last_high: float, last_volume: float) -> pl.DataFrame:
    closes = [10.0 * 1.01**i for i in range(16)]
    top = closes[-1]
    closes.append(top * 0.99)
    highs: list[float | None] = [None] * 16 + [last_high * top]
    opens: list[float | None] = [None] * 16 + [top]
    volumes = [10_000.0] * 16 + [last_volume]
    return bars_from(closes, highs=highs, opens=opens, volumes=volumes)


def test_parabolic_exhaustion_fires_on_a_high_volume_shooting_star_after_a_steep_run():
    assert fired(_parabolic(1.04, 50_000.0), "parabolic_exhaustion") == ["09:47"]


def test_parabolic_exhaustion_needs_the_volume_burst():
    assert fired(_parabolic(1.04, 12_000.0), "parabolic_exhaustion") == []


def test_no_signal_after_the_last_signal_time():
    closes = [10.0, 10.1, 10.2, 10.1, 10.0, 10.1, 10.4, 10.6, 10.8]
    frame = bars_from(closes)
    assert fired(frame, "orb") == ["09:37"]
    assert fired(frame, "orb", PatternRules(last_signal=dt.time(9, 35))) == []
