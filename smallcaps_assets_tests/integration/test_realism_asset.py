"""``research/market_realism`` materialized through Dagster.

One module fixture builds a small simulated data root (40 names, March 2024: raw, processed
daily and minute bars) and materializes the month's realism partition. Whether the simulated
facts land inside the real ranges is not asserted here: that is the simulator's own test.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from smallcaps_assets.core import realism
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.core.validation import validate_schema
from smallcaps_assets.defs.checks import SCHEMA_CHECK
from smallcaps_assets.defs.processed import processed_assets
from smallcaps_assets.defs.raw import raw_assets, raw_minute_bars_asset
from smallcaps_assets.defs.realism import KEY, RANGES_CHECK, market_realism
from smallcaps_assets.research.market_realism import measure_data_root
from smallcaps_assets_tests.realism_fixtures import build_market, write_processed
from smallcaps_assets_tests.resource_fixtures import daily_graph_resources

PROJECT = Path(__file__).resolve().parents[2]
WARMUP, FIRST, LAST = "2024-02-29", "2024-03-01", "2024-03-28"
MONTH = "2024-03-01"
ASSETS = [*raw_assets, raw_minute_bars_asset, *processed_assets, market_realism]
RAW_KEYS = [dg.AssetKey(["raw", n]) for n in ("tickers", "daily_bars", "ticker_details", "splits")]
PROCESSED_KEYS = [
    dg.AssetKey(["processed", "universe"]),
    dg.AssetKey(["raw", "minute_bars"]),
    dg.AssetKey(["processed", "minute_bars"]),
]
DAILY_KEY = dg.AssetKey(["processed", "daily_bars"])
# A 40-name month holds a few hundred ticker-days and a handful of gap days: judge them anyway.
JUDGE_EVERYTHING = {"min_ticker_days": 1, "min_gap_days": 1, "min_gap_days_with_minutes": 1}


def _run(root: Path, keys: list[dg.AssetKey], start: str, end: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS,
        resources=daily_graph_resources(root),
        selection=keys,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _realism(
    root: Path, month: str = MONTH, minimums: dict[str, int] | None = None
) -> dg.ExecuteInProcessResult:
    config = {"ops": {"research__market_realism": {"config": minimums or {}}}}
    return dg.materialize(
        ASSETS,
        resources=daily_graph_resources(root),
        selection=[KEY],
        partition_key=month,
        run_config=config,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == KEY]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@dataclass(frozen=True)
class Built:
    root: Path
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    root = tmp_path_factory.mktemp("realism") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("POLYGON_API_KEY", raising=False)
        mp.setenv("SMALLCAPS_SIM_TICKERS", "40")
        mp.setenv("SMALLCAPS_SIM_SEED", "3")
        assert _run(root, RAW_KEYS, WARMUP, LAST).success
        # The warm-up session's processed bars give March 1 its previous close.
        assert _run(root, [DAILY_KEY], WARMUP, LAST).success
        assert _run(root, PROCESSED_KEYS, FIRST, LAST).success
        result = _realism(root, minimums=JUDGE_EVERYTHING)
    assert result.success
    return Built(root, result)


@pytest.fixture
def data(built: Built, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "40")
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "3")
    copy = tmp_path / "data"
    shutil.copytree(built.root, copy)
    return copy


def test_the_month_is_stored_as_facts_that_pass_their_model(built):
    frame = DataStore(str(built.root)).read("research", "market_realism", MONTH)
    assert frame.schema == realism.MARKET_REALISM_SCHEMA
    assert frame.get_column("month").unique().to_list() == [dt.date(2024, 3, 1)]
    assert frame.get_column("key").to_list() == [
        *realism.REAL_RANGES,
        *(p.value for p in realism.Population),
    ]
    assert validate_schema(realism.MarketRealismModel, frame).passed
    counts = dict(frame.select("key", "n").iter_rows())
    assert counts["ticker_days"] > 300
    assert counts["gap_days_with_minutes"] <= counts["gap_days"]
    # March 1 is in the sample: its previous close came from February 29's partition.
    month = measure_data_root(DataStore(str(built.root)), dt.date(2024, 3, 1), dt.date(2024, 3, 31))
    assert month.first_day == dt.date(2024, 3, 1)
    assert month.samples.count(realism.Population.TICKER_DAYS) == counts["ticker_days"]


def test_metadata_has_the_fact_table_counts_and_three_png_histograms(built):
    metadata = _metadata(built.result)
    table = str(metadata["facts"])
    for spec in realism.REAL_RANGES.values():
        assert spec.label in table
    assert realism.REAL_RANGES_SOURCE in table
    assert metadata["sessions"] == metadata["month_sessions"] == 20
    assert metadata["first_session"] == FIRST
    assert metadata["last_session"] == LAST
    assert isinstance(metadata["ticker_days"], int)
    assert metadata["ticker_days"] > 300
    for name in ("gap_sizes", "gap_day_open_to_close", "hod_minute"):
        markdown = str(metadata[f"histogram_{name}"])
        payload = base64.b64decode(markdown.split("base64,")[1].rstrip(")"))
        assert payload.startswith(b"\x89PNG"), name


def test_the_range_check_only_warns_and_the_schema_check_blocks(built):
    specs = {spec.name: spec for spec in market_realism.check_specs}
    assert specs[SCHEMA_CHECK].blocking
    assert not specs[RANGES_CHECK].blocking
    checks = _checks(built.result)
    assert checks[SCHEMA_CHECK].passed
    assert checks[RANGES_CHECK].severity == dg.AssetCheckSeverity.WARN


def test_a_fact_outside_its_range_warns_and_the_run_still_succeeds(data):
    store = DataStore(str(data))
    # Quote every bar at a quarter of its price: the median previous close falls far below $7.90.
    for day in store.partitions("processed", "daily_bars"):
        bars = store.read("processed", "daily_bars", day)
        store.write(
            "processed",
            "daily_bars",
            day,
            bars.with_columns(pl.col(c) / 4 for c in ("open", "high", "low", "close", "vwap")),
        )
    result = _realism(data, minimums=JUDGE_EVERYTHING)
    assert result.success
    check = _checks(result)[RANGES_CHECK]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert "median_previous_close" in str(check.metadata["failure_sample"].value)
    assert "median_previous_close" in _metadata(result)["outside"]  # type: ignore[operator]
    frame = store.read("research", "market_realism", MONTH)
    assert frame.filter(pl.col("key") == "median_previous_close").get_column(
        "status"
    ).to_list() == ["outside"]


def test_default_minimums_leave_a_40_name_month_insufficient_and_passing(data):
    result = _realism(data)
    assert result.success
    assert _checks(result)[RANGES_CHECK].passed
    frame = DataStore(str(data)).read("research", "market_realism", MONTH)
    judged = frame.filter(pl.col("status").is_in(["inside", "outside"]))
    assert judged.is_empty(), judged


def test_a_month_without_processed_bars_fails_naming_the_month(data):
    result = _realism(data, month="2024-05-01")
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()  # type: ignore[union-attr]
    assert "research/market_realism 2024-05" in message
    assert "no processed/daily_bars partition" in message


def test_the_cli_prints_the_stored_facts(built):
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "smallcaps"),
            "realism",
            "--data-dir",
            str(built.root),
            "--start",
            FIRST,
            "--end",
            "2024-03-31",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    stored = DataStore(str(built.root)).read("research", "market_realism", MONTH)
    for row in stored.iter_rows(named=True):
        line = next(line for line in done.stdout.splitlines() if line.startswith(row["label"]))
        assert realism.format_value(row["key"], row["value"]) in line, line


def test_a_ranged_run_reports_each_month_and_the_facts_pooled_over_the_run(tmp_path):
    # A hand-built root (Jan-Jun 2024): any data root works, simulated or not.
    root = tmp_path / "data"
    write_processed(str(root), build_market())
    result = dg.materialize(
        ASSETS,
        resources=daily_graph_resources(root),
        selection=[KEY],
        tags={
            "dagster/asset_partition_range_start": "2024-01-01",
            "dagster/asset_partition_range_end": "2024-06-01",
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    store = DataStore(str(root))
    assert store.partitions("research", "market_realism") == [
        f"2024-{m:02d}-01" for m in range(1, 7)
    ]
    events = result.get_asset_materialization_events()
    assert sorted(e.partition for e in events) == store.partitions("research", "market_realism")
    for event in events:
        metadata = event.materialization.metadata
        # Each month's own table, and the run's range pooled (the verdict a month cannot give).
        assert "facts" in metadata
        assert realism.REAL_RANGES_SOURCE in str(metadata["facts_over_run"].value)
        assert metadata["outside_over_run"].value == []
    pooled = realism.measure_realism(*_stored_bars(store))
    assert pooled.outside == []
    checks = _checks(result)
    assert checks[SCHEMA_CHECK].passed
    assert checks[RANGES_CHECK].metadata["partitions_checked"].value == 6


def _stored_bars(store: DataStore) -> tuple[pl.DataFrame, pl.DataFrame]:
    daily = store.read_many("processed", "daily_bars", store.partitions("processed", "daily_bars"))
    minutes = store.read_many(
        "processed", "minute_bars", store.partitions("processed", "minute_bars")
    )
    return daily, minutes


def test_the_code_location_runs_it_monthly_after_the_sessions_checks():
    from smallcaps_assets.definitions import defs
    from smallcaps_assets.defs.partitions import months

    repo = defs.get_repository_def()
    asset = repo.assets_defs_by_key[KEY]
    assert asset.partitions_def == months
    assert asset.group_names_by_key[KEY] == "research"
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    assert {k.to_user_string() for k in asset.asset_deps[KEY]} == {
        "processed/daily_bars",
        "processed/minute_bars",
    }
    condition = asset.automation_conditions_by_key[KEY]
    assert condition is not None
    assert condition.get_label() == "eager after upstream checks"
    # A report: nothing in the graph reads it.
    assert not repo.asset_graph.get(KEY).child_keys
