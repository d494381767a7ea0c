"""DuckDB views over each layer's parquet files, refreshed after the layer materializes."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from smallcaps_assets import progress, settings
from smallcaps_assets.core.catalog import (
    PROCESSED_MONTHLY_SQL,
    PROCESSED_MONTHLY_VIEWS,
    ViewSpec,
    markdown_table,
    view_statements,
)
from smallcaps_assets.core.storage import dataset_glob
from smallcaps_assets.defs.resources import DataStoreResource

DUCKDB_POOL = "duckdb_writer"
CATALOG_FILE = "smallcaps.duckdb"


def default_duckdb_path() -> str:
    root = settings.data_root()
    # DuckDB needs a local file; a data root on object storage keeps its catalog in the project.
    base = root if "://" not in root else str(settings.project_root() / "data")
    return f"{base}/{CATALOG_FILE}"


def build_catalog_asset(
    layer: str, assets: list[str], *, extra_datasets: tuple[str, ...] = ()
) -> dg.AssetsDefinition:
    """``assets`` are the layer's asset names (upstream of the catalog); ``extra_datasets`` are
    files an asset writes beside its own (a request log) that get a view too."""
    datasets = [*assets, *extra_datasets]

    @dg.asset(
        key=dg.AssetKey(["catalog", layer]),
        group_name="catalog",
        description=f"DuckDB views `{layer}.<dataset>` over every partition file of the {layer} layer.",
        deps=[dg.AssetKey([layer, d]) for d in assets],
        pool=DUCKDB_POOL,
        kinds={"duckdb"},
    )
    def _catalog(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, data: DataStoreResource
    ) -> dg.MaterializeResult:
        store = data.store()
        present = [d for d in datasets if store.partitions(layer, d)]
        views = [ViewSpec(layer, d, dataset_glob(store, layer, d)) for d in present]
        counts: dict[str, int] = {}
        extra: dict[str, dg.RawMetadataValue] = {}
        with duckdb.get_connection() as con:
            for statement in view_statements(views):
                con.execute(statement)
            for view in views:
                row = con.execute(f"SELECT count(*) FROM {view.name}").fetchone()
                counts[view.name] = int(row[0]) if row else 0
            if all(name in counts for name in PROCESSED_MONTHLY_VIEWS):
                cursor = con.execute(PROCESSED_MONTHLY_SQL)
                columns = [d[0] for d in cursor.description]
                extra["monthly_summary"] = dg.MetadataValue.md(
                    markdown_table(columns, cursor.fetchall())
                )
        progress.partition_done(f"catalog/{layer}", "")
        missing = sorted(set(datasets) - set(present))
        if missing:
            context.log.info(
                f"no files yet for {missing}; their views are created once they have data"
            )
        return dg.MaterializeResult(
            metadata={
                "database": dg.MetadataValue.path(duckdb.database),
                "views": dg.MetadataValue.json(counts),
                "rows_total": sum(counts.values()),
                **extra,
            }
        )

    return _catalog
