"""Fitted walk-forward models stored as data that nothing executes on load.

A month's bundle lives under ``<data root>/models/month=YYYY-MM/``:

- ``lgbm-<digest>.txt``: the LightGBM booster as its text model (``Booster.model_to_string``);
- ``catboost-<digest>.cbm``: the CatBoost model in CatBoost's own binary format;
- ``manifest.json``: every other part of ``TrainedModels`` (blend weights, threshold,
  categorical levels, best iterations, feature importance) and the feature columns, as plain
  JSON, and for each artifact its file name, format, size and sha256.

Artifacts are named by (the first 16 hex digits of) their sha256 and written first, each
atomically; the manifest is written last. A reader therefore sees the previous complete bundle
or the new one, never a mix, and a refit never overwrites a file the current manifest names.

On load every artifact's sha256 is recomputed and compared with the manifest *before* it is
parsed, and, when the caller passes it, the manifest's own sha256 with the digest recorded in
the ``ml/model`` materialization. Without that digest the loader can only prove the bundle
consistent: a writer who replaces an artifact and rewrites the manifest to match is caught only
by the recorded digest. Either way nothing in the bundle is code (no pickle), so the worst a
writer can do is change scores, not run a program. A ``models.pkl`` from before bundles is never
opened: the loader asks for ``ml/model`` to be re-materialized.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeGuard

import pandas as pd

from smallcaps_assets.core import modeling
from smallcaps_assets.core.storage import DataStore

__all__ = [
    "FORMAT",
    "LEGACY_FILES",
    "LEGACY_PICKLE",
    "MANIFEST",
    "MANIFEST_FILES",
    "LegacyModelError",
    "ModelBundleError",
    "SavedModels",
    "bundle_dir",
    "decode",
    "encode",
    "load_models",
    "manifest_file",
    "save_models",
    "sha256",
]

FORMAT: Final = "smallcaps-walk-forward-models"
VERSION: Final = 1
MANIFEST: Final = "manifest.json"
LEGACY_PICKLE: Final = "models.pkl"
MANIFEST_FILES: Final = f"models/month=*/{MANIFEST}"
LEGACY_FILES: Final = f"models/month=*/{LEGACY_PICKLE}"
# member -> (file suffix, format name); the order is the order artifacts are written in.
ARTIFACTS: Final = {"lgbm": (".txt", "lightgbm-text"), "catboost": (".cbm", "catboost-cbm")}


class ModelBundleError(ValueError):
    """A stored model bundle that is refused: changed after it was written, incomplete or not
    a bundle of this project."""


class LegacyModelError(FileNotFoundError):
    """The month has only a ``models.pkl`` from before bundles, which is never unpickled."""


@dataclass(frozen=True)
class SavedModels:
    manifest_url: str
    manifest_sha256: str
    artifacts: dict[str, dict[str, str]]  # member -> {"file": name, "sha256": hex digest}


def bundle_dir(month: dt.date) -> str:
    """Month M's bundle directory, relative to the data root."""
    return f"models/month={month:%Y-%m}"


def manifest_file(month: dt.date) -> str:
    return f"{bundle_dir(month)}/{MANIFEST}"


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


# -- writing -------------------------------------------------------------------------------------
def encode(models: modeling.TrainedModels, month: dt.date) -> tuple[dict[str, bytes], bytes]:
    """The artifact files of ``models`` (file name -> bytes) and the manifest naming them."""
    import catboost
    import lightgbm

    payloads = {
        "lgbm": modeling.lgbm_booster(models.lgbm).model_to_string().encode("utf-8"),
        "catboost": _catboost_bytes(models.catboost),
    }
    files: dict[str, bytes] = {}
    artifacts: dict[str, dict[str, Any]] = {}
    for member, (_suffix, fmt) in ARTIFACTS.items():
        digest = sha256(payloads[member])
        name = _artifact_name(member, digest)
        files[name] = payloads[member]
        artifacts[member] = {
            "file": name,
            "format": fmt,
            "bytes": len(payloads[member]),
            "sha256": digest,
        }
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "month": f"{month:%Y-%m}",
        "libraries": {"lightgbm": lightgbm.__version__, "catboost": catboost.__version__},
        "artifacts": artifacts,
        "feature_columns": list(modeling.FEATURE_COLUMNS),
        "weights": {str(k): float(v) for k, v in models.weights.items()},
        "threshold": float(models.threshold),
        "categories": {str(k): [str(v) for v in vs] for k, vs in models.categories.items()},
        "best_iterations": {str(k): int(v) for k, v in models.best_iterations.items()},
        "feature_importance": _frame_to_json(models.feature_importance),
    }
    return files, (json.dumps(manifest, indent=2) + "\n").encode("utf-8")


