"""Signals end `smallcaps` promptly and leave no process behind: the demo stops on SIGTERM while
Dagster runs in-process, and `smallcaps ui` stops both servers (and their children) on SIGTERM,
SIGINT and SIGHUP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smallcaps_assets import processes

BIN = Path(sys.executable).parent


# -- processes, read from /proc ------------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, session id, start time) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[3]), int(fields[19])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: pid -> start time (to tell a reused pid apart)."""
    table = {pid: stat for pid in _all_pids() if (stat := _stat(pid)) is not None}
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (_, ppid, _, started) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def still_running(run: Cli) -> list[str]:
    """The processes the test saw that still run, and any live member of the servers' sessions."""
    left = []
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is None or stat[0] == "Z":  # a zombie runs nothing and holds no port
            continue
        state, _, sid, started = stat
        if run.seen.get(pid) == started or sid in run.sessions:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            left.append(f"{pid} ({state}, session {sid}): {cmdline.decode(errors='replace')}")
    return left


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, run: Cli) -> None:
    started = time.monotonic()
    while not condition():
        if run.process.poll() is not None:
            pytest.fail(f"exited with {run.process.returncode} first:\n{run.tail()}")
        if time.monotonic() - started > timeout:
            pytest.fail(f"not ready within {timeout:.0f}s:\n{run.tail()}")
        time.sleep(0.25)


