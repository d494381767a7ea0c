"""The processed layer materialized through Dagster on the simulated market.

One module fixture builds raw and processed partitions for a short window once; each test works
on its own copy of that data root. The point-in-time tests tamper with raw data stamped after
the session (or, for candidates, with what only became known after 09:30), rematerialize the
session's processed partitions and require them to be unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest

from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.defs.catalog import build_catalog_asset
from smallcaps_assets.defs.processed import (
    EVENT_DATASETS,
    PROCESSED_DATASETS,
    event_assets,
    processed_assets,
)
from smallcaps_assets.defs.raw import (
    MINUTE_REQUESTS,
    RAW_DATASETS,
    raw_assets,
    raw_minute_bars_asset,
)
from smallcaps_assets.defs.resources import MarketDataResource
from smallcaps_assets_tests.resource_fixtures import daily_graph_resources

WARMUP = "2024-02-29"
SESSIONS = ["2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]
DAY = dt.date(2024, 3, 6)
NEXT_DAY = dt.date(2024, 3, 7)
PROCESSED_KEYS = [dg.AssetKey(["processed", d.name]) for d in PROCESSED_DATASETS]
MINUTE_KEY = dg.AssetKey(["raw", "minute_bars"])
CATALOG = build_catalog_asset("processed", [d.name for d in PROCESSED_DATASETS])
EVENT_KEYS = [dg.AssetKey([d.layer, d.name]) for d in EVENT_DATASETS]
ALL_ASSETS = [*raw_assets, raw_minute_bars_asset, *processed_assets, *event_assets, CATALOG]


def _range_tags(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def _run(root: Path, keys: list[dg.AssetKey], start: str, end: str, **rules: float):
    return dg.materialize(
        ALL_ASSETS,
        resources=daily_graph_resources(root, **rules),
        selection=keys,
        tags=_range_tags(start, end),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


@dataclass(frozen=True)
class Built:
    root: Path
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    root = tmp_path_factory.mktemp("processed") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("POLYGON_API_KEY", raising=False)
        mp.setenv("SMALLCAPS_SIM_TICKERS", "120")
        mp.setenv("SMALLCAPS_SIM_SEED", "52")
        raw = _run(
            root,
            [dg.AssetKey(["raw", d.name]) for d in RAW_DATASETS],
            WARMUP,
            SESSIONS[-1],
        )
        assert raw.success
        processed = _run(
            root, [*PROCESSED_KEYS, MINUTE_KEY, *EVENT_KEYS, CATALOG.key], SESSIONS[0], SESSIONS[-1]
        )
        assert processed.success
    return Built(root, processed)


@pytest.fixture
def data(built: Built, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "120")
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "52")
    copy = tmp_path / "data"
    shutil.copytree(built.root, copy)
    return copy


def _read(root: Path, layer: str, dataset: str, day: dt.date) -> pl.DataFrame:
    return DataStore(str(root)).read(layer, dataset, day)


def _tamper(root: Path, layer: str, dataset: str, day: dt.date, frame: pl.DataFrame) -> None:
    # Replace the stored partition as a later, different download would.
    DataStore(str(root)).write(layer, dataset, day, frame)


def test_every_processed_partition_is_written_and_every_check_passes(built):
    store = DataStore(str(built.root))
    for dataset in PROCESSED_DATASETS:
        assert store.partitions("processed", dataset.name) == SESSIONS, dataset.name
    assert store.partitions("raw", "minute_bars") == SESSIONS
    assert store.partitions("raw", MINUTE_REQUESTS) == SESSIONS
    result = built.result
    evaluations = result.get_asset_check_evaluations()
    names = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations}
    assert ("processed/universe", "size_within_bounds") in names
    assert ("processed/universe", "priced_inside_band") in names
    assert ("processed/minute_bars", "candidates_covered") in names
    assert ("processed/minute_bars", "bars_unique_and_in_session") in names
    assert all(e.passed for e in evaluations), [
        (e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed
    ]


def test_metadata_shows_universe_candidates_halts_and_ssr_per_partition_and_month(built):
    result = built.result
    universe = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(["processed", "universe"])
    ]
    assert sorted(m.partition for m in universe) == SESSIONS
    sizes = [m.materialization.metadata["universe_size"].value for m in universe]
    assert all(20 <= size <= 120 for size in sizes), sizes
    candidates = sum(m.materialization.metadata["candidates"].value for m in universe)
    assert candidates > 0
    minute_md = [
        m.materialization.metadata
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(["processed", "minute_bars"])
    ]
    assert {"halts", "ssr_tickers", "ssr_triggers", "candidates_with_bars"} <= set(minute_md[0])
    assert sum(md["candidates"].value for md in minute_md) == candidates
    catalog = result.asset_materializations_for_node("catalog__processed")[0].metadata
    table = catalog["monthly_summary"].value
    assert "| 2024-03 | 6 |" in table
    assert "halts" in table
    assert "ssr_ticker_days" in table


def test_candidates_are_gappers_with_minute_bars_on_their_session(built):
    store = DataStore(str(built.root))
    members = store.read_many("processed", "universe", SESSIONS)
    candidates = members.filter(pl.col("is_candidate"))
    assert (candidates.get_column("gap_pct") >= 0.10).all()
    bars = store.read_many("processed", "minute_bars", SESSIONS)
    covered = bars.select("date", "ticker").unique()
    assert (
        candidates.select("date", "ticker")
        .join(covered, on=["date", "ticker"], how="anti")
        .is_empty()
    )
    assert (bars.get_column("ts_et").dt.date() == bars.get_column("date")).all()
    watch = store.read_many("processed", "watchlist", SESSIONS)
    assert watch.height == candidates.height
    assert watch.get_column("avg_premarket_volume_20d").null_count() == 0


def test_events_carry_features_and_every_event_has_one_label(built):
    store = DataStore(str(built.root))
    assert store.partitions("features", "events") == SESSIONS
    assert store.partitions("labels", "events") == SESSIONS
    found = store.read_many("features", "events", SESSIONS)
    labelled = store.read_many("labels", "events", SESSIONS)
    assert found.height > 0
    keys = ["ticker", "ts", "pattern"]
    assert labelled.select(keys).sort(keys).equals(found.select(keys).sort(keys))
    assert (found.get_column("last_bar_ts") < found.get_column("ts")).all()
    candidates = store.read_many("processed", "universe", SESSIONS).filter(pl.col("is_candidate"))
    assert found.join(candidates, on=["date", "ticker"], how="anti").is_empty()
    complete = labelled.filter(pl.col("path_complete"))
    assert complete.height > 0
    assert (complete.get_column("exit_ts") > complete.get_column("entry_ts")).all()
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in built.result.get_asset_check_evaluations()
    }
    assert checks[("features/events", "point_in_time")]
    assert checks[("labels/events", "labels_cover_events")]


# -- point in time --------------------------------------------------------------------------------
def _rematerialize_day(root: Path, *keys: dg.AssetKey) -> None:
    result = _run(root, list(keys), DAY.isoformat(), DAY.isoformat())
    assert result.success


def test_a_split_executed_after_the_session_changes_nothing_on_the_session(data):
    before = {
        d: _read(data, "processed", d, DAY) for d in ("daily_bars", "corporate_actions", "universe")
    }
    member = before["universe"].get_column("ticker")[0]
    splits = _read(data, "raw", "splits", NEXT_DAY)
    later_split = pl.DataFrame(
        {
            "ticker": [member],
            "execution_date": [NEXT_DAY],
            "split_from": [10.0],
            "split_to": [1.0],
            "id": ["tampered-split"],
        }
    )
    _tamper(
        data,
        "raw",
        "splits",
        NEXT_DAY,
        pl.concat([splits, later_split.select(splits.columns).cast(splits.schema)]),
    )
    _rematerialize_day(data, *(dg.AssetKey(["processed", d]) for d in before))
    for name, frame in before.items():
        assert _read(data, "processed", name, DAY).equals(frame), name
    # The same split on the session itself is visible: the test can fail.
    _tamper(
        data,
        "raw",
        "splits",
        DAY,
        later_split.with_columns(execution_date=pl.lit(DAY))
        .select(splits.columns)
        .cast(splits.schema),
    )
    _rematerialize_day(data, dg.AssetKey(["processed", "daily_bars"]))
    after = _read(data, "processed", "daily_bars", DAY)
    assert after.filter(pl.col("ticker") == member).get_column(
        "split_factor_to_d"
    ).item() == pytest.approx(10.0)


def test_a_filing_dated_on_the_session_is_invisible_on_it(data):
    before = _read(data, "processed", "fundamentals", DAY)
    filings = _read(data, "raw", "financials", DAY)
    assert filings.height > 0, "the window needs filings for this test"
    ticker = before.get_column("ticker")[0]
    template = _read(data, "raw", "financials", dt.date(2024, 3, 4))
    template = template if template.height else filings
    fresh = template.head(1).with_columns(
        ticker=pl.lit(ticker),
        filing_date=pl.lit(DAY),
        start_date=pl.lit(dt.date(2023, 12, 1)),
        end_date=pl.lit(dt.date(2024, 2, 29)),
        timeframe=pl.lit("quarterly"),
        revenues=pl.lit(1e12),
    )
    _tamper(data, "raw", "financials", DAY, pl.concat([filings, fresh]))
    _rematerialize_day(data, dg.AssetKey(["processed", "fundamentals"]))
    assert _read(data, "processed", "fundamentals", DAY).equals(before)
    # Dated the session before, the same filing is the latest one known.
    previous = dt.date(2024, 3, 5)
    _tamper(
        data,
        "raw",
        "financials",
        previous,
        pl.concat(
            [
                _read(data, "raw", "financials", previous),
                fresh.with_columns(filing_date=pl.lit(previous)),
            ]
        ),
    )
    _rematerialize_day(data, dg.AssetKey(["processed", "fundamentals"]))
    row = _read(data, "processed", "fundamentals", DAY).filter(pl.col("ticker") == ticker)
    assert row.get_column("filing_date").item() == previous


def test_a_ticker_delisted_later_is_in_the_universe_when_it_qualified(data):
    before = _read(data, "processed", "universe", DAY)
    member = before.get_column("ticker")[-1]
    tickers = _read(data, "raw", "tickers", DAY)
    # The list as fetched months later: inactive, with a delisting date after the session.
    later = tickers.with_columns(
        active=pl.when(pl.col("ticker") == member).then(False).otherwise(pl.col("active")),
        delisted_utc=pl.when(pl.col("ticker") == member)
        .then(pl.lit(dt.datetime(2024, 6, 3, 20, tzinfo=dt.UTC)))
        .otherwise(pl.col("delisted_utc"))
        .cast(tickers.schema["delisted_utc"]),
    )
    _tamper(data, "raw", "tickers", DAY, later)
    _rematerialize_day(data, dg.AssetKey(["processed", "universe"]))
    assert _read(data, "processed", "universe", DAY).equals(before)
    # Delisted before the session, it is out: the test can fail.
    gone = later.with_columns(
        delisted_utc=pl.when(pl.col("ticker") == member)
        .then(pl.lit(dt.datetime(2024, 3, 1, 20, tzinfo=dt.UTC)))
        .otherwise(pl.col("delisted_utc"))
        .cast(tickers.schema["delisted_utc"])
    )
    _tamper(data, "raw", "tickers", DAY, gone)
    _rematerialize_day(data, dg.AssetKey(["processed", "universe"]))
    assert member not in _read(data, "processed", "universe", DAY).get_column("ticker").to_list()


def test_shifting_the_sessions_post_open_data_leaves_the_candidates_unchanged(data):
    before = _read(data, "processed", "universe", DAY)
    assert before.get_column("is_candidate").any(), "the session needs a candidate"
    bars = _read(data, "raw", "daily_bars", DAY)
    # Everything of D's bar but the open becomes known after 09:30: scale it wildly.
    shifted = bars.with_columns(
        high=pl.col("high") * 3.0,
        low=pl.col("low") * 0.2,
        close=pl.col("close") * 0.3,
        volume=pl.col("volume") * 50.0,
        vwap=pl.col("vwap") * 0.5,
        transactions=pl.col("transactions") * 7,
    )
    _tamper(data, "raw", "daily_bars", DAY, shifted)
    _rematerialize_day(data, dg.AssetKey(["processed", "universe"]))
    assert _read(data, "processed", "universe", DAY).equals(before)
    # Moving the open does move the candidates: the test can fail.
    _tamper(data, "raw", "daily_bars", DAY, bars.with_columns(open=pl.col("open") * 0.5))
    _rematerialize_day(data, dg.AssetKey(["processed", "universe"]))
    assert not _read(data, "processed", "universe", DAY).get_column("is_candidate").any()


def test_shifting_regular_session_minutes_leaves_the_watchlist_unchanged(data):
    before = _read(data, "processed", "watchlist", DAY)
    raw = _read(data, "raw", "minute_bars", DAY)
    et = pl.col("window_start").dt.convert_time_zone("America/New_York")
    after_open = (et.dt.date() == DAY) & (et.dt.time() >= dt.time(9, 30))
    shifted = raw.with_columns(
        volume=pl.when(after_open).then(pl.col("volume") * 100.0).otherwise(pl.col("volume")),
        high=pl.when(after_open).then(pl.col("high") * 2.0).otherwise(pl.col("high")),
        close=pl.when(after_open).then(pl.col("close") * 1.5).otherwise(pl.col("close")),
    )
    _tamper(data, "raw", "minute_bars", DAY, shifted)
    _rematerialize_day(
        data, dg.AssetKey(["processed", "minute_bars"]), dg.AssetKey(["processed", "watchlist"])
    )
    assert _read(data, "processed", "watchlist", DAY).equals(before)


# -- failures --------------------------------------------------------------------------------------
def test_a_universe_outside_its_size_bounds_fails_its_check_and_stops_downstream(data):
    result = _run(
        data, [*PROCESSED_KEYS, MINUTE_KEY], DAY.isoformat(), DAY.isoformat(), min_members=10_000
    )
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [(e.asset_key.to_user_string(), e.check_name) for e in failed] == [
        ("processed/universe", "size_within_bounds")
    ]
    ran = {e.asset_key for e in result.get_asset_materialization_events()}
    assert MINUTE_KEY not in ran
    assert dg.AssetKey(["processed", "watchlist"]) not in ran


def test_a_candidate_without_bars_or_a_logged_reason_fails_coverage(data):
    requests = _read(data, "raw", MINUTE_REQUESTS, DAY)
    candidates = _read(data, "processed", "universe", DAY).filter(pl.col("is_candidate"))
    assert candidates.height > 0
    dropped = candidates.get_column("ticker")[0]
    raw = _read(data, "raw", "minute_bars", DAY)
    _tamper(data, "raw", "minute_bars", DAY, raw.filter(pl.col("ticker") != dropped))
    _tamper(data, "raw", MINUTE_REQUESTS, DAY, requests.filter(pl.col("ticker") != dropped))
    result = _run(
        data, [dg.AssetKey(["processed", "minute_bars"])], DAY.isoformat(), DAY.isoformat()
    )
    assert not result.success
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert set(failed) == {"candidates_covered"}
    assert dropped in str(failed["candidates_covered"].metadata["failure_sample"].value)


def test_a_missing_previous_session_fails_with_the_partition_it_needs(data):
    store = DataStore(str(data))
    shutil.rmtree(Path(store.partition_path("raw", "daily_bars", "2024-03-05")).parent)
    result = _run(data, [dg.AssetKey(["processed", "universe"])], DAY.isoformat(), DAY.isoformat())
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "raw/daily_bars has no partition 2024-03-05" in message


# -- write-audit-publish: a bad download never becomes a partition ---------------------------------
class _TamperedMarket(MarketDataResource):
    """The simulated market with the grouped daily answer of one session rewritten: ``tamper`` is
    ``negative_high`` (a parsable bar with h = -1) or ``null_results`` (``results: null``)."""

    session: str
    tamper: str

    def transport(self, store):  # type: ignore[override]
        inner = super().transport(store)
        grouped = f"/v2/aggs/grouped/locale/us/market/stocks/{self.session}"
        tamper = self.tamper

        async def handle(request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            if request.url.path != grouped:
                return response
            body = json.loads(await response.aread())
            if tamper == "negative_high":
                body["results"][0]["h"] = -1.0
            else:
                body["results"], body["resultsCount"] = None, 0
            return httpx.Response(200, json=body)

        return httpx.MockTransport(handle)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*.parquet")
        if "_quarantine" not in p.parts
    }


@pytest.mark.parametrize(
    ("tamper", "failed_check"),
    [("negative_high", "schema"), ("null_results", "rows_on_session")],
)
def test_a_bad_download_is_quarantined_and_nothing_downstream_builds_on_it(
    data, tamper, failed_check
):
    store = DataStore(str(data))
    before = _files(data)
    resources = {
        **daily_graph_resources(data),
        "market": _TamperedMarket(session=DAY.isoformat(), tamper=tamper),
    }
    raw_run = dg.materialize(
        ALL_ASSETS,
        resources=resources,
        selection=[dg.AssetKey(["raw", "daily_bars"])],
        partition_key=DAY.isoformat(),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not raw_run.success
    failed = [e for e in raw_run.get_asset_check_evaluations() if not e.passed]
    assert [e.check_name for e in failed] == [failed_check]
    (quarantined,) = failed[0].metadata["quarantined"].value
    assert quarantined == store.quarantined("raw", "daily_bars", DAY)[0]
    kept = pl.read_parquet(quarantined)
    if tamper == "negative_high":
        assert (kept.get_column("high") < 0).sum() == 1
    else:
        assert kept.is_empty()
    # The good download stays canonical, byte for byte, and no version was made of it.
    assert _files(data) == before
    assert store.versions("raw", "daily_bars", DAY) == []
    assert not raw_run.get_asset_materialization_events()

    # A later, separate downstream run refuses to build on the rejected partition.
    downstream = _run(
        data, [*PROCESSED_KEYS, MINUTE_KEY, *EVENT_KEYS], DAY.isoformat(), NEXT_DAY.isoformat()
    )
    assert not downstream.success
    message = "\n".join(
        str(e.step_failure_data.error) for e in downstream.all_events if e.is_step_failure
    )
    assert f"raw/daily_bars {DAY} failed its checks" in message
    assert _files(data) == before

    # Once the source answers well again, the partition passes and downstream builds.
    fixed = _run(data, [dg.AssetKey(["raw", "daily_bars"])], DAY.isoformat(), DAY.isoformat())
    assert fixed.success
    assert store.rejection("raw", "daily_bars", DAY) is None
    rebuilt = _run(
        data, [*PROCESSED_KEYS, MINUTE_KEY, *EVENT_KEYS], DAY.isoformat(), NEXT_DAY.isoformat()
    )
    assert rebuilt.success
    assert _files(data) == before  # a deterministic rebuild: byte-identical partitions


def test_a_reversed_range_materializes_nothing(data):
    before = _files(data)
    result = _run(
        data, [dg.AssetKey(["processed", "daily_bars"])], NEXT_DAY.isoformat(), DAY.isoformat()
    )
    assert not result.success
    assert not result.get_asset_materialization_events()
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "selects no partition" in str(failure.step_failure_data.error)
    assert _files(data) == before
