"""Async client for the Polygon.io REST API (the same API is also served as api.massive.com).

Design points, each of which a test pins down:

* The key travels only in ``Authorization: Bearer``. It is never put in a query string, so URLs,
  log lines and error messages built from URLs cannot leak it; Polygon text quoted in errors is
  redacted as well, in case a server ever echoes the key back.
* ``next_url`` is followed only when it points at the configured base URL's scheme, host and port,
  because following it sends the key along. Its path and query are used verbatim.
* Every HTTP attempt holds one slot of a semaphore (``max_concurrency``) and, when
  ``requests_per_second`` is set, a send slot spaced ``1 / rps`` apart that all tasks share.
  Backoff sleeps happen outside the semaphore so a throttled task does not block healthy ones.
  There is one kept-alive connection per slot, so no slot waits for or reopens a connection
  (httpx's default pool keeps only 20 alive), spread over pools of ``SHARD_CONNECTIONS``:
  httpcore walks every connection of a pool whenever a request starts or ends. Bodies are decoded with orjson: a
  full-session minute response is ~90 KB, and the standard library's decoder spent ~2.6 ms of the
  event loop on each (benchmarks/bench_ingestion.py), a third of the client's per-request CPU.
* 429, 500, 502, 503, 504, timeouts and connection errors are retried with exponential backoff
  and full jitter; a numeric ``Retry-After`` replaces the jittered delay. Everything else fails
  fast with a typed error (see ``errors.py``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from operator import attrgetter
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import orjson

from smallcaps_assets.sources.errors import (
    PolygonAuthError,
    PolygonBadRequest,
    PolygonError,
    PolygonNotEntitledError,
    PolygonNotFound,
    PolygonResponseError,
    PolygonRetryExhausted,
)

__all__ = [
    "AGGREGATE_TIMESPANS",
    "DEFAULT_BASE_URL",
    "RETRYABLE_STATUSES",
    "ClientStats",
    "NotFoundEntry",
    "ParamValue",
    "PolygonClient",
]

logger = logging.getLogger("smallcaps_assets.polygon")

DEFAULT_BASE_URL: Final = "https://api.polygon.io"
RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
AGGREGATE_TIMESPANS: Final = frozenset(
    {"second", "minute", "hour", "day", "week", "month", "quarter", "year"}
)

# Read and connect timeouts, dropped connections and half-sent responses are transient; an
# unsupported scheme or a malformed request (LocalProtocolError) is our bug and must not be retried.
_RETRYABLE_TRANSPORT_ERRORS: Final = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
# A misconfigured proxy sending "Retry-After: 86400" must not park a backfill for a day.
_MAX_RETRY_AFTER_SECONDS: Final = 300.0
# Free and delayed plans answer DELAYED instead of OK for recent data; both carry real results.
_SUCCESS_STATUSES: Final = frozenset({"OK", "DELAYED"})
_BAD_REQUEST_STATUSES: Final = frozenset({400, 409, 422})
_MAX_QUOTED_TEXT: Final = 500
_MAX_AGGREGATE_LIMIT: Final = 50_000
_NEW_YORK: Final = ZoneInfo("America/New_York")

ParamValue = str | int | float | bool
T = TypeVar("T")


@dataclass(frozen=True)
class NotFoundEntry:
    """One lookup that Polygon answered with 404 and the client skipped."""

    endpoint: str  # "ticker_details" or "aggregates"
    ticker: str
    request: str  # path and query, enough to repeat the call by hand


@dataclass
class ClientStats:
    """Counters over the client's lifetime (they survive re-entering the context manager)."""

    requests: int = 0  # HTTP attempts sent, retries included
    retries: int = 0  # attempts that were repeated after a retryable failure
    pages: int = 0  # pages read by paginate(), first pages included
    not_found: list[NotFoundEntry] = field(default_factory=list)


class _SendSpacer:
    """Spaces request starts at least ``1 / rate`` seconds apart across all tasks.

    Each caller reserves the next free slot synchronously (no await between reading and writing
    ``_next_slot``, so the event loop makes it atomic) and then sleeps until its slot.
    """

    def __init__(
        self, rate: float, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next_slot = float("-inf")

    async def wait_turn(self) -> None:
        now = self._clock()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)


