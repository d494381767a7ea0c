"""Per-ticker daily news counts, sentiment and topic flags.

The window of session D is the raw news partition's: New York calendar days after the previous
session up to the end of D, so weekend and holiday articles land on the next session. An optional
``cutoff_utc`` narrows it further (for example to 09:30 ET, for what a trader could have read
before the open); nothing published after the cutoff is read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

import polars as pl

from smallcaps_assets.core import calendar
from smallcaps_assets.core.bars import conform

__all__ = [
    "NEWS_DAILY_SCHEMA",
    "SENTIMENT_SCORES",
    "TOPIC_PATTERNS",
    "news_daily",
    "news_until",
    "news_window_utc",
    "ticker_mentions",
]

SENTIMENT_SCORES: Final[Mapping[str, int]] = {"positive": 1, "neutral": 0, "negative": -1}

# Case-insensitive regexes over an article's title and keywords. Deliberately broad (a research
# flag, not a classifier): "merger" also covers acquisitions and takeovers, "offering" covers the
# dilutive financings small caps announce (placements, registered directs, ATM programs).
TOPIC_PATTERNS: Final[Mapping[str, str]] = {
    "has_fda": r"\bfda\b|food and drug administration",
    "has_merger": r"merger|\bmerges?\b|acqui(re|res|red|sition)|takeover|buyout",
    "has_offering": r"offering|private placement|registered direct|at-the-market|\batm\b",
    "has_bankruptcy": r"bankrupt|chapter 11|chapter 7\b|insolven",
    "has_halt": r"\bhalt",
    "has_earnings": r"earnings|quarterly results|financial results|\beps\b",
    "has_contract": r"contract|\bawarded\b",
    "has_partnership": r"partner|collaborat|alliance|joint venture",
}

NEWS_DAILY_SCHEMA: Final = pl.Schema(
    {
        "date": pl.Date(),
        "ticker": pl.String(),
        "article_count": pl.Int64(),
        "positive_count": pl.Int64(),
        "negative_count": pl.Int64(),
        "neutral_count": pl.Int64(),
        "sentiment_mean": pl.Float64(),
        **dict.fromkeys(TOPIC_PATTERNS, pl.Boolean()),
        "first_published_utc": pl.Datetime("us", "UTC"),
        "last_published_utc": pl.Datetime("us", "UTC"),
    }
)


def news_window_utc(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of session ``day``'s news: New York midnight after the previous
    session to New York midnight after ``day``."""
    first_day = calendar.previous_session(day) + dt.timedelta(days=1)
    start = dt.datetime.combine(first_day, dt.time(0), tzinfo=calendar.NY)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=calendar.NY)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _require_aware(moment: dt.datetime) -> None:
    # A naive cutoff would be compared as UTC while the caller may well have meant New York.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"cutoff must be timezone-aware, got {moment!r}")


def news_until(news_rows: pl.DataFrame, cutoff_utc: dt.datetime) -> pl.DataFrame:
    """Articles published at or before ``cutoff_utc`` (an aware datetime); input schema kept."""
    _require_aware(cutoff_utc)
    return news_rows.filter(pl.col("published_utc") <= cutoff_utc.astimezone(dt.UTC))


def news_daily(
    news_rows: pl.DataFrame, day: dt.date, cutoff_utc: dt.datetime | None = None
) -> pl.DataFrame:
    """One row per ticker mentioned by an article in ``day``'s window (see the module docstring).

    ``news_rows`` has the raw news schema and may hold more than the window; rows outside it
    (or after ``cutoff_utc``) are ignored. An article is counted once per distinct ticker in its
    ``tickers`` list, even if delivered twice (same ``id``, last copy wins). Its score for a
    ticker is the mean of the ``insights`` for *that* ticker (positive +1, neutral 0, negative
    -1); a listed ticker without an insight scores 0 and counts as neutral, and insights for
    tickers the article does not list are ignored. The topic flags are true when any of the
    ticker's articles matches :data:`TOPIC_PATTERNS` in its title or keywords.

    Schema: :data:`NEWS_DAILY_SCHEMA`, sorted by ticker.
    """
    start, end = news_window_utc(day)
    if cutoff_utc is not None:
        _require_aware(cutoff_utc)
        end = min(end, cutoff_utc.astimezone(dt.UTC) + dt.timedelta(microseconds=1))
    published = pl.col("published_utc")
    window = news_rows.filter((published >= start) & (published < end))
    score = pl.col("score")
    return (
        ticker_mentions(window)
        .group_by("ticker")
        .agg(
            article_count=pl.len(),
            positive_count=(score > 0).sum(),
            negative_count=(score < 0).sum(),
            neutral_count=(score == 0).sum(),
            sentiment_mean=score.mean(),
            **{flag: pl.col(flag).any() for flag in TOPIC_PATTERNS},
            first_published_utc=published.min(),
            last_published_utc=published.max(),
        )
        .with_columns(date=pl.lit(day))
        .pipe(conform, NEWS_DAILY_SCHEMA)
        .sort("ticker")
    )


def ticker_mentions(news_rows: pl.DataFrame) -> pl.DataFrame:
    """One row per (article, listed ticker): ``id``, ``ticker``, ``published_utc``, ``score``
    (mean insight sentiment for that ticker, 0 without one) and the topic flags of the article.

    An article delivered twice (same ``id``) counts once, the last copy winning.
    """
    articles = news_rows.unique(subset="id", keep="last", maintain_order=True).with_columns(
        _text=pl.concat_str(
            pl.col("title").fill_null(""),
            pl.col("keywords").list.join(" | "),
            separator=" | ",
        ).str.to_lowercase()
    )
    mentions = (
        articles.select("id", "published_utc", "_text", pl.col("tickers").alias("ticker"))
        .explode("ticker")
        .filter(pl.col("ticker").is_not_null())
        .unique(subset=["id", "ticker"])
    )
    scores = (
        articles.select("id", "insights")
        .explode("insights")
        .filter(pl.col("insights").is_not_null())
        .select(
            "id",
            ticker=pl.col("insights").struct.field("ticker"),
            score=pl.col("insights")
            .struct.field("sentiment")
            .replace_strict(SENTIMENT_SCORES, default=None, return_dtype=pl.Int64),
        )
        .group_by("id", "ticker")
        .agg(pl.col("score").mean())
    )
    return (
        mentions.join(scores, on=["id", "ticker"], how="left")
        .with_columns(
            pl.col("score").fill_null(0.0).cast(pl.Float64),
            **{flag: pl.col("_text").str.contains(rx) for flag, rx in TOPIC_PATTERNS.items()},
        )
        .drop("_text")
        .sort("ticker", "published_utc", "id")
    )
