"""The ``smallcaps_assets`` code location."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from smallcaps_assets.defs.backtest import BacktestSettingsResource, backtest_assets
from smallcaps_assets.defs.catalog import build_catalog_asset, default_duckdb_path
from smallcaps_assets.defs.models import MLflowResource, ModelSettingsResource, model_assets
from smallcaps_assets.defs.processed import (
    EVENT_DATASETS,
    PROCESSED_DATASETS,
    event_assets,
    processed_assets,
)
from smallcaps_assets.defs.raw import (
    MINUTE_BARS,
    MINUTE_REQUESTS,
    RAW_DATASETS,
    raw_assets,
    raw_minute_bars_asset,
)
from smallcaps_assets.defs.resources import (
    DataStoreResource,
    MarketDataResource,
    ResearchSettingsResource,
    UniverseRulesResource,
)
from smallcaps_assets.defs.watchlist import research_watchlist

catalog_assets = [
    build_catalog_asset(
        "raw",
        [d.name for d in [*RAW_DATASETS, MINUTE_BARS]],
        extra_datasets=(MINUTE_REQUESTS,),
    ),
    build_catalog_asset("processed", [d.name for d in PROCESSED_DATASETS]),
    *(build_catalog_asset(d.layer, [d.name]) for d in EVENT_DATASETS),
]

defs = dg.Definitions(
    assets=[
        *raw_assets,
        raw_minute_bars_asset,
        *processed_assets,
        *event_assets,
        *model_assets,
        *backtest_assets,
        research_watchlist,
        *catalog_assets,
    ],
    resources={
        "market": MarketDataResource(),
        "data": DataStoreResource(),
        "universe_rules": UniverseRulesResource(),
        "research": ResearchSettingsResource(),
        "mlflow_tracking": MLflowResource(),
        "model_settings": ModelSettingsResource(),
        "backtest_settings": BacktestSettingsResource(),
        "duckdb": DuckDBResource(database=default_duckdb_path()),
    },
)