def save_models(store: DataStore, month: dt.date, models: modeling.TrainedModels) -> SavedModels:
    """Write month M's bundle: each artifact atomically, then the manifest (also atomically)."""
    files, manifest = encode(models, month)
    for name, payload in files.items():
        store.write_bytes(f"{bundle_dir(month)}/{name}", payload)
    url = store.write_bytes(manifest_file(month), manifest)
    recorded = json.loads(manifest)["artifacts"]
    return SavedModels(
        manifest_url=url,
        manifest_sha256=sha256(manifest),
        artifacts={m: {"file": a["file"], "sha256": a["sha256"]} for m, a in recorded.items()},
    )


def _catboost_bytes(model: Any) -> bytes:
    # CatBoost saves to a path only; the file never leaves this temporary directory.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.cbm"
        model.save_model(str(path), format="cbm")
        return path.read_bytes()


def _artifact_name(member: str, digest: str) -> str:
    return f"{member}-{digest[:16]}{ARTIFACTS[member][0]}"


def _frame_to_json(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "index": frame.index.tolist(),
        "columns": [
            {"name": str(c), "dtype": str(frame[c].dtype), "values": frame[c].tolist()}
            for c in frame.columns
        ],
    }


# -- reading -------------------------------------------------------------------------------------
def load_models(
    store: DataStore, month: dt.date, *, expected_manifest_sha256: str | None = None
) -> modeling.TrainedModels:
    """Month M's models, verified: each artifact against the manifest and, when given, the
    manifest against ``expected_manifest_sha256`` (the digest the ``ml/model`` materialization
    recorded). Raises ``FileNotFoundError`` when there is no bundle (``LegacyModelError`` when
    only an old ``models.pkl`` is there) and ``ModelBundleError`` when the bundle is refused."""
    where = f"{store.root}/{bundle_dir(month)}"
    manifest = store.read_bytes(manifest_file(month))
    if manifest is None:
        legacy = f"{bundle_dir(month)}/{LEGACY_PICKLE}"
        if store.files(legacy):
            raise LegacyModelError(
                f"{where}/{LEGACY_PICKLE} is a pickled model from an earlier version of this "
                "project and is not loaded (unpickling a file from the data root can run any "
                f"code); re-materialize ml/model for {month:%Y-%m} (partition {month:%Y-%m-01}) "
                "to store it as a verified bundle"
            )
        raise FileNotFoundError(
            f"ml/model has no fitted models for {month:%Y-%m} "
            f"(expected {where}/{MANIFEST}); materialize ml/model for that month"
        )
    return decode(
        manifest,
        lambda name: store.read_bytes(f"{bundle_dir(month)}/{name}"),
        month=month,
        where=where,
        expected_manifest_sha256=expected_manifest_sha256,
    )


