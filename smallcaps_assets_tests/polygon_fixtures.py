"""Test helpers for the Polygon source: the shared response fixtures and a scriptable fake API.

The fixtures live in the shared workspace next to the project (``../shared/fixtures/polygon``)
and are read in place, never copied. Tests that need them skip with a clear reason when the
folder is absent; tests built from synthetic bodies run everywhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

FIXTURES_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "polygon"
BASE_URL = "https://api.polygon.io"


def fixtures_dir() -> Path:
    """The Polygon fixture folder, or skip the calling test when it is not there."""
    if not FIXTURES_ROOT.is_dir():
        pytest.skip(
            f"Polygon response fixtures not found at {FIXTURES_ROOT} "
            "(they live in the shared workspace next to the project, not in the repository)"
        )
    return FIXTURES_ROOT


def load_fixture(relative: str) -> dict[str, Any]:
    """A fixture file (``recorded/...`` or ``spec_examples/...``) as decoded JSON."""
    payload = json.loads((fixtures_dir() / relative).read_text(encoding="utf-8"))
    assert isinstance(payload, dict), f"{relative} is not a JSON object"
    return payload


def fixture_results(relative: str) -> list[dict[str, Any]]:
    results = load_fixture(relative)["results"]
    return results if isinstance(results, list) else [results]


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer; a fresh httpx.Response is built for every request."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_reply(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), dict(headers or {}))


def ok(results: Any = None, **extra: Any) -> Reply:
    """A minimal successful Polygon envelope."""
    payload: dict[str, Any] = {"status": "OK", "request_id": "test", **extra}
    if results is not None:
        payload["results"] = results
    return json_reply(payload)


def fixture_reply(relative: str) -> Reply:
    return Reply(
        200, (fixtures_dir() / relative).read_bytes(), {"content-type": "application/json"}
    )


# What a route answers, in order: a Reply, or a transport error class raised for the request.
Step = Reply | type[httpx.TransportError]


@dataclass
class _Route:
    path: str
    query: dict[str, str]
    steps: list[Step]
    served: int = 0


class FakePolygon:
    """An ``httpx.MockTransport`` that answers like Polygon from scripted steps.

    A route matches on the exact path plus a subset of query parameters (the most specific match
    wins). Its steps are served in order and the last one repeats, so ``[429, 429, ok]`` is a
    burst then recovery. Every request is recorded; an unrouted request fails the test loudly
    instead of silently returning a 404.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._routes: list[_Route] = []
        self.transport = httpx.MockTransport(self._handle)

    def route(self, path: str, *steps: Step, query: Mapping[str, str] | None = None) -> None:
        assert steps, "a route needs at least one step"
        self._routes.append(_Route(path, dict(query or {}), list(steps)))

    def route_fixture(
        self, path: str, relative: str, *, query: Mapping[str, str] | None = None
    ) -> None:
        self.route(path, fixture_reply(relative), query=query)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = dict(request.url.params)
        candidates = [
            route
            for route in self._routes
            if route.path == request.url.path and route.query.items() <= params.items()
        ]
        if not candidates:
            raise AssertionError(f"FakePolygon has no route for {request.url}")
        route = max(candidates, key=lambda candidate: len(candidate.query))
        step = route.steps[min(route.served, len(route.steps) - 1)]
        route.served += 1
        if isinstance(step, Reply):
            return httpx.Response(
                step.status, content=step.body, headers=dict(step.headers), request=request
            )
        raise step("simulated transport failure", request=request)


class RecordingSleep:
    """An injectable ``sleep`` that records the requested delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)  # still yield, as a real sleep would
