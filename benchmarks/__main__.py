"""``make bench``: run every benchmark and write benchmarks/RESULTS.md and results.json."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from benchmarks import bench_backfills, bench_events, bench_ingestion, bench_stages
from smallcaps_assets.core.catalog import markdown_table

HERE = Path(__file__).resolve().parent


def _environment() -> dict[str, str]:
    import os

    return {
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "polars": version("polars"),
        "pandas": version("pandas"),
        "numpy": version("numpy"),
        "dagster": version("dagster"),
        "httpx": version("httpx"),
        # Other load on the machine skews absolute figures; same-run ratios are what to compare.
        "load_average_1m_at_start": f"{os.getloadavg()[0]:.2f}",
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
    lines.append(markdown_table(["environment", ""], list(env.items())))
    for name, section in results.items():
        if name == "environment" or not isinstance(section, dict):
            continue
        rows: list[tuple[object, ...]] = []
        for key, value in section.items():
            if isinstance(value, dict):
                rows += [(f"{key}.{inner}", figure) for inner, figure in value.items()]
            else:
                rows.append((key, value))
        lines += ["", f"## {name}", "", markdown_table(["figure", "value"], rows)]
    return "\n".join(lines) + "\n"


# Section name -> what runs it, in the order they run (cheap and latency-bound first).
BENCHMARKS: dict[str, Callable[[], dict[str, object]]] = {
    "ingestion": bench_ingestion.run,
    "events": bench_events.run,
    "stages": bench_stages.run,
    "backfills": bench_backfills.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(BENCHMARKS),
        help="run these sections only (RESULTS.md is then not rewritten)",
    )
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    results: dict[str, object] = {"environment": _environment()}
    started = time.perf_counter()
    for name in names:
        print(f"{name} ...", flush=True)
        section_started = time.perf_counter()
        section = BENCHMARKS[name]()
        section["section_wall_s"] = round(time.perf_counter() - section_started, 1)
        results[name] = section
        print(f"{name}: {section['section_wall_s']} s", flush=True)
    results["harness"] = {"wall_s": round(time.perf_counter() - started, 1), "target": "< 900 s"}
    text = _markdown(results)
    print(text)
    if args.only:
        return 0
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "RESULTS.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