# Connections per pooled httpx client. httpcore's pool walks all of its connections (for expiry,
# and quadratically for idleness) every time a request starts or ends; at 16 connections in one
# pool that walk was a third of the client's CPU per request (benchmarks/bench_ingestion.py).
SHARD_CONNECTIONS = 4


def _shard_sizes(max_concurrency: int, own_transport: bool) -> list[int]:
    """Connection-pool sizes adding up to ``max_concurrency``; one pool when the caller supplies
    the transport (its pool, if any, is the caller's)."""
    if not own_transport:
        return [max_concurrency]
    full, rest = divmod(max_concurrency, SHARD_CONNECTIONS)
    return [SHARD_CONNECTIONS] * full + ([rest] if rest else [])


@dataclass
class _Shard:
    http: httpx.AsyncClient
    in_flight: int = 0


class PolygonClient:
    """Async Polygon REST client. Use as ``async with PolygonClient(api_key=...) as client``."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        max_concurrency: int = 8,
        requests_per_second: float | None = None,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if requests_per_second is not None and requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be positive, got {requests_per_second}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be zero or more, got {max_retries}")
        if backoff_base < 0 or backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must not be negative")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        base = httpx.URL(base_url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")

        # An empty POLYGON_API_KEY is a common misconfiguration; treat it as "no key".
        self._api_key = api_key or None
        self._base_url = base
        self._transport = transport
        self._max_concurrency = max_concurrency
        self._requests_per_second = requests_per_second
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._timeout = timeout
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._spacer = (
            _SendSpacer(requests_per_second, clock, sleep) if requests_per_second else None
        )
        self._http: httpx.AsyncClient | None = None  # builds every request while open
        self._shards: list[_Shard] = []
        self._semaphore: asyncio.Semaphore | None = None
        self.stats = ClientStats()

    def __repr__(self) -> str:
        key_state = "<set>" if self._api_key else "<none>"
        return (
            f"PolygonClient(base_url={str(self._base_url)!r}, api_key={key_state}, "
            f"max_concurrency={self._max_concurrency}, "
            f"requests_per_second={self._requests_per_second})"
        )

    async def __aenter__(self) -> Self:
        if self._http is not None:
            raise RuntimeError("this PolygonClient is already open")
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        # One TLS context for all shards: loading the CA bundle costs ~45 ms each time.
        tls = httpx.create_ssl_context()
        self._shards = [
            _Shard(
                httpx.AsyncClient(
                    base_url=self._base_url,
                    headers=headers,
                    transport=self._transport,
                    verify=tls,
                    timeout=httpx.Timeout(self._timeout),
                    # Every connection of a shard is kept alive. httpx's default pool (20 kept
                    # alive) would reconnect constantly above 20 in flight: httpcore closes a
                    # connection on release whenever the pool holds more than the keep-alive
                    # limit, counting busy connections too.
                    limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                    # A redirect is never expected from the API; following one could carry the
                    # key away.
                    follow_redirects=False,
                )
            )
            for size in _shard_sizes(self._max_concurrency, self._transport is None)
        ]
        self._http = self._shards[0].http
        # Created here rather than in __init__ so the semaphore binds to the running event loop.
        self._semaphore = asyncio.Semaphore(self._max_concurrency)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        shards, self._shards, self._http = self._shards, [], None
        for shard in shards:
            await shard.http.aclose()

    # -- generic access -------------------------------------------------------------------------
    async def get_json(
        self, path: str, params: Mapping[str, ParamValue] | None = None
    ) -> dict[str, Any]:
        """One GET (with retries) returning the decoded JSON object of a successful response."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        return await self._get(path, params, endpoint=path.split("?", 1)[0])

    async def paginate(
        self, path: str, params: Mapping[str, ParamValue] | None = None
    ) -> list[dict[str, Any]]:
        """All ``results`` rows across the ``next_url`` chain that starts at ``path``."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        endpoint = path.split("?", 1)[0]
        rows: list[dict[str, Any]] = []
        target: str | httpx.URL = path
        query: Mapping[str, ParamValue] | None = params
        followed: set[str] = set()
        while True:
            body = await self._get(target, query, endpoint=endpoint)
            self.stats.pages += 1
            rows.extend(_results_rows(body, endpoint))
            next_url = body.get("next_url")
            if not next_url:
                return rows
            if not isinstance(next_url, str):
                raise PolygonResponseError(
                    f"{endpoint} returned a next_url that is not a string", endpoint=endpoint
                )
            target = self._same_origin(next_url, endpoint)
            query = None
            # A cursor that leads back to a page already read would loop forever.
            marker = target.raw_path.decode("ascii", errors="replace")
            if marker in followed:
                raise PolygonResponseError(
                    f"{endpoint} pagination loops: next_url repeats a page already read",
                    endpoint=endpoint,
                )
            followed.add(marker)

    async def gather(self, coros: Iterable[Awaitable[T]]) -> list[T]:
        """Run many client calls concurrently and return their results in input order.

        Every request inside them passes through the client's semaphore and rate limit, so this
        is safe for thousands of calls. On the first failure the remaining calls are cancelled
        and that failure is raised as is (not wrapped in an ExceptionGroup).
        """
        tasks = [asyncio.ensure_future(coro) for coro in coros]
        if not tasks:
            return []
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # -- endpoints ------------------------------------------------------------------------------
    async def tickers(
        self, day: date, *, active: bool, **filters: ParamValue
    ) -> list[dict[str, Any]]:
        """Tickers listed on ``day`` (``active=False`` gives those delisted by then).

        Defaults to US stocks; any Polygon filter (``type="CS"``, ``exchange="XNAS"``, and
        dotted ones via ``**{"ticker.gte": "A"}``) can be added or override a default.
        """
        params: dict[str, ParamValue] = {
            "market": "stocks",
            "date": day.isoformat(),
            "active": active,
            "order": "asc",
            "sort": "ticker",
            "limit": 1000,
        }
        params.update(filters)
        return await self.paginate("/v3/reference/tickers", params)

    async def ticker_details(self, ticker: str, day: date) -> dict[str, Any] | None:
        """Point-in-time details of ``ticker`` on ``day``; None (and counted) when unknown."""
        path = f"/v3/reference/tickers/{_path_segment(ticker)}"
        params = {"date": day.isoformat()}
        try:
            body = await self.get_json(path, params)
        except PolygonNotFound:
            self._skip_not_found("ticker_details", ticker, f"{path}?date={params['date']}")
            return None
        results = body.get("results")
        if results is None:
            self._skip_not_found("ticker_details", ticker, f"{path}?date={params['date']}")
            return None
        if not isinstance(results, dict):
            raise PolygonResponseError(
                f"{path} returned 'results' of type {type(results).__name__}, expected an object",
                endpoint=path,
            )
        return results

    async def grouped_daily(
        self, day: date, *, adjusted: bool = False, include_otc: bool = False
    ) -> list[dict[str, Any]]:
        """One daily bar per US stock for session ``day`` (empty on non-sessions)."""
        path = f"/v2/aggs/grouped/locale/us/market/stocks/{day.isoformat()}"
        body = await self.get_json(path, {"adjusted": adjusted, "include_otc": include_otc})
        return _results_rows(body, path)

    async def aggregates(
        self,
        ticker: str,
        multiplier: int,
        timespan: str,
        start: date | int,
        end: date | int,
        *,
        adjusted: bool = False,
        limit: int = _MAX_AGGREGATE_LIMIT,
    ) -> list[dict[str, Any]] | None:
        """Custom bars for ``ticker`` from ``start`` to ``end`` (both inclusive; a date or epoch
        milliseconds), ascending, across all pages; None (and counted) on 404."""
        if isinstance(multiplier, bool) or multiplier < 1:
            raise ValueError(f"multiplier must be a positive integer, got {multiplier!r}")
        if timespan not in AGGREGATE_TIMESPANS:
            raise ValueError(
                f"timespan must be one of {sorted(AGGREGATE_TIMESPANS)}, got {timespan!r}"
            )
        if not 1 <= limit <= _MAX_AGGREGATE_LIMIT:
            raise ValueError(f"limit must be within 1..{_MAX_AGGREGATE_LIMIT}, got {limit}")
        path = (
            f"/v2/aggs/ticker/{_path_segment(ticker)}/range/{multiplier}/{timespan}/"
            f"{_aggregate_bound(start)}/{_aggregate_bound(end)}"
        )
        try:
            return await self.paginate(path, {"adjusted": adjusted, "sort": "asc", "limit": limit})
        except PolygonNotFound:
            self._skip_not_found("aggregates", ticker, path)
            return None

    async def splits(self, execution_date: date) -> list[dict[str, Any]]:
        """Splits executing on ``execution_date``."""
        params: dict[str, ParamValue] = {
            "execution_date": execution_date.isoformat(),
            "limit": 1000,
        }
        return await self.paginate("/v3/reference/splits", params)

    async def dividends(self, ex_dividend_date: date) -> list[dict[str, Any]]:
        """Dividends going ex on ``ex_dividend_date``."""
        params: dict[str, ParamValue] = {
            "ex_dividend_date": ex_dividend_date.isoformat(),
            "limit": 1000,
        }
        return await self.paginate("/v3/reference/dividends", params)

    async def financials(self, filing_date: date) -> list[dict[str, Any]]:
        """Quarterly filings that reached EDGAR on ``filing_date``."""
        params: dict[str, ParamValue] = {
            "filing_date": filing_date.isoformat(),
            "timeframe": "quarterly",
            "order": "asc",
            "sort": "filing_date",
            "limit": 100,
        }
        return await self.paginate("/vX/reference/financials", params)

    async def news(self, day: date) -> list[dict[str, Any]]:
        """Articles published on calendar day ``day`` in New York time (DST-aware)."""
        start, end = _new_york_day_bounds(day)
        params: dict[str, ParamValue] = {
            "published_utc.gte": start,
            "published_utc.lt": end,
            "order": "asc",
            "sort": "published_utc",
            "limit": 1000,
        }
        return await self.paginate("/v2/reference/news", params)

    # -- internals ------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "<redacted>")
        return text

    def _skip_not_found(self, endpoint: str, ticker: str, request: str) -> None:
        self.stats.not_found.append(NotFoundEntry(endpoint, ticker, request))
        logger.debug("%s: Polygon has no data for %s (%s)", endpoint, ticker, request)

    def _same_origin(self, next_url: str, endpoint: str) -> httpx.URL:
        try:
            url = httpx.URL(next_url)
        except httpx.InvalidURL as exc:
            raise PolygonResponseError(
                f"{endpoint} returned an unparsable next_url", endpoint=endpoint
            ) from exc
        if not url.is_relative_url:
            base = self._base_url
            # httpx drops default ports, so "api.polygon.io:443" compares equal to the base URL.
            same = (url.scheme, url.host.lower(), url.port) == (
                base.scheme,
                base.host.lower(),
                base.port,
            )
            if not same:
                raise PolygonResponseError(
                    f"refusing to follow next_url from {endpoint} to {url.scheme}://{url.host}"
                    f"{'' if url.port is None else f':{url.port}'}: it is not the configured base "
                    f"URL {base.scheme}://{base.host}, and following it would send the API key there",
                    endpoint=endpoint,
                )
        elif not url.raw_path.startswith(b"/"):
            raise PolygonResponseError(
                f"{endpoint} returned a next_url that is neither absolute nor rooted",
                endpoint=endpoint,
            )
        return self._base_url.copy_with(raw_path=url.raw_path)

    def _backoff_delay(self, attempt: int) -> float:
        # Full jitter (uniform between 0 and the exponential cap) spreads out tasks that were
        # throttled together, so they do not come back as one burst.
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** min(attempt - 1, 60))
        return self._rng.uniform(0.0, ceiling)

    async def _get(
        self,
        url: str | httpx.URL,
        params: Mapping[str, ParamValue] | None,
        *,
        endpoint: str,
    ) -> dict[str, Any]:
        http = self._http
        if http is None:
            raise RuntimeError("PolygonClient is not open; use `async with PolygonClient(...)`")
        encoded = _encode_params(params)
        # httpx *replaces* a URL's query with `params=` (even an empty mapping), which would drop
        # a next_url cursor, so merge explicitly and only when there is something to add.
        if encoded:
            url = httpx.URL(url).copy_merge_params(encoded)
        request = http.build_request("GET", url)
        target = self._redact(request.url.raw_path.decode("ascii", errors="replace"))
        attempts = self._max_retries + 1
        last_status: int | None = None
        last_failure = ""
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            try:
                response = await self._send_once(http, request, target)
            except _RETRYABLE_TRANSPORT_ERRORS as exc:
                last_status, last_failure = None, type(exc).__name__
            else:
                if response.status_code not in RETRYABLE_STATUSES:
                    return self._decode(response, endpoint)
                last_status = response.status_code
                last_failure = f"HTTP {response.status_code}"
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if attempt == attempts:
                break
            delay = retry_after if retry_after is not None else self._backoff_delay(attempt)
            self.stats.retries += 1
            logger.info(
                "GET %s failed (%s); retry %d of %d in %.2f s",
                endpoint,
                last_failure,
                attempt,
                self._max_retries,
                delay,
            )
            await self._sleep(delay)
        logger.warning("GET %s gave up after %d attempts (%s)", endpoint, attempts, last_failure)
        raise PolygonRetryExhausted(
            f"gave up on {endpoint} after {attempts} attempts; last failure: {last_failure}",
            endpoint=endpoint,
            attempts=attempts,
            last_status=last_status,
            last_failure=last_failure,
        )

    async def _send_once(
        self, http: httpx.AsyncClient, request: httpx.Request, target: str
    ) -> httpx.Response:
        semaphore = self._semaphore
        assert semaphore is not None  # set together with self._http in __aenter__
        async with semaphore:
            # Wait for the rate slot while holding the concurrency slot: reserving a rate slot and
            # then queueing on the semaphore would let slots expire and requests bunch up.
            if self._spacer is not None:
                await self._spacer.wait_turn()
            self.stats.requests += 1
            # The shard with the fewest requests in flight has a free connection: the semaphore
            # admits no more requests than the shards hold connections.
            shard = min(self._shards, key=attrgetter("in_flight"))
            shard.in_flight += 1
            started = time.perf_counter()
            try:
                response = await shard.http.send(request)
            except _RETRYABLE_TRANSPORT_ERRORS as exc:
                logger.debug(
                    "GET %s -> %s after %.1f ms",
                    target,
                    type(exc).__name__,
                    (time.perf_counter() - started) * 1000,
                )
                raise
            finally:
                shard.in_flight -= 1
        logger.debug(
            "GET %s -> %d in %.1f ms",
            target,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    def _decode(self, response: httpx.Response, endpoint: str) -> dict[str, Any]:
        status = response.status_code
        if 200 <= status < 300:
            return self._decode_success(response, endpoint)
        message, request_id = self._error_details(response)
        detail = f": {message}" if message else ""
        error_type: type[PolygonError]
        if status == 401:
            error_type = PolygonAuthError
            hint = (
                "check POLYGON_API_KEY"
                if self._api_key
                else "no API key is configured; set POLYGON_API_KEY"
            )
            text = f"Polygon rejected the credentials for {endpoint} (HTTP 401){detail}; {hint}"
        elif status == 403:
            error_type = PolygonNotEntitledError
            text = f"the Polygon plan is not entitled to {endpoint} (HTTP 403){detail}"
        elif status == 404:
            error_type = PolygonNotFound
            text = f"Polygon has nothing at {endpoint} (HTTP 404){detail}"
        elif status in _BAD_REQUEST_STATUSES:
            error_type = PolygonBadRequest
            text = f"Polygon rejected the request to {endpoint} (HTTP {status}){detail}"
        else:
            error_type = PolygonResponseError
            text = f"unexpected HTTP {status} from {endpoint}{detail}"
        raise error_type(
            text,
            endpoint=endpoint,
            status_code=status,
            polygon_message=message,
            request_id=request_id,
        )

    def _decode_success(self, response: httpx.Response, endpoint: str) -> dict[str, Any]:
        status = response.status_code
        try:
            body = orjson.loads(response.content)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            # A complete 200 response with a broken body will not improve on retry; a body cut
            # off in transit surfaces as httpx.RemoteProtocolError instead and is retried.
            raise PolygonResponseError(
                f"{endpoint} returned HTTP {status} with a body that is not valid JSON "
                f"({len(response.content)} bytes)",
                endpoint=endpoint,
                status_code=status,
            ) from exc
        if not isinstance(body, dict):
            raise PolygonResponseError(
                f"{endpoint} returned a JSON {type(body).__name__} where an object was expected",
                endpoint=endpoint,
                status_code=status,
            )
        request_id = body.get("request_id") if isinstance(body.get("request_id"), str) else None
        if "status" not in body:
            raise PolygonResponseError(
                f"{endpoint} returned an object without a 'status' field",
                endpoint=endpoint,
                status_code=status,
                request_id=request_id,
            )
        if body["status"] not in _SUCCESS_STATUSES:
            message = _quoted_message(body)
            message = self._redact(message) if message else None
            raise PolygonResponseError(
                f"{endpoint} answered HTTP {status} with status {str(body['status'])[:40]!r}"
                + (f": {message}" if message else ""),
                endpoint=endpoint,
                status_code=status,
                polygon_message=message,
                request_id=request_id,
            )
        return body

    def _error_details(self, response: httpx.Response) -> tuple[str | None, str | None]:
        """Polygon's explanation and request id from an error response, redacted and bounded."""
        try:
            body = orjson.loads(response.content)
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = _quoted_message(body)
            request_id = body.get("request_id")
            return (
                self._redact(message) if message else None,
                request_id if isinstance(request_id, str) else None,
            )
        text = response.content.decode("utf-8", errors="replace").strip()
        return (self._redact(text[:_MAX_QUOTED_TEXT]) if text else None), None


