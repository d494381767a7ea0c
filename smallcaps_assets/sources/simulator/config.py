"""Configuration of the simulated market and the model constants that downstream code relies on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Final

# The calendar the simulator is built on; the market cannot extend beyond it.
CALENDAR_FIRST_DAY: Final = date(2005, 1, 3)
CALENDAR_LAST_DAY: Final = date(2030, 12, 31)

# A session whose split-adjusted open is at least this far from the previous close runs its
# regular session (and the following after-hours) under the i.i.d. minute law of
# ``gapsession.py``. It sits below the universe's 10% gap definition
# (``core.universe.UniverseRules.gap_min``) so that the 4-decimal rounding of reported prices can
# never make a reported 10% gap fall outside that regime.
GAP_REGIME_THRESHOLD: Final = 0.095

MAX_TICKERS: Final = 50_000


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What defines one simulated market: equal configs give byte-identical API responses.

    ``n_tickers`` counts every name that is listed at some point in
    ``[history_start, history_end]``; on a typical session about three quarters of them are
    listed. ``signal`` scales the planted, learnable effect on gap days (0 = pure noise).
    """

    seed: int = 7
    n_tickers: int = 300
    signal: float = 1.0
    history_start: date = date(2018, 1, 2)
    history_end: date = date(2026, 12, 31)

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.n_tickers, bool) or not isinstance(self.n_tickers, int):
            raise ValueError(f"n_tickers must be an integer, got {self.n_tickers!r}")
        if not 1 <= self.n_tickers <= MAX_TICKERS:
            raise ValueError(f"n_tickers must be within 1..{MAX_TICKERS}, got {self.n_tickers}")
        if not math.isfinite(self.signal) or self.signal < 0:
            raise ValueError(f"signal must be a finite number >= 0, got {self.signal!r}")
        if not CALENDAR_FIRST_DAY <= self.history_start < self.history_end <= CALENDAR_LAST_DAY:
            raise ValueError(
                "need "
                f"{CALENDAR_FIRST_DAY} <= history_start < history_end <= {CALENDAR_LAST_DAY}, "
                f"got {self.history_start} .. {self.history_end}"
            )
