"""Resources for materializing the daily graph (raw → processed → events, catalogs) on a test's
own data root."""

from __future__ import annotations

from pathlib import Path

from dagster_duckdb import DuckDBResource

from smallcaps_assets.defs.resources import (
    DataStoreResource,
    MarketDataResource,
    ResearchSettingsResource,
    UniverseRulesResource,
)


def daily_graph_resources(root: Path, **rules: float) -> dict[str, object]:
    """The simulated market, a data root and DuckDB catalog under ``root``; ``rules`` override
    the universe screen."""
    return {
        "market": MarketDataResource(),
        "data": DataStoreResource(root=str(root)),
        "universe_rules": UniverseRulesResource(**rules),
        "research": ResearchSettingsResource(),
        "duckdb": DuckDBResource(database=str(root / "catalog.duckdb")),
    }
