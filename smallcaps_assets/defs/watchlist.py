"""The daily research watchlist: D's events scored by the newest model trained before D."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import polars as pl

from smallcaps_assets import progress
from smallcaps_assets.core import modeling, research_schemas, watchlist
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.defs import automation
from smallcaps_assets.defs.checks import CheckSet, PartitionPublisher, PublishEvent
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


def _checks() -> CheckSet:
    return CheckSet(KEY, research_schemas.WATCHLIST_MODEL)


@dg.asset(
    key=KEY,
    group_name="research",
    # Scores with whichever model is newest instead of waiting for one.
    automation_condition=automation.after_upstream_checks(
        ignore=dg.AssetSelection.assets(MODEL_KEY)
    ),
    partitions_def=trading_days,
    deps=[dg.AssetKey(["features", "events"]), MODEL_KEY],
    description="D's events scored by the newest model trained before D, ranked, with the top "
    "feature contributions as reasons; CSV and a Markdown report (gappers, news, scores) under "
    "reports/watchlist/.",
    check_specs=_checks().specs(),
    kinds={"csv", "markdown"},
)
def research_watchlist(
    context: dg.AssetExecutionContext, data: DataStoreResource
) -> Iterator[PublishEvent]:
    store, key = data.store(), context.partition_key
    day = dt.date.fromisoformat(key)
    events = store.read("features", "events", day)
    month = newest_model_month(store, day)
    ranked = _scored(context, store, events, month)
    gapping = watchlist.gappers(_optional(store, "processed", "watchlist", day))
    news = watchlist.candidate_news(_optional(store, "raw", "news", day), gapping)
    markdown = watchlist.markdown_report(day, ranked, month, gapping, news)
    publisher = PartitionPublisher(context, _checks(), store, "research", "watchlist")
    publisher.submit(
        key,
        ranked,
        publisher.checks.audit(key, ranked, {}),
        lambda: _publish(store, day, ranked, markdown),
        lambda paths: {
            "dagster/row_count": ranked.height,
            "model_month": f"{month:%Y-%m}" if month else "none",
            "gappers": gapping.height,
            **paths,
            "preview": dg.MetadataValue.md(markdown[:4000]),
        },
    )
    progress.partition_done(KEY.to_user_string(), key)
    yield from publisher.outcome({})


def _optional(store: DataStore, layer: str, dataset: str, day: dt.date) -> pl.DataFrame | None:
    return store.read(layer, dataset, day) if store.exists(layer, dataset, day) else None


def _scored(
    context: dg.AssetExecutionContext,
    store: DataStore,
    events: pl.DataFrame,
    month: dt.date | None,
) -> pl.DataFrame:
    if month is None or events.is_empty():
        return watchlist.rank_events(events, month)
    models = verified_models(context, store, month)
    matrix = modeling.design_matrix(events)
    scores = modeling.predict(models, matrix)
    return watchlist.rank_events(
        events,
        month,
        scores["score"].to_numpy(),
        scores["selected"].to_numpy(),
        modeling.top_reasons(models, matrix),
    )


def _publish(
    store: DataStore, day: dt.date, ranked: pl.DataFrame, markdown: str
) -> dict[str, dg.MetadataValue]:
    """The CSV and Markdown reports, then the partition (what marks the day done)."""
    csv_path = store.write_text(
        f"{REPORT_DIR}/{day.isoformat()}.csv", ranked.drop("ts").write_csv()
    )
    md_path = store.write_text(f"{REPORT_DIR}/{day.isoformat()}.md", markdown)
    store.write("research", "watchlist", day, ranked)
    return {"csv": dg.MetadataValue.path(csv_path), "report": dg.MetadataValue.path(md_path)}
