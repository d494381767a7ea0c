"""Processed daily bars and split adjustment, point in time.

Split arithmetic. A split row says ``split_from`` old shares became ``split_to`` new shares on
``execution_date``, the first session that trades on the new basis. Its ``ratio`` is
``split_to / split_from`` (2-for-1: 2.0, reverse 1-for-10: 0.1), and a price stamped before the
execution date is brought onto the new basis by multiplying it by ``1 / ratio`` (volumes by
``ratio``). A split executing on D therefore adjusts prices *before* D and leaves D's own prices
alone.

Point in time. Every function takes the session ``day`` (D) and ignores splits whose execution
date is after D, so appending future splits to the input never changes an output for D.

``split_factor_to_d`` on a processed bar of session t is the cumulative index
``I(t) = prod(split_from / split_to)`` over the ticker's splits executed on or before t. Because a
split executed on or before t is also executed on or before any later D, the index of two
partitions is built from nested sets of splits, and a consumer holding bars of t and D rebases
with ``price_t * I(D) / I(t)`` without reading any split newer than D.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final

import polars as pl

from smallcaps_assets.core.schemas import OHLC

__all__ = [
    "ADJUSTED_PRICE_COLUMNS",
    "ADJUSTED_SHARE_COLUMNS",
    "PROCESSED_DAILY_BARS_SCHEMA",
    "QUALITY_FLAGS",
    "SPLIT_FACTORS_SCHEMA",
    "ProcessedFrame",
    "adjust_history_to",
    "conform",
    "known_splits",
    "process_daily_bars",
    "split_adjustment_factors",
    "split_factor_to",
    "valid_price",
]

# A kept bar carries exactly one flag; when several apply the most severe wins, in this order.
QUALITY_FLAGS: Final = ("ohlc_inconsistent", "duplicate_resolved", "zero_volume", "ok")

PROCESSED_DAILY_BARS_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "date": pl.Date(),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
        "vwap": pl.Float64(),
        "transactions": pl.Int64(),
        "split_factor_to_d": pl.Float64(),
        "quality_flag": pl.String(),
    }
)

SPLIT_FACTORS_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "execution_date": pl.Date(),
        "ratio": pl.Float64(),
        "cumulative_factor": pl.Float64(),
    }
)

ADJUSTED_PRICE_COLUMNS: Final = (*OHLC, "vwap")
ADJUSTED_SHARE_COLUMNS: Final = ("volume",)


@dataclass(frozen=True)
class ProcessedFrame:
    """A processed frame plus how many input rows each cleaning rule removed.

    ``stats`` always holds ``input_rows`` and ``output_rows``; every other key names a rule and
    counts the rows it dropped, so ``input_rows - sum(drops) == output_rows``.
    """

    frame: pl.DataFrame
    stats: dict[str, int] = field(default_factory=dict)


def conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Exactly ``schema``'s columns, in its order and dtypes, whatever the input's extras.

    The processed modules end with this so an empty input, or one where every value of a column
    is null, still yields the documented layout instead of an inferred dtype.
    """
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def valid_price(column: str) -> pl.Expr:
    """True where ``column`` is a finite, positive number (null and NaN are not).

    Polars orders NaN above every number, so ``> 0`` alone would let NaN through.
    """
    col = pl.col(column)
    return (col.is_finite() & (col > 0)).fill_null(False)


