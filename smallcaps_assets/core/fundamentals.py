"""The latest filing known on a session, per ticker, with dilution, cash runway and growth.

Point in time: a filing is known on D only if ``filing_date < D``. EDGAR stamps filings with the
date they were accepted, often after the close, and ``filing_date`` carries no time of day, so a
filing dated D is treated as unknown until D + 1 (the conservative reading; it may cost a few
hours of freshness, never a leak).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from smallcaps_assets.core.bars import conform

__all__ = [
    "ADJACENT_QUARTER_DAYS",
    "FUNDAMENTALS_SCHEMA",
    "YEAR_MATCH_TOLERANCE_DAYS",
    "known_filings",
    "latest_fundamentals",
]

# The previous quarter's period ends about 91 days earlier; a wider gap means a quarter is missing
# and a "QoQ" change would span two quarters.
ADJACENT_QUARTER_DAYS: Final = (60, 120)
# Fallback match for the year-ago filing when fiscal period/year are missing or shifted.
YEAR_MATCH_TOLERANCE_DAYS: Final = 20
_DAYS_PER_QUARTER: Final = 365.25 / 4

FUNDAMENTALS_SCHEMA: Final = pl.Schema(
    {
        "date": pl.Date(),
        "ticker": pl.String(),
        "cik": pl.String(),
        "filing_date": pl.Date(),
        "end_date": pl.Date(),
        "fiscal_period": pl.String(),
        "fiscal_year": pl.String(),
        "timeframe": pl.String(),
        "period_quarters": pl.Int64(),
        "days_since_filing": pl.Int64(),
        "shares_outstanding": pl.Float64(),
        "working_capital": pl.Float64(),
        "operating_cash_flow": pl.Float64(),
        "revenues": pl.Float64(),
        "previous_end_date": pl.Date(),
        "shares_change_pct": pl.Float64(),
        "cash_burn_quarterly": pl.Float64(),
        "months_of_runway": pl.Float64(),
        "revenue_growth_qoq": pl.Float64(),
        "year_ago_end_date": pl.Date(),
        "revenue_growth_yoy": pl.Float64(),
        "shares_outstanding_current": pl.Float64(),
        "shares_current_as_of": pl.Date(),
        "shares_change_since_filing_pct": pl.Float64(),
    }
)


def _growth(current: pl.Expr, base: pl.Expr) -> pl.Expr:
    """current / base - 1, null unless the base is a positive number (growth off <= 0 is noise)."""
    return pl.when(base > 0).then(current / base - 1.0)


def known_filings(filings: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Filings visible on ``day``, one per (ticker, period end), sorted by ticker and end date.

    Keeps ``filing_date < day`` rows with a ticker, drops trailing-twelve-month rows (they would
    double count flows), and resolves several filings of one period end: a quarterly row beats an
    annual one (flows are compared per quarter) and, within that, the latest filing (an
    amendment) wins.
    """
    quarterly_first = (pl.col("timeframe") != "annual").fill_null(True)
    return (
        filings.filter(
            (pl.col("filing_date") < day)
            & pl.col("ticker").is_not_null()
            & (pl.col("timeframe") != "ttm").fill_null(True)
        )
        .sort("ticker", "end_date", quarterly_first, "filing_date")
        .unique(subset=["ticker", "end_date"], keep="last", maintain_order=True)
    )


