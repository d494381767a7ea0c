"""Walk-forward models (monthly): train, validate, track in MLflow, score the month out of sample.

``ml/model`` for month M trains on the events of the ``train_months`` months before M-1 (purged,
embargoed), validates on M-1 (early stopping, blend weights, decision threshold) and reports its
out-of-sample metrics on M. ``ml/predictions`` scores every event of M with that model. Upstream
daily partitions are read through a monthly->daily partition mapping and then filtered to the
exact sessions of each window (the mapping can include one extra day around holidays).
"""

import datetime as dt
import functools
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from smallcaps_assets import progress, settings
from smallcaps_assets.core import model_month, model_store, modeling, research_schemas, walkforward
from smallcaps_assets.core.features import CATEGORICAL_FEATURES
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.defs import automation
from smallcaps_assets.defs.checks import CheckSet, PartitionPublisher, PublishEvent
from smallcaps_assets.defs.partitions import months
from smallcaps_assets.defs.plots import png_image, render_png
from smallcaps_assets.defs.resources import DataStoreResource, MarketDataResource

LAYER = "ml"
MODEL_KEY = dg.AssetKey([LAYER, "model"])
PREDICTIONS_KEY = dg.AssetKey([LAYER, "predictions"])
REGISTERED_MODEL = "smallcaps-gap-events"
NEWEST_ALIAS = "newest"
# The registered model is a pyfunc (core/registry_model.py) whose artifacts are the month's
# bundle (LightGBM text, CatBoost cbm, manifest.json); the package is logged as its code, and
# these are what that code imports.
PIP_REQUIREMENTS = [
    "lightgbm==4.7.0",
    "catboost==1.2.10",
    "pandas",
    "numpy",
    "polars",
    "pyarrow",
    "fsspec",
    "pandera",
]
MANIFEST_DIGEST = "model_manifest_sha256"


class MLflowResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where walk-forward runs are tracked.

    By default a SQLite store with artifacts beside it in the project's ``mlruns/``
    (``SMALLCAPS_MLRUNS_DIR`` moves it). A shared tracking server (a cluster's) is named by
    ``tracking_server`` or, when neither that nor ``root`` is configured, by the standard
    ``MLFLOW_TRACKING_URI``; the server then decides where artifacts go.
    """

    root: str = ""
    tracking_server: str = ""
    experiment: str = "smallcaps-walk-forward"

    def server_uri(self) -> str | None:
        """The tracking server in use, or None for the local store. An explicit local ``root``
        wins over the environment, so a configured store is never redirected by a shell
        variable."""
        if self.tracking_server:
            return self.tracking_server
        if self.root:
            return None
        return os.environ.get("MLFLOW_TRACKING_URI") or None

    def directory(self) -> Path:
        path = Path(self.root) if self.root else settings.mlruns_root()
        path.mkdir(parents=True, exist_ok=True)
        return path.resolve()

    def tracking_uri(self) -> str:
        return self.server_uri() or f"sqlite:///{self.directory() / 'mlflow.db'}"

    def client(self) -> Any:
        import mlflow  # slow to import: only when a model is trained

        server = self.server_uri()
        mlflow.set_tracking_uri(self.tracking_uri())
        if mlflow.get_experiment_by_name(self.experiment) is None:
            if server:
                mlflow.create_experiment(self.experiment)
            else:
                mlflow.create_experiment(
                    self.experiment, artifact_location=(self.directory() / "artifacts").as_uri()
                )
        mlflow.set_experiment(self.experiment)
        return mlflow


class ModelSettingsResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    train_months: int = walkforward.WalkForwardSpec.train_months
    embargo_sessions: int = walkforward.WalkForwardSpec.embargo_sessions
    min_train_events: int = 200
    min_validation_events: int = 40
    max_blend_weight: float = 0.8
    seed: int = 7

    def spec(self) -> walkforward.WalkForwardSpec:
        return walkforward.WalkForwardSpec(self.train_months, self.embargo_sessions)

    def model_settings(self) -> modeling.ModelSettings:
        return modeling.ModelSettings(
            min_train_events=self.min_train_events,
            min_validation_events=self.min_validation_events,
            max_blend_weight=self.max_blend_weight,
            seed=self.seed,
        )


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=settings.project_root(),
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _events_between(store: DataStore, first: dt.date, last: dt.date) -> tuple[pl.DataFrame, int]:
    """Features joined with labels for the sessions in [first, last]; also how many sessions of
    that span have no feature partition."""
    wanted = [d.isoformat() for d in walkforward.Period(first, last).sessions()]
    have = set(store.partitions("features", "events")) & set(store.partitions("labels", "events"))
    present = [d for d in wanted if d in have]
    if not present:
        return pl.DataFrame(), len(wanted)
    events = model_month.label_events(
        store.read_many("features", "events", present), store.read_many("labels", "events", present)
    )
    return events, len(wanted) - len(present)


# Month M's models are a bundle under models/month=YYYY-MM/ (core/model_store.py): the
# manifest marks a complete one. LEGACY_MODEL_FILES are pickles from before bundles, found
# only so that loading them fails with what to do (they are never unpickled).
MODEL_FILES = model_store.MANIFEST_FILES
LEGACY_MODEL_FILES = model_store.LEGACY_FILES


def model_file(month: dt.date) -> str:
    """Month M's model manifest, relative to the data root (local or object store)."""
    return model_store.manifest_file(month)


def load_models(
    store: DataStore, month: dt.date, *, expected_manifest_sha256: str | None = None
) -> modeling.TrainedModels:
    """Month M's models, every artifact checked against the manifest and the manifest against
    ``expected_manifest_sha256`` when given (see ``recorded_manifest_sha256``)."""
    return model_store.load_models(store, month, expected_manifest_sha256=expected_manifest_sha256)


def recorded_manifest_sha256(instance: dg.DagsterInstance, month: dt.date) -> str | None:
    """The manifest digest the latest ``ml/model`` materialization of month M recorded, or None
    when this instance has none (the model was fitted elsewhere or before bundles)."""
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=MODEL_KEY, asset_partitions=[month.isoformat()]), limit=1
    )
    for record in result.records:
        materialization = record.asset_materialization
        value = materialization.metadata.get(MANIFEST_DIGEST) if materialization else None
        if value is not None:
            return str(value.value)
    return None


def verified_models(
    context: dg.AssetExecutionContext, store: DataStore, month: dt.date
) -> modeling.TrainedModels:
    """Month M's models for an asset that scores with them: the bundle is checked against the
    digest this instance recorded for it, or against its own manifest only (with a warning)
    when there is no record."""
    expected = recorded_manifest_sha256(context.instance, month)
    if expected is None:
        context.log.warning(
            f"no ml/model materialization of {month:%Y-%m} in this instance records a manifest "
            "digest; the model bundle is checked against its own manifest only"
        )
    return load_models(store, month, expected_manifest_sha256=expected)


def importance_png(importance: Any) -> bytes:
    def draw(ax: Any) -> None:
        top = importance.head(20).iloc[::-1]
        ax.barh(top["feature"], top["lgbm_gain"])
        ax.set_title("LightGBM gain, top 20 features")

    return render_png(draw, figsize=(6, 4), dpi=90)


def calibration_png(y: Any, p: Any) -> bytes:
    def draw(ax: Any) -> None:
        bins = np.quantile(p, np.linspace(0, 1, 11))
        idx = np.clip(np.searchsorted(bins, p, side="right") - 1, 0, 9)
        mean_p = [p[idx == b].mean() for b in range(10) if (idx == b).any()]
        mean_y = [y[idx == b].mean() for b in range(10) if (idx == b).any()]
        top = max([*mean_p, 0.01])
        ax.plot([0, top], [0, top], "--", color="grey")
        ax.plot(mean_p, mean_y, "o-")
        ax.set_xlabel("mean predicted")
        ax.set_ylabel("observed winning-trade rate")
        ax.set_title("Calibration (test month, score deciles)")

    return render_png(draw, figsize=(6, 4), dpi=90)


