"""PolygonClient against recorded Polygon responses and injected faults.

No test touches the network or really sleeps: a FakePolygon transport answers from the shared
fixtures or scripted replies, and ``sleep`` / ``clock`` are injected.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import random
import traceback
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

import httpx
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smallcaps_assets.sources import parsers
from smallcaps_assets.sources.errors import (
    PolygonAuthError,
    PolygonBadRequest,
    PolygonError,
    PolygonNotEntitledError,
    PolygonNotFound,
    PolygonResponseError,
    PolygonRetryExhausted,
    PolygonSchemaError,
)
from smallcaps_assets.sources.polygon import (
    SHARD_CONNECTIONS,
    NotFoundEntry,
    PolygonClient,
    _shard_sizes,
)
from smallcaps_assets_tests.polygon_fixtures import (
    BASE_URL,
    FakePolygon,
    RecordingSleep,
    Reply,
    Step,
    json_reply,
    load_fixture,
    ok,
)

KEY = "pk_live_SECRET_7f3a9c1e5b"
TICKERS_PAGE1 = "recorded/v3_reference_tickers__page1.json"
TICKERS_PAGE2 = "recorded/v3_reference_tickers__cursor_page2.json"
NEWS_PAGE1 = "spec_examples/spec_v2_reference_news.json"
NEWS_PAGE2 = "recorded/v2_reference_news__ticker=NFLX.json"
AGGS_PAGE1 = "spec_examples/spec_v2_aggs_ticker_range.json"
AGGS_PAGE2 = "recorded/v2_aggs_ticker_AAPL_range_1_day_2005-04-01_2005-04-04.json"

ClientCall = Callable[[PolygonClient], Awaitable[Any]]


class MaxJitter(random.Random):
    """Makes full jitter deterministic: uniform(0, cap) returns the cap."""

    def random(self) -> float:
        return 1.0


def make_client(fake: FakePolygon, *, api_key: str | None = KEY, **options: Any) -> PolygonClient:
    options.setdefault("sleep", RecordingSleep())
    options.setdefault("rng", MaxJitter())
    return PolygonClient(api_key=api_key, transport=fake.transport, **options)


def run(client: PolygonClient, call: ClientCall) -> Any:
    async def scenario() -> Any:
        async with client:
            return await call(client)

    return asyncio.run(scenario())


def next_page(relative: str) -> tuple[str, dict[str, str]]:
    """Path and query of a fixture's next_url, to route the page that follows it."""
    url = httpx.URL(load_fixture(relative)["next_url"])
    return url.path, dict(url.params)


def assert_authorized(request: httpx.Request) -> None:
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in str(request.url)
    assert "apikey" not in str(request.url).lower()


# -- endpoints against the recorded responses ---------------------------------------------------
def test_tickers_follows_the_cursor_to_the_last_page() -> None:
    fake = FakePolygon()
    fake.route_fixture("/v3/reference/tickers", TICKERS_PAGE1)
    path, query = next_page(TICKERS_PAGE1)
    fake.route_fixture(path, TICKERS_PAGE2, query=query)
    client = make_client(fake)

    rows = run(client, lambda c: c.tickers(date(2022, 4, 27), active=False, type="CS"))

    assert [row["ticker"] for row in rows] == ["A", "AA", "AAA", "AAAU"]
    first, second = fake.requests
    assert dict(first.url.params) == {
        "market": "stocks",
        "date": "2022-04-27",
        "active": "false",
        "order": "asc",
        "sort": "ticker",
        "limit": "1000",
        "type": "CS",
    }
    # The cursor is replayed verbatim and nothing is added to it.
    assert second.url.raw_path == httpx.URL(load_fixture(TICKERS_PAGE1)["next_url"]).raw_path
    for request in fake.requests:
        assert_authorized(request)
    assert (client.stats.pages, client.stats.requests, client.stats.retries) == (2, 2, 0)

    frame = parsers.parse_tickers(rows, as_of=date(2022, 4, 27))
    assert frame.schema == parsers.TICKERS_SCHEMA
    assert frame.filter(pl.col("ticker") == "AAA")["cik"].to_list() == [None]


