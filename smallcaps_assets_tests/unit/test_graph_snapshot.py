"""The asset graph against its checked-in snapshot (graph_snapshot.json), so any change to the
graph shows up in review as a diff of that file.

For every asset of the code location: key, group, partitions, dependencies with their partition
mappings, check specs, automation condition, pool, kinds and backfill policy. A change to any of
them fails this test with a readable diff; when the change is intended, refresh the snapshot and
commit it with the change:

    SMALLCAPS_UPDATE_SNAPSHOT=1 uv run pytest smallcaps_assets_tests/unit/test_graph_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from smallcaps_assets.definitions import defs

SNAPSHOT = Path(__file__).with_name("graph_snapshot.json")
UPDATE_ENV = "SMALLCAPS_UPDATE_SNAPSHOT"
REFRESH = f"{UPDATE_ENV}=1 uv run pytest smallcaps_assets_tests/unit/test_graph_snapshot.py"

_PLAIN = (str, int, float, bool, type(None))


def _fields(value: object) -> dict[str, Any]:
    """The public fields of a Dagster record, NamedTuple or plain object, as JSON values."""
    if hasattr(value, "_asdict"):
        raw = value._asdict()
    else:
        raw = {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return {k: v if isinstance(v, _PLAIN) else str(v) for k, v in sorted(raw.items())}


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> dict[str, Any] | None:
    if partitions_def is None:
        return None
    out: dict[str, Any] = {"type": type(partitions_def).__name__}
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        out.update(
            start=partitions_def.start.isoformat(),
            end=partitions_def.end.isoformat() if partitions_def.end else None,
            timezone=partitions_def.timezone,
            cron_schedule=partitions_def.cron_schedule,
            fmt=partitions_def.fmt,
            end_offset=partitions_def.end_offset,
            exclusions=len(partitions_def.exclusions or ()),
        )
    elif isinstance(partitions_def, dg.StaticPartitionsDefinition):
        out["keys"] = sorted(partitions_def.get_partition_keys())
    else:
        out["repr"] = str(partitions_def)
    return out


def _mapping(mapping: dg.PartitionMapping | None) -> dict[str, Any] | None:
    if mapping is None:
        return None
    return {"type": type(mapping).__name__, **_fields(mapping)}


def _automation(condition: dg.AutomationCondition | None) -> list[str] | None:
    """The condition as an indented tree of its nodes' names, each with its label if any."""
    if condition is None:
        return None
    lines: list[str] = []

    def walk(node: dg.AutomationCondition, depth: int) -> None:
        label = node.get_label()
        lines.append("  " * depth + node.name + (f"  [{label}]" if label else ""))
        for child in node.children:
            walk(child, depth + 1)

    walk(condition, 0)
    return lines


def _backfill(policy: dg.BackfillPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "type": str(policy.policy_type),
        "max_partitions_per_run": policy.max_partitions_per_run,
    }


def graph_snapshot() -> dict[str, Any]:
    """Every asset of ``defs``, sorted by key, with every list inside sorted."""
    graph = defs.resolve_asset_graph()
    assets: dict[str, Any] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        checks = [
            {"name": spec.name, "blocking": spec.blocking}
            for spec in node.assets_def.check_specs
            if spec.asset_key == key
        ]
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": _partitions(node.partitions_def),
            "deps": [
                {
                    "key": parent.to_user_string(),
                    "partition_mapping": _mapping(graph.get_partition_mapping(key, parent)),
                }
                for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string())
            ],
            "checks": sorted(checks, key=lambda c: c["name"]),
            "automation": _automation(node.automation_condition),
            "pools": sorted(node.pools),
            "kinds": sorted(node.kinds),
            "backfill_policy": _backfill(node.backfill_policy),
        }
    return assets


def _render(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def _diff(recorded_text: str, current: dict[str, Any]) -> str:
    """What changed, asset by asset: each asset added, removed or changed, with a diff of its
    entry (the whole file's diff when the checked-in file is not valid JSON)."""
    try:
        recorded: dict[str, Any] = json.loads(recorded_text)
    except ValueError:
        return "".join(
            difflib.unified_diff(
                recorded_text.splitlines(keepends=True),
                _render(current).splitlines(keepends=True),
                fromfile=f"{SNAPSHOT.name} (checked in)",
                tofile="the graph now",
            )
        )
    parts: list[str] = []
    for key in sorted(set(recorded) | set(current)):
        if key not in current:
            parts.append(f"- asset {key} is gone")
        elif key not in recorded:
            parts.append(f"+ asset {key} is new:\n{_render(current[key])}")
        elif recorded[key] != current[key]:
            lines = difflib.unified_diff(
                _render(recorded[key]).splitlines(keepends=True),
                _render(current[key]).splitlines(keepends=True),
                fromfile=f"{key} (checked in)",
                tofile=f"{key} (now)",
            )
            parts.append(f"~ asset {key} changed:\n" + "".join(lines))
    return "\n".join(parts) or "(only the file's formatting differs)"


def test_the_asset_graph_matches_its_snapshot() -> None:
    snapshot = graph_snapshot()
    current = _render(snapshot)
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.write_text(current)
        return
    if not SNAPSHOT.exists():
        pytest.fail(f"{SNAPSHOT.name} is missing; write it with:\n    {REFRESH}", pytrace=False)
    recorded = SNAPSHOT.read_text()
    if current != recorded:
        pytest.fail(
            f"the asset graph differs from {SNAPSHOT.name}:\n{_diff(recorded, snapshot)}\n"
            "If the change is intended, refresh the snapshot and commit it with the change:\n"
            f"    {REFRESH}",
            pytrace=False,
        )


def test_the_snapshot_covers_every_asset_and_check() -> None:
    snapshot = graph_snapshot()
    graph = defs.resolve_asset_graph()
    assert set(snapshot) == {k.to_user_string() for k in graph.get_all_asset_keys()}
    recorded_checks = {(key, c["name"]) for key, a in snapshot.items() for c in a["checks"]}
    assert recorded_checks == {
        (k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys
    }
