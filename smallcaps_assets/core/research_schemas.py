"""Pandera schemas of the model, backtest and research datasets: predictions, the model card,
trades, the backtest report's tables and the daily watchlist.

Every dataset the graph writes has one schema, checked before its partition is published
(``defs/checks.CheckSet``). The plain Polars schemas of these frames are derived from the models
(:func:`polars_schema`), so column lists are stated once.
"""

from __future__ import annotations

from typing import Final

import pandera.polars as pa
import polars as pl

from smallcaps_assets.core import events
from smallcaps_assets.core.labels import EXIT_REASONS
from smallcaps_assets.core.schemas import polars_schema

__all__ = [
    "BACKTEST_SUMMARY_MODEL",
    "HIT_RATE_BY_PATTERN_MODEL",
    "MODEL_CARD_MODEL",
    "PREDICTIONS_MODEL",
    "TRADES_MODEL",
    "WATCHLIST_MODEL",
    "polars_schema",
]

_EVENT_KEY: Final = ["ticker", "ts", "pattern"]
_UTC_MS: Final = pl.Datetime("ms", "UTC")
_PATTERN: Final = pa.Check.isin(list(events.PATTERNS))
_PROBABILITY: Final = pa.Check.in_range(0.0, 1.0)


PREDICTIONS_MODEL: Final = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "ticker": pa.Column(pl.String),
        "ts": pa.Column(_UTC_MS),
        "pattern": pa.Column(pl.String, checks=_PATTERN),
        "score_lgbm": pa.Column(pl.Float64, checks=_PROBABILITY),
        "score_catboost": pa.Column(pl.Float64, checks=_PROBABILITY),
        "score": pa.Column(pl.Float64, checks=_PROBABILITY),
        "selected": pa.Column(pl.Boolean),
    },
    unique=_EVENT_KEY,
    strict=True,
    name="PredictionsModel",
)

MODEL_CARD_MODEL: Final = pa.DataFrameSchema(
    {
        "month": pa.Column(pl.Date),
        "train_events": pa.Column(pl.Int64, checks=pa.Check.ge(0)),
        "validation_events": pa.Column(pl.Int64, checks=pa.Check.ge(0)),
        "test_events": pa.Column(pl.Int64, checks=pa.Check.ge(0)),
        "validation_auc": pa.Column(pl.Float64, checks=_PROBABILITY, nullable=True),
        "test_auc": pa.Column(pl.Float64, checks=_PROBABILITY, nullable=True),
        # Null only on the card of a month that was not fitted (too few events).
        "threshold": pa.Column(pl.Float64, checks=_PROBABILITY, nullable=True),
        "weight_lgbm": pa.Column(pl.Float64, checks=_PROBABILITY, nullable=True),
        "weight_catboost": pa.Column(pl.Float64, checks=_PROBABILITY, nullable=True),
    },
    checks=[
        pa.Check(
            lambda data: data.lazyframe.select(
                (
                    pl.col("weight_lgbm").is_null()
                    | ((pl.col("weight_lgbm") + pl.col("weight_catboost") - 1.0).abs() < 1e-9)
                ).alias("weights_sum_to_one")
            ),
            name="blend weights sum to 1",
        )
    ],
    strict=True,
    name="ModelCardModel",
)

