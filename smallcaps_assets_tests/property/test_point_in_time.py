"""Point-in-time rules as properties: nothing stamped after the moment an output claims to describe
can change that output, whatever the later data looks like."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smallcaps_assets.core.bars import adjust_history_to, process_daily_bars
from smallcaps_assets.core.corporate import corporate_actions
from smallcaps_assets.core.fundamentals import latest_fundamentals
from smallcaps_assets.core.minute import premarket_summary, process_minute_bars, watchlist_flags
from smallcaps_assets.core.news import news_daily
from smallcaps_assets.core.processed_schemas import check_point_in_time
from smallcaps_assets.core.universe import UniverseRules, build_universe
from smallcaps_assets.sources import parsers

NY = ZoneInfo("America/New_York")
DAY = date(2024, 3, 5)
PREVIOUS = date(2024, 3, 4)
TICKERS = ("AAA", "BBB", "CCC", "DDD")

settings.register_profile(
    "point_in_time",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("point_in_time")

prices = st.floats(min_value=0.2, max_value=40.0, allow_nan=False).map(lambda p: round(p, 2))
volumes = st.floats(min_value=0.0, max_value=5e6, allow_nan=False)
ratios = st.sampled_from([(1.0, 2.0), (1.0, 3.0), (2.0, 1.0), (10.0, 1.0), (1.0, 5.0)])


def day_offset(low: int, high: int) -> st.SearchStrategy[date]:
    return st.integers(low, high).map(lambda n: DAY + timedelta(days=n))


def split_rows(dates: st.SearchStrategy[date]) -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.tuples(st.sampled_from(TICKERS), dates, ratios).map(
        lambda r: {
            "ticker": r[0],
            "execution_date": r[1].isoformat(),
            "split_from": r[2][0],
            "split_to": r[2][1],
        }
    )
    return st.lists(row, max_size=6, unique_by=lambda r: (r["ticker"], r["execution_date"]))


def daily_row(
    ticker: str, close: float, open_: float, high: float, low: float, volume: float
) -> dict[str, Any]:
    high, low = max(high, open_, close), min(low, open_, close)
    return {"T": ticker, "o": open_, "h": high, "l": low, "c": close, "v": volume, "t": 0}


@st.composite
def daily_bars(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(TICKERS), min_size=1, max_size=4, unique=True))
    return [
        daily_row(n, draw(prices), draw(prices), draw(prices), draw(prices), draw(volumes))
        for n in names
    ]


# -- rule 3: history is adjusted only with splits executed on or before D ------------------------
@given(
    bars=daily_bars(), known=split_rows(day_offset(-400, 0)), future=split_rows(day_offset(1, 400))
)
def test_splits_after_the_session_change_nothing(
    bars: list[dict[str, Any]], known: list[dict[str, Any]], future: list[dict[str, Any]]
) -> None:
    raw = parsers.parse_grouped_daily(bars, DAY)
    past = parsers.parse_splits(known)
    everything = parsers.parse_splits(known + future)
    no_dividends = parsers.parse_dividends([])

    assert process_daily_bars(raw, everything, DAY).frame.equals(
        process_daily_bars(raw, past, DAY).frame
    )
    assert corporate_actions(everything, no_dividends, DAY).equals(
        corporate_actions(past, no_dividends, DAY)
    )
    history = pl.DataFrame(
        {
            "ticker": [row["T"] for row in bars] * 3,
            "date": [DAY - timedelta(days=d) for d in (0, 30, 300) for _ in bars],
            "close": [row["c"] for row in bars] * 3,
        }
    )
    assert adjust_history_to(DAY, history, everything).equals(adjust_history_to(DAY, history, past))


# -- rule 1: fundamentals come from filings dated before D ---------------------------------------
@st.composite
def filings(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        end = DAY - timedelta(days=draw(st.integers(-60, 500)))
        filed = end + timedelta(days=draw(st.integers(1, 90)))
        revenue = draw(st.floats(1.0, 1e6))
        rows.append(
            {
                "cik": "1",
                "tickers": [draw(st.sampled_from(TICKERS[:2]))],
                "end_date": end.isoformat(),
                "filing_date": filed.isoformat(),
                "fiscal_period": draw(st.sampled_from(["Q1", "Q2", "Q3", "Q4"])),
                "fiscal_year": str(end.year),
                "financials": {"income_statement": {"revenues": {"value": revenue}}},
            }
        )
    return rows


@given(rows=filings())
def test_filings_dated_on_or_after_the_session_are_invisible(rows: list[dict[str, Any]]) -> None:
    frame = parsers.parse_financials(rows)
    visible = latest_fundamentals(frame, DAY)
    assert visible.equals(latest_fundamentals(frame.filter(pl.col("filing_date") < DAY), DAY))
    assert check_point_in_time("fundamentals", visible, DAY).passed


# -- rule 2 and the 09:30 boundary: the universe and its candidates --------------------------------
UNIVERSE_TICKERS = parsers.parse_tickers(
    [
        {"ticker": t, "name": t, "market": "stocks", "active": True, "type": "CS"}
        | {"primary_exchange": "XNAS"}
        for t in TICKERS
    ],
    as_of=DAY,
)
UNIVERSE_DETAILS = parsers.parse_ticker_details(
    [
        {"ticker": t, "name": t, "active": True, "share_class_shares_outstanding": 5e6}
        for t in TICKERS
    ],
    as_of=DAY,
)


@given(
    previous=st.lists(prices, min_size=4, max_size=4),
    today=st.lists(st.tuples(prices, prices, prices, prices, volumes), min_size=4, max_size=4),
    noise=st.lists(st.tuples(prices, prices, prices, volumes), min_size=4, max_size=4),
)
def test_candidates_use_nothing_of_the_session_but_its_open(
    previous: list[float],
    today: list[tuple[float, float, float, float, float]],
    noise: list[tuple[float, float, float, float]],
) -> None:
    def universe(rows: list[dict[str, Any]]) -> pl.DataFrame:
        return build_universe(
            UNIVERSE_TICKERS,
            UNIVERSE_DETAILS,
            parsers.parse_grouped_daily(
                [daily_row(t, c, c, c, c, 1e5) for t, c in zip(TICKERS, previous, strict=True)],
                PREVIOUS,
            ),
            parsers.parse_grouped_daily(rows, DAY),
            UniverseRules(),
            DAY,
        )

    actual = [daily_row(t, *bar) for t, bar in zip(TICKERS, today, strict=True)]
    # Same opens, anything else: another close, high, low and volume for every ticker.
    perturbed = [
        daily_row(t, close, bar[1], high, low, volume)
        for t, bar, (close, high, low, volume) in zip(TICKERS, today, noise, strict=True)
    ]
    assert universe(perturbed).equals(universe(actual))


@given(delisted_after=st.integers(-30, 30))
def test_a_name_delisted_later_is_a_member_while_it_traded(delisted_after: int) -> None:
    delisted = datetime.combine(DAY + timedelta(days=delisted_after), time(0), tzinfo=NY)
    tickers = UNIVERSE_TICKERS.head(1).with_columns(
        active=pl.lit(False), delisted_utc=pl.lit(delisted.astimezone(UTC))
    )
    frame = build_universe(
        tickers,
        UNIVERSE_DETAILS,
        parsers.parse_grouped_daily([daily_row("AAA", 5, 5, 5, 5, 1)], PREVIOUS),
        parsers.parse_grouped_daily([], DAY),
        UniverseRules(),
        DAY,
    )
    assert (frame.height == 1) is (delisted_after > 0)


# -- minute bars: annotations are causal, the watchlist is decided by 09:30 ----------------------
def minute_rows(bars: list[tuple[int, float, float, float]]) -> list[dict[str, Any]]:
    """(minute of the day in New York, open, close, volume) -> /v2/aggs rows."""
    rows = []
    for minute_of_day, open_, close, volume in bars:
        start = datetime.combine(DAY, time(0), tzinfo=NY) + timedelta(minutes=minute_of_day)
        row = {"o": open_, "h": max(open_, close), "l": min(open_, close), "c": close}
        rows.append(row | {"v": volume, "t": int(start.timestamp() * 1000)})
    return rows


bar_lists = st.lists(
    st.tuples(st.integers(4 * 60, 20 * 60 - 1), prices, prices, volumes), max_size=40
)
OPEN_MINUTE = 9 * 60 + 30
PRIOR = pl.DataFrame({"ticker": ["AAA"], "previous_close": [10.0], "ssr_carried_in": [False]})


@given(bars=bar_lists, cut=st.integers(4 * 60, 20 * 60))
def test_minute_annotations_only_look_back(
    bars: list[tuple[int, float, float, float]], cut: int
) -> None:
    """Processing the bars up to any minute gives the same rows as the full day's prefix."""
    full = process_minute_bars(parsers.parse_aggregates(minute_rows(bars), "AAA"), DAY, prior=PRIOR)
    early = [b for b in bars if b[0] < cut]
    partial = process_minute_bars(
        parsers.parse_aggregates(minute_rows(early), "AAA"), DAY, prior=PRIOR
    )
    cutoff = (datetime.combine(DAY, time(0), tzinfo=NY) + timedelta(minutes=cut)).astimezone(UTC)
    assert full.frame.filter(pl.col("ts") < cutoff).equals(partial.frame)


