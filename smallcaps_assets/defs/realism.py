"""``research/market_realism``: each month's stylized facts of the stored bars beside the real
small-cap ranges (``core/realism.py``), with histograms.

A report, never a gate: nothing depends on it, and a fact outside its real range fails only the
non-blocking WARN check ``inside_real_ranges``. One partition per month (why: docs/decisions.md);
a ranged run over several months also reports the facts pooled over its whole range.
"""

import base64
import datetime as dt
import functools
from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl

from smallcaps_assets import progress
from smallcaps_assets.core import calendar, realism
from smallcaps_assets.core.storage import DataStore, RejectedPartitionError
from smallcaps_assets.defs import automation
from smallcaps_assets.defs.checks import (
    CheckSet,
    PartitionPublisher,
    PublishEvent,
    run_partition_keys,
)
from smallcaps_assets.defs.partitions import months
from smallcaps_assets.defs.plots import render_png
from smallcaps_assets.defs.resources import DataStoreResource
from smallcaps_assets.research.market_realism import StoredInputs, read_stored_inputs

LAYER = "research"
DATASET = "market_realism"
KEY = dg.AssetKey([LAYER, DATASET])
RANGES_CHECK = "inside_real_ranges"


class MarketRealismConfig(dg.Config):
    """Sample sizes below which a fact is ``insufficient`` rather than judged (defaults: core's
    :class:`~smallcaps_assets.core.realism.SampleMinimums`; lower them for a small data root)."""

    min_ticker_days: int = realism.SampleMinimums.ticker_days
    min_gap_days: int = realism.SampleMinimums.gap_days
    min_gap_days_with_minutes: int = realism.SampleMinimums.gap_days_with_minutes

    def minimums(self) -> realism.SampleMinimums:
        return realism.SampleMinimums(
            self.min_ticker_days, self.min_gap_days, self.min_gap_days_with_minutes
        )


def _checks() -> CheckSet:
    return CheckSet(
        KEY,
        realism.MarketRealismModel,
        {
            RANGES_CHECK: "Every fact with enough observations lies inside its real small-cap "
            "range (WARN, not blocking: the report informs, it never holds the graph back).",
        },
        warnings=frozenset({RANGES_CHECK}),
    )


def _month_end(month: dt.date) -> dt.date:
    following = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return following - dt.timedelta(days=1)


def _month_sessions_dep(key: list[str]) -> dg.AssetDep:
    # The month's sessions; a session not stored yet (the month in progress) is not required.
    return dg.AssetDep(
        dg.AssetKey(key),
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=0, end_offset=0, allow_nonexistent_upstream_partitions=True
        ),
    )


def histogram_png(histogram: realism.Histogram) -> bytes:
    """One histogram, the real range of its median shaded and the sample's median marked."""

    def draw(ax: Any) -> None:
        if histogram.real_low is not None and histogram.real_high is not None:
            ax.axvspan(
                histogram.real_low,
                histogram.real_high,
                color="tab:green",
                alpha=0.25,
                label="real range of the median",
            )
        ax.stairs(histogram.counts, histogram.edges, fill=True, color="tab:blue", alpha=0.7)
        if histogram.median is not None:
            ax.axvline(histogram.median, color="black", linestyle="--", label="sample median")
        ax.set_title(f"{histogram.title} (n={histogram.n:,})", fontsize=9)
        ax.set_xlabel(histogram.x_label)
        ax.set_ylabel("count")
        ax.legend(fontsize=7)

    return render_png(draw, figsize=(6, 3), dpi=80)


def _image(payload: bytes) -> dg.MetadataValue:
    return dg.MetadataValue.md(
        f"![plot](data:image/png;base64,{base64.b64encode(payload).decode()})"
    )


