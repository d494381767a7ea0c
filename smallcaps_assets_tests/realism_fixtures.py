"""A hand-built small-cap market for the realism tests, with a knob per stylized fact.

At its defaults every fact of ``core/realism.py`` lands inside its real range; each knob breaks
one fact (or a family) the way a wrong market or a wrong input would. Gap-day outcomes are
stratified quantiles of fixed laws (not random draws), so the gap-day medians are where the law
puts them whatever the number of gap days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import polars as pl

from smallcaps_assets.core import calendar

NY = "America/New_York"
FIRST, LAST = dt.date(2024, 1, 2), dt.date(2024, 6, 28)
REGULAR_MINUTES = 390


@dataclass(frozen=True)
class Knobs:
    tickers: int = 200
    first: dt.date = FIRST
    last: dt.date = LAST
    seed: int = 42
    gap_rate: float = 0.005  # share of ticker-days that gap up 10 % or more
    gap_scale: float = 0.07  # gap = 10 % + exponential of this mean
    gap_day_drift: float = 0.0  # added to every gap day's close / open - 1
    excursion_scale: float = 0.05  # high beyond max(open, close) on gap days, exponential mean
    return_scale: float = 1.0  # multiplies ordinary days' returns
    jump_share: float = 0.01  # ordinary days drawn from the wide component
    price_median: float = 9.0
    first30_share: float = 0.25  # regular volume in the first 30 minutes
    premarket_share: float = 0.05  # of the day's volume
    hod_minutes: tuple[int, ...] = (0, 3, 8, 15, 22, 40, 75, 150, 300)
    halt_every: int = 4  # one halt on every n-th gap day (0: none)


@dataclass(frozen=True)
class HandBuiltMarket:
    daily: pl.DataFrame  # processed/daily_bars-shaped (the columns realism reads)
    minutes: pl.DataFrame  # processed/minute_bars-shaped, gap days only
    gap_days: pl.DataFrame  # ticker, date, hod_minute, halts as planted


def _stratified(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` evenly spaced probabilities in (0, 1), in random order."""
    return rng.permutation((np.arange(count) + 0.5) / max(count, 1))


