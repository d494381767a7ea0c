"""Asset bodies stay thin: read, call core/, write, report (computation lives in core/)."""

from __future__ import annotations

import ast

from smallcaps_assets.settings import project_root

MAX_BODY_LINES = 25
DECORATORS = {"asset", "multi_asset", "asset_check", "sensor", "schedule"}


def _decorated_bodies() -> list[tuple[int, str]]:
    rows = []
    for path in sorted((project_root() / "smallcaps_assets" / "defs").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            names = {
                getattr(d.func if isinstance(d, ast.Call) else d, "attr", None)
                or getattr(d.func if isinstance(d, ast.Call) else d, "id", None)
                for d in node.decorator_list
            }
            if names & DECORATORS:
                end = node.end_lineno or node.lineno
                rows.append((end - node.body[0].lineno + 1, f"{path.name}:{node.name}"))
    return sorted(rows, reverse=True)


def test_no_asset_body_is_longer_than_the_limit(capsys):
    rows = _decorated_bodies()
    assert len(rows) >= 10  # the scan finds the graph's assets, sensors and schedules
    longest = rows[:5]
    with capsys.disabled():
        print("\nlongest asset bodies:", ", ".join(f"{name} {n}" for n, name in longest))
    too_long = [(n, name) for n, name in rows if n > MAX_BODY_LINES]
    assert not too_long, f"asset bodies over {MAX_BODY_LINES} lines: {too_long}"


def test_the_scan_would_catch_a_long_body(tmp_path, monkeypatch):
    fake = tmp_path / "smallcaps_assets" / "defs"
    fake.mkdir(parents=True)
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_BODY_LINES + 1))
    (fake / "long.py").write_text(f"import dagster as dg\n\n@dg.asset\ndef big():\n{body}\n")
    monkeypatch.setattr(f"{__name__}.project_root", lambda: tmp_path)
    assert _decorated_bodies() == [(MAX_BODY_LINES + 1, "long.py:big")]
