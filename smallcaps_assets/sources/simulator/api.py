"""Polygon's REST endpoints over a ``SimulatedMarket``: routing, parameters, pagination, JSON.

Everything here is a pure function of (market config, method, path, query): the same request
gives the same bytes in any process, whatever was asked before. ``request_id`` is a hash of the
request; ``next_url`` cursors are unpadded base64url of the normalized query plus an offset.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from urllib.parse import quote, unquote, urlencode

import numpy as np
import polars as pl

from smallcaps_assets.sources.rest import (
    BASE_URL,
    COMPARISONS,
    DATE,
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
from smallcaps_assets.sources.simulator.calendar import et_date_of_ms
from smallcaps_assets.sources.simulator.corporate import CONCEPTS, STATEMENTS, hex_id
from smallcaps_assets.sources.simulator.daily import TICKS_PER_DOLLAR
from smallcaps_assets.sources.simulator.market import SimulatedMarket
from smallcaps_assets.sources.simulator.news import render_article
from smallcaps_assets.sources.simulator.universe import Kind, branding_urls

_TIMESPANS: Final = ("minute", "hour", "day", "week", "month", "quarter", "year")


class PolygonEndpoints:
    """Answers Polygon REST requests from a simulated market."""

    def __init__(self, market: SimulatedMarket) -> None:
        self._market = market
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
            (re.compile(r"/v3/reference/dividends"), self._dividends),
            (re.compile(r"/vX/reference/financials"), self._financials),
            (re.compile(r"/v2/reference/news"), self._news),
        )
        self._static_details: dict[int, dict[str, Any]] = {}

    def handle(self, method: str, path: str, query: Iterable[tuple[str, str]]) -> Reply:
        items = [(k, v) for k, v in query if k != "apiKey"]
        seed = self._market.config.seed
        request_id = hashlib.md5(
            f"{seed}|{method}|{path}?{urlencode(sorted(items))}".encode(), usedforsecurity=False
        ).hexdigest()
        try:
            if method.upper() != "GET":
                raise NotFound
            for pattern, handler in self._routes:
                match = pattern.fullmatch(path)
                if match:
                    params = Params.parse(items)
                    body = handler(request_id, params, **match.groupdict())
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

    # -- /v3/reference/tickers ------------------------------------------------------------------
    def _tickers(self, request_id: str, params: Params) -> str:
        market = self._market
        universe, panel, sessions = market.universe, market.panel, market.sessions
        day = params.day("date") or sessions.days[-1]
        active = params.boolean("active", default=True)
        limit = params.integer("limit", default=100, low=1, high=1000)
        sort = params.choice(
            "sort",
            "ticker",
            (
                "ticker", "name", "market", "locale", "primary_exchange", "type",
                "currency_name", "cik", "composite_figi", "share_class_figi",
                "last_updated_utc", "delisted_utc",
            ),
        )  # fmt: skip
        descending = params.choice("order", "asc", ("asc", "desc")) == "desc"
        as_of = min(day, sessions.days[-1])
        t = sessions.last_on_or_before(as_of)
        delist_days = [
            sessions.days[int(d)] if d < sessions.count else None for d in panel.delist_idx
        ]
        rows = []
        for tid in range(universe.count):
            delisted_on = delist_days[tid]
            if active:
                keep = (
                    t >= 0
                    and panel.list_idx[tid] <= t
                    and (delisted_on is None or delisted_on > as_of)
                )
            else:
                keep = delisted_on is not None and delisted_on <= as_of
            if keep and self._ticker_matches(tid, params):
                rows.append(self._ticker_row(tid, as_of, delisted_on if not active else None))
        rows.sort(key=lambda r: (r.get(sort) is None, r.get(sort) or ""), reverse=descending)
        return self._paged(request_id, params, rows, limit, path="/v3/reference/tickers")

    def _ticker_matches(self, tid: int, params: Params) -> bool:
        universe = self._market.universe
        symbol = universe.symbols[tid]
        checks = (
            ("type", universe.type_code(tid)),
            ("market", universe.market(tid)),
            ("exchange", universe.exchange[tid]),
            ("cik", universe.cik[tid]),
            ("ticker", symbol),
        )
        for name, value in checks:
            wanted = params.text(name)
            if wanted is not None and wanted != value:
                return False
        for op, test in COMPARISONS.items():
            bound = params.text(f"ticker.{op}")
            if bound is not None and not test(symbol, bound):
                return False
        search = params.text("search")
        return search is None or search.lower() in f"{symbol} {universe.names[tid]}".lower()

    def _ticker_row(self, tid: int, as_of: date, delisted_on: date | None) -> dict[str, Any]:
        universe = self._market.universe
        row: dict[str, Any] = {
            "ticker": universe.symbols[tid],
            "name": universe.names[tid],
            "market": universe.market(tid),
            "locale": "us",
            "primary_exchange": universe.exchange[tid],
            "type": universe.type_code(tid),
            "active": delisted_on is None,
            "currency_name": "usd",
        }
        if universe.cik[tid] is not None:
            row["cik"] = universe.cik[tid]
        row["composite_figi"] = universe.composite_figi[tid]
        row["share_class_figi"] = universe.share_class_figi[tid]
        if delisted_on is None:
            row["last_updated_utc"] = f"{as_of.isoformat()}T00:00:00Z"
        else:
            row["last_updated_utc"] = row["delisted_utc"] = et_midnight_utc(delisted_on)
        return row

    # -- /v3/reference/tickers/{ticker} -----------------------------------------------------------
    def _ticker_details(self, request_id: str, params: Params, ticker: str) -> str:
        market = self._market
        sessions, panel = market.sessions, market.panel
        tid = market.ticker_id(unquote(ticker))
        if tid is None:
            raise NotFound
        day = params.day("date") or sessions.days[-1]
        as_of = min(day, sessions.days[-1])
        list_t = int(panel.list_idx[tid])
        # Nothing is known before the name lists (or before the simulated history begins).
        if as_of < sessions.days[list_t]:
            raise NotFound
        delist_t = int(panel.delist_idx[tid])
        delisted_on = sessions.days[delist_t] if delist_t < sessions.count else None
        active = delisted_on is None or as_of < delisted_on
        # Shares as of the day; market cap on the last close before it (in the day's basis).
        t_day = min(sessions.last_on_or_before(as_of), delist_t - 1)
        t_prev = min(sessions.last_on_or_before(as_of - timedelta(days=1)), delist_t - 1)
        pair = np.array([tid]), np.array([max(t_day, list_t)])
        shares = int(panel.shares_outstanding_pairs(*pair)[0])
        if t_prev < list_t:
            close_ticks = float(panel.previous_close(*pair)[0])
        else:
            factor_day = panel.split_factor.of(tid, pair[1][0])
            close_ticks = panel.close[tid, t_prev] * factor_day / panel.split_factor.of(tid, t_prev)
        result = dict(self._details_template(tid))
        result["active"] = active
        result["market_cap"] = round(close_ticks / TICKS_PER_DOLLAR * shares, 2)
        result["share_class_shares_outstanding"] = shares
        result["weighted_shares_outstanding"] = shares
        if not active and delisted_on is not None:
            result["delisted_utc"] = et_midnight_utc(delisted_on)
        ordered = {key: result[key] for key in _DETAILS_ORDER if key in result}
        return dumps({"results": ordered, "status": "OK", "request_id": request_id})

    def _details_template(self, tid: int) -> dict[str, Any]:
        template = self._static_details.get(tid)
        if template is not None:
            return template
        universe = self._market.universe
        template = self._ticker_row(tid, self._market.sessions.days[-1], None)
        del template["last_updated_utc"]
        template["ticker_root"] = universe.symbols[tid]
        template["list_date"] = universe.list_date[tid].isoformat()
        template["round_lot"] = 100
        template["description"] = universe.description[tid]
        template["homepage_url"] = universe.homepage[tid]
        if universe.kind[tid] != Kind.ETF:
            street, city, state, postal = universe.address[tid]
            template["address"] = {
                "address1": street,
                "city": city,
                "state": state,
                "postal_code": postal,
            }
            template["phone_number"] = universe.phone[tid]
            template["sic_code"] = universe.sic_code[tid]
            template["sic_description"] = universe.sic_description[tid]
            template["total_employees"] = int(universe.employees[tid])
            template["branding"] = branding_urls(universe.homepage[tid])
        self._static_details[tid] = template
        return template

    # -- aggregates ------------------------------------------------------------------------------
    def _grouped_daily(self, request_id: str, params: Params, day: str) -> str:
        market = self._market
        when = parse_date(day, "date")
        adjusted = params.boolean("adjusted", default=True)
        include_otc = params.boolean("include_otc", default=False)
        t = market.sessions.index_of(when)
        tids = market.listed_on(t) if t is not None else np.empty(0, dtype=np.int64)
        if not include_otc:
            tids = tids[market.universe.kind[tids] != Kind.OTC]
        envelope: dict[str, Any] = {
            "queryCount": len(tids),
            "resultsCount": len(tids),
            "adjusted": adjusted,
        }
        if len(tids) == 0 or t is None:
            return dumps(envelope | {"status": "OK", "request_id": request_id})
        frame = market.daily_bars(when, adjusted=adjusted, include_otc=include_otc)
        stamp = et_ms(when, time(16))
        results = []
        for row in frame.iter_rows(named=True):
            bar = {
                "T": row["ticker"],
                "v": row["volume"],
                "vw": row["vwap"],
                "o": row["open"],
                "c": row["close"],
                "h": row["high"],
                "l": row["low"],
                "t": stamp,
                "n": row["trades"],
            }
            if row["otc"]:
                bar["otc"] = True
            results.append(bar)
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
        market = self._market
        symbol = unquote(ticker)
        if not multiplier.isdigit() or int(multiplier) < 1:
            raise BadRequest(f"multiplier must be a positive integer, got {multiplier!r}")
        if timespan not in _TIMESPANS:
            raise BadRequest(f"timespan must be one of {', '.join(_TIMESPANS)}; got {timespan!r}")
        start_ms = parse_bound(start, "from", end_of_day=False)
        end_ms = parse_bound(end, "to", end_of_day=True)
        if start_ms > end_ms:
            raise BadRequest("the 'from' date must not be after the 'to' date")
        adjusted = params.boolean("adjusted", default=True)
        descending = params.choice("sort", "asc", ("asc", "desc")) == "desc"
        limit = params.integer("limit", default=5000, low=1, high=50000)
        tid = market.ticker_id(symbol)
        if tid is None:
            raise NotFound
        bars = self._bars(tid, int(multiplier), timespan, start_ms, end_ms, adjusted)
        if descending:
            bars = bars.reverse()
        page, rest = bars.head(limit), bars.slice(limit)
        envelope: dict[str, Any] = {
            "ticker": symbol,
            "queryCount": page.height,
            "resultsCount": page.height,
            "adjusted": adjusted,
        }
        tail: dict[str, Any] = {"status": "OK", "request_id": request_id}
        if page.height == 0:
            return dumps(envelope | tail)
        tail["count"] = page.height
        if rest.height:
            following = int(rest["t"][0])
            bounds = f"{following}/{end}" if not descending else f"{start}/{following}"
            cursor = encode_cursor(
                {
                    "adjusted": str(adjusted).lower(),
                    "limit": str(limit),
                    "sort": "desc" if descending else "asc",
                }
            )
            tail["next_url"] = (
                f"{BASE_URL}/v2/aggs/ticker/{quote(symbol, safe='')}/range/{multiplier}/"
                f"{timespan}/{bounds}?cursor={cursor}"
            )
        if market.universe.kind[tid] == Kind.OTC:
            page = page.with_columns(pl.lit(True).alias("otc"))
        head = dumps(envelope)[:-1]
        rest_json = dumps(tail)[1:]
        results = page.write_json()
        if page.get_column("n").null_count():
            # The feed leaves absent fields out rather than sending null.
            results = results.replace('"vw":null,', "").replace(',"n":null', "")
        return f'{head},"results":{results},{rest_json}'

    def _bars(
        self, tid: int, multiplier: int, timespan: str, start_ms: int, end_ms: int, adjusted: bool
    ) -> pl.DataFrame:
        """Bars (Polygon columns v, vw, o, c, h, l, t, n) with window starts in [start, end]."""
        market = self._market
        sessions, panel = market.sessions, market.panel
        first_day, last_day = et_date_of_ms(start_ms), et_date_of_ms(end_ms)
        anchor = first_day
        if timespan not in ("minute", "hour"):
            # Polygon snaps the range out to whole windows of the resolution.
            first_day = _window_start(first_day, timespan, multiplier, anchor)
            last_day = _window_end(last_day, timespan, multiplier, anchor)
        lo, hi = sessions.first_on_or_after(first_day), sessions.last_on_or_before(last_day)
        ts = np.arange(lo, hi + 1)
        ts = ts[(ts >= panel.list_idx[tid]) & (ts < panel.delist_idx[tid])]
        tids = np.full(len(ts), tid)
        factor = market.split_factors(tids, ts)
        scale = market.split_factors(tids, np.full(len(ts), sessions.count - 1)) / factor
        if not adjusted:
            scale = np.ones(len(ts))
        if timespan in ("minute", "hour"):
            bars = market.minute_bar_batch(tids, ts)
            pair = np.repeat(np.arange(len(ts)), np.diff(bars.offsets))
            keep = (bars.t >= start_ms - start_ms % 60_000) & (bars.t <= end_ms)
            per_bar = scale[pair][keep]
            frame = _bar_frame(
                bars.volume[keep] / per_bar,
                bars.vwap[keep] * per_bar,
                bars.open[keep] * per_bar,
                bars.close[keep] * per_bar,
                bars.high[keep] * per_bar,
                bars.low[keep] * per_bar,
                bars.t[keep],
                bars.trades[keep],
            )
            width_ms = multiplier * (60_000 if timespan == "minute" else 3_600_000)
            if width_ms == 60_000:
                minute_of_day = (bars.t[keep] - sessions.midnight_ms[ts][pair][keep]) // 60_000
                return _with_feed_defects(frame, tid, ~bars.regular[keep], minute_of_day >= 570)
            # Windows are aligned to New York midnight of the bar's session.
            midnight = sessions.midnight_ms[ts][pair][keep]
            window = midnight + (bars.t[keep] - midnight) // width_ms * width_ms
            return _aggregate(frame.with_columns(pl.Series("window", window)))

        vwap, trades = market.daily_vwap_and_trades(tids, ts)
        volume = (
            panel.volume_pre[tids, ts].astype(np.int64)
            + panel.volume_regular[tids, ts]
            + panel.volume_post[tids, ts]
        )
        days = [sessions.days[int(t)] for t in ts]
        frame = _bar_frame(
            volume / scale,
            vwap * scale,
            panel.open[tids, ts] * scale,
            panel.close[tids, ts] * scale,
            panel.high[tids, ts] * scale,
            panel.low[tids, ts] * scale,
            sessions.midnight_ms[ts],
            trades,
        )
        if timespan == "day" and multiplier == 1:
            return frame
        starts = [_window_start(d, timespan, multiplier, anchor) for d in days]
        window = np.array([et_ms(d, time(0)) for d in starts], dtype=np.int64)
        return _aggregate(frame.with_columns(pl.Series("window", window)))

    # -- corporate actions ------------------------------------------------------------------------
    def _splits(self, request_id: str, params: Params) -> str:
        market = self._market
        splits, days = market.panel.splits, market.sessions.days
        limit = params.integer("limit", default=10, low=1, high=1000)
        sort = params.choice("sort", "execution_date", ("execution_date", "ticker"))
        descending = params.choice("order", "desc", ("asc", "desc")) == "desc"
        lo, hi = params.date_range("execution_date")
        reverse = params.optional_boolean("reverse_split")
        wanted = params.text("ticker")
        rows = []
        for tid, t, split_from, split_to in zip(
            splits.tid, splits.t, splits.split_from, splits.split_to, strict=True
        ):
            symbol, day = market.universe.symbols[int(tid)], days[int(t)]
            if wanted is not None and symbol != wanted:
                continue
            if not _within(day, lo, hi) or (
                reverse is not None and reverse != (split_from > split_to)
            ):
                continue
            rows.append(
                {
                    "id": "E" + hex_id(market.config.seed, "split", symbol, day),
                    "execution_date": day.isoformat(),
                    "split_from": int(split_from),
                    "split_to": int(split_to),
                    "ticker": symbol,
                }
            )
        rows.sort(key=lambda r: (r[sort], r["ticker"]), reverse=descending)
        return self._paged(
            request_id, params, rows, limit, path="/v3/reference/splits", count=False
        )

    def _dividends(self, request_id: str, params: Params) -> str:
        market = self._market
        table = market.dividends_table()
        limit = params.integer("limit", default=10, low=1, high=1000)
        sort = params.choice(
            "sort",
            "ex_dividend_date",
            (
                "ex_dividend_date",
                "pay_date",
                "declaration_date",
                "record_date",
                "cash_amount",
                "ticker",
            ),
        )
        descending = params.choice("order", "desc", ("asc", "desc")) == "desc"
        lo, hi = params.date_range("ex_dividend_date")
        wanted = params.text("ticker")
        dividend_type = params.text("dividend_type")
        rows = []
        for row in table.iter_rows(named=True):
            symbol = market.universe.symbols[row["tid"]]
            if wanted is not None and symbol != wanted:
                continue
            if not _within(row["ex_dividend_date"], lo, hi) or dividend_type not in (None, "CD"):
                continue
            rows.append(
                {
                    "id": "E"
                    + hex_id(market.config.seed, "dividend", symbol, row["ex_dividend_date"]),
                    "cash_amount": row["cash_amount"],
                    "currency": "USD",
                    "declaration_date": row["declaration_date"].isoformat(),
                    "dividend_type": "CD",
                    "ex_dividend_date": row["ex_dividend_date"].isoformat(),
                    "frequency": 4,
                    "pay_date": row["pay_date"].isoformat(),
                    "record_date": row["record_date"].isoformat(),
                    "ticker": symbol,
                }
            )
        rows.sort(key=lambda r: (r[sort], r["ticker"]), reverse=descending)
        return self._paged(
            request_id, params, rows, limit, path="/v3/reference/dividends", count=False
        )

    def _financials(self, request_id: str, params: Params) -> str:
        market = self._market
        universe = market.universe
        limit = params.integer("limit", default=10, low=1, high=100)
        sort = params.choice("sort", "filing_date", ("filing_date", "period_of_report_date"))
        descending = params.choice("order", "asc", ("asc", "desc")) == "desc"
        timeframe = params.text("timeframe")
        if timeframe not in (None, "quarterly", "annual", "ttm"):
            raise BadRequest(f"timeframe must be quarterly, annual or ttm; got {timeframe!r}")
        table = market.financials_table()
        filing_lo, filing_hi = params.date_range("filing_date")
        period_lo, period_hi = params.date_range("period_of_report_date")
        conditions = [pl.lit(True)]
        for column, low, high in (
            ("filing_date", filing_lo, filing_hi),
            ("end_date", period_lo, period_hi),
        ):
            if low is not None:
                conditions.append(pl.col(column) >= low)
            if high is not None:
                conditions.append(pl.col(column) <= high)
        if timeframe is not None:
            conditions.append(pl.col("timeframe") == timeframe)
        wanted = params.text("ticker")
        if wanted is not None:
            tid = market.ticker_id(wanted)
            conditions.append(pl.col("tid") == (-1 if tid is None else tid))
        cik = params.text("cik")
        if cik is not None:
            tids = [i for i in range(universe.count) if universe.cik[i] == cik]
            conditions.append(pl.col("tid").is_in(tids))
        key = "filing_date" if sort == "filing_date" else "end_date"
        chosen = table.filter(conditions).sort([key, "tid", "timeframe"], descending=descending)
        offset = params.integer("offset", default=0, low=0, high=10**9)
        page = chosen.slice(offset, limit)
        rows = [self._filing(row) for row in page.iter_rows(named=True)]
        return self._envelope(
            request_id, params, rows, offset + limit < chosen.height, offset + limit,
            path="/vX/reference/financials", count=True,
        )  # fmt: skip

    def _filing(self, row: dict[str, Any]) -> dict[str, Any]:
        universe = self._market.universe
        tid = row["tid"]
        accession = row["accession"]
        accepted = datetime.fromtimestamp(row["acceptance_ms"] / 1000, tz=UTC)
        statements: dict[str, dict[str, Any]] = {name: {} for name in STATEMENTS}
        for concept in CONCEPTS:
            statements[concept.statement][concept.key] = {
                "label": concept.label,
                "value": float(row[concept.key]),
                "unit": concept.unit,
                "order": concept.order,
            }
        filing_url = f"{BASE_URL}/v1/reference/sec/filings/{accession}"
        return {
            "cik": universe.cik[tid],
            "company_name": universe.names[tid],
            "tickers": [universe.symbols[tid]],
            "start_date": row["start_date"].isoformat(),
            "end_date": row["end_date"].isoformat(),
            "filing_date": row["filing_date"].isoformat(),
            "acceptance_datetime": f"{accepted:%Y-%m-%dT%H:%M:%SZ}",
            "fiscal_period": row["fiscal_period"],
            "fiscal_year": row["fiscal_year"],
            "timeframe": row["timeframe"],
            "source_filing_url": filing_url,
            "source_filing_file_url": (
                f"{filing_url}/files/{universe.symbols[tid].lower()}-{row['end_date']:%Y%m%d}_htm.xml"
            ),
            "financials": statements,
        }

    # -- news -----------------------------------------------------------------------------------
    def _news(self, request_id: str, params: Params) -> str:
        market = self._market
        limit = params.integer("limit", default=10, low=1, high=1000)
        params.choice("sort", "published_utc", ("published_utc",))
        order = params.choice("order", "desc", ("asc", "desc", "ascending", "descending"))
        table = market.news_table()
        conditions = [pl.lit(True)]
        published = pl.col("published_ms")
        for op, keep in (
            ("gte", published.__ge__),
            ("gt", published.__gt__),
            ("lte", published.__le__),
            ("lt", published.__lt__),
        ):
            bound = params.text(f"published_utc.{op}")
            if bound is not None:
                conditions.append(keep(_parse_instant(bound, f"published_utc.{op}")))
        exact = params.text("published_utc")
        if exact is not None:
            if DATE.match(exact):
                day_start = _parse_instant(exact, "published_utc")
                conditions.append(
                    pl.col("published_ms").is_between(day_start, day_start + 86_399_999)
                )
            else:
                conditions.append(pl.col("published_ms") == _parse_instant(exact, "published_utc"))
        wanted = params.text("ticker")
        if wanted is not None:
            tid = market.ticker_id(wanted)
            tid = -2 if tid is None else tid
            conditions.append((pl.col("tid") == tid) | (pl.col("partner") == tid))
        chosen = table.filter(conditions)
        if order.startswith("desc"):
            chosen = chosen.reverse()
        offset = params.integer("offset", default=0, low=0, high=10**9)
        page = chosen.slice(offset, limit)
        seed = market.config.seed
        rows = [render_article(seed, row, market.universe) for row in page.iter_rows(named=True)]
        return self._envelope(
            request_id, params, rows, offset + limit < chosen.height, offset + limit,
            path="/v2/reference/news", count=True,
        )  # fmt: skip

    # -- pagination -----------------------------------------------------------------------------
    def _paged(
        self,
        request_id: str,
        params: Params,
        rows: list[dict[str, Any]],
        limit: int,
        *,
        path: str,
        count: bool = True,
    ) -> str:
        offset = params.integer("offset", default=0, low=0, high=10**9)
        page = rows[offset : offset + limit]
        return self._envelope(
            request_id,
            params,
            page,
            offset + limit < len(rows),
            offset + limit,
            path=path,
            count=count,
        )

    def _envelope(
        self,
        request_id: str,
        params: Params,
        rows: list[dict[str, Any]],
        more: bool,
        next_offset: int,
        *,
        path: str,
        count: bool,
    ) -> str:
        payload: dict[str, Any] = {"results": rows, "status": "OK", "request_id": request_id}
        if count:
            payload["count"] = len(rows)
        if more:
            payload["next_url"] = f"{BASE_URL}{path}?cursor={params.cursor_for(next_offset)}"
        return dumps(payload)


# -- parameters ---------------------------------------------------------------------------------
def _parse_instant(raw: str, name: str) -> int:
    """Epoch ms of a date (UTC midnight) or an RFC 3339 timestamp."""
    try:
        if DATE.match(raw):
            return int(
                datetime.combine(date.fromisoformat(raw), time(0), tzinfo=UTC).timestamp() * 1000
            )
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"{name} must be a date or an RFC 3339 timestamp, got {raw!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _within(day: date, low: date | None, high: date | None) -> bool:
    return (low is None or day >= low) and (high is None or day <= high)


def _window_start(day: date, timespan: str, multiplier: int, anchor: date) -> date:
    if timespan == "day":
        return anchor + timedelta(days=(day - anchor).days // multiplier * multiplier)
    if timespan == "week":
        sunday = day - timedelta(days=(day.weekday() + 1) % 7)
        first = anchor - timedelta(days=(anchor.weekday() + 1) % 7)
        return first + timedelta(weeks=(sunday - first).days // 7 // multiplier * multiplier)
    months = {"month": 1, "quarter": 3, "year": 12}[timespan] * multiplier
    index = (day.year * 12 + day.month - 1) // months * months
    return date(index // 12, index % 12 + 1, 1)


def _window_end(day: date, timespan: str, multiplier: int, anchor: date) -> date:
    """The last calendar day of the window containing ``day``."""
    start = _window_start(day, timespan, multiplier, anchor)
    if timespan == "day":
        return start + timedelta(days=multiplier - 1)
    if timespan == "week":
        return start + timedelta(weeks=multiplier) - timedelta(days=1)
    months = {"month": 1, "quarter": 3, "year": 12}[timespan] * multiplier
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1) - timedelta(days=1)


def _bar_frame(
    volume: np.ndarray,
    vwap: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    t: np.ndarray,
    trades: np.ndarray,
) -> pl.DataFrame:
    """Polygon's bar columns, prices given in ticks (already split-scaled)."""

    def dollars(ticks: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(ticks, dtype=np.float64) / TICKS_PER_DOLLAR, 4)

    return pl.DataFrame(
        {
            "v": np.round(np.asarray(volume, dtype=np.float64), 4),
            "vw": dollars(vwap),
            "o": dollars(open_),
            "c": dollars(close),
            "h": dollars(high),
            "l": dollars(low),
            "t": np.asarray(t, dtype=np.int64),
            "n": np.asarray(trades, dtype=np.int64),
        }
    )


