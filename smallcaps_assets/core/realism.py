"""Market realism: stylized facts of small-cap daily and gap-day intraday bars beside real ranges.

Any data root (simulated or real) can be held against the same table: :data:`REAL_RANGES` is the
one place the real figures live. Inputs are the project's processed datasets, or frames shaped
like them:

* daily bars (``processed/daily_bars``): ``ticker``, ``date``, ``open``, ``high``, ``low``,
  ``close``, ``volume`` (unadjusted) and ``split_factor_to_d``, the split index I(D) of the bar's
  own session. Several sessions in one frame; a bar's previous close is the same ticker's bar of
  the previous NYSE session (none when that session is absent), moved onto D's share basis with
  ``close(D-1) * I(D) / I(D-1)``.
* optionally minute bars (``processed/minute_bars``): ``ticker``, ``date``, ``ts_et`` (bar start
  in New York), ``session`` (pre/regular/post), ``high``, ``volume`` and, when known,
  ``halt_resumption``.

The sample is the filter of the real panels: ticker-days with a previous close of $0.50-$20
(on D's basis), ``high > low`` and a dollar volume (close x volume) of at least $100k. A gap day
is a sample ticker-day whose open is at least 10 % above the previous close, the universe's
candidate rule. Returns are close-to-close log returns on one share basis.

A fact whose sample is smaller than its :class:`SampleMinimums` is ``insufficient``: neither in
nor out of its range. Everything here is pure Polars/numpy; no Dagster, no storage.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from smallcaps_assets.core import calendar
from smallcaps_assets.core.schemas import OHLCV
from smallcaps_assets.core.validation import CheckReport, rules_report

__all__ = [
    "DAILY_COLUMNS",
    "MARKET_REALISM_SCHEMA",
    "MINUTE_COLUMNS",
    "REALISM_FACTS_SCHEMA",
    "REAL_RANGES",
    "REAL_RANGES_SOURCE",
    "STATUSES",
    "Bootstrap",
    "Histogram",
    "MarketRealismModel",
    "Population",
    "RealRange",
    "RealismReport",
    "RealismSamples",
    "SampleMinimums",
    "SampleRules",
    "Unit",
    "facts_markdown",
    "facts_text",
    "format_value",
    "gap_day_intraday",
    "histograms",
    "measure_realism",
    "month_facts",
    "ranges_report",
    "realism_facts",
    "realism_samples",
    "report_from_samples",
]

DAILY_COLUMNS: Final = ("ticker", "date", *OHLCV)
MINUTE_COLUMNS: Final = ("ticker", "date", "ts_et", "session", "high", "volume")

# Minutes of the regular session whose volume the opening-volume fact counts, and the window a
# high of day counts as "early" in.
OPENING_MINUTES: Final = 30
_REGULAR_OPEN_MINUTE: Final = 9 * 60 + 30


class Population(StrEnum):
    """Which observations a fact is measured over (and which minimum applies)."""

    TICKER_DAYS = "ticker_days"
    GAP_DAYS = "gap_days"
    GAP_DAYS_WITH_MINUTES = "gap_days_with_minutes"


class Unit(StrEnum):
    """How a value is printed."""

    PERCENT = "percent"
    DECIMAL = "decimal"
    DOLLARS = "dollars"
    MINUTES = "minutes"
    COUNT = "count"


@dataclass(frozen=True)
class RealRange:
    """One stylized fact: what it is, where it is measured and the real range (None: report only)."""

    label: str
    population: Population
    unit: Unit
    low: float | None
    high: float | None
    source: str


REAL_RANGES_SOURCE: Final = (
    "issue 15: three real US small-cap panels 2010-17, 2021-25 daily, 2026 intraday"
)
_ISSUE_TEXT: Final = "issue 15's description of real gappers (a range around its words)"
_LOOSE_PRIOR: Final = "loose prior, not a measured panel"

# THE table of real ranges. Daily rows: the range over the three real panels of issue 15, same
# sample filter as here. Opening and premarket volume: issue 15 states them in words ("about a
# quarter", "a few percent"); the ranges are a band around those words. Time of the high of day
# has no measured panel behind it: a deliberately wide prior that only catches absurd markets.
REAL_RANGES: Final[dict[str, RealRange]] = {
    "p_gap10": RealRange(
        "P(open ≥ previous close +10 %)",
        Population.TICKER_DAYS,
        Unit.PERCENT,
        0.0022,
        0.0095,
        REAL_RANGES_SOURCE,
    ),
    "p_gap20": RealRange(
        "P(open ≥ previous close +20 %)",
        Population.TICKER_DAYS,
        Unit.PERCENT,
        0.0005,
        0.0035,
        REAL_RANGES_SOURCE,
    ),
    "return_std": RealRange(
        "daily close-to-close log-return std (|r| < ln 3)",
        Population.TICKER_DAYS,
        Unit.DECIMAL,
        0.034,
        0.069,
        REAL_RANGES_SOURCE,
    ),
    "return_excess_kurtosis": RealRange(
        "excess kurtosis of those log returns",
        Population.TICKER_DAYS,
        Unit.DECIMAL,
        35.0,
        71.0,
        REAL_RANGES_SOURCE,
    ),
    "median_previous_close": RealRange(
        "median previous close",
        Population.TICKER_DAYS,
        Unit.DOLLARS,
        7.9,
        10.4,
        REAL_RANGES_SOURCE,
    ),
    "gap_day_median_gap": RealRange(
        "gap days (open ≥ +10 %): median gap",
        Population.GAP_DAYS,
        Unit.PERCENT,
        0.14,
        0.16,
        REAL_RANGES_SOURCE,
    ),
    "gap_day_share_close_above_open": RealRange(
        "gap days: share closing above the open",
        Population.GAP_DAYS,
        Unit.PERCENT,
        0.32,
        0.40,
        REAL_RANGES_SOURCE,
    ),
    "gap_day_median_open_to_close": RealRange(
        "gap days: median close / open - 1",
        Population.GAP_DAYS,
        Unit.PERCENT,
        -0.039,
        -0.030,
        REAL_RANGES_SOURCE,
    ),
    "gap_day_median_high_over_open": RealRange(
        "gap days: median high / open - 1",
        Population.GAP_DAYS,
        Unit.PERCENT,
        0.038,
        0.081,
        REAL_RANGES_SOURCE,
    ),
    "gap_day_first30_volume_share": RealRange(
        "gap days: median share of regular volume in the first 30 min",
        Population.GAP_DAYS_WITH_MINUTES,
        Unit.PERCENT,
        0.18,
        0.35,
        _ISSUE_TEXT,
    ),
    "gap_day_premarket_volume_share": RealRange(
        "gap days: median premarket share of the day's volume",
        Population.GAP_DAYS_WITH_MINUTES,
        Unit.PERCENT,
        0.01,
        0.10,
        _ISSUE_TEXT,
    ),
    "gap_day_median_hod_minute": RealRange(
        "gap days: median minutes from 09:30 to the high of day",
        Population.GAP_DAYS_WITH_MINUTES,
        Unit.MINUTES,
        5.0,
        90.0,
        _LOOSE_PRIOR,
    ),
    "gap_day_share_hod_first30": RealRange(
        "gap days: share with the high of day in the first 30 min",
        Population.GAP_DAYS_WITH_MINUTES,
        Unit.PERCENT,
        0.25,
        0.80,
        _LOOSE_PRIOR,
    ),
    "gap_day_halts_per_day": RealRange(
        "gap days: inferred halts per gap day",
        Population.GAP_DAYS_WITH_MINUTES,
        Unit.DECIMAL,
        None,
        None,
        "report only",
    ),
}

_COUNT_LABELS: Final = {
    Population.TICKER_DAYS: "sample: ticker-days",
    Population.GAP_DAYS: "sample: gap days",
    Population.GAP_DAYS_WITH_MINUTES: "sample: gap days with regular-session minute bars",
}

# ``consistent``: the value is outside its range but the range lies within the value's 95 %
# interval, so the sample cannot tell it from a market inside the range.
STATUSES: Final = ("inside", "consistent", "outside", "insufficient", "report")

REALISM_FACTS_SCHEMA: Final = pl.Schema(
    {
        "key": pl.String(),
        "label": pl.String(),
        "population": pl.String(),
        "value": pl.Float64(),
        "low": pl.Float64(),
        "high": pl.Float64(),
        "ci_low": pl.Float64(),
        "ci_high": pl.Float64(),
        "inside": pl.Boolean(),
        "status": pl.String(),
        "n": pl.Int64(),
    }
)

# The stored partition (``research/market_realism``): the facts of one month.
MARKET_REALISM_SCHEMA: Final = pl.Schema({"month": pl.Date(), **REALISM_FACTS_SCHEMA})


@dataclass(frozen=True)
class SampleRules:
    """The sample filter and gap thresholds of the real panels."""

    price_min: float = 0.50
    price_max: float = 20.0
    min_dollar_volume: float = 100_000.0
    gap_day: float = 0.10
    big_gap: float = 0.20
    # Returns beyond a tripling or a two-thirds loss are left out (splits gone wrong, listings).
    max_abs_log_return: float = math.log(3.0)


@dataclass(frozen=True)
class Bootstrap:
    """The 95 % interval of each judged fact: the statistic over ``resamples`` draws of whole
    tickers with replacement (a ticker's days move together: gap days cluster in few names, so
    resampling days alone would understate the error)."""

    resamples: int = 200
    seed: int = 0
    level: float = 0.95


@dataclass(frozen=True)
class SampleMinimums:
    """Below these sizes a fact is ``insufficient`` (the value is still shown)."""

    ticker_days: int = 1_000
    gap_days: int = 30
    gap_days_with_minutes: int = 30

    def of(self, population: Population) -> int:
        minimum: int = getattr(self, population.value)
        return minimum


_TICKER_DAY_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "date": pl.Date(),
        "previous_close": pl.Float64(),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "close": pl.Float64(),
        "gap": pl.Float64(),
        "log_return": pl.Float64(),
    }
)
_GAP_DAY_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "date": pl.Date(),
        "gap": pl.Float64(),
        "open_to_close": pl.Float64(),
        "high_over_open": pl.Float64(),
    }
)
_GAP_DAY_MINUTES_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "date": pl.Date(),
        "first30_volume_share": pl.Float64(),
        "premarket_volume_share": pl.Float64(),
        "hod_minute": pl.Int64(),
        "halts": pl.Int64(),
    }
)


@dataclass(frozen=True)
class RealismSamples:
    """The observations behind the facts (also what the histograms are drawn from).

    ``ticker_days``: the sample, one row per ticker-day (:data:`_TICKER_DAY_SCHEMA`);
    ``gap_days``: its gap days; ``gap_day_minutes``: per gap day with regular-session minute
    bars, the opening volume share, premarket share, minute of the high of day and halts.
    """

    ticker_days: pl.DataFrame
    gap_days: pl.DataFrame
    gap_day_minutes: pl.DataFrame

    def count(self, population: Population) -> int:
        frame = {
            Population.TICKER_DAYS: self.ticker_days,
            Population.GAP_DAYS: self.gap_days,
            Population.GAP_DAYS_WITH_MINUTES: self.gap_day_minutes,
        }[population]
        return frame.height


def _previous_sessions(dates: pl.Series) -> pl.DataFrame:
    """``date`` -> ``previous_date`` (the NYSE session before it) for every distinct date."""
    days = sorted(d for d in dates.unique().to_list() if d is not None)
    return pl.DataFrame(
        {"date": days, "previous_date": [calendar.previous_session(d) for d in days]},
        schema={"date": pl.Date(), "previous_date": pl.Date()},
    )


def _sample_ticker_days(daily_bars: pl.DataFrame, rules: SampleRules) -> pl.DataFrame:
    missing = [c for c in (*DAILY_COLUMNS, "split_factor_to_d") if c not in daily_bars.columns]
    if missing:
        raise ValueError(f"daily bars lack column(s) {missing}: pass processed/daily_bars")
    bars = daily_bars.select(*DAILY_COLUMNS, "split_factor_to_d").unique(
        subset=["ticker", "date"], keep="last", maintain_order=True
    )
    if bars.is_empty():
        return pl.DataFrame(schema=_TICKER_DAY_SCHEMA)
    previous = bars.select(
        "ticker",
        pl.col("date").alias("previous_date"),
        pl.col("close").alias("_previous_close_raw"),
        pl.col("split_factor_to_d").alias("_previous_factor"),
    )
    previous_close = (
        pl.col("_previous_close_raw") * pl.col("split_factor_to_d") / pl.col("_previous_factor")
    )
    return (
        bars.join(_previous_sessions(bars.get_column("date")), on="date", how="left")
        .join(previous, on=["ticker", "previous_date"], how="inner")
        .with_columns(previous_close=previous_close)
        .filter(
            pl.col("previous_close").is_between(rules.price_min, rules.price_max)
            & (pl.col("high") > pl.col("low"))
            & (pl.col("close") * pl.col("volume") >= rules.min_dollar_volume)
        )
        .with_columns(
            # The universe's candidate rule, written the same way (open / previous - 1 >= 10 %).
            gap=pl.col("open") / pl.col("previous_close") - 1.0,
            log_return=(pl.col("close") / pl.col("previous_close")).log(),
        )
        .select(_TICKER_DAY_SCHEMA.names())
        .cast(_TICKER_DAY_SCHEMA)
        .sort("ticker", "date")
    )


def gap_day_intraday(gap_days: pl.DataFrame, minute_bars: pl.DataFrame) -> pl.DataFrame:
    """Per gap day (``ticker``, ``date`` of ``gap_days``) with at least one regular-session bar:
    the first 30 minutes' share of regular volume, the premarket share of all the day's bars'
    volume, the minute (after 09:30) of the first bar reaching the regular high, and the halts
    (``halt_resumption`` bars; null when the column is absent)."""
    missing = [c for c in MINUTE_COLUMNS if c not in minute_bars.columns]
    if missing:
        raise ValueError(f"minute bars lack column(s) {missing}: pass processed/minute_bars")
    has_halts = "halt_resumption" in minute_bars.columns
    bars = minute_bars.select(*MINUTE_COLUMNS, *(["halt_resumption"] if has_halts else [])).join(
        gap_days.select("ticker", "date"), on=["ticker", "date"], how="semi"
    )
    minute_of_session = (
        pl.col("ts_et").dt.hour().cast(pl.Int64) * 60
        + pl.col("ts_et").dt.minute().cast(pl.Int64)
        - _REGULAR_OPEN_MINUTE
    )
    regular = pl.col("session") == "regular"
    volume = pl.col("volume")
    regular_volume = volume.filter(regular).sum()
    all_volume = volume.sum()
    regular_high = pl.col("high").filter(regular)
    # The first regular bar that reaches the session's high: ties go to the earliest.
    hod_minute = pl.col("_minute").filter(regular & (pl.col("high") == regular_high.max())).min()
    halts = (
        pl.col("halt_resumption").filter(regular).cast(pl.Int64).sum()
        if has_halts
        else pl.lit(None, pl.Int64)
    )
    return (
        bars.with_columns(_minute=minute_of_session)
        .group_by("ticker", "date")
        .agg(
            _regular_bars=regular.sum(),
            first30_volume_share=pl.when(regular_volume > 0).then(
                volume.filter(regular & (pl.col("_minute") < OPENING_MINUTES)).sum()
                / regular_volume
            ),
            premarket_volume_share=pl.when(all_volume > 0).then(
                volume.filter(pl.col("session") == "pre").sum() / all_volume
            ),
            hod_minute=hod_minute,
            halts=halts,
        )
        .filter(pl.col("_regular_bars") > 0)
        .select(_GAP_DAY_MINUTES_SCHEMA.names())
        .cast(_GAP_DAY_MINUTES_SCHEMA)
        .sort("ticker", "date")
    )


def realism_samples(
    daily_bars: pl.DataFrame,
    minute_bars: pl.DataFrame | None = None,
    *,
    rules: SampleRules | None = None,
) -> RealismSamples:
    """The sample ticker-days, their gap days and (with ``minute_bars``) the gap days' intraday
    measures. Minute bars of other ticker-days are ignored; a gap day without a regular-session
    bar has no intraday row."""
    rules = rules or SampleRules()
    ticker_days = _sample_ticker_days(daily_bars, rules)
    gap_days = (
        ticker_days.filter(pl.col("gap") >= rules.gap_day)
        .with_columns(
            open_to_close=pl.col("close") / pl.col("open") - 1.0,
            high_over_open=pl.col("high") / pl.col("open") - 1.0,
        )
        .select(_GAP_DAY_SCHEMA.names())
    )
    minutes = (
        gap_day_intraday(gap_days, minute_bars)
        if minute_bars is not None
        else pl.DataFrame(schema=_GAP_DAY_MINUTES_SCHEMA)
    )
    return RealismSamples(ticker_days, gap_days, minutes)


def _excess_kurtosis(values: np.ndarray) -> float | None:
    """Fisher excess kurtosis from population moments (scipy's default, ``bias=True``)."""
    if len(values) < 4:
        return None
    centred = values - values.mean()
    m2 = float(np.mean(centred**2))
    if m2 == 0.0:
        return None
    return float(np.mean(centred**4)) / m2**2 - 3.0


def _fact_observations(
    key: str, samples: RealismSamples, rules: SampleRules
) -> tuple[pl.DataFrame, str]:
    """The (ticker, value) observations behind ``key`` and the statistic that combines them:
    ``mean``, ``median``, ``std`` (ddof 1) or ``kurtosis`` (excess, population moments)."""
    days, gaps, minutes = samples.ticker_days, samples.gap_days, samples.gap_day_minutes
    returns = days.filter(pl.col("log_return").abs() < rules.max_abs_log_return)
    spec: dict[str, tuple[pl.DataFrame, pl.Expr, str]] = {
        "p_gap10": (days, pl.col("gap") >= rules.gap_day, "mean"),
        "p_gap20": (days, pl.col("gap") >= rules.big_gap, "mean"),
        "return_std": (returns, pl.col("log_return"), "std"),
        "return_excess_kurtosis": (returns, pl.col("log_return"), "kurtosis"),
        "median_previous_close": (days, pl.col("previous_close"), "median"),
        "gap_day_median_gap": (gaps, pl.col("gap"), "median"),
        "gap_day_share_close_above_open": (gaps, pl.col("open_to_close") > 0, "mean"),
        "gap_day_median_open_to_close": (gaps, pl.col("open_to_close"), "median"),
        "gap_day_median_high_over_open": (gaps, pl.col("high_over_open"), "median"),
        "gap_day_first30_volume_share": (minutes, pl.col("first30_volume_share"), "median"),
        "gap_day_premarket_volume_share": (minutes, pl.col("premarket_volume_share"), "median"),
        "gap_day_median_hod_minute": (minutes, pl.col("hod_minute"), "median"),
        "gap_day_share_hod_first30": (minutes, pl.col("hod_minute") < OPENING_MINUTES, "mean"),
        "gap_day_halts_per_day": (minutes, pl.col("halts"), "mean"),
    }
    if key not in spec:
        raise KeyError(f"no definition for realism fact {key!r}")
    frame, expr, how = spec[key]
    observed = frame.select("ticker", value=expr.cast(pl.Float64)).drop_nulls("value")
    return observed, how


def _value_and_n(key: str, samples: RealismSamples, rules: SampleRules) -> tuple[float | None, int]:
    observed, how = _fact_observations(key, samples, rules)
    values = observed.get_column("value")
    n = values.len()
    if n == 0:
        return None, 0
    if how == "kurtosis":
        return _excess_kurtosis(values.to_numpy()), n
    if how == "std":
        return (float(np.std(values.to_numpy(), ddof=1)) if n > 1 else None), n
    value = values.median() if how == "median" else values.mean()
    return (None if value is None else float(value)), n  # type: ignore[arg-type]


def _weighted(values: np.ndarray, weights: np.ndarray, how: str) -> np.ndarray:
    """The statistic ``how`` of ``values`` under each row of ``weights`` (resamples x rows)."""
    total = weights.sum(axis=1)
    if how == "median":
        order = np.argsort(values, kind="stable")
        cumulative = np.cumsum(weights[:, order], axis=1)
        position = np.argmax(cumulative >= total[:, None] / 2.0, axis=1)
        return np.asarray(values[order][position], dtype=np.float64)
    mean = weights @ values / total
    if how == "mean":
        return np.asarray(mean, dtype=np.float64)
    centred = values[None, :] - mean[:, None]
    m2 = (weights * centred**2).sum(axis=1) / total
    if how == "std":
        return np.asarray(np.sqrt(m2 * total / np.maximum(total - 1.0, 1.0)), dtype=np.float64)
    m4 = (weights * centred**4).sum(axis=1) / total
    return np.asarray(m4 / np.where(m2 > 0, m2, np.nan) ** 2 - 3.0, dtype=np.float64)


def _intervals(
    keys: list[str], samples: RealismSamples, rules: SampleRules, bootstrap: Bootstrap
) -> dict[str, tuple[float, float]]:
    """Percentile interval of each fact in ``keys`` over whole-ticker resamples: a resample
    draws the sample's tickers with replacement, and a ticker drawn k times weighs k."""
    tickers = samples.ticker_days.get_column("ticker").unique().sort()
    if not keys or tickers.len() < 2 or bootstrap.resamples < 2:
        return {}
    rng = np.random.default_rng(bootstrap.seed)
    picks = rng.integers(0, tickers.len(), size=(bootstrap.resamples, tickers.len()))
    draws = np.stack([np.bincount(row, minlength=tickers.len()) for row in picks]).astype(
        np.float64
    )
    codes = pl.DataFrame({"ticker": tickers, "code": np.arange(tickers.len())})
    tail = (1.0 - bootstrap.level) / 2.0 * 100.0
    out: dict[str, tuple[float, float]] = {}
    for key in keys:
        observed, how = _fact_observations(key, samples, rules)
        coded = observed.join(codes, on="ticker", how="inner")
        if coded.height < 2:
            continue
        weights = draws[:, coded.get_column("code").to_numpy()]
        usable = weights.sum(axis=1) > 1
        stats = _weighted(coded.get_column("value").to_numpy(), weights[usable], how)
        stats = stats[np.isfinite(stats)]
        if len(stats) >= 2:
            out[key] = (float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail)))
    return out


