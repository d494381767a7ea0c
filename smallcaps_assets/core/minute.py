"""One session's minute bars for its candidates: sessions, gaps, halts, SSR and the premarket.

Every column of a bar is known at the bar's close: session tags and gaps look only at the bar's
own start and at earlier bars; a halt is flagged on the first bar *after* it; the SSR state
turns on at the bar that triggers it.

Split adjustment. Raw minute bars are unadjusted and a split takes effect from the first bar of
its execution date (the premarket included), so every bar of session D is already on D's share
basis, also when a split executes on D. No bar is rescaled. The one price from before D that
this module uses, D-1's close for the SSR threshold, is moved onto D's basis with the splits
executing on D.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Final

import exchange_calendars as xcals
import pandas as pd
import polars as pl

from smallcaps_assets.core import calendar
from smallcaps_assets.core.bars import ProcessedFrame, conform, split_factor_to, valid_price
from smallcaps_assets.core.schemas import OHLC
from smallcaps_assets.core.universe import UniverseRules

__all__ = [
    "HALT_JUMP",
    "HALT_MIN_MISSING_MINUTES",
    "PREMARKET_LOOKBACK",
    "PREMARKET_SUMMARY_SCHEMA",
    "PRIOR_DAY_SCHEMA",
    "PROCESSED_MINUTE_BARS_SCHEMA",
    "SESSIONS",
    "SSR_DAYS_SCHEMA",
    "SSR_DROP",
    "TRAILING_PREMARKET_SCHEMA",
    "WATCHLIST_SCHEMA",
    "bars_of_session",
    "candidate_coverage",
    "minute_history_sessions",
    "premarket_history",
    "premarket_summary",
    "prior_day_state",
    "process_minute_bars",
    "raw_minute_partition",
    "regular_close_et",
    "session_summary",
    "ssr_carry_in",
    "ssr_triggered_days",
    "ssr_triggers_from_minutes",
    "trailing_premarket_volume",
    "watchlist_flags",
]

NY_ZONE: Final = calendar.NY.key
PRE_OPEN: Final = dt.time(4, 0)
REGULAR_OPEN: Final = dt.time(9, 30)
POST_CLOSE: Final = dt.time(20, 0)
SESSIONS: Final = ("pre", "regular", "post")

# LULD pauses last five minutes; a regular-session hole at least this long that reopens away
# from the last print is read as a halt. Illiquid names also go minutes without a trade, which
# is why the price jump is required too.
HALT_MIN_MISSING_MINUTES: Final = 5
HALT_JUMP: Final = 0.05
# Rule 201: a 10% decline from the prior close restricts short sales for the rest of the day and
# the next. The rule is only triggered during regular trading hours.
SSR_DROP: Final = 0.10
# Premarket RVOL compares the session's premarket volume with this many sessions before it.
PREMARKET_LOOKBACK: Final = 20

_UTC_MS: Final = pl.Datetime("ms", "UTC")

PROCESSED_MINUTE_BARS_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "ts": _UTC_MS,
        "ts_et": pl.Datetime("ms", NY_ZONE),
        "date": pl.Date(),
        "session": pl.String(),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
        "vwap": pl.Float64(),
        "transactions": pl.Int64(),
        "missing_minutes_before": pl.Int64(),
        "halt_resumption": pl.Boolean(),
        "halts_so_far": pl.Int64(),
        "ssr_trigger": pl.Boolean(),
        "ssr_active": pl.Boolean(),
    }
)

PRIOR_DAY_SCHEMA: Final = pl.Schema(
    {"ticker": pl.String(), "previous_close": pl.Float64(), "ssr_carried_in": pl.Boolean()}
)

SSR_DAYS_SCHEMA: Final = pl.Schema(
    {"ticker": pl.String(), "date": pl.Date(), "ssr_triggered": pl.Boolean()}
)

PREMARKET_SUMMARY_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "date": pl.Date(),
        "premarket_volume": pl.Float64(),
        "premarket_high": pl.Float64(),
        "premarket_vwap": pl.Float64(),
        "premarket_bars": pl.Int64(),
    }
)

TRAILING_PREMARKET_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "avg_premarket_volume_20d": pl.Float64(),
        "premarket_sessions": pl.Int64(),
    }
)

WATCHLIST_SCHEMA: Final = pl.Schema(
    {
        "date": pl.Date(),
        "ticker": pl.String(),
        "gap_pct": pl.Float64(),
        "premarket_volume": pl.Float64(),
        "premarket_high": pl.Float64(),
        "premarket_bars": pl.Int64(),
        "avg_premarket_volume_20d": pl.Float64(),
        "premarket_rvol": pl.Float64(),
        "is_watchlist": pl.Boolean(),
    }
)


@cache
def _nyse_year(year: int) -> xcals.ExchangeCalendar:
    return xcals.get_calendar(calendar.CALENDAR_NAME, start=f"{year}-01-01", end=f"{year}-12-31")


def session_closed(day: dt.date, now: dt.datetime) -> bool:
    """Whether ``day``'s regular session has closed by ``now`` (an aware datetime)."""
    close = dt.datetime.combine(day, regular_close_et(day), tzinfo=calendar.NY)
    return now >= close


