"""An httpx transport (sync and async) that serves Polygon's REST API from a simulated market."""

from __future__ import annotations

import httpx

from smallcaps_assets.sources.simulator.api import PolygonEndpoints
from smallcaps_assets.sources.simulator.market import SimulatedMarket

_JSON_HEADERS = (("content-type", "application/json; charset=utf-8"),)


class SimulatedPolygonTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """Answers requests for ``https://api.polygon.io`` (any host, really) from ``market``.

    No API key is needed: the ``Authorization`` header and an ``apiKey`` query parameter are
    ignored. Requests are answered synchronously inside the call; the market's lazy builds
    are locked, so many asyncio tasks or threads may share one transport.
    """

    def __init__(self, market: SimulatedMarket) -> None:
        self.market = market
        self._endpoints = PolygonEndpoints(market)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        reply = self._endpoints.handle(
            request.method, request.url.path, request.url.params.multi_items()
        )
        return httpx.Response(
            reply.status, headers=_JSON_HEADERS, content=reply.body, request=request
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self.handle_request(request)
