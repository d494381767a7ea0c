"""The ``smallcaps_assets`` code location."""

from __future__ import annotations

import dagster as dg

from smallcaps_assets.defs.raw import raw_assets
from smallcaps_assets.defs.resources import DataStoreResource, MarketDataResource

defs = dg.Definitions(
    assets=[*raw_assets],
    resources={
        "market": MarketDataResource(),
        "data": DataStoreResource(),
    },
)
