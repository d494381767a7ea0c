"""Data-quality checks as pure functions: a Pandera schema run and the meaning checks.

Each returns a :class:`CheckReport`; the Dagster layer turns reports into asset check results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

SAMPLE_ROWS = 10


@dataclass
class CheckReport:
    """Outcome of one check over one or more partitions."""

    rows_checked: int = 0
    failures: int = 0
    by_check: dict[str, int] = field(default_factory=dict)
    sample: list[dict[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.failures == 0

    def merge(self, other: CheckReport) -> None:
        self.rows_checked += other.rows_checked
        self.failures += other.failures
        for name, count in other.by_check.items():
            self.by_check[name] = self.by_check.get(name, 0) + count
        room = SAMPLE_ROWS - len(self.sample)
        if room > 0:
            self.sample.extend(other.sample[:room])


def validate_schema(
    model: type[pa.DataFrameModel] | pa.DataFrameSchema, df: pl.DataFrame, *, partition: str = ""
) -> CheckReport:
    """Run a Pandera model or schema over ``df`` (eagerly: a LazyFrame would only get schema
    checks)."""
    try:
        model.validate(df, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.with_columns(pl.col("failure_case").cast(pl.String))
        counts = (
            cases.group_by("column", "check").agg(pl.len().alias("n")).sort("n", descending=True)
        )
        by_check = {
            f"{row['column']}: {row['check']}": int(row["n"])
            for row in counts.iter_rows(named=True)
        }
        sample = [
            {
                "partition": partition,
                "column": str(row["column"]),
                "check": str(row["check"]),
                "failure_case": str(row["failure_case"])[:300],
                "row": "" if row["index"] is None else str(row["index"]),
            }
            for row in cases.head(SAMPLE_ROWS).iter_rows(named=True)
        ]
        return CheckReport(df.height, cases.height, by_check, sample)
    return CheckReport(rows_checked=df.height)


def dates_within(
    df: pl.DataFrame,
    column: str,
    allowed: Iterable[dt.date],
    *,
    partition: str = "",
    tz: str | None = None,
) -> CheckReport:
    """Every value of ``column`` (a date, or a datetime read in ``tz``) falls on an allowed day."""
    allowed_days = sorted(set(allowed))
    expr = pl.col(column)
    if isinstance(df.schema[column], pl.Datetime):
        expr = (expr.dt.convert_time_zone(tz) if tz else expr).dt.date()
    checked = df.select(expr.alias("day"), pl.int_range(pl.len()).alias("row"))
    bad = checked.filter(pl.col("day").is_null() | ~pl.col("day").is_in(allowed_days))
    if bad.is_empty():
        return CheckReport(rows_checked=df.height)
    sample = [
        {
            "partition": partition,
            "column": column,
            "check": f"{column} inside partition",
            "failure_case": str(r["day"]),
            "row": str(r["row"]),
        }
        for r in bad.head(SAMPLE_ROWS).iter_rows(named=True)
    ]
    return CheckReport(df.height, bad.height, {f"{column} inside partition": bad.height}, sample)


def rules_report(
    frame: pl.DataFrame, rules: Mapping[str, pl.Expr], *, partition: str = "", label: str = ""
) -> CheckReport:
    """Rows of ``frame`` breaking any row rule (a boolean expression; null counts as broken).

    ``label`` fills the sample's ``column`` field (the dataset or column the rules are about).
    """
    verdicts = frame.select(
        pl.int_range(pl.len()).alias("_row"),
        *(expr.fill_null(False).alias(name) for name, expr in rules.items()),
    )
    report = CheckReport(rows_checked=frame.height)
    for name in rules:
        failed = verdicts.filter(~pl.col(name))
        if failed.is_empty():
            continue
        report.failures += failed.height
        report.by_check[name] = failed.height
        room = SAMPLE_ROWS - len(report.sample)
        report.sample.extend(
            {
                "partition": partition,
                "column": label,
                "check": name,
                "failure_case": str(frame.row(row, named=True))[:300],
                "row": str(row),
            }
            for row in failed.get_column("_row").head(max(room, 0)).to_list()
        )
    return report


def condition_report(name: str, holds: bool, detail: str, *, partition: str = "") -> CheckReport:
    """A check on a whole partition (a count within bounds, say): one failure when it fails."""
    report = CheckReport(rows_checked=1)
    if not holds:
        report.failures = 1
        report.by_check[name] = 1
        report.sample.append(
            {"partition": partition, "column": "", "check": name, "failure_case": detail, "row": ""}
        )
    return report


# A session's row count below this share of the median of the sessions before it is a collapse:
# grouped daily bars and ticker lists move by a few percent a day, never by half.
ROW_COLLAPSE_SHARE = 0.5
ROW_COUNT_HISTORY = 5


def row_count_report(
    rows: int, previous: Sequence[int], *, partition: str = "", share: float = ROW_COLLAPSE_SHARE
) -> CheckReport:
    """A session that must have data: not empty, and not collapsed against the sessions before it
    (``previous``: their row counts, most recent last; only the last ``ROW_COUNT_HISTORY`` count).
    """
    if rows == 0:
        return condition_report(
            "rows on a trading session",
            False,
            "0 rows: the source answered with no data for a session that always has some",
            partition=partition,
        )
    recent = [n for n in previous[-ROW_COUNT_HISTORY:] if n > 0]
    if not recent:
        return condition_report("rows on a trading session", True, "", partition=partition)
    median = float(np.median(recent))
    return condition_report(
        f"rows >= {share:.0%} of the median of the previous sessions",
        rows >= share * median,
        f"{rows} rows against a median of {median:,.0f} over the {len(recent)} sessions before",
        partition=partition,
    )
