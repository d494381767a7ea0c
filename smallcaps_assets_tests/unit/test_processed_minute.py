"""Minute bars: session tags, cleaning counts, inferred halts, SSR state across days, the premarket
summary and the watchlist; plus a run over real one-minute bars."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from smallcaps_assets.core.minute import (
    PREMARKET_SUMMARY_SCHEMA,
    PROCESSED_MINUTE_BARS_SCHEMA,
    WATCHLIST_SCHEMA,
    bars_of_session,
    candidate_coverage,
    minute_history_sessions,
    premarket_history,
    premarket_summary,
    prior_day_state,
    process_minute_bars,
    raw_minute_partition,
    regular_close_et,
    session_closed,
    ssr_carry_in,
    ssr_triggered_days,
    ssr_triggers_from_minutes,
    trailing_premarket_volume,
    watchlist_flags,
)
from smallcaps_assets.core.processed_schemas import (
    ProcessedMinuteBars,
    ProcessedWatchlist,
    check_point_in_time,
)
from smallcaps_assets.sources import parsers

NY = ZoneInfo("America/New_York")
DAY = date(2024, 3, 5)
REAL_BARS = Path(__file__).resolve().parents[2].parent / "shared/fixtures/real_bars"


def minute_row(
    hhmm: str,
    open_: float,
    close: float | None = None,
    *,
    low: float | None = None,
    volume: float = 1_000.0,
    day: date = DAY,
    vwap: float | None = None,
) -> dict[str, Any]:
    """A /v2/aggs row for the bar starting at ``hhmm`` New York time on ``day``."""
    close = open_ if close is None else close
    start = datetime.combine(day, time.fromisoformat(hhmm), tzinfo=NY)
    low = min(open_, close) if low is None else low
    row = {"o": open_, "h": max(open_, close), "l": low, "c": close, "v": volume}
    row["t"] = int(start.timestamp() * 1000)
    if vwap is not None:
        row["vw"] = vwap
    return row


def raw(rows: list[dict[str, Any]], ticker: str = "AAA") -> pl.DataFrame:
    return parsers.parse_aggregates(rows, ticker)


def prior(close: float, carried: bool = False, ticker: str = "AAA") -> pl.DataFrame:
    return pl.DataFrame(
        {"ticker": [ticker], "previous_close": [close], "ssr_carried_in": [carried]}
    )


def column(frame: pl.DataFrame, name: str) -> list[Any]:
    return frame.get_column(name).to_list()


# -- sessions and cleaning -----------------------------------------------------------------------
def test_session_tags_follow_the_bar_start_in_new_york() -> None:
    times = ["03:59", "04:00", "09:29", "09:30", "15:59", "16:00", "19:59", "20:00"]
    result = process_minute_bars(raw([minute_row(t, 5.0) for t in times]), DAY)
    frame = result.frame
    assert column(frame, "session") == ["pre", "pre", "regular", "regular", "post", "post"]
    assert [ts.strftime("%H:%M") for ts in column(frame, "ts_et")] == times[1:-1]
    assert column(frame, "ts")[0] == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)  # 04:00 EST
    assert result.stats["outside_hours"] == 2
    ProcessedMinuteBars.validate(frame)


def test_a_session_has_closed_only_from_its_regular_close() -> None:
    half_day = date(2024, 11, 29)

    def ny(day: date, hhmm: str) -> datetime:
        return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=ZoneInfo("America/New_York"))

    assert not session_closed(DAY, ny(DAY, "15:59"))
    assert session_closed(DAY, ny(DAY, "16:00"))
    assert session_closed(half_day, ny(half_day, "13:00"))
    assert not session_closed(half_day, ny(half_day, "12:59"))


def test_half_day_regular_session_ends_at_one() -> None:
    half_day = date(2024, 11, 29)
    assert regular_close_et(half_day) == time(13, 0)
    assert regular_close_et(DAY) == time(16, 0)
    rows = [minute_row(t, 5.0, day=half_day) for t in ("12:59", "13:00", "16:30")]
    frame = process_minute_bars(raw(rows), half_day).frame
    assert column(frame, "session") == ["regular", "post", "post"]
    ProcessedMinuteBars.validate(frame)


def test_non_session_day_is_refused() -> None:
    with pytest.raises(ValueError, match="not an NYSE session"):
        process_minute_bars(raw([]), date(2024, 3, 9))


def test_duplicates_are_removed_keeping_the_last_and_counted() -> None:
    rows = [minute_row("10:00", 5.0), minute_row("10:00", 5.2), minute_row("10:01", 5.3)]
    rows.append(minute_row("10:01", 5.4))
    result = process_minute_bars(raw(rows), DAY)
    assert column(result.frame, "open") == [5.2, 5.4]
    assert result.stats["duplicate"] == 2
    assert result.frame.select("ticker", "ts").is_duplicated().sum() == 0


def test_other_days_and_broken_prices_are_dropped_and_counted() -> None:
    rows = [
        minute_row("10:00", 5.0),
        minute_row("10:00", 5.0, day=date(2024, 3, 4)),
        minute_row("10:02", 0.0),
    ]
    result = process_minute_bars(raw(rows), DAY)
    assert result.frame.height == 1
    assert result.stats == {
        "input_rows": 3,
        "zero_low_repaired": 0,
        "invalid_price": 1,
        "other_day": 1,
        "outside_hours": 0,
        "duplicate": 0,
        "output_rows": 1,
    }


def test_a_zero_low_print_is_repaired_and_counted_not_dropped() -> None:
    rows = [minute_row("16:05", 5.0, 5.2, low=0.0, volume=700.0), minute_row("16:06", 5.1)]
    rows[0].pop("vw", None)  # real extended-hours bars also come without vw / n
    result = process_minute_bars(raw(rows), DAY)
    assert result.stats["zero_low_repaired"] == 1
    assert result.stats["invalid_price"] == 0
    assert column(result.frame, "low") == [5.0, 5.1]
    assert column(result.frame, "volume") == [700.0, 1_000.0]
    assert column(result.frame, "vwap")[0] is None
    ProcessedMinuteBars.validate(result.frame)


def test_missing_minutes_are_counted_within_a_session() -> None:
    times = ["09:00", "09:01", "09:05", "09:30", "09:31", "09:40"]
    frame = process_minute_bars(raw([minute_row(t, 5.0) for t in times]), DAY).frame
    assert column(frame, "missing_minutes_before") == [None, 0, 3, None, 0, 8]


def test_tickers_are_kept_apart() -> None:
    frame = process_minute_bars(
        pl.concat([raw([minute_row("10:00", 5.0)], "AAA"), raw([minute_row("10:09", 9.0)], "BBB")]),
        DAY,
    ).frame
    assert column(frame, "missing_minutes_before") == [None, None]
    assert column(frame, "halt_resumption") == [False, False]


# -- halts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "after", "open_after", "halted"),
    [
        ("10:00", "10:07", 5.40, True),  # 6 missing minutes, +8%
        ("10:00", "10:07", 4.60, True),  # 6 missing minutes, -8%: a jump either way
        ("10:00", "10:07", 5.05, False),  # 6 missing minutes, +1%: an illiquid lull
        ("10:00", "10:04", 5.40, False),  # 3 missing minutes, +8%: too short
        ("10:00", "10:06", 5.25, True),  # the thresholds themselves: 5 minutes, +5%
        ("09:00", "09:07", 5.40, False),  # premarket: no halts inferred outside regular hours
    ],
)
def test_halt_needs_a_long_regular_session_gap_and_a_jump(
    before: str, after: str, open_after: float, halted: bool
) -> None:
    rows = [minute_row(before, 5.0), minute_row(after, open_after)]
    frame = process_minute_bars(raw(rows), DAY).frame
    assert column(frame, "halt_resumption") == [False, halted]
    assert column(frame, "halts_so_far") == [0, int(halted)]


def test_halts_so_far_accumulates() -> None:
    rows = [
        minute_row("10:00", 5.0),
        minute_row("10:10", 6.0),
        minute_row("10:11", 6.0),
        minute_row("11:00", 4.0),
        minute_row("11:01", 4.0),
    ]
    frame = process_minute_bars(raw(rows), DAY).frame
    assert column(frame, "halt_resumption") == [False, True, False, True, False]
    assert column(frame, "halts_so_far") == [0, 1, 1, 2, 2]


# -- SSR -----------------------------------------------------------------------------------------
def test_ssr_triggers_on_a_ten_percent_drop_and_stays_on_for_the_day() -> None:
    rows = [
        minute_row("08:00", 8.0),  # premarket lows never trigger
        minute_row("09:30", 9.5),
        minute_row("09:31", 9.5, 9.2, low=9.0),  # exactly -10%
        minute_row("09:32", 9.8),
        minute_row("16:05", 9.9),
    ]
    frame = process_minute_bars(raw(rows), DAY, prior=prior(10.0)).frame
    assert column(frame, "ssr_trigger") == [False, False, True, False, False]
    assert column(frame, "ssr_active") == [False, False, True, True, True]
    ProcessedMinuteBars.validate(frame)


def test_without_a_previous_close_ssr_cannot_trigger() -> None:
    frame = process_minute_bars(raw([minute_row("09:31", 1.0)]), DAY).frame
    assert column(frame, "ssr_active") == [False]


def test_split_on_the_session_rebases_the_previous_close() -> None:
    rows = [minute_row("09:30", 5.0), minute_row("09:31", 4.6)]
    splits = parsers.parse_splits(
        [{"ticker": "AAA", "execution_date": "2024-03-05", "split_from": 1, "split_to": 2}]
    )
    unadjusted = process_minute_bars(raw(rows), DAY, prior=prior(10.0)).frame
    assert any(column(unadjusted, "ssr_active"))
    adjusted = process_minute_bars(raw(rows), DAY, prior=prior(10.0), splits=splits).frame
    assert not any(column(adjusted, "ssr_active"))  # 4.6 is -8% from the rebased 5.0
    assert column(adjusted, "open") == [5.0, 4.6]  # D's own bars are never rescaled


def test_ssr_carries_into_the_next_session_and_not_the_one_after() -> None:
    days = [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)]
    flat = [minute_row("09:30", 8.0, day=d) for d in days]
    day1 = process_minute_bars(
        raw([flat[0], minute_row("10:00", 8.0, 7.0, day=days[0])]), days[0], prior=prior(8.5)
    ).frame
    assert column(day1, "ssr_active") == [False, True]

    triggered = ssr_triggers_from_minutes(day1)
    daily = pl.DataFrame({"ticker": ["AAA"], "date": [days[0]], "close": [7.0]})
    day2_prior = prior_day_state(daily, days[1], triggered)
    assert day2_prior.rows() == [("AAA", 7.0, True)]
    day2 = process_minute_bars(
        raw([minute_row("04:00", 7.1, day=days[1]), flat[1]]), days[1], prior=day2_prior
    ).frame
    assert column(day2, "ssr_active") == [True, True]
    assert column(day2, "ssr_trigger") == [False, False]

    triggered = pl.concat([triggered, ssr_triggers_from_minutes(day2)])
    daily = pl.DataFrame({"ticker": ["AAA"], "date": [days[1]], "close": [8.0]})
    day3_prior = prior_day_state(daily, days[2], triggered)
    assert day3_prior.rows() == [("AAA", 8.0, False)]
    day3 = process_minute_bars(raw([flat[2]]), days[2], prior=day3_prior).frame
    assert column(day3, "ssr_active") == [False]


def test_ssr_from_daily_bars_rebases_across_splits() -> None:
    daily = pl.DataFrame(
        {
            "ticker": ["AAA"] * 4 + ["BBB"] * 2,
            "date": [date(2024, 2, d) for d in (26, 27, 28, 29, 28, 29)],
            "low": [9.5, 4.6, 4.0, 3.7, 5.0, 4.4],
            "close": [10.0, 4.7, 4.1, 3.8, 5.0, 4.5],
            # AAA splits 2-for-1 on 02-27: its index halves from that day on, so 4.6 is only
            # 8% below the rebased prior close of 5.0.
            "split_factor_to_d": [1.0, 0.5, 0.5, 0.5, 1.0, 1.0],
        }
    )
    days = ssr_triggered_days(daily)
    assert column(days, "ssr_triggered") == [False, False, True, False, False, True]
    carried = ssr_carry_in(days, date(2024, 2, 29))
    assert carried.rows() == [("AAA", True), ("BBB", False)]
    assert ssr_carry_in(days, date(2024, 3, 1)).rows() == [("AAA", False), ("BBB", True)]


# -- premarket and watchlist ---------------------------------------------------------------------
def test_premarket_summary_reads_premarket_bars_only() -> None:
    rows = [
        minute_row("07:00", 5.0, 5.2, volume=10_000, vwap=5.1),
        minute_row("09:29", 5.5, 6.0, volume=30_000),  # no vwap: typical price stands in
        minute_row("09:30", 9.0, volume=1e6),
    ]
    bars = process_minute_bars(
        pl.concat([raw(rows), raw([minute_row("10:00", 3.0)], "REG")]), DAY
    ).frame
    summary = premarket_summary(bars)
    assert summary.schema == PREMARKET_SUMMARY_SCHEMA
    aaa, reg = summary.row(0, named=True), summary.row(1, named=True)
    assert aaa["premarket_volume"] == 40_000.0
    assert aaa["premarket_high"] == 6.0
    typical = (6.0 + 5.5 + 6.0) / 3
    assert aaa["premarket_vwap"] == pytest.approx((5.1 * 10_000 + typical * 30_000) / 40_000)
    assert aaa["premarket_bars"] == 2
    assert (reg["premarket_volume"], reg["premarket_bars"], reg["premarket_high"]) == (0.0, 0, None)


def test_trailing_premarket_volume_uses_the_sessions_before_the_day() -> None:
    history = pl.DataFrame(
        {
            "ticker": ["AAA", "AAA", "AAA", "AAA"],
            "date": [date(2024, 1, 2), date(2024, 2, 6), date(2024, 3, 4), DAY],
            "premarket_volume": [9e9, 100.0, 300.0, 9e9],
        }
    )
    trailing = trailing_premarket_volume(history, DAY, sessions=20)
    assert trailing.rows() == [("AAA", 200.0, 2)]
    assert trailing_premarket_volume(history, DAY, sessions=1).rows() == [("AAA", 300.0, 1)]


def test_watchlist_needs_premarket_volume_and_relative_volume() -> None:
    names = ["HOT", "THIN", "USUAL", "NEW", "SILENT", "NOTGAP"]
    candidates = pl.DataFrame(
        {
            "date": [DAY] * 6,
            "ticker": names,
            "gap_pct": [0.3] * 5 + [0.01],
            "is_candidate": [True] * 5 + [False],
        }
    )
    premarket = pl.DataFrame(
        {
            "ticker": ["HOT", "THIN", "USUAL", "NEW", "NOTGAP"],
            "date": [DAY] * 5,
            "premarket_volume": [150_000.0, 90_000.0, 200_000.0, 500_000.0, 1e6],
            "premarket_high": [2.0] * 5,
            "premarket_vwap": [1.9] * 5,
            "premarket_bars": [50] * 5,
        },
        schema=PREMARKET_SUMMARY_SCHEMA,
    )
    averages = pl.DataFrame(
        {
            "ticker": ["HOT", "THIN", "USUAL", "SILENT", "NOTGAP"],
            "avg_premarket_volume_20d": [50_000.0, 10_000.0, 150_000.0, 1_000.0, 1.0],
            "premarket_sessions": [5, 5, 5, 5, 5],
        }
    )
    flags = watchlist_flags(candidates, premarket, averages)
    assert flags.schema == WATCHLIST_SCHEMA
    rows = {row["ticker"]: row for row in flags.iter_rows(named=True)}
    assert set(rows) == {"HOT", "THIN", "USUAL", "NEW", "SILENT"}
    assert {name for name, row in rows.items() if row["is_watchlist"]} == {"HOT"}
    assert rows["HOT"]["premarket_rvol"] == pytest.approx(3.0)
    assert rows["NEW"]["premarket_rvol"] is None  # no history: not watchlisted
    assert rows["SILENT"]["premarket_volume"] == 0.0
    ProcessedWatchlist.validate(flags)


def test_schema_and_point_in_time_check() -> None:
    empty = process_minute_bars(pl.DataFrame(schema=parsers.MINUTE_BARS_SCHEMA), DAY)
    assert empty.frame.schema == PROCESSED_MINUTE_BARS_SCHEMA
    ProcessedMinuteBars.validate(empty.frame)
    frame = process_minute_bars(raw([minute_row("10:00", 5.0)]), DAY).frame
    assert check_point_in_time("minute_bars", frame, DAY).passed
    assert not check_point_in_time("minute_bars", frame, date(2024, 3, 4)).passed


# -- real one-minute bars ------------------------------------------------------------------------
def real_minutes(ticker: str, day: date) -> pl.DataFrame:
    """One session of the Yahoo-sourced fixture as a raw minute-bar frame (no vwap or count)."""
    path = REAL_BARS / f"yfinance_1m_{ticker}_2022-03-14_2022-04-18.csv"
    if not path.exists():
        pytest.skip(f"real-bar fixture not found at {path} (shared/ sits beside the project)")
    bars = pl.read_csv(path, infer_schema=False).filter(
        pl.col("Datetime").str.starts_with(day.isoformat())
    )
    start = pl.col("Datetime").str.to_datetime("%Y-%m-%d %H:%M:%S%z", time_unit="ms")
    frame = bars.select(
        pl.lit(ticker).alias("ticker"),
        start.dt.convert_time_zone("UTC").alias("window_start"),
        *(pl.col(c.title()).cast(pl.Float64).alias(c) for c in ("open", "high", "low", "close")),
        pl.col("Volume").cast(pl.Float64).alias("volume"),
        pl.lit(None, pl.Float64).alias("vwap"),
        pl.lit(None, pl.Int64).alias("transactions"),
    )
    assert frame.schema == parsers.MINUTE_BARS_SCHEMA
    return frame


@pytest.mark.parametrize("ticker", ["GME", "AMC"])
def test_real_bars_process_cleanly(ticker: str) -> None:
    day = date(2022, 3, 14)
    raw_day = real_minutes(ticker, day)
    result = process_minute_bars(raw_day, day)
    frame = result.frame
    ProcessedMinuteBars.validate(frame)
    assert result.stats["output_rows"] == raw_day.height  # the feed is clean and in hours
    assert frame.select("ticker", "ts").is_duplicated().sum() == 0

    sessions = dict(frame.group_by("session").len().iter_rows())
    assert set(sessions) == {"pre", "regular", "post"}
    assert 381 <= sessions["regular"] <= 390
    first, last = frame.row(0, named=True), frame.row(-1, named=True)
    assert first["session"] == "pre"
    assert first["ts_et"].time() >= time(4, 0)
    assert last["ts_et"].time() < time(20, 0)
    assert frame.get_column("halts_so_far").is_sorted()

    summary = premarket_summary(frame).row(0, named=True)
    assert summary["premarket_bars"] == sessions["pre"]
    # Yahoo reports zero extended-hours volume, so there is no premarket VWAP to compute.
    assert summary["premarket_volume"] == 0.0
    assert summary["premarket_vwap"] is None
    pre_high = frame.filter(pl.col("session") == "pre").get_column("high").max()
    assert summary["premarket_high"] == pre_high


def test_real_day_without_a_regular_session() -> None:
    day = date(2022, 3, 21)  # the cache only holds extended-hours rows for this session
    frame = process_minute_bars(real_minutes("GME", day), day).frame
    ProcessedMinuteBars.validate(frame)
    assert "regular" not in set(frame.get_column("session"))
    assert not frame.get_column("halt_resumption").any()


# -- the raw partition, the premarket baseline and candidate coverage ---------------------------
def _raw(rows: list[tuple[str, dict[str, Any]]]) -> pl.DataFrame:
    frames = [parsers.parse_aggregates([row], ticker) for ticker, row in rows]
    return pl.concat(frames)


EARLIER = date(2024, 3, 4)


def test_raw_partition_keeps_the_session_and_its_baseline_sessions_in_hours() -> None:
    raw = _raw(
        [
            ("AAA", minute_row("12:00", 1.0, day=date(2024, 1, 2))),  # before the baseline
            ("AAA", minute_row("03:59", 1.0, day=EARLIER)),
            ("AAA", minute_row("04:00", 1.0, day=EARLIER)),
            ("AAA", minute_row("09:30", 1.0, day=EARLIER)),
            ("AAA", minute_row("16:30", 1.0, day=EARLIER)),
            ("AAA", minute_row("04:00", 1.0)),
            ("AAA", minute_row("12:00", 1.0)),
            ("AAA", minute_row("19:59", 1.0)),
        ]
    )
    kept = raw_minute_partition(raw, DAY)
    et = kept.get_column("window_start").dt.convert_time_zone("America/New_York")
    assert [t.strftime("%m-%d %H:%M") for t in et.to_list()] == [
        "03-04 04:00",
        "03-04 09:30",
        "03-04 16:30",
        "03-05 04:00",
        "03-05 12:00",
        "03-05 19:59",
    ]
    assert bars_of_session(kept, DAY).height == 3


def test_premarket_history_counts_a_traded_session_without_premarket_as_zero() -> None:
    raw = _raw(
        [
            ("AAA", minute_row("08:00", 1.0, volume=300.0, day=date(2024, 3, 1))),
            ("AAA", minute_row("09:00", 1.0, volume=200.0, day=date(2024, 3, 1))),
            ("AAA", minute_row("10:00", 1.0, volume=9_999.0, day=date(2024, 3, 1))),
            ("AAA", minute_row("11:00", 1.0, volume=500.0, day=EARLIER)),
            ("AAA", minute_row("05:00", 1.0, volume=7_777.0)),  # the session itself: not history
        ]
    )
    history = premarket_history(raw, DAY)
    assert history.rows() == [("AAA", date(2024, 3, 1), 500.0), ("AAA", EARLIER, 0.0)]
    trailing = trailing_premarket_volume(history, DAY)
    assert trailing.row(0) == ("AAA", 250.0, 2)


def test_minute_history_sessions_are_the_twenty_sessions_before() -> None:
    sessions = minute_history_sessions(DAY)
    assert len(sessions) == 20
    assert sessions[-1] == EARLIER
    assert date(2024, 2, 19) not in sessions  # Presidents' Day
    assert all(d < DAY for d in sessions)


def test_candidate_coverage_names_the_reason_or_flags_an_unrequested_candidate() -> None:
    members = pl.DataFrame(
        {"ticker": ["AAA", "BBB", "CCC", "DDD"], "is_candidate": [True, True, True, False]}
    )
    bars = process_minute_bars(_raw([("AAA", minute_row("09:30", 2.0))]), DAY).frame
    requests = pl.DataFrame({"ticker": ["AAA", "BBB"], "status": ["ok", "not_found"]})
    coverage = candidate_coverage(members, bars, requests)
    assert coverage.rows() == [
        ("AAA", 1, None),
        ("BBB", 0, "not_found"),
        ("CCC", 0, "not_requested"),
    ]
