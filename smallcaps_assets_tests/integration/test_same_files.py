"""The same inputs give the same files: a small simulated window materialized raw -> processed ->
events -> labels must reproduce, byte for byte, the partition files recorded in
``window_digests.json``. The digests were recorded by the code before the one-way-architecture
refactor (issue 17), so a refactor that changes any file shows up here. A deliberate change of
what a dataset holds refreshes them: ``SMALLCAPS_UPDATE_DIGESTS=1 uv run pytest <this file>``."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import dagster as dg
import pytest

from smallcaps_assets.defs.processed import (
    EVENT_DATASETS,
    PROCESSED_DATASETS,
    event_assets,
    processed_assets,
)
from smallcaps_assets.defs.raw import RAW_DATASETS, raw_assets, raw_minute_bars_asset
from smallcaps_assets_tests.resource_fixtures import daily_graph_resources

DIGESTS = Path(__file__).with_name("window_digests.json")
WARMUP, FIRST, LAST = "2024-02-29", "2024-03-01", "2024-03-06"


def _run(root: Path, keys: list[dg.AssetKey], start: str, end: str) -> None:
    resources = {k: v for k, v in daily_graph_resources(root).items() if k != "duckdb"}
    result = dg.materialize(
        [*raw_assets, raw_minute_bars_asset, *processed_assets, *event_assets],
        resources=resources,
        selection=keys,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success


def build_window(root: Path) -> dict[str, str]:
    _run(root, [dg.AssetKey(["raw", d.name]) for d in RAW_DATASETS], WARMUP, LAST)
    downstream = [
        *(dg.AssetKey(["processed", d.name]) for d in PROCESSED_DATASETS),
        dg.AssetKey(["raw", "minute_bars"]),
        *(dg.AssetKey([d.layer, d.name]) for d in EVENT_DATASETS),
    ]
    _run(root, downstream, FIRST, LAST)
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*.parquet"))
        if "_quarantine" not in path.parts
    }


def test_a_small_window_reproduces_the_recorded_files(tmp_path, monkeypatch):
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "60")
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "52")
    digests = build_window(tmp_path / "data")
    if os.environ.get("SMALLCAPS_UPDATE_DIGESTS"):
        DIGESTS.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"digests written to {DIGESTS}")
    recorded = json.loads(DIGESTS.read_text())
    assert sorted(digests) == sorted(recorded), "the window's partition files differ in name"
    changed = sorted(k for k in recorded if digests[k] != recorded[k])
    assert not changed, f"{len(changed)} of {len(recorded)} files differ: {changed[:10]}"
