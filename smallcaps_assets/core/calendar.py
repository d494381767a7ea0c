"""The NYSE trading calendar, derived from exchange-calendars (never a hand-typed holiday list)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

NY = ZoneInfo("America/New_York")
CALENDAR_NAME = "XNYS"
FIRST_SESSION = dt.date(2019, 1, 2)
# exchange-calendars only projects holidays about a year ahead by default; ask for a fixed horizon.
CALENDAR_END = dt.date(2030, 12, 31)
# The calendar must start on or before the first day anyone asks about; its own first valid
# start is bounded, so open it well before the project's first session.
_CALENDAR_OPEN = "2005-01-03"


@lru_cache(maxsize=1)
def _nyse() -> xcals.ExchangeCalendar:
    return xcals.get_calendar(CALENDAR_NAME, start=_CALENDAR_OPEN, end=CALENDAR_END.isoformat())


def sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    """NYSE sessions in [start, end], both inclusive."""
    if end < start:
        return []
    cal = _nyse()
    found = cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
    return [ts.date() for ts in found]


def is_session(day: dt.date) -> bool:
    return bool(_nyse().is_session(pd.Timestamp(day)))


def closed_weekdays(start: dt.date, end: dt.date = CALENDAR_END) -> list[dt.date]:
    """Weekdays in [start, end] on which NYSE did not trade: holidays and ad-hoc closures."""
    weekdays = pd.bdate_range(start, end)
    open_days = pd.DatetimeIndex(_nyse().sessions_in_range(pd.Timestamp(start), pd.Timestamp(end)))
    return [ts.date() for ts in weekdays.difference(open_days)]


def previous_session(day: dt.date) -> dt.date:
    """The last session strictly before ``day``."""
    cal = _nyse()
    ts = pd.Timestamp(day)
    found: pd.Timestamp = (
        cal.previous_session(ts)
        if cal.is_session(ts)
        else cal.date_to_session(ts, direction="previous")
    )
    return dt.date(found.year, found.month, found.day)


def next_session(day: dt.date) -> dt.date:
    """The first session strictly after ``day``."""
    cal = _nyse()
    ts = pd.Timestamp(day)
    found: pd.Timestamp = (
        cal.next_session(ts) if cal.is_session(ts) else cal.date_to_session(ts, direction="next")
    )
    return dt.date(found.year, found.month, found.day)


def session_bounds_utc(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (exclusive) of the ET calendar day ``day``, as UTC datetimes."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=NY)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=NY)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def max_sessions_in(days: int) -> int:
    """The most sessions a window of ``days`` calendar days before a session can hold, that
    session excluded (five weekdays a week, no holiday assumed)."""
    full_weeks, rest = divmod(days, 7)
    return full_weeks * 5 + min(rest, 5)