# Real one-minute bars outside the regular session sometimes come without vw and n, and real
# post-market bars carry prints with l: 0. Shares per extended-hours bar (an estimate: the
# defects are documented by users of the feed, not counted by the vendor).
MISSING_VW_N_SHARE: Final = 0.01
ZERO_LOW_SHARE: Final = 0.003


def _bar_uniforms(tid: int, t: np.ndarray, salt: int) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per (ticker, bar start, salt): the same bar is
    served with the same defects on every request."""
    x = (t.astype(np.uint64) // np.uint64(60_000)) * np.uint64(0x9E3779B97F4A7C15)
    x ^= np.uint64((tid * 0x85EBCA77 + salt * 0xC2B2AE3D) & 0xFFFFFFFFFFFFFFFF)
    x ^= x >> np.uint64(31)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _with_feed_defects(
    frame: pl.DataFrame, tid: int, extended: np.ndarray, after_open: np.ndarray
) -> pl.DataFrame:
    """One-minute bars as the real feed sends them: some extended-hours bars lack ``vw`` and
    ``n`` (null here, left out of the JSON), some post-market bars have ``l`` 0."""
    t = frame.get_column("t").to_numpy()
    bare = extended & (_bar_uniforms(tid, t, 1) < MISSING_VW_N_SHARE)
    zero_low = extended & after_open & (_bar_uniforms(tid, t, 2) < ZERO_LOW_SHARE)
    if not bare.any() and not zero_low.any():
        return frame
    return frame.with_columns(
        pl.when(pl.Series(bare)).then(None).otherwise(pl.col("vw")).alias("vw"),
        pl.when(pl.Series(bare)).then(None).otherwise(pl.col("n")).alias("n"),
        pl.when(pl.Series(zero_low)).then(0.0).otherwise(pl.col("l")).alias("l"),
    )


def _aggregate(frame: pl.DataFrame) -> pl.DataFrame:
    """Bars of each ``window`` (rows arrive in time order, so windows come out sorted)."""
    return (
        frame.group_by("window", maintain_order=True)
        .agg(
            pl.col("v").sum(),
            ((pl.col("vw") * pl.col("v")).sum() / pl.col("v").sum()).round(4).alias("vw"),
            pl.col("o").first(),
            pl.col("c").last(),
            pl.col("h").max(),
            pl.col("l").min(),
            pl.col("n").sum(),
        )
        .rename({"window": "t"})
        .select(pl.col("v").round(4), "vw", "o", "c", "h", "l", "t", "n")
    )


_DETAILS_ORDER: Final = (
    "ticker", "name", "market", "locale", "primary_exchange", "type", "active", "currency_name",
    "cik", "composite_figi", "share_class_figi", "market_cap", "phone_number", "address",
    "description", "sic_code", "sic_description", "ticker_root", "homepage_url",
    "total_employees", "list_date", "branding", "share_class_shares_outstanding",
    "weighted_shares_outstanding", "round_lot", "delisted_utc",
)  # fmt: skip
