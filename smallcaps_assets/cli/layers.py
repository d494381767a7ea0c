"""The layers ``smallcaps demo`` materializes, in order: one run per layer (per month for the
monthly layer)."""

from __future__ import annotations

from dataclasses import dataclass

import smallcaps_assets.warnings_filter  # noqa: F401  (before the assets are declared)
from smallcaps_assets.defs.graph import STAGES


@dataclass
class Layer:
    name: str
    selection: list[str]  # asset keys as user strings, e.g. "raw/daily_bars"
    partitioned: bool = True
    monthly: bool = False
    needs_walk_forward: bool = False
    last_session_only: bool = False
    warmup_sessions: int = 0


def _layers() -> list[Layer]:
    """The graph's stages (defs/graph.py), as the demo runs them."""
    return [
        Layer(
            stage.name,
            stage.keys,
            partitioned=stage.partitioned,
            monthly=stage.monthly,
            needs_walk_forward=stage.needs_walk_forward,
            last_session_only=stage.last_session_only,
            warmup_sessions=stage.warmup_sessions,
        )
        for stage in STAGES
    ]
