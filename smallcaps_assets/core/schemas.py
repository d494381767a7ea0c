"""Pandera models of the raw datasets: the contract between the Polygon parsers and the rest.

The parsers already produce exact dtypes, so the models never coerce (``coerce = False``) and
reject unknown columns (``strict = True``); a dtype drift is a bug to surface, not to paper over.
Validate eager DataFrames: on a LazyFrame Pandera only checks the schema, not the data.

Each model is the one statement of its dataset's columns, their order and dtypes: the plain Polars
schemas the parsers build frames with (``smallcaps_assets.sources.parsers.RAW_SCHEMAS``) are
derived from these models by :func:`polars_schema`, and the bar columns every module names
(:data:`OHLC`, :data:`OHLCV`, :data:`BAR_VALUES`) from the bar model.
"""

from __future__ import annotations

from typing import Annotated, Final

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

__all__ = [
    "BAR_VALUES",
    "CIK_PATTERN",
    "OHLC",
    "OHLCV",
    "RAW_MODELS",
    "SENTIMENTS",
    "TICKER_PATTERN",
    "RawDailyBars",
    "RawDividends",
    "RawFinancials",
    "RawMinuteBars",
    "RawNews",
    "RawSplits",
    "RawTickerDetails",
    "RawTickers",
    "polars_schema",
]

# Upper-case root with digits, "." and "-" for share classes (BRK.A, CIG.C). Lower-case letters
# are allowed after the first character because Polygon writes preferreds as e.g. "KIMpL"
# (grouped-daily spec example) and when-issued lines with a lower-case suffix.
TICKER_PATTERN: Final = r"^[A-Z][A-Za-z0-9.\-]{0,9}$"
# SEC Central Index Key; Polygon zero-pads it to 10 digits, but an unpadded key is still valid.
CIK_PATTERN: Final = r"^[0-9]{1,10}$"
FIGI_PATTERN: Final = r"^[A-Z0-9]{12}$"
MARKETS: Final = ("stocks", "crypto", "fx", "otc", "indices")
# /v3/reference/dividends dividend_type: cash, special cash, long- and short-term capital gain.
DIVIDEND_TYPES: Final = ("CD", "SC", "LT", "ST")
FINANCIAL_TIMEFRAMES: Final = ("quarterly", "annual", "ttm")
SENTIMENTS: Final = ("positive", "neutral", "negative")

UtcMicros = Annotated[pl.Datetime, "us", "UTC"]
UtcMillis = Annotated[pl.Datetime, "ms", "UTC"]
StringList = Annotated[pl.List, pl.String()]
InsightList = Annotated[
    pl.List,
    pl.Struct({"ticker": pl.String, "sentiment": pl.String, "sentiment_reasoning": pl.String}),
]


def polars_schema(model: type[pa.DataFrameModel] | pa.DataFrameSchema) -> pl.Schema:
    """The plain Polars schema of a Pandera model class or schema object, in declared order."""
    schema = model if isinstance(model, pa.DataFrameSchema) else model.to_schema()
    return pl.Schema({name: column.dtype.type for name, column in schema.columns.items()})


class RawTickers(pa.DataFrameModel):
    """``/v3/reference/tickers`` on one date, active and delisted listings together."""

    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    name: pl.String
    market: pl.String = pa.Field(isin=MARKETS)
    locale: pl.String = pa.Field(nullable=True)
    primary_exchange: pl.String = pa.Field(nullable=True)
    type: pl.String = pa.Field(nullable=True)
    active: pl.Boolean
    currency_name: pl.String = pa.Field(nullable=True)
    cik: pl.String = pa.Field(nullable=True, str_matches=CIK_PATTERN)
    composite_figi: pl.String = pa.Field(nullable=True, str_matches=FIGI_PATTERN)
    share_class_figi: pl.String = pa.Field(nullable=True, str_matches=FIGI_PATTERN)
    last_updated_utc: UtcMicros = pa.Field(nullable=True)
    delisted_utc: UtcMicros = pa.Field(nullable=True)
    as_of: pl.Date

    class Config:
        strict = True
        coerce = False
        # A symbol can be reused: a delisted company and a new listing (or several delisted ones)
        # share it, so the listing's status and delisting time are part of the key.
        unique = ["ticker", "as_of", "active", "delisted_utc"]  # noqa: RUF012 (Pandera reads a plain class attribute)


