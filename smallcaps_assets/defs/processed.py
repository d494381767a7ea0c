"""Processed layer: research-grade, point-in-time datasets built from the raw layer.

Each asset is partitioned by session and writes one parquet file per partition (replaced on
rematerialization: the layer is derived and reproducible from raw). A ranged backfill is one run
that loads the histories it needs (splits, dividends, filings) once, up to the last session of
the range, and every partition then filters them to what was known on its own session. The
functions in ``core/`` enforce the point-in-time rules; this module only reads, calls and writes.

Checks (all blocking): the Pandera model, ``point_in_time`` (no row uses information from after
its session) and each asset's meaning checks.
"""

import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import dagster as dg
import pandera.polars as pa
import polars as pl

from smallcaps_assets import progress
from smallcaps_assets.core import (
    bars,
    calendar,
    corporate,
    event_schemas,
    events,
    features,
    fundamentals,
    labels,
    minute,
    news,
    processed_schemas,
    universe,
)
from smallcaps_assets.core.catalog import markdown_table
from smallcaps_assets.core.processed_schemas import (
    PROCESSED_MODELS,
    ProcessedWatchlist,
    check_point_in_time,
    universe_model,
)
from smallcaps_assets.core.storage import DataStore, RejectedPartitionError, WriteReport
from smallcaps_assets.core.universe import UniverseRules
from smallcaps_assets.core.validation import (
    CheckReport,
    condition_report,
    rules_report,
)
from smallcaps_assets.defs import automation
from smallcaps_assets.defs.checks import (
    CheckSet,
    PartitionPublisher,
    PublishEvent,
    run_partition_keys,
)
from smallcaps_assets.defs.partitions import trading_days
from smallcaps_assets.defs.raw import MINUTE_REQUESTS
from smallcaps_assets.defs.resources import (
    DataStoreResource,
    ResearchSettingsResource,
    UniverseRulesResource,
)

LAYER = "processed"
RAW = "raw"

POINT_IN_TIME_CHECK = "point_in_time"
BASE_CHECKS = {
    POINT_IN_TIME_CHECK: "No row uses information from after its session (dates, filings, "
    "actions, news window, bar times).",
}


@dataclass
class DayOutput:
    frame: pl.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    # Rows each cleaning rule removed (``input_rows``/``output_rows`` included), if any.
    stats: dict[str, int] | None = None
    checks: dict[str, CheckReport] = field(default_factory=dict)


class RunInputs:
    """Reads for one run. Histories (every stored partition up to the run's last session) are
    loaded once; each partition filters them to its own session."""

    def __init__(
        self,
        store: DataStore,
        first_day: dt.date,
        last_day: dt.date,
        universe_rules: UniverseRulesResource | None = None,
        research: ResearchSettingsResource | None = None,
    ) -> None:
        self.store = store
        self.first_day = first_day
        self.last_day = last_day
        self.universe_rules = universe_rules or UniverseRulesResource()
        self.research = research or ResearchSettingsResource()
        self._histories: dict[tuple[str, str, int | None], pl.DataFrame] = {}

    def history(
        self, layer: str, dataset: str, *, lookback_days: int | None = None
    ) -> pl.DataFrame:
        """Every stored partition up to the run's last session; with ``lookback_days``, only
        those from that many calendar days before the run's first session."""
        key = (layer, dataset, lookback_days)
        if key not in self._histories:
            last = self.last_day.isoformat()
            first = (
                (self.first_day - dt.timedelta(days=lookback_days)).isoformat()
                if lookback_days is not None
                else ""
            )
            days = [d for d in self.store.partitions(layer, dataset) if first <= d <= last]
            self._histories[key] = self.store.read_many(layer, dataset, days)
        return self._histories[key]

    def day(self, layer: str, dataset: str, day: dt.date) -> pl.DataFrame:
        return self.store.read(layer, dataset, day)

    def day_or_empty(
        self, layer: str, dataset: str, day: dt.date, schema: pl.Schema
    ) -> pl.DataFrame:
        """A partition that may legitimately be missing (the first session of the store)."""
        if self.store.exists(layer, dataset, day):
            return self.store.read(layer, dataset, day)
        return pl.DataFrame(schema=schema)


Build = Callable[[RunInputs, dt.date], DayOutput]