def realism_facts(
    samples: RealismSamples,
    *,
    rules: SampleRules | None = None,
    minimums: SampleMinimums | None = None,
    bootstrap: Bootstrap | None = None,
) -> pl.DataFrame:
    """One row per fact of :data:`REAL_RANGES` (then the three sample sizes), with the verdict.

    ``status``: ``inside`` the real range; ``consistent`` (outside it, but the range overlaps
    the value's ``bootstrap`` interval ``ci_low``-``ci_high``: the sample is too small to tell);
    ``outside`` (the whole interval misses the range); ``insufficient`` (fewer observations
    than ``minimums`` asks for, or no value); ``report`` (no range: halts and the sample sizes).
    ``inside`` is whether the value lies in the range, null when not judged. Schema:
    :data:`REALISM_FACTS_SCHEMA`.
    """
    rules = rules or SampleRules()
    minimums = minimums or SampleMinimums()
    bootstrap = bootstrap or Bootstrap()
    measured = {key: _value_and_n(key, samples, rules) for key in REAL_RANGES}
    judged = [
        key
        for key, (value, n) in measured.items()
        if REAL_RANGES[key].low is not None
        and value is not None
        and n >= minimums.of(REAL_RANGES[key].population)
    ]
    intervals = _intervals(judged, samples, rules, bootstrap)
    rows: list[dict[str, object]] = []
    for key, spec in REAL_RANGES.items():
        value, n = measured[key]
        ci_low, ci_high = intervals.get(key, (None, None))
        if spec.low is None or spec.high is None:
            inside, status = None, "report"
        elif key not in judged:
            inside, status = None, "insufficient"
        else:
            assert value is not None
            inside = spec.low <= value <= spec.high
            overlaps = (
                ci_low is not None
                and ci_high is not None
                and ci_low <= spec.high
                and ci_high >= spec.low
            )
            status = "inside" if inside else "consistent" if overlaps else "outside"
        rows.append(
            {
                "key": key,
                "label": spec.label,
                "population": spec.population.value,
                "value": value,
                "low": spec.low,
                "high": spec.high,
                "ci_low": ci_low,
                "ci_high": ci_high,
                "inside": inside,
                "status": status,
                "n": n,
            }
        )
    for population, label in _COUNT_LABELS.items():
        count = samples.count(population)
        rows.append(
            {
                "key": population.value,
                "label": label,
                "population": population.value,
                "value": float(count),
                "low": None,
                "high": None,
                "ci_low": None,
                "ci_high": None,
                "inside": None,
                "status": "report",
                "n": count,
            }
        )
    return pl.DataFrame(rows, schema=REALISM_FACTS_SCHEMA)


