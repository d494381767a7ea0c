"""One small factory for the blocking checks every dataset carries.

Assets write their own partition files (so ranged backfills run as one run), which means checks
are evaluated inside the asset over each partition it wrote and reported through
``MaterializeResult(check_results=...)``. A failed blocking check fails the step after the files
are recorded, so nothing downstream runs on bad data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import dagster as dg
import pandera.polars as pa
import polars as pl

from smallcaps_assets.core.validation import CheckReport, dates_within, validate_schema

SCHEMA_CHECK = "schema"
DATES_CHECK = "dates_in_partition"


def check_specs(
    asset_key: dg.AssetKey, model: type[pa.DataFrameModel], *, dated: bool = True
) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            SCHEMA_CHECK,
            asset=asset_key,
            blocking=True,
            description=f"Pandera {model.__name__}: dtypes, value ranges, unique keys and row-level rules.",
        )
    ]
    if dated:
        specs.append(
            dg.AssetCheckSpec(
                DATES_CHECK,
                asset=asset_key,
                blocking=True,
                description="Every row is stamped inside the partition it is stored in.",
            )
        )
    return specs


class PartitionChecks:
    """Accumulates check reports across the partitions of one run."""

    def __init__(
        self,
        asset_key: dg.AssetKey,
        model: type[pa.DataFrameModel],
        *,
        date_column: str | None,
        tz: str | None = None,
    ) -> None:
        self.asset_key = asset_key
        self.model = model
        self.date_column = date_column
        self.tz = tz
        self.schema = CheckReport()
        self.dates = CheckReport()
        self.partitions: list[str] = []

    def observe(
        self, partition_key: str, df: pl.DataFrame, *, allowed_days: Iterable[dt.date] | None = None
    ) -> None:
        self.partitions.append(partition_key)
        self.schema.merge(validate_schema(self.model, df, partition=partition_key))
        if self.date_column is not None:
            days = (
                list(allowed_days)
                if allowed_days is not None
                else [dt.date.fromisoformat(partition_key)]
            )
            self.dates.merge(
                dates_within(df, self.date_column, days, partition=partition_key, tz=self.tz)
            )

    def results(self) -> list[dg.AssetCheckResult]:
        results = [_to_result(self.asset_key, SCHEMA_CHECK, self.schema, self.partitions)]
        if self.date_column is not None:
            results.append(_to_result(self.asset_key, DATES_CHECK, self.dates, self.partitions))
        return results


def _to_result(
    asset_key: dg.AssetKey,
    name: str,
    report: CheckReport,
    partitions: list[str],
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    metadata: dict[str, dg.RawMetadataValue] = {
        "rows_checked": report.rows_checked,
        "failing_rows": report.failures,
        "partitions_checked": len(partitions),
    }
    if partitions:
        metadata["partition_range"] = f"{min(partitions)}...{max(partitions)}"
    if not report.passed:
        lines = ["| check | failures |", "|---|---|"] + [
            f"| {check} | {count} |"
            for check, count in sorted(report.by_check.items(), key=lambda kv: -kv[1])
        ]
        metadata["failures_by_check"] = dg.MetadataValue.md("\n".join(lines))
        columns = ["partition", "column", "check", "failure_case", "row"]
        metadata["failure_sample"] = dg.MetadataValue.table(
            records=[dg.TableRecord({c: r.get(c, "") for c in columns}) for r in report.sample],
            schema=dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in columns]),
        )
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=name,
        passed=report.passed,
        severity=severity,
        metadata=metadata,
    )


class NamedChecks:
    """Blocking checks with free names (schema, point in time, meaning checks), reported once per
    run over every partition the run wrote.

    Names in ``warnings`` are advisory instead: not blocking, WARN severity when they fail (a
    report's finding, e.g. a market outside real ranges, must never hold anything back)."""

    def __init__(
        self,
        asset_key: dg.AssetKey,
        descriptions: dict[str, str],
        *,
        warnings: frozenset[str] = frozenset(),
    ) -> None:
        unknown = warnings - set(descriptions)
        if unknown:
            raise KeyError(f"warning checks {sorted(unknown)} have no description")
        self.asset_key = asset_key
        self.descriptions = descriptions
        self.warnings = warnings
        self.reports = {name: CheckReport() for name in descriptions}
        self.partitions: list[str] = []

    def specs(self) -> list[dg.AssetCheckSpec]:
        return [
            dg.AssetCheckSpec(
                name, asset=self.asset_key, blocking=name not in self.warnings, description=text
            )
            for name, text in self.descriptions.items()
        ]

    def record(self, partition_key: str, reports: dict[str, CheckReport]) -> None:
        unknown = set(reports) - set(self.reports)
        if unknown:
            raise KeyError(
                f"{self.asset_key.to_user_string()} has no check named {sorted(unknown)}"
            )
        self.partitions.append(partition_key)
        for name, report in reports.items():
            self.reports[name].merge(report)

    def results(self) -> list[dg.AssetCheckResult]:
        return [
            _to_result(
                self.asset_key,
                name,
                report,
                self.partitions,
                dg.AssetCheckSeverity.WARN
                if name in self.warnings
                else dg.AssetCheckSeverity.ERROR,
            )
            for name, report in self.reports.items()
        ]
