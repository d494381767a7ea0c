"""Walk-forward model and predictions assets on fabricated event partitions, tracked in a
temporary MLflow store: lineage tags, registry alias, month coverage, failures."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from smallcaps_assets.core import calendar
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.defs.models import (
    NEWEST_ALIAS,
    REGISTERED_MODEL,
    MLflowResource,
    ModelSettingsResource,
    model_assets,
)
from smallcaps_assets.defs.resources import DataStoreResource, MarketDataResource
from smallcaps_assets_tests.model_fixtures import write_events, write_flat_minute_bars


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "30")
    root = tmp_path / "data"
    write_events(root, dt.date(2024, 1, 2), dt.date(2024, 8, 30), signal=1.5)
    return tmp_path


def _resources(tmp_path: Path, **settings: int) -> dict[str, object]:
    return {
        "data": DataStoreResource(root=str(tmp_path / "data")),
        "market": MarketDataResource(),
        "mlflow_tracking": MLflowResource(root=str(tmp_path / "mlruns")),
        "model_settings": ModelSettingsResource(**settings),
    }


def _run(tmp_path: Path, month: str, **settings: int) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        model_assets,
        resources=_resources(tmp_path, **settings),
        partition_key=month,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_model_month_trains_on_its_window_logs_to_mlflow_and_scores_the_month(env):
    result = _run(env, "2024-08-01")
    assert result.success
    md = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    model_md = md["ml/model"]
    # Jan-Jun trains (Jun 28 embargoed), July validates (Jul 31 purged against August), August tests.
    sessions = {
        "train": len(calendar.sessions(dt.date(2024, 1, 2), dt.date(2024, 6, 27))),
        "validation": len(calendar.sessions(dt.date(2024, 7, 1), dt.date(2024, 7, 30))),
        "test": len(calendar.sessions(dt.date(2024, 8, 1), dt.date(2024, 8, 30))),
    }
    assert model_md["train_events"].value == 12 * sessions["train"]
    assert model_md["validation_events"].value == 12 * sessions["validation"]
    assert model_md["test_events"].value == 12 * sessions["test"]
    assert model_md["test_auc"].value > 0.7  # the planted signal is found out of sample
    assert md["ml/predictions"]["dagster/row_count"].value == 12 * sessions["test"]
    assert all(c.passed for c in result.get_asset_check_evaluations())

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{env / 'mlruns' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["smallcaps-walk-forward"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["partition"] == "2024-08-01"
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert run.data.tags["upstream_range"] == "2024-01-02...2024-08-30"
    assert run.data.tags["data_source"].startswith("simulated(")
    assert "git_commit" in run.data.tags
    assert run.data.metrics["test_auc"] == pytest.approx(model_md["test_auc"].value)
    assert float(run.data.params["blend_lgbm"]) <= 0.8
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"feature_importance.png", "calibration.png", "feature_importance.csv"} <= artifacts
    version = mlflow.MlflowClient().get_model_version_by_alias(REGISTERED_MODEL, NEWEST_ALIAS)
    assert version.tags["month"] == "2024-08"

    # An older month trained afterwards does not take the alias.
    assert _run(env, "2024-07-01").success
    version = mlflow.MlflowClient().get_model_version_by_alias(REGISTERED_MODEL, NEWEST_ALIAS)
    assert version.tags["month"] == "2024-08"


def test_a_window_with_too_few_events_fails_loudly_naming_the_sizes(env):
    result = _run(env, "2024-08-01", min_train_events=100_000)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "training window has" in message
    assert "need 100000" in message
    assert "window sizes" in message
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"schema": True, "enough_events": False}
    # Nothing was fitted or saved, and the rejected card is kept for inspection.
    store = DataStore(str(env / "data"))
    assert not store.files("models/month=2024-08/*")
    assert store.quarantined("ml", "model", "2024-08-01")


def test_a_month_without_upstream_events_fails_with_what_to_materialize(env):
    result = _run(env, "2023-03-01")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "materialize the event assets" in str(failure.step_failure_data.error)


def test_watchlist_ranks_the_days_events_with_the_newest_model_before_it(env):
    from smallcaps_assets.defs.watchlist import research_watchlist

    assert _run(env, "2024-08-01").success

    def watchlist(day: str) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [research_watchlist],
            resources={"data": DataStoreResource(root=str(env / "data"))},
            partition_key=day,
            instance=dg.DagsterInstance.ephemeral(),
        )

    scored = watchlist("2024-08-15")
    md = scored.asset_materializations_for_node("research__watchlist")[0].metadata
    assert md["model_month"].value == "2024-08"
    csv = pl.read_csv(env / "data/reports/watchlist/2024-08-15.csv")
    assert csv.height == 12
    assert csv.get_column("score").to_list() == sorted(
        csv.get_column("score").to_list(), reverse=True
    )
    assert csv.get_column("rank").to_list() == list(range(1, 13))
    assert csv.get_column("reasons").null_count() == 0
    report = (env / "data/reports/watchlist/2024-08-15.md").read_text()
    assert report.startswith("# Watchlist 2024-08-15")
    assert "Scored by the model of 2024-08" in report
    # Before any model month, the events are listed unscored and the report says so.
    watchlist("2024-07-15")
    early = (env / "data/reports/watchlist/2024-07-15.md").read_text()
    assert "No model was trained before this session" in early


def test_backtest_trades_the_selected_predictions_and_reports_every_month(env):
    from smallcaps_assets.defs.backtest import BacktestSettingsResource, backtest_assets

    assert _run(env, "2024-08-01").success
    write_flat_minute_bars(env / "data", dt.date(2024, 8, 1), dt.date(2024, 8, 30))
    resources = {
        **_resources(env),
        "backtest_settings": BacktestSettingsResource(max_open_positions=2),
    }
    instance = dg.DagsterInstance.ephemeral()
    trades_run = dg.materialize(
        backtest_assets[:1], resources=resources, partition_key="2024-08-01", instance=instance
    )
    checks = {e.check_name: e.passed for e in trades_run.get_asset_check_evaluations()}
    assert checks == {
        "schema": True,
        "no_trade_before_signal": True,
        "fills_inside_bars": True,
        "cash_balances": True,
    }
    trades = DataStore(str(env / "data")).read("backtest", "trades", "2024-08-01")
    selected = (
        DataStore(str(env / "data"))
        .read("ml", "predictions", "2024-08-01")
        .filter(pl.col("selected"))
    )
    assert 0 < trades.height <= selected.height
    # Flat paths (entry = exit = 10.0): gross 0, net negative by exactly the booked costs.
    assert trades.get_column("gross_pnl").abs().max() == 0.0
    costs = (
        trades.get_column("ecn_fees") + trades.get_column("sec_fee") + trades.get_column("slippage")
    )
    assert (trades.get_column("net_pnl") + costs).abs().max() < 1e-9

    report_run = dg.materialize(backtest_assets[1:], resources=resources, instance=instance)
    assert report_run.success
    import json

    summary = json.loads((env / "data/reports/backtest_summary.json").read_text())
    required = {
        "n_trades",
        "expectancy_gross",
        "expectancy_net",
        "profit_factor",
        "sharpe",
        "max_drawdown",
        "cagr",
        "hit_rate",
        "auc_oos",
        "fees",
        "slippage",
        "start",
        "end",
        "source",
    }
    assert required <= set(summary)
    assert summary["n_trades"] == trades.height
    assert summary["expectancy_gross"] == 0.0
    assert summary["expectancy_net"] < 0
    assert summary["source"].startswith("simulated(")


def test_models_reports_and_watchlist_live_under_an_object_store_root(tmp_path, monkeypatch):
    """A data root given as an fsspec URL (here fsspec's in-memory filesystem, standing in for
    s3://) holds the fitted models, predictions, trades, reports and watchlist; nothing lands in
    the working directory, which a cluster's run pod loses when it ends."""
    from smallcaps_assets.defs.backtest import BacktestSettingsResource, backtest_assets
    from smallcaps_assets.defs.watchlist import research_watchlist

    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "30")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    root = f"memory://object-store-{tmp_path.name}/data"
    write_events(root, dt.date(2024, 1, 2), dt.date(2024, 8, 30), signal=1.5)
    write_flat_minute_bars(root, dt.date(2024, 8, 1), dt.date(2024, 8, 30))
    resources = {
        "data": DataStoreResource(root=root),
        "market": MarketDataResource(),
        "mlflow_tracking": MLflowResource(root=str(tmp_path / "mlruns")),
        "model_settings": ModelSettingsResource(),
        "backtest_settings": BacktestSettingsResource(max_open_positions=2),
    }
    instance = dg.DagsterInstance.ephemeral()
    month = dg.materialize(
        [*model_assets, backtest_assets[0]],
        resources=resources,
        partition_key="2024-08-01",
        instance=instance,
    )
    model_md = month.asset_materializations_for_node("ml__model")[0].metadata
    model_url = str(model_md["model_path"].value)
    # fsspec spells the in-memory root memory:///…
    assert model_url.startswith("memory://"), model_url
    assert model_url.endswith(f"{tmp_path.name}/data/models/month=2024-08/manifest.json"), model_url
    assert dg.materialize(backtest_assets[1:], resources=resources, instance=instance).success
    watchlist = dg.materialize(
        [research_watchlist],
        resources={"data": DataStoreResource(root=root)},
        partition_key="2024-08-15",
        instance=instance,
    )
    assert (
        watchlist.asset_materializations_for_node("research__watchlist")[0]
        .metadata["model_month"]
        .value
        == "2024-08"
    )

    store = DataStore(root)
    assert store.files("models/month=*/manifest.json") == ["models/month=2024-08/manifest.json"]
    assert store.partitions("ml", "predictions") == ["2024-08-01"]
    assert store.partitions("backtest", "trades") == ["2024-08-01"]
    assert store.read_text("reports/backtest_summary.json") is not None
    assert store.read_text("reports/watchlist/2024-08-15.csv") is not None
    assert list(workdir.iterdir()) == []

    # The materialization recorded the manifest's digest and each artifact's; a manifest edited
    # afterwards (consistent with its artifacts, so only that record can tell) is refused by
    # every asset that scores with it.
    manifest = store.read_bytes("models/month=2024-08/manifest.json")
    assert manifest is not None
    recorded = str(model_md["model_manifest_sha256"].value)
    assert recorded == hashlib.sha256(manifest).hexdigest()
    artifacts = model_md["model_artifacts"].value
    assert set(artifacts) == {"lgbm", "catboost"}
    for artifact in artifacts.values():
        payload = store.read_bytes(f"models/month=2024-08/{artifact['file']}")
        assert payload is not None
        assert hashlib.sha256(payload).hexdigest() == artifact["sha256"]
    spec = json.loads(manifest)
    spec["threshold"] = 0.0
    store.write_bytes("models/month=2024-08/manifest.json", json.dumps(spec).encode())
    for assets, key in (([model_assets[1]], "2024-08-01"), ([research_watchlist], "2024-08-15")):
        refused = dg.materialize(
            assets,
            resources=resources,
            partition_key=key,
            instance=instance,
            raise_on_error=False,
        )
        assert not refused.success
        error = str(
            next(e for e in refused.all_events if e.is_step_failure).step_failure_data.error
        )
        assert "manifest.json" in error, error
        assert recorded in error, error