@dataclass(frozen=True)
class RealismReport:
    """The facts of one measurement and the samples behind them."""

    facts: pl.DataFrame
    samples: RealismSamples
    first_day: dt.date | None = None
    last_day: dt.date | None = None

    @property
    def outside(self) -> list[str]:
        """Facts with enough data that fall outside their real range."""
        return self.facts.filter(pl.col("status") == "outside").get_column("key").to_list()

    @property
    def consistent(self) -> list[str]:
        """Facts outside their range by less than their sampling error."""
        return self.facts.filter(pl.col("status") == "consistent").get_column("key").to_list()

    @property
    def insufficient(self) -> list[str]:
        return self.facts.filter(pl.col("status") == "insufficient").get_column("key").to_list()

    def value(self, key: str) -> float | None:
        found = self.facts.filter(pl.col("key") == key)
        if found.is_empty():
            raise KeyError(f"no realism fact {key!r}")
        value: float | None = found.get_column("value").item()
        return value


def measure_realism(
    daily_bars: pl.DataFrame,
    minute_bars: pl.DataFrame | None = None,
    *,
    rules: SampleRules | None = None,
    minimums: SampleMinimums | None = None,
    bootstrap: Bootstrap | None = None,
) -> RealismReport:
    """Samples and facts in one call (see the module docstring for the input columns)."""
    return report_from_samples(
        realism_samples(daily_bars, minute_bars, rules=rules),
        rules=rules,
        minimums=minimums,
        bootstrap=bootstrap,
    )