def regular_close_et(day: dt.date) -> dt.time:
    """New York time the regular session of ``day`` closes: 16:00, or 13:00 on half days."""
    if not calendar.is_session(day):
        raise ValueError(f"{day} is not an NYSE session")
    close: pd.Timestamp = _nyse_year(day.year).session_close(pd.Timestamp(day))
    ny_close: dt.time = close.tz_convert(NY_ZONE).time()
    return ny_close


def process_minute_bars(
    raw_minutes: pl.DataFrame,
    day: dt.date,
    *,
    prior: pl.DataFrame | None = None,
    splits: pl.DataFrame | None = None,
    halt_min_missing_minutes: int = HALT_MIN_MISSING_MINUTES,
    halt_jump: float = HALT_JUMP,
    ssr_drop: float = SSR_DROP,
) -> ProcessedFrame:
    """Clean and annotate session ``day``'s raw minute bars (raw minute-bar schema).

    Repaired and counted first: ``zero_low_repaired``, bars whose low is exactly 0 while open,
    high and close are valid (real post-market bars carry such prints) get low = min(open, close).
    Dropped and counted in ``stats``, in this order: ``invalid_price`` (an OHLC value null,
    NaN or <= 0, or a negative/NaN volume), ``other_day`` (bar start not on ``day`` in New York),
    ``outside_hours`` (bar start before 04:00 or at/after 20:00 ET) and ``duplicate`` (same
    ticker and start: the last row wins).

    Columns added (see :data:`PROCESSED_MINUTE_BARS_SCHEMA`):

    * ``ts`` (bar start, UTC), ``ts_et`` (the same instant in New York), ``date`` (= ``day``).
    * ``session`` by bar start: ``pre`` 04:00-09:30, ``regular`` 09:30-close, ``post``
      close-20:00, where the close is 16:00 or 13:00 on half days (:func:`regular_close_et`).
    * ``missing_minutes_before``: whole minutes without a bar since the ticker's previous bar in
      the same session (0 for consecutive bars, null for a session's first bar).
    * ``halt_resumption``: a regular-session bar following at least ``halt_min_missing_minutes``
      missing minutes whose open is at least ``halt_jump`` away from the previous close;
      ``halts_so_far`` counts them up to and including the bar.
    * ``ssr_trigger`` / ``ssr_active``: with ``prior`` (:data:`PRIOR_DAY_SCHEMA`, one row per
      ticker), the first regular-session bar whose low is at least ``ssr_drop`` below the previous
      close (on D's basis, using ``splits`` executing on ``day``) triggers SSR, which is active
      from that bar to the end of the day; ``ssr_carried_in`` makes every bar of the day active.
      A ticker without a previous close cannot trigger. The bar low stands in for the national
      best bid the rule actually watches.

    Sorted by ticker and ``ts``.
    """
    stats = {"input_rows": raw_minutes.height}
    frame = raw_minutes

    # Real extended-hours feeds carry bars with l: 0 (a bad print); the bar's other prices and
    # its volume are real, so the low is set to the lower of open and close rather than the bar
    # being dropped.
    zero_low = (pl.col("low") == 0).fill_null(False) & pl.all_horizontal(
        *(valid_price(c) for c in ("open", "high", "close"))
    )
    stats["zero_low_repaired"] = frame.filter(zero_low).height
    frame = frame.with_columns(
        low=pl.when(zero_low).then(pl.min_horizontal("open", "close")).otherwise(pl.col("low"))
    )

    volume = pl.col("volume")
    usable = pl.all_horizontal(*(valid_price(c) for c in OHLC)) & (
        volume.is_finite() & (volume >= 0)
    ).fill_null(False)
    stats["invalid_price"] = frame.filter(~usable).height
    frame = frame.filter(usable)

    frame = frame.with_columns(ts=pl.col("window_start")).with_columns(
        ts_et=pl.col("ts").dt.convert_time_zone(NY_ZONE)
    )
    on_day = pl.col("ts_et").dt.date() == day
    stats["other_day"] = frame.filter(~on_day).height
    frame = frame.filter(on_day)

    time_of_day = pl.col("ts_et").dt.time()
    in_hours = (time_of_day >= PRE_OPEN) & (time_of_day < POST_CLOSE)
    stats["outside_hours"] = frame.filter(~in_hours).height
    frame = frame.filter(in_hours)

    deduped = frame.unique(subset=["ticker", "ts"], keep="last", maintain_order=True)
    stats["duplicate"] = frame.height - deduped.height

    regular_close = regular_close_et(day)
    session = (
        pl.when(time_of_day < REGULAR_OPEN)
        .then(pl.lit("pre"))
        .when(time_of_day < regular_close)
        .then(pl.lit("regular"))
        .otherwise(pl.lit("post"))
    )
    bars = deduped.with_columns(date=pl.lit(day), session=session).sort("ticker", "ts")
    bars = _flag_halts(bars, halt_min_missing_minutes, halt_jump)
    bars = _flag_ssr(bars, day, prior, splits, ssr_drop)
    out = bars.pipe(conform, PROCESSED_MINUTE_BARS_SCHEMA)
    stats["output_rows"] = out.height
    return ProcessedFrame(out, stats)


