"""One walk-forward month, from labelled events to fitted models and their card.

``split_month`` puts month M's events into train / validation / test (purged, embargoed:
``core.walkforward``), ``enough_events`` says whether those windows can be learnt from,
``fit_month`` fits and scores them, and ``model_card`` is the one-row summary the ``ml/model``
asset checks before it publishes the models. Nothing here touches MLflow, Dagster or storage.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl

from smallcaps_assets.core import modeling, walkforward
from smallcaps_assets.core.validation import CheckReport, condition_report

__all__ = [
    "LABEL_COLUMNS",
    "MonthFit",
    "MonthSplit",
    "coverage",
    "enough_events",
    "fit_month",
    "label_events",
    "model_card",
    "month_outcome",
    "score_events",
    "split_month",
]

EVENT_KEY = ["ticker", "ts", "pattern"]
LABEL_COLUMNS = ("path_complete", "label", "exit_ts", "ret")


def label_events(features: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Feature rows with their triple-barrier outcome (null where an event has no label)."""
    return features.join(labels.select(*EVENT_KEY, *LABEL_COLUMNS), on=EVENT_KEY, how="left")


@dataclass(frozen=True)
class MonthSplit:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    # Events dropped by the purge and embargo, or without a label end.
    purged: int

    @property
    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
        }


def split_month(events: pl.DataFrame, windows: walkforward.WalkForwardWindows) -> MonthSplit:
    """Design matrices of the month's labelled (complete-path) events, by period."""
    periods = walkforward.assign_periods(events, windows)
    labelled = periods.filter(pl.col("path_complete").fill_null(False))

    def part(name: str) -> pd.DataFrame:
        return modeling.design_matrix(labelled.filter(pl.col("period") == name).drop("period"))

    return MonthSplit(
        part("train"),
        part("validation"),
        part("test"),
        int(periods.filter(pl.col("period").is_null()).height),
    )


def enough_events(
    split: MonthSplit, settings: modeling.ModelSettings, *, partition: str = ""
) -> CheckReport:
    """Training and validation windows big enough to learn from, with both label classes."""
    report = CheckReport()
    for name, frame, needed in (
        ("training", split.train, settings.min_train_events),
        ("validation", split.validation, settings.min_validation_events),
    ):
        classes = frame["label"].nunique() if len(frame) else 0
        report.merge(
            condition_report(
                f"{name} window has >= {needed} labelled events of both classes",
                len(frame) >= needed and classes == 2,
                f"the {name} window has {len(frame)} labelled events ({classes} label "
                f"classes); need {needed}; window sizes {split.sizes}",
                partition=partition,
            )
        )
    return report


@dataclass(frozen=True)
class MonthFit:
    models: modeling.TrainedModels
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    test_scores: npt.NDArray[np.float64]
    test_labels: npt.NDArray[np.int_]


def fit_month(split: MonthSplit, settings: modeling.ModelSettings) -> MonthFit:
    """Fit on train (early stopping and the blend on validation) and score the test month."""
    models = modeling.fit_models(split.train, split.validation, settings)
    test_scores = modeling.predict(models, split.test)["score"].to_numpy()
    y_test = split.test["label"].to_numpy().astype(int)
    valid_scores = modeling.predict(models, split.validation)["score"].to_numpy()
    return MonthFit(
        models,
        modeling.evaluate(split.validation["label"].to_numpy().astype(int), valid_scores),
        modeling.evaluate(y_test, test_scores, split.test["pattern"].astype(str).to_numpy()),
        test_scores,
        y_test,
    )


def model_card(month: dt.date, split: MonthSplit, fit: MonthFit | None) -> pl.DataFrame:
    """The month's one-row summary (``research_schemas.MODEL_CARD_MODEL``); NaN-free where a
    figure is undefined (null), and without fitted figures when nothing was fitted."""

    def number(value: Any) -> float | None:
        return None if value is None or not math.isfinite(float(value)) else float(value)

    weights = fit.models.weights if fit else {}
    return pl.DataFrame(
        {
            "month": [month],
            "train_events": [split.sizes["train"]],
            "validation_events": [split.sizes["validation"]],
            "test_events": [split.sizes["test"]],
            "validation_auc": [number(fit.validation_metrics["auc"]) if fit else None],
            "test_auc": [number(fit.test_metrics["auc"]) if fit else None],
            "threshold": [fit.models.threshold if fit else None],
            "weight_lgbm": [weights.get("lgbm")],
            "weight_catboost": [weights.get("catboost")],
        },
        schema={
            "month": pl.Date(),
            "train_events": pl.Int64(),
            "validation_events": pl.Int64(),
            "test_events": pl.Int64(),
            "validation_auc": pl.Float64(),
            "test_auc": pl.Float64(),
            "threshold": pl.Float64(),
            "weight_lgbm": pl.Float64(),
            "weight_catboost": pl.Float64(),
        },
    )


def score_events(models: modeling.TrainedModels, events: pl.DataFrame) -> pl.DataFrame:
    """Every event of ``events`` (labels, if joined, are ignored) scored by ``models``, typed as
    ``research_schemas.PREDICTIONS_MODEL``."""
    features = events.drop([c for c in LABEL_COLUMNS if c in events.columns])
    return pl.from_pandas(modeling.predict(models, modeling.design_matrix(features))).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")),
        pl.col("date").cast(pl.Date),
        pl.col("ticker").cast(pl.String),
        pl.col("pattern").cast(pl.String),
    )


def coverage(events: pl.DataFrame, scored: pl.DataFrame, *, partition: str = "") -> CheckReport:
    """Every event scored exactly once: no duplicate and no event without a score."""
    duplicates = scored.height - scored.select(EVENT_KEY).unique().height
    unscored = events.select(EVENT_KEY).join(scored.select(EVENT_KEY), on=EVENT_KEY, how="anti")
    return condition_report(
        "every event scored exactly once",
        duplicates == 0 and unscored.is_empty() and scored.height == events.height,
        f"{events.height} events, {scored.height} scores, {duplicates} duplicates, "
        f"{unscored.height} unscored",
        partition=partition,
    )


def month_outcome(scored: pl.DataFrame, events: pl.DataFrame) -> dict[str, float]:
    """The month's out-of-sample AUC over its events with a complete label path (a model trained
    as its month begins only saw the month's first session as its test set)."""
    outcomes = scored.select(*EVENT_KEY, "score").join(
        events.filter(pl.col("path_complete").fill_null(False)).select(*EVENT_KEY, "label"),
        on=EVENT_KEY,
    )
    metrics = modeling.evaluate(
        outcomes.get_column("label").to_numpy().astype(int),
        outcomes.get_column("score").to_numpy(),
    )
    return {
        "month_auc": metrics["auc"],
        "month_labelled_events": float(outcomes.height),
        "events": float(events.height),
        "selected": float(scored.get_column("selected").sum()),
    }
