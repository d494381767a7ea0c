"""The graph, stated once: its stages in the order a window is built, each with its assets.

``definitions.py`` registers these assets, ``smallcaps demo`` runs the stages in order (one
run per stage, per month for the monthly one), and the catalogs cover the datasets of the raw,
processed and event stages. Each asset declares its own automation where it is defined.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from smallcaps_assets.defs.backtest import backtest_report, backtest_trades
from smallcaps_assets.defs.catalog import build_catalog_asset
from smallcaps_assets.defs.models import model_assets
from smallcaps_assets.defs.processed import (
    EVENT_DATASETS,
    PROCESSED_DATASETS,
    event_assets,
    processed_assets,
)
from smallcaps_assets.defs.raw import (
    MINUTE_BARS,
    MINUTE_REQUESTS,
    RAW_DATASETS,
    raw_assets,
    raw_minute_bars_asset,
)
from smallcaps_assets.defs.realism import market_realism
from smallcaps_assets.defs.watchlist import research_watchlist


@dataclass(frozen=True)
class Stage:
    name: str
    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    partitioned: bool = True
    # Monthly stages run one partition per run (the walk-forward months inside the window).
    monthly: bool = False
    # Skipped when the window holds no walk-forward month (nothing to report on).
    needs_walk_forward: bool = False
    # Only the window's last session (the daily report a user reads next).
    last_session_only: bool = False
    # Sessions before the window this stage also covers: the universe of the first session
    # screens on the previous session's raw bars.
    warmup_sessions: int = 0

    @property
    def keys(self) -> list[str]:
        return [key.to_user_string() for asset in self.assets for key in asset.keys]


CATALOG_ASSETS: list[dg.AssetsDefinition] = [
    build_catalog_asset(
        "raw",
        [d.name for d in [*RAW_DATASETS, MINUTE_BARS]],
        extra_datasets=(MINUTE_REQUESTS,),
    ),
    build_catalog_asset("processed", [d.name for d in PROCESSED_DATASETS]),
    *(build_catalog_asset(d.layer, [d.name]) for d in EVENT_DATASETS),
    # What the models, the backtest and the daily watchlist stored, for SQL over every dataset.
    build_catalog_asset("ml", ["predictions"]),
    build_catalog_asset("backtest", ["trades"]),
    build_catalog_asset("research", ["watchlist"]),
]

STAGES: list[Stage] = [
    Stage("raw", raw_assets, warmup_sessions=1),
    Stage("processed", [*processed_assets, raw_minute_bars_asset]),
    Stage("events", event_assets),
    Stage("models", [*model_assets, backtest_trades], partitioned=False, monthly=True),
    Stage("backtest", [backtest_report], partitioned=False, needs_walk_forward=True),
    Stage("watchlist", [research_watchlist], last_session_only=True),
    Stage("catalog", CATALOG_ASSETS, partitioned=False),
]

# Reports nothing else depends on, run on request (not part of a demo window).
REPORTS: list[dg.AssetsDefinition] = [market_realism]

ASSETS: list[dg.AssetsDefinition] = [a for stage in STAGES for a in stage.assets] + REPORTS