TRADES_MODEL: Final = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "ticker": pa.Column(pl.String),
        "pattern": pa.Column(pl.String, checks=_PATTERN),
        "signal_ts": pa.Column(_UTC_MS),
        "entry_ts": pa.Column(_UTC_MS),
        "entry_price": pa.Column(pl.Float64, checks=pa.Check.gt(0)),
        "exit_ts": pa.Column(_UTC_MS),
        "exit_price": pa.Column(pl.Float64, checks=pa.Check.gt(0)),
        "exit_reason": pa.Column(pl.String, checks=pa.Check.isin(list(EXIT_REASONS))),
        "direction": pa.Column(pl.String, checks=pa.Check.isin(["long", "short"])),
        "shares": pa.Column(pl.Float64, checks=pa.Check.ge(1)),
        "gross_pnl": pa.Column(pl.Float64),
        "ecn_fees": pa.Column(pl.Float64, checks=pa.Check.ge(0)),
        "sec_fee": pa.Column(pl.Float64, checks=pa.Check.ge(0)),
        "borrow_fee": pa.Column(pl.Float64, checks=pa.Check.ge(0)),
        "slippage": pa.Column(pl.Float64, checks=pa.Check.ge(0)),
        "net_pnl": pa.Column(pl.Float64),
    },
    checks=[
        pa.Check(
            lambda data: data.lazyframe.select(
                (pl.col("exit_ts") >= pl.col("entry_ts")).alias("exit_after_entry")
            ),
            name="exit at or after entry",
        ),
        pa.Check(
            lambda data: data.lazyframe.select(
                (
                    (
                        pl.col("gross_pnl")
                        - pl.col("ecn_fees")
                        - pl.col("sec_fee")
                        - pl.col("borrow_fee")
                        - pl.col("slippage")
                        - pl.col("net_pnl")
                    ).abs()
                    < 1e-6
                ).alias("net_is_gross_less_costs")
            ),
            name="net P&L = gross - fees - borrow fee - slippage",
        ),
        pa.Check(
            lambda data: data.lazyframe.select(
                (
                    pl.col("direction")
                    == pl.col("pattern").replace_strict(events.DIRECTION, default=None)
                ).alias("direction_of_the_pattern")
            ),
            name="each trade in its pattern's direction",
        ),
    ],
    unique=["ticker", "entry_ts", "pattern"],
    strict=True,
    name="TradesModel",
)

BACKTEST_SUMMARY_MODEL: Final = pa.DataFrameSchema(
    {
        "n_trades": pa.Column(pl.Int64, checks=pa.Check.ge(0)),
        "expectancy_gross": pa.Column(pl.Float64, nullable=True),
        "expectancy_net": pa.Column(pl.Float64, nullable=True),
        "costs_per_trade": pa.Column(pl.Float64, checks=pa.Check.ge(0), nullable=True),
        "profit_factor": pa.Column(pl.Float64, checks=pa.Check.ge(0), nullable=True),
        "sharpe": pa.Column(pl.Float64, nullable=True),
        "max_drawdown": pa.Column(pl.Float64, checks=_PROBABILITY),
        "hit_rate": pa.Column(pl.Float64, checks=_PROBABILITY, nullable=True),
        "auc_oos": pa.Column(pl.Float64, checks=_PROBABILITY, nullable=True),
        "fees": pa.Column(pl.Float64, checks=pa.Check.ge(0)),
        "slippage": pa.Column(pl.Float64, checks=pa.Check.ge(0)),
        "turnover": pa.Column(pl.Float64, checks=pa.Check.ge(0)),
    },
    name="BacktestSummaryModel",
)

HIT_RATE_BY_PATTERN_MODEL: Final = pa.DataFrameSchema(
    {
        "pattern": pa.Column(pl.String, checks=_PATTERN, unique=True),
        "trades": pa.Column(pl.Int64, checks=pa.Check.ge(1)),
        "hit_rate": pa.Column(pl.Float64, checks=_PROBABILITY),
        "direction": pa.Column(pl.String, checks=pa.Check.isin(["long", "short"])),
        "net_pnl": pa.Column(pl.Float64),
    },
    strict=True,
    name="HitRateByPatternModel",
)

WATCHLIST_MODEL: Final = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "ticker": pa.Column(pl.String),
        "ts": pa.Column(_UTC_MS),
        "pattern": pa.Column(pl.String, checks=_PATTERN),
        "score": pa.Column(pl.Float64, checks=_PROBABILITY, nullable=True),
        "selected": pa.Column(pl.Boolean, nullable=True),
        "reasons": pa.Column(pl.String, nullable=True),
        "rank": pa.Column(pl.Int64, checks=pa.Check.ge(1), unique=True),
        "time_et": pa.Column(pl.String, checks=pa.Check.str_matches(r"^\d{2}:\d{2}$")),
        "model_month": pa.Column(pl.String, nullable=True),
    },
    unique=_EVENT_KEY,
    strict=True,
    name="WatchlistModel",
)
