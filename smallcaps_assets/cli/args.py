"""The ``smallcaps`` argument parser, its value types and the checks every command shares."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import tempfile
from pathlib import Path

from smallcaps_assets.cli.errors import CliError

DESCRIPTION = "The ``smallcaps`` command: run the demo, open the UIs, query the data."
DEFAULT_START = dt.date(2024, 1, 2)
DEFAULT_END = dt.date(2024, 12, 31)
# The simulated universe, its daily panel and its minute paths live in memory: 5,000 names take
# ~20 s and 1.2 GB to build, and the pipeline's time grows with them (2,000 names: ~45 minutes
# per canary seed). Larger counts spent minutes building before a run could even start.
MAX_TICKERS = 5_000


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2); ``--help`` shows the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from exc


def _ticker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if not 1 <= count <= MAX_TICKERS:
        raise argparse.ArgumentTypeError(f"{count} is outside 1..{MAX_TICKERS}")
    return count


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if seed < 0:
        raise argparse.ArgumentTypeError(f"{seed} is negative (seeds are 0 or more)")
    return seed


def _signal_strength(text: str) -> float:
    try:
        strength = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not math.isfinite(strength) or strength < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number >= 0")
    return strength


def check_window(args: argparse.Namespace) -> None:
    """``--start``/``--end`` in order (each command checks the rest of its input)."""
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start and end and end < start:
        raise CliError(f"--end {end} is before --start {start}")


def check_writable_root(root: str, what: str) -> None:
    """A local data root must be a folder this process can create files in (or create)."""
    if "://" in root:
        return  # object storage: checked by its first write
    path = Path(root).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        if existing == path:
            raise CliError(f"{what} {path} is a file, not a folder")
        raise CliError(f"{what} {path} cannot be created: {existing} is a file")
    try:
        # A real probe (the permission bits do not tell root or a read-only mount); it leaves
        # nothing behind.
        tempfile.TemporaryDirectory(dir=existing, prefix=".smallcaps-probe-").cleanup()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if existing == path:
            raise CliError(f"{what} {path} is not writable ({reason})") from exc
        raise CliError(f"{what} {path} cannot be created in {existing} ({reason})") from exc


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options; ``args.command`` names the module in this package that
    runs it."""
    parser = _Parser(prog="smallcaps", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="materialize every asset for a window on the simulated market"
    )
    demo.add_argument(
        "--start", type=_iso_date, default=DEFAULT_START, help="first session (YYYY-MM-DD)"
    )
    demo.add_argument(
        "--end", type=_iso_date, default=DEFAULT_END, help="last session (YYYY-MM-DD)"
    )
    demo.add_argument(
        "--tickers",
        type=_ticker_count,
        default=None,
        help=f"simulated tickers, 1..{MAX_TICKERS} (default 300; the market is built in memory, "
        "5,000 names take ~20 s and 1.2 GB before the first session)",
    )
    demo.add_argument(
        "--seed", type=_seed, default=None, help="simulator seed, 0 or more (default 7)"
    )
    demo.add_argument(
        "--signal",
        type=_signal_strength,
        default=None,
        help="planted signal strength >= 0, 0 = noise (default 1.0)",
    )
    demo.add_argument(
        "--data-dir", default=None, help="data root (default ./data or $SMALLCAPS_DATA_DIR)"
    )

    canary = sub.add_parser(
        "canary",
        help="leakage canary: the full pipeline at signal 0 must score AUC 0.50 +/- 0.02",
    )
    canary.add_argument("--start", type=_iso_date, default=dt.date(2024, 1, 2))
    canary.add_argument("--end", type=_iso_date, default=dt.date(2025, 2, 28))
    canary.add_argument(
        "--tickers",
        type=_ticker_count,
        default=2000,
        help=f"simulated tickers, 1..{MAX_TICKERS} (default 2000: ~45 minutes per seed)",
    )
    canary.add_argument("--seed", type=_seed, default=11, help="one seed (default 11)")
    canary.add_argument(
        "--seeds", type=_seed, nargs="+", default=None, help="several seeds, one market each"
    )
    canary.add_argument(
        "--signal", type=_signal_strength, default=0.0, help="planted signal >= 0 (default 0)"
    )
    canary.add_argument(
        "--data-dir", default=None, help="default data/canary-signal<signal>-seed<seed>"
    )

    ui = sub.add_parser("ui", help="start the Dagster UI and the MLflow UI on 127.0.0.1")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--dagster-port", type=int, default=3000)
    ui.add_argument("--mlflow-port", type=int, default=5000)

    sql = sub.add_parser(
        "sql",
        help='query every layer with DuckDB, e.g. smallcaps sql "select count(*) from raw.daily_bars"',
    )
    sql.add_argument("query")
    sql.add_argument("--max-rows", type=int, default=40)

    realism = sub.add_parser(
        "realism",
        help="stylized facts of a data root (gaps, volatility, gap-day fade, intraday volume, "
        "high of day) beside real small-cap ranges",
    )
    realism.add_argument(
        "--data-dir", default=None, help="data root (default ./data or $SMALLCAPS_DATA_DIR)"
    )
    realism.add_argument("--start", type=_iso_date, default=None, help="first session")
    realism.add_argument("--end", type=_iso_date, default=None, help="last session")
    realism.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a fact with enough observations is outside its real range",
    )

    doctor = sub.add_parser(
        "doctor", help="instance health, held pool slots and stuck runs; --fix frees them"
    )
    doctor.add_argument(
        "--fix", action="store_true", help="mark runs whose process is gone failed, free slots"
    )
    doctor.add_argument("--stuck-minutes", type=float, default=60.0, help="quiet run threshold")
    return parser