def report_from_samples(
    samples: RealismSamples,
    *,
    rules: SampleRules | None = None,
    minimums: SampleMinimums | None = None,
    bootstrap: Bootstrap | None = None,
) -> RealismReport:
    """The report of samples built elsewhere (e.g. minute bars fetched only for the gap days)."""
    dates = samples.ticker_days.get_column("date")
    first: dt.date | None = dates.min() if dates.len() else None  # type: ignore[assignment]
    last: dt.date | None = dates.max() if dates.len() else None  # type: ignore[assignment]
    return RealismReport(
        realism_facts(samples, rules=rules, minimums=minimums, bootstrap=bootstrap),
        samples,
        first,
        last,
    )


# -- histograms -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Histogram:
    """Counts per bin, ready to draw; ``real_low``/``real_high`` shade the real range of the
    matching median (when it has one)."""

    key: str
    title: str
    x_label: str
    edges: np.ndarray
    counts: np.ndarray
    n: int
    real_low: float | None = None
    real_high: float | None = None
    fact: str = ""
    median: float | None = None


def _histogram(
    key: str, title: str, x_label: str, values: pl.Series, edges: np.ndarray, fact: str
) -> Histogram:
    data = values.drop_nulls().cast(pl.Float64).to_numpy()
    # Values past the last edge land in the last bin, so the counts always add up to n.
    counts, _ = np.histogram(np.clip(data, edges[0], edges[-1]), bins=edges)
    spec = REAL_RANGES[fact]
    median = float(np.median(data)) if len(data) else None
    return Histogram(
        key, title, x_label, edges, counts, len(data), spec.low, spec.high, fact, median
    )


