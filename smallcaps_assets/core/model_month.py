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
    "enough_events",
    "fit_month",
    "label_events",
    "model_card",
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
