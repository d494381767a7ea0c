"""Walk-forward windows with purging and an embargo (López de Prado, AFML ch. 7).

For model month M: the *test* period is M's sessions, the *validation* period the month before
M, and the *training* period the ``train_months`` months before that. Every period is a span of
time ``[start, end)`` from the first session's midnight (New York) to the midnight after the
last session, so an event belongs to the period holding its ``ts``.

A training event is kept only if its label interval ``[ts, label_end]`` ends before the
validation period starts minus the embargo (``embargo_sessions`` whole sessions before the
validation start are off limits), so no training label can know anything from validation or
test. Validation events are purged the same way against the test period.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from smallcaps_assets.core import calendar

__all__ = ["Period", "WalkForwardSpec", "WalkForwardWindows", "assign_periods", "windows_for"]


@dataclass(frozen=True)
class WalkForwardSpec:
    train_months: int = 6
    embargo_sessions: int = 1

    def __post_init__(self) -> None:
        if self.train_months < 1 or self.embargo_sessions < 0:
            raise ValueError(f"train_months must be >= 1 and embargo_sessions >= 0: {self}")

    @property
    def upstream_months(self) -> int:
        """Months before M whose events month M's model reads: training plus validation."""
        return self.train_months + 1


@dataclass(frozen=True)
class Period:
    first_session: dt.date
    last_session: dt.date

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.first_session, dt.time(0), tzinfo=calendar.NY)

    @property
    def end(self) -> dt.datetime:
        after = self.last_session + dt.timedelta(days=1)
        return dt.datetime.combine(after, dt.time(0), tzinfo=calendar.NY)

    def sessions(self) -> list[dt.date]:
        return calendar.sessions(self.first_session, self.last_session)


@dataclass(frozen=True)
class WalkForwardWindows:
    month: dt.date
    train: Period
    validation: Period
    test: Period
    # Label intervals of kept training events end before this (validation start - embargo).
    train_cutoff: dt.datetime
    validation_cutoff: dt.datetime


def _month_start(day: dt.date, months_back: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def _sessions_of_months(first_month: dt.date, months: int) -> Period:
    end_month = _month_start(first_month, -months)
    days = calendar.sessions(first_month, end_month - dt.timedelta(days=1))
    if not days:
        raise ValueError(f"no NYSE session in the {months} month(s) from {first_month}")
    return Period(days[0], days[-1])


def _embargo_cutoff(period: Period, sessions: int) -> dt.datetime:
    start = period.first_session
    for _ in range(sessions):
        start = calendar.previous_session(start)
    return dt.datetime.combine(start, dt.time(0), tzinfo=calendar.NY)


def windows_for(month: dt.date, spec: WalkForwardSpec | None = None) -> WalkForwardWindows:
    """The training, validation and test periods of model month ``month`` (any day in it)."""
    spec = spec or WalkForwardSpec()
    test_month = _month_start(month, 0)
    validation = _sessions_of_months(_month_start(test_month, 1), 1)
    train = _sessions_of_months(_month_start(test_month, 1 + spec.train_months), spec.train_months)
    test = _sessions_of_months(test_month, 1)
    return WalkForwardWindows(
        month=test_month,
        train=train,
        validation=validation,
        test=test,
        train_cutoff=_embargo_cutoff(validation, spec.embargo_sessions),
        validation_cutoff=_embargo_cutoff(test, spec.embargo_sessions),
    )


def assign_periods(
    events: pl.DataFrame, windows: WalkForwardWindows, *, end_column: str = "exit_ts"
) -> pl.DataFrame:
    """Add ``period`` (``train`` / ``validation`` / ``test`` / null) to events with ``ts`` and a
    label end ``end_column`` (UTC datetimes). Training and validation events whose label end
    reaches their cutoff are purged (null period), as are events without a label end."""
    ts = pl.col("ts")
    end = pl.col(end_column)

    def utc(moment: dt.datetime) -> pl.Expr:
        return pl.lit(moment.astimezone(dt.UTC)).cast(pl.Datetime("us", "UTC"))

    def inside(period: Period) -> pl.Expr:
        return (ts >= utc(period.start)) & (ts < utc(period.end))

    period = (
        pl.when(inside(windows.test))
        .then(pl.lit("test"))
        .when(inside(windows.validation) & (end < utc(windows.validation_cutoff)))
        .then(pl.lit("validation"))
        .when(inside(windows.train) & (end < utc(windows.train_cutoff)))
        .then(pl.lit("train"))
        .otherwise(pl.lit(None, pl.String))
    )
    return events.with_columns(period=period)
