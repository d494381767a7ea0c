"""Daily news per ticker: the partition window, per-ticker sentiment, topic flags and cutoffs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from smallcaps_assets.core.news import NEWS_DAILY_SCHEMA, news_daily, news_until, news_window_utc
from smallcaps_assets.core.processed_schemas import ProcessedNewsDaily, check_point_in_time
from smallcaps_assets.sources import parsers

MONDAY = date(2024, 3, 4)  # the previous session is Friday 2024-03-01


def article(
    article_id: str,
    published: str,
    tickers: list[str],
    *,
    title: str = "Company update",
    keywords: list[str] | None = None,
    insights: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    return {
        "id": article_id,
        "published_utc": published,
        "title": title,
        "tickers": tickers,
        "keywords": keywords or [],
        "insights": [{"ticker": t, "sentiment": s} for t, s in insights],
    }


def parse(*rows: dict[str, Any]) -> pl.DataFrame:
    return parsers.parse_news(list(rows))


def by_ticker(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["ticker"]: row for row in frame.iter_rows(named=True)}


def test_window_runs_from_after_the_previous_session_to_the_end_of_the_session() -> None:
    start, end = news_window_utc(MONDAY)
    assert start == datetime(2024, 3, 2, 5, tzinfo=UTC)  # Saturday 00:00 EST
    assert end == datetime(2024, 3, 5, 5, tzinfo=UTC)  # Tuesday 00:00 EST
    rows = parse(
        article("fri", "2024-03-01T21:00:00Z", ["OLD"]),  # Friday 16:00 ET: Friday's partition
        article("sat", "2024-03-02T15:00:00Z", ["WKND"]),
        article("mon", "2024-03-05T04:59:00Z", ["LATE"]),  # Monday 23:59 ET
        article("tue", "2024-03-05T05:00:00Z", ["NEXT"]),
    )
    assert news_daily(rows, MONDAY).get_column("ticker").to_list() == ["LATE", "WKND"]


def test_sentiment_is_read_for_each_ticker_and_missing_insight_is_neutral() -> None:
    rows = parse(
        article("a", "2024-03-04T13:00:00Z", ["AAA", "BBB"], insights=[("AAA", "positive")]),
        article(
            "b",
            "2024-03-04T14:00:00Z",
            ["AAA", "BBB"],
            insights=[("AAA", "negative"), ("BBB", "positive"), ("ZZZ", "negative")],
        ),
        article("c", "2024-03-04T15:00:00Z", ["AAA"], insights=[("AAA", "negative")]),
    )
    stats = by_ticker(news_daily(rows, MONDAY))
    assert set(stats) == {"AAA", "BBB"}  # an insight alone does not add a ticker
    aaa, bbb = stats["AAA"], stats["BBB"]
    assert (aaa["article_count"], aaa["positive_count"], aaa["negative_count"]) == (3, 1, 2)
    assert aaa["sentiment_mean"] == pytest.approx(-1 / 3)
    assert (bbb["article_count"], bbb["neutral_count"], bbb["positive_count"]) == (2, 1, 1)
    assert bbb["sentiment_mean"] == pytest.approx(0.5)
    assert aaa["first_published_utc"] == datetime(2024, 3, 4, 13, tzinfo=UTC)
    assert aaa["last_published_utc"] == datetime(2024, 3, 4, 15, tzinfo=UTC)


def test_topic_flags_match_title_and_keywords_case_insensitively() -> None:
    rows = parse(
        article("a", "2024-03-04T13:00:00Z", ["BIO"], title="Receives FDA Fast Track"),
        article("b", "2024-03-04T13:00:00Z", ["BIO"], keywords=["Public Offering"]),
        article("c", "2024-03-04T13:00:00Z", ["MNA"], title="Agrees to MERGER with peer"),
        article("d", "2024-03-04T13:00:00Z", ["MNA"], keywords=["chapter 11", "Trading Halt"]),
        article(
            "e",
            "2024-03-04T13:00:00Z",
            ["BIZ"],
            title="Q4 earnings; awarded Navy contract; strategic partnership",
        ),
    )
    flags = {
        ticker: {flag for flag, value in row.items() if flag.startswith("has_") and value}
        for ticker, row in by_ticker(news_daily(rows, MONDAY)).items()
    }
    assert flags == {
        "BIO": {"has_fda", "has_offering"},
        "MNA": {"has_merger", "has_bankruptcy", "has_halt"},
        "BIZ": {"has_earnings", "has_contract", "has_partnership"},
    }


def test_duplicate_articles_and_tickers_count_once() -> None:
    one = article("a", "2024-03-04T13:00:00Z", ["AAA", "AAA"], insights=[("AAA", "positive")])
    stats = by_ticker(news_daily(parse(one, one), MONDAY))
    assert stats["AAA"]["article_count"] == 1


def test_cutoff_excludes_later_articles() -> None:
    cutoff = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # 09:30 ET
    rows = parse(
        article("a", "2024-03-04T14:30:00Z", ["AAA"]),  # at the cutoff: included
        article("b", "2024-03-04T14:30:00.000001Z", ["AAA"], title="FDA rejects"),
        article("c", "2024-03-04T16:00:00Z", ["BBB"]),
    )
    frame = news_daily(rows, MONDAY, cutoff_utc=cutoff)
    assert frame.get_column("ticker").to_list() == ["AAA"]
    assert frame.row(0, named=True)["article_count"] == 1
    assert frame.row(0, named=True)["has_fda"] is False
    assert news_until(rows, cutoff).get_column("id").to_list() == ["a"]


def test_naive_cutoff_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        news_until(parse(), datetime(2024, 3, 4, 9, 30))


def test_schema_model_and_point_in_time_check() -> None:
    rows = parse(
        article("a", "2024-03-04T13:00:00Z", ["AAA"], insights=[("AAA", "neutral")]),
        article("b", "2024-03-03T13:00:00Z", ["BBB"]),
    )
    frame = news_daily(rows, MONDAY)
    assert frame.schema == NEWS_DAILY_SCHEMA
    ProcessedNewsDaily.validate(frame)
    assert check_point_in_time("news_daily", frame, MONDAY).passed
    assert not check_point_in_time("news_daily", frame, date(2024, 3, 1)).passed
    assert news_daily(parse(), MONDAY).schema == NEWS_DAILY_SCHEMA
