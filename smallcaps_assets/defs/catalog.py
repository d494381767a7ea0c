"""DuckDB views over each layer's parquet files, refreshed after the layer materializes."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from smallcaps_assets import progress, settings
from smallcaps_assets.core.catalog import (
    CATALOG_MODEL,
    PROCESSED_MONTHLY_SQL,
    PROCESSED_MONTHLY_VIEWS,
    ViewSpec,
    markdown_table,
    view_statements,
)
from smallcaps_assets.core.storage import dataset_glob
from smallcaps_assets.defs import automation
from smallcaps_assets.defs.checks import CheckSet, PartitionPublisher, PublishEvent
from smallcaps_assets.defs.resources import DataStoreResource

DUCKDB_POOL = "duckdb_writer"
CATALOG_FILE = settings.CATALOG_FILE


def default_duckdb_path() -> str:
    return settings.catalog_path()  # the rule lives in settings: `smallcaps sql` needs no Dagster


def _checks(layer: str) -> CheckSet:
    return CheckSet(dg.AssetKey(["catalog", layer]), CATALOG_MODEL)


def build_catalog_asset(
    layer: str, assets: list[str], *, extra_datasets: tuple[str, ...] = ()
) -> dg.AssetsDefinition:
    """``assets`` are the layer's asset names (upstream of the catalog); ``extra_datasets`` are
    files an asset writes beside its own (a request log) that get a view too."""
    datasets = [*assets, *extra_datasets]

    @dg.asset(
        key=dg.AssetKey(["catalog", layer]),
        group_name="catalog",
        automation_condition=automation.after_any_update(),
        description=f"DuckDB views `{layer}.<dataset>` over every partition file of the {layer} "
        "layer, replaced in one transaction that commits only when the views pass their check.",
        deps=[dg.AssetKey([layer, d]) for d in assets],
        check_specs=_checks(layer).specs(),
        pool=DUCKDB_POOL,
        kinds={"duckdb"},
    )
    def _catalog(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, data: DataStoreResource
    ) -> Iterator[PublishEvent]:
        store = data.store()
        present = [d for d in datasets if store.partitions(layer, d)]
        views = [ViewSpec(layer, d, dataset_glob(store, layer, d)) for d in present]
        key = dt.datetime.now(dt.UTC).date().isoformat()  # the refresh's day, for quarantine
        publisher = PartitionPublisher(context, _checks(layer), store, "catalog", layer)
        with duckdb.get_connection() as con:
            con.execute("BEGIN TRANSACTION")
            table, extra = _refresh(con, views)
            published = publisher.submit(
                key,
                table,
                publisher.checks.audit(key, table, {}),
                lambda: con.execute("COMMIT"),
                lambda _: _metadata(duckdb.database, table, extra),
            )
            if published is None:
                con.execute("ROLLBACK")
        _log_missing(context, sorted(set(datasets) - set(present)))
        progress.partition_done(f"catalog/{layer}", "")
        yield from publisher.outcome({})

    return _catalog


def _refresh(con: Any, views: list[ViewSpec]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Create or replace the views and count their rows (inside the caller's transaction)."""
    for statement in view_statements(views):
        con.execute(statement)
    counts: dict[str, int] = {}
    for view in views:
        row = con.execute(f"SELECT count(*) FROM {view.name}").fetchone()
        counts[view.name] = int(row[0]) if row else 0
    extra: dict[str, Any] = {}
    if all(name in counts for name in PROCESSED_MONTHLY_VIEWS):
        cursor = con.execute(PROCESSED_MONTHLY_SQL)
        columns = [d[0] for d in cursor.description]
        extra["monthly_summary"] = dg.MetadataValue.md(markdown_table(columns, cursor.fetchall()))
    table = pl.DataFrame(
        {"view": list(counts), "rows": list(counts.values())},
        schema={"view": pl.String(), "rows": pl.Int64()},
    )
    return table, extra


def _metadata(database: str, table: pl.DataFrame, extra: dict[str, Any]) -> dict[str, Any]:
    counts = dict(table.iter_rows())
    return {
        "database": dg.MetadataValue.path(database),
        "views": dg.MetadataValue.json(counts),
        "rows_total": sum(counts.values()),
        **extra,
    }


def _log_missing(context: dg.AssetExecutionContext, missing: list[str]) -> None:
    if missing:
        context.log.info(f"no files yet for {missing}; their views are created once they have data")