@dataclass(frozen=True)
class ProcessedDataset:
    name: str
    description: str
    build: Build
    model: type[pa.DataFrameModel] | pa.DataFrameSchema
    deps: list[dg.AssetDep]
    meaning_checks: Mapping[str, str] = field(default_factory=dict)
    # Per-partition numeric metadata rolled up by month in the run's metadata: key -> "sum"|"mean".
    monthly: Mapping[str, str] = field(default_factory=dict)
    layer: str = LAYER
    # The point-in-time check; default: the processed rules of core.processed_schemas.
    point_in_time: Callable[[pl.DataFrame, dt.date, str], CheckReport] | None = None
    kinds: frozenset[str] = frozenset({"polars", "parquet"})
    # A schema whose rules follow the run's universe screen (the universe's price band).
    model_for_rules: Callable[[UniverseRules], type[pa.DataFrameModel]] | None = None

    def schema(self, rules: UniverseRules) -> type[pa.DataFrameModel] | pa.DataFrameSchema:
        return self.model_for_rules(rules) if self.model_for_rules else self.model

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey([self.layer, self.name])

    def checks(self) -> CheckSet:
        return CheckSet(self.key, self.model, {**BASE_CHECKS, **self.meaning_checks})

    def check_point_in_time(self, frame: pl.DataFrame, day: dt.date, partition: str) -> CheckReport:
        if self.point_in_time is not None:
            return self.point_in_time(frame, day, partition)
        return check_point_in_time(self.name, frame, day, partition=partition)


def _mean(values: pl.Series) -> float:
    mean = values.mean()
    return float(mean) if isinstance(mean, int | float) else 0.0


def _median(values: pl.Series) -> float:
    median = values.median()
    return float(median) if isinstance(median, int | float) else 0.0


def _same(key: list[str]) -> dg.AssetDep:
    return dg.AssetDep(dg.AssetKey(key))


def _sessions_before(key: list[str], first: int, last: int = -1) -> dg.AssetDep:
    return dg.AssetDep(
        dg.AssetKey(key),
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=first, end_offset=last, allow_nonexistent_upstream_partitions=True
        ),
    )


# -- builders: one session each -----------------------------------------------------------------
def _build_daily_bars(inputs: RunInputs, day: dt.date) -> DayOutput:
    result = bars.process_daily_bars(
        inputs.day(RAW, "daily_bars", day), inputs.history(RAW, "splits"), day
    )
    flags = result.frame.group_by("quality_flag").len().sort("quality_flag")
    ssr = minute.ssr_triggered_days(
        pl.concat(
            [
                inputs.day_or_empty(
                    LAYER,
                    "daily_bars",
                    calendar.previous_session(day),
                    bars.PROCESSED_DAILY_BARS_SCHEMA,
                ),
                result.frame,
            ]
        )
    ).filter((pl.col("date") == day) & pl.col("ssr_triggered"))
    return DayOutput(
        result.frame,
        metadata={
            "tickers": result.frame.height,
            "quality_flags": dg.MetadataValue.json({str(f): int(n) for f, n in flags.iter_rows()}),
            "ssr_triggered_tickers": ssr.height,
            "tickers_with_split_history": result.frame.filter(
                pl.col("split_factor_to_d") != 1.0
            ).height,
        },
        stats=result.stats,
    )


def _build_corporate_actions(inputs: RunInputs, day: dt.date) -> DayOutput:
    frame = corporate.corporate_actions(
        inputs.history(RAW, "splits"), inputs.history(RAW, "dividends"), day
    )
    return DayOutput(
        frame,
        metadata={
            "tickers": frame.height,
            "reverse_splits_last_12m": int(frame.get_column("reverse_split_count_12m").sum() or 0),
        },
    )


def _build_fundamentals(inputs: RunInputs, day: dt.date) -> DayOutput:
    previous = calendar.previous_session(day)
    shares = None
    if inputs.store.exists(RAW, "ticker_details", previous):
        shares = inputs.day(RAW, "ticker_details", previous)
    frame = fundamentals.latest_fundamentals(
        inputs.history(RAW, "financials"), day, shares_history=shares
    )
    staleness = frame.select((pl.lit(day) - pl.col("filing_date")).dt.total_days().median()).item()
    return DayOutput(
        frame,
        metadata={
            "tickers": frame.height,
            "median_days_since_filing": float(staleness) if staleness is not None else 0.0,
        },
    )


def _build_news_daily(inputs: RunInputs, day: dt.date) -> DayOutput:
    frame = news.news_daily(inputs.day(RAW, "news", day), day)
    return DayOutput(
        frame,
        metadata={
            "tickers_with_news": frame.height,
            "articles_per_ticker": _mean(frame.get_column("article_count")),
        },
    )