def _report_metadata(report: realism.RealismReport, sessions: int) -> dict[str, Any]:
    samples = report.samples
    metadata: dict[str, Any] = {
        "facts": dg.MetadataValue.md(realism.facts_markdown(report.facts)),
        "sessions": sessions,
        "ticker_days": samples.count(realism.Population.TICKER_DAYS),
        "gap_days": samples.count(realism.Population.GAP_DAYS),
        "gap_days_with_minutes": samples.count(realism.Population.GAP_DAYS_WITH_MINUTES),
        "outside": dg.MetadataValue.json(report.outside),
        "insufficient": dg.MetadataValue.json(report.insufficient),
    }
    for histogram in realism.histograms(samples):
        metadata[f"histogram_{histogram.key}"] = _image(histogram_png(histogram))
    return metadata


def _pooled(parts: list[StoredInputs], minimums: realism.SampleMinimums) -> realism.RealismReport:
    # A month's first previous close is the previous month's last session, read twice: the
    # samples keep one bar per (ticker, date).
    return realism.measure_realism(
        pl.concat([p.daily_bars for p in parts]),
        pl.concat([p.minute_bars for p in parts]),
        minimums=minimums,
    )


@dg.asset(
    key=KEY,
    group_name=LAYER,
    automation_condition=automation.after_upstream_checks(),
    partitions_def=months,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        _month_sessions_dep(["processed", "daily_bars"]),
        _month_sessions_dep(["processed", "minute_bars"]),
    ],
    description="Month M's market realism: gap frequency and size, daily volatility and tails, "
    "price level, gap-day fade and excursion, and (from the candidates' minute bars) opening and "
    "premarket volume, time of the high of day and halts, beside real US small-cap ranges, with "
    "histograms. A report: facts outside the ranges only warn.",
    check_specs=_checks().specs(),
    kinds={"polars", "parquet"},
)
def market_realism(
    context: dg.AssetExecutionContext, config: MarketRealismConfig, data: DataStoreResource
) -> Iterator[PublishEvent]:
    store, minimums = data.store(), config.minimums()
    publisher = PartitionPublisher(context, _checks(), store, LAYER, DATASET)
    parts = [
        inputs
        for key in run_partition_keys(context)
        if (inputs := _measure_month(publisher, store, key, minimums)) is not None
    ]
    run_metadata: dict[str, Any] = {"partitions_in_run": len(parts)}
    if len(parts) > 1:
        pooled = _pooled(parts, minimums)
        run_metadata["facts_over_run"] = dg.MetadataValue.md(realism.facts_markdown(pooled.facts))
        run_metadata["outside_over_run"] = dg.MetadataValue.json(pooled.outside)
    yield from publisher.outcome(run_metadata)


def _measure_month(
    publisher: PartitionPublisher,
    store: DataStore,
    key: str,
    minimums: realism.SampleMinimums,
) -> StoredInputs | None:
    """One month's facts, audited and published; None when the month was not published."""
    month = dt.date.fromisoformat(key)
    try:
        inputs = read_stored_inputs(store, month, _month_end(month))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{KEY.to_user_string()} {month:%Y-%m}: {exc}") from exc
    except RejectedPartitionError as exc:
        publisher.blocked(key, exc)
        return None
    report = realism.measure_realism(inputs.daily_bars, inputs.minute_bars, minimums=minimums)
    frame = realism.month_facts(report, month)
    written = publisher.submit(
        key,
        frame,
        publisher.checks.audit(
            key, frame, {RANGES_CHECK: realism.ranges_report(frame, partition=key)}
        ),
        functools.partial(store.write, LAYER, DATASET, month, frame),
        lambda written: {
            "dagster/row_count": frame.height,
            "path": dg.MetadataValue.path(written.path),
            "first_session": inputs.sessions[0].isoformat(),
            "last_session": inputs.sessions[-1].isoformat(),
            "month_sessions": len(calendar.sessions(month, _month_end(month))),
            **_report_metadata(report, len(inputs.sessions)),
        },
    )
    progress.partition_done(KEY.to_user_string(), key)
    return inputs if written is not None else None
