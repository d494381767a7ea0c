"""Walk-forward models: design matrix, LightGBM and CatBoost fits, a capped blend, metrics.

Target: the barrier trade exits above its entry (``label == 1``, see core/labels.py). Only events with a complete
label path are used. Categorical features (pattern, exchange, sector) are native categoricals
in both libraries. Nothing here touches MLflow or Dagster.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl

from smallcaps_assets.core.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES

__all__ = [
    "FEATURE_COLUMNS",
    "ModelSettings",
    "TrainedModels",
    "blend_weights",
    "design_matrix",
    "evaluate",
    "fit_models",
    "lgbm_booster",
    "pooled_out_of_sample",
    "predict",
    "score_features",
    "top_reasons",
]

FEATURE_COLUMNS: Final = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
KEY: Final = ("date", "ticker", "ts", "pattern")


@dataclass(frozen=True)
class ModelSettings:
    min_train_events: int = 200
    # The calibrated demo market (300 names) has months of 44-127 labelled events; a
    # validation month below 40 is refused as too thin to choose a threshold on.
    min_validation_events: int = 40
    max_blend_weight: float = 0.8
    top_fraction: float = 0.1
    seed: int = 7
    lgbm_params: dict[str, Any] = field(
        default_factory=lambda: {
            "n_estimators": 400,
            "learning_rate": 0.03,
            "num_leaves": 15,
            "min_child_samples": 30,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
        }
    )
    catboost_params: dict[str, Any] = field(
        default_factory=lambda: {"iterations": 400, "learning_rate": 0.05, "depth": 4}
    )


def design_matrix(features: pl.DataFrame, labels: pl.DataFrame | None = None) -> pd.DataFrame:
    """Events x features as pandas (what both libraries take), categoricals as ``category``.

    With ``labels``, keeps events whose label path is complete and adds ``label``, ``exit_ts``
    and ``ret``; the event key columns are kept for bookkeeping (never used as features).
    """
    frame = features
    if labels is not None:
        frame = frame.join(
            labels.filter(pl.col("path_complete")).select(
                "ticker", "ts", "pattern", "label", "exit_ts", "ret"
            ),
            on=["ticker", "ts", "pattern"],
            how="inner",
        )
    pdf = frame.to_pandas()
    for column in CATEGORICAL_FEATURES:
        pdf[column] = pdf[column].fillna("unknown").astype("category")
    return pdf


def _x(frame: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    x = frame.loc[:, list(FEATURE_COLUMNS)].copy()
    for column, values in categories.items():
        x[column] = pd.Categorical(x[column].astype(str), categories=values)
    return x


@dataclass
class TrainedModels:
    """One month's fitted models. ``lgbm`` is the fitted ``LGBMClassifier``, or the
    ``lightgbm.Booster`` itself when read back from a stored bundle (core/model_store.py);
    scoring goes through the booster either way (``lgbm_booster``)."""

    lgbm: Any
    catboost: Any
    weights: dict[str, float]
    threshold: float
    categories: dict[str, list[str]]
    best_iterations: dict[str, int]
    feature_importance: pd.DataFrame


def lgbm_booster(model: Any) -> Any:
    """The ``lightgbm.Booster`` behind ``TrainedModels.lgbm`` (a fitted classifier's
    ``booster_``, or the booster a bundle was read into)."""
    return getattr(model, "booster_", model)


def _scores(models: TrainedModels, x: pd.DataFrame) -> dict[str, npt.NDArray[np.float64]]:
    # The booster's probability of class 1: what LGBMClassifier.predict_proba(x)[:, 1] returns.
    lgbm = np.asarray(lgbm_booster(models.lgbm).predict(x), dtype=np.float64)
    cat_x = x.copy()
    for column in CATEGORICAL_FEATURES:
        cat_x[column] = cat_x[column].astype(str)
    cat = np.asarray(models.catboost.predict_proba(cat_x)[:, 1], dtype=np.float64)
    blend = models.weights["lgbm"] * lgbm + models.weights["catboost"] * cat
    return {"lgbm": lgbm, "catboost": cat, "blend": blend}


def predict(models: TrainedModels, frame: pd.DataFrame) -> pd.DataFrame:
    """Scores of every model and the blend for the events of ``frame``."""
    return pd.concat([frame.loc[:, list(KEY)], score_features(models, frame)], axis=1)


def score_features(models: TrainedModels, frame: pd.DataFrame) -> pd.DataFrame:
    """``score_lgbm``, ``score_catboost``, ``score`` (the blend) and ``selected`` for each row
    of ``frame``, which needs only the ``FEATURE_COLUMNS`` (categoricals as ``category`` or as
    plain strings; levels the models never saw score as missing)."""
    scores = _scores(models, _x(frame, models.categories))
    out = pd.DataFrame(index=frame.index)
    out["score_lgbm"] = scores["lgbm"]
    out["score_catboost"] = scores["catboost"]
    out["score"] = scores["blend"]
    out["selected"] = out["score"] >= models.threshold
    return out


def blend_weights(
    scores: dict[str, npt.NDArray[np.float64]], y: npt.NDArray[np.int_], cap: float
) -> dict[str, float]:
    """Weights on a 0.05 grid minimizing validation log loss, no model above ``cap``."""
    if not 0.5 <= cap <= 1.0:
        raise ValueError(f"max blend weight must be within [0.5, 1], got {cap}")
    names = sorted(scores)
    best: tuple[float, dict[str, float]] | None = None
    grid = np.round(np.arange(0.0, 1.0001, 0.05), 2)
    for combo in itertools.product(grid, repeat=len(names) - 1):
        last = round(1.0 - sum(combo), 2)
        weights = dict(zip(names, [float(w) for w in (*combo, last)], strict=True))
        if last < 0 or max(weights.values()) > cap + 1e-9:
            continue
        p = sum(w * scores[n] for n, w in weights.items())
        loss = _log_loss(y, np.asarray(p))
        if best is None or loss < best[0]:
            best = (loss, weights)
    assert best is not None
    return best[1]


def _log_loss(y: npt.NDArray[np.int_], p: npt.NDArray[np.float64]) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _best_threshold(y: npt.NDArray[np.int_], p: npt.NDArray[np.float64]) -> float:
    """The score threshold maximizing F1 on validation (0.5 when nothing is positive)."""
    if y.sum() == 0:
        return 0.5
    best_f1, best_t = -1.0, 0.5
    for t in np.unique(np.quantile(p, np.linspace(0.5, 0.99, 50))):
        chosen = p >= t
        tp = float((chosen & (y == 1)).sum())
        if tp == 0:
            continue
        precision, recall = tp / chosen.sum(), tp / y.sum()
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best_f1, best_t = f1, float(t)
    return best_t


def fit_models(
    train: pd.DataFrame, validation: pd.DataFrame, settings: ModelSettings | None = None
) -> TrainedModels:
    """Fit LightGBM and CatBoost on ``train`` with early stopping on ``validation``, then choose
    the blend weights and decision threshold on ``validation``. Raises ``ValueError`` naming
    the window when either set is too small to learn from."""
    import catboost
    import lightgbm

    settings = settings or ModelSettings()
    for name, frame, needed in (
        ("training", train, settings.min_train_events),
        ("validation", validation, settings.min_validation_events),
    ):
        if len(frame) < needed:
            raise ValueError(f"the {name} window has {len(frame)} labelled events; need {needed}")
        if frame["label"].nunique() < 2:
            raise ValueError(f"the {name} window has only one label class")
    categories = {
        c: sorted(set(train[c].astype(str)) | set(validation[c].astype(str)) | {"unknown"})
        for c in CATEGORICAL_FEATURES
    }
    x_train, x_valid = _x(train, categories), _x(validation, categories)
    y_train = train["label"].to_numpy().astype(int)
    y_valid = validation["label"].to_numpy().astype(int)

    lgbm = lightgbm.LGBMClassifier(
        objective="binary", random_state=settings.seed, verbose=-1, **settings.lgbm_params
    )
    lgbm.fit(
        x_train,
        y_train,
        eval_X=(x_valid,),
        eval_y=(y_valid,),
        eval_metric="binary_logloss",
        callbacks=[lightgbm.early_stopping(50, verbose=False)],
        categorical_feature=list(CATEGORICAL_FEATURES),
    )
    cat_train, cat_valid = x_train.copy(), x_valid.copy()
    for column in CATEGORICAL_FEATURES:
        cat_train[column] = cat_train[column].astype(str)
        cat_valid[column] = cat_valid[column].astype(str)
    cat = catboost.CatBoostClassifier(
        random_seed=settings.seed,
        verbose=False,
        allow_writing_files=False,
        thread_count=2,
        cat_features=list(CATEGORICAL_FEATURES),
        early_stopping_rounds=50,
        **settings.catboost_params,
    )
    cat.fit(cat_train, y_train, eval_set=(cat_valid, y_valid), use_best_model=True)
    provisional = TrainedModels(
        lgbm, cat, {"lgbm": 0.5, "catboost": 0.5}, 0.5, categories, {}, pd.DataFrame()
    )
    valid_scores = _scores(provisional, x_valid)
    weights = blend_weights(
        {k: v for k, v in valid_scores.items() if k != "blend"}, y_valid, settings.max_blend_weight
    )
    blend = weights["lgbm"] * valid_scores["lgbm"] + weights["catboost"] * valid_scores["catboost"]
    importance = pd.DataFrame(
        {
            "feature": list(FEATURE_COLUMNS),
            "lgbm_gain": lgbm.booster_.feature_importance(importance_type="gain"),
            "catboost": cat.get_feature_importance(),
        }
    ).sort_values("lgbm_gain", ascending=False)
    return TrainedModels(
        lgbm=lgbm,
        catboost=cat,
        weights=weights,
        threshold=_best_threshold(y_valid, blend),
        categories=categories,
        best_iterations={
            "lgbm": int(lgbm.best_iteration_ or settings.lgbm_params["n_estimators"]),
            "catboost": int(cat.get_best_iteration() or 0),
        },
        feature_importance=importance,
    )


def evaluate(
    y: npt.NDArray[np.int_],
    score: npt.NDArray[np.float64],
    patterns: npt.NDArray[Any] | None = None,
    top_fraction: float = 0.1,
) -> dict[str, float]:
    """AUC, log loss, base rate, precision at the top ``top_fraction`` of scores and, per
    pattern, the hit rate (label mean) of that pattern's top-fraction events."""
    from sklearn.metrics import roc_auc_score

    out: dict[str, float] = {
        "events": float(len(y)),
        "base_rate": float(np.mean(y)) if len(y) else float("nan"),
        "log_loss": _log_loss(y, score) if len(y) else float("nan"),
        "auc": float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan"),
    }
    out["precision_at_top"] = _top_mean(y, score, top_fraction)
    if patterns is not None:
        for pattern in sorted(set(patterns.tolist())):
            mask = patterns == pattern
            out[f"hit_rate_{pattern}"] = _top_mean(y[mask], score[mask], top_fraction)
    return out


