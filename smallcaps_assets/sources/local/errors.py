"""The one error the local-files source raises for bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class LocalBarsError(ValueError):
    """A local file (or the folder) cannot serve as market data.

    ``path`` is the offending file and ``problem`` says what is wrong with it in words a user can
    act on (the column, the value, the row). The message is ``"<path>: <problem>"``.
    """

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:
        # The two-argument constructor breaks default exception pickling, and errors cross
        # process boundaries (multiprocess executors, pytest-xdist).
        return (type(self), (self.path, self.problem))
