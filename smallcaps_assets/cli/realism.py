"""``smallcaps realism``: stylized facts of a data root's stored processed bars beside real
small-cap ranges, read straight from the partitions (no Dagster run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from smallcaps_assets import settings
from smallcaps_assets.cli.errors import CliError
from smallcaps_assets.core import calendar
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.research.market_realism import measure_data_root, report_text


def check(args: argparse.Namespace) -> None:
    if args.start and args.end and not calendar.sessions(args.start, args.end):
        raise CliError(f"no NYSE session between {args.start} and {args.end}")


def run(args: argparse.Namespace) -> int:
    root = args.data_dir or settings.data_root()
    if "://" not in root:
        root = str(Path(root).expanduser().resolve())
    try:
        report = measure_data_root(DataStore(root), args.start, args.end)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    print(report_text(report, root))
    return 1 if args.strict and report.outside else 0
