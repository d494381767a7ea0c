"""``smallcaps ui``: the Dagster UI (``dagster dev``) and the MLflow UI, stopped together."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

from smallcaps_assets import processes, settings
from smallcaps_assets.cli.errors import CliError
from smallcaps_assets.cli.instance import ensure_instance


def run(args: argparse.Namespace) -> int:
    home = ensure_instance()
    dagster_bin = shutil.which("dagster")
    mlflow_bin = shutil.which("mlflow")
    if dagster_bin is None or mlflow_bin is None:
        raise CliError("dagster/mlflow are not on PATH; run `make ui` (it installs first)")
    mlruns = settings.mlruns_root().resolve()
    mlruns.mkdir(parents=True, exist_ok=True)
    mlflow_command = [
        mlflow_bin,
        "server",
        "--backend-store-uri",
        f"sqlite:///{mlruns / 'mlflow.db'}",
        "--default-artifact-root",
        (mlruns / "artifacts").as_uri(),
        "--host",
        args.host,
        "--port",
        str(args.mlflow_port),
        "--workers",
        "1",
    ]
    print(
        f"Dagster UI:  http://{args.host}:{args.dagster_port}   (instance {home})\n"
        f"MLflow UI:   http://{args.host}:{args.mlflow_port}   (store {mlruns})\n"
        "Ctrl-C stops both.",
        flush=True,
    )
    if os.environ.get("MLFLOW_TRACKING_URI"):
        # The URI itself is not printed: a tracking server URI may carry credentials.
        print(
            "Note: MLFLOW_TRACKING_URI is set, so new runs are tracked on that server, "
            "not in the local store shown here.",
            flush=True,
        )
    # dagster dev runs in the instance folder: the dagster CLI lets a .env in its working
    # directory override DAGSTER_HOME, and the checkout's .env (written by make) names the
    # project's instance, not necessarily the one printed above. The code location still runs
    # from the checkout.
    with tempfile.TemporaryDirectory(prefix="smallcaps-ui-") as scratch:
        workspace = Path(scratch) / "workspace.yaml"
        workspace.write_text(
            "load_from:\n"
            "  - python_module:\n"
            "      module_name: smallcaps_assets.definitions\n"
            "      location_name: smallcaps_assets\n"
            f"      working_directory: {json.dumps(str(settings.project_root()))}\n"
        )
        dagster_command = [
            dagster_bin,
            "dev",
            "-w",
            str(workspace),
            "--host",
            args.host,
            "--port",
            str(args.dagster_port),
        ]
        # Each server leads its own process group; leaving the block (dagster dev ended, or
        # SIGTERM, SIGINT or SIGHUP arrived) stops both groups with every child in them.
        with processes.Supervisor(grace=15.0) as servers:
            try:
                servers.start(mlflow_command, cwd=settings.project_root())
                return servers.start(dagster_command, cwd=home).wait()
            except processes.Stopped as stop:
                print(f"smallcaps ui: {stop.name}: stopping both servers", flush=True)
                return 0 if stop.signum == signal.SIGINT else stop.exit_code
