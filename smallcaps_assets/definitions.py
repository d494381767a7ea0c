"""The ``smallcaps_assets`` code location."""

import dagster as dg

import smallcaps_assets.warnings_filter  # noqa: F401  (first: before the assets are declared)
from smallcaps_assets.defs import automation, recovery
from smallcaps_assets.defs.backtest import BacktestSettingsResource
from smallcaps_assets.defs.graph import ASSETS
from smallcaps_assets.defs.models import MLflowResource, ModelSettingsResource
from smallcaps_assets.defs.resources import (
    CatalogDuckDBResource,
    DataStoreResource,
    MarketDataResource,
    ResearchSettingsResource,
    UniverseRulesResource,
)

# One data root for the assets and the market's source bookkeeping: configured at launch, so a
# root set in the launchpad reaches the market's nested ``data`` too. Nothing here reads the
# environment; every resource derives its paths when a run uses it.
_data = DataStoreResource.configure_at_launch()

defs = dg.Definitions(
    assets=ASSETS,
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