def _daily_opens(inputs: RunInputs, day: dt.date) -> pl.DataFrame:
    # Only the open of D is known at 09:30; nothing else of D's bar is even loaded.
    raw = inputs.day(RAW, "daily_bars", day)
    return raw.select("ticker", "date", "open")


def _build_universe(inputs: RunInputs, day: dt.date) -> DayOutput:
    rules = inputs.universe_rules
    screen = rules.rules()
    previous = calendar.previous_session(day)
    tickers = inputs.day(RAW, "tickers", day)
    prev_bars = inputs.day(RAW, "daily_bars", previous)
    frame = universe.build_universe(
        tickers,
        inputs.day(RAW, "ticker_details", day),
        prev_bars,
        _daily_opens(inputs, day),
        screen,
        day,
        splits=inputs.history(RAW, "splits"),
    )
    stats = universe.universe_stats(frame)
    pool = universe.screenable_listings(tickers, prev_bars, day)
    share = stats["size"] / pool if pool else 0.0
    outside = universe.members_outside_band(frame, prev_bars, screen, day)
    delisted_later = (
        tickers.filter(pl.col("delisted_utc").is_not_null())
        .join(frame.select("ticker"), on="ticker", how="semi")
        .height
    )
    key = day.isoformat()
    size_ok = (
        stats["size"] >= rules.min_members
        and rules.min_listed_share <= share <= rules.max_listed_share
    )
    return DayOutput(
        frame,
        metadata={
            "universe_size": stats["size"],
            "candidates": stats["candidates"],
            "screenable_listings": pool,
            "universe_share_of_listings": round(share, 4),
            "members_delisted_later": delisted_later,
            "by_exchange": dg.MetadataValue.json(stats["by_exchange"]),
        },
        checks={
            "size_within_bounds": condition_report(
                "size_within_bounds",
                size_ok,
                f"{stats['size']} members = {share:.1%} of {pool} screenable listings; bounds: "
                f">= {rules.min_members} members and {rules.min_listed_share:.0%}-"
                f"{rules.max_listed_share:.0%} of listings",
                partition=key,
            ),
            "priced_inside_band": rules_report(
                outside,
                {"previous close inside the band": pl.lit(False)},
                partition=key,
                label="universe",
            ),
        },
    )


def _build_minute_bars(inputs: RunInputs, day: dt.date) -> DayOutput:
    raw = inputs.day(RAW, "minute_bars", day)
    previous = calendar.previous_session(day)
    history = pl.concat(
        [
            inputs.day_or_empty(LAYER, "daily_bars", d, bars.PROCESSED_DAILY_BARS_SCHEMA)
            for d in (calendar.previous_session(previous), previous)
        ]
    )
    prior = minute.prior_day_state(history, day, minute.ssr_triggered_days(history))
    result = minute.process_minute_bars(
        minute.bars_of_session(raw, day), day, prior=prior, splits=inputs.history(RAW, "splits")
    )
    frame = result.frame
    coverage = minute.candidate_coverage(
        inputs.day(LAYER, "universe", day), frame, inputs.day(RAW, MINUTE_REQUESTS, day)
    )
    summary = minute.session_summary(frame, coverage)
    return DayOutput(
        frame,
        metadata={
            **summary,
            "candidates_without_bars": dg.MetadataValue.json(
                cast(dict[str, str], summary["candidates_without_bars"])
            ),
        },
        stats=result.stats,
        checks=processed_schemas.minute_bars_checks(
            frame, coverage, day, partition=day.isoformat()
        ),
    )


def _build_watchlist(inputs: RunInputs, day: dt.date) -> DayOutput:
    rules = inputs.universe_rules
    members = inputs.day(LAYER, "universe", day)
    session_bars = inputs.day(LAYER, "minute_bars", day)
    history = minute.premarket_history(inputs.day(RAW, "minute_bars", day), day)
    frame = minute.watchlist_flags(
        members,
        minute.premarket_summary(session_bars),
        minute.trailing_premarket_volume(history, day),
        rules.rules(),
    )
    return DayOutput(
        frame,
        metadata={
            "candidates": frame.height,
            "watchlist": int(frame.get_column("is_watchlist").sum()),
            "median_premarket_rvol": _median(frame.get_column("premarket_rvol")),
        },
    )