def histograms(samples: RealismSamples) -> list[Histogram]:
    """Gap sizes of gap days, gap-day open→close, and the minute of the high of day."""
    return [
        _histogram(
            "gap_sizes",
            "Gap days: gap (open / previous close - 1)",
            "gap (clipped at +150 %)",
            samples.gap_days.get_column("gap"),
            np.linspace(0.10, 1.50, 29),
            "gap_day_median_gap",
        ),
        _histogram(
            "gap_day_open_to_close",
            "Gap days: close / open - 1",
            "open → close (clipped at ±60 %)",
            samples.gap_days.get_column("open_to_close"),
            np.linspace(-0.60, 0.60, 49),
            "gap_day_median_open_to_close",
        ),
        _histogram(
            "hod_minute",
            "Gap days: minute of the high of day (after 09:30)",
            "minutes after 09:30",
            samples.gap_day_minutes.get_column("hod_minute"),
            np.arange(0.0, 391.0, 10.0),
            "gap_day_median_hod_minute",
        ),
    ]


# -- formatting -------------------------------------------------------------------------------
def _unit_of(key: str) -> Unit:
    spec = REAL_RANGES.get(key)
    return spec.unit if spec is not None else Unit.COUNT


def format_value(key: str, value: float | None) -> str:
    """A fact's value in its unit (``n/a`` when there is none)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    unit = _unit_of(key)
    if unit is Unit.PERCENT:
        return f"{value:.2%}"
    if unit is Unit.DOLLARS:
        return f"${value:,.2f}"
    if unit is Unit.MINUTES:
        return f"{value:.0f} min"
    if unit is Unit.COUNT:
        return f"{value:,.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def _range_text(key: str, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f"{format_value(key, low)} to {format_value(key, high)}"


def _rows(facts: pl.DataFrame) -> list[tuple[str, str, str, str, str, str]]:
    return [
        (
            row["label"],
            format_value(row["key"], row["value"]),
            _range_text(row["key"], row["ci_low"], row["ci_high"]),
            _range_text(row["key"], row["low"], row["high"]),
            row["status"],
            f"{row['n']:,}",
        )
        for row in facts.iter_rows(named=True)
    ]


_HEADER: Final = ("fact", "value", "95 % interval", "real range", "verdict", "n")


def month_facts(report: RealismReport, month: dt.date) -> pl.DataFrame:
    """A month's facts as the ``research/market_realism`` partition (MarketRealismModel)."""
    return report.facts.with_columns(month=pl.lit(month)).select(MARKET_REALISM_SCHEMA.names())


