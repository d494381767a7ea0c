"""A built-in simulated small-cap market that answers like Polygon.io.

``SimulatedPolygonTransport`` serves Polygon's REST endpoints (tickers, ticker details,
grouped daily, custom aggregates, splits, dividends, financials, news) from a
``SimulatedMarket`` in Polygon's exact JSON shapes, so an httpx client cannot tell the
difference. The market is deterministic by ``SimConfig``; see ``docs/simulator.md`` for the
generative model and the planted signal.
"""

from smallcaps_assets.sources.simulator.config import SimConfig
from smallcaps_assets.sources.simulator.market import SimulatedMarket
from smallcaps_assets.sources.simulator.transport import SimulatedPolygonTransport

__all__ = ["SimConfig", "SimulatedMarket", "SimulatedPolygonTransport"]