def _quoted_message(body: Mapping[str, Any]) -> str | None:
    # ERROR bodies explain themselves under "error"; NOT_AUTHORIZED and NOT_FOUND under "message".
    for key in ("error", "message"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value[:_MAX_QUOTED_TEXT]
    return None


def _results_rows(body: Mapping[str, Any], endpoint: str) -> list[dict[str, Any]]:
    # "No data" is a 200 without "results" (older responses sent null): an empty page.
    results = body.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise PolygonResponseError(
            f"{endpoint} returned 'results' of type {type(results).__name__}, expected a list",
            endpoint=endpoint,
        )
    # One pass in C over the types; a minute page holds up to 50,000 rows.
    if set(map(type, results)) <= {dict}:
        return results
    for index, row in enumerate(results):
        if not isinstance(row, dict):
            raise PolygonResponseError(
                f"{endpoint} returned a result at index {index} that is a "
                f"{type(row).__name__}, expected an object",
                endpoint=endpoint,
            )
    return results


def _encode_params(params: Mapping[str, ParamValue] | None) -> dict[str, str]:
    encoded: dict[str, str] = {}
    for name, value in (params or {}).items():
        if name.lower() == "apikey":
            raise ValueError(
                "the API key is sent in the Authorization header and must never be a query "
                "parameter; pass it as PolygonClient(api_key=...)"
            )
        if isinstance(value, bool):
            encoded[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            encoded[name] = str(value)
        else:
            raise TypeError(
                f"query parameter {name!r} must be str, int, float or bool, "
                f"got {type(value).__name__}"
            )
    return encoded


def _retry_after_seconds(header: str | None) -> float | None:
    """Delay in seconds from a ``Retry-After`` header; None when absent or not a number.

    The HTTP-date form is not supported: Polygon is not known to send it, and without a trusted
    clock the jittered backoff is the better fallback.
    """
    if header is None:
        return None
    try:
        seconds = float(header.strip())
    except ValueError:
        return None
    if not seconds >= 0:  # also rejects NaN
        return None
    return min(seconds, _MAX_RETRY_AFTER_SECONDS)


def _path_segment(ticker: str) -> str:
    if not ticker or ticker in (".", ".."):
        raise ValueError(f"not a ticker: {ticker!r}")
    return quote(ticker, safe="")


def _aggregate_bound(value: date | int) -> str:
    # datetime is a date subclass, but its isoformat() would put a time into the URL path.
    if isinstance(value, datetime | bool):
        raise TypeError(f"expected a date or epoch milliseconds, got {value!r}")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"epoch milliseconds must not be negative, got {value}")
        return str(value)
    raise TypeError(f"expected a date or epoch milliseconds, got {type(value).__name__}")


def _new_york_day_bounds(day: date) -> tuple[str, str]:
    """RFC 3339 UTC instants of 00:00 New York time on ``day`` and on the next day."""

    def midnight_utc(d: date) -> str:
        local = datetime.combine(d, time_of_day(0), tzinfo=_NEW_YORK)
        return local.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")

    return midnight_utc(day), midnight_utc(day + timedelta(days=1))
