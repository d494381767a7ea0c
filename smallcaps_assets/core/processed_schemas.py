"""Pandera models of the processed datasets, plus the point-in-time checks a model cannot make.

Like the raw models (``core/schemas.py``) they never coerce and reject unknown columns; each
model's columns and dtypes equal the ``*_SCHEMA`` constant of the module that builds the frame
(:data:`PROCESSED_SCHEMAS`, held together by a unit test). Validate eager DataFrames.

A model sees one frame, not the partition it belongs to, so it can check that a row is
consistent with its own ``date`` column (a filing dated before it, a bar inside its session) but
not that ``date`` is the partition's session. :func:`check_point_in_time` takes the session and
closes that gap; run both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Annotated, Final

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from smallcaps_assets.core import bars, corporate, fundamentals, minute, news, universe
from smallcaps_assets.core.schemas import CIK_PATTERN, OHLC, TICKER_PATTERN
from smallcaps_assets.core.validation import CheckReport, rules_report

__all__ = [
    "PROCESSED_MODELS",
    "PROCESSED_SCHEMAS",
    "ProcessedCorporateActions",
    "ProcessedDailyBars",
    "ProcessedFundamentals",
    "ProcessedMinuteBars",
    "ProcessedNewsDaily",
    "ProcessedUniverse",
    "ProcessedWatchlist",
    "check_point_in_time",
    "minute_bars_checks",
    "universe_model",
]

UtcMillis = Annotated[pl.Datetime, "ms", "UTC"]
UtcMicros = Annotated[pl.Datetime, "us", "UTC"]
NewYorkMillis = Annotated[pl.Datetime, "ms", minute.NY_ZONE]


def _ohlc_consistent() -> pl.Expr:
    return (pl.col("high") >= pl.max_horizontal("open", "close")) & (
        pl.col("low") <= pl.min_horizontal("open", "close")
    )


def _implies(condition: pl.Expr, consequence: pl.Expr) -> pl.Expr:
    return ~condition | consequence


class ProcessedDailyBars(pa.DataFrameModel):
    """Cleaned unadjusted daily bars of one session with the split index I(D)."""

    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    date: pl.Date
    open: pl.Float64 = pa.Field(gt=0)
    high: pl.Float64 = pa.Field(gt=0)
    low: pl.Float64 = pa.Field(gt=0)
    close: pl.Float64 = pa.Field(gt=0)
    volume: pl.Float64 = pa.Field(ge=0)
    vwap: pl.Float64 = pa.Field(nullable=True, gt=0)
    transactions: pl.Int64 = pa.Field(nullable=True, ge=0)
    split_factor_to_d: pl.Float64 = pa.Field(gt=0)
    quality_flag: pl.String = pa.Field(isin=bars.QUALITY_FLAGS)

    @pa.dataframe_check
    @classmethod
    def ohlc_consistent_unless_flagged(cls, data: PolarsData) -> pl.LazyFrame:
        flagged = pl.col("quality_flag") == "ohlc_inconsistent"
        return data.lazyframe.select(flagged | _ohlc_consistent())

    @pa.dataframe_check
    @classmethod
    def finite_prices(cls, data: PolarsData) -> pl.LazyFrame:
        # NaN passes `gt=0` in Polars (NaN sorts above every number).
        prices = (*OHLC, "split_factor_to_d")
        return data.lazyframe.select(pl.all_horizontal(pl.col(c).is_finite() for c in prices))

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "date"]  # noqa: RUF012 (Pandera reads a plain class attribute)


class ProcessedCorporateActions(pa.DataFrameModel):
    """Split and dividend index known on one session, one row per ticker."""

    date: pl.Date
    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    last_split_date: pl.Date = pa.Field(nullable=True)
    last_split_ratio: pl.Float64 = pa.Field(nullable=True, gt=0)
    last_split_is_reverse: pl.Boolean = pa.Field(nullable=True)
    last_reverse_split_date: pl.Date = pa.Field(nullable=True)
    days_since_reverse_split: pl.Int64 = pa.Field(nullable=True, ge=0)
    split_count_12m: pl.Int64 = pa.Field(ge=0)
    reverse_split_count_12m: pl.Int64 = pa.Field(ge=0)
    split_factor_to_d: pl.Float64 = pa.Field(gt=0)
    last_ex_dividend_date: pl.Date = pa.Field(nullable=True)
    last_dividend_cash: pl.Float64 = pa.Field(nullable=True, ge=0)
    dividend_count_12m: pl.Int64 = pa.Field(ge=0)

    @pa.dataframe_check
    @classmethod
    def actions_not_after_date(cls, data: PolarsData) -> pl.LazyFrame:
        dated = ("last_split_date", "last_reverse_split_date", "last_ex_dividend_date")
        return data.lazyframe.select(
            pl.all_horizontal((pl.col(c) <= pl.col("date")).fill_null(True) for c in dated)
        )

    @pa.dataframe_check
    @classmethod
    def reverse_flag_matches_ratio(cls, data: PolarsData) -> pl.LazyFrame:
        reverse = pl.col("last_split_ratio") < 1
        return data.lazyframe.select((pl.col("last_split_is_reverse") == reverse).fill_null(True))

    @pa.dataframe_check
    @classmethod
    def reverse_split_counted(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("reverse_split_count_12m") <= pl.col("split_count_12m"))

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "date"]  # noqa: RUF012


class ProcessedFundamentals(pa.DataFrameModel):
    """Latest filing known on one session (``filing_date < date``), one row per ticker."""

    date: pl.Date
    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    cik: pl.String = pa.Field(str_matches=CIK_PATTERN)
    filing_date: pl.Date
    end_date: pl.Date
    fiscal_period: pl.String = pa.Field(nullable=True)
    fiscal_year: pl.String = pa.Field(nullable=True, str_matches=r"^[0-9]{4}$")
    timeframe: pl.String = pa.Field(nullable=True, isin=("quarterly", "annual"))
    period_quarters: pl.Int64 = pa.Field(ge=1)
    days_since_filing: pl.Int64 = pa.Field(ge=1)
    shares_outstanding: pl.Float64 = pa.Field(nullable=True, ge=0)
    working_capital: pl.Float64 = pa.Field(nullable=True)
    operating_cash_flow: pl.Float64 = pa.Field(nullable=True)
    revenues: pl.Float64 = pa.Field(nullable=True)
    previous_end_date: pl.Date = pa.Field(nullable=True)
    shares_change_pct: pl.Float64 = pa.Field(nullable=True, ge=-1)
    cash_burn_quarterly: pl.Float64 = pa.Field(nullable=True, ge=0)
    months_of_runway: pl.Float64 = pa.Field(nullable=True, ge=0)
    revenue_growth_qoq: pl.Float64 = pa.Field(nullable=True)
    year_ago_end_date: pl.Date = pa.Field(nullable=True)
    revenue_growth_yoy: pl.Float64 = pa.Field(nullable=True)
    shares_outstanding_current: pl.Float64 = pa.Field(nullable=True, ge=0)
    shares_current_as_of: pl.Date = pa.Field(nullable=True)
    shares_change_since_filing_pct: pl.Float64 = pa.Field(nullable=True, ge=-1)

    @pa.dataframe_check
    @classmethod
    def filed_before_date(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("filing_date") < pl.col("date"))

    @pa.dataframe_check
    @classmethod
    def comparison_periods_earlier(cls, data: PolarsData) -> pl.LazyFrame:
        earlier = ("previous_end_date", "year_ago_end_date")
        return data.lazyframe.select(
            pl.all_horizontal((pl.col(c) < pl.col("end_date")).fill_null(True) for c in earlier)
        )

    @pa.dataframe_check
    @classmethod
    def current_shares_before_date(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("shares_current_as_of") < pl.col("date")).fill_null(True)
        )

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "date"]  # noqa: RUF012


class ProcessedNewsDaily(pa.DataFrameModel):
    """News counts, sentiment and topic flags per ticker and session."""

    date: pl.Date
    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    article_count: pl.Int64 = pa.Field(ge=1)
    positive_count: pl.Int64 = pa.Field(ge=0)
    negative_count: pl.Int64 = pa.Field(ge=0)
    neutral_count: pl.Int64 = pa.Field(ge=0)
    sentiment_mean: pl.Float64 = pa.Field(in_range={"min_value": -1.0, "max_value": 1.0})
    has_fda: pl.Boolean
    has_merger: pl.Boolean
    has_offering: pl.Boolean
    has_bankruptcy: pl.Boolean
    has_halt: pl.Boolean
    has_earnings: pl.Boolean
    has_contract: pl.Boolean
    has_partnership: pl.Boolean
    first_published_utc: UtcMicros
    last_published_utc: UtcMicros

    @pa.dataframe_check
    @classmethod
    def counts_add_up(cls, data: PolarsData) -> pl.LazyFrame:
        parts = pl.col("positive_count") + pl.col("negative_count") + pl.col("neutral_count")
        return data.lazyframe.select(parts == pl.col("article_count"))

    @pa.dataframe_check
    @classmethod
    def first_not_after_last(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("first_published_utc") <= pl.col("last_published_utc"))

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "date"]  # noqa: RUF012


class ProcessedUniverse(pa.DataFrameModel):
    """Small-cap universe members of one session, screened with ``_rules``.

    The thresholds are configuration, so the band checks read them from the class:
    :func:`universe_model` makes a model for other rules; this one holds the defaults.
    """

    _rules = universe.UniverseRules()

    date: pl.Date
    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    name: pl.String
    cik: pl.String = pa.Field(nullable=True, str_matches=CIK_PATTERN)
    primary_exchange: pl.String = pa.Field(isin=universe.MAJOR_EXCHANGES)
    # A list, not a 1-tuple: Pandera 0.35 mis-reads a single-element tuple in `isin`.
    type: pl.String = pa.Field(isin=[universe.COMMON_STOCK])
    previous_close: pl.Float64 = pa.Field(gt=0)
    split_factor_on_day: pl.Float64 = pa.Field(gt=0)
    previous_close_adjusted: pl.Float64 = pa.Field(gt=0)
    shares_outstanding: pl.Float64 = pa.Field(ge=0)
    market_cap: pl.Float64 = pa.Field(ge=0)
    open: pl.Float64 = pa.Field(nullable=True, gt=0)
    gap_pct: pl.Float64 = pa.Field(nullable=True)
    is_candidate: pl.Boolean

    @pa.dataframe_check
    @classmethod
    def previous_close_inside_band(cls, data: PolarsData) -> pl.LazyFrame:
        rules = cls._rules
        return data.lazyframe.select(
            pl.col("previous_close").is_between(rules.price_min, rules.price_max)
        )

    @pa.dataframe_check
    @classmethod
    def small_enough(cls, data: PolarsData) -> pl.LazyFrame:
        rules = cls._rules
        return data.lazyframe.select(
            (pl.col("market_cap") < rules.market_cap_max)
            & (pl.col("shares_outstanding") < rules.shares_max)
        )

    @pa.dataframe_check
    @classmethod
    def candidates_gapped(cls, data: PolarsData) -> pl.LazyFrame:
        gapped = (pl.col("gap_pct") >= cls._rules.gap_min).fill_null(False)
        return data.lazyframe.select(pl.col("is_candidate") == gapped)

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "date"]  # noqa: RUF012


def universe_model(rules: universe.UniverseRules) -> type[ProcessedUniverse]:
    """A :class:`ProcessedUniverse` whose band checks use ``rules``."""
    model: type[ProcessedUniverse] = type(
        "ProcessedUniverse", (ProcessedUniverse,), {"_rules": rules}
    )
    return model


class ProcessedMinuteBars(pa.DataFrameModel):
    """One session's minute bars, 04:00-20:00 ET, with session, gap, halt and SSR columns."""

    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    ts: UtcMillis
    ts_et: NewYorkMillis
    date: pl.Date
    session: pl.String = pa.Field(isin=minute.SESSIONS)
    open: pl.Float64 = pa.Field(gt=0)
    high: pl.Float64 = pa.Field(gt=0)
    low: pl.Float64 = pa.Field(gt=0)
    close: pl.Float64 = pa.Field(gt=0)
    volume: pl.Float64 = pa.Field(ge=0)
    vwap: pl.Float64 = pa.Field(nullable=True, gt=0)
    transactions: pl.Int64 = pa.Field(nullable=True, ge=0)
    missing_minutes_before: pl.Int64 = pa.Field(nullable=True, ge=0)
    halt_resumption: pl.Boolean
    halts_so_far: pl.Int64 = pa.Field(ge=0)
    ssr_trigger: pl.Boolean
    ssr_active: pl.Boolean

    @pa.dataframe_check
    @classmethod
    def ohlc_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_ohlc_consistent())

    @pa.dataframe_check
    @classmethod
    def inside_session_window(cls, data: PolarsData) -> pl.LazyFrame:
        at = pl.col("ts_et").dt.time()
        return data.lazyframe.select(
            (at >= minute.PRE_OPEN)
            & (at < minute.POST_CLOSE)
            & (pl.col("ts_et").dt.date() == pl.col("date"))
        )

    @pa.dataframe_check
    @classmethod
    def session_matches_time(cls, data: PolarsData) -> pl.LazyFrame:
        # The regular session ends at 16:00, or at 13:00 on half days.
        at, session = pl.col("ts_et").dt.time(), pl.col("session")
        return data.lazyframe.select(
            ((session == "pre") == (at < minute.REGULAR_OPEN))
            & _implies(session == "regular", at < dt.time(16, 0))
            & _implies(session == "post", at >= dt.time(13, 0))
        )

    @pa.dataframe_check
    @classmethod
    def same_instant(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("ts") == pl.col("ts_et").dt.convert_time_zone("UTC"))

    @pa.dataframe_check
    @classmethod
    def halts_in_regular_session(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            _implies(pl.col("halt_resumption"), pl.col("session") == "regular")
        )

    @pa.dataframe_check
    @classmethod
    def ssr_trigger_activates(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_implies(pl.col("ssr_trigger"), pl.col("ssr_active")))

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "ts"]  # noqa: RUF012


