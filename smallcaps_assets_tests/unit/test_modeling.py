"""Modelling helpers pinned on small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from smallcaps_assets.core.modeling import blend_weights, evaluate


def test_blend_weights_respect_the_cap_and_prefer_the_better_model():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    good = np.array([0.1, 0.2, 0.9, 0.8, 0.1, 0.7, 0.3, 0.9])
    noise = np.full(8, 0.5)
    weights = blend_weights({"lgbm": good, "catboost": noise}, y, cap=0.8)
    assert weights == {"catboost": 0.2, "lgbm": 0.8}
    assert sum(weights.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="max blend weight"):
        blend_weights({"lgbm": good, "catboost": noise}, y, cap=0.3)


def test_evaluate_on_a_hand_case():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    score = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.05])
    patterns = np.array(["orb"] * 5 + ["hod_breakout"] * 5)
    metrics = evaluate(y, score, patterns, top_fraction=0.1)
    # Positives ranked 1st and 3rd of 10: 15 of the 16 (pos, neg) pairs are ordered right.
    assert metrics["auc"] == pytest.approx(15 / 16)
    assert metrics["base_rate"] == pytest.approx(0.2)
    assert metrics["precision_at_top"] == 1.0  # the top 10% is the 0.9 positive
    assert metrics["hit_rate_orb"] == 1.0
    assert metrics["hit_rate_hod_breakout"] == 0.0