def test_news_follows_a_next_url_that_names_the_default_port() -> None:
    fake = FakePolygon()
    fake.route_fixture("/v2/reference/news", NEWS_PAGE1, query={"sort": "published_utc"})
    path, query = next_page(NEWS_PAGE1)
    fake.route_fixture(path, NEWS_PAGE2, query=query)
    client = make_client(fake)

    rows = run(client, lambda c: c.news(date(2024, 6, 24)))

    assert len(rows) == 2
    assert "https://api.polygon.io:443/" in load_fixture(NEWS_PAGE1)["next_url"]
    second = fake.requests[1]
    assert (second.url.host, second.url.port, second.url.path) == (
        "api.polygon.io",
        None,
        "/v2/reference/news",
    )
    assert dict(second.url.params) == query
    assert_authorized(second)

    frame = parsers.parse_news(rows)
    assert frame.schema == parsers.NEWS_SCHEMA
    assert frame["insights"].list.len().to_list() == [1, 0]


def test_aggregates_follow_next_url_and_build_the_documented_path() -> None:
    fake = FakePolygon()
    fake.route_fixture("/v2/aggs/ticker/AAPL/range/1/day/2020-01-02/2020-01-10", AGGS_PAGE1)
    path, query = next_page(AGGS_PAGE1)
    fake.route_fixture(path, AGGS_PAGE2, query=query)
    client = make_client(fake)

    rows = run(
        client, lambda c: c.aggregates("AAPL", 1, "day", date(2020, 1, 2), date(2020, 1, 10))
    )

    assert rows is not None
    assert len(rows) == 4
    first, second = fake.requests
    assert dict(first.url.params) == {"adjusted": "false", "sort": "asc", "limit": "50000"}
    assert second.url.path == "/v2/aggs/ticker/AAPL/range/1/day/1578114000000/2020-01-10"
    assert dict(second.url.params) == query
    frame = parsers.parse_aggregates(rows, "AAPL")
    assert frame.schema == parsers.MINUTE_BARS_SCHEMA
    assert frame.height == 4


def test_aggregates_accept_epoch_millisecond_bounds() -> None:
    fake = FakePolygon()
    fake.route("/v2/aggs/ticker/GME/range/1/minute/1611757800000/2021-01-27", ok())
    rows = run(
        make_client(fake),
        lambda c: c.aggregates("GME", 1, "minute", 1611757800000, date(2021, 1, 27), adjusted=True),
    )
    assert rows == []
    assert fake.requests[0].url.params["adjusted"] == "true"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timespan": "fortnight"}, "timespan"),
        ({"multiplier": 0}, "multiplier"),
        ({"limit": 50_001}, "limit"),
        ({"start": datetime(2021, 1, 27, 9, 30)}, "epoch milliseconds"),
    ],
)
def test_aggregates_reject_bad_arguments_before_any_request(
    kwargs: dict[str, Any], message: str
) -> None:
    fake = FakePolygon()
    arguments: dict[str, Any] = {
        "ticker": "GME",
        "multiplier": 1,
        "timespan": "minute",
        "start": date(2021, 1, 27),
        "end": date(2021, 1, 27),
    } | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        run(make_client(fake), lambda c: c.aggregates(**arguments))
    assert fake.requests == []


def test_ticker_details_are_point_in_time() -> None:
    fake = FakePolygon()
    fake.route_fixture("/v3/reference/tickers/AAPL", "recorded/v3_reference_tickers_AAPL.json")
    fake.route_fixture(
        "/v3/reference/tickers/AAPL",
        "recorded/v3_reference_tickers_AAPL__date=2020-10-01.json",
        query={"date": "2020-10-01"},
    )
    details = run(make_client(fake), lambda c: c.ticker_details("AAPL", date(2020, 10, 1)))

    expected = load_fixture("recorded/v3_reference_tickers_AAPL__date=2020-10-01.json")["results"]
    assert details == expected
    assert_authorized(fake.requests[0])
    frame = parsers.parse_ticker_details([details], as_of=date(2020, 10, 1))
    assert frame.schema == parsers.TICKER_DETAILS_SCHEMA
    assert frame["market_cap"].to_list() == [float(expected["market_cap"])]


