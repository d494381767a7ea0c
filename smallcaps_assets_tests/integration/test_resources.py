"""The code location's resources: nothing is read from the environment at import time, the market
resource holds the data store it claims, and the DuckDB catalog finds its file when it is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import httpx
import pytest

from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.defs.resources import (
    CatalogDuckDBResource,
    DataStoreResource,
    MarketDataResource,
)
from smallcaps_assets.settings import SOURCE_FILE

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POLYGON_API_KEY", "SMALLCAPS_LOCAL_BARS", "SMALLCAPS_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "40")
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "11")


def test_definitions_read_the_data_dir_when_a_run_uses_it_not_when_imported(
    tmp_path: Path,
) -> None:
    """Imported with one SMALLCAPS_DATA_DIR, materialized with another: the second is used for
    the data, source.json and the DuckDB catalog, and the first is never created."""
    first, second = tmp_path / "first", tmp_path / "second"
    script = textwrap.dedent(
        f"""
        import os
        import dagster as dg
        from smallcaps_assets.definitions import defs

        os.environ["SMALLCAPS_DATA_DIR"] = {str(second)!r}
        assets = list(defs.get_repository_def().assets_defs_by_key.values())
        instance = dg.DagsterInstance.ephemeral()
        raw = dg.materialize(
            assets,
            selection=[dg.AssetKey(["raw", "tickers"])],
            partition_key="2024-03-04",
            instance=instance,
        )
        assert raw.success
        dg.materialize(
            assets,
            selection=[dg.AssetKey(["catalog", "raw"])],
            instance=instance,
            raise_on_error=False,
        )
        """
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "POLYGON_API_KEY" and not k.startswith("SMALLCAPS_")
    }
    env.update(
        SMALLCAPS_DATA_DIR=str(first),
        SMALLCAPS_SIM_TICKERS="40",
        SMALLCAPS_SIM_SEED="11",
        SMALLCAPS_MLRUNS_DIR=str(tmp_path / "mlruns"),
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert not first.exists()
    assert (second / SOURCE_FILE).exists()
    assert DataStore(str(second)).partitions("raw", "tickers")
    assert (second / "smallcaps.duckdb").exists()


def test_the_market_claims_its_nested_data_root(tmp_path: Path, sim_env: None) -> None:
    market = MarketDataResource(data=DataStoreResource(root=str(tmp_path / "held")))
    assert market.store().root == str(tmp_path / "held")
    market.client()
    assert json.loads((tmp_path / "held" / SOURCE_FILE).read_text())["simulator"]["seed"] == 11
    assert market.source_label() == "simulated(seed=11, tickers=40, signal=1.0)"
    market.check_sessions(sessions=[])  # nothing to check up front for the simulator

    # A store passed in wins (the asset bodies pass the one they write to).
    given = DataStore(str(tmp_path / "given"))
    market.client(given)
    assert (tmp_path / "given" / SOURCE_FILE).exists()


def test_without_a_nested_data_resource_the_default_root_is_used(
    tmp_path: Path, sim_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMALLCAPS_DATA_DIR", str(tmp_path / "default"))
    MarketDataResource().client()
    assert (tmp_path / "default" / SOURCE_FILE).exists()


class _Recording(MarketDataResource):
    """A test subclass in the old style: ``transport(self, store)`` with a required store."""

    def transport(self, store):  # type: ignore[no-untyped-def, override]
        _SEEN.append(store.root)
        return httpx.MockTransport(lambda request: httpx.Response(404))


_SEEN: list[str] = []


def test_subclasses_overriding_transport_get_the_resolved_store(
    tmp_path: Path, sim_env: None
) -> None:
    _SEEN.clear()
    _Recording(data=DataStoreResource(root=str(tmp_path / "nested"))).client()
    _Recording().client(DataStore(str(tmp_path / "given")))
    assert [str(tmp_path / "nested"), str(tmp_path / "given")] == _SEEN


def test_a_data_root_configured_at_launch_reaches_the_market(tmp_path: Path) -> None:
    """The code location wires the market's ``data`` to its ``data`` resource, so a root set in
    the launchpad (run config) is the one the market claims."""
    from smallcaps_assets.definitions import defs

    @dg.asset
    def probe(market: MarketDataResource, data: DataStoreResource) -> str:
        assert market.store().root == data.store().root
        return market.store().root

    resources = {k: defs.resources[k] for k in ("market", "data")}
    job = dg.Definitions(
        assets=[probe], resources=resources
    ).resolve_implicit_global_asset_job_def()
    root = str(tmp_path / "launched")
    run = job.execute_in_process(
        run_config={"resources": {"data": {"config": {"root": root}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert run.output_for_node("probe") == root


def test_the_catalog_path_is_derived_when_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = CatalogDuckDBResource()
    monkeypatch.setenv("SMALLCAPS_DATA_DIR", str(tmp_path / "later"))
    (tmp_path / "later").mkdir()  # the data root exists by the time a catalog is refreshed
    assert catalog.resolved().database == str(tmp_path / "later" / "smallcaps.duckdb")
    with catalog.get_connection() as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert (tmp_path / "later" / "smallcaps.duckdb").exists()

    explicit = CatalogDuckDBResource(database=str(tmp_path / "explicit.duckdb"))
    assert explicit.resolved() is explicit
    with explicit.get_connection() as conn:
        assert conn.execute("SELECT 42").fetchone() == (42,)
    assert (tmp_path / "explicit.duckdb").exists()
