"""The Polygon REST endpoints the raw assets call, answered from a :class:`LocalBars` folder.

Shapes follow Polygon's (``shared/fixtures/polygon``, and the simulator's ``api.py``): grouped
daily bars stamped ``t`` = 16:00 ET and without ``results`` when the session has none, custom
bars stamped at the window start, ``vw``/``n`` left out when the files carry none (real Polygon
bars sometimes lack them too), list endpoints paged with an opaque ``cursor`` in ``next_url``.

What the files cannot say is answered empty: dividends, financials and news are empty lists.
Tickers come from ``tickers.csv``; a name that prints bars but is not declared there is listed on
the sessions it printed, as a common stock with no exchange and no share count, so the universe
screen (which needs both) leaves it out. Bars are served as they are stored, unadjusted:
``adjusted=true`` is refused (400) rather than answered with different numbers.

A :class:`LocalBarsError` (a bad file) is raised out of :meth:`LocalEndpoints.handle`, not turned
into an HTTP status: a 5xx would be retried and then reported without the file's name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, time
from typing import Any, Final
from urllib.parse import quote, unquote, urlencode

import polars as pl

from smallcaps_assets.core import calendar
from smallcaps_assets.sources.local.bars import LocalBars
from smallcaps_assets.sources.rest import (
    BASE_URL,
    COMPARISONS,
    BadRequest,
    NotFound,
    Params,
    Reply,
    dumps,
    encode_cursor,
    et_midnight_utc,
    et_ms,
    parse_bound,
    parse_date,
)

__all__ = ["BASE_URL", "LocalEndpoints", "Reply"]

_NY: Final = calendar.NY


def _number(value: float) -> float | int:
    # Polygon writes whole volumes as integers (1617, not 1617.0).
    return int(value) if float(value).is_integer() else value


class LocalEndpoints:
    """Answers Polygon REST requests from local files."""

    def __init__(self, bars: LocalBars) -> None:
        self._bars = bars
        self._routes: tuple[tuple[re.Pattern[str], Callable[..., str]], ...] = (
            (re.compile(r"/v3/reference/tickers"), self._tickers),
            (re.compile(r"/v3/reference/tickers/(?P<ticker>[^/]+)"), self._ticker_details),
            (
                re.compile(r"/v2/aggs/grouped/locale/us/market/stocks/(?P<day>[^/]+)"),
                self._grouped_daily,
            ),
            (
                re.compile(
                    r"/v2/aggs/ticker/(?P<ticker>[^/]+)/range/(?P<multiplier>[^/]+)/"
                    r"(?P<timespan>[^/]+)/(?P<start>[^/]+)/(?P<end>[^/]+)"
                ),
                self._aggregates,
            ),
            (re.compile(r"/v3/reference/splits"), self._splits),
            (re.compile(r"/v3/reference/dividends"), self._nothing(count=False)),
            (re.compile(r"/vX/reference/financials"), self._nothing(count=True)),
            (re.compile(r"/v2/reference/news"), self._nothing(count=True)),
        )

    def handle(self, method: str, path: str, query: Iterable[tuple[str, str]]) -> Reply:
        items = [(k, v) for k, v in query if k != "apiKey"]
        request_id = hashlib.md5(
            f"local|{method}|{path}?{urlencode(sorted(items))}".encode(), usedforsecurity=False
        ).hexdigest()
        try:
            if method.upper() != "GET":
                raise NotFound
            for pattern, handler in self._routes:
                match = pattern.fullmatch(path)
                if match:
                    body = handler(request_id, Params.parse(items), **match.groupdict())
                    return Reply(200, body.encode())
            raise NotFound
        except NotFound:
            payload = {
                "status": "NOT_FOUND",
                "request_id": request_id,
                "message": "Data not found.",
            }
            return Reply(404, dumps(payload).encode())
        except BadRequest as exc:
            payload = {"status": "ERROR", "request_id": request_id, "error": str(exc)}
            return Reply(400, dumps(payload).encode())

    # -- reference ------------------------------------------------------------------------------
    def _last_session(self) -> date:
        sessions = self._bars.sessions()
        return sessions[-1] if sessions else calendar.previous_session(date.today())

    def _listings(self, day: date, *, active: bool) -> list[dict[str, Any]]:
        """Names listed on ``day`` (``active``) or delisted by then, as ticker rows."""
        declared = self._bars.reference_tickers()
        if active:
            alive = declared.filter(
                (pl.col("list_date").is_null() | (pl.col("list_date") <= day))
                & (pl.col("delisted_date").is_null() | (pl.col("delisted_date") > day))
            )
            rows = [self._declared_row(r, day, delisted=None) for r in alive.iter_rows(named=True)]
            known = set(declared.get_column("ticker").to_list())
            printed = self._bars.tickers_with_bars(day) if calendar.is_session(day) else set()
            rows += [self._undeclared_row(t, day) for t in sorted(printed - known)]
            return rows
        gone = declared.filter(pl.col("delisted_date") <= day)
        return [
            self._declared_row(r, day, delisted=r["delisted_date"])
            for r in gone.iter_rows(named=True)
        ]

    @staticmethod
    def _declared_row(row: dict[str, Any], day: date, delisted: date | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ticker": row["ticker"],
            "name": row["name"] or row["ticker"],
            "market": "stocks",
            "locale": "us",
        }
        if row["primary_exchange"]:
            out["primary_exchange"] = row["primary_exchange"]
        out |= {"type": row["type"], "active": delisted is None, "currency_name": "usd"}
        if row["cik"]:
            out["cik"] = row["cik"]
        if delisted is None:
            out["last_updated_utc"] = f"{day.isoformat()}T00:00:00Z"
        else:
            out["last_updated_utc"] = out["delisted_utc"] = et_midnight_utc(delisted)
        return out

    @staticmethod
    def _undeclared_row(ticker: str, day: date) -> dict[str, Any]:
        return {
            "ticker": ticker,
            "name": ticker,
            "market": "stocks",
            "locale": "us",
            "type": "CS",
            "active": True,
            "currency_name": "usd",
            "last_updated_utc": f"{day.isoformat()}T00:00:00Z",
        }

    def _tickers(self, request_id: str, params: Params) -> str:
        day = params.day("date") or self._last_session()
        active = params.boolean("active", default=True)
        limit = params.integer("limit", default=100, low=1, high=1000)
        params.choice("sort", "ticker", ("ticker",))
        descending = params.choice("order", "asc", ("asc", "desc")) == "desc"
        rows = (
            []
            if params.text("market") not in (None, "stocks")
            else self._listings(day, active=active)
        )
        for name, column in (
            ("type", "type"),
            ("exchange", "primary_exchange"),
            ("cik", "cik"),
            ("ticker", "ticker"),
        ):
            wanted = params.text(name)
            if wanted is not None:
                rows = [r for r in rows if r.get(column) == wanted]
        for op, keep in COMPARISONS.items():
            bound = params.text(f"ticker.{op}")
            if bound is not None:
                rows = [r for r in rows if keep(r["ticker"], bound)]
        rows.sort(key=lambda r: str(r["ticker"]), reverse=descending)
        return self._paged(
            request_id, params, rows, limit, path="/v3/reference/tickers", count=True
        )

    def _ticker_details(self, request_id: str, params: Params, ticker: str) -> str:
        symbol = unquote(ticker)
        day = params.day("date") or self._last_session()
        declared = self._bars.reference_tickers().filter(pl.col("ticker") == symbol)
        if declared.height:
            row = declared.row(0, named=True)
            if row["list_date"] is not None and day < row["list_date"]:
                raise NotFound  # nothing is known about a name before it lists
            delisted = row["delisted_date"]
            result = self._declared_row(
                row, day, delisted if delisted and delisted <= day else None
            )
            shares = row["shares_outstanding"]
        else:
            if not (calendar.is_session(day) and symbol in self._bars.tickers_with_bars(day)):
                raise NotFound
            result = self._undeclared_row(symbol, day)
            row = {"list_date": None}
            shares = None
        result.pop("last_updated_utc", None)
        close = self._close_before(symbol, day)
        if close is not None and shares is not None:
            # Like Polygon's: the last close before ``date`` times the shares on ``date``, so it
            # never uses the day's own close.
            result["market_cap"] = round(close * shares, 2)
        if row["list_date"] is not None:
            result["list_date"] = row["list_date"].isoformat()
        if shares is not None:
            result["share_class_shares_outstanding"] = _number(shares)
            result["weighted_shares_outstanding"] = _number(shares)
        if "delisted_utc" in result:
            result["delisted_utc"] = result.pop("delisted_utc")
        return dumps({"results": result, "status": "OK", "request_id": request_id})

    def _close_before(self, ticker: str, day: date) -> float | None:
        previous = calendar.previous_session(day)
        bars = self._bars.daily_bars(previous).filter(pl.col("ticker") == ticker)
        return float(bars.get_column("close")[0]) if bars.height else None

    def _splits(self, request_id: str, params: Params) -> str:
        limit = params.integer("limit", default=10, low=1, high=1000)
        sort = params.choice("sort", "execution_date", ("execution_date", "ticker"))
        descending = params.choice("order", "desc", ("asc", "desc")) == "desc"
        low, high = params.date_range("execution_date")
        reverse = params.optional_boolean("reverse_split")
        wanted = params.text("ticker")
        rows = []
        for split in self._bars.splits().iter_rows(named=True):
            executed: date = split["execution_date"]
            if wanted is not None and split["ticker"] != wanted:
                continue
            if (low is not None and executed < low) or (high is not None and executed > high):
                continue
            if reverse is not None and reverse != (split["split_from"] > split["split_to"]):
                continue
            rows.append(
                {
                    "execution_date": executed.isoformat(),
                    "split_from": _number(split["split_from"]),
                    "split_to": _number(split["split_to"]),
                    "ticker": split["ticker"],
                }
            )
        rows.sort(key=lambda r: (r[sort], r["ticker"]), reverse=descending)
        return self._paged(
            request_id, params, rows, limit, path="/v3/reference/splits", count=False
        )

    @staticmethod
    def _nothing(*, count: bool) -> Callable[..., str]:
        def empty(request_id: str, params: Params) -> str:
            payload: dict[str, Any] = {"results": [], "status": "OK", "request_id": request_id}
            if count:
                payload["count"] = 0
            return dumps(payload)

        return empty

    # -- bars -----------------------------------------------------------------------------------
    def _grouped_daily(self, request_id: str, params: Params, day: str) -> str:
        when = parse_date(day, "date")
        adjusted = _unadjusted(params)
        params.boolean("include_otc", default=False)  # no OTC names in local files
        bars = self._bars.daily_bars(when) if calendar.is_session(when) else None
        count = 0 if bars is None else bars.height
        envelope: dict[str, Any] = {
            "queryCount": count,
            "resultsCount": count,
            "adjusted": adjusted,
        }
        if bars is None or count == 0:
            return dumps(envelope | {"status": "OK", "request_id": request_id})
        stamp = et_ms(when, time(16))
        results = [_bar(row, stamp, ticker=row["ticker"]) for row in bars.iter_rows(named=True)]
        envelope["results"] = results
        return dumps(envelope | {"status": "OK", "request_id": request_id, "count": len(results)})

    def _aggregates(
        self,
        request_id: str,
        params: Params,
        ticker: str,
        multiplier: str,
        timespan: str,
        start: str,
        end: str,
    ) -> str:
        symbol = unquote(ticker)
        if multiplier != "1" or timespan not in ("minute", "day"):
            raise BadRequest(
                f"the local source serves 1/minute and 1/day bars only; got {multiplier}/{timespan}"
            )
        start_ms = parse_bound(start, "from", end_of_day=False)
        end_ms = parse_bound(end, "to", end_of_day=True)
        if start_ms > end_ms:
            raise BadRequest("the 'from' date must not be after the 'to' date")
        adjusted = _unadjusted(params)
        descending = params.choice("sort", "asc", ("asc", "desc")) == "desc"
        limit = params.integer("limit", default=5000, low=1, high=50000)
        first = datetime.fromtimestamp(start_ms / 1000, tz=_NY).date()
        last = datetime.fromtimestamp(end_ms / 1000, tz=_NY).date()
        rows: list[dict[str, Any]] = []
        for day in calendar.sessions(first, last):
            if timespan == "minute":
                bars = self._bars.minute_bars(day).filter(pl.col("ticker") == symbol)
                for bar in bars.iter_rows(named=True):
                    stamp = int(bar["window_start"].timestamp() * 1000)
                    if start_ms - start_ms % 60_000 <= stamp <= end_ms:
                        rows.append(_bar(bar, stamp))
            else:
                daily = self._bars.daily_bars(day).filter(pl.col("ticker") == symbol)
                rows += [_bar(bar, et_ms(day, time(0))) for bar in daily.iter_rows(named=True)]
        if descending:
            rows.reverse()
        page, rest = rows[:limit], rows[limit:]
        envelope: dict[str, Any] = {
            "ticker": symbol,
            "queryCount": len(page),
            "resultsCount": len(page),
            "adjusted": adjusted,
        }
        tail: dict[str, Any] = {"status": "OK", "request_id": request_id}
        if page:
            envelope["results"] = page
            tail["count"] = len(page)
        if rest:
            following = int(rest[0]["t"])
            bounds = f"{following}/{end}" if not descending else f"{start}/{following}"
            cursor = encode_cursor(
                {"adjusted": "false", "limit": str(limit), "sort": "desc" if descending else "asc"}
            )
            tail["next_url"] = (
                f"{BASE_URL}/v2/aggs/ticker/{quote(symbol, safe='')}/range/1/{timespan}/"
                f"{bounds}?cursor={cursor}"
            )
        return dumps(envelope | tail)

    # -- pagination -----------------------------------------------------------------------------
    def _paged(
        self,
        request_id: str,
        params: Params,
        rows: list[dict[str, Any]],
        limit: int,
        *,
        path: str,
        count: bool,
    ) -> str:
        offset = params.integer("offset", default=0, low=0, high=10**9)
        page = rows[offset : offset + limit]
        payload: dict[str, Any] = {"results": page, "status": "OK", "request_id": request_id}
        if count:
            payload["count"] = len(page)
        if offset + limit < len(rows):
            payload["next_url"] = f"{BASE_URL}{path}?cursor={params.cursor_for(offset + limit)}"
        return dumps(payload)


def _bar(row: dict[str, Any], stamp: int, *, ticker: str | None = None) -> dict[str, Any]:
    """One bar in Polygon's key order, without ``vw``/``n`` when the files have none."""
    bar: dict[str, Any] = {} if ticker is None else {"T": ticker}
    bar["v"] = _number(row["volume"])
    if row["vwap"] is not None:
        bar["vw"] = row["vwap"]
    bar |= {"o": row["open"], "c": row["close"], "h": row["high"], "l": row["low"], "t": stamp}
    if row["transactions"] is not None:
        bar["n"] = row["transactions"]
    return bar


def _unadjusted(params: Params) -> bool:
    adjusted = params.boolean("adjusted", default=True)
    if adjusted:
        raise BadRequest(
            "the local source serves bars as stored, unadjusted: ask with adjusted=false (splits "
            "from splits.csv are applied downstream, by the processed layer)"
        )
    return adjusted


# -- parameters ---------------------------------------------------------------------------------
