"""The simulated Polygon API: parameters, pagination, errors, determinism, concurrency."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from datetime import date
from functools import lru_cache

import httpx
import pytest

from smallcaps_assets.sources.simulator import SimConfig, SimulatedMarket, SimulatedPolygonTransport

CONFIG = SimConfig(
    seed=5, n_tickers=60, history_start=date(2022, 1, 3), history_end=date(2023, 12, 29)
)
DAY = "2023-03-08"


@lru_cache(maxsize=1)
def market() -> SimulatedMarket:
    return SimulatedMarket(CONFIG)


def client(m: SimulatedMarket | None = None) -> httpx.Client:
    transport = SimulatedPolygonTransport(m or market())
    return httpx.Client(transport=transport, base_url="https://api.polygon.io")


def get(path: str, **params: object) -> httpx.Response:
    with client() as c:
        # An explicit (even empty) params mapping would replace a query already in ``path``.
        return c.get(path, params=params) if params else c.get(path)


def ok(path: str, **params: object) -> dict:
    response = get(path, **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def follow(path: str, **params: object) -> list[dict]:
    """Every result across the next_url chain."""
    rows: list[dict] = []
    with client() as c:
        response = c.get(path, params=params)
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            rows += body.get("results", [])
            if "next_url" not in body:
                return rows
            assert body["next_url"].startswith("https://api.polygon.io/")
            assert "apiKey" not in body["next_url"]
            response = c.get(body["next_url"])


def a_common_stock() -> str:
    listed = ok("/v3/reference/tickers", date=DAY, type="CS", market="stocks", limit=1000)[
        "results"
    ]
    return listed[0]["ticker"]


def test_ticker_pages_chain_to_the_full_list_without_repeats():
    full = ok("/v3/reference/tickers", date=DAY, limit=1000)["results"]
    paged = follow("/v3/reference/tickers", date=DAY, limit=7)
    assert [r["ticker"] for r in paged] == [r["ticker"] for r in full]
    assert [r["ticker"] for r in full] == sorted(r["ticker"] for r in full)
    first = ok("/v3/reference/tickers", date=DAY, limit=7)
    assert first["count"] == 7
    assert "next_url" in first
    descending = ok("/v3/reference/tickers", date=DAY, limit=1000, order="desc")["results"]
    assert descending == full[::-1]


def test_ticker_filters():
    etfs = ok("/v3/reference/tickers", date=DAY, type="ETF", limit=1000)["results"]
    assert etfs
    assert {r["type"] for r in etfs} == {"ETF"}
    stocks = ok("/v3/reference/tickers", date=DAY, market="stocks", limit=1000)["results"]
    assert {r["market"] for r in stocks} == {"stocks"}
    one = stocks[3]["ticker"]
    assert [r["ticker"] for r in ok("/v3/reference/tickers", date=DAY, ticker=one)["results"]] == [
        one
    ]
    above = ok("/v3/reference/tickers", date=DAY, limit=1000, **{"ticker.gte": one})["results"]
    assert all(r["ticker"] >= one for r in above)
    assert ok("/v3/reference/tickers", date="2020-06-01")["results"] == []


def test_details_are_as_of_the_date_and_404_before_listing():
    m = market()
    symbol = a_common_stock()
    details = ok(f"/v3/reference/tickers/{symbol}", date=DAY)["results"]
    tid, t = m.ticker_id(symbol), m.sessions.index_of(date.fromisoformat(DAY))
    previous_close = m.panel.close[tid, t - 1] / 1e4
    assert details["share_class_shares_outstanding"] == m.panel.shares_outstanding(tid, t)
    assert details["market_cap"] == pytest.approx(
        previous_close * details["weighted_shares_outstanding"], rel=1e-6
    )
    ipo = m.tickers().filter(m.tickers()["list_date"] > date(2022, 6, 1)).row(0, named=True)
    before = get(f"/v3/reference/tickers/{ipo['ticker']}", date="2022-05-02")
    assert before.status_code == 404
    assert before.json()["status"] == "NOT_FOUND"
    assert before.json()["message"] == "Data not found."
    assert get("/v3/reference/tickers/NOPE1", date=DAY).status_code == 404


def test_grouped_daily_holiday_and_otc():
    holiday = ok("/v2/aggs/grouped/locale/us/market/stocks/2023-07-04")
    assert holiday["resultsCount"] == 0
    assert holiday["status"] == "OK"
    assert "results" not in holiday
    plain = ok(f"/v2/aggs/grouped/locale/us/market/stocks/{DAY}", adjusted="false")
    with_otc = ok(
        f"/v2/aggs/grouped/locale/us/market/stocks/{DAY}", adjusted="false", include_otc="true"
    )
    assert with_otc["resultsCount"] > plain["resultsCount"]
    assert all("otc" not in bar for bar in plain["results"])
    assert {bar["T"] for bar in with_otc["results"] if bar.get("otc")} == {
        bar["T"] for bar in with_otc["results"]
    } - {bar["T"] for bar in plain["results"]}
    assert plain["count"] == plain["resultsCount"] == len(plain["results"])


def test_minute_bars_page_through_next_url_in_either_order():
    symbol = a_common_stock()
    path = f"/v2/aggs/ticker/{symbol}/range/1/minute/{DAY}/2023-03-09"
    whole = ok(path, adjusted="false", limit=50000)["results"]
    pages = follow(path, adjusted="false", limit=100)
    assert pages == whole
    assert len(whole) > 200
    backwards = follow(path, adjusted="false", limit=100, sort="desc")
    assert backwards == whole[::-1]
    stamps = [bar["t"] for bar in whole]
    inside = ok(
        f"/v2/aggs/ticker/{symbol}/range/1/minute/{stamps[10]}/{stamps[20]}", adjusted="false"
    )
    assert [bar["t"] for bar in inside["results"]] == stamps[10:21]


def test_coarser_bars_aggregate_the_finer_ones():
    symbol = a_common_stock()
    minutes = ok(
        f"/v2/aggs/ticker/{symbol}/range/1/minute/{DAY}/{DAY}", adjusted="false", limit=50000
    )["results"]
    hours = ok(f"/v2/aggs/ticker/{symbol}/range/1/hour/{DAY}/{DAY}", adjusted="false")["results"]
    assert sum(bar["v"] for bar in hours) == sum(bar["v"] for bar in minutes)
    assert hours[0]["o"] == minutes[0]["o"]
    assert hours[-1]["c"] == minutes[-1]["c"]
    weeks = ok(f"/v2/aggs/ticker/{symbol}/range/1/week/2023-03-01/2023-03-31", adjusted="false")[
        "results"
    ]
    days = ok(f"/v2/aggs/ticker/{symbol}/range/1/day/2023-02-26/2023-04-01", adjusted="false")[
        "results"
    ]
    assert sum(bar["v"] for bar in weeks) == sum(bar["v"] for bar in days)
    assert max(bar["h"] for bar in weeks) == max(bar["h"] for bar in days)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/v2/aggs/ticker/{T}/range/1/fortnight/2023-03-01/2023-03-08", "timespan"),
        ("/v2/aggs/ticker/{T}/range/0/day/2023-03-01/2023-03-08", "multiplier"),
        ("/v2/aggs/ticker/{T}/range/1/day/2023-03-09/2023-03-08", "from"),
        ("/v2/aggs/ticker/{T}/range/1/day/2023-13-01/2023-03-08", "from"),
        ("/v2/aggs/grouped/locale/us/market/stocks/yesterday", "date"),
        ("/v3/reference/tickers?limit=1001", "limit"),
        ("/v3/reference/tickers?active=maybe", "active"),
        ("/v3/reference/tickers?cursor=%%%", "cursor"),
        ("/v2/reference/news?published_utc.gte=last-week", "published_utc"),
        ("/vX/reference/financials?limit=101", "limit"),
    ],
)
def test_bad_parameters_get_polygons_400_shape(path, fragment):
    response = get(path.replace("{T}", a_common_stock()))
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"status", "request_id", "error"}
    assert body["status"] == "ERROR"
    assert fragment in body["error"]
    assert len(body["request_id"]) == 32


@pytest.mark.parametrize(
    "path",
    [
        "/v2/aggs/ticker/ZZZZZZ/range/1/day/2023-03-01/2023-03-08",
        "/v3/reference/tickers/ZZZZZZ",
        "/v1/open-close/AAPL/2023-03-08",
        "/v3/reference/nothing",
    ],
)
def test_unknown_things_get_polygons_404_shape(path):
    response = get(path)
    assert response.status_code == 404
    assert set(response.json()) == {"status", "request_id", "message"}
    assert response.json()["status"] == "NOT_FOUND"


def test_no_data_is_an_empty_200_without_results():
    body = ok(f"/v2/aggs/ticker/{a_common_stock()}/range/1/day/2023-03-11/2023-03-12")
    assert body["resultsCount"] == 0
    assert "results" not in body
    assert body["status"] == "OK"


def test_reference_lists_filter_and_paginate():
    splits = follow("/v3/reference/splits", limit=3)
    assert splits
    assert splits == ok("/v3/reference/splits", limit=1000)["results"]
    reverse = ok("/v3/reference/splits", limit=1000, reverse_split="true")["results"]
    assert all(s["split_from"] > s["split_to"] for s in reverse)
    one = splits[0]
    exact = ok("/v3/reference/splits", execution_date=one["execution_date"], ticker=one["ticker"])[
        "results"
    ]
    assert exact == [one]
    dividends = follow("/v3/reference/dividends", limit=4, **{"ex_dividend_date.gte": "2023-01-01"})
    assert dividends
    assert all(d["ex_dividend_date"] >= "2023-01-01" for d in dividends)
    filings = follow(
        "/vX/reference/financials",
        limit=5,
        timeframe="quarterly",
        **{"filing_date.gte": "2023-05-01", "filing_date.lte": "2023-05-19"},
    )
    assert filings
    assert all("2023-05-01" <= f["filing_date"] <= "2023-05-19" for f in filings)
    assert all(f["timeframe"] == "quarterly" for f in filings)
    news = follow(
        "/v2/reference/news", limit=50, order="asc",
        **{"published_utc.gte": "2023-03-08T05:00:00Z", "published_utc.lt": "2023-03-09T05:00:00Z"},
    )  # fmt: skip
    stamps = [a["published_utc"] for a in news]
    assert stamps == sorted(stamps)
    assert all("2023-03-08T05" <= s < "2023-03-09T05" for s in stamps)
    symbol = news[0]["tickers"][0]
    mine = ok("/v2/reference/news", ticker=symbol, limit=1000)["results"]
    assert mine
    assert all(symbol in a["tickers"] for a in mine)


def test_same_request_same_bytes_in_any_order_and_any_process():
    symbol = a_common_stock()
    requests = [
        f"/v2/aggs/ticker/{symbol}/range/1/minute/{DAY}/{DAY}?adjusted=false",
        f"/v2/aggs/grouped/locale/us/market/stocks/{DAY}",
        f"/v3/reference/tickers/{symbol}?date={DAY}",
        "/v2/reference/news?limit=20&ticker=" + symbol,
        "/vX/reference/financials?limit=3&ticker=" + symbol,
    ]
    with client(SimulatedMarket(CONFIG)) as c:
        forward = [c.get(r).content for r in requests]
    with client(SimulatedMarket(CONFIG)) as c:
        backward = [c.get(r).content for r in reversed(requests)][::-1]
    assert forward == backward
    script = textwrap.dedent(
        f"""
        import sys, httpx
        from datetime import date
        from smallcaps_assets.sources.simulator import SimConfig, SimulatedMarket, SimulatedPolygonTransport
        config = SimConfig(seed=5, n_tickers=60, history_start=date(2022, 1, 3), history_end=date(2023, 12, 29))
        transport = SimulatedPolygonTransport(SimulatedMarket(config))
        with httpx.Client(transport=transport, base_url="https://api.polygon.io") as c:
            sys.stdout.buffer.write(c.get({requests[0]!r}).content)
        """
    )
    other_process = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    assert other_process.stdout == forward[0]
    reseeded = SimConfig(
        seed=6, n_tickers=60, history_start=CONFIG.history_start, history_end=CONFIG.history_end
    )
    with client(SimulatedMarket(reseeded)) as c:
        assert c.get(requests[1]).content != forward[1]


def test_many_concurrent_async_requests_agree_with_sequential_ones():
    symbols = [r["ticker"] for r in ok("/v3/reference/tickers", date=DAY, limit=1000)["results"]]
    paths = [f"/v3/reference/tickers/{s}?date={DAY}" for s in symbols]
    paths += [f"/v2/aggs/ticker/{s}/range/1/day/2023-03-01/2023-03-10" for s in symbols[:10]]
    fresh = SimulatedMarket(CONFIG)  # its first requests race to build the panels

    async def fetch_all() -> list[bytes]:
        transport = SimulatedPolygonTransport(fresh)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.polygon.io") as c:
            responses = await asyncio.gather(*(c.get(p) for p in paths))
        return [r.content for r in responses]

    concurrent = asyncio.run(fetch_all())
    with client() as c:
        sequential = [c.get(p).content for p in paths]
    assert concurrent == sequential
    assert all(json.loads(body)["status"] == "OK" for body in concurrent)


def test_the_authorization_header_is_ignored():
    with client() as c:
        plain = c.get(f"/v3/reference/tickers?date={DAY}")
        keyed = c.get(
            f"/v3/reference/tickers?date={DAY}", headers={"Authorization": "Bearer whatever"}
        )
    assert plain.content == keyed.content