def latest_fundamentals(
    filings_up_to_d: pl.DataFrame,
    day: dt.date,
    *,
    shares_history: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per ticker, the most recent period among filings known on ``day`` (``filing_date < day``).

    ``filings_up_to_d`` has the raw financials schema and may hold any amount of history
    (including filings dated on or after ``day``, which are ignored). "Most recent" is the latest
    period ``end_date``, so an amendment of an old period filed last never displaces the newest
    quarter. Derived columns:

    * ``shares_outstanding``: diluted average shares, else basic.
    * ``period_quarters``: the period's length in quarters (from start/end dates, else 4 for an
      annual row and 1 otherwise); flows are divided by it before any comparison.
    * ``shares_change_pct``: vs the previous known period, whatever its distance
      (``previous_end_date`` says which).
    * ``cash_burn_quarterly``: ``-operating_cash_flow`` per quarter when negative, 0.0 when the
      business generates cash, null when unreported.
    * ``working_capital``: current assets - current liabilities. Real ``/vX/reference/financials``
      filings carry no cash line (``balance_sheet`` has assets, current assets and liabilities,
      equity...), so liquidity is measured by what they do carry.
    * ``months_of_runway`` = max(working capital, 0) / (burn / 3): months the net current
      assets cover the operating burn; 0 when current liabilities exceed current assets, null
      when there is no burn or either balance-sheet figure is missing.
    * ``revenue_growth_qoq``: vs the previous period if it ended 60 to 120 days earlier, else null.
    * ``revenue_growth_yoy``: vs the year-ago period: same fiscal period of the previous fiscal
      year, else the period ending 365 ± 20 days earlier (``year_ago_end_date``).
    * Growth and change columns are null when the base is missing or not positive.

    ``shares_history`` (optional; ``ticker``, ``as_of``, ``share_class_shares_outstanding``,
    ``weighted_shares_outstanding``, e.g. the raw ticker details over time) adds the latest share
    count dated before ``day`` and its change vs the filing's shares, which catches offerings
    made since the last filing. Without it those three columns are null.

    Schema: :data:`FUNDAMENTALS_SCHEMA`, one row per ticker, sorted by ticker.
    """
    start, end = pl.col("start_date"), pl.col("end_date")
    annual = (pl.col("timeframe") == "annual") | (pl.col("fiscal_period") == "FY")
    period_quarters = (
        pl.when(start.is_not_null() & (end > start))
        .then(((end - start).dt.total_days() / _DAYS_PER_QUARTER).round().clip(lower_bound=1))
        .when(annual.fill_null(False))
        .then(pl.lit(4))
        .otherwise(pl.lit(1))
        .cast(pl.Int64)
    )
    filings = known_filings(filings_up_to_d, day).with_columns(
        shares_outstanding=pl.coalesce("diluted_average_shares", "basic_average_shares"),
        period_quarters=period_quarters,
        fiscal_year_number=pl.col("fiscal_year").cast(pl.Int32, strict=False),
    )
    filings = filings.with_columns(
        revenue_per_quarter=pl.col("revenues") / pl.col("period_quarters"),
        cash_flow_per_quarter=pl.col("operating_cash_flow") / pl.col("period_quarters"),
    )

    previous = pl.col("previous_end_date")
    gap_days = (end - previous).dt.total_days()
    adjacent = gap_days.is_between(*ADJACENT_QUARTER_DAYS)
    with_previous = filings.with_columns(
        previous_end_date=end.shift(1).over("ticker"),
        _previous_shares=pl.col("shares_outstanding").shift(1).over("ticker"),
        _previous_revenue=pl.col("revenue_per_quarter").shift(1).over("ticker"),
    ).with_columns(
        shares_change_pct=_growth(pl.col("shares_outstanding"), pl.col("_previous_shares")),
        revenue_growth_qoq=pl.when(adjacent).then(
            _growth(pl.col("revenue_per_quarter"), pl.col("_previous_revenue"))
        ),
    )
    latest = with_previous.group_by("ticker").tail(1)

    burn = pl.col("cash_burn_quarterly")
    out = (
        latest.join(_year_ago(latest, filings), on="ticker", how="left")
        .with_columns(
            date=pl.lit(day),
            days_since_filing=(pl.lit(day) - pl.col("filing_date")).dt.total_days(),
            revenue_growth_yoy=_growth(pl.col("revenue_per_quarter"), pl.col("_year_ago_revenue")),
            cash_burn_quarterly=pl.when(pl.col("cash_flow_per_quarter") < 0)
            .then(-pl.col("cash_flow_per_quarter"))
            .when(pl.col("cash_flow_per_quarter").is_not_null())
            .then(pl.lit(0.0)),
        )
        .with_columns(working_capital=pl.col("current_assets") - pl.col("current_liabilities"))
        .with_columns(
            months_of_runway=pl.when(burn > 0).then(
                pl.col("working_capital").clip(lower_bound=0.0) / (burn / 3.0)
            )
        )
        .join(_current_shares(shares_history, day), on="ticker", how="left")
        .with_columns(
            shares_change_since_filing_pct=_growth(
                pl.col("shares_outstanding_current"), pl.col("shares_outstanding")
            )
        )
    )
    return out.pipe(conform, FUNDAMENTALS_SCHEMA).sort("ticker")


def _year_ago(latest: pl.DataFrame, filings: pl.DataFrame) -> pl.DataFrame:
    """Per ticker of ``latest``: the year-ago period's end date and per-quarter revenue."""
    candidates = latest.select(
        "ticker",
        pl.col("end_date").alias("_end"),
        pl.col("fiscal_period").alias("_period"),
        pl.col("fiscal_year_number").alias("_year"),
    ).join(filings, on="ticker", how="inner")
    same_fiscal_slot = (
        (pl.col("fiscal_period") == pl.col("_period"))
        & (pl.col("fiscal_year_number") == pl.col("_year") - 1)
    ).fill_null(False)
    distance = ((pl.col("_end") - pl.col("end_date")).dt.total_days() - 365).abs()
    near_a_year = distance <= YEAR_MATCH_TOLERANCE_DAYS
    return (
        candidates.filter((pl.col("end_date") < pl.col("_end")) & (same_fiscal_slot | near_a_year))
        # Best match first: the same fiscal slot, then the end date closest to a year back.
        .sort("ticker", same_fiscal_slot, distance, descending=[False, True, False])
        .group_by("ticker", maintain_order=True)
        .first()
        .select(
            "ticker",
            pl.col("end_date").alias("year_ago_end_date"),
            pl.col("revenue_per_quarter").alias("_year_ago_revenue"),
        )
    )


def _current_shares(shares_history: pl.DataFrame | None, day: dt.date) -> pl.DataFrame:
    """Latest share count dated strictly before ``day`` per ticker (empty frame when absent)."""
    schema = {
        "ticker": pl.String(),
        "shares_outstanding_current": pl.Float64(),
        "shares_current_as_of": pl.Date(),
    }
    if shares_history is None:
        return pl.DataFrame(schema=schema)
    shares = pl.coalesce("share_class_shares_outstanding", "weighted_shares_outstanding")
    return (
        shares_history.filter((pl.col("as_of") < day) & shares.is_not_null())
        .sort("ticker", "as_of")
        .group_by("ticker")
        .last()
        .select(
            "ticker",
            shares.alias("shares_outstanding_current"),
            pl.col("as_of").alias("shares_current_as_of"),
        )
    )