# -- the generic runner ---------------------------------------------------------------------------
def _month_table(rows: list[tuple[str, dict[str, Any]]], fields: Mapping[str, str]) -> str:
    frame = pl.DataFrame(
        [{"month": key[:7], **{f: float(md.get(f, 0) or 0) for f in fields}} for key, md in rows]
    )
    aggs = [
        (pl.col(f).sum() if how == "sum" else pl.col(f).mean()).round(1).alias(f"{f} ({how})")
        for f, how in fields.items()
    ]
    table = frame.group_by("month").agg(pl.len().alias("sessions"), *aggs).sort("month")
    return markdown_table(table.columns, table.rows())


def _partition_metadata(out: DayOutput, report: WriteReport) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dagster/row_count": out.frame.height,
        "path": dg.MetadataValue.path(report.path),
        **out.metadata,
    }
    if out.stats is not None:
        metadata["cleaning"] = dg.MetadataValue.json(out.stats)
    return metadata


def materialize_processed(
    context: dg.AssetExecutionContext,
    dataset: ProcessedDataset,
    store: DataStore,
    *,
    universe_rules: UniverseRulesResource,
    research: ResearchSettingsResource,
) -> Iterator[PublishEvent]:
    days = [dt.date.fromisoformat(key) for key in run_partition_keys(context)]
    inputs = RunInputs(store, days[0], days[-1], universe_rules, research)
    model = dataset.schema(universe_rules.rules())
    publisher = PartitionPublisher(
        context,
        dataset.checks(),
        store,
        dataset.layer,
        dataset.name,
    )
    rows: list[tuple[str, dict[str, Any]]] = []
    total_rows = 0
    for day in days:
        key = day.isoformat()
        try:
            out = dataset.build(inputs, day)
        except RejectedPartitionError as exc:
            publisher.blocked(key, exc)
            continue
        report = publisher.submit(
            key,
            out.frame,
            publisher.checks.audit(
                key,
                out.frame,
                {
                    POINT_IN_TIME_CHECK: dataset.check_point_in_time(out.frame, day, key),
                    **out.checks,
                },
                model=model,
            ),
            functools.partial(store.write, dataset.layer, dataset.name, day, out.frame),
            functools.partial(_partition_metadata, out),
        )
        if report is None:
            continue
        rows.append((key, out.metadata))
        total_rows += out.frame.height
        progress.partition_done(dataset.key.to_user_string(), key)
    run_metadata: dict[str, Any] = {"partitions_in_run": len(days), "rows_in_run": total_rows}
    if dataset.monthly and rows:
        run_metadata["by_month"] = dg.MetadataValue.md(_month_table(rows, dataset.monthly))
    context.log.info(f"{dataset.key.to_user_string()}: {len(days)} session(s), {total_rows} rows")
    yield from publisher.outcome(run_metadata)


def build_processed_asset(dataset: ProcessedDataset) -> dg.AssetsDefinition:
    specs = dataset.checks().specs()
    common: dict[str, Any] = {
        "key": dataset.key,
        "group_name": dataset.layer,
        "description": dataset.description,
        "partitions_def": trading_days,
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "deps": dataset.deps,
        "check_specs": specs,
        "kinds": set(dataset.kinds),
        "automation_condition": automation.after_upstream_checks(),
    }

    @dg.asset(**common)  # type: ignore[untyped-decorator]
    def _processed(
        context: dg.AssetExecutionContext,
        data: DataStoreResource,
        universe_rules: UniverseRulesResource,
        research: ResearchSettingsResource,
    ) -> Iterator[PublishEvent]:
        yield from materialize_processed(
            context, dataset, data.store(), universe_rules=universe_rules, research=research
        )

    return cast(dg.AssetsDefinition, _processed)


