"""The raw layer materialized through Dagster on the simulated market (small partitions)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest

from smallcaps_assets.defs.raw import RAW_DATASETS, raw_assets
from smallcaps_assets.defs.resources import (
    DataStoreResource,
    MarketDataResource,
    UniverseRulesResource,
)
from smallcaps_assets.sources.errors import PolygonAuthError, PolygonSchemaError

RANGE = ("2024-03-01", "2024-03-05")  # Fri, Mon, Tue
SECRET = "sk-test-0123456789abcdef-NEVER-LOG"


@pytest.fixture
def sim_env(tmp_path, monkeypatch):
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "40")
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "11")
    monkeypatch.setenv("SMALLCAPS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _materialize(resources, *, partition_key=None, tags=None, selection=None, instance=None):
    return dg.materialize(
        raw_assets,
        resources={"universe_rules": UniverseRulesResource(), **resources},
        partition_key=partition_key,
        tags=tags,
        selection=selection,
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _range_tags(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_raw_range_is_one_run_with_a_file_and_metadata_per_partition(sim_env):
    resources = {"market": MarketDataResource(), "data": DataStoreResource()}
    result = _materialize(resources, tags=_range_tags(*RANGE))
    assert result.success
    sessions = ["2024-03-01", "2024-03-04", "2024-03-05"]
    for dataset in RAW_DATASETS:
        folder = sim_env / "raw" / dataset.name
        assert sorted(p.name for p in folder.iterdir()) == [f"date={d}" for d in sessions], (
            dataset.name
        )
    events = result.get_asset_materialization_events()
    by_asset: dict[str, list[str]] = {}
    for event in events:
        mat = event.event_specific_data.materialization
        by_asset.setdefault(mat.asset_key.to_user_string(), []).append(mat.partition)
        assert "dagster/row_count" in mat.metadata
        assert {"first", "last", "path", "sha256"} <= set(mat.metadata)
    assert by_asset.keys() == {f"raw/{d.name}" for d in RAW_DATASETS}
    assert all(sorted(parts) == sessions for parts in by_asset.values())
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 2 * len(RAW_DATASETS) + sum(d.rows_expected for d in RAW_DATASETS)
    assert all(c.passed for c in checks), [
        (c.asset_key, c.check_name) for c in checks if not c.passed
    ]
    bars = pl.read_parquet(sim_env / "raw/daily_bars/date=2024-03-04/part-0.parquet")
    assert bars.height > 20
    assert (bars["date"] == dt.date(2024, 3, 4)).all()
    tickers = pl.read_parquet(sim_env / "raw/tickers/date=2024-03-04/part-0.parquet")
    assert tickers["active"].any()
    details = pl.read_parquet(sim_env / "raw/ticker_details/date=2024-03-04/part-0.parquet")
    assert details.height > 0
    assert set(details["type"].unique()) == {"CS"}
    source = json.loads((sim_env / "source.json").read_text())
    assert source["simulator"]["seed"] == 11


def test_ticker_details_follow_the_configured_price_band(sim_env, tmp_path):
    day = "2024-03-04"
    selection = [
        d.key for d in RAW_DATASETS if d.name in ("tickers", "daily_bars", "ticker_details")
    ]
    asked: dict[float, set[str]] = {}
    for price_max in (20.0, 60.0):
        root = tmp_path / f"cap-{price_max:g}"
        resources = {
            "market": MarketDataResource(),
            "data": DataStoreResource(root=str(root)),
            "universe_rules": UniverseRulesResource(price_max=price_max),
        }
        previous = [d.key for d in RAW_DATASETS if d.name == "daily_bars"]
        assert _materialize(resources, partition_key="2024-03-01", selection=previous).success
        assert _materialize(resources, partition_key=day, selection=selection).success
        details = pl.read_parquet(root / f"raw/ticker_details/date={day}/part-0.parquet")
        asked[price_max] = set(details["ticker"])
    closes = pl.read_parquet(tmp_path / "cap-60/raw/daily_bars/date=2024-03-01/part-0.parquet")
    between = set(closes.filter(pl.col("close").is_between(20.0, 60.0, closed="right"))["ticker"])
    assert asked[20.0] < asked[60.0]
    assert asked[60.0] - asked[20.0] <= between
    assert asked[60.0] - asked[20.0]  # names above $20 are asked once the band includes them


def test_rematerializing_gives_the_same_files(sim_env):
    resources = {"market": MarketDataResource(), "data": DataStoreResource()}
    instance = dg.DagsterInstance.ephemeral()
    assert _materialize(resources, partition_key="2024-03-04", instance=instance).success
    before = _files(sim_env)
    again = _materialize(resources, partition_key="2024-03-04", instance=instance)
    assert again.success
    assert _files(sim_env) == before
    writes = {
        e.event_specific_data.materialization.metadata["write"].value
        for e in again.get_asset_materialization_events()
    }
    assert writes == {"unchanged"}
    assert not (sim_env / "_versions").exists()


def test_invalid_partition_key_is_refused_before_anything_is_written(sim_env):
    resources = {"market": MarketDataResource(), "data": DataStoreResource()}
    with pytest.raises(dg.DagsterUnknownPartitionError, match=r"partition with key `2024-07-04`"):
        _materialize(resources, partition_key="2024-07-04")
    assert not (sim_env / "raw").exists()


class _FakeApi(MarketDataResource):
    """The real-API code path with a scripted transport."""

    def transport(self, store):  # type: ignore[override]
        return httpx.MockTransport(_SCRIPT[0])


_SCRIPT: list = []


def test_bad_api_key_fails_clearly_without_leaking_it_or_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", SECRET)

    def unauthorized(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {SECRET}"
        assert SECRET not in str(request.url)
        return httpx.Response(
            401, json={"status": "ERROR", "request_id": "x", "error": "Unknown API Key"}
        )

    _SCRIPT[:] = [unauthorized]
    resources = {"market": _FakeApi(), "data": DataStoreResource(root=str(tmp_path))}
    result = _materialize(resources, partition_key="2024-03-04", selection=["raw/daily_bars"])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    text = json.dumps(error.to_string() if hasattr(error, "to_string") else str(error))
    assert PolygonAuthError.__name__ in text
    assert "POLYGON_API_KEY" in text
    assert SECRET not in text
    assert not list(tmp_path.rglob("*.parquet"))


def test_response_missing_a_required_field_fails_clearly_without_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", SECRET)

    def grouped_without_close(request: httpx.Request) -> httpx.Response:
        bar = {
            "T": "ABCD",
            "v": 1000.0,
            "vw": 2.0,
            "o": 2.0,
            "h": 2.1,
            "l": 1.9,
            "t": 1709586000000,
            "n": 10,
        }
        return httpx.Response(
            200, json={"status": "OK", "resultsCount": 1, "adjusted": False, "results": [bar]}
        )

    _SCRIPT[:] = [grouped_without_close]
    resources = {"market": _FakeApi(), "data": DataStoreResource(root=str(tmp_path))}
    result = _materialize(resources, partition_key="2024-03-04", selection=["raw/daily_bars"])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = str(failure.step_failure_data.error.to_string())
    assert PolygonSchemaError.__name__ in text
    assert "'c'" in text or '"c"' in text or " c " in text
    assert SECRET not in text
    assert not list(tmp_path.rglob("*.parquet"))


def test_failed_schema_check_blocks_and_reports_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", SECRET)

    def inconsistent_ohlc(request: httpx.Request) -> httpx.Response:
        good = {
            "T": "GOOD",
            "v": 10.0,
            "vw": 2.0,
            "o": 2.0,
            "h": 2.1,
            "l": 1.9,
            "c": 2.0,
            "t": 1709586000000,
            "n": 1,
        }
        bad = {
            "T": "BAD",
            "v": 10.0,
            "vw": 2.0,
            "o": 2.0,
            "h": 1.5,
            "l": 1.9,
            "c": 2.0,
            "t": 1709586000000,
            "n": 1,
        }
        return httpx.Response(
            200, json={"status": "OK", "resultsCount": 2, "adjusted": False, "results": [good, bad]}
        )

    _SCRIPT[:] = [inconsistent_ohlc]
    resources = {"market": _FakeApi(), "data": DataStoreResource(root=str(tmp_path))}
    result = _materialize(resources, partition_key="2024-03-04", selection=["raw/daily_bars"])
    assert not result.success  # a blocking check failed
    (schema,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "schema"]
    assert not schema.passed
    assert schema.metadata["failing_rows"].value >= 1
    sample = schema.metadata["failure_sample"].value.records
    assert any("BAD" in str(r.data["failure_case"]) for r in sample)


def test_a_session_before_its_close_is_refused_without_a_request_or_file(sim_env, monkeypatch):
    from smallcaps_assets.core.calendar import NY
    from smallcaps_assets.defs import raw

    # The schedule's partition exists from midnight; at 15:30 the session is still trading.
    monkeypatch.setattr(
        raw, "utc_now", lambda: dt.datetime(2024, 3, 5, 15, 30, tzinfo=NY).astimezone(dt.UTC)
    )
    resources = {"market": MarketDataResource(), "data": DataStoreResource()}
    result = _materialize(
        resources, tags=_range_tags("2024-03-04", "2024-03-05"), selection=["raw/daily_bars"]
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    assert "raw/daily_bars: session(s) 2024-03-05 have not closed yet" in error.cause.message
    assert not (sim_env / "raw").exists()  # neither session written: nothing half-done
    monkeypatch.setattr(
        raw, "utc_now", lambda: dt.datetime(2024, 3, 5, 16, 0, tzinfo=NY).astimezone(dt.UTC)
    )
    assert _materialize(
        resources, tags=_range_tags("2024-03-04", "2024-03-05"), selection=["raw/daily_bars"]
    ).success


def test_polygon_and_simulated_data_never_share_a_data_root(sim_env, monkeypatch):
    resources = {"market": MarketDataResource(), "data": DataStoreResource()}
    assert _materialize(resources, partition_key="2024-03-04", selection=["raw/splits"]).success
    # The key appears: the simulated root refuses Polygon data before any request.
    monkeypatch.setenv("POLYGON_API_KEY", SECRET)
    _SCRIPT[:] = [lambda request: pytest.fail("no request may be sent")]
    fake = {"market": _FakeApi(), "data": DataStoreResource()}
    refused = _materialize(fake, partition_key="2024-03-05", selection=["raw/splits"])
    assert not refused.success
    [failure] = [e for e in refused.all_events if e.is_step_failure]
    assert "holds the simulated market, but POLYGON_API_KEY is set" in (
        failure.step_failure_data.error.cause.message
    )
    assert not (sim_env / "raw/splits/date=2024-03-05").exists()

    # A Polygon root (marked by its first real run) refuses the simulator when the key is lost.
    polygon_root = sim_env.parent / "polygon-data"
    _SCRIPT[:] = [lambda request: httpx.Response(200, json={"status": "OK", "results": []})]
    real = {"market": _FakeApi(), "data": DataStoreResource(root=str(polygon_root))}
    assert _materialize(real, partition_key="2024-03-04", selection=["raw/splits"]).success
    assert json.loads((polygon_root / "source.json").read_text()) == {"source": "polygon"}
    monkeypatch.delenv("POLYGON_API_KEY")
    lost_key = {"market": MarketDataResource(), "data": DataStoreResource(root=str(polygon_root))}
    lost = _materialize(lost_key, partition_key="2024-03-05", selection=["raw/splits"])
    assert not lost.success
    assert not (polygon_root / "raw/splits/date=2024-03-05").exists()