def known_splits(splits: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Usable splits executed on or before ``day``: one per (ticker, execution_date), last wins.

    Rows with a non-finite or non-positive side cannot define a ratio and are ignored.
    """
    return (
        splits.select("ticker", "execution_date", "split_from", "split_to")
        .filter(
            (pl.col("execution_date") <= day)
            & pl.col("ticker").is_not_null()
            & valid_price("split_from")
            & valid_price("split_to")
        )
        .unique(subset=["ticker", "execution_date"], keep="last", maintain_order=True)
        .with_columns(ratio=pl.col("split_to") / pl.col("split_from"))
        .sort("ticker", "execution_date")
    )


def split_adjustment_factors(splits_known_by_d: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Per split executed on or before ``day``: the factor that moves earlier prices to D's basis.

    ``cumulative_factor`` multiplies a price stamped strictly before ``execution_date`` (and on or
    after the previous split) to express it on D's basis: the product of ``1 / ratio`` over this
    split and every later one up to D. Schema: :data:`SPLIT_FACTORS_SCHEMA`.
    """
    known = known_splits(splits_known_by_d, day)
    return (
        known.sort("ticker", "execution_date", descending=[False, True])
        .with_columns(cumulative_factor=(1.0 / pl.col("ratio")).cum_prod().over("ticker"))
        .pipe(conform, SPLIT_FACTORS_SCHEMA)
        .sort("ticker", "execution_date")
    )


def split_factor_to(splits: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Per ticker with a known split: ``split_factor_to_d``, the cumulative index I(D).

    Tickers without any split executed by ``day`` are absent; their index is 1.0.
    """
    return (
        known_splits(splits, day)
        .group_by("ticker")
        .agg(split_factor_to_d=(1.0 / pl.col("ratio")).product())
        .sort("ticker")
    )


def process_daily_bars(
    raw_bars: pl.DataFrame, splits_known: pl.DataFrame, day: dt.date
) -> ProcessedFrame:
    """Clean one session's raw grouped daily bars (unadjusted) and attach the split index.

    Rules, in order (each drop is counted in ``stats``):

    * ``other_date``: rows whose ``date`` is not ``day``.
    * ``otc``: over-the-counter rows (outside the exchange-listed universe).
    * ``invalid_price``: any of open/high/low/close null, NaN, infinite or <= 0, or a volume that
      is null, NaN or negative (no bar can be repaired from that).
    * ``duplicate``: further rows of a ticker already seen; the *last* valid row wins, so a
      corrected bar appended by the feed replaces the original.

    Kept rows carry ``quality_flag`` instead of being dropped: ``ohlc_inconsistent`` (high/low
    do not bracket open/close), ``duplicate_resolved`` (the ticker had duplicates),
    ``zero_volume``, else ``ok``. ``split_factor_to_d`` is I(D) from splits executed on or before
    ``day`` (see the module docstring). Schema: :data:`PROCESSED_DAILY_BARS_SCHEMA`, sorted by
    ticker.
    """
    stats = {"input_rows": raw_bars.height}
    frame = raw_bars

    same_day = pl.col("date") == day
    stats["other_date"] = frame.filter(~same_day.fill_null(False)).height
    frame = frame.filter(same_day)

    is_otc = pl.col("otc").fill_null(False)
    stats["otc"] = frame.filter(is_otc).height
    frame = frame.filter(~is_otc)

    volume = pl.col("volume")
    usable = pl.all_horizontal(*(valid_price(c) for c in OHLC)) & (
        volume.is_finite() & (volume >= 0)
    ).fill_null(False)
    stats["invalid_price"] = frame.filter(~usable).height
    frame = frame.filter(usable)

    frame = frame.with_columns(_copies=pl.len().over("ticker"))
    deduped = frame.unique(subset="ticker", keep="last", maintain_order=True)
    stats["duplicate"] = frame.height - deduped.height

    high, low = pl.col("high"), pl.col("low")
    consistent = (high >= pl.max_horizontal("open", "close")) & (
        low <= pl.min_horizontal("open", "close")
    )
    flag = (
        pl.when(~consistent)
        .then(pl.lit("ohlc_inconsistent"))
        .when(pl.col("_copies") > 1)
        .then(pl.lit("duplicate_resolved"))
        .when(volume == 0)
        .then(pl.lit("zero_volume"))
        .otherwise(pl.lit("ok"))
    )
    out = (
        deduped.with_columns(quality_flag=flag)
        .join(split_factor_to(splits_known, day), on="ticker", how="left")
        .with_columns(pl.col("split_factor_to_d").fill_null(1.0))
        .pipe(conform, PROCESSED_DAILY_BARS_SCHEMA)
        .sort("ticker")
    )
    stats["output_rows"] = out.height
    return ProcessedFrame(out, stats)


def adjust_history_to(
    day: dt.date,
    bars_history: pl.DataFrame,
    splits: pl.DataFrame,
    *,
    date_column: str = "date",
) -> pl.DataFrame:
    """Express a bar history (``ticker``, ``date_column`` and any of the price/volume columns) on
    ``day``'s share basis, using only splits executed on or before ``day``.

    A bar of session t is multiplied by the product of ``split_from / split_to`` over the splits
    with ``t < execution_date <= day``; prices (:data:`ADJUSTED_PRICE_COLUMNS`) are multiplied
    and volumes (:data:`ADJUSTED_SHARE_COLUMNS`) divided by it, so traded dollar value is
    unchanged. Other columns pass through; ``adjustment_factor`` is appended. Row order is kept.

    Raises ``ValueError`` if a bar is dated after ``day``: history later than the basis date
    means the caller loaded the future.
    """
    if not bars_history.filter(pl.col(date_column) > day).is_empty():
        raise ValueError(f"bars_history has bars after {day}; adjusting to {day} needs none")
    keys = bars_history.select("ticker", date_column).unique()
    factors = (
        keys.join(known_splits(splits, day), on="ticker", how="inner")
        .filter(pl.col("execution_date") > pl.col(date_column))
        .group_by("ticker", date_column)
        .agg(adjustment_factor=(1.0 / pl.col("ratio")).product())
    )
    price_columns = [c for c in ADJUSTED_PRICE_COLUMNS if c in bars_history.columns]
    share_columns = [c for c in ADJUSTED_SHARE_COLUMNS if c in bars_history.columns]
    factor = pl.col("adjustment_factor")
    return (
        bars_history.join(factors, on=["ticker", date_column], how="left", maintain_order="left")
        .with_columns(factor.fill_null(1.0))
        .with_columns(
            *(pl.col(c) * factor for c in price_columns),
            *(pl.col(c) / factor for c in share_columns),
        )
    )
