"""An httpx transport (sync and async) that serves Polygon's REST API from a simulated market."""

from __future__ import annotations

from smallcaps_assets.sources.rest import EndpointTransport
from smallcaps_assets.sources.simulator.api import PolygonEndpoints
from smallcaps_assets.sources.simulator.market import SimulatedMarket


class SimulatedPolygonTransport(EndpointTransport):
    """Answers requests for ``https://api.polygon.io`` (any host, really) from ``market``.

    No API key is needed: the ``Authorization`` header and an ``apiKey`` query parameter are
    ignored. Requests are answered synchronously inside the call; the market's lazy builds
    are locked, so many asyncio tasks or threads may share one transport.
    """

    def __init__(self, market: SimulatedMarket) -> None:
        self.market = market
        super().__init__(PolygonEndpoints(market))