def wait_until_gone(run: Cli, timeout: float = 5.0) -> list[str]:
    """What still runs once ``timeout`` passed (reparented stragglers get a moment to exit)."""
    deadline = time.monotonic() + timeout
    while (left := still_running(run)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@dataclass
class Cli:
    process: subprocess.Popen[bytes]
    log: Path
    seen: dict[int, int] = field(default_factory=dict)
    sessions: set[int] = field(default_factory=set)

    def snapshot(self) -> None:
        """Remember the CLI's processes and the sessions its children lead."""
        found = descendants(self.process.pid)
        self.seen.update(found)
        for pid in found:
            stat = _stat(pid)
            if stat is not None and stat[1] == self.process.pid:
                self.sessions.add(stat[2])

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def cli(args: list[str], env: dict[str, str], log: Path) -> Iterator[Cli]:
    """`smallcaps ...` with output to ``log``. Whatever it leaves behind (the processes and
    sessions the test saw) is killed afterwards, so a failing test leaks no server either."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "smallcaps"), *args],
            env=env,
            cwd=log.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the test's own Ctrl-C does not reach it
        )
    run = Cli(process, log)
    try:
        yield run
    finally:
        if process.poll() is None:
            run.snapshot()
            process.kill()
        process.wait(timeout=30)
        for pid in _all_pids():
            stat = _stat(pid)
            if stat is not None and (run.seen.get(pid) == stat[3] or stat[2] in run.sessions):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def base_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("POLYGON_API_KEY", "MLFLOW_TRACKING_URI") and not k.startswith("SMALLCAPS_")
    }
    env.update(
        DAGSTER_HOME=str(home),
        SMALLCAPS_DATA_DIR=str(tmp_path / "data"),
        SMALLCAPS_MLRUNS_DIR=str(tmp_path / "mlruns"),
        PYTHONUNBUFFERED="1",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


# -- smallcaps demo --------------------------------------------------------------------------------
def test_demo_stops_promptly_on_sigterm_while_building_a_large_market(tmp_path):
    """The 5,000-name universe takes ~20 s to build inside the first raw step, where Dagster's
    own SIGTERM handler cannot interrupt it (before: 18-22 s and exit code 1 here, minutes for
    a larger market)."""
    log = tmp_path / "demo.log"
    args = ["demo", "--tickers", "5000", "--start", "2024-03-01", "--end", "2024-03-28"]
    with cli(args, base_env(tmp_path), log) as demo:
        # Logged by the first raw step as it starts building the simulated market.
        wait_for(lambda: "POLYGON_API_KEY is not set" in log.read_text(), 180, demo)
        demo.snapshot()
        sent = time.monotonic()
        demo.process.send_signal(signal.SIGTERM)
        try:
            code = demo.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 15 s after SIGTERM:\n{demo.tail()}")
        took = time.monotonic() - sent
        assert code == 128 + signal.SIGTERM, demo.tail()
        assert "SIGTERM" in demo.tail()
        assert took < 15
        assert wait_until_gone(demo) == []


# -- smallcaps ui ----------------------------------------------------------------------------------
@pytest.mark.servers
def test_ui_stops_both_real_servers_on_sigterm(tmp_path):
    env = base_env(tmp_path)
    home = Path(env["DAGSTER_HOME"])
    dagster_port, mlflow_port = free_port(), free_port()
    while mlflow_port == dagster_port:
        mlflow_port = free_port()
    log = tmp_path / "ui.log"
    args = ["ui", "--dagster-port", str(dagster_port), "--mlflow-port", str(mlflow_port)]
    with cli(args, env, log) as ui:
        wait_for(lambda: listening(dagster_port) and listening(mlflow_port), 120, ui)
        ui.snapshot()
        servers = [pid for pid in ui.seen if (stat := _stat(pid)) and stat[1] == ui.process.pid]
        ui.process.send_signal(signal.SIGTERM)
        code = ui.process.wait(timeout=30)
        assert wait_until_gone(ui) == [], ui.tail()
        assert not listening(dagster_port)
        assert not listening(mlflow_port)
        assert code == 128 + signal.SIGTERM, ui.tail()
        assert len(servers) == 2, ui.seen
        assert ui.sessions == set(servers)  # each server led its own session
    # dagster dev served the instance the CLI printed, not the one the checkout's .env names.
    assert (home / "history").is_dir() or (home / "storage").is_dir(), sorted(home.iterdir())


STAND_IN_SERVER = """\
#!{python}
# Stands in for `dagster dev` / `mlflow server`: listens on --port and has a child of its own
# (like the webserver, daemon and workers), which only a signal to the whole group reaches.
import socket, subprocess, sys, time
port = int(sys.argv[sys.argv.index("--port") + 1])
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
def test_ui_stops_both_server_groups_on_each_stop_signal(tmp_path, signum):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("dagster", "mlflow"):
        script = bin_dir / name
        script.write_text(textwrap.dedent(STAND_IN_SERVER).format(python=sys.executable))
        script.chmod(0o755)
    env = base_env(tmp_path)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    dagster_port, mlflow_port = free_port(), free_port()
    log = tmp_path / "ui.log"
    args = ["ui", "--dagster-port", str(dagster_port), "--mlflow-port", str(mlflow_port)]
    with cli(args, env, log) as ui:
        wait_for(lambda: listening(dagster_port) and listening(mlflow_port), 60, ui)
        # Both servers and a child of each.
        wait_for(lambda: len(descendants(ui.process.pid)) >= 4, 30, ui)
        ui.snapshot()
        ui.process.send_signal(signum)
        code = ui.process.wait(timeout=30)
        assert wait_until_gone(ui) == [], ui.tail()
        assert not listening(dagster_port)
        assert not listening(mlflow_port)
        assert code == (0 if signum == signal.SIGINT else 128 + signum), ui.tail()


def test_stop_groups_kills_a_group_that_ignores_sigterm(tmp_path):
    stubborn = processes.start_group(
        [
            sys.executable,
            "-c",
            "import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert stubborn.stdout is not None
        assert stubborn.stdout.readline().strip() == b"ready"
        started = time.monotonic()
        processes.stop_groups([stubborn], grace=1.0)
        assert time.monotonic() - started < 10
        assert stubborn.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 5  # the orphaned child is reaped by init
        while processes.group_alive(stubborn.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not processes.group_alive(stubborn.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stubborn.pid, signal.SIGKILL)
        if stubborn.stdout is not None:
            stubborn.stdout.close()
