"""The local-files source without Dagster: file readers, the folder index and the endpoints.

Every file here is written by the test itself (tiny, hand-made); the real fixtures go through the
whole graph in ``integration/test_local_files.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import pickle
import re
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smallcaps_assets.core import calendar
from smallcaps_assets.sources import parsers
from smallcaps_assets.sources.local import (
    LocalBars,
    LocalBarsError,
    LocalPolygonTransport,
    formats,
)
from smallcaps_assets.sources.polygon import PolygonClient

NY = calendar.NY
DAY = dt.date(2025, 5, 12)  # a Monday
HALF_DAY = dt.date(2024, 11, 29)  # the Friday after Thanksgiving: the regular session ends at 13:00
OHLCV = "Datetime,Open,High,Low,Close,Volume\n"
FLAT_HEADER = "ticker,volume,open,close,high,low,window_start,transactions\n"


def et(day: dt.date, clock: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(clock), tzinfo=NY)


def ns(day: dt.date, clock: str) -> int:
    return int(et(day, clock).timestamp()) * 10**9


def ms(day: dt.date, clock: str) -> int:
    return int(et(day, clock).timestamp() * 1000)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def flat_row(ticker: str, day: dt.date, clock: str, price: float = 2.0, volume: int = 100) -> str:
    return f"{ticker},{volume},{price},{price},{price},{price},{ns(day, clock)},7\n"


def raises(path: Path, problem: str) -> Any:
    """pytest.raises for a LocalBarsError naming ``path`` and containing ``problem``."""
    return pytest.raises(LocalBarsError, match=f"^{_escape(str(path))}: .*{_escape(problem)}")


def _escape(text: str) -> str:
    return re.escape(text)


# -- the vendor's flat files -----------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_flat_minute_file_reads_ns_starts_as_ms_utc(tmp_path: Path, suffix: str) -> None:
    rows = [flat_row("ZZZ", DAY, "09:31", 2.5), flat_row("AAA", DAY, "04:00", 1.25)]
    path = tmp_path / f"{DAY}{suffix}"
    if suffix == ".parquet":
        pl.read_csv((FLAT_HEADER + "".join(rows)).encode()).write_parquet(path)
    else:
        write(path, FLAT_HEADER + "".join(rows))
    parsed = formats.read_flat_minutes(path, DAY)
    frame = parsed.frame
    assert frame.schema == parsers.MINUTE_BARS_SCHEMA
    assert frame["ticker"].to_list() == ["AAA", "ZZZ"]  # sorted by ticker and start
    assert frame["window_start"].to_list() == [et(DAY, "04:00"), et(DAY, "09:31")]
    assert frame["transactions"].to_list() == [7, 7]
    assert frame["vwap"].is_null().all()  # the flat files have no vwap column
    assert parsed.exact_duplicates == 0


def test_flat_file_row_of_another_session_is_refused(tmp_path: Path) -> None:
    other = dt.date(2025, 5, 13)
    path = write(
        tmp_path / f"{DAY}.csv",
        FLAT_HEADER + flat_row("AAA", DAY, "09:30") + flat_row("AAA", other, "09:30"),
    )
    with raises(path, "1 row(s) belong to session(s) 2025-05-13, not to 2025-05-12"):
        formats.read_flat_minutes(path, DAY)
    # A window_start in ms instead of ns is caught as a unit mistake, not read as 1970.
    in_ms = write(
        tmp_path / "ms" / f"{DAY}.csv", FLAT_HEADER + f"AAA,1,1,1,1,1,{ms(DAY, '09:30')},1\n"
    )
    with raises(in_ms, "counts nanoseconds since the epoch"):
        formats.read_flat_minutes(in_ms, DAY)


def test_flat_minute_starts_must_be_whole_milliseconds_and_minutes(tmp_path: Path) -> None:
    ragged = write(
        tmp_path / "a" / f"{DAY}.csv", FLAT_HEADER + f"AAA,1,1,1,1,1,{ns(DAY, '09:30') + 5},1\n"
    )
    with raises(ragged, "window_start is not a whole millisecond at data row 1"):
        formats.read_flat_minutes(ragged, DAY)
    seconds = write(
        tmp_path / "b" / f"{DAY}.csv",
        FLAT_HEADER + f"AAA,1,1,1,1,1,{ns(DAY, '09:30') + 30 * 10**9},1\n",
    )
    with raises(seconds, "bar starts must be whole minutes; data row 1 starts at"):
        formats.read_flat_minutes(seconds, DAY)


def test_flat_day_file_is_one_bar_per_ticker_of_its_session(tmp_path: Path) -> None:
    good = write(
        tmp_path / f"{DAY}.csv.gz",
        FLAT_HEADER
        + flat_row("AAA", DAY, "00:00", 3.0, 5000)
        + flat_row("AAA", DAY, "00:00", 3.0, 5000),
    )
    parsed = formats.read_flat_days(good, DAY)
    assert parsed.frame.schema == formats.DAILY_SCHEMA
    assert parsed.frame.rows() == [("AAA", DAY, 3.0, 3.0, 3.0, 3.0, 5000.0, None, 7)]
    assert parsed.exact_duplicates == 1  # the repeated row is dropped, and counted
    conflicting = write(
        tmp_path / "c" / f"{DAY}.csv",
        FLAT_HEADER + flat_row("AAA", DAY, "00:00", 3.0) + flat_row("AAA", DAY, "00:00", 3.1),
    )
    with raises(conflicting, "ticker 'AAA' has two different bars"):
        formats.read_flat_days(conflicting, DAY)
    wrong = write(tmp_path / "w" / f"{DAY}.csv", FLAT_HEADER + flat_row("AAA", HALF_DAY, "00:00"))
    with raises(wrong, "belong to session(s) 2024-11-29"):
        formats.read_flat_days(wrong, DAY)


def test_flat_file_names_are_sessions(tmp_path: Path) -> None:
    assert formats.session_from_file_name(tmp_path / "2025-05-12.csv.gz") == DAY
    with raises(tmp_path / "minute-2025-05-12.csv", "name must be its session date"):
        formats.session_from_file_name(tmp_path / "minute-2025-05-12.csv")
    with raises(tmp_path / "2025-05-10.parquet", "2025-05-10 (Saturday) is not an NYSE session"):
        formats.session_from_file_name(tmp_path / "2025-05-10.parquet")


def test_flat_file_missing_column_names_it(tmp_path: Path) -> None:
    path = write(tmp_path / f"{DAY}.csv", "ticker,volume,open,close,high,window_start\n")
    with raises(path, "missing required column(s) low (found: ticker, volume"):
        formats.read_flat_minutes(path, DAY)


# -- plain OHLCV files -----------------------------------------------------------------------------
def test_aware_timestamps_keep_their_offsets_across_dst(tmp_path: Path) -> None:
    path = write(
        tmp_path / "abc_yahoo.csv",
        "Datetime,Open,High,Low,Close,Volume,Dividends\n"
        "2024-03-08 09:30:00-05:00,1,1,1,1,10,0\n"  # EST
        "2024-03-11 09:30:00-04:00,2,2,2,2,20,0\n"  # EDT
        "2024-03-11T13:31:00Z,3,3,3,3,30,0\n",
    )
    frame = formats.read_ohlcv(path).frame
    assert frame["ticker"].unique().to_list() == ["ABC"]  # the name before the first "_"
    utc = [t.astimezone(dt.UTC).strftime("%m-%d %H:%M") for t in frame["window_start"]]
    assert utc == ["03-08 14:30", "03-11 13:30", "03-11 13:31"]


def test_naive_timestamps_are_read_in_the_declared_timezone(tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.csv",
        "timestamp,open,high,low,close,volume,symbol,vwap,trades\n"
        "2025-05-12 08:30,1,1,1,1,10,QQQ,1.0,4\n",
    )
    frame = formats.read_ohlcv(path, "America/Chicago").frame
    row = frame.row(0, named=True)
    assert row["ticker"] == "QQQ"  # a symbol column wins over the file name
    assert row["window_start"] == et(DAY, "09:30")
    assert (row["vwap"], row["transactions"]) == (1.0, 4)
    default = formats.read_ohlcv(path).frame.row(0, named=True)
    assert default["window_start"] == et(DAY, "08:30")  # America/New_York by default


def test_missing_columns_are_named(tmp_path: Path) -> None:
    no_volume = write(
        tmp_path / "a" / "ABC.csv", "Datetime,Open,High,Low,Close\n2025-05-12 09:30,1,1,1,1\n"
    )
    with raises(no_volume, "missing required column(s) volume (found: Datetime, Open, High"):
        formats.read_ohlcv(no_volume)
    no_time = write(tmp_path / "b" / "ABC.csv", "Open,High,Low,Close,Volume\n1,1,1,1,1\n")
    with raises(no_time, "missing required column Datetime (or timestamp, date)"):
        formats.read_ohlcv(no_time)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (
            "2025-05-12 9h30,1,1,1,1,5",
            "unparsable timestamp in column 'Datetime' at data row 2: '2025-05-12 9h30'",
        ),
        (
            "2025-05-12 09:31:00-04:00,1,1,1,1,5",
            "mixes timestamps with and without a UTC offset (data row 1",
        ),
        (",1,1,1,1,5", "column 'Datetime' is empty at data row 2"),
        (
            "2025-05-12 09:31:00,1,1,-0.5,1,5",
            "column 'low' has a negative or non-finite price at data row 2: -0.5",
        ),
        (
            "2025-05-12 09:31:00,1,1,1,1,-5",
            "column 'volume' has a negative or non-finite volume at data row 2",
        ),
        ("2025-05-12 09:31:00,1,1,1,x,5", "column 'Close' is not a number at data row 2: 'x'"),
        ("2025-05-12 09:31:00,1,,1,1,5", "column 'High' is empty at data row 2"),
        ("2025-05-12 09:31:30,1,1,1,1,5", "bar starts must be whole minutes; data row 2"),
        (
            "2025-05-10 09:31:00,1,1,1,1,5",
            "data row 2 is on 2025-05-10 (Saturday), which is not an NYSE session",
        ),
        (
            "2025-05-12 09:30:00,1,1,1,1.5,5",
            "ticker 'ABC' has two different bars at 2025-05-12 13:30:00+00:00 (data row 1 and data row 2)",
        ),
    ],
)
def test_bad_rows_are_refused_naming_the_file_the_row_and_the_problem(
    tmp_path: Path, row: str, problem: str
) -> None:
    path = write(tmp_path / "ABC.csv", OHLCV + "2025-05-12 09:30:00,1,1,1,1,5\n" + row + "\n")
    with raises(path, problem):
        formats.read_ohlcv(path)


def test_a_price_of_zero_is_let_through_for_the_raw_checks(tmp_path: Path) -> None:
    # The vendor itself sends post-market bars with a zero low; the raw schema check reports them.
    path = write(tmp_path / "ABC.csv", OHLCV + "2025-05-12 16:30:00,1,1,0,1,5\n")
    assert formats.read_ohlcv(path).frame["low"].to_list() == [0.0]


def test_exact_repeats_are_dropped_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "ABC.csv", OHLCV + "2025-05-12 09:30:00,1,1,1,1,5\n" * 3)
    parsed = formats.read_ohlcv(path)
    assert parsed.frame.height == 1
    assert parsed.exact_duplicates == 2


def test_parquet_values_are_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "ABC.parquet"
    pl.DataFrame(
        {
            "Datetime": [dt.datetime(2025, 5, 12, 9, 30), dt.datetime(2025, 5, 12, 9, 31)],
            "Open": [1.0, float("nan")],
            "High": [1.0, 1.0],
            "Low": [1.0, 1.0],
            "Close": [1.0, 1.0],
            "Volume": [1, 2],
        }
    ).write_parquet(path)
    with raises(path, "column 'open' has a negative or non-finite price at data row 2: nan"):
        formats.read_ohlcv(path)
    numbers = tmp_path / "n" / "ABC.parquet"
    numbers.parent.mkdir()
    pl.DataFrame(
        {
            "Datetime": [1_747_056_600],
            "Open": [1.0],
            "High": [1.0],
            "Low": [1.0],
            "Close": [1.0],
            "Volume": [1],
        }
    ).write_parquet(numbers)
    with raises(numbers, "column 'Datetime' holds Int64; expected timestamps"):
        formats.read_ohlcv(numbers)
    naive = tmp_path / "t" / "ABC.parquet"
    naive.parent.mkdir()
    pl.DataFrame(
        {
            "Datetime": [dt.datetime(2025, 5, 12, 9, 30)],
            "Open": [1.0],
            "High": [1.0],
            "Low": [1.0],
            "Close": [1.0],
            "Volume": [1],
        }
    ).write_parquet(naive)
    assert formats.read_ohlcv(naive).frame["window_start"][0] == et(DAY, "09:30")


def test_ticker_from_file_name() -> None:
    assert formats.ticker_from_file_name(Path("GRI.json.gz")) == "GRI"
    assert formats.ticker_from_file_name(Path("gri_2025-05_raw.csv")) == "GRI"
    assert formats.ticker_from_file_name(Path("BRK.A.parquet")) == "BRK.A"


# -- Alpha Vantage ----------------------------------------------------------------------------------
def alpha_vantage(series: dict[str, dict[str, str]] | str, **meta: str) -> str:
    head = {"1. Information": "Intraday (1min)", "2. Symbol": "GRI", "4. Interval": "1min",
            "6. Time Zone": "US/Eastern", **meta}  # fmt: skip
    body = series if isinstance(series, str) else json.dumps(series)
    return f'{{"Meta Data": {json.dumps(head)}, "Time Series (1min)": {body}}}'


def av_bar(price: str = "1.5000", volume: str = "100") -> dict[str, str]:
    return {
        "1. open": price,
        "2. high": price,
        "3. low": price,
        "4. close": price,
        "5. volume": volume,
    }


def test_alpha_vantage_bars_are_naive_starts_in_the_files_timezone(tmp_path: Path) -> None:
    series = {"2025-05-12 09:31:00": av_bar("1.6", "7"), "2025-05-12 04:00:00": av_bar()}
    path = write(tmp_path / "whatever.json.gz", alpha_vantage(series))
    frame = formats.read_alphavantage(path, "Asia/Tokyo").frame  # the file's own zone wins
    assert frame["ticker"].unique().to_list() == ["GRI"]  # "2. Symbol", not the file name
    assert frame["window_start"].to_list() == [et(DAY, "04:00"), et(DAY, "09:31")]
    assert frame["close"].to_list() == [1.5, 1.6]
    assert frame["volume"].to_list() == [100.0, 7.0]
    assert frame["vwap"].is_null().all()
    assert frame["transactions"].is_null().all()


def test_alpha_vantage_repeated_keys_are_counted_or_refused(tmp_path: Path) -> None:
    bar = json.dumps(av_bar())
    same = write(
        tmp_path / "a.json",
        alpha_vantage(f'{{"2025-05-12 09:30:00": {bar}, "2025-05-12 09:30:00": {bar}}}'),
    )
    parsed = formats.read_alphavantage(same)
    assert (parsed.frame.height, parsed.exact_duplicates) == (1, 1)
    other = json.dumps(av_bar("1.7"))
    differ = write(
        tmp_path / "b.json",
        alpha_vantage(f'{{"2025-05-12 09:30:00": {bar}, "2025-05-12 09:30:00": {other}}}'),
    )
    with raises(differ, "bar '2025-05-12 09:30:00' appears twice with different values"):
        formats.read_alphavantage(differ)


def test_alpha_vantage_problems_are_named(tmp_path: Path) -> None:
    note = write(
        tmp_path / "n.json",
        '{"Note": "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day."}',
    )
    with raises(
        note, "has no 'Time Series (1min)' object (found 'Note'); Alpha Vantage said: Thank you"
    ):
        formats.read_alphavantage(note)
    five = write(tmp_path / "f.json", alpha_vantage({}, **{"4. Interval": "5min"}))
    with raises(five, "holds '5min' bars; only 1min bars are read"):
        formats.read_alphavantage(five)
    anonymous = write(tmp_path / "s.json", alpha_vantage({}, **{"2. Symbol": ""}))
    with raises(anonymous, "has no 'Meta Data' / '2. Symbol'"):
        formats.read_alphavantage(anonymous)
    field = write(tmp_path / "v.json", alpha_vantage({"2025-05-12 09:30:00": {"1. open": "1"}}))
    with raises(field, "bar '2025-05-12 09:30:00' has no '2. high'"):
        formats.read_alphavantage(field)
    text = write(tmp_path / "t.json", alpha_vantage({"2025-05-12 09:30:00": av_bar("n/a")}))
    with raises(text, "column '1. open' is not a number at bar '2025-05-12 09:30:00': 'n/a'"):
        formats.read_alphavantage(text)
    broken = write(tmp_path / "b.json.gz", "{not json")
    with raises(broken, "cannot be read as JSON"):
        formats.read_alphavantage(broken)


# -- several files ----------------------------------------------------------------------------------
def bars_frame(rows: list[tuple[str, str, float]], day: dt.date = DAY) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ticker": [r[0] for r in rows],
            "window_start": [et(day, r[1]) for r in rows],
            "open": [r[2] for r in rows],
            "high": [r[2] for r in rows],
            "low": [r[2] for r in rows],
            "close": [r[2] for r in rows],
            "volume": [100.0] * len(rows),
            "vwap": [None] * len(rows),
            "transactions": [None] * len(rows),
        },
        schema=parsers.MINUTE_BARS_SCHEMA,
    )


def test_merge_keeps_a_shared_bar_once_and_refuses_a_disagreement() -> None:
    one = bars_frame([("A", "09:30", 1.0), ("A", "09:31", 1.1)])
    two = bars_frame([("A", "09:31", 1.1), ("B", "09:31", 5.0)])
    merged = formats.merge_bars([("one.csv", one), ("two.csv", two)])
    assert merged.frame.height == 3
    assert merged.exact_duplicates == 1
    clash = bars_frame([("A", "09:31", 1.2)])
    with pytest.raises(
        LocalBarsError, match=r"^one.csv: ticker 'A' has a different bar at .* in clash.csv"
    ):
        formats.merge_bars([("one.csv", one), ("clash.csv", clash)])


# -- daily bars from minute bars ----------------------------------------------------------------------
def test_daily_bar_is_the_regular_session_with_the_whole_days_volume() -> None:
    minutes = bars_frame(
        [
            ("A", "04:00", 9.0),  # premarket: volume only
            ("A", "09:30", 2.0),
            ("A", "12:00", 3.0),
            ("A", "15:59", 2.5),
            ("A", "16:00", 8.0),  # post: volume only
            ("A", "20:00", 7.0),  # after 20:00: not even volume
            ("B", "05:00", 4.0),  # only premarket bars: no daily bar (a real cache gap)
        ]
    )
    daily = formats.daily_from_minutes(minutes)
    assert daily.rows() == [("A", DAY, 2.0, 3.0, 2.0, 2.5, 500.0, None, None)]


def test_half_day_regular_session_ends_at_one() -> None:
    minutes = bars_frame([("A", "09:30", 2.0), ("A", "12:59", 3.0), ("A", "13:00", 9.0)], HALF_DAY)
    daily = formats.daily_from_minutes(minutes).row(0, named=True)
    assert (daily["high"], daily["close"], daily["volume"]) == (3.0, 3.0, 300.0)


def test_vwap_and_counts_only_when_every_bar_has_them() -> None:
    minutes = bars_frame([("A", "09:30", 2.0), ("A", "09:31", 4.0)]).with_columns(
        vwap=pl.Series([2.0, 4.0]), transactions=pl.Series([3, 5])
    )
    full = formats.daily_from_minutes(minutes).row(0, named=True)
    assert (full["vwap"], full["transactions"]) == (3.0, 8)
    partial = minutes.with_columns(vwap=pl.Series([2.0, None]), transactions=pl.Series([None, 5]))
    row = formats.daily_from_minutes(partial).row(0, named=True)
    assert (row["vwap"], row["transactions"]) == (None, None)


_CLOCKS = st.integers(min_value=3 * 60, max_value=21 * 60 + 59)  # 03:00-21:59, past both edges


@st.composite
def _minute_bars(draw: st.DrawFn) -> tuple[dt.date, list[dict[str, Any]]]:
    day = draw(st.sampled_from([DAY, HALF_DAY]))
    rows: list[dict[str, Any]] = []
    for ticker in draw(
        st.lists(st.sampled_from(["A", "B", "C"]), min_size=1, max_size=3, unique=True)
    ):
        for minute_of_day in draw(st.lists(_CLOCKS, min_size=1, max_size=30, unique=True)):
            low = draw(st.floats(0.01, 100.0))
            high = low + draw(st.floats(0.0, 10.0))
            rows.append(
                {
                    "ticker": ticker,
                    "clock": dt.time(minute_of_day // 60, minute_of_day % 60),
                    "open": draw(st.floats(low, high)),
                    "close": draw(st.floats(low, high)),
                    "high": high,
                    "low": low,
                    "volume": float(draw(st.integers(0, 10_000))),
                    "vwap": draw(st.floats(low, high)),
                    "transactions": draw(st.integers(0, 50)),
                }
            )
    return day, rows


@settings(max_examples=60, deadline=None)
@given(_minute_bars())
def test_daily_aggregation_matches_a_naive_loop(case: tuple[dt.date, list[dict[str, Any]]]) -> None:
    day, rows = case
    frame = pl.DataFrame(
        {
            "ticker": [r["ticker"] for r in rows],
            "window_start": [dt.datetime.combine(day, r["clock"], tzinfo=NY) for r in rows],
            **{
                k: [r[k] for r in rows]
                for k in ("open", "high", "low", "close", "volume", "vwap", "transactions")
            },
        },
        schema=parsers.MINUTE_BARS_SCHEMA,
    ).sample(fraction=1.0, shuffle=True, seed=1)  # the input order must not matter
    daily = {r["ticker"]: r for r in formats.daily_from_minutes(frame).iter_rows(named=True)}
    close_at = dt.time(13) if day == HALF_DAY else dt.time(16)
    expected: dict[str, dict[str, Any]] = {}
    for ticker in sorted({r["ticker"] for r in rows}):
        mine = sorted((r for r in rows if r["ticker"] == ticker), key=lambda r: r["clock"])
        regular = [r for r in mine if dt.time(9, 30) <= r["clock"] < close_at]
        in_day = [r for r in mine if dt.time(4) <= r["clock"] < dt.time(20)]
        if not regular:
            continue
        volume = sum(r["volume"] for r in in_day)
        expected[ticker] = {
            "open": regular[0]["open"],
            "close": regular[-1]["close"],
            "high": max(r["high"] for r in regular),
            "low": min(r["low"] for r in regular),
            "volume": volume,
            "vwap": round(sum(r["vwap"] * r["volume"] for r in in_day) / volume, 4)
            if volume > 0
            else None,
            "transactions": sum(r["transactions"] for r in in_day),
        }
    assert set(daily) == set(expected)
    for ticker, want in expected.items():
        got = daily[ticker]
        assert got["date"] == day
        for key in ("open", "close", "high", "low", "volume", "transactions"):
            assert got[key] == want[key], (ticker, key)
        if want["vwap"] is None:
            assert got["vwap"] is None
        else:
            assert got["vwap"] == pytest.approx(want["vwap"], abs=1e-4)


# -- reference files ----------------------------------------------------------------------------------
def test_tickers_csv(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tickers.csv",
        "ticker,type,primary_exchange,shares_outstanding,list_date,delisted_date,notes\n"
        "ZZZ,,XNAS,,2020-01-02,,x\nAAA,cs,xnys,1500000,,2025-06-30,\n",
    )
    frame = formats.read_tickers_csv(path)
    assert frame.rows() == [
        ("AAA", "CS", "XNYS", 1_500_000.0, None, None, None, dt.date(2025, 6, 30)),
        ("ZZZ", "CS", "XNAS", None, None, None, dt.date(2020, 1, 2), None),  # blank type: CS
    ]


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (
            "A,CS,NASDAQ,1\n",
            "primary_exchange 'NASDAQ' at data row 1: write the exchange's MIC code (XNAS)",
        ),
        ("A,CS,XNAS,1\nA,CS,XNAS,2\n", "A is listed twice (data row 2)"),
        ("A,CS,XNAS,-1\n", "shares_outstanding is negative at data row 1"),
        ("A,CS,XNAS,many\n", "column 'shares_outstanding' is not a number at data row 1: 'many'"),
    ],
)
def test_tickers_csv_problems(tmp_path: Path, rows: str, problem: str) -> None:
    path = write(
        tmp_path / "tickers.csv", "ticker,type,primary_exchange,shares_outstanding\n" + rows
    )
    with raises(path, problem):
        formats.read_tickers_csv(path)
    no_shares = write(tmp_path / "x" / "tickers.csv", "ticker,type,primary_exchange\nA,CS,XNAS\n")
    with raises(no_shares, "missing required column(s) shares_outstanding"):
        formats.read_tickers_csv(no_shares)
    dates = write(
        tmp_path / "d" / "tickers.csv",
        "ticker,type,primary_exchange,shares_outstanding,list_date\nA,CS,XNAS,1,12/05/2025\n",
    )
    with raises(dates, "column 'list_date' is not a YYYY-MM-DD date at data row 1: '12/05/2025'"):
        formats.read_tickers_csv(dates)


def test_splits_csv(tmp_path: Path) -> None:
    path = write(
        tmp_path / "splits.csv", "ticker,execution_date,split_from,split_to\nGRI,2024-06-18,13,1\n"
    )
    assert formats.read_splits_csv(path).rows() == [("GRI", dt.date(2024, 6, 18), 13.0, 1.0)]
    zero = write(
        tmp_path / "z" / "splits.csv",
        "ticker,execution_date,split_from,split_to\nGRI,2024-06-18,0,1\n",
    )
    with raises(zero, "split_from and split_to must be positive (data row 1)"):
        formats.read_splits_csv(zero)
    twice = write(
        tmp_path / "t" / "splits.csv",
        "ticker,execution_date,split_from,split_to\nA,2024-06-18,2,1\nA,2024-06-18,3,1\n",
    )
    with raises(twice, "A, 2024-06-18 is listed twice"):
        formats.read_splits_csv(twice)


# -- the folder -----------------------------------------------------------------------------------------
def folder(tmp_path: Path) -> Path:
    """GRI as Alpha Vantage JSON (two sessions), a flat minute file with AAA and GRI on DAY, a
    README to skip, and the reference files."""
    root = tmp_path / "bars"
    previous = calendar.previous_session(DAY)
    write(
        root / "minute" / "GRI.json",
        alpha_vantage(
            {
                f"{previous} 15:59:00": av_bar("1.4500", "50"),
                f"{DAY} 08:00:00": av_bar("1.5500", "1000"),
                f"{DAY} 09:30:00": av_bar("1.6100", "300"),
            }
        ),
    )
    write(
        root / "us_stocks_sip" / "minute_aggs_v1" / "2025" / "05" / f"{DAY}.csv.gz",
        FLAT_HEADER
        + flat_row("AAA", DAY, "09:30", 10.0, 40)
        + flat_row("AAA", DAY, "15:59", 11.0, 60),
    )
    write(root / "README.md", "notes")
    write(
        root / "tickers.csv",
        "ticker,type,primary_exchange,shares_outstanding,name,list_date,delisted_date\n"
        "GRI,CS,XNAS,3000000,GRI Bio,,\nOLD,CS,XNYS,100,Old Co,2001-01-02,2025-05-01\n"
        "NEW,CS,XNAS,100,New Co,2025-06-02,\n",
    )
    write(
        root / "splits.csv",
        "ticker,execution_date,split_from,split_to\nGRI,2025-05-12,13,1\nAAA,2025-05-13,1,2\n",
    )
    return root


def test_the_index_reads_every_kind_of_file_once(tmp_path: Path) -> None:
    bars = LocalBars(folder(tmp_path))
    summary = bars.summary()
    assert summary == {
        "per_ticker_files": 1,
        "minute_flat_files": 1,
        "day_flat_files": 0,
        "sessions": 2,
        "per_ticker_bars": 3,
        "skipped_files": 1,
        "exact_duplicates_dropped": 0,
    }
    minutes = bars.minute_bars(DAY)
    assert minutes.group_by("ticker").len().sort("ticker").rows() == [("AAA", 2), ("GRI", 2)]
    assert bars.minute_bars(DAY) is minutes  # cached
    daily = bars.daily_bars(DAY)
    assert daily.select("ticker", "open", "close", "volume").rows() == [
        ("AAA", 10.0, 11.0, 100.0),
        ("GRI", 1.61, 1.61, 1300.0),
    ]
    assert bars.tickers_with_bars(DAY) == {"AAA", "GRI"}


def test_a_day_flat_file_is_the_vendors_daily_bar(tmp_path: Path) -> None:
    root = folder(tmp_path)
    write(
        root / "day_aggs_v1" / f"{DAY}.csv", FLAT_HEADER + flat_row("AAA", DAY, "00:00", 12.0, 999)
    )
    daily = LocalBars(root).daily_bars(DAY)
    assert daily.select("ticker", "open", "volume").rows() == [("AAA", 12.0, 999.0)]


def test_a_flat_file_and_a_per_ticker_file_must_agree(tmp_path: Path) -> None:
    root = folder(tmp_path)
    header = "Datetime,Open,High,Low,Close,Volume,transactions\n"
    write(root / "minute" / "AAA.csv", header + "2025-05-12 09:30:00,10,10,10,10,40,7\n")
    agreeing = LocalBars(root)
    assert agreeing.minute_bars(DAY).filter(pl.col("ticker") == "AAA").height == 2
    assert sum(agreeing.duplicates_dropped.values()) == 1
    write(root / "minute" / "AAA.csv", header + "2025-05-12 09:30:00,10,10,10,10.5,40,7\n")
    flat = root / "us_stocks_sip" / "minute_aggs_v1" / "2025" / "05" / f"{DAY}.csv.gz"
    with raises(
        flat,
        "ticker 'AAA' has a different bar at 2025-05-12 13:30:00+00:00 in the per-ticker files",
    ):
        LocalBars(root).minute_bars(DAY)


def test_folder_problems(tmp_path: Path) -> None:
    with raises(tmp_path / "nowhere", "is not a folder"):
        LocalBars(tmp_path / "nowhere").index()
    root = folder(tmp_path)
    second = write(root / "minute_aggs_v1" / f"{DAY}.csv", FLAT_HEADER)
    later = root / "us_stocks_sip" / "minute_aggs_v1" / "2025" / "05" / f"{DAY}.csv.gz"
    with raises(later, f"a second file for session 2025-05-12 (also {second})"):
        LocalBars(root).index()
    second.unlink()
    bad_later = write(
        root / "minute_aggs_v1" / "2025-05-13.csv", FLAT_HEADER + flat_row("AAA", DAY, "09:30")
    )
    bars = LocalBars(root)
    bars.index()  # names and headers are fine: contents are read with their session
    with raises(bad_later, "belong to session(s) 2025-05-12, not to 2025-05-13"):
        bars.validate([DAY, dt.date(2025, 5, 13)])


def test_local_bars_error_survives_pickling() -> None:
    error = LocalBarsError("/data/x.csv", "column 'open' is empty at data row 3")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.problem, str(copy)) == (error.path, error.problem, str(error))


# -- the endpoints ----------------------------------------------------------------------------------------
def get(bars: LocalBars, path: str, **params: Any) -> httpx.Response:
    with httpx.Client(
        transport=LocalPolygonTransport(bars), base_url="https://api.polygon.io"
    ) as http:
        return http.get(path, params=params)


def test_grouped_daily_shape(tmp_path: Path) -> None:
    bars = LocalBars(folder(tmp_path))
    body = get(bars, f"/v2/aggs/grouped/locale/us/market/stocks/{DAY}", adjusted="false").json()
    assert body["status"] == "OK"
    assert (body["queryCount"], body["resultsCount"], body["count"], body["adjusted"]) == (
        2,
        2,
        2,
        False,
    )
    stamp = ms(DAY, "16:00")
    assert body["results"] == [
        {"T": "AAA", "v": 100, "o": 10.0, "c": 11.0, "h": 11.0, "l": 10.0, "t": stamp, "n": 14},
        # The JSON has no vwap or trade count: vw and n are left out, as real bars sometimes do.
        {"T": "GRI", "v": 1300, "o": 1.61, "c": 1.61, "h": 1.61, "l": 1.61, "t": stamp},
    ]
    frame = parsers.parse_grouped_daily(body["results"], DAY)
    assert frame["window_start"][0] == et(DAY, "16:00")
    for empty_day in ("2025-05-13", "2025-05-10"):  # no files; a Saturday
        empty = get(
            bars, f"/v2/aggs/grouped/locale/us/market/stocks/{empty_day}", adjusted="false"
        ).json()
        assert "results" not in empty
        assert empty["resultsCount"] == 0


def test_bars_are_served_unadjusted_only(tmp_path: Path) -> None:
    bars = LocalBars(folder(tmp_path))
    refused = get(bars, f"/v2/aggs/grouped/locale/us/market/stocks/{DAY}")  # Polygon's default
    assert refused.status_code == 400
    assert "unadjusted" in refused.json()["error"]
    coarse = get(bars, f"/v2/aggs/ticker/GRI/range/5/minute/{DAY}/{DAY}", adjusted="false")
    assert coarse.status_code == 400


def test_custom_bars_page_through_next_url(tmp_path: Path) -> None:
    bars = LocalBars(folder(tmp_path))
    previous = calendar.previous_session(DAY)

    async def fetch(limit: int) -> list[dict[str, Any]] | None:
        async with PolygonClient(api_key=None, transport=LocalPolygonTransport(bars)) as client:
            return await client.aggregates("GRI", 1, "minute", previous, DAY, limit=limit)

    whole = asyncio.run(fetch(50_000))
    paged = asyncio.run(fetch(1))
    assert whole == paged
    assert [b["t"] for b in whole or []] == [
        ms(previous, "15:59"),
        ms(DAY, "08:00"),
        ms(DAY, "09:30"),
    ]
    assert whole
    assert whole[0] == {
        "v": 50,
        "o": 1.45,
        "c": 1.45,
        "h": 1.45,
        "l": 1.45,
        "t": ms(previous, "15:59"),
    }
    first_page = get(
        bars, f"/v2/aggs/ticker/GRI/range/1/minute/{previous}/{DAY}", adjusted="false", limit=2
    ).json()
    assert first_page["resultsCount"] == 2
    assert first_page["next_url"].startswith(
        f"https://api.polygon.io/v2/aggs/ticker/GRI/range/1/minute/{ms(DAY, '09:30')}/{DAY}?cursor="
    )
    descending = get(
        bars, f"/v2/aggs/ticker/GRI/range/1/minute/{previous}/{DAY}", adjusted="false", sort="desc"
    ).json()
    assert [b["t"] for b in descending["results"]] == [b["t"] for b in reversed(whole or [])]
    days = get(bars, f"/v2/aggs/ticker/AAA/range/1/day/{DAY}/{DAY}", adjusted="false").json()
    assert days["results"] == [
        {"v": 100, "o": 10.0, "c": 11.0, "h": 11.0, "l": 10.0, "t": ms(DAY, "00:00"), "n": 14}
    ]
    nothing = get(bars, f"/v2/aggs/ticker/NOPE/range/1/minute/{DAY}/{DAY}", adjusted="false").json()
    assert (nothing["resultsCount"], "results" in nothing) == (0, False)
    assert parsers.parse_aggregates(whole or [], "GRI").height == 3


def test_tickers_come_from_tickers_csv_and_from_the_bars(tmp_path: Path) -> None:
    bars = LocalBars(folder(tmp_path))
    listed = get(bars, "/v3/reference/tickers", date=str(DAY), active="true").json()["results"]
    assert [r["ticker"] for r in listed] == ["AAA", "GRI"]  # NEW lists later, OLD is gone
    undeclared, declared = listed
    assert undeclared == {
        "ticker": "AAA", "name": "AAA", "market": "stocks", "locale": "us", "type": "CS",
        "active": True, "currency_name": "usd", "last_updated_utc": "2025-05-12T00:00:00Z",
    }  # fmt: skip
    assert (declared["name"], declared["primary_exchange"]) == ("GRI Bio", "XNAS")
    gone = get(bars, "/v3/reference/tickers", date=str(DAY), active="false").json()["results"]
    assert [(r["ticker"], r["active"], r["delisted_utc"]) for r in gone] == [
        ("OLD", False, "2025-05-01T04:00:00Z")
    ]
    frame = parsers.parse_tickers([*listed, *gone], DAY)
    assert frame.height == 3

    async def paged() -> list[dict[str, Any]]:
        async with PolygonClient(api_key=None, transport=LocalPolygonTransport(bars)) as client:
            return await client.tickers(DAY, active=True, limit=1)

    assert [r["ticker"] for r in asyncio.run(paged())] == ["AAA", "GRI"]


def test_ticker_details(tmp_path: Path) -> None:
    bars = LocalBars(folder(tmp_path))
    gri = get(bars, "/v3/reference/tickers/GRI", date=str(DAY)).json()["results"]
    # Market cap: the previous session's close (1.45) times the declared shares.
    assert gri == {
        "ticker": "GRI", "name": "GRI Bio", "market": "stocks", "locale": "us",
        "primary_exchange": "XNAS", "type": "CS", "active": True, "currency_name": "usd",
        "market_cap": 4_350_000.0, "share_class_shares_outstanding": 3_000_000,
        "weighted_shares_outstanding": 3_000_000,
    }  # fmt: skip
    undeclared = get(bars, "/v3/reference/tickers/AAA", date=str(DAY)).json()["results"]
    assert "share_class_shares_outstanding" not in undeclared
    assert "primary_exchange" not in undeclared  # the universe screen cannot admit it
    assert get(bars, "/v3/reference/tickers/AAA", date="2025-05-13").status_code == 404
    assert get(bars, "/v3/reference/tickers/NEW", date=str(DAY)).status_code == 404
    old = get(bars, "/v3/reference/tickers/OLD", date=str(DAY)).json()["results"]
    assert (old["active"], old["delisted_utc"]) == (False, "2025-05-01T04:00:00Z")
    parsed = parsers.parse_ticker_details([gri, undeclared, old], DAY)
    assert parsed["share_class_shares_outstanding"].to_list() == [3_000_000.0, None, 100.0]


def test_splits_and_the_empty_endpoints(tmp_path: Path) -> None:
    bars = LocalBars(folder(tmp_path))
    splits = get(bars, "/v3/reference/splits", execution_date=str(DAY)).json()
    assert splits["results"] == [
        {"execution_date": "2025-05-12", "split_from": 13, "split_to": 1, "ticker": "GRI"}
    ]
    assert parsers.parse_splits(splits["results"]).height == 1
    reverse = get(bars, "/v3/reference/splits", reverse_split="false").json()["results"]
    assert [r["ticker"] for r in reverse] == ["AAA"]
    for path in ("/v3/reference/dividends", "/vX/reference/financials", "/v2/reference/news"):
        body = get(bars, path).json()
        assert (body["status"], body["results"]) == ("OK", [])
    assert get(bars, "/v3/snapshot").status_code == 404


def test_a_bad_file_is_raised_out_of_the_request_not_turned_into_a_status(tmp_path: Path) -> None:
    root = folder(tmp_path)
    bad = write(root / "minute_aggs_v1" / "2025-05-13.csv", FLAT_HEADER + "AAA,1,1,1,1,1,oops,1\n")
    with raises(bad, "column 'window_start' is not an integer at data row 1: 'oops'"):
        get(
            LocalBars(root), "/v2/aggs/grouped/locale/us/market/stocks/2025-05-13", adjusted="false"
        )
