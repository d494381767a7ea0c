"""The ingestion benchmark's quick run: a real loopback server, the real client, figures that agree.

Only consistency is asserted, never speed: the machine running the suite may be busy.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from benchmarks import bench_ingestion
from benchmarks.bench_ingestion import (
    LIGHT_DAY,
    aggregates_path,
    local_polygon_server,
    session_bodies,
)
from smallcaps_assets.sources.polygon import PolygonClient


@pytest.fixture(scope="module")
def quick_results() -> dict[str, object]:
    return bench_ingestion.run(quick=True)


def level_names(results: dict[str, object]) -> list[str]:
    return [name for name in results if name.startswith("concurrency_")]


def test_every_level_ran_its_requests_at_its_concurrency(quick_results):
    setup = quick_results["setup"]
    assert isinstance(setup, dict)
    tickers = setup["tickers"]
    assert tickers == bench_ingestion.QUICK_TICKERS
    assert set(level_names(quick_results)) == {
        *(f"concurrency_{c}" for c in bench_ingestion.CONCURRENCIES),
        f"concurrency_{bench_ingestion.TARGET_CONCURRENCY}_light",
    }
    for name in level_names(quick_results):
        figures = quick_results[name]
        assert isinstance(figures, dict)
        concurrency = int(name.split("_")[1])
        # A level fetches at most the whole session; from concurrency 4 up the quick run is short
        # enough to fetch all of it, one request per ticker (the run checks each ticker's bars).
        assert 1 <= figures["requests"] <= tickers
        if concurrency >= 4:
            assert figures["requests"] == tickers
        assert figures["server_peak_in_flight"] == min(concurrency, figures["requests"])
        # Keep-alive: never more connections than concurrent requests.
        assert figures["connections"] == figures["server_peak_in_flight"]


def test_rates_agree_with_their_ideal_and_the_baseline(quick_results):
    sequential = quick_results["concurrency_1"]
    assert isinstance(sequential, dict)
    for name in level_names(quick_results):
        figures = quick_results[name]
        assert isinstance(figures, dict)
        concurrency = int(name.split("_")[1])
        assert figures["ideal_requests_per_s"] == pytest.approx(
            concurrency / bench_ingestion.LATENCY_SECONDS
        )
        assert figures["requests_per_s"] == pytest.approx(
            figures["requests"] / figures["wall_s"], rel=0.01
        )
        assert 0 < figures["efficiency"] <= 1.05
        # Both figures are rounded: requests/s to 0.1, efficiency to 0.001.
        assert figures["efficiency"] == pytest.approx(
            figures["requests_per_s"] / figures["ideal_requests_per_s"],
            abs=0.0006 + 0.05 / figures["ideal_requests_per_s"],
        )
        assert figures["speedup_vs_sequential"] == pytest.approx(
            figures["requests_per_s"] / sequential["requests_per_s"], abs=0.06
        )
        assert figures["client_cpu_ms_per_request"] > 0


def test_the_target_line_reports_the_measured_efficiency(quick_results):
    target = quick_results["target"]
    level = quick_results[f"concurrency_{bench_ingestion.TARGET_CONCURRENCY}"]
    assert isinstance(target, dict)
    assert isinstance(level, dict)
    assert target["efficiency"] == level["efficiency"]
    passed = level["efficiency"] >= bench_ingestion.TARGET_EFFICIENCY
    assert target["result"] == ("PASS" if passed else "FAIL")


def test_results_are_json_and_at_most_one_level_deep(quick_results):
    json.dumps(quick_results)
    for section in quick_results.values():
        if isinstance(section, dict):
            assert not any(isinstance(value, dict) for value in section.values())


def test_bodies_are_polygon_aggregates_holding_the_counted_bars():
    session = session_bodies(3)
    for ticker in session.tickers:
        body = json.loads(session.bodies[aggregates_path(ticker, session.day)])
        assert body["status"] == "OK"
        assert body["ticker"] == ticker
        assert body["resultsCount"] == body["count"] == len(body["results"])
        assert len(body["results"]) == session.bars[ticker]
        assert sum(bar["v"] for bar in body["results"]) == pytest.approx(session.volume[ticker])
        assert set(body["results"][0]) == {"v", "vw", "o", "c", "h", "l", "t", "n"}


def test_the_client_keeps_one_connection_per_slot_above_the_httpx_keep_alive_default():
    """httpx keeps 20 connections alive by default and httpcore then closes every connection it
    releases while more than 20 are open; the client sizes its pool to ``max_concurrency``."""
    concurrency = 24
    session = session_bodies(concurrency * 3, LIGHT_DAY, minutes=10, max_missing=2)

    async def fetch_all(base_url: str) -> list[list[dict[str, object]] | None]:
        async with PolygonClient(
            api_key="bench-key", base_url=base_url, max_concurrency=concurrency
        ) as client:
            return await client.gather(
                [
                    client.aggregates(t, 1, "minute", session.day, session.day)
                    for t in session.tickers
                ]
            )

    with local_polygon_server(session.bodies, latency=0.05) as base_url:
        answers = asyncio.run(fetch_all(base_url))
        with urllib.request.urlopen(f"{base_url}/_stats", timeout=10) as reply:
            server = json.loads(reply.read())
    assert [len(rows or []) for rows in answers] == list(session.bars.values())
    assert server["requests"] == len(session.tickers)
    assert server["peak_in_flight"] == concurrency
    assert server["connections"] == concurrency
