"""The Dagster beta warnings of the project's own declarations are silenced, and only those: the
definitions load and a small demo runs with every Beta/Preview warning an error, while the same
beta parameter used elsewhere, or any other beta feature, still warns."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import dagster as dg

from smallcaps_assets import warnings_filter

PROJECT = Path(__file__).resolve().parents[2]

# Any Beta or Preview warning not filtered by the project raises: at import, in the CLI, in a run.
STRICT = textwrap.dedent(
    """
    import sys
    import warnings

    import dagster as dg

    warnings.simplefilter("error", dg.BetaWarning)
    warnings.simplefilter("error", dg.PreviewWarning)

    import smallcaps_assets.definitions
    from smallcaps_assets.cli import main

    sys.exit(main(sys.argv[1:]))
    """
)


def test_definitions_and_a_demo_raise_no_beta_or_preview_warning(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k != "POLYGON_API_KEY"}
    env.update(DAGSTER_HOME=str(home), SMALLCAPS_MLRUNS_DIR=str(tmp_path / "mlruns"))
    args = ["--start", "2024-03-01", "--end", "2024-03-01", "--tickers", "5", "--seed", "3"]
    done = subprocess.run(
        [sys.executable, "-c", STRICT, "demo", *args, "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stderr, done.stderr
    assert done.stdout.startswith("smallcaps demo: "), done.stdout[:500]


def _declare(module: str) -> list[warnings.WarningMessage]:
    """The warnings of the project's two beta declarations made from ``module``, with only the
    project's filters installed."""
    code = textwrap.dedent(
        """
        mapping = dg.TimeWindowPartitionMapping(
            start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
        )

        @dg.asset(backfill_policy=dg.BackfillPolicy.single_run())
        def probe() -> None: ...
        """
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings_filter.install()
        exec(code, {"__name__": module, "dg": dg})
    return caught


def test_the_project_declarations_warn_nothing():
    assert [str(w.message) for w in _declare("smallcaps_assets.defs.probe")] == []


def test_the_same_parameter_outside_the_project_still_warns():
    caught = _declare("someone_elses.assets")
    # backfill_policy is attributed to Dagster's own decorator module, so it is silenced
    # wherever it is used; the partition mapping's warning names its caller.
    assert [w.category for w in caught] == [dg.BetaWarning]
    assert "allow_nonexistent_upstream_partitions" in str(caught[0].message)


def test_an_unrelated_beta_or_preview_warning_is_still_shown():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings_filter.install()
        warnings.warn("an unrelated beta feature", dg.BetaWarning, stacklevel=1)
        warnings.warn("an unrelated preview feature", dg.PreviewWarning, stacklevel=1)
    assert [w.category for w in caught] == [dg.BetaWarning, dg.PreviewWarning]
