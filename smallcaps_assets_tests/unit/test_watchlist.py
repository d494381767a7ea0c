"""The daily watchlist's pure parts: ranking, gappers, news and the Markdown report."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from smallcaps_assets.core import research_schemas, watchlist
from smallcaps_assets.core.validation import validate_schema

DAY = dt.date(2024, 8, 5)
TS = dt.datetime(2024, 8, 5, 14, 0, tzinfo=dt.UTC)  # 10:00 New York


def _events() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [DAY] * 3,
            "ticker": ["AAA", "BBB", "CCC"],
            "ts": [TS, TS + dt.timedelta(minutes=5), TS + dt.timedelta(minutes=9)],
            "pattern": ["orb", "vwap_reclaim", "orb"],
        },
        schema_overrides={"ts": pl.Datetime("ms", "UTC")},
    )


def test_events_are_ranked_by_score_with_new_york_times_and_pass_their_schema():
    ranked = watchlist.rank_events(
        _events(),
        dt.date(2024, 8, 1),
        np.array([0.2, 0.9, 0.5]),
        np.array([False, True, True]),
        ["a", "b", "c"],
    )
    assert ranked.get_column("ticker").to_list() == ["BBB", "CCC", "AAA"]
    assert ranked.get_column("rank").to_list() == [1, 2, 3]
    assert ranked.get_column("time_et").to_list() == ["10:05", "10:09", "10:00"]
    assert ranked.get_column("model_month").unique().to_list() == ["2024-08"]
    assert validate_schema(research_schemas.WATCHLIST_MODEL, ranked).passed


def test_without_a_model_events_are_listed_unscored_in_order():
    ranked = watchlist.rank_events(_events(), None)
    assert ranked.get_column("ticker").to_list() == ["AAA", "BBB", "CCC"]
    assert ranked.get_column("score").null_count() == 3
    assert validate_schema(research_schemas.WATCHLIST_MODEL, ranked).passed
    markdown = watchlist.markdown_report(
        DAY, ranked, None, watchlist.gappers(None), watchlist.candidate_news(None, ranked)
    )
    assert "events are listed unscored" in markdown
    assert "No candidate gapped" in markdown


def test_news_is_kept_only_for_the_gappers():
    gapping = watchlist.gappers(
        pl.DataFrame(
            {
                "ticker": ["AAA", "BBB"],
                "gap_pct": [0.12, 0.30],
                "premarket_volume": [2e5, 9e5],
                "premarket_rvol": [3.0, None],
                "is_watchlist": [True, False],
                "other": [1, 2],
            }
        )
    )
    assert gapping.columns == list(watchlist.GAPPER_COLUMNS)
    assert gapping.get_column("ticker").to_list() == ["BBB", "AAA"]
    news = pl.DataFrame(
        {
            "tickers": [["AAA", "ZZZ"], ["QQQ"]],
            "published_utc": [TS, TS],
            "title": ["AAA wins a contract", "unrelated"],
        }
    )
    kept = watchlist.candidate_news(news, gapping)
    assert kept.to_dicts() == [
        {"ticker": "AAA", "published_et": "08-05 10:00", "title": "AAA wins a contract"}
    ]
    markdown = watchlist.markdown_report(
        DAY, watchlist.rank_events(_events(), None), None, gapping, kept
    )
    assert "| BBB | 30.0% | 900,000 | n/a |  |" in markdown
    assert "**AAA** 08-05 10:00: AAA wins a contract" in markdown