def test_grouped_daily_is_one_unpaginated_request() -> None:
    fake = FakePolygon()
    fake.route_fixture(
        "/v2/aggs/grouped/locale/us/market/stocks/2005-04-04",
        "recorded/v2_aggs_grouped_locale_us_market_stocks_2005-04-04__adjusted=true.json",
    )
    rows = run(make_client(fake), lambda c: c.grouped_daily(date(2005, 4, 4), adjusted=True))

    assert [row["T"] for row in rows] == ["GIK"]
    assert dict(fake.requests[0].url.params) == {"adjusted": "true", "include_otc": "false"}
    frame = parsers.parse_grouped_daily(rows, date(2005, 4, 4))
    assert frame.schema == parsers.DAILY_BARS_SCHEMA


@pytest.mark.parametrize(
    ("method", "path", "filter_name", "first_page", "rows_expected"),
    [
        ("splits", "/v3/reference/splits", "execution_date", "spec_v3_reference_splits", 12),
        (
            "dividends",
            "/v3/reference/dividends",
            "ex_dividend_date",
            "spec_v3_reference_dividends",
            12,
        ),
    ],
)
def test_corporate_actions_paginate_across_pages(
    method: str, path: str, filter_name: str, first_page: str, rows_expected: int
) -> None:
    first = f"spec_examples/{first_page}.json"
    fake = FakePolygon()
    fake.route_fixture(path, first, query={filter_name: "2021-11-05"})
    next_path, query = next_page(first)
    fake.route_fixture(next_path, f"recorded/v3_reference_{method}.json", query=query)
    client = make_client(fake)

    rows = run(client, lambda c: getattr(c, method)(date(2021, 11, 5)))

    assert len(rows) == rows_expected
    assert client.stats.pages == 2
    parse = parsers.parse_splits if method == "splits" else parsers.parse_dividends
    schema = parsers.SPLITS_SCHEMA if method == "splits" else parsers.DIVIDENDS_SCHEMA
    assert parse(rows).schema == schema


def test_financials_ask_for_quarterly_filings_of_the_day() -> None:
    fake = FakePolygon()
    fake.route_fixture("/vX/reference/financials", "recorded/vX_reference_financials.json")
    rows = run(make_client(fake), lambda c: c.financials(date(2022, 5, 3)))

    params = fake.requests[0].url.params
    assert (params["filing_date"], params["timeframe"]) == ("2022-05-03", "quarterly")
    frame = parsers.parse_financials(rows)
    assert frame.schema == parsers.FINANCIALS_SCHEMA
    assert frame["cik"].to_list() == ["0001413447"]


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [
        (date(2024, 6, 24), "2024-06-24T04:00:00Z", "2024-06-25T04:00:00Z"),  # EDT
        (date(2024, 1, 8), "2024-01-08T05:00:00Z", "2024-01-09T05:00:00Z"),  # EST
        (date(2024, 3, 10), "2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z"),  # 23-hour day
        (date(2024, 11, 3), "2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z"),  # 25-hour day
    ],
)
def test_news_window_is_the_new_york_calendar_day(day: date, start: str, end: str) -> None:
    fake = FakePolygon()
    fake.route("/v2/reference/news", ok([]))
    run(make_client(fake), lambda c: c.news(day))
    params = fake.requests[0].url.params
    assert (params["published_utc.gte"], params["published_utc.lt"]) == (start, end)
    assert (params["order"], params["sort"]) == ("asc", "published_utc")


@pytest.mark.parametrize(
    "body",
    [
        {"status": "OK", "queryCount": 0, "resultsCount": 0, "adjusted": False},
        {"status": "OK", "results": None},
        {"status": "DELAYED", "results": []},
    ],
)
def test_absent_or_null_results_are_an_empty_page(body: dict[str, Any]) -> None:
    fake = FakePolygon()
    fake.route("/v2/aggs/grouped/locale/us/market/stocks/2024-07-04", json_reply(body))
    assert run(make_client(fake), lambda c: c.grouped_daily(date(2024, 7, 4))) == []


