"""Walk-forward windows: purging and the embargo leave no training label overlapping validation
or test, whatever the events look like."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smallcaps_assets.core import calendar
from smallcaps_assets.core.walkforward import WalkForwardSpec, assign_periods, windows_for

NY = calendar.NY


def test_windows_of_july_2024():
    w = windows_for(dt.date(2024, 7, 17))
    assert w.month == dt.date(2024, 7, 1)
    assert (w.test.first_session, w.test.last_session) == (
        dt.date(2024, 7, 1),
        dt.date(2024, 7, 31),
    )
    assert (w.validation.first_session, w.validation.last_session) == (
        dt.date(2024, 6, 3),
        dt.date(2024, 6, 28),
    )
    assert (w.train.first_session, w.train.last_session) == (
        dt.date(2023, 12, 1),
        dt.date(2024, 5, 31),
    )
    # One session of embargo: training labels must end before 2024-05-31 (the session before
    # validation starts), validation labels before 2024-06-28.
    assert w.train_cutoff == dt.datetime(2024, 5, 31, tzinfo=NY)
    assert w.validation_cutoff == dt.datetime(2024, 6, 28, tzinfo=NY)
    longer = windows_for(dt.date(2024, 7, 1), WalkForwardSpec(train_months=3, embargo_sessions=0))
    assert longer.train.first_session == dt.date(2024, 3, 1)
    assert longer.train_cutoff == dt.datetime(2024, 6, 3, tzinfo=NY)
    with pytest.raises(ValueError, match="train_months"):
        WalkForwardSpec(train_months=0)


def _events(times: list[tuple[dt.datetime, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [t.astimezone(dt.UTC) for t, _ in times],
            "exit_ts": [(t + dt.timedelta(minutes=m)).astimezone(dt.UTC) for t, m in times],
        },
        schema={"ts": pl.Datetime("ms", "UTC"), "exit_ts": pl.Datetime("ms", "UTC")},
    )


@settings(max_examples=80, deadline=None)
@given(
    month=st.dates(dt.date(2020, 1, 1), dt.date(2025, 12, 1)),
    train_months=st.integers(1, 8),
    embargo=st.integers(0, 3),
    offsets=st.lists(
        st.tuples(
            # Which boundary the event sits near: 0 = validation start, 1 = test start, 2 = anywhere.
            st.integers(0, 2),
            st.integers(-6 * 24 * 60, 2 * 24 * 60),
            st.integers(0, 5 * 24 * 60),
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_no_training_or_validation_label_reaches_a_later_period(
    month: dt.date, train_months: int, embargo: int, offsets: list[tuple[int, int, int]]
) -> None:
    spec = WalkForwardSpec(train_months=train_months, embargo_sessions=embargo)
    w = windows_for(month, spec)
    anchors = [w.validation.start, w.test.start, w.train.start + dt.timedelta(days=20)]
    events = _events(
        [(anchors[a] + dt.timedelta(minutes=o * (30 if a == 2 else 1)), d) for a, o, d in offsets]
    )
    out = assign_periods(events, w)
    train = out.filter(pl.col("period") == "train")
    validation = out.filter(pl.col("period") == "validation")
    test = out.filter(pl.col("period") == "test")
    val_start = w.validation.start.astimezone(dt.UTC)
    test_start = w.test.start.astimezone(dt.UTC)
    # No overlap: a training label interval ends before validation (and test) begins, with the
    # embargo's sessions in between; a validation label ends before the test begins.
    assert (train.get_column("exit_ts") < val_start).all()
    assert (train.get_column("exit_ts") < w.train_cutoff.astimezone(dt.UTC)).all()
    assert (validation.get_column("exit_ts") < test_start).all()
    assert (validation.get_column("ts") >= val_start).all()
    # Every event stamped in M is a test event; nothing else is.
    in_month = out.filter(
        (pl.col("ts") >= test_start) & (pl.col("ts") < w.test.end.astimezone(dt.UTC))
    )
    assert in_month.height == test.height
    # The embargo really removes sessions: with embargo k >= 1 no training event sits in the
    # last k sessions before validation.
    if embargo:
        assert (train.get_column("ts") < w.train_cutoff.astimezone(dt.UTC)).all()
