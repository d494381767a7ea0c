"""Triple-barrier labels on hand-built paths, each rule of the module docstring pinned."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from smallcaps_assets.core.event_schemas import (
    features_point_in_time,
    labels_cover_events,
    labels_point_in_time,
)
from smallcaps_assets.core.events import DIRECTION, PATTERNS
from smallcaps_assets.core.labels import BarrierRules, label_events, label_events_reference
from smallcaps_assets_tests.minute_fixtures import DAY, NY, bars_from


def event_at(
    hhmm: str, ticker: str = "AAA", day: dt.date = DAY, pattern: str = "orb"
) -> pl.DataFrame:
    ts = dt.datetime.combine(day, dt.time.fromisoformat(hhmm), tzinfo=NY).astimezone(dt.UTC)
    return pl.DataFrame(
        {"date": [day], "ticker": [ticker], "ts": [ts], "pattern": [pattern]},
        schema={
            "date": pl.Date(),
            "ticker": pl.String(),
            "ts": pl.Datetime("ms", "UTC"),
            "pattern": pl.String(),
        },
    )


def label(
    bars: pl.DataFrame,
    hhmm: str = "09:31",
    rules: BarrierRules | None = None,
    pattern: str = "orb",
) -> dict:
    events = event_at(hhmm, pattern=pattern)
    fast = label_events(events, bars, DAY, rules)
    assert fast.equals(label_events_reference(events, bars, DAY, rules))
    return fast.row(0, named=True)


def et(row_ts: dt.datetime) -> str:
    return row_ts.astimezone(NY).strftime("%H:%M")


def test_entry_is_the_next_bars_open_and_take_profit_fills_at_the_barrier():
    # Bar 1 (09:31) opens at 10.0 (the previous close); bar 3 trades through 11.5.
    closes = [10.0, 10.2, 10.8, 11.4, 11.6]
    highs = [None, None, None, 11.6, None]
    row = label(bars_from(closes, highs=highs))
    assert row["entry_price"] == 10.0
    assert et(row["entry_ts"]) == "09:31"
    assert row["exit_reason"] == "take_profit"
    assert row["exit_price"] == pytest.approx(11.5)
    assert et(row["exit_ts"]) == "09:34"  # the close of the 09:33 bar
    assert row["label"] == 1
    assert row["ret"] == pytest.approx(0.15)


def test_stop_fills_at_the_barrier():
    closes = [10.0, 9.8, 9.5, 9.2, 9.1]
    lows = [None, None, None, None, 8.95]
    row = label(bars_from(closes, lows=lows))
    assert row["exit_reason"] == "stop"
    assert row["exit_price"] == pytest.approx(9.0)
    assert row["label"] == 0


def test_both_barriers_inside_one_bar_count_as_the_stop():
    closes = [10.0, 10.1, 10.0, 10.2]
    highs = [None, None, 11.8, None]
    lows = [None, None, 8.5, None]
    row = label(bars_from(closes, highs=highs, lows=lows))
    assert row["exit_reason"] == "stop"
    assert row["exit_price"] == pytest.approx(9.0)


def test_a_gap_through_the_take_profit_fills_at_the_open():
    closes = [10.0, 10.1, 12.4, 12.5]
    opens = [None, None, 12.3, None]
    row = label(bars_from(closes, opens=opens))
    assert row["exit_reason"] == "take_profit"
    assert row["exit_price"] == 12.3
    assert et(row["exit_ts"]) == "09:32"  # at the gapping bar's open


def test_a_gap_through_the_stop_fills_at_the_open_not_the_stop():
    closes = [10.0, 10.1, 8.2, 8.0]
    opens = [None, None, 8.3, None]
    row = label(bars_from(closes, opens=opens))
    assert row["exit_reason"] == "stop"
    assert row["exit_price"] == 8.3
    assert row["ret"] == pytest.approx(-0.17)


SHORT = "vwap_reject"  # a short pattern (core.events.DIRECTION)


def test_every_pattern_declares_a_direction_and_the_fading_ones_are_short():
    assert set(DIRECTION) == set(PATTERNS)
    assert {p for p, d in DIRECTION.items() if d == "short"} == {
        "vwap_reject",
        "parabolic_exhaustion",
    }


def test_a_short_takes_profit_when_the_price_falls_by_the_take_profit():
    # Entry 10.0 at the 09:31 open; the short's take profit is 8.5, its stop 11.0.
    closes = [10.0, 9.8, 9.2, 8.7, 8.6]
    lows = [None, None, None, 8.45, None]
    row = label(bars_from(closes, lows=lows), pattern=SHORT)
    assert row["exit_reason"] == "take_profit"
    assert row["exit_price"] == pytest.approx(8.5)
    assert et(row["exit_ts"]) == "09:34"
    assert row["ret"] == pytest.approx(0.15)  # positive: the short made money
    assert row["label"] == 1


def test_a_short_is_stopped_when_the_price_rises_by_the_stop():
    closes = [10.0, 10.2, 10.6, 10.9, 10.8]
    highs = [None, None, None, None, 11.05]
    row = label(bars_from(closes, highs=highs), pattern=SHORT)
    assert row["exit_reason"] == "stop"
    assert row["exit_price"] == pytest.approx(11.0)
    assert row["ret"] == pytest.approx(-0.10)
    assert row["label"] == 0


def test_a_short_gapping_through_its_stop_fills_at_the_open():
    closes = [10.0, 10.1, 11.9, 12.0]
    opens = [None, None, 11.8, None]
    row = label(bars_from(closes, opens=opens), pattern=SHORT)
    assert row["exit_reason"] == "stop"
    assert row["exit_price"] == 11.8  # the open, beyond the 11.0 stop
    assert et(row["exit_ts"]) == "09:32"
    assert row["ret"] == pytest.approx(-0.18)
    assert row["label"] == 0


def test_a_short_gapping_through_its_take_profit_fills_at_the_open():
    closes = [10.0, 10.0, 8.1, 8.0]
    opens = [None, None, 8.2, None]
    row = label(bars_from(closes, opens=opens), pattern=SHORT)
    assert row["exit_reason"] == "take_profit"
    assert row["exit_price"] == 8.2
    assert row["ret"] == pytest.approx(0.18)


def test_a_short_with_both_barriers_inside_one_bar_counts_as_the_stop():
    closes = [10.0, 10.1, 10.0, 10.2]
    highs = [None, None, 11.2, None]
    lows = [None, None, 8.3, None]
    row = label(bars_from(closes, highs=highs, lows=lows), pattern=SHORT)
    assert row["exit_reason"] == "stop"
    assert row["exit_price"] == pytest.approx(11.0)


def test_a_short_timing_out_below_its_entry_wins_with_signed_forward_returns():
    closes = [10.0] + [10.0 - 0.01 * i for i in range(1, 25)]
    row = label(bars_from(closes), pattern=SHORT)
    assert row["exit_reason"] == "timeout"
    assert row["ret"] == pytest.approx(1 - closes[15] / 10.0)
    assert row["ret"] > 0
    assert row["label"] == 1
    assert row["fwd_ret_5m"] == pytest.approx(1 - closes[5] / 10.0)


def test_timeout_exits_at_the_last_close_of_the_horizon():
    closes = [10.0] + [10.0 + 0.01 * i for i in range(1, 25)]
    row = label(bars_from(closes))
    assert row["exit_reason"] == "timeout"
    assert et(row["exit_ts"]) == "09:46"  # 15 minutes after the 09:31 entry
    assert row["exit_price"] == pytest.approx(closes[15])  # the 09:45 bar's close
    assert row["fwd_ret_5m"] == pytest.approx(closes[5] / 10.0 - 1)
    assert row["fwd_ret_15m"] == pytest.approx(closes[15] / 10.0 - 1)
    assert row["label"] == 1  # a timeout above the entry is a winning trade


def test_a_timeout_below_the_entry_is_a_losing_trade():
    closes = [10.0] + [10.0 - 0.01 * i for i in range(1, 25)]
    row = label(bars_from(closes))
    assert row["exit_reason"] == "timeout"
    assert row["ret"] < 0
    assert row["label"] == 0


def test_halted_at_the_horizon_exits_at_the_resumption_open():
    closes = [10.0, 10.1, 10.2, 10.3] + [10.3] * 16 + [10.9, 11.0]
    opens: list[float | None] = [None] * 20 + [10.9, None]
    # Bars 4..19 missing: halted from 09:34 to 09:50, the horizon ends at 09:46.
    row = label(bars_from(closes, opens=opens, skip=set(range(4, 20))))
    assert row["exit_reason"] == "timeout_halted"
    assert row["exit_price"] == 10.9
    assert et(row["exit_ts"]) == "09:50"


def test_a_horizon_past_the_close_exits_at_the_close_without_a_label():
    closes = [10.0 + 0.01 * i for i in range(20)]
    row = label(bars_from(closes, start="15:40"), hhmm="15:50")
    assert row["path_complete"] is False
    assert row["label"] is None
    assert row["fwd_ret_15m"] is None
    assert row["exit_reason"] == "end_of_day"
    assert et(row["entry_ts"]) == "15:50"
    assert et(row["exit_ts"]) == "16:00"
    assert row["exit_price"] == pytest.approx(closes[19])  # the 15:59 bar's close


def test_a_half_day_close_at_13_00_ends_the_path():
    half_day = dt.date(2024, 11, 29)  # the day after Thanksgiving
    bars = bars_from([10.0] * 4 + [10.8, 11.6], start="12:55", day=half_day)
    fast = label_events(event_at("12:56", day=half_day), bars, half_day)
    row = fast.row(0, named=True)
    assert fast.equals(label_events_reference(event_at("12:56", day=half_day), bars, half_day))
    assert row["exit_reason"] == "end_of_day"
    assert et(row["exit_ts"]) == "13:00"
    assert row["exit_price"] == pytest.approx(10.8)  # the 12:59 bar; 13:00 is after the close
    assert row["path_complete"] is False
    assert row["label"] is None
    # A barrier touched before the close still exits there.
    spike = bars_from([10.0, 10.0, 12.0, 12.0], start="12:55", day=half_day)
    hit = label_events(event_at("12:56", day=half_day), spike, half_day).row(0, named=True)
    assert hit["exit_reason"] == "take_profit"


def test_barriers_are_configurable():
    closes = [10.0, 10.2, 10.35, 10.4]
    rules = BarrierRules(take_profit=0.03, stop=0.02, timeout_minutes=5)
    row = label(bars_from(closes), rules=rules)
    assert row["exit_reason"] == "take_profit"
    assert row["exit_price"] == pytest.approx(10.3)
    with pytest.raises(ValueError, match="barriers"):
        BarrierRules(stop=1.5)


def test_label_checks_flag_exits_before_entries_labels_on_incomplete_paths_and_gaps():
    closes = [10.0] * 25
    events = pl.concat([event_at("09:31"), event_at("15:58")])
    good = label_events(events, bars_from(closes), DAY)
    assert labels_point_in_time(good, DAY).passed
    assert labels_cover_events(good, events).passed
    broken = good.with_columns(
        exit_ts=pl.when(pl.col("path_complete")).then(pl.col("entry_ts")).otherwise(None),
        label=pl.lit(0, pl.Int8),
    )
    report = labels_point_in_time(broken, DAY)
    assert report.by_check == {"exit after entry": 1, "label only where the path is complete": 1}
    assert labels_cover_events(good.head(1), events).failures == 1


def test_feature_check_flags_a_bar_or_article_after_the_event():
    frame = pl.DataFrame(
        {
            "date": [DAY, DAY],
            "ts": [dt.datetime(2024, 3, 5, 15, 0, tzinfo=dt.UTC)] * 2,
            "last_bar_ts": [
                dt.datetime(2024, 3, 5, 14, 59, tzinfo=dt.UTC),
                dt.datetime(2024, 3, 5, 15, 0, tzinfo=dt.UTC),
            ],
            "last_news_utc": [dt.datetime(2024, 3, 5, 15, 0, 1, tzinfo=dt.UTC), None],
        },
        schema_overrides={"ts": pl.Datetime("ms", "UTC"), "last_bar_ts": pl.Datetime("ms", "UTC")},
    )
    report = features_point_in_time(frame, DAY)
    assert report.by_check == {
        "last bar started before the event": 1,
        "no article after the event": 1,
    }


def test_events_without_regular_session_bars_are_incomplete():
    premarket_only = bars_from([10.0, 10.1], start="08:00")
    events = event_at("09:31")
    for frame in (premarket_only, premarket_only.head(0)):
        fast = label_events(events, frame, DAY)
        assert fast.equals(label_events_reference(events, frame, DAY))
        assert fast.get_column("path_complete").to_list() == [False]
