"""NYSE sessions of the simulated history, with the clock times the bars are stamped with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from smallcaps_assets.sources.simulator.config import CALENDAR_FIRST_DAY, CALENDAR_LAST_DAY

NEW_YORK: Final = ZoneInfo("America/New_York")
MINUTE_MS: Final = 60_000
PREMARKET_MINUTES: Final = 330  # 04:00-09:30 ET
AFTER_HOURS_MINUTES: Final = 240  # four hours after the regular close (20:00 ET on full days)
FULL_SESSION_MINUTES: Final = 390


@lru_cache(maxsize=1)
def _nyse() -> xcals.ExchangeCalendar:
    # exchange-calendars caches calendars by their arguments, so this is the same instance the
    # rest of the project uses.
    return xcals.get_calendar(
        "XNYS", start=CALENDAR_FIRST_DAY.isoformat(), end=CALENDAR_LAST_DAY.isoformat()
    )


def et_ms(day: date, clock: time) -> int:
    """Epoch milliseconds of ``clock`` New York time on ``day``."""
    return int(datetime.combine(day, clock, tzinfo=NEW_YORK).timestamp() * 1000)


def et_date_of_ms(ms: int) -> date:
    """The New York calendar date an epoch-millisecond instant falls on."""
    return datetime.fromtimestamp(ms / 1000, tz=NEW_YORK).date()


@dataclass(frozen=True, eq=False)
class Sessions:
    """The sessions in ``[start, end]``; index ``t`` is the session's position."""

    days: tuple[date, ...]
    dates: np.ndarray  # datetime64[D], the same days
    ordinals: np.ndarray  # int64 proleptic ordinals, ascending
    open_ms: np.ndarray  # int64 regular open (09:30 ET)
    regular_minutes: np.ndarray  # int64 390, or 210 on early closes
    midnight_ms: np.ndarray  # int64 00:00 ET of the session date

    @property
    def count(self) -> int:
        return len(self.days)

    def premarket_start_ms(self, t: int | np.ndarray) -> np.ndarray:
        return self.open_ms[t] - PREMARKET_MINUTES * MINUTE_MS

    def index_of(self, day: date) -> int | None:
        """The session index of ``day``, or None when ``day`` is not a session in range."""
        i = int(np.searchsorted(self.ordinals, day.toordinal()))
        if i < self.count and int(self.ordinals[i]) == day.toordinal():
            return i
        return None

    def last_on_or_before(self, day: date) -> int:
        """Index of the last session on or before ``day``; -1 when there is none."""
        return int(np.searchsorted(self.ordinals, day.toordinal(), side="right")) - 1

    def first_on_or_after(self, day: date) -> int:
        """Index of the first session on or after ``day``; ``count`` when there is none."""
        return int(np.searchsorted(self.ordinals, day.toordinal(), side="left"))


@lru_cache(maxsize=8)
def sessions_between(start: date, end: date) -> Sessions:
    schedule = _nyse().schedule.loc[pd.Timestamp(start) : pd.Timestamp(end)]
    days = tuple(ts.date() for ts in schedule.index)
    open_ms = (schedule["open"].astype("int64").to_numpy() // 1_000_000).astype(np.int64)
    close_ms = (schedule["close"].astype("int64").to_numpy() // 1_000_000).astype(np.int64)
    return Sessions(
        days=days,
        dates=np.array(days, dtype="datetime64[D]"),
        ordinals=np.array([d.toordinal() for d in days], dtype=np.int64),
        open_ms=open_ms,
        regular_minutes=(close_ms - open_ms) // MINUTE_MS,
        midnight_ms=np.array([et_ms(d, time(0)) for d in days], dtype=np.int64),
    )
