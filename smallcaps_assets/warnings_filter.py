"""Silence the Dagster beta warnings the project's own declarations trigger, and only those.

The project knowingly uses two beta parameters: ``backfill_policy=`` on
``@asset`` (single-run backfills of the daily layers) and
``allow_nonexistent_upstream_partitions=`` on ``TimeWindowPartitionMapping`` (a window reaching
before the first partition). Dagster warns at every declaration, ~30 lines before the project
prints its first one. Each filter matches one message; any other Beta or Preview warning (a new
beta API, a Dagster upgrade that marks something else) is still shown.

Imported first by ``definitions.py`` and by the CLI modules that load asset definitions; the
filters must be in place before the assets are declared.
"""

from __future__ import annotations

import re
import warnings

import dagster as dg

# (category, message, module the warning is attributed to)
KNOWN: tuple[tuple[type[Warning], str, str], ...] = (
    # Dagster attributes this one to its own decorator module, not to the module that declares
    # the asset, so no filter can tell the project's @asset from another's.
    (
        dg.BetaWarning,
        "Parameter `backfill_policy` of function `asset` is currently in beta",
        r"dagster\._core\.decorator_utils$",
    ),
    (
        dg.BetaWarning,
        "Parameter `allow_nonexistent_upstream_partitions` of initializer "
        "`TimeWindowPartitionMapping.__init__` is currently in beta",
        r"smallcaps_assets\.",
    ),
)


def install() -> None:
    """Add the filters (idempotent: ``warnings.filterwarnings`` drops an identical filter first)."""
    for category, message, module in KNOWN:
        warnings.filterwarnings(
            "ignore", message=re.escape(message), category=category, module=module
        )


install()