# -- retries ------------------------------------------------------------------------------------
THROTTLED = json_reply(
    {
        "status": "ERROR",
        "request_id": "r",
        "error": "You've exceeded the maximum requests per minute",
    },
    status=429,
)


def test_429_burst_honours_retry_after_then_succeeds() -> None:
    fake = FakePolygon()
    fake.route(
        "/v3/reference/splits",
        json_reply({"status": "ERROR"}, status=429, headers={"Retry-After": "2"}),
        json_reply({"status": "ERROR"}, status=429, headers={"Retry-After": "7.5"}),
        ok([{"ticker": "AAPL", "execution_date": "2020-08-31", "split_from": 1, "split_to": 4}]),
    )
    sleep = RecordingSleep()
    client = make_client(fake, sleep=sleep)

    rows = run(client, lambda c: c.splits(date(2020, 8, 31)))

    assert len(rows) == 1
    assert sleep.delays == [2.0, 7.5]
    assert (client.stats.requests, client.stats.retries) == (3, 2)


def test_429_without_retry_after_backs_off_exponentially_up_to_the_cap() -> None:
    fake = FakePolygon()
    fake.route("/v1/test", THROTTLED, THROTTLED, THROTTLED, THROTTLED, THROTTLED, ok())
    sleep = RecordingSleep()
    client = make_client(fake, sleep=sleep, backoff_base=0.5, backoff_max=3.0)

    run(client, lambda c: c.get_json("/v1/test"))

    # MaxJitter returns the ceiling of each full-jitter draw: base * 2**n, capped.
    assert sleep.delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_stays_between_zero_and_the_ceiling() -> None:
    fake = FakePolygon()
    fake.route("/v1/test", *[THROTTLED] * 6, ok())
    sleep = RecordingSleep()
    client = make_client(fake, sleep=sleep, rng=random.Random(7), backoff_base=1.0, backoff_max=8)

    run(client, lambda c: c.get_json("/v1/test"))

    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len(sleep.delays) == len(ceilings)
    assert all(0.0 <= d <= cap for d, cap in zip(sleep.delays, ceilings, strict=True))
    assert len(set(sleep.delays)) > 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Fri, 31 Dec 2027 23:59:59 GMT", 0.5), ("-3", 0.5), ("nan", 0.5), ("86400", 300.0)],
)
def test_unusable_or_huge_retry_after_is_replaced_or_capped(header: str, expected: float) -> None:
    fake = FakePolygon()
    fake.route("/v1/test", json_reply({}, status=429, headers={"Retry-After": header}), ok())
    sleep = RecordingSleep()
    run(make_client(fake, sleep=sleep), lambda c: c.get_json("/v1/test"))
    assert sleep.delays == [expected]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(status: int) -> None:
    fake = FakePolygon()
    # A 5xx body is never parsed, so a truncated one does not matter.
    fake.route("/v1/test", Reply(status, b'{"status": "ERR'), Reply(status, b""), ok())
    client = make_client(fake)
    assert run(client, lambda c: c.get_json("/v1/test"))["status"] == "OK"
    assert (client.stats.requests, client.stats.retries) == (3, 2)


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ConnectError, httpx.RemoteProtocolError],
)
def test_timeouts_and_connection_errors_are_retried(failure: type[httpx.TransportError]) -> None:
    fake = FakePolygon()
    fake.route("/v1/test", failure, failure, ok())
    client = make_client(fake)
    assert run(client, lambda c: c.get_json("/v1/test"))["status"] == "OK"
    assert client.stats.retries == 2


def test_retries_exhausted_names_the_endpoint_and_last_status() -> None:
    fake = FakePolygon()
    fake.route("/v3/reference/tickers/ZZZZ", Reply(503, b"upstream unavailable"))
    sleep = RecordingSleep()
    client = make_client(fake, sleep=sleep, max_retries=2)

    with pytest.raises(PolygonRetryExhausted) as caught:
        run(client, lambda c: c.ticker_details("ZZZZ", date(2024, 1, 2)))

    error = caught.value
    assert "/v3/reference/tickers/ZZZZ" in str(error)
    assert "HTTP 503" in str(error)
    assert (error.attempts, error.last_status, error.endpoint) == (
        3,
        503,
        "/v3/reference/tickers/ZZZZ",
    )
    assert (client.stats.requests, client.stats.retries, len(sleep.delays)) == (3, 2, 2)


