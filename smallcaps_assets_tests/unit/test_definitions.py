"""The code location's shape: what a user sees in the UI and what the scheduler relies on."""

import datetime as dt

import dagster as dg
import yaml

from smallcaps_assets.definitions import defs
from smallcaps_assets.defs.models import MODEL_KEY as MODEL
from smallcaps_assets.defs.models import MLflowResource
from smallcaps_assets.defs.partitions import trading_days
from smallcaps_assets.defs.resources import DataStoreResource, MarketDataResource
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
        expected = {"schema", "dates_in_partition"}
        if name in {"raw/tickers", "raw/daily_bars"}:
            expected.add("rows_on_session")  # the whole market answers for every session
        assert set(checks) == expected, name
        assert all(spec.blocking for spec in checks.values()), name


def test_ticker_details_lineage_reaches_tickers_and_the_previous_sessions_bars():
    details = _assets()["raw/ticker_details"]
    deps = {k.to_user_string() for k in details.asset_deps[dg.AssetKey(["raw", "ticker_details"])]}
    assert deps == {"raw/tickers", "raw/daily_bars"}


def test_instance_config_limits_the_polygon_pool_and_disables_telemetry():
    config = yaml.safe_load((project_root() / "dagster.yaml").read_text())
    assert config["telemetry"]["enabled"] is False
    assert config["concurrency"]["pools"]["default_limit"] == 1


PROCESSED = {
    "processed/daily_bars",
    "processed/corporate_actions",
    "processed/fundamentals",
    "processed/news_daily",
    "processed/universe",
    "processed/minute_bars",
    "processed/watchlist",
}


def _deps(name: str) -> set[str]:
    asset = _assets()[name]
    return {k.to_user_string() for k in asset.asset_deps[dg.AssetKey.from_user_string(name)]}


def test_processed_layer_assets_carry_schema_point_in_time_and_meaning_checks():
    assets = _assets()
    assert set(assets) >= PROCESSED
    for name in PROCESSED:
        asset = assets[name]
        key = dg.AssetKey.from_user_string(name)
        assert asset.partitions_def == trading_days, name
        assert asset.group_names_by_key[key] == "processed", name
        assert asset.backfill_policy == dg.BackfillPolicy.single_run(), name
        checks = {spec.name: spec for spec in asset.check_specs}
        assert {"schema", "point_in_time"} <= set(checks), name
        assert all(spec.blocking for spec in checks.values()), name
    universe_checks = {spec.name for spec in assets["processed/universe"].check_specs}
    assert {"size_within_bounds", "priced_inside_band"} <= universe_checks
    minute_checks = {spec.name for spec in assets["processed/minute_bars"].check_specs}
    assert {"candidates_covered", "bars_unique_and_in_session"} <= minute_checks


def test_lineage_runs_raw_to_universe_to_candidate_minutes_to_watchlist():
    assert _deps("processed/universe") == {
        "raw/tickers",
        "raw/ticker_details",
        "raw/daily_bars",
        "raw/splits",
    }
    assert _deps("raw/minute_bars") == {"processed/universe"}
    assert _assets()["raw/minute_bars"].op.pool == "polygon_api"
    assert "raw/minute_bars" in _deps("processed/minute_bars")
    assert _deps("processed/watchlist") == {
        "processed/universe",
        "processed/minute_bars",
        "raw/minute_bars",
    }
    assert _deps("catalog/processed") == PROCESSED
    assert "raw/minute_bars" in _deps("catalog/raw")


def test_group_raw_needs_nothing_outside_itself():
    # `--select group:raw` must be runnable on an empty data root.
    assets = _assets()
    raw_group = {
        name
        for name, asset in assets.items()
        if asset.group_names_by_key[dg.AssetKey.from_user_string(name)] == "raw"
    }
    assert raw_group == RAW
    for name in raw_group:
        assert _deps(name) <= RAW, name
    assert assets["raw/minute_bars"].group_names_by_key[dg.AssetKey(["raw", "minute_bars"])] == (
        "processed"
    )


def test_event_assets_follow_the_processed_layer_with_their_checks():
    assets = _assets()
    features_asset = assets["features/events"]
    key = dg.AssetKey(["features", "events"])
    assert features_asset.group_names_by_key[key] == "features"
    assert {"processed/minute_bars", "processed/universe", "raw/news"} <= _deps("features/events")
    assert _deps("labels/events") == {"features/events", "processed/minute_bars"}
    label_checks = {spec.name for spec in assets["labels/events"].check_specs}
    assert label_checks == {"schema", "point_in_time", "labels_cover_events"}
    assert all(spec.blocking for spec in assets["labels/events"].check_specs)


