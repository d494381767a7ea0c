"""The ``smallcaps_assets`` code location."""

import dagster as dg

import smallcaps_assets.warnings_filter  # noqa: F401  (first: before the assets are declared)
from smallcaps_assets.defs import automation, recovery
from smallcaps_assets.defs.backtest import (
    REPORT_KEY,
    TRADES_KEY,
    BacktestSettingsResource,
    backtest_assets,
)
from smallcaps_assets.defs.catalog import build_catalog_asset
from smallcaps_assets.defs.models import (
    MODEL_KEY,
    PREDICTIONS_KEY,
    MLflowResource,
    ModelSettingsResource,
    model_assets,
)
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
from smallcaps_assets.defs.realism import market_realism
from smallcaps_assets.defs.resources import (
    CatalogDuckDBResource,
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


def _automated(asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """Raw datasets run on the ``after_close`` schedule; everything downstream by condition."""
    key = asset.key
    if key in {d.key for d in RAW_DATASETS}:
        return asset
    if key == MODEL_KEY:
        condition = automation.when_month_begins()
    elif key in (PREDICTIONS_KEY, TRADES_KEY):
        condition = automation.when_month_ends()
    elif key == REPORT_KEY or key.path[0] == "catalog":
        condition = automation.after_any_update()
    elif key == research_watchlist.key:
        condition = automation.after_upstream_checks(ignore=dg.AssetSelection.assets(MODEL_KEY))
    else:
        condition = automation.after_upstream_checks()
    return asset.with_attributes(automation_condition=condition)


# One data root for the assets and the market's source bookkeeping: configured at launch, so a
# root set in the launchpad reaches the market's nested ``data`` too. Nothing here reads the
# environment; every resource derives its paths when a run uses it.
_data = DataStoreResource.configure_at_launch()

defs = dg.Definitions(
    assets=[
        _automated(asset)
        for asset in [
            *raw_assets,
            raw_minute_bars_asset,
            *processed_assets,
            *event_assets,
            *model_assets,
            *backtest_assets,
            research_watchlist,
            market_realism,
            *catalog_assets,
        ]
    ],
    jobs=[automation.daily_ingest_job],
    schedules=[automation.after_close],
    sensors=[automation.automation_sensor, recovery.stale_run_sweeper],
    resources={
        # PartialResource is invariant in its type: Partial[DataStoreResource] for a field typed
        # DataStoreResource | None (None: no nested store, as in the tests' own resources).
        "market": MarketDataResource(data=_data),  # type: ignore[arg-type]
        "data": _data,
        "universe_rules": UniverseRulesResource(),
        "research": ResearchSettingsResource(),
        "mlflow_tracking": MLflowResource(),
        "model_settings": ModelSettingsResource(),
        "backtest_settings": BacktestSettingsResource(),
        "duckdb": CatalogDuckDBResource(),
    },
)