def test_retries_exhausted_on_timeouts_has_no_status() -> None:
    fake = FakePolygon()
    fake.route("/v1/test", httpx.ReadTimeout)
    with pytest.raises(PolygonRetryExhausted, match="ReadTimeout") as caught:
        run(make_client(fake, max_retries=1), lambda c: c.get_json("/v1/test"))
    assert caught.value.last_status is None


def test_max_retries_zero_means_a_single_attempt() -> None:
    fake = FakePolygon()
    fake.route("/v1/test", THROTTLED, ok())
    with pytest.raises(PolygonRetryExhausted):
        run(make_client(fake, max_retries=0), lambda c: c.get_json("/v1/test"))
    assert len(fake.requests) == 1


# -- errors that are not retried ----------------------------------------------------------------
def test_truncated_json_on_200_fails_at_once_naming_the_endpoint() -> None:
    fake = FakePolygon()
    fake.route("/v3/reference/dividends", Reply(200, b'{"status": "OK", "results": [{"tick'))
    with pytest.raises(PolygonResponseError, match=r"/v3/reference/dividends.*not valid JSON"):
        run(make_client(fake), lambda c: c.dividends(date(2024, 1, 2)))
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "JSON list where an object was expected"),
        (b'{"results": []}', "without a 'status' field"),
        (b'{"status": "ERROR", "error": "internal"}', "status 'ERROR': internal"),
        (b'{"status": "OK", "results": {"a": 1}}', "expected a list"),
        (b'{"status": "OK", "results": [1]}', "index 0"),
    ],
)
def test_malformed_success_bodies_raise_response_errors(body: bytes, message: str) -> None:
    fake = FakePolygon()
    fake.route("/v1/test", Reply(200, body))
    with pytest.raises(PolygonResponseError, match=message):
        run(make_client(fake), lambda c: c.paginate("/v1/test"))


def test_401_raises_auth_error_pointing_at_the_key() -> None:
    fake = FakePolygon()
    fake.route(
        "/v1/test",
        json_reply({"status": "ERROR", "request_id": "r1", "error": "Unknown API Key"}, 401),
    )
    with pytest.raises(PolygonAuthError, match=r"Unknown API Key.*check POLYGON_API_KEY") as caught:
        run(make_client(fake), lambda c: c.get_json("/v1/test"))
    assert (caught.value.status_code, caught.value.request_id) == (401, "r1")
    assert len(fake.requests) == 1


def test_without_a_key_no_authorization_header_is_sent_and_401_says_so() -> None:
    fake = FakePolygon()
    fake.route(
        "/v1/test", json_reply({"status": "ERROR", "error": "API Key was not provided"}, 401)
    )
    with pytest.raises(PolygonAuthError, match="no API key is configured; set POLYGON_API_KEY"):
        run(make_client(fake, api_key=""), lambda c: c.get_json("/v1/test"))
    assert "Authorization" not in fake.requests[0].headers


def test_403_raises_not_entitled_with_polygons_message() -> None:
    message = (
        "Your plan doesn't include this data timeframe. Please upgrade your plan at "
        "https://polygon.io/pricing"
    )
    fake = FakePolygon()
    fake.route(
        "/v2/aggs/ticker/GME/range/1/minute/2021-01-27/2021-01-27",
        json_reply({"status": "NOT_AUTHORIZED", "request_id": "r", "message": message}, 403),
    )
    with pytest.raises(PolygonNotEntitledError) as caught:
        run(
            make_client(fake),
            lambda c: c.aggregates("GME", 1, "minute", date(2021, 1, 27), date(2021, 1, 27)),
        )
    assert message in str(caught.value)
    assert caught.value.polygon_message == message


def test_400_raises_bad_request_with_polygons_error_text() -> None:
    fake = FakePolygon()
    fake.route(
        "/v3/reference/tickers",
        json_reply({"status": "ERROR", "error": "Could not parse the date parameter"}, 400),
    )
    with pytest.raises(PolygonBadRequest, match="Could not parse the date parameter"):
        run(make_client(fake), lambda c: c.tickers(date(2024, 1, 2), active=True))
    assert len(fake.requests) == 1


