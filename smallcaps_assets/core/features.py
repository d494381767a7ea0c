"""Features of each event, from what was known at the event's timestamp.

Bar features come from :func:`~smallcaps_assets.core.events.annotate_bars` columns read at the
signal bar (causal by construction: cumulative, shifted or trailing windows only) plus a few
expanding statistics joined on bars starting before the event. Daily context uses sessions
before D; fundamentals and corporate actions are the processed rows of D (filed / executed by
D); news counts only articles published at or before the event's ``ts``.

``last_bar_ts`` and ``last_news_utc`` record the newest bar and article each row used, so a check
can prove none is later than the event.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Final

import polars as pl

from smallcaps_assets.core.bars import conform
from smallcaps_assets.core.events import PatternRules, annotate_bars
from smallcaps_assets.core.minute import NY_ZONE
from smallcaps_assets.core.news import TOPIC_PATTERNS, ticker_mentions
from smallcaps_assets.core.schemas import OHLC

__all__ = [
    "CATEGORICAL_FEATURES",
    "DAILY_CONTEXT_SCHEMA",
    "FEATURES_SCHEMA",
    "NUMERIC_FEATURES",
    "FeatureConfig",
    "FeatureInputs",
    "daily_context",
    "event_features",
    "normalize_cross_section",
    "sector_from_sic",
    "spread_estimate",
    "tod_volume_baseline",
]

REGULAR_MINUTES: Final = 390
NEWS_WINDOWS_DAYS: Final = (1, 7, 30)
SPREAD_BARS: Final = 15

DAILY_CONTEXT_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "atr_pct_14": pl.Float64(),
        "ret_1d": pl.Float64(),
        "ret_5d": pl.Float64(),
        "ret_20d": pl.Float64(),
        "avg_volume_20d": pl.Float64(),
    }
)

NUMERIC_FEATURES: Final = (
    # price / volume at the event
    "gap_pct",
    "minutes_since_open",
    "tod_rvol",
    "premarket_volume",
    "premarket_rvol",
    "vwap_dev",
    "range_expansion",
    "slope_15",
    "hod_break",
    "dist_to_hod",
    "volume_burst",
    "volume_gini",
    "cum_volume",
    # daily context (D-1 and earlier)
    "atr_pct_14",
    "ret_1d",
    "ret_5d",
    "ret_20d",
    "float_shares",
    "market_cap",
    "float_rotation",
    # fundamentals and corporate events known on D
    "shares_change_pct",
    "cash_burn_quarterly",
    "months_of_runway",
    "revenue_growth_qoq",
    "revenue_growth_yoy",
    "days_since_reverse_split",
    "split_count_12m",
    "days_since_offering_news",
    # news up to the event
    "news_count_1d",
    "news_count_7d",
    "news_count_30d",
    "news_sentiment_7d",
    *(f"news_{flag}_1d" for flag in TOPIC_PATTERNS),
    # microstructure proxies
    "spread_est",
    "ssr_active",
    "halts_so_far",
)
CATEGORICAL_FEATURES: Final = ("pattern", "exchange", "sector")

FEATURES_SCHEMA: Final = pl.Schema(
    {
        "date": pl.Date(),
        "ticker": pl.String(),
        "ts": pl.Datetime("ms", "UTC"),
        "pattern": pl.String(),
        "price": pl.Float64(),
        "exchange": pl.String(),
        "sector": pl.String(),
        **dict.fromkeys(NUMERIC_FEATURES, pl.Float64()),
        "last_bar_ts": pl.Datetime("ms", "UTC"),
        "last_news_utc": pl.Datetime("us", "UTC"),
    }
)

# SIC divisions (the first two digits), the coarse sector a categorical model can use.
_SIC_DIVISIONS: Final = (
    (1, 9, "agriculture"),
    (10, 14, "mining"),
    (15, 17, "construction"),
    (20, 27, "manufacturing_light"),
    (28, 28, "chemicals_pharma"),
    (29, 34, "manufacturing_heavy"),
    (35, 36, "tech_hardware"),
    (37, 39, "manufacturing_other"),
    (40, 49, "transport_utilities"),
    (50, 51, "wholesale"),
    (52, 59, "retail"),
    (60, 67, "finance"),
    (70, 72, "services"),
    (73, 73, "software_services"),
    (74, 79, "services"),
    (80, 80, "health_services"),
    (81, 89, "services"),
    (90, 99, "public"),
)


@dataclass(frozen=True)
class FeatureConfig:
    # Cross-sectional winsorize at these quantiles and z-score per date (None: raw values).
    winsorize: float | None = None
    zscore: bool = False


@dataclass(frozen=True)
class FeatureInputs:
    """Everything :func:`event_features` reads besides the events and D's minute bars.

    ``universe`` (processed universe of D), ``watchlist`` (processed watchlist of D),
    ``tod_baseline`` (:func:`tod_volume_baseline`), ``daily`` (:func:`daily_context`),
    ``fundamentals`` / ``corporate`` (processed rows of D), ``news`` (raw news rows, any span;
    only articles at or before each event count), ``details`` (raw ticker details of D: SIC).
    """

    universe: pl.DataFrame
    watchlist: pl.DataFrame
    tod_baseline: pl.DataFrame
    daily: pl.DataFrame
    fundamentals: pl.DataFrame
    corporate: pl.DataFrame
    news: pl.DataFrame
    details: pl.DataFrame


def sector_from_sic(sic: pl.Expr) -> pl.Expr:
    """SIC code (string) -> coarse sector name; ``unknown`` when missing or unparseable."""
    division = sic.str.slice(0, 2).cast(pl.Int64, strict=False)
    expr: pl.Expr = pl.lit("unknown")
    for low, high, name in reversed(_SIC_DIVISIONS):
        expr = pl.when(division.is_between(low, high)).then(pl.lit(name)).otherwise(expr)
    return expr


def tod_volume_baseline(raw_minutes: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Mean cumulative regular-session volume at each minute since the open, over the sessions
    before ``day`` in ``raw_minutes`` (raw minute-bar schema). Minutes without a bar carry the
    cumulative volume forward. Schema: ``ticker``, ``minutes_since_open`` (0..389),
    ``avg_cum_volume``, ``baseline_sessions``."""
    et = pl.col("window_start").dt.convert_time_zone(NY_ZONE)
    minutes = et.dt.hour().cast(pl.Int64) * 60 + et.dt.minute().cast(pl.Int64) - (9 * 60 + 30)
    per_minute = (
        raw_minutes.with_columns(date=et.dt.date(), minutes_since_open=minutes)
        .filter(
            (pl.col("date") < day) & pl.col("minutes_since_open").is_between(0, REGULAR_MINUTES - 1)
        )
        .group_by("ticker", "date", "minutes_since_open")
        .agg(pl.col("volume").sum())
    )
    sessions = per_minute.select("ticker", "date").unique()
    grid = sessions.join(
        pl.DataFrame({"minutes_since_open": pl.int_range(0, REGULAR_MINUTES, eager=True)}),
        how="cross",
    )
    return (
        grid.join(per_minute, on=["ticker", "date", "minutes_since_open"], how="left")
        .sort("ticker", "date", "minutes_since_open")
        .with_columns(cum_volume=pl.col("volume").fill_null(0.0).cum_sum().over("ticker", "date"))
        .group_by("ticker", "minutes_since_open")
        .agg(avg_cum_volume=pl.col("cum_volume").mean(), baseline_sessions=pl.len())
        .sort("ticker", "minutes_since_open")
    )