PROCESSED_DATASETS: list[ProcessedDataset] = [
    ProcessedDataset(
        "daily_bars",
        "Cleaned unadjusted daily bars of every exchange-listed ticker with I(D), the cumulative "
        "split index known on D: a bar of session t on D's basis is price x I(D)/I(t).",
        _build_daily_bars,
        PROCESSED_MODELS["daily_bars"],
        deps=[_same([RAW, "daily_bars"]), _same([RAW, "splits"])],
        monthly={"tickers": "mean", "ssr_triggered_tickers": "sum"},
    ),
    ProcessedDataset(
        "corporate_actions",
        "Per ticker: splits and dividends executed by D, reverse-split flag, days since the last "
        "reverse split, 12-month split and dividend counts.",
        _build_corporate_actions,
        PROCESSED_MODELS["corporate_actions"],
        deps=[_same([RAW, "splits"]), _same([RAW, "dividends"])],
    ),
    ProcessedDataset(
        "fundamentals",
        "Per ticker: the latest filing known on D (filed before D) with shares, working capital, "
        "operating cash flow, revenue, dilution, cash burn and revenue growth QoQ/YoY.",
        _build_fundamentals,
        PROCESSED_MODELS["fundamentals"],
        deps=[_same([RAW, "financials"]), _sessions_before([RAW, "ticker_details"], -1)],
    ),
    ProcessedDataset(
        "news_daily",
        "Per ticker and session (articles after the previous session up to D's end, ET): counts, "
        "mean sentiment, topic flags (offering, earnings, FDA, contract, ...).",
        _build_news_daily,
        PROCESSED_MODELS["news_daily"],
        deps=[_same([RAW, "news"])],
        monthly={"tickers_with_news": "sum"},
    ),
    ProcessedDataset(
        "universe",
        "The point-in-time small-cap universe of D (common stocks on XNAS/XNYS/XASE, D-1 close in "
        "the price band, market cap and shares under the caps; names delisted later included) "
        "with D's gap candidates (open >= 10% above D-1's close on D's share basis).",
        _build_universe,
        PROCESSED_MODELS["universe"],
        model_for_rules=universe_model,
        deps=[
            _same([RAW, "tickers"]),
            _same([RAW, "ticker_details"]),
            dg.AssetDep(
                dg.AssetKey([RAW, "daily_bars"]),
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
                ),
            ),
            _same([RAW, "splits"]),
        ],
        meaning_checks={
            "size_within_bounds": "Universe size is at least the minimum and within the configured "
            "share of the session's screenable listings.",
            "priced_inside_band": "Every member's D-1 unadjusted close, re-read from raw bars, is "
            "inside the price band.",
        },
        monthly={"universe_size": "mean", "candidates": "mean", "members_delisted_later": "mean"},
    ),
    ProcessedDataset(
        "minute_bars",
        "The candidates' minute bars of D: ET time, session tag, duplicates removed, missing "
        "minutes, inferred halts, Rule 201 SSR state (carried in from D-1), on D's share basis.",
        _build_minute_bars,
        PROCESSED_MODELS["minute_bars"],
        deps=[
            _same([RAW, "minute_bars"]),
            _same([RAW, "splits"]),
            _same([LAYER, "universe"]),
            _sessions_before([LAYER, "daily_bars"], -2),
        ],
        meaning_checks={
            "bars_unique_and_in_session": "One bar per (ticker, ts), each starting 04:00-20:00 ET on "
            "the session.",
            "candidates_covered": "Every candidate of the universe has minute bars or a logged "
            "reason (not found, no bars).",
        },
        monthly={"candidates": "sum", "halts": "sum", "ssr_tickers": "sum", "ssr_triggers": "sum"},
    ),
    ProcessedDataset(
        "watchlist",
        "D's candidates with premarket volume, high and RVOL (vs their 20 prior sessions' "
        "premarket) and the watchlist flag, from premarket bars only.",
        _build_watchlist,
        ProcessedWatchlist,
        deps=[
            _same([LAYER, "universe"]),
            _same([LAYER, "minute_bars"]),
            _same([RAW, "minute_bars"]),
        ],
        monthly={"candidates": "sum", "watchlist": "sum"},
    ),
]

processed_assets = [build_processed_asset(dataset) for dataset in PROCESSED_DATASETS]


# Calendar days of daily bars behind ATR and 20-session returns (about 25 sessions), and of news
# behind the 30-day counts and the last offering headline.
DAILY_LOOKBACK_DAYS = 45
NEWS_LOOKBACK_DAYS = 90
# The sessions those calendar days can hold, declared as the features' daily-bar dependency.
DAILY_LOOKBACK_SESSIONS = calendar.max_sessions_in(DAILY_LOOKBACK_DAYS)