def _model_checks() -> CheckSet:
    return CheckSet(
        MODEL_KEY,
        research_schemas.MODEL_CARD_MODEL,
        {
            "enough_events": "Training and validation windows hold at least the configured "
            "labelled events, of both classes; otherwise nothing is fitted or saved."
        },
    )


def _events_window(key: list[str], spec: walkforward.WalkForwardSpec) -> dg.AssetDep:
    # Month M reads its training months, the validation month M-1 and M itself (its test).
    return dg.AssetDep(
        dg.AssetKey(key),
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-spec.upstream_months,
            end_offset=0,
            allow_nonexistent_upstream_partitions=True,
        ),
    )


def build_model_asset(spec: walkforward.WalkForwardSpec) -> dg.AssetsDefinition:
    """``ml/model`` for a walk-forward spec: its lineage (which months of events it reads) and
    its description follow the spec, and it refuses to run with different model settings."""

    @dg.asset(
        key=MODEL_KEY,
        group_name=LAYER,
        automation_condition=automation.when_month_begins(),
        partitions_def=months,
        description="Walk-forward LightGBM + CatBoost (+ capped blend) for month M: trained on "
        f"the {spec.train_months} months before M-1 (purged, {spec.embargo_sessions}-session "
        "embargo), validated on M-1, logged to MLflow.",
        deps=[
            _events_window(["features", "events"], spec),
            _events_window(["labels", "events"], spec),
        ],
        check_specs=_model_checks().specs(),
        kinds={"lightgbm", "catboost", "mlflow"},
    )
    def _model(
        context: dg.AssetExecutionContext,
        data: DataStoreResource,
        market: MarketDataResource,
        mlflow_tracking: MLflowResource,
        model_settings: ModelSettingsResource,
    ) -> Iterator[PublishEvent]:
        if model_settings.spec() != spec:
            raise ValueError(
                f"ml/model: model_settings ask for {model_settings.spec()}, but the graph's "
                f"lineage was built for {spec}; build the definitions with that spec "
                "(smallcaps_assets.defs.models.build_model_asset) instead of overriding it per run"
            )
        yield from ml_model(context, data, market, mlflow_tracking, model_settings)

    return _model


def ml_model(
    context: dg.AssetExecutionContext,
    data: DataStoreResource,
    market: MarketDataResource,
    mlflow_tracking: MLflowResource,
    model_settings: ModelSettingsResource,
) -> Iterator[PublishEvent]:
    store, key = data.store(), context.partition_key
    month = dt.date.fromisoformat(key)
    windows = walkforward.windows_for(month, model_settings.spec())
    events, missing = _month_events(store, month, windows)
    split = model_month.split_month(events, windows)
    settings = model_settings.model_settings()
    enough = model_month.enough_events(split, settings, partition=key)
    fit = model_month.fit_month(split, settings) if enough.passed else None
    card = model_month.model_card(month, split, fit)
    publisher = PartitionPublisher(context, _model_checks(), store, LAYER, "model")
    publisher.submit(
        key,
        card,
        publisher.checks.audit(key, card, {"enough_events": enough}),
        lambda: _publish_model(context, store, market, mlflow_tracking, windows, split, fit),
        lambda metadata: {**metadata, "missing_sessions": missing},
    )
    progress.partition_done(MODEL_KEY.to_user_string(), key)
    yield from publisher.outcome({})


def _month_events(
    store: DataStore, month: dt.date, windows: walkforward.WalkForwardWindows
) -> tuple[pl.DataFrame, int]:
    first, last = windows.train.first_session, windows.test.last_session
    events, missing = _events_between(store, first, last)
    if events.is_empty():
        raise ValueError(
            f"ml/model {month:%Y-%m}: no feature/label partitions between {first} and {last}; "
            "materialize the event assets for that span first"
        )
    return events, missing