def build_market(knobs: Knobs | None = None) -> HandBuiltMarket:
    k = knobs or Knobs()
    rng = np.random.default_rng(k.seed)
    days = calendar.sessions(k.first, k.last)
    n, s = k.tickers, len(days)
    tickers = [f"T{i:03d}" for i in range(n)]
    base = np.clip(k.price_median * np.exp(0.35 * rng.standard_normal(n)), 1.0, 19.0)

    gap = rng.random((s, n)) < k.gap_rate
    gap[0] = False  # the first session is only a previous close
    count = int(gap.sum())
    sizes = 0.10 - k.gap_scale * np.log1p(-_stratified(rng, count))
    normal = NormalDist(mu=-0.035, sigma=0.098)
    fades = np.array([normal.inv_cdf(u) for u in _stratified(rng, count)]) + k.gap_day_drift
    excursions = -k.excursion_scale * np.log1p(-_stratified(rng, count))

    shape = (s, n)
    o, h, lo, c = (np.empty(shape) for _ in range(4))
    o[0], c[0], h[0], lo[0] = base, base, base * 1.01, base * 0.99
    wide = rng.random(shape) < k.jump_share
    returns = k.return_scale * np.where(
        wide, 0.28 * rng.standard_normal(shape), 0.03 * rng.standard_normal(shape)
    )
    g = 0
    for t in range(1, s):
        prev = c[t - 1]
        r = returns[t] + 0.05 * np.log(base / prev)
        o[t] = prev * np.exp(0.005 * rng.standard_normal(n))
        c[t] = prev * np.exp(r)
        for i in np.flatnonzero(gap[t]):
            o[t, i] = prev[i] * (1.0 + sizes[g])
            c[t, i] = o[t, i] * (1.0 + fades[g])
            g += 1
        h[t] = np.maximum(o[t], c[t]) * 1.01
        lo[t] = np.minimum(o[t], c[t]) * 0.99
    if count:
        # Row-major order of the mask is the order the loop above planted the gap days in.
        h[gap] = np.maximum(o[gap], c[gap]) * (1.0 + excursions)
    volume = 1_000_000.0 / np.vstack([base, c[:-1]])  # about $1M traded a day

    daily = pl.DataFrame(
        {
            "ticker": np.tile(tickers, s),
            "date": np.repeat(np.array(days, dtype="datetime64[D]"), n),
            "open": o.ravel(),
            "high": h.ravel(),
            "low": lo.ravel(),
            "close": c.ravel(),
            "volume": volume.ravel(),
            "split_factor_to_d": np.ones(s * n),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    rows, cols = np.nonzero(gap)
    planted = pl.DataFrame(
        {
            "ticker": [tickers[i] for i in cols],
            "date": [days[t] for t in rows],
            "hod_minute": [k.hod_minutes[j % len(k.hod_minutes)] for j in range(count)],
            "halts": [int(k.halt_every > 0 and j % k.halt_every == 0) for j in range(count)],
        },
        schema={"ticker": pl.String, "date": pl.Date, "hod_minute": pl.Int64, "halts": pl.Int64},
    )
    return HandBuiltMarket(daily, gap_day_minute_bars(planted, k), planted)


def gap_day_minute_bars(planted: pl.DataFrame, k: Knobs) -> pl.DataFrame:
    """04:00-19:59 bars for each planted gap day: flat within the premarket, the first 30
    regular minutes, the rest of the session and the post-market, at the knobs' shares; the
    regular high at the planted minute; a halt resumption at 11:00 where planted."""
    regular = 1_000_000.0
    post = 0.05 * regular
    pre = k.premarket_share / (1.0 - k.premarket_share) * (regular + post)
    minute_of_session = pl.col("_offset") - 330  # 04:00 + 330 min = 09:30
    session = (
        pl.when(minute_of_session < 0)
        .then(pl.lit("pre"))
        .when(minute_of_session < REGULAR_MINUTES)
        .then(pl.lit("regular"))
        .otherwise(pl.lit("post"))
    )
    volume = (
        pl.when(minute_of_session < 0)
        .then(pl.lit(pre / 330))
        .when(minute_of_session < 30)
        .then(pl.lit(k.first30_share * regular / 30))
        .when(minute_of_session < REGULAR_MINUTES)
        .then(pl.lit((1 - k.first30_share) * regular / (REGULAR_MINUTES - 30)))
        .otherwise(pl.lit(post / 240))
    )
    offsets = pl.DataFrame({"_offset": np.arange(960)}, schema={"_offset": pl.Int64})
    return (
        planted.join(offsets, how="cross")
        .with_columns(
            ts_et=(
                pl.col("date").cast(pl.Datetime("ms"))
                + pl.duration(hours=4)
                + pl.duration(minutes=pl.col("_offset"))
            ).dt.replace_time_zone(NY),
            session=session,
            volume=volume,
            high=pl.when(minute_of_session == pl.col("hod_minute"))
            .then(pl.lit(12.0))
            .otherwise(pl.lit(10.0)),
            halt_resumption=(minute_of_session == 90) & (pl.col("halts") > 0),
        )
        .select("ticker", "date", "ts_et", "session", "high", "volume", "halt_resumption")
    )


def write_processed(root: str, market: HandBuiltMarket) -> list[dt.date]:
    """Store the market as a data root's ``processed/daily_bars`` and ``processed/minute_bars``
    partitions (only the columns realism reads); returns the sessions written."""
    from smallcaps_assets.core.storage import DataStore

    store = DataStore(root)
    days: list[dt.date] = sorted(market.daily.get_column("date").unique().to_list())
    for (day,), bars in market.daily.group_by("date"):
        store.write("processed", "daily_bars", day, bars.sort("ticker"))  # type: ignore[arg-type]
    for (day,), bars in market.minutes.group_by("date"):
        store.write("processed", "minute_bars", day, bars)  # type: ignore[arg-type]
    return days
