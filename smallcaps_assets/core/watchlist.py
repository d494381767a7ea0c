"""The daily research watchlist as pure functions: D's events ranked by the newest model's score,
the gappers at the open, their news, and the Markdown a trader reads (``research/watchlist``)."""

from __future__ import annotations

import datetime as dt
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from smallcaps_assets.core.catalog import markdown_table

__all__ = [
    "GAPPER_COLUMNS",
    "NEWS_SCHEMA",
    "candidate_news",
    "gappers",
    "markdown_report",
    "rank_events",
]

TIMEZONE: Final = "America/New_York"
GAPPER_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "gap_pct": pl.Float64(),
        "premarket_volume": pl.Float64(),
        "premarket_rvol": pl.Float64(),
        "is_watchlist": pl.Boolean(),
    }
)
GAPPER_COLUMNS: Final = tuple(GAPPER_SCHEMA.names())
NEWS_SCHEMA: Final = pl.Schema(
    {"ticker": pl.String(), "published_et": pl.String(), "title": pl.String()}
)


def rank_events(
    events: pl.DataFrame,
    model_month: dt.date | None,
    scores: npt.NDArray[np.float64] | None = None,
    selected: npt.NDArray[np.bool_] | None = None,
    reasons: list[str] | None = None,
) -> pl.DataFrame:
    """D's events by descending score (unscored, in event order, when no model existed), with
    rank, New York time and the model month that scored them."""
    scored = events.select("date", "ticker", "ts", "pattern")
    if scores is not None and selected is not None and reasons is not None:
        scored = scored.with_columns(
            score=pl.Series(scores, dtype=pl.Float64),
            selected=pl.Series(selected, dtype=pl.Boolean),
            reasons=pl.Series(reasons, dtype=pl.String),
        )
    else:
        scored = scored.with_columns(
            score=pl.lit(None, pl.Float64),
            selected=pl.lit(None, pl.Boolean),
            reasons=pl.lit(None, pl.String),
        )
    return scored.sort("score", descending=True, nulls_last=True).with_columns(
        rank=pl.int_range(1, pl.len() + 1),
        time_et=pl.col("ts").dt.convert_time_zone(TIMEZONE).dt.strftime("%H:%M"),
        model_month=pl.lit(f"{model_month:%Y-%m}" if model_month else None, pl.String),
    )


def gappers(watchlist: pl.DataFrame | None) -> pl.DataFrame:
    """The session's candidates (processed/watchlist) by gap, largest first."""
    if watchlist is None:
        return pl.DataFrame(schema=GAPPER_SCHEMA)
    return watchlist.select(GAPPER_COLUMNS).sort("gap_pct", descending=True)


def candidate_news(news: pl.DataFrame | None, gapping: pl.DataFrame) -> pl.DataFrame:
    """Articles of the session's partition about a gapper, New York time."""
    if news is None or gapping.is_empty():
        return pl.DataFrame(schema=NEWS_SCHEMA)
    return (
        news.explode("tickers")
        .filter(pl.col("tickers").is_in(gapping.get_column("ticker").implode()))
        .select(
            pl.col("tickers").alias("ticker"),
            pl.col("published_utc")
            .dt.convert_time_zone(TIMEZONE)
            .dt.strftime("%m-%d %H:%M")
            .alias("published_et"),
            "title",
        )
        .sort("ticker", "published_et")
    )


def markdown_report(
    day: dt.date,
    ranked: pl.DataFrame,
    model_month: dt.date | None,
    gappers: pl.DataFrame,
    news: pl.DataFrame,
) -> str:
    lines = [f"# Watchlist {day.isoformat()}", ""]
    lines.append(
        f"Scored by the model of {model_month:%Y-%m} (trained on data before {model_month:%Y-%m})."
        if model_month
        else "No model was trained before this session: events are listed unscored."
    )
    lines += ["", "## Gappers (candidates at 09:30)", ""]
    if gappers.is_empty():
        lines.append("No candidate gapped 10% or more.")
    else:
        rows: list[tuple[object, ...]] = [
            (
                r["ticker"],
                f"{r['gap_pct']:.1%}",
                f"{r['premarket_volume']:,.0f}",
                "n/a" if r["premarket_rvol"] is None else f"{r['premarket_rvol']:.1f}x",
                "yes" if r["is_watchlist"] else "",
            )
            for r in gappers.iter_rows(named=True)
        ]
        columns = ["ticker", "gap", "premarket volume", "premarket RVOL", "watchlist"]
        lines.append(markdown_table(columns, rows))
    lines += ["", "## Events ranked by score", ""]
    if ranked.is_empty():
        lines.append("No setup fired.")
    else:
        rows = [
            (
                r["rank"],
                r["time_et"],
                r["ticker"],
                r["pattern"],
                "n/a" if r["score"] is None else f"{r['score']:.3f}",
                r["reasons"] or "",
            )
            for r in ranked.iter_rows(named=True)
        ]
        columns = ["rank", "time (ET)", "ticker", "pattern", "score", "reasons"]
        lines.append(markdown_table(columns, rows))
    lines += ["", "## News", ""]
    if news.is_empty():
        lines.append("No article about a candidate.")
    else:
        for r in news.iter_rows(named=True):
            lines.append(f"- **{r['ticker']}** {r['published_et']}: {r['title']}")
    return "\n".join(lines) + "\n"