@given(
    premarket=st.lists(st.tuples(st.integers(4 * 60, OPEN_MINUTE - 1), prices, prices, volumes)),
    session=st.lists(st.tuples(st.integers(OPEN_MINUTE, 20 * 60 - 1), prices, prices, volumes)),
    other=st.lists(st.tuples(st.integers(OPEN_MINUTE, 20 * 60 - 1), prices, prices, volumes)),
    average=st.floats(1.0, 1e6),
)
def test_watchlist_ignores_everything_from_the_open_on(
    premarket: list[tuple[int, float, float, float]],
    session: list[tuple[int, float, float, float]],
    other: list[tuple[int, float, float, float]],
    average: float,
) -> None:
    candidates = pl.DataFrame(
        {"date": [DAY], "ticker": ["AAA"], "gap_pct": [0.2], "is_candidate": [True]}
    )
    averages = pl.DataFrame({"ticker": ["AAA"], "avg_premarket_volume_20d": [average]})

    def watchlist(bars: list[tuple[int, float, float, float]]) -> pl.DataFrame:
        frame = process_minute_bars(parsers.parse_aggregates(minute_rows(bars), "AAA"), DAY).frame
        return watchlist_flags(candidates, premarket_summary(frame), averages)

    assert watchlist(premarket + session).equals(watchlist(premarket + other))
    assert watchlist(premarket + session).equals(watchlist(premarket))