def _flag_halts(bars: pl.DataFrame, min_missing: int, jump: float) -> pl.DataFrame:
    """Gap and halt columns; ``bars`` sorted by ticker and ts."""
    in_session = ["ticker", "session"]
    missing = (pl.col("ts") - pl.col("ts").shift(1)).dt.total_minutes() - 1
    move = (pl.col("open") / pl.col("close").shift(1) - 1.0).abs()
    halted = (
        (pl.col("session") == "regular")
        & (pl.col("missing_minutes_before") >= min_missing)
        & (move.over(in_session) >= jump)
    ).fill_null(False)
    return (
        bars.with_columns(missing_minutes_before=missing.over(in_session))
        .with_columns(halt_resumption=halted)
        .with_columns(
            halts_so_far=pl.col("halt_resumption").cast(pl.Int64).cum_sum().over("ticker")
        )
    )


def _flag_ssr(
    bars: pl.DataFrame,
    day: dt.date,
    prior: pl.DataFrame | None,
    splits: pl.DataFrame | None,
    drop: float,
) -> pl.DataFrame:
    """SSR trigger and state columns; ``bars`` sorted by ticker and ts."""
    state = (
        (prior if prior is not None else pl.DataFrame(schema=PRIOR_DAY_SCHEMA))
        .select(PRIOR_DAY_SCHEMA.names())
        # One state per ticker, or the join would repeat its bars.
        .unique(subset="ticker", keep="last", maintain_order=True)
    )
    factors = pl.DataFrame(schema={"ticker": pl.String(), "split_factor_to_d": pl.Float64()})
    if splits is not None:
        factors = split_factor_to(splits.filter(pl.col("execution_date") == day), day)
    threshold = pl.col("previous_close") * pl.col("split_factor_to_d").fill_null(1.0) * (1.0 - drop)
    breaches = (pl.col("session") == "regular") & (pl.col("low") <= threshold)
    first_trigger = pl.col("ts").filter(breaches.fill_null(False)).min().over("ticker")
    return (
        bars.join(state, on="ticker", how="left", maintain_order="left")
        .join(factors, on="ticker", how="left", maintain_order="left")
        .with_columns(_first_trigger=first_trigger)
        .with_columns(
            ssr_trigger=(pl.col("ts") == pl.col("_first_trigger")).fill_null(False),
            ssr_active=(
                pl.col("ssr_carried_in").fill_null(False)
                | (pl.col("ts") >= pl.col("_first_trigger")).fill_null(False)
            ),
        )
    )


