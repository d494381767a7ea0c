"""``make bench``: run every benchmark and write benchmarks/RESULTS.md and results.json."""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

from benchmarks import bench_events

HERE = Path(__file__).resolve().parent


def _environment() -> dict[str, str]:
    import os

    return {
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "polars": version("polars"),
        "pandas": version("pandas"),
        "numpy": version("numpy"),
    }


def _markdown(results: dict[str, object]) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench`; ratios are measured in the same run.",
        "",
    ]
    env = results["environment"]
    assert isinstance(env, dict)
    lines += ["| environment | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in env.items()]
    for name, section in results.items():
        if name == "environment" or not isinstance(section, dict):
            continue
        lines += ["", f"## {name}", "", "| figure | value |", "|---|---|"]
        for key, value in section.items():
            if isinstance(value, dict):
                for inner, figure in value.items():
                    lines.append(f"| {key}.{inner} | {figure} |")
            else:
                lines.append(f"| {key} | {value} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    results: dict[str, object] = {"environment": _environment()}
    print("features and labels ...", flush=True)
    results["events"] = bench_events.run()
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "RESULTS.md").write_text(_markdown(results))
    print(_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
