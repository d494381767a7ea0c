"""Market realism measured where the bars are: a data root's processed partitions, or the
simulated market itself (no materialization).

Both paths end in :mod:`smallcaps_assets.core.realism`, so a data root and the market it was
built from are measured by the same code. Core must not import ``sources``; this module is the
bridge, and imports the simulator only for type checking (a caller passes the market in).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import polars as pl

from smallcaps_assets.core import calendar, minute, realism
from smallcaps_assets.core.storage import DataStore

if TYPE_CHECKING:
    from smallcaps_assets.sources.simulator import SimulatedMarket

__all__ = [
    "StoredInputs",
    "measure_data_root",
    "measure_simulated_market",
    "read_stored_inputs",
    "report_text",
    "simulated_daily_bars",
    "simulated_gap_day_minutes",
]

PROCESSED: Final = "processed"
DAILY_COLUMNS: Final = (*realism.DAILY_COLUMNS, "split_factor_to_d")
MINUTE_COLUMNS: Final = (*realism.MINUTE_COLUMNS, "halt_resumption")


@dataclass(frozen=True)
class StoredInputs:
    """What a data root holds for a window: daily bars (with the session before the window, for
    the first previous close), the candidates' minute bars, and the window's stored sessions."""

    daily_bars: pl.DataFrame
    minute_bars: pl.DataFrame
    sessions: list[dt.date]


def read_stored_inputs(
    store: DataStore, start: dt.date | None = None, end: dt.date | None = None
) -> StoredInputs:
    """``processed/daily_bars`` and ``processed/minute_bars`` of the stored sessions in
    [start, end] (every stored session when unbounded), only the columns the facts read.

    Raises ``FileNotFoundError`` naming the data root when no daily partition is in the window.
    """
    stored = [dt.date.fromisoformat(k) for k in store.partitions(PROCESSED, "daily_bars")]
    window = [d for d in stored if (start is None or d >= start) and (end is None or d <= end)]
    if not window:
        span = f"{start or 'the first'} … {end or 'the last'} session"
        raise FileNotFoundError(
            f"no processed/daily_bars partition under {store.root} for {span} "
            f"({len(stored)} stored in all); materialize the processed layer first"
        )
    # The first session's previous close lives in the partition before the window.
    before = calendar.previous_session(window[0])
    daily_days = [before, *window] if before in set(stored) else window
    daily = pl.concat(
        [store.read(PROCESSED, "daily_bars", d).select(DAILY_COLUMNS) for d in daily_days]
    )
    minute_days = [d for d in window if store.exists(PROCESSED, "minute_bars", d)]
    minutes = (
        pl.concat(
            [store.read(PROCESSED, "minute_bars", d).select(MINUTE_COLUMNS) for d in minute_days]
        )
        if minute_days
        else None
    )
    return StoredInputs(
        daily,
        minutes if minutes is not None else _empty_minutes(),
        window,
    )


def _empty_minutes() -> pl.DataFrame:
    schema = minute.PROCESSED_MINUTE_BARS_SCHEMA
    return pl.DataFrame(schema={c: schema[c] for c in MINUTE_COLUMNS})


def measure_data_root(
    store: DataStore,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    rules: realism.SampleRules | None = None,
    minimums: realism.SampleMinimums | None = None,
) -> realism.RealismReport:
    """The realism facts of a data root's stored processed partitions in [start, end]."""
    inputs = read_stored_inputs(store, start, end)
    return realism.measure_realism(
        inputs.daily_bars, inputs.minute_bars, rules=rules, minimums=minimums
    )