def ssr_triggers_from_minutes(minute_bars: pl.DataFrame) -> pl.DataFrame:
    """Per ticker and date of processed minute bars: whether SSR triggered that day.

    Schema: :data:`SSR_DAYS_SCHEMA`; feed it to :func:`ssr_carry_in` for the next session.
    """
    return (
        minute_bars.group_by("ticker", "date")
        .agg(ssr_triggered=pl.col("ssr_trigger").any())
        .pipe(conform, SSR_DAYS_SCHEMA)
        .sort("ticker", "date")
    )


def ssr_triggered_days(daily_bars: pl.DataFrame, *, drop: float = SSR_DROP) -> pl.DataFrame:
    """Per ticker and session of a daily-bar history: did the low breach the SSR threshold.

    ``daily_bars`` holds processed daily bars (``ticker``, ``date``, ``low``, ``close`` and, if
    present, ``split_factor_to_d`` to rebase the prior close across a split). The prior close is
    the ticker's previous row, so the history should start one session before the first day of
    interest; a ticker's first row never triggers. The daily low is a proxy for the
    regular-session low: prefer :func:`ssr_triggers_from_minutes` where minute bars exist.
    Schema: :data:`SSR_DAYS_SCHEMA`.
    """
    rebase = (
        pl.col("split_factor_to_d") / pl.col("split_factor_to_d").shift(1)
        if "split_factor_to_d" in daily_bars.columns
        else pl.lit(1.0)
    )
    prior_close = pl.col("close").shift(1) * rebase
    return (
        daily_bars.sort("ticker", "date")
        .with_columns(
            ssr_triggered=(pl.col("low") <= prior_close * (1.0 - drop))
            .over("ticker")
            .fill_null(False)
        )
        .pipe(conform, SSR_DAYS_SCHEMA)
    )


def ssr_carry_in(triggered_days: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Tickers whose SSR carries into ``day``: triggered on the previous session, and only then.

    ``triggered_days`` has :data:`SSR_DAYS_SCHEMA` (from daily or minute bars, or both: a ticker
    counts if any source saw a trigger). Returns ``ticker``, ``ssr_carried_in``.
    """
    previous = calendar.previous_session(day)
    return (
        triggered_days.filter(pl.col("date") == previous)
        .group_by("ticker")
        .agg(ssr_carried_in=pl.col("ssr_triggered").any())
        .sort("ticker")
    )


def prior_day_state(
    previous_bars: pl.DataFrame, day: dt.date, triggered_days: pl.DataFrame | None = None
) -> pl.DataFrame:
    """:data:`PRIOR_DAY_SCHEMA` for ``day``: D-1's unadjusted close from ``previous_bars`` (raw or
    processed daily bars) and the SSR carried in from ``triggered_days`` (false when absent)."""
    previous = calendar.previous_session(day)
    closes = (
        previous_bars.filter((pl.col("date") == previous) & valid_price("close"))
        .unique(subset="ticker", keep="last", maintain_order=True)
        .select("ticker", previous_close=pl.col("close"))
    )
    carried = (
        ssr_carry_in(triggered_days, day)
        if triggered_days is not None
        else pl.DataFrame(schema={"ticker": pl.String(), "ssr_carried_in": pl.Boolean()})
    )
    return (
        closes.join(carried, on="ticker", how="full", coalesce=True)
        .with_columns(pl.col("ssr_carried_in").fill_null(False))
        .pipe(conform, PRIOR_DAY_SCHEMA)
        .sort("ticker")
    )


def premarket_summary(minute_bars: pl.DataFrame) -> pl.DataFrame:
    """Per ticker and date of processed minute bars, from ``pre`` bars only (known at 09:30).

    ``premarket_vwap`` weights each bar's vwap (its typical price (h+l+c)/3 when the feed has
    none) by volume; it is null without premarket volume. A ticker with regular bars but no
    premarket bar gets volume 0, zero bars and null high/vwap. Schema:
    :data:`PREMARKET_SUMMARY_SCHEMA`.
    """
    is_pre = pl.col("session") == "pre"
    price = pl.coalesce("vwap", (pl.col("high") + pl.col("low") + pl.col("close")) / 3.0)
    pre_volume = pl.col("volume").filter(is_pre)
    dollar_volume = (price * pl.col("volume")).filter(is_pre).sum()
    return (
        minute_bars.group_by("ticker", "date")
        .agg(
            premarket_volume=pre_volume.sum(),
            premarket_high=pl.col("high").filter(is_pre).max(),
            premarket_vwap=pl.when(pre_volume.sum() > 0).then(dollar_volume / pre_volume.sum()),
            premarket_bars=is_pre.sum(),
        )
        .pipe(conform, PREMARKET_SUMMARY_SCHEMA)
        .sort("ticker", "date")
    )


def minute_history_sessions(day: dt.date, sessions: int = PREMARKET_LOOKBACK) -> list[dt.date]:
    """The ``sessions`` NYSE sessions before ``day``: the premarket baseline of a candidate."""
    # Twenty sessions never span more than about 31 calendar days; the margin covers holidays.
    window = calendar.sessions(day - dt.timedelta(days=2 * sessions + 10), day)
    return [d for d in window if d < day][-sessions:]


def raw_minute_partition(raw_minutes: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The raw bars a session's partition keeps from a candidate's request: the bars of ``day``
    and of the :data:`PREMARKET_LOOKBACK` sessions before it, 04:00-20:00 ET. The earlier
    sessions are the candidate's baselines: premarket RVOL and time-of-day RVOL."""
    et = pl.col("window_start").dt.convert_time_zone(NY_ZONE)
    window = minute_history_sessions(day)
    first = window[0] if window else day
    in_hours = (et.dt.time() >= PRE_OPEN) & (et.dt.time() < POST_CLOSE)
    return raw_minutes.filter(et.dt.date().is_between(first, day) & in_hours)