class ProcessedWatchlist(pa.DataFrameModel):
    """A session's candidates with premarket activity and the watchlist flag."""

    date: pl.Date
    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    gap_pct: pl.Float64 = pa.Field(nullable=True)
    premarket_volume: pl.Float64 = pa.Field(ge=0)
    premarket_high: pl.Float64 = pa.Field(nullable=True, gt=0)
    premarket_bars: pl.Int64 = pa.Field(ge=0)
    avg_premarket_volume_20d: pl.Float64 = pa.Field(nullable=True, ge=0)
    premarket_rvol: pl.Float64 = pa.Field(nullable=True, ge=0)
    is_watchlist: pl.Boolean

    @pa.dataframe_check
    @classmethod
    def watchlist_needs_rvol(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            _implies(pl.col("is_watchlist"), pl.col("premarket_rvol").is_not_null())
        )

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "date"]  # noqa: RUF012


PROCESSED_MODELS: Final[dict[str, type[pa.DataFrameModel]]] = {
    "daily_bars": ProcessedDailyBars,
    "corporate_actions": ProcessedCorporateActions,
    "fundamentals": ProcessedFundamentals,
    "news_daily": ProcessedNewsDaily,
    "universe": ProcessedUniverse,
    "minute_bars": ProcessedMinuteBars,
}

