"""Child processes that are stopped as a whole, and commands that stop promptly on a signal.

A server started here runs in its own session, so it leads a process group that its own
children (Dagster's webserver, daemon and code servers, uvicorn workers, launched runs) join.
Stopping it signals the whole group: SIGTERM, a grace period, then SIGKILL for what is left. A
signal to the parent therefore never leaves a reparented server listening, and a terminal's
Ctrl-C reaches the parent only, which stops the groups itself.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Written to the watcher's socket to end it; no signal has number 0.
_QUIT = 0


class Stopped(KeyboardInterrupt):
    """Raised in the main thread when a stop signal arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


def start_group(command: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """``command`` in a new session: its pid is the id of the process group its children join."""
    return subprocess.Popen(list(command), start_new_session=True, **popen_kwargs)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal still exists
        return True
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def stop_groups(
    processes: Iterable[subprocess.Popen[Any]],
    grace: float = 15.0,
    hurry: Callable[[], bool] = lambda: False,
) -> None:
    """SIGTERM every group led by ``processes`` at once, wait up to ``grace`` seconds (less when
    ``hurry()`` turns true) for all of them to end, SIGKILL the groups still alive, reap."""
    leaders = list(processes)
    for leader in leaders:
        _signal_group(leader.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not hurry():
        for leader in leaders:
            leader.poll()  # reap a finished leader, or its zombie keeps the group alive
        if not any(group_alive(leader.pid) for leader in leaders):
            break
        time.sleep(0.1)
    for leader in leaders:
        if group_alive(leader.pid):
            _signal_group(leader.pid, signal.SIGKILL)
    for leader in leaders:
        with contextlib.suppress(subprocess.TimeoutExpired):
            leader.wait(timeout=10)


class Supervisor:
    """Servers started with :meth:`start`, each in its own process group, all stopped when the
    ``with`` block ends. Inside the block a stop signal raises :class:`Stopped` in the main
    thread; one arriving while the groups are being stopped cuts the grace period short."""

    def __init__(self, grace: float = 15.0, signals: Sequence[int] = STOP_SIGNALS) -> None:
        self.grace = grace
        self.signals = tuple(signals)
        self.processes: list[subprocess.Popen[bytes]] = []
        self._previous: dict[int, Any] = {}
        self._stopping = False
        self._hurry = False

    def __enter__(self) -> Supervisor:
        # Installed before any child starts: children then begin with default dispositions
        # (a parent started with SIGINT ignored would otherwise pass that on, and Dagster maps
        # SIGTERM to its SIGINT handler). Only the main thread may install handlers.
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stopping:
            self._hurry = True
            return
        self._stopping = True
        raise Stopped(signum)

    def start(self, command: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
        process = start_group(command, **popen_kwargs)
        self.processes.append(process)
        return process

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping = True
        try:
            stop_groups(self.processes, self.grace, hurry=lambda: self._hurry)
        finally:
            for signum, handler in self._previous.items():
                if handler is not None:  # None: not installed from Python, nothing to restore
                    signal.signal(signum, handler)


class StopWatch:
    """For work that may not react to a signal in time (a Dagster run in this process maps
    SIGTERM and SIGINT to its own handler and can keep going for minutes): the first stop signal
    asks the main thread to stop; if the process is still running ``grace`` seconds later, or a
    second stop signal arrives, it exits with 128 + the signal's number.

    Dagster replaces the Python-level handlers while it runs, so the arrival of a signal is
    seen through ``signal.set_wakeup_fd``, which is written whichever handler is installed.
    """

    def __init__(self, grace: float = 10.0, signals: Sequence[int] = STOP_SIGNALS) -> None:
        self.grace = grace
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._previous_fd = -1
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._thread = threading.Thread(target=self._watch, name="stop-watch", daemon=True)

    def __enter__(self) -> StopWatch:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only; nothing to watch from here
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._thread.start()
        return self

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        raise Stopped(signum)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._previous:
            return  # entered outside the main thread: nothing was installed
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous.items():
            if handler is not None:  # None: not installed from Python, nothing to restore
                signal.signal(signum, handler)
        if self.received is None:
            # Ends the watcher; once a stop was asked for, its deadline stands.
            with contextlib.suppress(OSError):
                self._writer.send(bytes([_QUIT]))

    def _watch(self) -> None:
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            ready, _, _ = select.select([self._reader], [], [], timeout)
            for signum in self._reader.recv(64) if ready else b"":
                if signum == _QUIT and self.received is None:
                    return
                if signum not in self.signals:
                    continue
                if self.received is not None:
                    self._exit(signum, "received again")
                self.received = signum
                deadline = time.monotonic() + self.grace
                print(
                    f"smallcaps: {signal.Signals(signum).name} received; stopping "
                    f"(exits within {self.grace:g}s)",
                    file=sys.stderr,
                    flush=True,
                )
            if deadline is not None and time.monotonic() >= deadline:
                self._exit(self.received or signal.SIGTERM, f"still running after {self.grace:g}s")

    @staticmethod
    def _exit(signum: int, why: str) -> None:
        with contextlib.suppress(Exception):
            print(f"smallcaps: {signal.Signals(signum).name} {why}; exiting", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(128 + signum)
