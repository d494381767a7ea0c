"""An httpx transport (sync and async) that serves Polygon's REST API from local bar files."""

from __future__ import annotations

import httpx

from smallcaps_assets.sources.local.api import LocalEndpoints
from smallcaps_assets.sources.local.bars import LocalBars

_JSON_HEADERS = (("content-type", "application/json; charset=utf-8"),)


class LocalPolygonTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """Answers requests for ``https://api.polygon.io`` (any host, really) from ``bars``.

    Mirrors the simulator's transport: no API key is needed or read, requests are answered inside
    the call, and one transport may be shared by many asyncio tasks or threads (``LocalBars``
    locks its lazy reads). A bad file raises :class:`LocalBarsError` out of the request.
    """

    def __init__(self, bars: LocalBars) -> None:
        self.bars = bars
        self._endpoints = LocalEndpoints(bars)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        reply = self._endpoints.handle(
            request.method, request.url.path, request.url.params.multi_items()
        )
        return httpx.Response(
            reply.status, headers=_JSON_HEADERS, content=reply.body, request=request
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self.handle_request(request)
