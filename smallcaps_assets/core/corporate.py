"""The split and dividend index known on a session: one row per ticker with any action so far.

Reverse splits are the small-cap tell: issuers do them to stay above an exchange's minimum bid,
and they tend to precede offerings, so the index keeps the date of the last one separately from
the last split of any kind.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from smallcaps_assets.core.bars import conform, known_splits

__all__ = ["CORPORATE_ACTIONS_SCHEMA", "LOOKBACK_DAYS", "corporate_actions"]

# "12 months" is the calendar window (D - 365 days, D]; a leap year shifts it by one day, which
# no action count is sensitive to.
LOOKBACK_DAYS: Final = 365

CORPORATE_ACTIONS_SCHEMA: Final = pl.Schema(
    {
        "date": pl.Date(),
        "ticker": pl.String(),
        "last_split_date": pl.Date(),
        "last_split_ratio": pl.Float64(),
        "last_split_is_reverse": pl.Boolean(),
        "last_reverse_split_date": pl.Date(),
        "days_since_reverse_split": pl.Int64(),
        "split_count_12m": pl.Int64(),
        "reverse_split_count_12m": pl.Int64(),
        "split_factor_to_d": pl.Float64(),
        "last_ex_dividend_date": pl.Date(),
        "last_dividend_cash": pl.Float64(),
        "dividend_count_12m": pl.Int64(),
    }
)


def corporate_actions(
    splits_up_to_d: pl.DataFrame, dividends_up_to_d: pl.DataFrame, day: dt.date
) -> pl.DataFrame:
    """Per ticker, the splits and dividends with execution / ex-dividend date on or before ``day``.

    Inputs have the raw splits and dividends schemas; rows dated after ``day`` are ignored, so
    passing more history than needed is safe. Conventions:

    * ``last_split_ratio`` is ``split_to / split_from`` (2-for-1 = 2.0, 1-for-10 = 0.1) and
      ``last_split_is_reverse`` means ``split_from > split_to``; both are null with no split.
    * ``days_since_reverse_split`` counts calendar days from the last reverse split to ``day``
      (0 when it executes on ``day``), null if the ticker never reverse-split.
    * The ``*_12m`` counts cover execution / ex dates in ``(day - 365, day]``; 0 when none.
    * ``split_factor_to_d`` is the cumulative index of :mod:`smallcaps_assets.core.bars`.
    * ``last_dividend_cash`` sums every dividend on the last ex date (a regular and a special
      dividend can share one); amounts are in the dividend's own currency.
    * Duplicate split rows (ticker, execution_date) and dividend rows (ticker, ex date, amount)
      count once; rows with a non-positive split side or a negative/NaN cash amount are ignored.

    Schema: :data:`CORPORATE_ACTIONS_SCHEMA`, one row per ticker, sorted by ticker.
    """
    window_start = day - dt.timedelta(days=LOOKBACK_DAYS)
    in_window = pl.col("_when") > window_start

    splits = known_splits(splits_up_to_d, day).rename({"execution_date": "_when"})
    is_reverse = pl.col("split_from") > pl.col("split_to")
    split_index = splits.group_by("ticker").agg(
        last_split_date=pl.col("_when").last(),
        last_split_ratio=pl.col("ratio").last(),
        last_split_is_reverse=is_reverse.last(),
        last_reverse_split_date=pl.col("_when").filter(is_reverse).max(),
        split_count_12m=in_window.sum(),
        reverse_split_count_12m=(in_window & is_reverse).sum(),
        split_factor_to_d=(1.0 / pl.col("ratio")).product(),
    )

    cash = pl.col("cash_amount")
    dividends = (
        dividends_up_to_d.select("ticker", "ex_dividend_date", "cash_amount")
        .filter(
            (pl.col("ex_dividend_date") <= day)
            & pl.col("ticker").is_not_null()
            & (cash.is_finite() & (cash >= 0)).fill_null(False)
        )
        .unique()
        .rename({"ex_dividend_date": "_when"})
    )
    dividend_index = dividends.group_by("ticker").agg(
        last_ex_dividend_date=pl.col("_when").max(),
        last_dividend_cash=cash.filter(pl.col("_when") == pl.col("_when").max()).sum(),
        dividend_count_12m=in_window.sum(),
    )

    days_since = (pl.lit(day) - pl.col("last_reverse_split_date")).dt.total_days()
    return (
        split_index.join(dividend_index, on="ticker", how="full", coalesce=True)
        .with_columns(
            date=pl.lit(day),
            days_since_reverse_split=days_since,
            split_factor_to_d=pl.col("split_factor_to_d").fill_null(1.0),
            split_count_12m=pl.col("split_count_12m").fill_null(0),
            reverse_split_count_12m=pl.col("reverse_split_count_12m").fill_null(0),
            dividend_count_12m=pl.col("dividend_count_12m").fill_null(0),
        )
        .pipe(conform, CORPORATE_ACTIONS_SCHEMA)
        .sort("ticker")
    )