def daily_context(daily_history: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """ATR %, returns and average volume per ticker from processed daily bars of sessions
    *before* ``day`` (rows on or after it are ignored). Prices are put on one basis per ticker
    with the split index (``price * I(last) / I(t)``) so a split does not look like a crash.
    Schema: :data:`DAILY_CONTEXT_SCHEMA`."""
    index = pl.col("split_factor_to_d")
    adjust = index.last().over("ticker") / index
    bars = (
        daily_history.filter(pl.col("date") < day)
        .sort("ticker", "date")
        .with_columns(
            *(pl.col(c) * adjust for c in OHLC),
            volume=pl.col("volume") / adjust,
        )
    )
    previous_close = pl.col("close").shift(1).over("ticker")
    true_range = pl.max_horizontal(
        pl.col("high") - pl.col("low"),
        (pl.col("high") - previous_close).abs(),
        (pl.col("low") - previous_close).abs(),
    )

    def ret(k: int) -> pl.Expr:
        return pl.col("close").last() / pl.col("close").shift(k).last() - 1.0

    return (
        bars.with_columns(_tr=true_range)
        .group_by("ticker", maintain_order=True)
        .agg(
            atr_pct_14=pl.col("_tr").tail(14).mean() / pl.col("close").last(),
            ret_1d=ret(1),
            ret_5d=ret(5),
            ret_20d=ret(20),
            avg_volume_20d=pl.col("volume").tail(20).mean(),
        )
        .pipe(conform, DAILY_CONTEXT_SCHEMA)
        .sort("ticker")
    )


def spread_estimate() -> pl.Expr:
    """Abdi-Ranaldo (2017) close-high-low spread, averaged over the last SPREAD_BARS bars.

    Per bar pair (t-1, t): 4 (c_{t-1} - m_{t-1}) (c_{t-1} - m_t) with m the log mid-range; both
    bars are at or before t, so the estimate at t is causal. Negative averages floor at 0.
    """
    mid = (pl.col("high").log() + pl.col("low").log()) / 2.0
    prev_close = pl.col("close").log().shift(1)
    term = 4.0 * (prev_close - mid.shift(1)) * (prev_close - mid)
    mean = term.rolling_mean(window_size=SPREAD_BARS, min_samples=2)
    return pl.when(mean > 0).then(mean.sqrt()).otherwise(0.0)


# Rows of the event x bar join materialized at once: a full-market session joins ~72k events with
# their tickers' ~390 regular bars (28M rows, ~2.6 GiB); in chunks the peak stays bounded.
_GINI_JOIN_ROWS: Final = 4_000_000


def _gini_until_event(
    events: pl.DataFrame, bars: pl.DataFrame, max_join_rows: int = _GINI_JOIN_ROWS
) -> pl.DataFrame:
    """Gini of regular-session bar volumes from the open through each event's signal bar,
    computed over groups of tickers so the event x bar join never exceeds ``max_join_rows``."""
    keyed = events.select("ticker", "ts", "pattern", "signal_bar_ts")
    volumes = bars.select("ticker", pl.col("ts").alias("_bar_ts"), "volume")
    join_rows = keyed.join(volumes.group_by("ticker").len(), on="ticker").get_column("len").sum()
    chunks = max(1, -(-int(join_rows or 0) // max_join_rows))
    x = pl.col("volume").sort()
    n = pl.len().cast(pl.Float64)
    rank = pl.int_range(1, pl.len() + 1).cast(pl.Float64)
    gini = (2.0 * (rank * x).sum() / (n * x.sum())) - (n + 1.0) / n
    parts = []
    chunk_of = (pl.col("ticker").rank("dense") - 1) % chunks
    for part in keyed.with_columns(_chunk=chunk_of).partition_by("_chunk", include_key=False):
        used = part.join(volumes, on="ticker").filter(pl.col("_bar_ts") <= pl.col("signal_bar_ts"))
        parts.append(
            used.group_by("ticker", "ts", "pattern").agg(
                volume_gini=pl.when(x.sum() > 0).then(gini).otherwise(0.0)
            )
        )
    if not parts:
        return (
            keyed.select("ticker", "ts", "pattern")
            .with_columns(volume_gini=pl.lit(None, pl.Float64))
            .head(0)
        )
    return pl.concat(parts)


def _news_until_event(events: pl.DataFrame, news_rows: pl.DataFrame) -> pl.DataFrame:
    keys = ["ticker", "ts", "pattern"]
    mentions = ticker_mentions(news_rows)
    ts_us = pl.col("ts").cast(pl.Datetime("us", "UTC"))
    joined = (
        events.select(keys)
        .join(mentions, on="ticker", how="inner")
        .filter(pl.col("published_utc") <= ts_us)
    )
    age = ts_us - pl.col("published_utc")

    def within(days: int) -> pl.Expr:
        return age <= pl.duration(days=days)

    offering_age = pl.col("published_utc").filter(pl.col("has_offering")).max()
    counts = joined.group_by(keys).agg(
        **{f"news_count_{d}d": within(d).sum().cast(pl.Float64) for d in NEWS_WINDOWS_DAYS},
        news_sentiment_7d=pl.col("score").filter(within(7)).mean(),
        **{
            f"news_{flag}_1d": (pl.col(flag) & within(1)).any().cast(pl.Float64)
            for flag in TOPIC_PATTERNS
        },
        _last_offering=offering_age,
        last_news_utc=pl.col("published_utc").max(),
    )
    return counts.with_columns(
        days_since_offering_news=(ts_us - pl.col("_last_offering")).dt.total_hours() / 24.0
    ).drop("_last_offering")


def event_features(
    events: pl.DataFrame,
    minute_bars: pl.DataFrame,
    inputs: FeatureInputs,
    rules: PatternRules | None = None,
    config: FeatureConfig | None = None,
) -> pl.DataFrame:
    """One feature row per event (events schema in, :data:`FEATURES_SCHEMA` out, same order).

    Events without a feature source get nulls (a ticker with no filing has no dilution), never
    a dropped row.
    """
    config = config or FeatureConfig()
    keys = ["ticker", "ts", "pattern"]
    bars = annotate_bars(minute_bars, rules)
    bars = bars.with_columns(
        spread_est=spread_estimate().over("ticker"),
        _lod=pl.col("low").cum_min().over("ticker"),
        _hod=pl.col("high").cum_max().over("ticker"),
    )
    at_signal = bars.select(
        "ticker",
        pl.col("ts").alias("signal_bar_ts"),
        "close",
        "minutes_since_open",
        "cum_volume",
        "session_vwap",
        "hod_before",
        "_hod",
        "_lod",
        "slope_15",
        "volume_burst",
        "spread_est",
        "ssr_active",
        "halts_so_far",
    )
    universe = inputs.universe.select(
        "ticker",
        "gap_pct",
        pl.col("primary_exchange").alias("exchange"),
        pl.col("shares_outstanding").alias("float_shares"),
        "market_cap",
    )
    watch = inputs.watchlist.select("ticker", "premarket_volume", "premarket_rvol")
    details = inputs.details.unique(subset="ticker", keep="last").select(
        "ticker", sector=sector_from_sic(pl.col("sic_code"))
    )
    fundamentals = inputs.fundamentals.select(
        "ticker",
        "shares_change_pct",
        "cash_burn_quarterly",
        "months_of_runway",
        "revenue_growth_qoq",
        "revenue_growth_yoy",
    )
    corporate = inputs.corporate.select(
        "ticker",
        pl.col("days_since_reverse_split").cast(pl.Float64),
        pl.col("split_count_12m").cast(pl.Float64),
    )
    baseline = inputs.tod_baseline.select("ticker", "minutes_since_open", "avg_cum_volume")
    close = pl.col("close")
    frame = (
        events.join(at_signal, on=["ticker", "signal_bar_ts"], how="left")
        .join(baseline, on=["ticker", "minutes_since_open"], how="left")
        .join(universe, on="ticker", how="left")
        .join(watch, on="ticker", how="left")
        .join(details, on="ticker", how="left")
        .join(inputs.daily, on="ticker", how="left")
        .join(fundamentals, on="ticker", how="left")
        .join(corporate, on="ticker", how="left")
        .join(_gini_until_event(events, bars), on=keys, how="left")
        .join(_news_until_event(events, inputs.news), on=keys, how="left")
        .with_columns(
            tod_rvol=pl.when(pl.col("avg_cum_volume") > 0).then(
                pl.col("cum_volume") / pl.col("avg_cum_volume")
            ),
            vwap_dev=close / pl.col("session_vwap") - 1.0,
            range_expansion=pl.when(pl.col("atr_pct_14") > 0).then(
                (pl.col("_hod") - pl.col("_lod")) / close / pl.col("atr_pct_14")
            ),
            hod_break=(close > pl.col("hod_before")).fill_null(False).cast(pl.Float64),
            dist_to_hod=close / pl.col("_hod") - 1.0,
            float_rotation=pl.when(pl.col("float_shares") > 0).then(
                pl.col("cum_volume") / pl.col("float_shares")
            ),
            ssr_active=pl.col("ssr_active").cast(pl.Float64),
            halts_so_far=pl.col("halts_so_far").cast(pl.Float64),
            minutes_since_open=pl.col("minutes_since_open").cast(pl.Float64),
            exchange=pl.col("exchange").fill_null("unknown"),
            sector=pl.col("sector").fill_null("unknown"),
            last_bar_ts=pl.col("signal_bar_ts"),
            **{
                f"news_count_{d}d": pl.col(f"news_count_{d}d").fill_null(0.0)
                for d in NEWS_WINDOWS_DAYS
            },
            **{
                f"news_{flag}_1d": pl.col(f"news_{flag}_1d").fill_null(0.0)
                for flag in TOPIC_PATTERNS
            },
        )
        .pipe(conform, FEATURES_SCHEMA)
    )
    if config.winsorize is not None or config.zscore:
        frame = normalize_cross_section(frame, config)
    return frame


def normalize_cross_section(frame: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame:
    """Per date: clip each numeric feature to its [q, 1-q] quantiles, then z-score it."""
    columns = [c for c in NUMERIC_FEATURES if c in frame.columns]
    out = frame
    if config.winsorize is not None:
        q = config.winsorize
        if not 0.0 <= q < 0.5 or math.isnan(q):
            raise ValueError(f"winsorize must be in [0, 0.5), got {q}")
        out = out.with_columns(
            pl.col(c).clip(
                pl.col(c).quantile(q).over("date"), pl.col(c).quantile(1.0 - q).over("date")
            )
            for c in columns
        )
    if config.zscore:
        out = out.with_columns(
            ((pl.col(c) - pl.col(c).mean().over("date")) / pl.col(c).std().over("date"))
            .fill_nan(None)
            .alias(c)
            for c in columns
        )
    return out