PROCESSED_SCHEMAS: Final[dict[str, pl.Schema]] = {
    "daily_bars": bars.PROCESSED_DAILY_BARS_SCHEMA,
    "corporate_actions": corporate.CORPORATE_ACTIONS_SCHEMA,
    "fundamentals": fundamentals.FUNDAMENTALS_SCHEMA,
    "news_daily": news.NEWS_DAILY_SCHEMA,
    "universe": universe.UNIVERSE_SCHEMA,
    "minute_bars": minute.PROCESSED_MINUTE_BARS_SCHEMA,
}


# -- checks that need the session ---------------------------------------------------------------
def _on_day(day: dt.date) -> dict[str, pl.Expr]:
    return {"date is the session": pl.col("date") == day}


def _fundamentals_rules(day: dt.date) -> dict[str, pl.Expr]:
    return {
        **_on_day(day),
        "filing_date before the session": pl.col("filing_date") < day,
        "share count dated before the session": (pl.col("shares_current_as_of") < day).fill_null(
            True
        ),
    }


def _corporate_rules(day: dt.date) -> dict[str, pl.Expr]:
    dated = ("last_split_date", "last_reverse_split_date", "last_ex_dividend_date")
    return {
        **_on_day(day),
        "actions executed by the session": pl.all_horizontal(
            (pl.col(c) <= day).fill_null(True) for c in dated
        ),
    }