def test_unexpected_status_with_a_text_body_is_a_response_error() -> None:
    fake = FakePolygon()
    fake.route("/v1/test", Reply(418, b"I'm a teapot"))
    with pytest.raises(PolygonResponseError, match=r"unexpected HTTP 418.*teapot"):
        run(make_client(fake), lambda c: c.get_json("/v1/test"))


NOT_FOUND = json_reply(
    {"status": "NOT_FOUND", "request_id": "r", "message": "Data not found."}, 404
)


def test_404_on_ticker_lookups_returns_none_and_is_counted() -> None:
    fake = FakePolygon()
    fake.route("/v3/reference/tickers/GONE", NOT_FOUND)
    fake.route("/v2/aggs/ticker/GONE/range/1/minute/2021-01-27/2021-01-28", NOT_FOUND)
    client = make_client(fake)

    async def both(c: PolygonClient) -> tuple[Any, Any]:
        details = await c.ticker_details("GONE", date(2021, 1, 27))
        bars = await c.aggregates("GONE", 1, "minute", date(2021, 1, 27), date(2021, 1, 28))
        return details, bars

    assert run(client, both) == (None, None)
    assert client.stats.not_found == [
        NotFoundEntry("ticker_details", "GONE", "/v3/reference/tickers/GONE?date=2021-01-27"),
        NotFoundEntry(
            "aggregates", "GONE", "/v2/aggs/ticker/GONE/range/1/minute/2021-01-27/2021-01-28"
        ),
    ]
    assert client.stats.retries == 0


def test_404_elsewhere_raises_not_found() -> None:
    fake = FakePolygon()
    fake.route("/v1/open-close/AAPL/2024-07-04", NOT_FOUND)
    with pytest.raises(PolygonNotFound, match="Data not found"):
        run(make_client(fake), lambda c: c.get_json("/v1/open-close/AAPL/2024-07-04"))


def test_ticker_is_escaped_into_a_single_path_segment() -> None:
    fake = FakePolygon()
    fake.route("/v3/reference/tickers/A/B", NOT_FOUND)  # httpx matches on the decoded path
    run(make_client(fake), lambda c: c.ticker_details("A/B", date(2024, 1, 2)))
    assert fake.requests[0].url.raw_path.startswith(b"/v3/reference/tickers/A%2FB?")


# -- next_url safety ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/v3/reference/tickers?cursor=abc",
        "http://api.polygon.io/v3/reference/tickers?cursor=abc",  # would send the key in clear
        "https://api.polygon.io:8443/v3/reference/tickers?cursor=abc",
        "https://api.polygon.io.evil.example/v3/reference/tickers?cursor=abc",
    ],
)
def test_next_url_to_another_origin_is_refused(next_url: str) -> None:
    fake = FakePolygon()
    fake.route("/v3/reference/tickers", ok([], next_url=next_url))
    with pytest.raises(PolygonResponseError, match="refusing to follow next_url"):
        run(make_client(fake), lambda c: c.tickers(date(2024, 1, 2), active=True))
    assert len(fake.requests) == 1


def test_pagination_loop_is_detected() -> None:
    fake = FakePolygon()
    # The financials documentation example points its next_url at a query-less first page.
    fake.route_fixture(
        "/vX/reference/financials", "spec_examples/spec_vX_reference_financials.json"
    )
    with pytest.raises(PolygonResponseError, match="pagination loops"):
        run(make_client(fake), lambda c: c.financials(date(2022, 5, 4)))
    assert len(fake.requests) == 2


def test_api_key_query_parameter_is_rejected() -> None:
    fake = FakePolygon()
    with pytest.raises(ValueError, match="Authorization header"):
        run(make_client(fake), lambda c: c.get_json("/v1/test", {"apiKey": KEY}))
    assert fake.requests == []


