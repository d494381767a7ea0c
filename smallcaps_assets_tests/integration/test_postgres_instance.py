"""The PostgreSQL-backed Dagster instance (deploy/dagster.postgres.yaml) against a real server.

The module starts its own PostgreSQL cluster on 127.0.0.1 (a free port, socket and data in a
temporary directory), loads the instance from the real deploy file with ``DAGSTER_PG_URL`` set,
materializes partitions of the project's assets on the simulated market, and reads the runs,
materializations and check evaluations back twice: with SQL straight from the database, and
through a fresh instance loaded from ``DAGSTER_HOME`` the way the CLI, webserver and daemon do.

The server binaries come from Debian's ``postgresql`` package (``make system-deps``). Without them
the test fails and says so; deselect it with ``PYTEST_ARGS='-m "not postgres"'``.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from smallcaps_assets import settings
from smallcaps_assets.defs.processed import processed_assets
from smallcaps_assets.defs.raw import raw_assets
from smallcaps_assets.defs.resources import (
    DataStoreResource,
    MarketDataResource,
    ResearchSettingsResource,
    UniverseRulesResource,
)

pytestmark = pytest.mark.postgres

PROJECT_CONFIG = settings.project_root() / "dagster.yaml"
POSTGRES_CONFIG = settings.project_root() / "deploy" / "dagster.postgres.yaml"
K8S_CONFIG = settings.project_root() / "deploy" / "dagster.k8s.yaml"
PG_URL_ENV = "DAGSTER_PG_URL"
SERVER_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
# PostgreSQL refuses to run as root; as root the cluster runs as the Debian package's user.
SERVER_USER = "postgres"
DATABASE = "dagster"
DB_ROLE = "smallcaps"

RAW_DAILY_BARS = dg.AssetKey(["raw", "daily_bars"])
RAW_SPLITS = dg.AssetKey(["raw", "splits"])
PROCESSED_DAILY_BARS = dg.AssetKey(["processed", "daily_bars"])
RAW_KEYS = [RAW_DAILY_BARS, RAW_SPLITS]
FIRST_SESSIONS = ["2024-03-04", "2024-03-05"]  # Mon, Tue: one ranged run
LATER_SESSION = "2024-03-06"  # a later run of another partition


# -- the server --------------------------------------------------------------------------------
class PostgresUnavailableError(RuntimeError):
    pass


def find_server_binaries(pattern: str = SERVER_BIN_GLOB) -> Path:
    """The newest installed PostgreSQL server's bin directory (Debian layout)."""
    candidates = [
        Path(d)
        for d in glob.glob(pattern)
        if all((Path(d) / program).is_file() for program in SERVER_PROGRAMS)
    ]
    if not candidates:
        raise PostgresUnavailableError(
            f"PostgreSQL server binaries ({', '.join(SERVER_PROGRAMS)}) not found in {pattern}. "
            "This test starts a real PostgreSQL server: install Debian's `postgresql` package "
            "with `make system-deps` (as root; it runs apt-get install postgresql), or deselect "
            "the test with PYTEST_ARGS='-m \"not postgres\"'."
        )
    # /usr/lib/postgresql/<major>/bin: prefer the highest major version.
    return max(candidates, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else -1)


