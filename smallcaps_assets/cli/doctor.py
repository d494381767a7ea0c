"""``smallcaps doctor``: instance health, held pool slots and stuck runs (smallcaps_assets.doctor)."""

from __future__ import annotations

import argparse

import smallcaps_assets.warnings_filter  # noqa: F401  (before the assets are declared)
from smallcaps_assets import doctor
from smallcaps_assets.cli.instance import ensure_instance


def run(args: argparse.Namespace) -> int:
    ensure_instance()
    return doctor.run(fix=args.fix, stuck_minutes=args.stuck_minutes)
