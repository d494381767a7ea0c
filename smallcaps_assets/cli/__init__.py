"""The ``smallcaps`` command: run the demo, open the UIs, query the data.

One module per command (``demo``, ``canary``, ``ui``, ``sql``, ``realism``, ``doctor``), each with
``run(args)`` and, where more of its input can be refused before anything is written,
``check(args)``; ``args`` holds the parser, ``report`` the demo's summary, ``layers`` the layers the
demo runs and ``instance`` the Dagster instance the commands use.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from types import ModuleType

from smallcaps_assets import processes
from smallcaps_assets.cli.args import build_parser, check_window
from smallcaps_assets.cli.errors import CliError

__all__ = ["CliError", "build_parser", "main"]

# Dagster runs in this process for these, and takes over SIGTERM/SIGINT while it does.
_WATCHED = ("demo", "canary")


def _command(name: str) -> ModuleType:
    # Imports are deferred for start-up time here and in sql's in-memory fallback only: dagster,
    # mlflow, pandera and polars take seconds to import, so a command's module (and what it
    # imports) is loaded once that command is chosen, `smallcaps --help` or a usage error answers
    # at once, and `smallcaps sql` over the catalog file needs only duckdb and polars.
    return importlib.import_module(f"smallcaps_assets.cli.{name}")


def _run(args: argparse.Namespace) -> int:
    command = _command(args.command)
    check = getattr(command, "check", None)
    if check is not None:
        check(args)
    return int(command.run(args))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_window(args)
        if args.command not in _WATCHED:
            return _run(args)
        # The watch makes a stop signal end the command within seconds whatever the run is doing.
        with processes.StopWatch(grace=10.0) as watch:
            code = _run(args)
        if watch.received is not None:
            print(f"smallcaps: stopped by {signal.Signals(watch.received).name}", file=sys.stderr)
            return 128 + watch.received
        return code
    except CliError as exc:
        print(f"smallcaps: {exc}", file=sys.stderr)
        return 2
    except processes.Stopped as stop:
        print(f"smallcaps: stopped by {stop.name}", file=sys.stderr)
        return stop.exit_code