# -- the key never leaks ------------------------------------------------------------------------
ECHOING_401 = json_reply({"status": "ERROR", "error": f"Unknown API Key {KEY}"}, 401)
LEAK_SCENARIOS: dict[str, tuple[list[Step], ClientCall]] = {
    "401 echoing the key": ([ECHOING_401], lambda c: c.get_json("/v1/test")),
    "403": (
        [json_reply({"status": "NOT_AUTHORIZED", "message": f"not entitled: {KEY}"}, 403)],
        lambda c: c.get_json("/v1/test"),
    ),
    "404": ([NOT_FOUND], lambda c: c.get_json("/v1/test")),
    "400": (
        [json_reply({"status": "ERROR", "error": f"bad apiKey={KEY}"}, 400)],
        lambda c: c.get_json("/v1/test"),
    ),
    "418 text body": ([Reply(418, f"teapot {KEY}".encode())], lambda c: c.get_json("/v1/test")),
    "503 exhausted": ([Reply(503, KEY.encode())], lambda c: c.get_json("/v1/test")),
    "timeouts exhausted": ([httpx.ReadTimeout], lambda c: c.get_json("/v1/test")),
    "connection errors exhausted": ([httpx.ConnectError], lambda c: c.get_json("/v1/test")),
    "truncated JSON": ([Reply(200, b'{"status": "OK", "res')], lambda c: c.get_json("/v1/test")),
    "status ERROR on 200": (
        [json_reply({"status": "ERROR", "error": f"key {KEY} suspended"})],
        lambda c: c.get_json("/v1/test"),
    ),
    "foreign next_url": (
        [ok([], next_url="https://evil.example/v1/test?cursor=x")],
        lambda c: c.paginate("/v1/test"),
    ),
}


@pytest.mark.parametrize("scenario", list(LEAK_SCENARIOS))
def test_api_key_never_appears_in_errors_reprs_or_logs(
    scenario: str, caplog: pytest.LogCaptureFixture
) -> None:
    steps, call = LEAK_SCENARIOS[scenario]
    fake = FakePolygon()
    fake.route("/v1/test", *steps)
    client = make_client(fake, max_retries=2)

    with caplog.at_level(logging.DEBUG), pytest.raises(PolygonError) as caught:
        run(client, call)

    error = caught.value
    rendered = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), repr(error.args), rendered, repr(client), caplog.text):
        assert KEY not in text
    assert any(record.name == "smallcaps_assets.polygon" for record in caplog.records)
    for request in fake.requests:
        assert_authorized(request)


def test_repr_hides_the_key() -> None:
    client = PolygonClient(api_key=KEY)
    assert KEY not in repr(client)
    assert "api_key=<set>" in repr(client)
    assert "api_key=<none>" in repr(PolygonClient(api_key=None))


def test_debug_log_names_method_path_status_and_elapsed(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakePolygon()
    fake.route("/v1/test", ok())
    with caplog.at_level(logging.DEBUG, logger="smallcaps_assets.polygon"):
        run(make_client(fake), lambda c: c.get_json("/v1/test", {"date": "2024-01-02"}))
    messages = [r.getMessage() for r in caplog.records if r.name == "smallcaps_assets.polygon"]
    assert any(
        m.startswith("GET /v1/test?date=2024-01-02 -> 200 in ") and m.endswith(" ms")
        for m in messages
    )


# -- concurrency and rate limiting --------------------------------------------------------------
def test_in_flight_requests_never_exceed_max_concurrency() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):  # let the other tasks run while this request is "on the wire"
            await asyncio.sleep(0)
        in_flight -= 1
        return httpx.Response(200, json={"status": "OK", "results": []})

    client = PolygonClient(api_key=KEY, transport=httpx.MockTransport(handler), max_concurrency=3)
    results = run(client, lambda c: c.gather(c.get_json(f"/v1/test/{i}") for i in range(12)))

    assert len(results) == 12
    assert 1 < peak <= 3
    assert client.stats.requests == 12


def test_rate_limit_reserves_evenly_spaced_slots_for_concurrent_requests() -> None:
    fake = FakePolygon()
    fake.route("/v1/test", ok())
    sleep = RecordingSleep()
    client = make_client(fake, sleep=sleep, requests_per_second=2.0, clock=lambda: 100.0)

    run(client, lambda c: c.gather(c.get_json("/v1/test") for _ in range(5)))

    # The clock stands still, so each request waits one more interval than the one before.
    assert sorted(sleep.delays) == [0.5, 1.0, 1.5, 2.0]