def test_mlflow_tracks_to_the_configured_server_or_the_environments_else_locally(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SMALLCAPS_MLRUNS_DIR", str(tmp_path / "default_mlruns"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.cluster.internal:5000")
    assert MLflowResource().tracking_uri() == "http://mlflow.cluster.internal:5000"
    # A configured local store is never redirected by the shell.
    local = MLflowResource(root=str(tmp_path / "mine"))
    assert local.server_uri() is None
    assert local.tracking_uri() == f"sqlite:///{(tmp_path / 'mine' / 'mlflow.db').resolve()}"
    assert (
        MLflowResource(
            root=str(tmp_path / "mine"), tracking_server="http://other:5000"
        ).tracking_uri()
        == "http://other:5000"
    )
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert MLflowResource().tracking_uri() == (
        f"sqlite:///{(tmp_path / 'default_mlruns' / 'mlflow.db').resolve()}"
    )


def test_a_model_month_logs_to_the_tracking_server_the_environment_names(env, monkeypatch):
    """MLFLOW_TRACKING_URI routes the walk-forward run away from the local store (a second
    SQLite store stands in for a cluster's tracking server)."""
    import mlflow

    server_store = env / "tracking_server"
    server_store.mkdir()
    server_uri = f"sqlite:///{server_store / 'mlflow.db'}"
    monkeypatch.setenv("SMALLCAPS_MLRUNS_DIR", str(env / "local_mlruns"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server_uri)
    # Without an artifact location of ours, MLflow puts a SQLite store's artifacts in ./mlruns.
    monkeypatch.chdir(server_store)
    resources = {**_resources(env), "mlflow_tracking": MLflowResource()}
    result = dg.materialize(
        model_assets[:1],
        resources=resources,
        partition_key="2024-08-01",
        instance=dg.DagsterInstance.ephemeral(),
    )
    run_id = result.asset_materializations_for_node("ml__model")[0].metadata["mlflow_run_id"]
    mlflow.set_tracking_uri(server_uri)
    runs = mlflow.search_runs(experiment_names=["smallcaps-walk-forward"], output_format="list")
    assert [run.info.run_id for run in runs] == [run_id.value]
    assert not (env / "local_mlruns").exists()


def test_the_registered_model_scores_a_watchlist_day_through_pyfunc_as_the_project_does(env):
    import mlflow

    from smallcaps_assets.core import model_store, modeling
    from smallcaps_assets.core.features import CATEGORICAL_FEATURES

    assert _run(env, "2024-08-01").success
    mlflow.set_tracking_uri(f"sqlite:///{env / 'mlruns' / 'mlflow.db'}")
    registered = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}@{NEWEST_ALIAS}")

    store = DataStore(str(env / "data"))
    matrix = modeling.design_matrix(store.read("features", "events", dt.date(2024, 8, 15)))
    ours = modeling.predict(model_store.load_models(store, dt.date(2024, 8, 1)), matrix)
    theirs = registered.predict(matrix.loc[:, list(modeling.FEATURE_COLUMNS)])
    assert len(theirs) == len(ours) == 12
    for column in ("score", "score_lgbm", "score_catboost"):
        assert theirs[column].to_numpy() == pytest.approx(ours[column].to_numpy(), abs=1e-9)
    assert theirs["selected"].tolist() == ours["selected"].tolist()
    # Categoricals as plain strings (what a caller without the project's design matrix has).
    as_strings = matrix.loc[:, list(modeling.FEATURE_COLUMNS)].astype(
        dict.fromkeys(CATEGORICAL_FEATURES, str)
    )
    assert registered.predict(as_strings)["score"].to_numpy() == pytest.approx(
        ours["score"].to_numpy(), abs=1e-9
    )

    # The registered input example scores too, and the model is the pyfunc over the bundle.
    example = registered.input_example
    assert example is not None
    scored = registered.predict(example)
    assert list(scored.columns) == ["score", "score_lgbm", "score_catboost", "selected"]
    assert len(scored) == len(example)
    assert scored["score"].between(0, 1).all()
    assert registered.metadata.get_model_info().flavors.keys() == {"python_function"}
