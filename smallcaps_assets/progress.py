"""Progress hooks: assets report each finished partition; an in-process caller (the demo) may listen.

Runs launched elsewhere (the UI, the daemon) have no listener and the call is a no-op.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Listener = Callable[[str, str], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def add_listener(listener: Listener) -> None:
    with _lock:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def partition_done(asset: str, partition: str) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(asset, partition)