def _publish_model(
    context: dg.AssetExecutionContext,
    store: DataStore,
    market: MarketDataResource,
    mlflow_tracking: MLflowResource,
    windows: walkforward.WalkForwardWindows,
    split: model_month.MonthSplit,
    fit: model_month.MonthFit | None,
) -> dict[str, Any]:
    """Save the month's models and log them to MLflow (only once its card passed its checks);
    returns the materialization's metadata."""
    assert fit is not None  # enough_events passed, so the month was fitted
    month = dt.date.fromisoformat(context.partition_key)
    saved = model_store.save_models(store, month, fit.models)
    source = market.source_label(store)
    tags = {
        "dagster_run_id": context.run.run_id,
        "partition": context.partition_key,
        "upstream_range": f"{windows.train.first_session}...{windows.test.last_session}",
        "git_commit": _git_commit(),
        "data_source": source,
    }
    run_id = _log_to_mlflow(mlflow_tracking, store, saved, month, fit, split, windows, tags)
    return {
        "train_events": split.sizes["train"],
        "validation_events": split.sizes["validation"],
        "test_events": split.sizes["test"],
        "purged_or_embargoed": split.purged,
        "validation_auc": fit.validation_metrics["auc"],
        "test_auc": fit.test_metrics["auc"],
        "test_base_rate": fit.test_metrics["base_rate"],
        "blend_weights": dg.MetadataValue.json(fit.models.weights),
        "threshold": fit.models.threshold,
        "train_window": f"{windows.train.first_session}...{windows.train.last_session}",
        "validation_window": (
            f"{windows.validation.first_session}...{windows.validation.last_session}"
        ),
        "mlflow_run_id": run_id,
        "model_path": dg.MetadataValue.path(saved.manifest_url),
        MANIFEST_DIGEST: saved.manifest_sha256,
        "model_artifacts": dg.MetadataValue.json(saved.artifacts),
        "data_source": source,
    }


def _log_to_mlflow(
    resource: MLflowResource,
    store: DataStore,
    saved: model_store.SavedModels,
    month: dt.date,
    fit: model_month.MonthFit,
    split: model_month.MonthSplit,
    windows: walkforward.WalkForwardWindows,
    tags: dict[str, str],
) -> str:
    models, sizes = fit.models, split.sizes
    valid_metrics, test_metrics = fit.validation_metrics, fit.test_metrics
    y_test, test_scores = fit.test_labels, fit.test_scores
    mlflow = resource.client()
    # Categoricals as plain strings: what a caller of the registry has, and JSON-safe.
    x_example = (
        split.train.loc[:, list(modeling.FEATURE_COLUMNS)]
        .head(5)
        .astype(dict.fromkeys(CATEGORICAL_FEATURES, str))
        .reset_index(drop=True)
    )
    with mlflow.start_run(run_name=f"walk-forward {month:%Y-%m}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params(
            {
                "month": f"{month:%Y-%m}",
                "train_window": f"{windows.train.first_session}..{windows.train.last_session}",
                "validation_window": (
                    f"{windows.validation.first_session}..{windows.validation.last_session}"
                ),
                **{f"{k}_events": v for k, v in sizes.items()},
                "blend_lgbm": models.weights["lgbm"],
                "blend_catboost": models.weights["catboost"],
                "threshold": round(models.threshold, 6),
                "lgbm_best_iteration": models.best_iterations["lgbm"],
                "catboost_best_iteration": models.best_iterations["catboost"],
                "hyperparameter_trials": 1,
            }
        )
        mlflow.log_metrics(
            {
                **{f"validation_{k}": v for k, v in valid_metrics.items() if np.isfinite(v)},
                **{f"test_{k}": v for k, v in test_metrics.items() if np.isfinite(v)},
            }
        )
        mlflow.log_image(
            png_image(importance_png(models.feature_importance)), "feature_importance.png"
        )
        mlflow.log_image(png_image(calibration_png(y_test, test_scores)), "calibration.png")
        mlflow.log_text(models.feature_importance.to_csv(index=False), "feature_importance.csv")
        mlflow.log_text(json.dumps(models.weights), "blend_weights.json")
        info = _log_registry_model(mlflow, store, saved, month, models, x_example)
        _alias_newest(mlflow, month, info.registered_model_version)
        return str(run.info.run_id)


