"""An httpx transport (sync and async) that serves Polygon's REST API from local bar files."""

from __future__ import annotations

from smallcaps_assets.sources.local.api import LocalEndpoints
from smallcaps_assets.sources.local.bars import LocalBars
from smallcaps_assets.sources.rest import EndpointTransport


class LocalPolygonTransport(EndpointTransport):
    """Answers requests for ``https://api.polygon.io`` (any host, really) from ``bars``.

    Like the simulator's transport: no API key is needed or read, requests are answered inside
    the call, and one transport may be shared by many asyncio tasks or threads (``LocalBars``
    locks its lazy reads). A bad file raises :class:`LocalBarsError` out of the request.
    """

    def __init__(self, bars: LocalBars) -> None:
        self.bars = bars
        super().__init__(LocalEndpoints(bars))
