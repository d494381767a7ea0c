"""The registered MLflow model: a pyfunc that scores with a month's stored bundle.

``ml/model`` registers this as ``smallcaps-gap-events``. Its artifacts are the month's bundle
files exactly as ``core/model_store.py`` wrote them (LightGBM text, CatBoost ``.cbm``,
``manifest.json``), so the categorical levels, blend weights and threshold travel with the
model and nothing executable is stored for the models themselves. ``load_context`` reads them
with the project's loader, which checks every file's sha256 against the manifest and the
manifest's against the digest recorded in the ``model_config`` at logging time.

    model = mlflow.pyfunc.load_model("models:/smallcaps-gap-events@newest")
    scores = model.predict(frame)  # frame: pandas, the FEATURE_COLUMNS (extra columns ignored)

Categorical columns may be pandas ``category`` (as ``modeling.design_matrix`` makes them) or
plain strings; the other feature columns are doubles. ``predict`` returns, per input row, ``score`` (the blend ``research/watchlist`` and
``ml/predictions`` use), ``score_lgbm``, ``score_catboost`` and ``selected``. MLflow stores
an instance of the class below (cloudpickle, by reference to this module), so loading needs
this package importable; ``ml/model`` logs the package as the model's code for that.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Final

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from smallcaps_assets.core import model_store, modeling
from smallcaps_assets.core.features import CATEGORICAL_FEATURES

__all__ = [
    "MANIFEST_ARTIFACT",
    "OUTPUT_COLUMNS",
    "BundleModel",
    "artifacts_for",
    "model_config",
    "signature",
]

MANIFEST_ARTIFACT: Final = "manifest"
OUTPUT_COLUMNS: Final = ("score", "score_lgbm", "score_catboost", "selected")


def artifacts_for(directory: Path, artifact_files: dict[str, str]) -> dict[str, str]:
    """The pyfunc ``artifacts`` of a bundle copied to ``directory``: the manifest and each
    member's file (member -> file name, as ``SavedModels.artifacts`` names them)."""
    paths = {MANIFEST_ARTIFACT: str(directory / model_store.MANIFEST)}
    paths.update({member: str(directory / name) for member, name in artifact_files.items()})
    return paths


def signature(example: pd.DataFrame, output: pd.DataFrame) -> Any:
    """The signature inferred from the example, except that each categorical column takes any
    value: MLflow refuses a pandas ``category`` column for a ``string`` one, and the design
    matrix's categoricals are ``category``; levels are mapped with the bundle's own lists."""
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema, TensorSpec

    inferred = infer_signature(example, output)
    columns: list[ColSpec | TensorSpec] = []
    for spec in inferred.inputs.inputs:
        if spec.name in CATEGORICAL_FEATURES:
            spec = ColSpec(AnyType(), spec.name)  # type: ignore[no-untyped-call]
        columns.append(spec)
    return ModelSignature(inputs=Schema(columns), outputs=inferred.outputs)


def model_config(month: dt.date, manifest_sha256: str) -> dict[str, str]:
    return {"month": f"{month:%Y-%m}", "manifest_sha256": manifest_sha256}


class BundleModel(PythonModel):
    """Scores a frame of events with the bundle it was logged with (no state of its own)."""

    def load_context(self, context: Any) -> None:
        config = context.model_config or {}
        manifest_path = Path(context.artifacts[MANIFEST_ARTIFACT])
        files = {Path(p).name: Path(p) for p in context.artifacts.values()}

        def read(name: str) -> bytes | None:
            path = files.get(name)
            return path.read_bytes() if path is not None and path.is_file() else None

        self._models = model_store.decode(
            manifest_path.read_bytes(),
            read,
            month=dt.date.fromisoformat(f"{config['month']}-01"),
            where=str(manifest_path.parent),
            expected_manifest_sha256=config.get("manifest_sha256"),
        )

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        return modeling.score_features(self._models, frame).loc[:, list(OUTPUT_COLUMNS)]