def test_rate_limit_spaces_sequential_requests_on_a_virtual_clock() -> None:
    now = 100.0
    starts: list[float] = []

    def clock() -> float:
        return now

    async def sleep(seconds: float) -> None:
        nonlocal now
        now += seconds

    def handler(request: httpx.Request) -> httpx.Response:
        starts.append(now)
        return httpx.Response(200, json={"status": "OK"})

    client = PolygonClient(
        api_key=KEY,
        transport=httpx.MockTransport(handler),
        requests_per_second=4.0,
        sleep=sleep,
        clock=clock,
    )

    async def calls(c: PolygonClient) -> None:
        nonlocal now
        for _ in range(3):
            await c.get_json("/v1/test")
        now += 10.0  # idle long enough that the next request needs no wait
        await c.get_json("/v1/test")

    run(client, calls)
    assert starts == [100.0, 100.25, 100.5, 110.5]


def test_gather_keeps_input_order() -> None:
    client = PolygonClient(api_key=KEY, transport=FakePolygon().transport)

    async def value_after(turns: int) -> int:
        for _ in range(turns):
            await asyncio.sleep(0)
        return turns

    assert run(client, lambda c: c.gather(value_after(n) for n in [5, 0, 3, 1])) == [5, 0, 3, 1]
    assert run(client, lambda c: c.gather([])) == []


def test_gather_cancels_the_rest_and_raises_the_first_failure() -> None:
    client = PolygonClient(api_key=KEY, transport=FakePolygon().transport)
    finished: list[str] = []

    async def slow() -> None:
        for _ in range(50):
            await asyncio.sleep(0)
        finished.append("slow")

    async def failing() -> None:
        await asyncio.sleep(0)
        raise PolygonBadRequest("boom")

    with pytest.raises(PolygonBadRequest, match="boom"):
        run(client, lambda c: c.gather([slow(), failing(), slow()]))
    assert finished == []


# -- construction and lifecycle -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"requests_per_second": 0}, "requests_per_second"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"base_url": "api.polygon.io"}, "base_url"),
    ],
)
def test_invalid_options_are_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PolygonClient(api_key=KEY, **options)


def test_calls_outside_the_context_manager_fail_clearly() -> None:
    client = PolygonClient(api_key=KEY, transport=FakePolygon().transport)
    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(client.get_json("/v1/test"))


def test_client_can_be_reopened_and_stats_accumulate() -> None:
    fake = FakePolygon()
    fake.route("/v1/test", ok())
    client = make_client(fake)
    run(client, lambda c: c.get_json("/v1/test"))
    run(client, lambda c: c.get_json("/v1/test"))
    assert client.stats.requests == 2
    assert BASE_URL in repr(client)


@pytest.mark.parametrize(
    "error",
    [
        PolygonNotEntitledError("no", endpoint="/x", status_code=403, polygon_message="plan"),
        PolygonRetryExhausted(
            "gave up", endpoint="/x", attempts=3, last_status=503, last_failure="HTTP 503"
        ),
        PolygonSchemaError("bad", endpoint="/x", field="o", row_index=2, ticker="AAPL"),
    ],
)
def test_errors_survive_pickling(error: PolygonError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (str(copy), copy.__dict__) == (str(error), error.__dict__)


@given(st.integers(min_value=1, max_value=200))
def test_connection_pools_hold_exactly_the_concurrency_in_small_shards(concurrency):
    sizes = _shard_sizes(concurrency, own_transport=True)
    assert sum(sizes) == concurrency
    assert all(1 <= size <= SHARD_CONNECTIONS for size in sizes)
    # At most one shard is partly filled.
    assert sum(size < SHARD_CONNECTIONS for size in sizes) <= (concurrency % SHARD_CONNECTIONS > 0)
    # A caller's transport has its own pool (or none): one client over it.
    assert _shard_sizes(concurrency, own_transport=False) == [concurrency]
