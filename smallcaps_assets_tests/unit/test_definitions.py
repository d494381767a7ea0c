"""The code location's shape: what a user sees in the UI and what the scheduler relies on."""

import dagster as dg
import yaml

from smallcaps_assets.definitions import defs
from smallcaps_assets.defs.partitions import trading_days
from smallcaps_assets.settings import project_root

RAW = {
    "raw/tickers",
    "raw/daily_bars",
    "raw/ticker_details",
    "raw/splits",
    "raw/dividends",
    "raw/financials",
    "raw/news",
}


def _assets() -> dict[str, dg.AssetsDefinition]:
    repo = defs.get_repository_def()
    return {key.to_user_string(): a for key, a in repo.assets_defs_by_key.items()}


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_raw_layer_assets_and_their_policies():
    assets = _assets()
    assert set(assets) >= RAW
    for name in RAW:
        asset = assets[name]
        key = dg.AssetKey.from_user_string(name)
        assert asset.partitions_def == trading_days, name
        assert asset.group_names_by_key[key] == "raw", name
        assert asset.backfill_policy == dg.BackfillPolicy.single_run(), name
        assert asset.op.pool == "polygon_api", name
        checks = {spec.name: spec for spec in asset.check_specs}
        assert set(checks) == {"schema", "dates_in_partition"}, name
        assert all(spec.blocking for spec in checks.values()), name


def test_ticker_details_lineage_reaches_tickers_and_the_previous_sessions_bars():
    details = _assets()["raw/ticker_details"]
    deps = {k.to_user_string() for k in details.asset_deps[dg.AssetKey(["raw", "ticker_details"])]}
    assert deps == {"raw/tickers", "raw/daily_bars"}


def test_instance_config_limits_the_polygon_pool_and_disables_telemetry():
    config = yaml.safe_load((project_root() / "dagster.yaml").read_text())
    assert config["telemetry"]["enabled"] is False
    assert config["concurrency"]["pools"]["default_limit"] == 1