def _news_rules(day: dt.date) -> dict[str, pl.Expr]:
    start, end = news.news_window_utc(day)
    return {
        **_on_day(day),
        "published inside the session's window": (pl.col("first_published_utc") >= start)
        & (pl.col("last_published_utc") < end),
    }


def _minute_rules(day: dt.date) -> dict[str, pl.Expr]:
    return {**_on_day(day), "bar starts on the session": pl.col("ts_et").dt.date() == day}


_POINT_IN_TIME_RULES: Final[Mapping[str, Callable[[dt.date], dict[str, pl.Expr]]]] = {
    "daily_bars": _on_day,
    "corporate_actions": _corporate_rules,
    "fundamentals": _fundamentals_rules,
    "news_daily": _news_rules,
    "universe": _on_day,
    "minute_bars": _minute_rules,
    "watchlist": _on_day,
}


def check_point_in_time(
    dataset: str, frame: pl.DataFrame, day: dt.date, *, partition: str = ""
) -> CheckReport:
    """Rows of a processed ``dataset`` frame that use information from after session ``day``.

    Every dataset: ``date == day``. Fundamentals: ``filing_date < day`` (a filing dated D is
    unknown on D) and a current share count dated before D. Corporate actions: every action
    date on or before D. News: first/last article inside D's news window. Minute bars: each bar
    starts on D. A null check result counts as a failure.
    """
    return rules_report(
        frame, _POINT_IN_TIME_RULES[dataset](day), partition=partition, label=dataset
    )


def minute_bars_checks(
    frame: pl.DataFrame, coverage: pl.DataFrame, day: dt.date, *, partition: str = ""
) -> dict[str, CheckReport]:
    """Meaning checks of a session's processed minute bars: one bar per (ticker, ts) inside
    04:00-20:00 ET of the session, and every candidate with bars or a logged reason."""
    window = (pl.col("ts_et").dt.time() >= minute.PRE_OPEN) & (
        pl.col("ts_et").dt.time() < minute.POST_CLOSE
    )
    return {
        "bars_unique_and_in_session": rules_report(
            frame,
            {
                "one bar per (ticker, ts)": ~pl.struct("ticker", "ts").is_duplicated(),
                "bar starts 04:00-20:00 ET on the session": window
                & (pl.col("ts_et").dt.date() == day),
            },
            partition=partition,
            label="minute_bars",
        ),
        "candidates_covered": rules_report(
            coverage,
            {
                "candidate has bars or a logged reason": pl.col("reason").fill_null("")
                != "not_requested"
            },
            partition=partition,
            label="minute_bars",
        ),
    }
