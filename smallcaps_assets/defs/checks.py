"""The blocking checks every dataset carries, and write-audit-publish of its partitions.

Assets write their own partition files (so ranged backfills run as one run), so checks are
evaluated inside the asset on each partition's frame *before* it is written
(:class:`PartitionPublisher`): a frame that passes is published atomically as the partition; one
that fails is quarantined beside it, the earlier file stays canonical, and the step fails after
recording what it published, so nothing downstream runs on bad data, in this run or a later one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import dagster as dg
import pandera.polars as pa
import polars as pl

from smallcaps_assets.core import calendar
from smallcaps_assets.core.storage import DataStore, RejectedPartitionError
from smallcaps_assets.core.validation import CheckReport, validate_schema

SCHEMA_CHECK = "schema"
DATES_CHECK = "dates_in_partition"
ROWS_CHECK = "rows_on_session"

Published = TypeVar("Published")
PublishEvent = dg.MaterializeResult | dg.AssetMaterialization | dg.AssetCheckResult  # type: ignore[type-arg]


def _check_metadata(report: CheckReport, partitions: list[str]) -> dict[str, dg.RawMetadataValue]:
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
    return metadata


Schema = pa.DataFrameSchema | type[pa.DataFrameModel]


class CheckSet:
    """Every check of one dataset, reported once per run over every partition the run audited.

    Each dataset gets its Pandera ``schema`` check from its model (run by :meth:`audit` on every
    frame) and its own named meaning checks, all blocking. Names in ``warnings`` are advisory
    instead: not blocking, WARN severity when they fail (a report's finding, e.g. a market outside
    real ranges, must never hold anything back)."""

    def __init__(
        self,
        asset_key: dg.AssetKey,
        model: Schema,
        meaning: dict[str, str] | None = None,
        *,
        warnings: frozenset[str] = frozenset(),
    ) -> None:
        descriptions = {SCHEMA_CHECK: _schema_description(model), **(meaning or {})}
        unknown = warnings - set(descriptions)
        if unknown:
            raise KeyError(f"warning checks {sorted(unknown)} have no description")
        self.asset_key = asset_key
        self.model = model
        self.descriptions = descriptions
        self.warnings = warnings
        self.reports = {name: CheckReport() for name in descriptions}
        self.partitions: list[str] = []

    def audit(
        self,
        partition_key: str,
        frame: pl.DataFrame,
        meaning: dict[str, CheckReport],
        *,
        model: Schema | None = None,
    ) -> dict[str, CheckReport]:
        """The schema check (``model`` overrides the set's, e.g. a rules-dependent one) and the
        meaning checks of one partition's frame, keyed by check name."""
        schema = validate_schema(model or self.model, frame, partition=partition_key)
        return {SCHEMA_CHECK: schema, **meaning}

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

    def blocking_failures(self, reports: dict[str, CheckReport]) -> list[str]:
        """The blocking checks among ``reports`` that failed (warnings never block)."""
        return [n for n, r in reports.items() if not r.passed and n not in self.warnings]

    def severity(self, name: str) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity.WARN if name in self.warnings else dg.AssetCheckSeverity.ERROR

    def results(
        self, extra: dict[str, dict[str, dg.RawMetadataValue]] | None = None
    ) -> list[dg.AssetCheckResult]:
        return [
            dg.AssetCheckResult(
                asset_key=self.asset_key,
                check_name=name,
                passed=report.passed,
                severity=self.severity(name),
                metadata={
                    **_check_metadata(report, self.partitions),
                    **(extra or {}).get(name, {}),
                },
            )
            for name, report in self.reports.items()
        ]


def _first_failure(name: str, report: CheckReport) -> str:
    sample = report.sample[0] if report.sample else {}
    case = " ".join(v for v in (sample.get("column", ""), sample.get("check", "")) if v)
    detail = f": {case} ({sample.get('failure_case', '')})" if sample else ""
    return f"{name} failed on {report.failures} row(s){detail}"


def _schema_description(model: Schema) -> str:
    name = model.name if isinstance(model, pa.DataFrameSchema) else model.__name__
    return f"Pandera {name}: dtypes, value ranges, unique keys and row-level rules."


def run_partition_keys(context: dg.AssetExecutionContext) -> list[str]:
    """The run's partition keys, refusing an empty range (a reversed ``--partition-range``)
    instead of recording a materialization of nothing."""
    keys = sorted(context.partition_keys)
    if not keys:
        raise dg.Failure(
            description=(
                f"{context.asset_key.to_user_string()}: the run selects no partition (an empty or "
                "reversed partition range?); nothing was materialized"
            )
        )
    return keys


class PartitionPublisher:
    """Write-audit-publish for the partitions of one run.

    ``submit`` audits a partition's frame with its check reports and publishes it (``publish``: an
    atomic write to the store) only when every blocking check passed, recording ``describe`` of
    what was published as the partition's metadata; otherwise the frame goes to the store's
    quarantine and the partition keeps its earlier file. ``outcome`` then either yields the run's
    MaterializeResult (all published) or yields the published partitions' materializations and
    every check's result and fails the step, naming each rejected partition.
    """

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        checks: CheckSet,
        store: DataStore,
        layer: str,
        dataset: str,
    ) -> None:
        self.context = context
        self.checks = checks
        self.store = store
        self.layer = layer
        self.dataset = dataset
        self.published: dict[str, dict[str, Any]] = {}
        self.rejected: dict[str, str] = {}
        self.quarantined: dict[str, list[str]] = {}

    def submit(
        self,
        key: str,
        frame: pl.DataFrame,
        reports: dict[str, CheckReport],
        publish: Callable[[], Published],
        describe: Callable[[Published], dict[str, Any]],
    ) -> Published | None:
        self.checks.record(key, reports)
        missing = set(self.checks.reports) - set(reports)
        if missing:
            raise KeyError(f"{self.asset_name} {key}: checks {sorted(missing)} were not run")
        failed = self.checks.blocking_failures(reports)
        if not failed:
            published = publish()
            self.published[key] = describe(published)
            return published
        path = self.store.quarantine(
            self.layer,
            self.dataset,
            key,
            frame,
            rejected_at=dt.datetime.now(dt.UTC),
            failures={name: dict(reports[name].by_check) for name in failed},
        )
        for name in failed:
            self.quarantined.setdefault(name, []).append(path)
        details = "; ".join(_first_failure(name, reports[name]) for name in failed)
        self.rejected[key] = f"{details}; frame quarantined at {path}"
        self.context.log.error(f"{self.asset_name} {key} rejected: {self.rejected[key]}")
        return None

    def blocked(self, key: str, error: RejectedPartitionError) -> None:
        """A partition not built because an input it reads was rejected by its own checks."""
        self.rejected[key] = f"not built: {error}"
        self.context.log.error(f"{self.asset_name} {key} {self.rejected[key]}")

    @property
    def asset_name(self) -> str:
        return self.checks.asset_key.to_user_string()

    def outcome(self, metadata: dict[str, Any]) -> Iterator[PublishEvent]:
        """What the asset yields: the run's MaterializeResult when every partition was published;
        otherwise the published partitions' materializations and every check's result, then the
        step fails (events are yielded, not logged: a step that raises drops logged events)."""
        extra: dict[str, dict[str, dg.RawMetadataValue]] = {
            name: {"quarantined": dg.MetadataValue.json(paths)}
            for name, paths in self.quarantined.items()
        }
        partitioned = self.context.assets_def.partitions_def is not None
        if not self.rejected:
            for key, partition_metadata in self.published.items():
                if partitioned:
                    self.context.add_asset_metadata(partition_metadata, partition_key=key)
                else:
                    self.context.add_asset_metadata(partition_metadata)
            yield dg.MaterializeResult(metadata=metadata, check_results=self.checks.results(extra))
            return
        for key, partition_metadata in self.published.items():
            yield dg.AssetMaterialization(
                asset_key=self.checks.asset_key,
                partition=key if partitioned else None,
                metadata=partition_metadata,
            )
        yield from self.checks.results(extra)
        lines = [f"  {key}: {why}" for key, why in sorted(self.rejected.items())]
        raise dg.Failure(
            description=(
                f"{self.asset_name}: {len(self.rejected)} partition(s) rejected, "
                f"{len(self.published)} published; a rejected partition keeps its earlier file.\n"
                + "\n".join(lines)
            ),
            metadata={
                "rejected": dg.MetadataValue.json(self.rejected),
                "published": sorted(self.published),
            },
            allow_retries=False,
        )


def previous_row_counts(
    store: DataStore, layer: str, dataset: str, day: dt.date, history: int
) -> Sequence[int]:
    """Row counts of the stored partitions among the ``history`` sessions before ``day``, oldest
    first (from the calendar, not a listing: a five-year dataset is not globbed per session)."""
    before = calendar.sessions(day - dt.timedelta(days=2 * history + 10), day)
    recent = [d for d in before if d < day][-history:]
    return [store.row_count(layer, dataset, d) for d in recent if store.exists(layer, dataset, d)]