class RawTickerDetails(pa.DataFrameModel):
    """``/v3/reference/tickers/{ticker}`` as of one date."""

    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    as_of: pl.Date
    name: pl.String
    market: pl.String = pa.Field(nullable=True, isin=MARKETS)
    locale: pl.String = pa.Field(nullable=True)
    primary_exchange: pl.String = pa.Field(nullable=True)
    type: pl.String = pa.Field(nullable=True)
    active: pl.Boolean
    currency_name: pl.String = pa.Field(nullable=True)
    cik: pl.String = pa.Field(nullable=True, str_matches=CIK_PATTERN)
    list_date: pl.Date = pa.Field(nullable=True)
    delisted_utc: UtcMicros = pa.Field(nullable=True)
    market_cap: pl.Float64 = pa.Field(nullable=True, ge=0)
    share_class_shares_outstanding: pl.Float64 = pa.Field(nullable=True, ge=0)
    weighted_shares_outstanding: pl.Float64 = pa.Field(nullable=True, ge=0)
    sic_code: pl.String = pa.Field(nullable=True)
    sic_description: pl.String = pa.Field(nullable=True)
    total_employees: pl.Int64 = pa.Field(nullable=True, ge=0)
    round_lot: pl.Int64 = pa.Field(nullable=True, gt=0)

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "as_of"]  # noqa: RUF012


# The bar models are assembled from parts so each column is declared once and still lands where
# the raw files have it: Pandera lists a model's columns base first (reverse MRO), so a bar model
# names its value part first and its key part last, e.g. ``RawDailyBars(_BarValues, _DailyKey)``
# gives ticker, date, open ... transactions, then its own otc and window_start.
class _BarTicker(pa.DataFrameModel):
    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)


class _DailyKey(_BarTicker):
    date: pl.Date


class _MinuteKey(_BarTicker):
    window_start: UtcMillis


class _BarValues(pa.DataFrameModel):
    """Columns and OHLC invariants shared by daily and minute bars."""

    open: pl.Float64 = pa.Field(gt=0)
    high: pl.Float64 = pa.Field(gt=0)
    # Raw keeps what the vendor sent: real post-market minute bars carry l: 0 prints, which the
    # processed layer repairs and counts (zero_low_repaired).
    low: pl.Float64 = pa.Field(ge=0)
    close: pl.Float64 = pa.Field(gt=0)
    volume: pl.Float64 = pa.Field(ge=0)
    vwap: pl.Float64 = pa.Field(nullable=True, gt=0)
    transactions: pl.Int64 = pa.Field(nullable=True, ge=0)

    @pa.dataframe_check
    @classmethod
    def low_not_above_open_close(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("low") <= pl.min_horizontal("open", "close"))

    @pa.dataframe_check
    @classmethod
    def high_not_below_open_close(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("high") >= pl.max_horizontal("open", "close"))

    @pa.dataframe_check
    @classmethod
    def high_not_below_low(cls, data: PolarsData) -> pl.LazyFrame:
        # Implied by the two checks above, but named so an inverted bar reads as exactly that.
        return data.lazyframe.select(pl.col("high") >= pl.col("low"))

    @pa.dataframe_check
    @classmethod
    def low_not_negative(cls, data: PolarsData) -> pl.LazyFrame:
        # Also covered by the column check; kept as a named bar invariant so a failure report
        # reads as an OHLC problem, and NaN lows (which compare false) are caught here too.
        return data.lazyframe.select(pl.col("low") >= 0)


BAR_VALUES: Final = tuple(polars_schema(_BarValues))
"""The value columns of a raw bar, in file order: open, high, low, close, volume, vwap,
transactions."""
OHLC: Final = BAR_VALUES[:4]
OHLCV: Final = BAR_VALUES[:5]


class RawDailyBars(_BarValues, _DailyKey):
    """Grouped daily bars of one session; ``window_start`` is Polygon's ``t`` (16:00 ET)."""

    otc: pl.Boolean
    window_start: UtcMillis

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "date"]  # noqa: RUF012


class RawMinuteBars(_BarValues, _MinuteKey):
    """Custom-range bars of one ticker; ``window_start`` is the start of the bar."""

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "window_start"]  # noqa: RUF012


class RawSplits(pa.DataFrameModel):
    """``/v3/reference/splits``: ``split_from`` old shares become ``split_to`` new shares."""

    id: pl.String = pa.Field(nullable=True)
    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    execution_date: pl.Date
    split_from: pl.Float64 = pa.Field(gt=0)
    split_to: pl.Float64 = pa.Field(gt=0)

    class Config:
        strict = True
        coerce = False
        unique = ["ticker", "execution_date"]  # noqa: RUF012


