import datetime as dt

import pandera.polars as pa
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from smallcaps_assets.core.validation import (
    CheckReport,
    condition_report,
    dates_within,
    rules_report,
    validate_schema,
)


class Bars(pa.DataFrameModel):
    ticker: str
    close: float = pa.Field(gt=0)

    class Config:
        strict = True
        unique = ["ticker"]  # noqa: RUF012


def test_schema_pass_counts_rows():
    report = validate_schema(Bars, pl.DataFrame({"ticker": ["A", "B"], "close": [1.0, 2.0]}))
    assert report.passed
    assert report.rows_checked == 2


def test_schema_failures_are_counted_with_samples():
    bad = pl.DataFrame({"ticker": ["A", "A", "C"], "close": [1.0, 2.0, -3.0]})
    report = validate_schema(Bars, bad, partition="2024-03-01")
    assert not report.passed
    assert any("greater_than" in check for check in report.by_check)
    assert any("unique" in check.lower() for check in report.by_check)
    assert report.sample[0]["partition"] == "2024-03-01"
    assert {"column", "check", "failure_case", "row"} <= set(report.sample[0])


def test_merge_accumulates_and_caps_the_sample():
    total = CheckReport()
    bad = pl.DataFrame({"ticker": [f"T{i}" for i in range(30)], "close": [-1.0] * 30})
    total.merge(validate_schema(Bars, bad))
    total.merge(validate_schema(Bars, bad))
    assert total.failures == 60
    assert total.rows_checked == 60
    assert len(total.sample) == 10


def test_dates_within_flags_rows_outside_the_partition():
    df = pl.DataFrame({"d": [dt.date(2024, 3, 1), dt.date(2024, 3, 2), None]})
    report = dates_within(df, "d", [dt.date(2024, 3, 1)])
    assert report.failures == 2


def test_dates_within_reads_datetimes_in_new_york():
    # 2024-03-02 03:00 UTC is still 2024-03-01 in New York
    df = pl.DataFrame({"ts": [dt.datetime(2024, 3, 2, 3, 0)]}).with_columns(
        pl.col("ts").dt.replace_time_zone("UTC")
    )
    assert dates_within(df, "ts", [dt.date(2024, 3, 1)], tz="America/New_York").passed
    assert not dates_within(df, "ts", [dt.date(2024, 3, 1)]).passed


@given(
    st.lists(st.dates(dt.date(2020, 1, 1), dt.date(2020, 12, 31)), max_size=40),
    st.dates(dt.date(2020, 1, 1), dt.date(2020, 12, 31)),
)
def test_dates_within_counts_exactly_the_other_days(days, allowed):
    df = pl.DataFrame({"d": days}, schema={"d": pl.Date})
    report = dates_within(df, "d", [allowed])
    assert report.failures == sum(d != allowed for d in days)


def test_rules_report_counts_each_broken_rule_and_treats_null_as_broken():
    frame = pl.DataFrame({"x": [1, -1, None, 3]})
    report = rules_report(
        frame, {"positive": pl.col("x") > 0, "small": pl.col("x") < 3}, partition="p", label="t"
    )
    assert report.rows_checked == 4
    assert report.by_check == {"positive": 2, "small": 2}
    assert report.failures == 4
    assert {row["check"] for row in report.sample} == {"positive", "small"}
    assert all(row["partition"] == "p" and row["column"] == "t" for row in report.sample)
    assert rules_report(
        frame.drop_nulls().filter(pl.col("x") == 1), {"positive": pl.col("x") > 0}
    ).passed


def test_condition_report_is_one_failure_with_its_detail():
    assert condition_report("size", True, "fine").passed
    failed = condition_report("size", False, "3 members, need 10", partition="2024-03-05")
    assert failed.failures == 1
    assert failed.by_check == {"size": 1}
    assert failed.sample[0]["failure_case"] == "3 members, need 10"


def test_a_session_must_have_rows_and_must_not_collapse():
    from smallcaps_assets.core.validation import row_count_report

    assert not row_count_report(0, []).passed
    assert not row_count_report(0, [9_000, 9_100]).passed
    assert row_count_report(1, []).passed  # nothing to compare with yet
    assert row_count_report(9_050, [9_000, 9_100, 8_900]).passed
    collapsed = row_count_report(33, [9_000, 9_100, 8_900], partition="2024-03-05")
    assert not collapsed.passed
    assert "33 rows against a median of 9,000" in collapsed.sample[0]["failure_case"]
    # Only the last few sessions count: an old small history does not excuse a collapse.
    assert not row_count_report(4_000, [100] * 10 + [9_000] * 5).passed


@given(st.lists(st.integers(1, 50_000), min_size=1, max_size=8), st.floats(0.5, 2.0))
def test_a_count_near_the_recent_median_always_passes(history, scale):
    import numpy as np

    from smallcaps_assets.core.validation import ROW_COUNT_HISTORY, row_count_report

    median = float(np.median(history[-ROW_COUNT_HISTORY:]))
    rows = max(1, int(np.ceil(median * scale)))
    assert row_count_report(rows, history).passed