def _log_registry_model(
    mlflow: Any,
    store: DataStore,
    saved: model_store.SavedModels,
    month: dt.date,
    models: modeling.TrainedModels,
    x_example: Any,
) -> Any:
    """Register the pyfunc that scores with the month's bundle as it was saved (the very
    bytes ``ml/predictions`` and ``research/watchlist`` load), with signature and example."""
    import tempfile

    from smallcaps_assets.core import registry_model

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        files = {m: a["file"] for m, a in saved.artifacts.items()}
        for name in (model_store.MANIFEST, *files.values()):
            payload = store.read_bytes(f"{model_store.bundle_dir(month)}/{name}")
            if payload is None:
                raise FileNotFoundError(f"{model_store.bundle_dir(month)}/{name} vanished")
            (directory / name).write_bytes(payload)
        manifest = (directory / model_store.MANIFEST).read_bytes()
        if model_store.sha256(manifest) != saved.manifest_sha256:
            raise model_store.ModelBundleError(
                f"{model_store.manifest_file(month)} changed while ml/model was logging it"
            )
        output = modeling.score_features(models, x_example).loc[
            :, list(registry_model.OUTPUT_COLUMNS)
        ]
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=registry_model.BundleModel(),
            artifacts=registry_model.artifacts_for(directory, files),
            model_config=registry_model.model_config(month, saved.manifest_sha256),
            code_paths=[str(Path(registry_model.__file__).parents[1])],
            signature=registry_model.signature(x_example, output),
            input_example=x_example,
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=REGISTERED_MODEL,
        )


def _alias_newest(mlflow: Any, month: dt.date, version: Any) -> None:
    """Point the ``newest`` alias at this version unless a later month already holds it."""
    client = mlflow.MlflowClient()
    client.set_model_version_tag(REGISTERED_MODEL, str(version), "month", f"{month:%Y-%m}")
    try:
        current = client.get_model_version_by_alias(REGISTERED_MODEL, NEWEST_ALIAS)
        current_month = current.tags.get("month", "")
    except Exception:  # no alias yet
        current_month = ""
    if f"{month:%Y-%m}" >= current_month:
        client.set_registered_model_alias(REGISTERED_MODEL, NEWEST_ALIAS, str(version))


def _predictions_checks() -> CheckSet:
    return CheckSet(
        PREDICTIONS_KEY,
        research_schemas.PREDICTIONS_MODEL,
        {"covers_month_once": "Every event of month M is scored exactly once."},
    )


@dg.asset(
    key=PREDICTIONS_KEY,
    group_name=LAYER,
    automation_condition=automation.when_month_ends(),
    partitions_def=months,
    description="Out-of-sample scores (LightGBM, CatBoost, blend, selected flag) for every event "
    "of month M from month M's model.",
    deps=[
        MODEL_KEY,
        dg.AssetDep(
            dg.AssetKey(["features", "events"]),
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=0, end_offset=0, allow_nonexistent_upstream_partitions=True
            ),
        ),
    ],
    check_specs=_predictions_checks().specs(),
    kinds={"polars", "parquet"},
)
def ml_predictions(
    context: dg.AssetExecutionContext, data: DataStoreResource
) -> Iterator[PublishEvent]:
    store, key = data.store(), context.partition_key
    month = dt.date.fromisoformat(key)
    test = walkforward.windows_for(month).test
    events, missing = _events_between(store, test.first_session, test.last_session)
    scored = model_month.score_events(verified_models(context, store, month), events)
    publisher = PartitionPublisher(context, _predictions_checks(), store, LAYER, "predictions")
    publisher.submit(
        key,
        scored,
        publisher.checks.audit(
            key, scored, {"covers_month_once": model_month.coverage(events, scored, partition=key)}
        ),
        functools.partial(store.write, LAYER, "predictions", month, scored),
        lambda report: {
            "dagster/row_count": scored.height,
            **model_month.month_outcome(scored, events),
            "missing_sessions": missing,
            "path": dg.MetadataValue.path(report.path),
        },
    )
    progress.partition_done(PREDICTIONS_KEY.to_user_string(), key)
    yield from publisher.outcome({})


model_assets = [build_model_asset(walkforward.WalkForwardSpec()), ml_predictions]
