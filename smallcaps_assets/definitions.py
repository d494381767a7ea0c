"""The ``smallcaps_assets`` code location."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from smallcaps_assets.defs.catalog import build_catalog_asset, default_duckdb_path
from smallcaps_assets.defs.raw import RAW_DATASETS, raw_assets
from smallcaps_assets.defs.resources import DataStoreResource, MarketDataResource

catalog_assets = [build_catalog_asset("raw", [d.name for d in RAW_DATASETS])]

defs = dg.Definitions(
    assets=[*raw_assets, *catalog_assets],
    resources={
        "market": MarketDataResource(),
        "data": DataStoreResource(),
        "duckdb": DuckDBResource(database=default_duckdb_path()),
    },
)