# -- rule 1 for news: nothing after the cutoff -----------------------------------------------------
@given(
    minutes=st.lists(st.integers(-3000, 1500), max_size=12),
    cutoff_minute=st.integers(0, 1440),
    sentiments=st.lists(st.sampled_from(["positive", "neutral", "negative"]), min_size=12),
)
def test_news_after_the_cutoff_is_invisible(
    minutes: list[int], cutoff_minute: int, sentiments: list[str]
) -> None:
    midnight = datetime.combine(DAY, time(0), tzinfo=NY)
    cutoff = (midnight + timedelta(minutes=cutoff_minute)).astimezone(UTC)
    rows = [
        {
            "id": str(i),
            "published_utc": (midnight + timedelta(minutes=m)).isoformat(),
            "title": "FDA news" if i % 2 else "Offering",
            "tickers": [TICKERS[i % 3]],
            "insights": [{"ticker": TICKERS[i % 3], "sentiment": sentiments[i]}],
        }
        for i, m in enumerate(minutes)
    ]
    frame = parsers.parse_news(rows)
    early = frame.filter(pl.col("published_utc") <= cutoff)
    assert news_daily(frame, DAY, cutoff).equals(news_daily(early, DAY, cutoff))
    assert news_daily(early, DAY, cutoff).equals(news_daily(early, DAY))