class RawDividends(pa.DataFrameModel):
    """``/v3/reference/dividends``."""

    id: pl.String = pa.Field(nullable=True)
    ticker: pl.String = pa.Field(str_matches=TICKER_PATTERN)
    cash_amount: pl.Float64 = pa.Field(ge=0)
    currency: pl.String = pa.Field(nullable=True)
    declaration_date: pl.Date = pa.Field(nullable=True)
    dividend_type: pl.String = pa.Field(nullable=True, isin=DIVIDEND_TYPES)
    ex_dividend_date: pl.Date
    frequency: pl.Int64 = pa.Field(nullable=True, ge=0)
    pay_date: pl.Date = pa.Field(nullable=True)
    record_date: pl.Date = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = False
        # The same ticker can pay two different amounts on one ex-date (regular plus special).
        unique = ["ticker", "ex_dividend_date", "cash_amount"]  # noqa: RUF012


class RawFinancials(pa.DataFrameModel):
    """``/vX/reference/financials``, one row per filing and listed ticker."""

    ticker: pl.String = pa.Field(nullable=True, str_matches=TICKER_PATTERN)
    cik: pl.String = pa.Field(str_matches=CIK_PATTERN)
    company_name: pl.String = pa.Field(nullable=True)
    start_date: pl.Date = pa.Field(nullable=True)
    end_date: pl.Date
    filing_date: pl.Date
    acceptance_datetime: UtcMicros = pa.Field(nullable=True)
    fiscal_period: pl.String = pa.Field(nullable=True)
    fiscal_year: pl.String = pa.Field(nullable=True, str_matches=r"^[0-9]{4}$")
    timeframe: pl.String = pa.Field(nullable=True, isin=FINANCIAL_TIMEFRAMES)
    source_filing_url: pl.String = pa.Field(nullable=True)
    # Income, cash flow and equity can all be negative; only stocks of things cannot.
    revenues: pl.Float64 = pa.Field(nullable=True)
    net_income_loss: pl.Float64 = pa.Field(nullable=True)
    operating_income_loss: pl.Float64 = pa.Field(nullable=True)
    basic_average_shares: pl.Float64 = pa.Field(nullable=True, ge=0)
    diluted_average_shares: pl.Float64 = pa.Field(nullable=True, ge=0)
    operating_cash_flow: pl.Float64 = pa.Field(nullable=True)
    assets: pl.Float64 = pa.Field(nullable=True, ge=0)
    current_assets: pl.Float64 = pa.Field(nullable=True, ge=0)
    current_liabilities: pl.Float64 = pa.Field(nullable=True, ge=0)
    liabilities: pl.Float64 = pa.Field(nullable=True, ge=0)
    equity: pl.Float64 = pa.Field(nullable=True)
    financials_json: pl.String

    @pa.dataframe_check
    @classmethod
    def period_start_not_after_end(cls, data: PolarsData) -> pl.LazyFrame:
        start, end = pl.col("start_date"), pl.col("end_date")
        return data.lazyframe.select(start.is_null() | (start <= end))

    class Config:
        strict = True
        coerce = False
        unique = ["cik", "ticker", "end_date", "filing_date", "fiscal_period"]  # noqa: RUF012


class RawNews(pa.DataFrameModel):
    """``/v2/reference/news``, one row per article."""

    id: pl.String
    published_utc: UtcMicros
    title: pl.String
    author: pl.String = pa.Field(nullable=True)
    article_url: pl.String = pa.Field(nullable=True)
    publisher_name: pl.String = pa.Field(nullable=True)
    description: pl.String = pa.Field(nullable=True)
    tickers: StringList
    keywords: StringList
    insights: InsightList

    @pa.check("insights", name="insight_sentiment_known")
    @classmethod
    def insight_sentiment_known(cls, data: PolarsData) -> pl.LazyFrame:
        sentiment_ok = pl.element().struct.field("sentiment").is_in(SENTIMENTS)
        return data.lazyframe.select(pl.col(data.key).list.eval(sentiment_ok).list.all())

    class Config:
        strict = True
        coerce = False
        unique = ["id"]  # noqa: RUF012


RAW_MODELS: Final[dict[str, type[pa.DataFrameModel]]] = {
    "tickers": RawTickers,
    "ticker_details": RawTickerDetails,
    "daily_bars": RawDailyBars,
    "splits": RawSplits,
    "dividends": RawDividends,
    "financials": RawFinancials,
    "news": RawNews,
    "minute_bars": RawMinuteBars,
}