def ranges_report(facts: pl.DataFrame, *, partition: str = "") -> CheckReport:
    """Facts judged outside their real range (a report's finding: it only warns)."""
    return rules_report(
        facts,
        {"inside its real range": pl.col("status") != "outside"},
        partition=partition,
        label="market_realism",
    )


def facts_markdown(facts: pl.DataFrame) -> str:
    """The fact table as Markdown (outside values in bold), with the ranges' source."""
    lines = ["| " + " | ".join(_HEADER) + " |", "|---|---:|---|---|---|---:|"]
    for label, value, interval, real, status, n in _rows(facts):
        shown = f"**{value}**" if status == "outside" else value
        lines.append(f"| {label} | {shown} | {interval} | {real} | {status} | {n} |")
    notes = sorted({spec.source for spec in REAL_RANGES.values()} - {"report only"})
    return "\n".join([*lines, "", "Real ranges: " + "; ".join(notes) + "."])


def facts_text(facts: pl.DataFrame) -> str:
    """The fact table as aligned plain text (the CLI's output)."""
    rows = [_HEADER, *(_rows(facts))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = []
    for row in rows:
        cells = [
            row[i].ljust(widths[i]) if i in (0, 2, 3, 4) else row[i].rjust(widths[i])
            for i in range(len(row))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- the stored partition -----------------------------------------------------------------------
class MarketRealismModel(pa.DataFrameModel):
    """One month's facts (``research/market_realism``): one row per fact, verdict consistent."""

    month: pl.Date
    key: pl.String = pa.Field(isin=[*REAL_RANGES, *(p.value for p in Population)])
    label: pl.String
    population: pl.String = pa.Field(isin=[p.value for p in Population])
    value: pl.Float64 = pa.Field(nullable=True)
    low: pl.Float64 = pa.Field(nullable=True)
    high: pl.Float64 = pa.Field(nullable=True)
    ci_low: pl.Float64 = pa.Field(nullable=True)
    ci_high: pl.Float64 = pa.Field(nullable=True)
    inside: pl.Boolean = pa.Field(nullable=True)
    status: pl.String = pa.Field(isin=STATUSES)
    n: pl.Int64 = pa.Field(ge=0)

    @pa.dataframe_check
    @classmethod
    def verdict_matches_range(cls, data: PolarsData) -> pl.LazyFrame:
        judged = pl.col("status").is_in(["inside", "consistent", "outside"])
        within = (pl.col("low") <= pl.col("value")) & (pl.col("value") <= pl.col("high"))
        overlaps = (pl.col("ci_low") <= pl.col("high")) & (pl.col("ci_high") >= pl.col("low"))
        expected = (
            pl.when(within)
            .then(pl.lit("inside"))
            .when(overlaps.fill_null(False))
            .then(pl.lit("consistent"))
            .otherwise(pl.lit("outside"))
        )
        agrees = (
            pl.when(judged)
            .then((pl.col("inside") == within) & (pl.col("status") == expected))
            .otherwise(pl.col("inside").is_null())
        )
        return data.lazyframe.select(agrees.fill_null(False))

    @pa.dataframe_check
    @classmethod
    def range_ordered(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("low") <= pl.col("high")).fill_null(True))

    class Config:
        strict = True
        coerce = False
        unique = ["month", "key"]  # noqa: RUF012 (Pandera reads a plain class attribute)