def test_walk_forward_assets_are_monthly_and_read_seven_months_of_events():
    from smallcaps_assets.defs.partitions import months

    assets = _assets()
    model = assets["ml/model"]
    assert model.partitions_def == months
    assert _deps("ml/model") == {"features/events", "labels/events"}
    assert _deps("ml/predictions") == {"ml/model", "features/events"}
    mapped = model.get_partition_mapping(dg.AssetKey(["features", "events"]))
    assert mapped.start_offset == -7
    assert mapped.end_offset == 0
    checks = {spec.name for spec in assets["ml/predictions"].check_specs}
    assert checks == {"schema", "covers_month_once"}
    assert {spec.name for spec in model.check_specs} == {"schema", "enough_events"}


def test_backtest_assets_trade_monthly_and_report_over_every_month():
    from smallcaps_assets.defs.partitions import months

    assets = _assets()
    trades = assets["backtest/trades"]
    assert trades.partitions_def == months
    assert _deps("backtest/trades") == {"ml/predictions"}
    assert {spec.name for spec in trades.check_specs} == {
        "schema",
        "no_trade_before_signal",
        "fills_inside_bars",
        "cash_balances",
    }
    assert assets["backtest/report"].partitions_def is None
    assert {spec.name for spec in assets["backtest/report"].check_specs} == {
        "schema",
        "patterns_table",
    }
    assert _deps("backtest/report") == {"backtest/trades"}


def test_watchlist_is_daily_after_the_events_and_the_models():
    assets = _assets()
    assert assets["research/watchlist"].partitions_def == trading_days
    assert _deps("research/watchlist") == {"features/events", "ml/model"}
    assert {s.name for s in assets["research/watchlist"].check_specs} == {"schema"}


def test_every_asset_has_a_blocking_schema_check():
    for name, asset in _assets().items():
        specs = {spec.name: spec for spec in asset.check_specs}
        assert "schema" in specs, name
        assert specs["schema"].blocking, name


def test_the_models_upstream_window_follows_train_months():
    from smallcaps_assets.core.walkforward import WalkForwardSpec, windows_for
    from smallcaps_assets.defs.models import build_model_asset

    for train_months in (3, 6, 9):
        spec = WalkForwardSpec(train_months=train_months)
        asset = build_model_asset(spec)
        for upstream in (["features", "events"], ["labels", "events"]):
            mapping = asset.get_partition_mapping(dg.AssetKey(upstream))
            assert mapping.start_offset == -(train_months + 1)
            assert mapping.end_offset == 0
        assert f"the {train_months} months before M-1" in (asset.descriptions_by_key[MODEL] or "")
        # The mapped months cover exactly the sessions the windows read.
        windows = windows_for(dt.date(2024, 8, 1), spec)
        upstream_months = asset.partitions_def.get_partition_keys_in_range(
            dg.PartitionKeyRange(
                windows.train.first_session.replace(day=1).isoformat(), "2024-08-01"
            )
        )
        assert len(upstream_months) == train_months + 2


def test_a_run_with_other_model_settings_than_the_graph_is_refused(tmp_path):
    from smallcaps_assets.defs.models import ModelSettingsResource, model_assets

    result = dg.materialize(
        model_assets[:1],
        resources={
            "data": DataStoreResource(root=str(tmp_path)),
            "market": MarketDataResource(),
            "mlflow_tracking": MLflowResource(root=str(tmp_path / "mlruns")),
            "model_settings": ModelSettingsResource(train_months=9),
        },
        partition_key="2024-08-01",
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "lineage was built for" in str(failure.step_failure_data.error)


def test_the_features_daily_dependency_covers_the_calendar_lookback():
    from smallcaps_assets.core import calendar
    from smallcaps_assets.defs.processed import DAILY_LOOKBACK_DAYS

    mapping = _assets()["features/events"].get_partition_mapping(
        dg.AssetKey(["processed", "daily_bars"])
    )
    # Every session a 45-day lookback can read is inside the declared dependency.
    worst = max(
        len(calendar.sessions(day - dt.timedelta(days=DAILY_LOOKBACK_DAYS), day)) - 1
        for day in calendar.sessions(dt.date(2020, 1, 1), dt.date(2025, 12, 31))
    )
    assert -mapping.start_offset >= worst