def report_text(report: realism.RealismReport, source: str) -> str:
    """The report as the CLI prints it: where and when, the fact table, the verdict counts."""
    days = report.samples.ticker_days.get_column("date")
    window = (
        f"{report.first_day} … {report.last_day}, {days.n_unique()} sessions"
        if report.first_day is not None
        else "no ticker-day passed the sample filter"
    )
    statuses = report.facts.get_column("status")
    judged = {
        s: int((statuses == s).sum()) for s in ("inside", "consistent", "outside", "insufficient")
    }
    lines = [
        f"market realism of {source} ({window})",
        "sample: previous close $0.50-$20 (D's share basis), high > low, close x volume >= $100k;"
        " gap day: open >= previous close +10 %",
        "",
        realism.facts_text(report.facts),
        "",
        f"real ranges: {realism.REAL_RANGES_SOURCE}; opening/premarket volume from issue 15's "
        "description; time of the high of day is a loose prior",
        f"{judged['inside']} inside, {judged['consistent']} consistent (outside, but the real "
        f"range overlaps the value's 95 % whole-ticker bootstrap interval), "
        f"{judged['outside']} outside, {judged['insufficient']} insufficient (too few "
        "observations to judge)",
    ]
    if report.consistent:
        lines.append("consistent: " + ", ".join(report.consistent))
    if report.outside:
        lines.append("outside: " + ", ".join(report.outside))
    return "\n".join(lines)


# -- the simulated market -------------------------------------------------------------------------
def simulated_daily_bars(market: SimulatedMarket, start: dt.date, end: dt.date) -> pl.DataFrame:
    """The market's daily bars shaped like ``processed/daily_bars`` (the columns the facts read),
    from the session before ``start`` to ``end``.

    OTC names are left out, as the processed layer leaves them out. ``daily_panel``'s
    ``split_factor`` is the same index as ``split_factor_to_d`` (cumulative split_from /
    split_to executed by the session), so the previous close is rebased exactly as on a data root.
    """
    panel = market.daily_panel(calendar.previous_session(start), end)
    otc = market.tickers().filter(pl.col("market") == "otc").select("ticker")
    return panel.join(otc, on="ticker", how="anti").select(
        *realism.DAILY_COLUMNS, pl.col("split_factor").alias("split_factor_to_d")
    )


def simulated_gap_day_minutes(market: SimulatedMarket, gap_days: pl.DataFrame) -> pl.DataFrame:
    """Minute bars of the given ticker-days (``ticker``, ``date``), run through the processed
    layer's own cleaning (:func:`~smallcaps_assets.core.minute.process_minute_bars`), so session
    tags and inferred halts are what a data root built from this market would store."""
    frames: list[pl.DataFrame] = []
    for (day,), rows in gap_days.select("ticker", "date").group_by("date", maintain_order=True):
        assert isinstance(day, dt.date)
        raw = [
            market.minute_bars(ticker, day).with_columns(ticker=pl.lit(ticker))
            for ticker in rows.get_column("ticker").to_list()
        ]
        raw = [bars for bars in raw if bars.height]
        if not raw:
            continue
        shaped = pl.concat(raw).select(
            "ticker",
            pl.from_epoch("t", time_unit="ms").dt.replace_time_zone("UTC").alias("window_start"),
            "open",
            "high",
            "low",
            "close",
            "volume",
            "vwap",
            pl.col("trades").alias("transactions"),
        )
        frames.append(minute.process_minute_bars(shaped, day).frame.select(MINUTE_COLUMNS))
    return pl.concat(frames) if frames else _empty_minutes()


def measure_simulated_market(
    market: SimulatedMarket,
    start: dt.date,
    end: dt.date,
    *,
    with_minutes: bool = True,
    rules: realism.SampleRules | None = None,
    minimums: realism.SampleMinimums | None = None,
) -> realism.RealismReport:
    """The realism facts of a simulated market's sessions in [start, end], straight from the
    market: the same sample and definitions as a data root, without materializing anything.

    Intraday facts use the minute bars of every sample gap day (a data root only holds the
    universe's candidates' minute bars: common stocks under the caps); ``with_minutes=False``
    skips them (a few ms per gap day) and leaves those facts insufficient.
    """
    daily = simulated_daily_bars(market, start, end)
    samples = realism.realism_samples(daily, rules=rules)
    if with_minutes and samples.gap_days.height:
        minutes = simulated_gap_day_minutes(market, samples.gap_days)
        samples = realism.RealismSamples(
            samples.ticker_days,
            samples.gap_days,
            realism.gap_day_intraday(samples.gap_days, minutes),
        )
    return realism.report_from_samples(samples, rules=rules, minimums=minimums)
