"""The layers ``smallcaps demo`` materializes, in order: one run per layer (per month for the
monthly layer)."""

from __future__ import annotations

from dataclasses import dataclass

import smallcaps_assets.warnings_filter  # noqa: F401  (before the assets are declared)
from smallcaps_assets.defs.processed import EVENT_DATASETS, PROCESSED_DATASETS
from smallcaps_assets.defs.raw import MINUTE_BARS, RAW_DATASETS


@dataclass
class Layer:
    name: str
    selection: list[str]  # asset keys as user strings, e.g. "raw/daily_bars"
    partitioned: bool = True
    # Monthly layers run one partition per run (the walk-forward months inside the window).
    monthly: bool = False
    # Skipped when the window holds no walk-forward month (nothing to report on).
    needs_walk_forward: bool = False
    # Only the window's last session (the daily report a user reads next).
    last_session_only: bool = False
    # Sessions before the window this layer also covers: the universe of the first session
    # screens on the previous session's raw bars.
    warmup_sessions: int = 0


def _layers() -> list[Layer]:
    return [
        Layer("raw", [f"raw/{d.name}" for d in RAW_DATASETS], warmup_sessions=1),
        Layer(
            "processed",
            [
                *(f"processed/{d.name}" for d in PROCESSED_DATASETS),
                f"raw/{MINUTE_BARS.name}",
            ],
        ),
        Layer("events", [f"{d.layer}/{d.name}" for d in EVENT_DATASETS]),
        Layer(
            "models",
            ["ml/model", "ml/predictions", "backtest/trades"],
            partitioned=False,
            monthly=True,
        ),
        Layer("backtest", ["backtest/report"], partitioned=False, needs_walk_forward=True),
        Layer("watchlist", ["research/watchlist"], last_session_only=True),
        Layer(
            "catalog",
            ["catalog/raw", "catalog/processed", *(f"catalog/{d.layer}" for d in EVENT_DATASETS)],
            partitioned=False,
        ),
    ]
