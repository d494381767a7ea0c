"""The servers `make ui` starts (``dagster dev`` and ``mlflow server``), run as subprocesses on
free loopback ports for the browser test: readiness by polling HTTP, captured logs for failure
messages, and a shutdown that also ends every child (daemon, code server, launched runs)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from smallcaps_assets import processes

BIN = Path(sys.executable).parent
# Each code location's load status, as the webserver reports it to the UI.
LOCATIONS_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""


def free_port() -> int:
    """A port nothing listens on right now (the kernel picks it, so parallel workers differ)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 80) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def describe_failure(self, what: str) -> str:
        state = self.process.poll()
        status = "still running" if state is None else f"exited with code {state}"
        return (
            f"{self.name} at {self.url}: {what} ({status}); command: "
            f"{' '.join(map(str, self.process.args))}\n"
            f"--- last lines of {self.log_path} ---\n{self.log_tail()}"
        )

    def stop(self, grace_seconds: float = 15.0) -> None:
        """Terminate the whole process group: ``dagster dev`` with its webserver, daemon, code
        server and any run the daemon launched; ``mlflow server`` with uvicorn and its job
        consumers. SIGTERM first (Dagster maps it to its Ctrl-C shutdown); whatever is left after
        the grace period (a process that inherited an ignored SIGINT) is killed."""
        processes.stop_groups([self.process], grace=grace_seconds)


@contextlib.contextmanager
def running_server(
    name: str,
    command: list[str],
    *,
    url: str,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
) -> Iterator[Server]:
    """Start ``command`` in its own process group (its children join it), output to
    ``log_path``; always stop the whole group on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = processes.start_group(
            command,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(name=name, url=url, process=process, log_path=log_path)
    try:
        yield server
    finally:
        server.stop()


def wait_until(
    server: Server,
    what: str,
    probe: Callable[[httpx.Client], object],
    *,
    timeout: float,
    interval: float = 0.5,
) -> object:
    """Poll ``probe`` until it returns a truthy value; fail naming ``what``, the last error and
    the server's log tail when the server exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last = "no attempt finished"
    with httpx.Client(timeout=10.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(server.describe_failure(f"exited before {what}"), pytrace=False)
            try:
                result = probe(client)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if result:
                    return result
                last = "not yet"
            time.sleep(interval)
    pytest.fail(
        server.describe_failure(f"not {what} within {timeout:.0f}s (last probe: {last})"),
        pytrace=False,
    )


def dagster_graphql(client: httpx.Client, base_url: str, query: str) -> dict[str, Any]:
    response = client.post(f"{base_url}/graphql", json={"query": query})
    response.raise_for_status()
    payload = response.json()
    if payload.get("errors"):
        raise ValueError(f"GraphQL errors: {payload['errors']}")
    return dict(payload["data"])


def code_location_loaded(base_url: str, location: str) -> Callable[[httpx.Client], object]:
    """A probe: True once ``location`` is loaded; a load error fails at once with its message
    (waiting longer would not fix a broken definitions module)."""

    def probe(client: httpx.Client) -> object:
        data = dagster_graphql(client, base_url, LOCATIONS_QUERY)
        workspace = data["workspaceOrError"]
        assert isinstance(workspace, dict)
        entries = {e["name"]: e for e in workspace.get("locationEntries", [])}
        entry = entries.get(location)
        if entry is None or entry["loadStatus"] != "LOADED":
            return False
        loaded = entry["locationOrLoadError"]
        if loaded and loaded["__typename"] == "PythonError":
            pytest.fail(f"code location {location} failed to load:\n{loaded['message']}")
        return loaded is not None and loaded["__typename"] == "RepositoryLocation"

    return probe


def http_ok(url: str, body: str | None = None) -> Callable[[httpx.Client], object]:
    def probe(client: httpx.Client) -> object:
        response = client.get(url)
        return response.status_code == 200 and (body is None or body in response.text)

    return probe
