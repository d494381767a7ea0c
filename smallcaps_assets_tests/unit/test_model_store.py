"""Model bundles: a save/load round trip scores bit-identically, and a changed artifact, a
changed manifest or an old pickle is refused without anything from the data root being run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pickle
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from smallcaps_assets.core import model_store, modeling
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets_tests.model_fixtures import write_events

MONTH = dt.date(2024, 3, 1)
SMALL = modeling.ModelSettings(
    min_train_events=100,
    min_validation_events=40,
    lgbm_params={"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 7},
    catboost_params={"iterations": 40, "learning_rate": 0.1, "depth": 3},
)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[modeling.TrainedModels, pd.DataFrame]:
    """Small LightGBM + CatBoost models on the planted-signal fixture events (Jan-Feb train,
    March validates) and every event as the frame to score."""
    root = tmp_path_factory.mktemp("events")
    write_events(root, dt.date(2024, 1, 2), dt.date(2024, 3, 28), signal=1.5)
    store = DataStore(str(root))
    days = store.partitions("features", "events")
    matrix = modeling.design_matrix(
        store.read_many("features", "events", days), store.read_many("labels", "events", days)
    )
    return modeling.fit_models(*_halves(matrix), SMALL), matrix


@pytest.fixture
def saved(tmp_path, fitted) -> tuple[DataStore, model_store.SavedModels]:
    store = DataStore(str(tmp_path / "data"))
    return store, model_store.save_models(store, MONTH, fitted[0])


def _bundle(store: DataStore) -> Path:
    return Path(store.root) / model_store.bundle_dir(MONTH)


def test_a_round_trip_scores_bit_identically_with_no_pickle_in_the_bundle(saved, fitted):
    import catboost
    import lightgbm

    models, matrix = fitted
    store, report = saved
    loaded = model_store.load_models(store, MONTH, expected_manifest_sha256=report.manifest_sha256)
    assert isinstance(loaded.lgbm, lightgbm.Booster)
    assert isinstance(loaded.catboost, catboost.CatBoostClassifier)
    before, after = modeling.predict(models, matrix), modeling.predict(loaded, matrix)
    for column in ("score_lgbm", "score_catboost", "score", "selected"):
        assert np.array_equal(before[column].to_numpy(), after[column].to_numpy()), column
    assert modeling.top_reasons(models, matrix.head(20)) == modeling.top_reasons(
        loaded, matrix.head(20)
    )
    assert loaded.weights == models.weights
    assert loaded.threshold == models.threshold
    assert loaded.categories == models.categories
    assert loaded.best_iterations == models.best_iterations
    pd.testing.assert_frame_equal(loaded.feature_importance, models.feature_importance)

    names = sorted(p.name for p in _bundle(store).iterdir())
    assert names == sorted(
        [
            model_store.MANIFEST,
            report.artifacts["lgbm"]["file"],
            report.artifacts["catboost"]["file"],
        ]
    )
    assert report.artifacts["lgbm"]["file"].endswith(".txt")
    assert report.artifacts["catboost"]["file"].endswith(".cbm")
    for name in names:  # no file is a pickle (protocol 2+ streams start with 0x80)
        assert not (_bundle(store) / name).read_bytes().startswith(b"\x80"), name
    manifest = (_bundle(store) / model_store.MANIFEST).read_bytes()
    assert model_store.sha256(manifest) == report.manifest_sha256
    assert report.manifest_url.endswith("models/month=2024-03/manifest.json")


def test_the_booster_scores_what_the_fitted_classifier_predicts(fitted):
    """Scoring goes through the booster (what a bundle holds); for the fitted classifier that
    is bit for bit its predict_proba."""
    models, matrix = fitted
    x = matrix.loc[:, list(modeling.FEATURE_COLUMNS)]
    x = x.astype({c: pd.CategoricalDtype(v) for c, v in models.categories.items()})
    expected = models.lgbm.predict_proba(x)[:, 1]
    assert np.array_equal(modeling.predict(models, matrix)["score_lgbm"].to_numpy(), expected)


def test_a_refit_never_overwrites_a_file_the_current_manifest_names(saved, fitted):
    store, first = saved
    quick = dataclasses.replace(
        SMALL,
        seed=11,
        lgbm_params={"n_estimators": 10, "num_leaves": 7},
        catboost_params={"iterations": 10, "depth": 3},
    )
    refit = modeling.fit_models(*_halves(fitted[1]), quick)
    second = model_store.save_models(store, MONTH, refit)
    assert second.artifacts["lgbm"]["file"] != first.artifacts["lgbm"]["file"]
    assert (_bundle(store) / first.artifacts["lgbm"]["file"]).exists()  # the old bundle is whole
    assert model_store.load_models(store, MONTH).weights == refit.weights


def _halves(matrix: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    march = matrix["date"] >= np.datetime64("2024-03-01")
    return matrix[~march], matrix[march]


@pytest.mark.parametrize("member", ["lgbm", "catboost"])
def test_an_artifact_with_one_byte_changed_is_refused_naming_the_file_and_both_digests(
    saved, member
):
    store, report = saved
    name, digest = report.artifacts[member]["file"], report.artifacts[member]["sha256"]
    path = _bundle(store) / name
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0x01
    path.write_bytes(bytes(payload))
    with pytest.raises(model_store.ModelBundleError) as refused:
        model_store.load_models(store, MONTH)
    message = str(refused.value)
    assert name in message
    assert digest in message
    assert model_store.sha256(bytes(payload)) in message
    assert "re-materialize ml/model for 2024-03" in message


def test_a_changed_manifest_is_refused_against_the_recorded_digest(saved):
    """What the loader can prove alone is that the bundle is consistent. A writer who edits the
    manifest (here: the threshold) or swaps an artifact and rewrites its digest there is caught
    only by the digest the ml/model materialization recorded."""
    store, report = saved
    path = _bundle(store) / model_store.MANIFEST
    spec = json.loads(path.read_bytes())
    spec["threshold"] = 0.0  # select every event
    tampered = json.dumps(spec, indent=2).encode()
    path.write_bytes(tampered)

    assert model_store.load_models(store, MONTH).threshold == 0.0  # consistent, so not caught
    with pytest.raises(model_store.ModelBundleError) as refused:
        model_store.load_models(store, MONTH, expected_manifest_sha256=report.manifest_sha256)
    message = str(refused.value)
    assert "manifest.json" in message
    assert report.manifest_sha256 in message
    assert model_store.sha256(tampered) in message


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda spec: spec.update(month="2024-02"), "holds the models of '2024-02'"),
        (lambda spec: spec.update(format="other"), "format 'other'"),
        (lambda spec: spec["feature_columns"].pop(), "other feature columns"),
        (
            lambda spec: spec["artifacts"]["lgbm"].update(file="../../etc/passwd"),
            "malformed lgbm entry",
        ),
        (lambda spec: spec["artifacts"].pop("catboost"), "names no catboost artifact"),
        (lambda spec: spec["weights"].pop("lgbm"), "blend weights for ['catboost']"),
    ],
)
def test_a_manifest_that_is_not_this_months_bundle_is_refused(saved, edit, problem):
    store, _ = saved
    path = _bundle(store) / model_store.MANIFEST
    spec = json.loads(path.read_bytes())
    edit(spec)
    path.write_text(json.dumps(spec))
    with pytest.raises(model_store.ModelBundleError, match=r"manifest\.json") as refused:
        model_store.load_models(store, MONTH)
    assert problem in str(refused.value)


def test_a_missing_artifact_or_unparsable_manifest_is_refused(saved):
    store, report = saved
    (_bundle(store) / report.artifacts["catboost"]["file"]).unlink()
    with pytest.raises(model_store.ModelBundleError, match="missing"):
        model_store.load_models(store, MONTH)
    (_bundle(store) / model_store.MANIFEST).write_bytes(b"\x80\x04not json")
    with pytest.raises(model_store.ModelBundleError, match="is not a model manifest"):
        model_store.load_models(store, MONTH)


class _RunsOnUnpickle:
    """A pickle payload that would create ``marker`` if anything unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_an_old_models_pkl_is_never_unpickled_and_says_to_rematerialize(tmp_path):
    store = DataStore(str(tmp_path / "data"))
    marker = tmp_path / "code-ran"
    store.write_bytes("models/month=2024-03/models.pkl", pickle.dumps(_RunsOnUnpickle(marker)))
    with pytest.raises(model_store.LegacyModelError) as refused:
        model_store.load_models(store, MONTH)
    message = str(refused.value)
    assert "models/month=2024-03/models.pkl" in message
    assert "re-materialize ml/model for 2024-03" in message
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="materialize ml/model for that month"):
        model_store.load_models(store, dt.date(2024, 4, 1))


def test_the_watchlist_on_an_old_data_root_fails_with_what_to_do(tmp_path):
    from smallcaps_assets.defs.resources import DataStoreResource
    from smallcaps_assets.defs.watchlist import newest_model_month, research_watchlist

    root = tmp_path / "data"
    write_events(root, dt.date(2024, 3, 14), dt.date(2024, 3, 15), signal=1.5)
    store = DataStore(str(root))
    marker = tmp_path / "code-ran"
    store.write_bytes("models/month=2024-03/models.pkl", pickle.dumps(_RunsOnUnpickle(marker)))
    assert newest_model_month(store, dt.date(2024, 3, 15)) == MONTH
    result = dg.materialize(
        [research_watchlist],
        resources={"data": DataStoreResource(root=str(root))},
        partition_key="2024-03-15",
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "re-materialize ml/model for 2024-03" in str(failure.step_failure_data.error)
    assert not marker.exists()