def decode(
    manifest: bytes,
    read_artifact: Callable[[str], bytes | None],
    *,
    month: dt.date,
    where: str,
    expected_manifest_sha256: str | None = None,
) -> modeling.TrainedModels:
    """``TrainedModels`` from a manifest and a reader of the files it names; every check runs
    before any model file is parsed. ``where`` names the bundle in errors."""
    redo = f"re-materialize ml/model for {month:%Y-%m}"
    actual = sha256(manifest)
    if expected_manifest_sha256 is not None and actual != expected_manifest_sha256:
        raise ModelBundleError(
            f"{where}/{MANIFEST}: sha256 {actual} differs from {expected_manifest_sha256} "
            "recorded when ml/model was materialized; the bundle was changed after it was "
            f"written and is not loaded; {redo}"
        )
    try:
        spec = json.loads(manifest)
        if not isinstance(spec, dict):
            raise TypeError("not a JSON object")
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise ModelBundleError(
            f"{where}/{MANIFEST} is not a model manifest ({exc}); {redo}"
        ) from exc
    _require(
        spec.get("format") == FORMAT and spec.get("version") == VERSION,
        where,
        f"format {spec.get('format')!r} version {spec.get('version')!r}, "
        f"expected {FORMAT!r} version {VERSION}",
        redo,
    )
    _require(
        spec.get("month") == f"{month:%Y-%m}",
        where,
        f"holds the models of {spec.get('month')!r}, not {month:%Y-%m}",
        redo,
    )
    _require(
        spec.get("feature_columns") == list(modeling.FEATURE_COLUMNS),
        where,
        "was trained on other feature columns than this code computes",
        redo,
    )
    payloads: dict[str, bytes] = {}
    artifacts = spec.get("artifacts")
    for member in ARTIFACTS:
        entry = artifacts.get(member) if isinstance(artifacts, dict) else None
        if not isinstance(entry, dict):
            raise ModelBundleError(f"{where}/{MANIFEST} names no {member} artifact; {redo}")
        # The file name is derived from the digest, so a manifest cannot point outside its
        # bundle directory or at another member's file.
        digest = entry.get("sha256")
        if not _is_sha256(digest) or entry.get("file") != _artifact_name(member, digest):
            raise ModelBundleError(
                f"{where}/{MANIFEST} has a malformed {member} entry {entry!r}; {redo}"
            )
        name = _artifact_name(member, digest)
        payload = read_artifact(name)
        if payload is None:
            raise ModelBundleError(f"{where}/{name}: named by {MANIFEST} but missing; {redo}")
        found = sha256(payload)
        if found != digest:
            raise ModelBundleError(
                f"{where}/{name}: sha256 {found} does not match {digest} in {MANIFEST}; the "
                f"file was changed after it was written and is not loaded; {redo}"
            )
        payloads[member] = payload
    try:
        weights = {str(k): float(v) for k, v in spec["weights"].items()}
        if set(weights) != set(ARTIFACTS):
            raise ValueError(f"blend weights for {sorted(weights)}, not {sorted(ARTIFACTS)}")
        return modeling.TrainedModels(
            lgbm=_lightgbm_from(payloads["lgbm"]),
            catboost=_catboost_from(payloads["catboost"]),
            weights=weights,
            threshold=float(spec["threshold"]),
            categories={str(k): [str(v) for v in vs] for k, vs in spec["categories"].items()},
            best_iterations={str(k): int(v) for k, v in spec["best_iterations"].items()},
            feature_importance=_frame_from_json(spec["feature_importance"]),
        )
    except Exception as exc:  # a verified but unreadable bundle: name it, never half-load it
        raise ModelBundleError(
            f"{where}/{MANIFEST}: the bundle cannot be read ({exc}); {redo}"
        ) from exc


def _require(condition: bool, where: str, problem: str, redo: str) -> None:
    if not condition:
        raise ModelBundleError(f"{where}/{MANIFEST} {problem}; {redo}")


def _is_sha256(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and re.fullmatch("[0-9a-f]{64}", value) is not None


def _lightgbm_from(payload: bytes) -> Any:
    import lightgbm

    return lightgbm.Booster(model_str=payload.decode("utf-8"))


def _catboost_from(payload: bytes) -> Any:
    import catboost

    return catboost.CatBoostClassifier().load_model(blob=payload)


def _frame_from_json(spec: dict[str, Any]) -> pd.DataFrame:
    index = pd.Index(spec["index"]) if spec["index"] else None
    columns = {
        c["name"]: pd.Series(c["values"], dtype=c["dtype"], index=index) for c in spec["columns"]
    }
    return pd.DataFrame(columns, index=index)