def bars_of_session(raw_minutes: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Raw bars whose start falls on ``day`` in New York."""
    return raw_minutes.filter(pl.col("window_start").dt.convert_time_zone(NY_ZONE).dt.date() == day)


def premarket_history(raw_minutes: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Premarket volume per ticker and earlier session from raw minute bars (raw schema).

    Only sessions before ``day`` count. A session on which the ticker printed any bar in the
    frame but none before 09:30 ET has premarket volume 0; a session without any bar is absent
    (unknown, e.g. not yet listed). Schema: ``ticker``, ``date``, ``premarket_volume``.
    """
    et = pl.col("window_start").dt.convert_time_zone(NY_ZONE)
    is_pre = (et.dt.time() >= PRE_OPEN) & (et.dt.time() < REGULAR_OPEN)
    return (
        raw_minutes.with_columns(date=et.dt.date())
        .filter(pl.col("date") < day)
        .group_by("ticker", "date")
        .agg(premarket_volume=pl.col("volume").filter(is_pre).sum().cast(pl.Float64))
        .sort("ticker", "date")
    )


def candidate_coverage(
    universe_d: pl.DataFrame, minute_bars_d: pl.DataFrame, requests: pl.DataFrame
) -> pl.DataFrame:
    """One row per candidate of the session: its minute-bar count and why it has none.

    ``requests`` is the raw minute-bar request log (``ticker``, ``status``). ``reason`` is null
    for a covered candidate, else the logged status (``not_found``, ``no_bars``) or
    ``not_requested`` when the log has no entry: the case a check must fail.
    """
    counts = minute_bars_d.group_by("ticker").agg(bars=pl.len().cast(pl.Int64))
    return (
        universe_d.filter(pl.col("is_candidate"))
        .select("ticker")
        .join(counts, on="ticker", how="left")
        .join(requests.select("ticker", "status"), on="ticker", how="left")
        .with_columns(pl.col("bars").fill_null(0))
        .with_columns(
            reason=pl.when(pl.col("bars") > 0)
            .then(pl.lit(None, pl.String))
            .otherwise(pl.col("status").fill_null("not_requested"))
        )
        .select("ticker", "bars", "reason")
        .sort("ticker")
    )


def trailing_premarket_volume(
    history: pl.DataFrame, day: dt.date, sessions: int = PREMARKET_LOOKBACK
) -> pl.DataFrame:
    """Mean premarket volume per ticker over the ``sessions`` NYSE sessions before ``day``.

    ``history`` holds earlier premarket summaries (``ticker``, ``date``, ``premarket_volume``);
    rows on or after ``day`` are ignored (:func:`premarket_history` builds it from the raw
    bars fetched with a candidate). A session without a row is *unknown*, not zero: the mean is
    over the observed sessions (``premarket_sessions`` says how many). Schema: ``ticker``,
    ``avg_premarket_volume_20d``, ``premarket_sessions``.
    """
    window = minute_history_sessions(day, sessions)
    return (
        history.filter(pl.col("date").is_in(window) & pl.col("premarket_volume").is_not_null())
        .unique(subset=["ticker", "date"], keep="last", maintain_order=True)
        .group_by("ticker")
        .agg(
            avg_premarket_volume_20d=pl.col("premarket_volume").mean(),
            premarket_sessions=pl.len(),
        )
        .pipe(conform, TRAILING_PREMARKET_SCHEMA)
        .sort("ticker")
    )


def watchlist_flags(
    candidates: pl.DataFrame,
    premarket: pl.DataFrame,
    avg_premarket_volume_20d: pl.DataFrame,
    rules: UniverseRules | None = None,
) -> pl.DataFrame:
    """The watchlist among the session's candidates, from premarket bars only.

    ``candidates`` are universe rows (``date``, ``ticker``, ``gap_pct`` and ``is_candidate``;
    non-candidates are dropped), ``premarket`` is :func:`premarket_summary` of the session and
    ``avg_premarket_volume_20d`` is :func:`trailing_premarket_volume`. A candidate is on the
    watchlist when ``premarket_volume > premarket_volume_min`` and ``premarket_rvol`` (premarket
    volume / trailing mean) ``> premarket_rvol_min``. Without history the RVOL is null and the
    candidate is *not* watchlisted: an unmeasured surge is not a surge. A candidate without
    minute bars has premarket volume 0. Schema: :data:`WATCHLIST_SCHEMA`, sorted by ticker.
    """
    rules = rules or UniverseRules()
    chosen = candidates
    if "is_candidate" in chosen.columns:
        chosen = chosen.filter(pl.col("is_candidate"))
    average = pl.col("avg_premarket_volume_20d")
    rvol = pl.when(average > 0).then(pl.col("premarket_volume") / average)
    watch = (pl.col("premarket_volume") > rules.premarket_volume_min) & (
        pl.col("premarket_rvol") > rules.premarket_rvol_min
    )
    return (
        chosen.select("date", "ticker", "gap_pct")
        .join(premarket.drop("date"), on="ticker", how="left")
        .join(avg_premarket_volume_20d, on="ticker", how="left")
        .with_columns(
            pl.col("premarket_volume").fill_null(0.0),
            pl.col("premarket_bars").fill_null(0),
        )
        .with_columns(premarket_rvol=rvol)
        .with_columns(is_watchlist=watch.fill_null(False))
        .pipe(conform, WATCHLIST_SCHEMA)
        .sort("ticker")
    )


def session_summary(frame: pl.DataFrame, coverage: pl.DataFrame) -> dict[str, object]:
    """A processed minute-bar session in numbers: candidates with and without bars (and why),
    halts, SSR tickers and triggers, missing regular-session minutes."""
    per_ticker = frame.group_by("ticker").agg(
        ssr=pl.col("ssr_active").any(), triggered=pl.col("ssr_trigger").any()
    )
    without = coverage.filter(pl.col("reason").is_not_null())
    return {
        "candidates": coverage.height,
        "candidates_with_bars": coverage.height - without.height,
        "candidates_without_bars": {
            str(r["ticker"]): str(r["reason"]) for r in without.iter_rows(named=True)
        },
        "halts": int(frame.get_column("halt_resumption").sum()),
        "ssr_tickers": per_ticker.filter(pl.col("ssr")).height,
        "ssr_triggers": per_ticker.filter(pl.col("triggered")).height,
        "regular_missing_minutes": int(
            frame.filter(pl.col("session") == "regular").get_column("missing_minutes_before").sum()
            or 0
        ),
    }
