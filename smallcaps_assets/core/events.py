"""Intraday setups on a session's processed minute bars: one row per (ticker, ts, pattern).

Every rule looks at the signal bar and earlier bars only, and an event is stamped at the signal
bar's *close* (``ts`` = bar start + 1 minute): that is when a trader could act on it, and the
first bar a trade could fill on starts at ``ts``. Only regular-session bars starting 09:30 ET or
later signal; premarket bars contribute only the premarket high.

The rules (thresholds in :class:`PatternRules`):

* ``orb`` (opening-range breakout / gap-and-go): the first bar after the opening range
  (09:30-09:35 by default) that closes above both the opening-range high and the premarket high.
* ``vwap_reclaim``: a close above the session VWAP after at least ``vwap_bars_below`` closes
  below it.
* ``vwap_reject``: after at least ``vwap_bars_below`` closes below VWAP, a bar that trades up to
  VWAP (high >= VWAP) but closes below it.
* ``first_pullback``: the first bar of the day that closes above the previous bar's high after
  the price pulled back at least ``pullback_min`` from the high of day (set after the open range).
* ``hod_breakout``: a close above the previous high of day when that high is at least
  ``hod_base_bars`` bars old (a base, not a running bar-by-bar extension), from
  ``hod_min_minutes`` after the open.
* ``halt_resumption``: the first bar after an inferred halt (a regular-session gap of at least
  five minutes that reopened away from the last print).
* ``parabolic_exhaustion``: after a 15-bar regression slope of log close of at least
  ``parabolic_slope`` per minute, a red bar with an upper wick at least half its range on
  volume at least ``burst_min`` times the previous ten bars' mean.

Each pattern trades one way (:data:`DIRECTION`): ``vwap_reject`` (a failed retest of VWAP from
below) and ``parabolic_exhaustion`` (a blow-off top) are short setups, the rest are long. Labels
and the backtest trade each event in its pattern's direction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

import polars as pl

from smallcaps_assets.core.bars import conform
from smallcaps_assets.core.minute import REGULAR_OPEN

__all__ = [
    "DIRECTION",
    "EVENTS_SCHEMA",
    "PATTERNS",
    "Direction",
    "PatternRules",
    "annotate_bars",
    "detect_events",
    "regression_slope",
]

PATTERNS: Final = (
    "orb",
    "vwap_reclaim",
    "vwap_reject",
    "first_pullback",
    "hod_breakout",
    "halt_resumption",
    "parabolic_exhaustion",
)

Direction = Literal["long", "short"]

# The side each pattern is traded on; stated once, read by labels and the backtest.
DIRECTION: Final[Mapping[str, Direction]] = {
    "orb": "long",
    "vwap_reclaim": "long",
    "vwap_reject": "short",
    "first_pullback": "long",
    "hod_breakout": "long",
    "halt_resumption": "long",
    "parabolic_exhaustion": "short",
}

EVENTS_SCHEMA: Final = pl.Schema(
    {
        "date": pl.Date(),
        "ticker": pl.String(),
        "ts": pl.Datetime("ms", "UTC"),
        "pattern": pl.String(),
        "signal_bar_ts": pl.Datetime("ms", "UTC"),
        "price": pl.Float64(),
    }
)


@dataclass(frozen=True)
class PatternRules:
    opening_range_minutes: int = 5
    vwap_bars_below: int = 3
    pullback_min: float = 0.03
    hod_base_bars: int = 5
    hod_min_minutes: int = 15
    slope_bars: int = 15
    parabolic_slope: float = 0.004
    burst_bars: int = 10
    burst_min: float = 2.0
    # Setups later than this cannot be traded before the close with a 15-minute horizon.
    last_signal: dt.time = dt.time(15, 45)


def regression_slope(y: pl.Expr, n: int) -> pl.Expr:
    """Least-squares slope of ``y`` on bar number over the last ``n`` bars (null before ``n``).

    Uses the closed form with rolling sums over x = 0..n-1 relative to the window, so it is
    one pass and causal: the value at a bar uses that bar and the n-1 before it.
    """
    x_mean = (n - 1) / 2.0
    sxx = sum((i - x_mean) ** 2 for i in range(n))
    # sum_{i} (i - x_mean) * y_{t-n+1+i} = sum_i i*y - x_mean * sum y; i*y via a weighted window.
    weights = [i - x_mean for i in range(n)]
    return y.rolling_sum(window_size=n, weights=weights) / sxx


def annotate_bars(minute_bars: pl.DataFrame, rules: PatternRules | None = None) -> pl.DataFrame:
    """Regular-session bars of processed minute bars with the causal columns the rules use.

    Adds, per ticker: ``bar_index`` (0 at 09:30), ``minutes_since_open``, ``session_vwap``
    (cumulative), ``hod_before`` / ``lod_before`` (extremes of earlier regular bars),
    ``bars_since_hod``, ``or_high`` (opening-range high, known once the range is complete),
    ``premarket_high``, ``slope_15`` (regression slope of log close), ``volume_burst`` (volume /
    mean of the previous ``burst_bars`` bars) and ``cum_volume`` (regular session).
    """
    rules = rules or PatternRules()
    # Lazy, and filtered before sorting: a full-market session is millions of bars.
    bars = minute_bars.lazy()
    premarket = (
        bars.filter(pl.col("session") == "pre")
        .group_by("ticker")
        .agg(premarket_high=pl.col("high").max())
    )
    regular = bars.filter(
        (pl.col("session") == "regular") & (pl.col("ts_et").dt.time() >= REGULAR_OPEN)
    ).sort("ticker", "ts")
    by = "ticker"
    price = pl.coalesce("vwap", (pl.col("high") + pl.col("low") + pl.col("close")) / 3.0)
    opening_end = rules.opening_range_minutes
    minutes = (
        (pl.col("ts_et").dt.hour().cast(pl.Int64) * 60 + pl.col("ts_et").dt.minute()) - 9 * 60 - 30
    )
    annotated = (
        regular.with_columns(
            bar_index=pl.int_range(pl.len()).over(by),
            minutes_since_open=minutes,
            cum_volume=pl.col("volume").cum_sum().over(by),
            _dollars=(price * pl.col("volume")).cum_sum().over(by),
            hod_before=pl.col("high").cum_max().shift(1).over(by),
            lod_before=pl.col("low").cum_min().shift(1).over(by),
            slope_15=regression_slope(pl.col("close").log(), rules.slope_bars).over(by),
            volume_burst=(
                pl.col("volume")
                / pl.col("volume").shift(1).rolling_mean(window_size=rules.burst_bars)
            ).over(by),
        )
        .with_columns(
            session_vwap=pl.when(pl.col("cum_volume") > 0)
            .then(pl.col("_dollars") / pl.col("cum_volume"))
            .otherwise(pl.col("close")),
            or_high=pl.when(pl.col("minutes_since_open") >= opening_end).then(
                pl.col("high").filter(pl.col("minutes_since_open") < opening_end).max().over(by)
            ),
            _new_high=(pl.col("high") > pl.col("hod_before")).fill_null(True),
        )
        .with_columns(
            _high_segment=pl.col("_new_high").cast(pl.Int64).cum_sum().over(by),
        )
        .with_columns(
            bars_since_hod=pl.int_range(pl.len()).over(by, "_high_segment"),
            # Deepest close below the running high since that high was set.
            _pullback=(pl.col("close") / pl.col("high").cum_max().over(by) - 1.0)
            .cum_min()
            .over(by, "_high_segment"),
        )
        .join(premarket, on="ticker", how="left", maintain_order="left")
        .drop("_dollars", "_new_high")
    )
    return annotated.collect()


def _first_per_ticker(mask: pl.Expr) -> pl.Expr:
    """True on the first bar of each ticker where ``mask`` holds."""
    hit = mask.fill_null(False)
    return hit & (hit.cast(pl.Int64).cum_sum().over("ticker") == 1)


def detect_events(
    minute_bars: pl.DataFrame, day: dt.date, rules: PatternRules | None = None
) -> pl.DataFrame:
    """Events of session ``day`` from its processed minute bars. Schema: :data:`EVENTS_SCHEMA`,
    sorted by ticker, ts and pattern; ``price`` is the signal bar's close."""
    rules = rules or PatternRules()
    bars = annotate_bars(minute_bars, rules)
    close, high, low, open_ = pl.col("close"), pl.col("high"), pl.col("low"), pl.col("open")
    vwap = pl.col("session_vwap")
    below = (close < vwap).cast(pl.Int64)
    # Closes below VWAP in a row: a new streak starts at every close at or above VWAP.
    streak_id = (below == 0).cast(pl.Int64).cum_sum()
    bars = bars.with_columns(
        _below_streak=below.cum_sum().over("ticker", streak_id.over("ticker"))
    ).with_columns(_streak_before=pl.col("_below_streak").shift(1).over("ticker").fill_null(0))
    streak_ok = pl.col("_streak_before") >= rules.vwap_bars_below
    in_window = pl.col("ts_et").dt.time() <= rules.last_signal
    after_range = pl.col("minutes_since_open") >= rules.opening_range_minutes
    range_ = high - low
    masks = {
        "orb": _first_per_ticker(
            after_range
            & (close > pl.col("or_high"))
            & (close > pl.col("premarket_high").fill_null(0.0))
        ),
        "vwap_reclaim": after_range & streak_ok & (close > vwap),
        "vwap_reject": after_range & streak_ok & (high >= vwap) & (close < vwap),
        "first_pullback": _first_per_ticker(
            after_range
            & (pl.col("_pullback") <= -rules.pullback_min)
            & (close > high.shift(1).over("ticker"))
            & (close < pl.col("hod_before"))
        ),
        "hod_breakout": (pl.col("minutes_since_open") >= rules.hod_min_minutes)
        & (close > pl.col("hod_before"))
        & (pl.col("bars_since_hod").shift(1).over("ticker") >= rules.hod_base_bars),
        "halt_resumption": pl.col("halt_resumption"),
        "parabolic_exhaustion": (
            pl.col("slope_15").shift(1).over("ticker") >= rules.parabolic_slope
        )
        & (close < open_)
        & (range_ > 0)
        & ((high - pl.max_horizontal(open_, close)) >= 0.5 * range_)
        & (pl.col("volume_burst") >= rules.burst_min),
    }
    flagged = bars.with_columns(
        **{f"_is_{name}": (mask & in_window).fill_null(False) for name, mask in masks.items()}
    )
    events = [
        flagged.filter(pl.col(f"_is_{name}")).select(
            pl.lit(day).alias("date"),
            "ticker",
            (pl.col("ts") + pl.duration(minutes=1)).alias("ts"),
            pl.lit(name).alias("pattern"),
            pl.col("ts").alias("signal_bar_ts"),
            pl.col("close").alias("price"),
        )
        for name in PATTERNS
    ]
    return (
        pl.concat([e.pipe(conform, EVENTS_SCHEMA) for e in events])
        .sort("ticker", "ts", "pattern")
        .pipe(conform, EVENTS_SCHEMA)
    )
