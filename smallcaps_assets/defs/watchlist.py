"""The daily research watchlist: D's events scored by the newest model trained before D."""

import datetime as dt

import dagster as dg
import polars as pl

from smallcaps_assets import progress
from smallcaps_assets.core import modeling
from smallcaps_assets.core.catalog import markdown_table
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.defs.models import (
    LEGACY_MODEL_FILES,
    MODEL_FILES,
    MODEL_KEY,
    verified_models,
)
from smallcaps_assets.defs.partitions import trading_days
from smallcaps_assets.defs.resources import DataStoreResource

KEY = dg.AssetKey(["research", "watchlist"])
REPORT_DIR = "reports/watchlist"


def newest_model_month(store: DataStore, day: dt.date) -> dt.date | None:
    """The latest model month whose model exists and was trained before ``day`` (a model for
    month M only uses data up to the end of M-1, so it serves every session of M). A month with
    only a pre-bundle ``models.pkl`` counts, so that scoring says to re-materialize it."""
    months = [
        month
        for path in [*store.files(MODEL_FILES), *store.files(LEGACY_MODEL_FILES)]
        if (month := dt.date.fromisoformat(path.split("/")[1].removeprefix("month=") + "-01"))
        <= day
    ]
    return max(months) if months else None


def _markdown(
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
        rows = [
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


@dg.asset(
    key=KEY,
    group_name="research",
    partitions_def=trading_days,
    deps=[dg.AssetKey(["features", "events"]), MODEL_KEY],
    description="D's events scored by the newest model trained before D, ranked, with the top "
    "feature contributions as reasons; CSV and a Markdown report (gappers, news, scores) under "
    "reports/watchlist/.",
    kinds={"csv", "markdown"},
)
def research_watchlist(
    context: dg.AssetExecutionContext, data: DataStoreResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    store = data.store()
    day = dt.date.fromisoformat(context.partition_key)
    events = store.read("features", "events", day)
    month = newest_model_month(store, day)
    scored = events.select("date", "ticker", "ts", "pattern")
    if month is not None and events.height:
        models = verified_models(context, store, month)
        matrix = modeling.design_matrix(events)
        scores = modeling.predict(models, matrix)
        scored = scored.with_columns(
            score=pl.Series(scores["score"].to_numpy()),
            selected=pl.Series(scores["selected"].to_numpy()),
            reasons=pl.Series(modeling.top_reasons(models, matrix)),
        )
    else:
        scored = scored.with_columns(
            score=pl.lit(None, pl.Float64),
            selected=pl.lit(None, pl.Boolean),
            reasons=pl.lit(None, pl.String),
        )
    ranked = scored.sort("score", descending=True, nulls_last=True).with_columns(
        rank=pl.int_range(1, pl.len() + 1),
        time_et=pl.col("ts").dt.convert_time_zone("America/New_York").dt.strftime("%H:%M"),
        model_month=pl.lit(f"{month:%Y-%m}" if month else None, pl.String),
    )
    gappers = pl.DataFrame(
        schema={
            "ticker": pl.String(),
            "gap_pct": pl.Float64(),
            "premarket_volume": pl.Float64(),
            "premarket_rvol": pl.Float64(),
            "is_watchlist": pl.Boolean(),
        }
    )
    if store.exists("processed", "watchlist", day):
        gappers = (
            store.read("processed", "watchlist", day)
            .select(gappers.columns)
            .sort("gap_pct", descending=True)
        )
    news = pl.DataFrame(
        schema={"ticker": pl.String(), "published_et": pl.String(), "title": pl.String()}
    )
    if store.exists("raw", "news", day) and not gappers.is_empty():
        news = (
            store.read("raw", "news", day)
            .explode("tickers")
            .filter(pl.col("tickers").is_in(gappers.get_column("ticker").implode()))
            .select(
                pl.col("tickers").alias("ticker"),
                pl.col("published_utc")
                .dt.convert_time_zone("America/New_York")
                .dt.strftime("%m-%d %H:%M")
                .alias("published_et"),
                "title",
            )
            .sort("ticker", "published_et")
        )
    csv_path = store.write_text(
        f"{REPORT_DIR}/{day.isoformat()}.csv", ranked.drop("ts").write_csv()
    )
    markdown = _markdown(day, ranked, month, gappers, news)
    md_path = store.write_text(f"{REPORT_DIR}/{day.isoformat()}.md", markdown)
    store.write("research", "watchlist", day, ranked)
    progress.partition_done(KEY.to_user_string(), context.partition_key)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": ranked.height,
            "model_month": f"{month:%Y-%m}" if month else "none",
            "gappers": gappers.height,
            "csv": dg.MetadataValue.path(csv_path),
            "report": dg.MetadataValue.path(md_path),
            "preview": dg.MetadataValue.md(markdown[:4000]),
        }
    )
