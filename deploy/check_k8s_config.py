"""Check deploy/dagster.k8s.yaml against dagster-k8s without a cluster.

    uv run --with dagster-k8s==0.29.27 python deploy/check_k8s_config.py

dagster-k8s is not a project dependency (`--with` adds it for this command only). Three checks:
the whole file against Dagster's instance schema; the `run_launcher` block against
K8sRunLauncher's own schema (a misspelt key fails here); and an instance loaded from the file
with a real K8sRunLauncher. For that last step the copy swaps PostgreSQL for the default
SQLite storage (no database here) and the in-cluster service account for a throwaway
kubeconfig (loading one only parses it). Nothing talks to Kubernetes: whether the cluster
accepts the Jobs it would create is not checked.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from pathlib import Path

import dagster as dg
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config

try:
    from dagster_k8s import K8sRunLauncher
except ImportError:
    sys.exit("needs dagster-k8s: uv run --with dagster-k8s==0.29.27 python " + sys.argv[0])

CONFIG = Path(__file__).resolve().parent / "dagster.k8s.yaml"
THROWAWAY_KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "check",
    "clusters": [{"name": "check", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "check", "user": {"token": "not-a-credential"}}],
    "contexts": [{"name": "check", "context": {"cluster": "check", "user": "check"}}],
}


def main() -> int:
    config = yaml.safe_load(CONFIG.read_text())
    # Placeholders: the file reads these from the environment of the webserver/daemon pods.
    os.environ.setdefault("DAGSTER_PG_URL", "postgresql+psycopg2://check@127.0.0.1:9/dagster")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "as_written"
        home.mkdir()
        (home / "dagster.yaml").write_text(CONFIG.read_text())
        sections, _ = dagster_instance_config(str(home))
        print(f"instance schema: ok ({', '.join(sorted(sections))})")

        launcher = process_config(K8sRunLauncher.config_type(), config["run_launcher"]["config"])
        if not launcher.success:
            print(f"K8sRunLauncher schema: {launcher.errors}")
            return 1
        print("K8sRunLauncher schema: ok")

        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(THROWAWAY_KUBECONFIG))
        local = copy.deepcopy(config)
        local.pop("storage")
        local["run_launcher"]["config"].update(
            load_incluster_config=False, kubeconfig_file=str(kubeconfig)
        )
        loaded_home = Path(tmp) / "loaded"
        loaded_home.mkdir()
        (loaded_home / "dagster.yaml").write_text(yaml.safe_dump(local))
        with dg.DagsterInstance.from_config(str(loaded_home)) as instance:
            run_launcher = instance.run_launcher
            if not isinstance(run_launcher, K8sRunLauncher):
                print(f"run launcher is {type(run_launcher).__name__}, not K8sRunLauncher")
                return 1
            print(
                f"instance: {type(run_launcher).__name__} (namespace "
                f"{run_launcher.job_namespace}, secrets {run_launcher.env_secrets}), "
                f"{type(instance.run_coordinator).__name__}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