# -- events: features and labels ------------------------------------------------------------------
def _build_features(inputs: RunInputs, day: dt.date) -> DayOutput:
    bars_d = inputs.day(LAYER, "minute_bars", day)
    found = events.detect_events(bars_d, day)
    history = inputs.history(LAYER, "daily_bars", lookback_days=DAILY_LOOKBACK_DAYS)
    news_rows = inputs.history(RAW, "news", lookback_days=NEWS_LOOKBACK_DAYS)
    feature_inputs = features.FeatureInputs(
        universe=inputs.day(LAYER, "universe", day),
        watchlist=inputs.day(LAYER, "watchlist", day),
        tod_baseline=features.tod_volume_baseline(inputs.day(RAW, "minute_bars", day), day),
        daily=features.daily_context(
            history.filter(
                pl.col("date").is_between(day - dt.timedelta(days=DAILY_LOOKBACK_DAYS), day)
            ),
            day,
        ),
        fundamentals=inputs.day(LAYER, "fundamentals", day),
        corporate=inputs.day(LAYER, "corporate_actions", day),
        news=news_rows.filter(
            pl.col("published_utc")
            >= dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
            - dt.timedelta(days=NEWS_LOOKBACK_DAYS)
        ),
        details=inputs.day(RAW, "ticker_details", day),
    )
    frame = features.event_features(
        found,
        bars_d,
        feature_inputs,
        config=features.FeatureConfig(
            winsorize=inputs.research.winsorize, zscore=inputs.research.zscore
        ),
    )
    counts = frame.group_by("pattern").len().sort("pattern")
    return DayOutput(
        frame,
        metadata={
            "events": frame.height,
            "tickers_with_events": frame.get_column("ticker").n_unique(),
            "by_pattern": dg.MetadataValue.json({str(p): int(n) for p, n in counts.iter_rows()}),
        },
    )


def _build_labels(inputs: RunInputs, day: dt.date) -> DayOutput:
    found = inputs.day("features", "events", day).select("date", "ticker", "ts", "pattern")
    frame = labels.label_events(
        found, inputs.day(LAYER, "minute_bars", day), day, inputs.research.barrier_rules()
    )
    complete = frame.filter(pl.col("path_complete"))
    # Every exit, end_of_day included (incomplete paths the backtest still trades).
    reasons = frame.drop_nulls("exit_reason").group_by("exit_reason").len().sort("exit_reason")
    return DayOutput(
        frame,
        metadata={
            "events": frame.height,
            "labelled": complete.height,
            "winning": int(complete.get_column("label").sum() or 0),
            "take_profit_first": int((complete.get_column("exit_reason") == "take_profit").sum()),
            "mean_ret": _mean(complete.get_column("ret")),
            "exit_reasons": dg.MetadataValue.json({str(r): int(n) for r, n in reasons.iter_rows()}),
        },
        checks={
            "labels_cover_events": event_schemas.labels_cover_events(frame, found, day.isoformat())
        },
    )


EVENT_DATASETS: list[ProcessedDataset] = [
    ProcessedDataset(
        "events",
        "One row per intraday setup (orb, vwap_reclaim, vwap_reject, first_pullback, "
        "hod_breakout, halt_resumption, parabolic_exhaustion) on D's candidates, stamped at the "
        "signal bar's close, with the features known then (price/volume, daily context, "
        "fundamentals, corporate events, news up to ts, microstructure, categoricals).",
        _build_features,
        event_schemas.FEATURES_MODEL,
        deps=[
            _same([LAYER, "minute_bars"]),
            _same([LAYER, "universe"]),
            _same([LAYER, "watchlist"]),
            _same([LAYER, "fundamentals"]),
            _same([LAYER, "corporate_actions"]),
            _same([RAW, "minute_bars"]),
            _same([RAW, "ticker_details"]),
            _same([RAW, "news"]),
            _sessions_before([LAYER, "daily_bars"], -DAILY_LOOKBACK_SESSIONS),
        ],
        layer="features",
        point_in_time=event_schemas.features_point_in_time,
        monthly={"events": "sum", "tickers_with_events": "sum"},
    ),
    ProcessedDataset(
        "events",
        "Triple-barrier labels of D's events (take profit +15%, stop -10%, timeout 15 minutes; "
        "entry at the next bar's open, stop first inside one bar, gaps fill at the open, halts "
        "explicit) with exit time, reason, return and 5/15-minute forward returns; label 1 when the "
        "trade exits above its entry.",
        _build_labels,
        event_schemas.LABELS_MODEL,
        deps=[_same(["features", "events"]), _same([LAYER, "minute_bars"])],
        layer="labels",
        point_in_time=event_schemas.labels_point_in_time,
        meaning_checks={
            "labels_cover_events": "Every event of the session has exactly one label row.",
        },
        monthly={"labelled": "sum", "winning": "sum", "take_profit_first": "sum"},
    ),
]

event_assets = [build_processed_asset(dataset) for dataset in EVENT_DATASETS]