@dataclass(frozen=True)
class LoopbackPostgres:
    url: str  # libpq form, for psycopg2

    @property
    def dagster_url(self) -> str:
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed;
        # dagster-postgres ships psycopg2, so the URL has to name it.
        return self.url.replace("postgresql://", "postgresql+psycopg2://", 1)

    def query(self, sql: str) -> list[tuple]:  # type: ignore[type-arg]
        with closing(psycopg2.connect(self.url, connect_timeout=5)) as conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_command_prefix(workdir: Path) -> list[str]:
    if os.geteuid() != 0:
        return []
    # util-linux installs runuser in /usr/sbin, which a minimal PATH (CI's) leaves out.
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser is None:
        raise PostgresUnavailableError("running as root, but `runuser` (util-linux) is missing")
    try:
        shutil.chown(workdir, user=SERVER_USER, group=SERVER_USER)
    except LookupError as exc:
        raise PostgresUnavailableError(
            f"running as root, but there is no `{SERVER_USER}` user to run PostgreSQL as "
            "(Debian's `postgresql` package creates it: `make system-deps`)"
        ) from exc
    return [runuser, "-u", SERVER_USER, "--"]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _wait_until_accepting(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(url, connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[LoopbackPostgres]:
    try:
        bin_dir = find_server_binaries()
    except PostgresUnavailableError as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:  # failed outside the except block, so the message is printed once
        pytest.fail(missing, pytrace=False)
    # Under /tmp, not pytest's tmp_path: its parents are private to the current user, so the
    # postgres user could not reach them, and a unix socket path must stay under ~100 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="smallcaps-pg-", dir="/tmp"))
    data_dir = workdir / "data"
    log = workdir / "server.log"
    password = secrets.token_hex(16)
    started = False
    try:
        as_server_user = _server_command_prefix(workdir)
        password_file = workdir / "password"
        password_file.write_text(password + "\n")
        if as_server_user:
            shutil.chown(password_file, user=SERVER_USER, group=SERVER_USER)
        _run(
            [
                *as_server_user,
                str(bin_dir / "initdb"),
                f"--pgdata={data_dir}",
                f"--username={DB_ROLE}",
                f"--pwfile={password_file}",
                # A password is required on every connection, also from other local users.
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",  # a throwaway cluster: no fsync of the new files
            ],
            "initdb",
        )
        password_file.unlink()
        for _attempt in range(5):
            port = _free_loopback_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={workdir}"
                # Durability is not under test; on a busy 2-core machine fsync dominates.
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            start = subprocess.run(
                [
                    *as_server_user,
                    str(bin_dir / "pg_ctl"),
                    "start",
                    f"--pgdata={data_dir}",
                    f"--log={log}",
                    f"--options={options}",
                    "--wait",
                    "--timeout=60",
                ],
                capture_output=True,
                text=True,
                timeout=90,
                check=False,
            )
            if start.returncode == 0:
                started = True
                break
            server_log = log.read_text() if log.exists() else ""
            if "could not bind" not in server_log and "already in use" not in server_log:
                raise RuntimeError(f"pg_ctl start failed:\n{start.stderr}\n{server_log}")
            # Another process took the port between the probe and the bind: try another one.
        else:
            raise RuntimeError(f"no free loopback port for PostgreSQL:\n{log.read_text()}")
        admin_url = f"postgresql://{DB_ROLE}:{password}@127.0.0.1:{port}/postgres"
        _wait_until_accepting(admin_url)
        admin = psycopg2.connect(admin_url)
        admin.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE}")
        admin.close()
        yield LoopbackPostgres(f"postgresql://{DB_ROLE}:{password}@127.0.0.1:{port}/{DATABASE}")
    finally:
        if started:
            stop = [*as_server_user, str(bin_dir / "pg_ctl"), "stop", f"--pgdata={data_dir}"]
            fast = subprocess.run(
                [*stop, "--mode=fast", "--wait"], capture_output=True, check=False
            )
            if fast.returncode != 0:
                subprocess.run([*stop, "--mode=immediate", "--wait"], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


# -- the instance ------------------------------------------------------------------------------
@pytest.fixture
def postgres_instance_env(postgres_server, tmp_path, monkeypatch) -> Path:
    """DAGSTER_HOME holding the deploy file (linked, as `make install` links ../dagster.yaml),
    the database URL in DAGSTER_PG_URL, and the simulated market on a fresh data root."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(POSTGRES_CONFIG)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(PG_URL_ENV, postgres_server.dagster_url)
    monkeypatch.delenv(settings.API_KEY_ENV, raising=False)
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "20")
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "5")
    return home


def _materialize(
    instance: dg.DagsterInstance, keys: list[dg.AssetKey], partitions: list[str]
) -> dg.ExecuteInProcessResult:
    if len(partitions) == 1:
        partition: dict[str, object] = {"partition_key": partitions[0]}
    else:
        partition = {
            "tags": {
                "dagster/asset_partition_range_start": partitions[0],
                "dagster/asset_partition_range_end": partitions[-1],
            }
        }
    return dg.materialize(
        [*raw_assets, *processed_assets],
        selection=keys,
        resources={
            "market": MarketDataResource(),
            "data": DataStoreResource(),
            "universe_rules": UniverseRulesResource(),
            "research": ResearchSettingsResource(),
        },
        instance=instance,
        raise_on_error=False,
        **partition,  # type: ignore[arg-type]
    )


def _stored_runs(server: LoopbackPostgres) -> dict[str, str]:
    return dict(server.query("SELECT run_id, status FROM runs"))


def _stored_materializations(server: LoopbackPostgres) -> list[tuple[int, str, str, str]]:
    """(row id, asset key, partition, run id) of every materialization event, in insert order."""
    rows = server.query(
        "SELECT id, asset_key, partition, run_id FROM event_logs "
        "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY id"
    )
    return [(i, dg.AssetKey.from_db_string(k).to_user_string(), p, r) for i, k, p, r in rows]


def _without_ids(rows: list[tuple[int, str, str, str]]) -> list[tuple[str, str, str]]:
    return sorted(row[1:] for row in rows)


def _stored_check_executions(server: LoopbackPostgres) -> set[tuple[str, str, str, str]]:
    """(asset key, check name, run id, status) of every evaluated asset check.

    Dagster 1.13 also leaves one PLANNED row per partition of the run: the checks are declared
    on a partitioned asset but evaluated once per run (partition NULL), so the evaluation is
    stored as a row of its own instead of completing the planned ones (SQLite does the same).
    """
    rows = server.query(
        "SELECT asset_key, check_name, run_id, execution_status FROM asset_check_executions "
        "WHERE execution_status <> 'PLANNED'"
    )
    return {(dg.AssetKey.from_db_string(k).to_user_string(), c, r, s) for k, c, r, s in rows}


def _expected_materializations(
    keys: list[dg.AssetKey], partitions: list[str], run_id: str
) -> list[tuple[str, str, str]]:
    return sorted((k.to_user_string(), p, run_id) for k in keys for p in partitions)


def _evaluated_checks(result: dg.ExecuteInProcessResult) -> set[tuple[str, str, str, str]]:
    return {
        (
            e.asset_key.to_user_string(),
            e.check_name,
            result.run_id,
            "SUCCEEDED" if e.passed else "FAILED",
        )
        for e in result.get_asset_check_evaluations()
    }


def test_partitions_materialized_through_the_postgres_instance_are_stored_in_postgres(
    postgres_server, postgres_instance_env
):
    with dg.DagsterInstance.from_config(str(postgres_instance_env)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        raw = _materialize(instance, RAW_KEYS, FIRST_SESSIONS)
        assert raw.success
        processed = _materialize(instance, [PROCESSED_DAILY_BARS], FIRST_SESSIONS)
        assert processed.success

    # Straight from the database: two runs, one materialization row per asset and partition,
    # one execution row per check evaluated.
    assert _stored_runs(postgres_server) == {raw.run_id: "SUCCESS", processed.run_id: "SUCCESS"}
    first_materializations = _stored_materializations(postgres_server)
    assert _without_ids(first_materializations) == sorted(
        _expected_materializations(RAW_KEYS, FIRST_SESSIONS, raw.run_id)
        + _expected_materializations([PROCESSED_DAILY_BARS], FIRST_SESSIONS, processed.run_id)
    )
    first_checks = _evaluated_checks(raw) | _evaluated_checks(processed)
    assert {asset for asset, *_ in first_checks} == {
        "raw/daily_bars",
        "raw/splits",
        "processed/daily_bars",
    }
    assert all(status == "SUCCEEDED" for *_, status in first_checks)
    assert _stored_check_executions(postgres_server) == first_checks
    # The raw steps took their `polygon_api` slot from this database (created on first claim with
    # the pools' default limit) and gave it back: the limit holds for every machine sharing it.
    assert postgres_server.query('SELECT concurrency_key, "limit" FROM concurrency_limits') == [
        ("polygon_api", 1)
    ]
    assert postgres_server.query(
        "SELECT run_id FROM concurrency_slots WHERE concurrency_key = 'polygon_api'"
    ) == [(None,)]

    # A fresh instance from DAGSTER_HOME (what the CLI, webserver and daemon load) sees it all.
    with dg.DagsterInstance.get() as fresh:
        assert isinstance(fresh.event_log_storage, PostgresEventLogStorage)
        for key in [*RAW_KEYS, PROCESSED_DAILY_BARS]:
            assert fresh.get_materialized_partitions(key) == set(FIRST_SESSIONS), key
        records = fresh.get_run_records()
        assert {r.dagster_run.run_id: r.dagster_run.status for r in records} == {
            raw.run_id: dg.DagsterRunStatus.SUCCESS,
            processed.run_id: dg.DagsterRunStatus.SUCCESS,
        }
        latest = fresh.get_latest_materialization_event(PROCESSED_DAILY_BARS)
        assert latest is not None
        assert latest.asset_materialization.partition == FIRST_SESSIONS[-1]
        path = latest.asset_materialization.metadata["path"].value
        assert path.startswith(os.environ[settings.DATA_DIR_ENV])
        assert Path(path).is_file()
        for asset, check_name, run_id, _status in first_checks:
            check_key = dg.AssetCheckKey(dg.AssetKey.from_user_string(asset), check_name)
            history = fresh.event_log_storage.get_asset_check_execution_history(check_key, limit=10)
            [execution] = [e for e in history if e.status.value != "PLANNED"]
            assert execution.run_id == run_id
            assert execution.status.value == "SUCCEEDED"

        # Another partition in a later run, through the instance loaded from DAGSTER_HOME.
        later = _materialize(fresh, RAW_KEYS, [LATER_SESSION])
        assert later.success

    # Appended, not replaced: the earlier rows are untouched and the new ones sit beside them.
    assert _stored_runs(postgres_server) == {
        raw.run_id: "SUCCESS",
        processed.run_id: "SUCCESS",
        later.run_id: "SUCCESS",
    }
    all_materializations = _stored_materializations(postgres_server)
    assert all_materializations[: len(first_materializations)] == first_materializations
    assert _without_ids(
        all_materializations[len(first_materializations) :]
    ) == _expected_materializations(RAW_KEYS, [LATER_SESSION], later.run_id)
    assert _stored_check_executions(postgres_server) == first_checks | _evaluated_checks(later)
    with dg.DagsterInstance.from_config(str(postgres_instance_env)) as reloaded:
        assert reloaded.get_materialized_partitions(RAW_DAILY_BARS) == {
            *FIRST_SESSIONS,
            LATER_SESSION,
        }
        assert reloaded.get_materialized_partitions(PROCESSED_DAILY_BARS) == set(FIRST_SESSIONS)


# -- the config file ---------------------------------------------------------------------------
def test_the_postgres_variant_differs_from_the_project_instance_only_in_storage():
    project = yaml.safe_load(PROJECT_CONFIG.read_text())
    variant = yaml.safe_load(POSTGRES_CONFIG.read_text())
    assert "storage" not in project  # the project's instance keeps the default (SQLite) storage
    assert {k: v for k, v in variant.items() if k != "storage"} == project
    # Only an environment reference: no host, user or password in the file.
    assert variant["storage"] == {
        "postgres": {"postgres_url": {"env": PG_URL_ENV}, "should_autocreate_tables": True}
    }


def test_the_kubernetes_variant_is_the_postgres_variant_plus_a_run_launcher():
    postgres = yaml.safe_load(POSTGRES_CONFIG.read_text())
    k8s = yaml.safe_load(K8S_CONFIG.read_text())
    assert {k: v for k, v in k8s.items() if k != "run_launcher"} == postgres
    assert (k8s["run_launcher"]["module"], k8s["run_launcher"]["class"]) == (
        "dagster_k8s",
        "K8sRunLauncher",
    )


def test_the_postgres_variant_refuses_to_load_without_the_database_url(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(POSTGRES_CONFIG)
    monkeypatch.delenv(PG_URL_ENV, raising=False)
    with pytest.raises(dg.DagsterInvalidConfigError, match=PG_URL_ENV):
        dg.DagsterInstance.from_config(str(home))


def test_a_bare_postgresql_url_is_refused_for_want_of_the_psycopg_driver(tmp_path, monkeypatch):
    # Why docs/deploy.md says DAGSTER_PG_URL must start with postgresql+psycopg2://. The engine
    # is built when the instance loads, before any connection, so no server is needed.
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(POSTGRES_CONFIG)
    monkeypatch.setenv(PG_URL_ENV, "postgresql://user:secret@127.0.0.1:9/dagster")
    with pytest.raises(ModuleNotFoundError, match="psycopg"):
        dg.DagsterInstance.from_config(str(home))


def test_missing_server_binaries_are_named_with_how_to_install_and_deselect(tmp_path):
    with pytest.raises(PostgresUnavailableError) as missing:
        find_server_binaries(str(tmp_path / "postgresql" / "*" / "bin"))
    message = str(missing.value)
    assert "initdb, pg_ctl, postgres" in message
    assert "make system-deps" in message
    assert "PYTEST_ARGS='-m \"not postgres\"'" in message
