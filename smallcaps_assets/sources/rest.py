"""Serving Polygon's REST API from data the process holds: what every such source shares.

The simulated market and the local-files source answer the same URLs in the same shapes; the
query parameters, their validation, pagination cursors and error bodies are one mechanism here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl, urlencode

import httpx

from smallcaps_assets.core.calendar import NY

BASE_URL: Final = "https://api.polygon.io"
DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MS: Final = re.compile(r"^\d{1,15}$")
_PAGING: Final = frozenset({"cursor", "apiKey", "offset"})
_JSON_HEADERS: Final = (("content-type", "application/json; charset=utf-8"),)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


class BadRequest(Exception):
    """A parameter Polygon would refuse, or one this source cannot honour (400)."""


class NotFound(Exception):
    """Unknown route or entity (404)."""


def dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def et_ms(day: date, clock: time) -> int:
    """Epoch milliseconds of ``clock`` New York time on ``day``."""
    return int(datetime.combine(day, clock, tzinfo=NY).timestamp() * 1000)


def et_midnight_utc(day: date) -> str:
    moment = datetime.combine(day, time(0), tzinfo=NY).astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


class Endpoints(Protocol):
    def handle(self, method: str, path: str, query: list[tuple[str, str]]) -> Reply: ...


class EndpointTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """An httpx transport (sync and async) answering every request from ``endpoints`` inside the
    call: no I/O, no API key read, shareable by many asyncio tasks or threads."""

    def __init__(self, endpoints: Endpoints) -> None:
        self._endpoints = endpoints

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        reply = self._endpoints.handle(
            request.method, request.url.path, request.url.params.multi_items()
        )
        return httpx.Response(
            reply.status, headers=_JSON_HEADERS, content=reply.body, request=request
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self.handle_request(request)


COMPARISONS: Final[dict[str, Callable[[str, str], bool]]] = {
    "gte": lambda value, bound: value >= bound,
    "gt": lambda value, bound: value > bound,
    "lte": lambda value, bound: value <= bound,
    "lt": lambda value, bound: value < bound,
}


@dataclass(frozen=True)
class Params:
    values: dict[str, str]

    @staticmethod
    def parse(items: list[tuple[str, str]]) -> Params:
        values: dict[str, str] = {}
        for key, value in items:
            values.setdefault(key, value)
        cursor = values.get("cursor")
        if cursor is None:
            return Params(values)
        try:
            decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise BadRequest("invalid cursor") from exc
        restored = dict(parse_qsl(decoded, keep_blank_values=True))
        if not restored:
            raise BadRequest("invalid cursor")
        return Params(restored)

    def cursor_for(self, offset: int) -> str:
        state = {k: v for k, v in self.values.items() if k not in _PAGING}
        state["offset"] = str(offset)
        return encode_cursor(state)

    def text(self, name: str) -> str | None:
        return self.values.get(name)

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.optional_boolean(name)
        return default if value is None else value

    def optional_boolean(self, name: str) -> bool | None:
        raw = self.values.get(name)
        if raw is None:
            return None
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise BadRequest(f"{name} must be true or false, got {raw!r}")

    def integer(self, name: str, *, default: int, low: int, high: int) -> int:
        raw = self.values.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise BadRequest(f"{name} must be an integer within {low}..{high}, got {raw!r}")
        return int(raw)

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        raw = self.values.get(name, default)
        if raw not in allowed:
            raise BadRequest(f"{name} must be one of {', '.join(allowed)}; got {raw!r}")
        return raw

    def day(self, name: str) -> date | None:
        raw = self.values.get(name)
        return None if raw is None else parse_date(raw, name)

    def date_range(self, field: str) -> tuple[date | None, date | None]:
        """Inclusive bounds from ``field`` and its ``.gte/.gt/.lte/.lt`` variants."""
        low: date | None = None
        high: date | None = None
        exact = self.day(field)
        if exact is not None:
            low = high = exact
        for op, shift, is_low in (
            ("gte", 0, True),
            ("gt", 1, True),
            ("lte", 0, False),
            ("lt", -1, False),
        ):
            bound = self.day(f"{field}.{op}")
            if bound is None:
                continue
            bound += timedelta(days=shift)
            if is_low:
                low = bound if low is None else max(low, bound)
            else:
                high = bound if high is None else min(high, bound)
        return low, high


def encode_cursor(state: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(urlencode(sorted(state.items())).encode()).decode().rstrip("=")


def parse_date(raw: str, name: str) -> date:
    if not DATE.match(raw):
        raise BadRequest(f"{name} must be a date formatted YYYY-MM-DD, got {raw!r}")
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise BadRequest(f"{name} is not a valid date: {raw!r}") from exc


def parse_bound(raw: str, name: str, *, end_of_day: bool) -> int:
    """A custom-bars bound: epoch milliseconds, or a New York date (whole day, inclusive)."""
    if _MS.match(raw) and not DATE.match(raw):
        return int(raw)
    day = parse_date(raw, name)
    if end_of_day:
        return et_ms(day + timedelta(days=1), time(0)) - 1
    return et_ms(day, time(0))