def _top_mean(y: npt.NDArray[np.int_], score: npt.NDArray[np.float64], fraction: float) -> float:
    if len(y) == 0:
        return float("nan")
    k = max(1, round(len(y) * fraction))
    top = np.argsort(-score, kind="stable")[:k]
    return float(np.mean(y[top]))


def pooled_out_of_sample(predictions: pl.DataFrame, labels: pl.DataFrame) -> dict[str, float]:
    """AUC and counts over every month's out-of-sample predictions joined to complete labels."""
    joined = predictions.join(
        labels.filter(pl.col("path_complete")).select("ticker", "ts", "pattern", "label"),
        on=["ticker", "ts", "pattern"],
        how="inner",
    )
    y = joined.get_column("label").to_numpy().astype(int)
    score = joined.get_column("score").to_numpy().astype(np.float64)
    months = joined.select(pl.col("date").dt.strftime("%Y-%m").n_unique()).item()
    metrics = evaluate(y, score)
    return {
        "auc": metrics["auc"],
        "events": float(len(y)),
        "months": float(months or 0),
        "base_rate": metrics["base_rate"],
        "precision_at_top": metrics["precision_at_top"],
    }


def top_reasons(models: TrainedModels, frame: pd.DataFrame, k: int = 3) -> list[str]:
    """Per event, the ``k`` features that moved its LightGBM score most (SHAP contributions
    from the booster), as ``feature=value (+contribution)`` joined by ``; ``."""
    x = _x(frame, models.categories)
    contributions = np.asarray(lgbm_booster(models.lgbm).predict(x, pred_contrib=True))[:, :-1]
    names = list(FEATURE_COLUMNS)
    out: list[str] = []
    for row, contrib in enumerate(contributions):
        order = np.argsort(-np.abs(contrib))[:k]
        parts = []
        for j in order:
            value = x.iloc[row, j]
            shown = f"{value:.3g}" if isinstance(value, (int, float, np.floating)) else str(value)
            parts.append(f"{names[j]}={shown} ({contrib[j]:+.2f})")
        out.append("; ".join(parts))
    return out
