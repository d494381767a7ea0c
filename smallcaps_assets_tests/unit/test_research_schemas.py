"""The schemas of predictions, the model card, trades, the backtest report and the watchlist:
each accepts a well-formed frame and refuses a bad one (every check can fail)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from smallcaps_assets.core import research_schemas as rs
from smallcaps_assets.core.validation import validate_schema

TS = dt.datetime(2024, 8, 5, 14, 0, tzinfo=dt.UTC)


def _cast(frame: pl.DataFrame, model) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return frame.cast(dict(rs.polars_schema(model)))


def _predictions() -> pl.DataFrame:
    return _cast(
        pl.DataFrame(
            {
                "date": [dt.date(2024, 8, 5)] * 2,
                "ticker": ["AAA", "BBB"],
                "ts": [TS, TS],
                "pattern": ["orb", "vwap_reclaim"],
                "score_lgbm": [0.2, 0.7],
                "score_catboost": [0.3, 0.6],
                "score": [0.25, 0.65],
                "selected": [False, True],
            }
        ),
        rs.PREDICTIONS_MODEL,
    )


def _card() -> pl.DataFrame:
    return _cast(
        pl.DataFrame(
            {
                "month": [dt.date(2024, 8, 1)],
                "train_events": [400],
                "validation_events": [60],
                "test_events": [70],
                "validation_auc": [0.58],
                "test_auc": [0.55],
                "threshold": [0.4],
                "weight_lgbm": [0.6],
                "weight_catboost": [0.4],
            }
        ),
        rs.MODEL_CARD_MODEL,
    )


def _trades() -> pl.DataFrame:
    return _cast(
        pl.DataFrame(
            {
                "date": [dt.date(2024, 8, 5)],
                "ticker": ["AAA"],
                "pattern": ["orb"],
                "signal_ts": [TS],
                "entry_ts": [TS + dt.timedelta(minutes=1)],
                "entry_price": [5.0],
                "exit_ts": [TS + dt.timedelta(minutes=16)],
                "exit_price": [5.5],
                "exit_reason": ["take_profit"],
                "direction": ["long"],
                "shares": [100.0],
                "gross_pnl": [50.0],
                "ecn_fees": [0.6],
                "sec_fee": [0.02],
                "borrow_fee": [0.0],
                "slippage": [1.0],
                "net_pnl": [48.38],
            }
        ),
        rs.TRADES_MODEL,
    )


def _summary() -> pl.DataFrame:
    return _cast(
        pl.DataFrame(
            {
                "n_trades": [10],
                "expectancy_gross": [12.0],
                "expectancy_net": [2.0],
                "costs_per_trade": [10.0],
                "profit_factor": [1.1],
                "sharpe": [0.4],
                "max_drawdown": [0.03],
                "hit_rate": [0.45],
                "auc_oos": [0.55],
                "fees": [30.0],
                "slippage": [70.0],
                "turnover": [1.5],
            }
        ),
        rs.BACKTEST_SUMMARY_MODEL,
    )


def _by_pattern() -> pl.DataFrame:
    return _cast(
        pl.DataFrame(
            {
                "pattern": ["orb"],
                "trades": [4],
                "hit_rate": [0.5],
                "direction": ["long"],
                "net_pnl": [120.0],
            }
        ),
        rs.HIT_RATE_BY_PATTERN_MODEL,
    )


def _watchlist() -> pl.DataFrame:
    return _cast(
        pl.DataFrame(
            {
                "date": [dt.date(2024, 8, 5)] * 2,
                "ticker": ["AAA", "BBB"],
                "ts": [TS, TS],
                "pattern": ["orb", "orb"],
                "score": [0.7, None],
                "selected": [True, None],
                "reasons": ["gap_pct +", None],
                "rank": [1, 2],
                "time_et": ["10:00", "10:00"],
                "model_month": ["2024-08", "2024-08"],
            }
        ),
        rs.WATCHLIST_MODEL,
    )


CASES = {
    "predictions": (rs.PREDICTIONS_MODEL, _predictions),
    "model_card": (rs.MODEL_CARD_MODEL, _card),
    "trades": (rs.TRADES_MODEL, _trades),
    "backtest_summary": (rs.BACKTEST_SUMMARY_MODEL, _summary),
    "hit_rate_by_pattern": (rs.HIT_RATE_BY_PATTERN_MODEL, _by_pattern),
    "watchlist": (rs.WATCHLIST_MODEL, _watchlist),
}

BAD = {
    "predictions": lambda f: f.with_columns(score=pl.col("score") * 3),  # not a probability
    "model_card": lambda f: f.with_columns(weight_lgbm=pl.lit(0.9)),  # weights sum to 1.3
    "trades": lambda f: f.with_columns(net_pnl=pl.col("net_pnl") + 5.0),  # costs don't add up
    "backtest_summary": lambda f: f.with_columns(max_drawdown=pl.lit(-0.2)),
    "hit_rate_by_pattern": lambda f: f.with_columns(pattern=pl.lit("not_a_pattern")),
    "watchlist": lambda f: f.with_columns(rank=pl.lit(1, pl.Int64)),  # two events ranked first
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_good_frame_passes_and_a_bad_one_fails(name):
    model, good = CASES[name]
    frame = good()
    assert validate_schema(model, frame).passed
    report = validate_schema(model, BAD[name](frame))
    assert not report.passed, name
    assert report.sample


def test_a_trade_against_its_patterns_direction_fails():
    assert validate_schema(rs.TRADES_MODEL, _trades()).passed
    wrong_side = _trades().with_columns(direction=pl.lit("short"))
    assert not validate_schema(rs.TRADES_MODEL, wrong_side).passed


def test_trades_exiting_before_entry_and_a_card_without_events_fail():
    early_exit = _trades().with_columns(exit_ts=pl.col("entry_ts") - dt.timedelta(minutes=1))
    assert not validate_schema(rs.TRADES_MODEL, early_exit).passed
    assert not validate_schema(rs.MODEL_CARD_MODEL, _card().with_columns(test_auc=1.5)).passed
    # An extra column is refused: the datasets are strict.
    assert not validate_schema(rs.PREDICTIONS_MODEL, _predictions().with_columns(x=1)).passed


def test_a_catalog_refresh_with_a_bad_view_name_or_count_fails():
    from smallcaps_assets.core.catalog import CATALOG_MODEL

    good = pl.DataFrame(
        {"view": ["raw.daily_bars", "raw.tickers"], "rows": [10, 3]},
        schema={"view": pl.String(), "rows": pl.Int64()},
    )
    assert validate_schema(CATALOG_MODEL, good).passed
    assert not validate_schema(CATALOG_MODEL, good.with_columns(rows=pl.lit(-1, pl.Int64))).passed
    assert not validate_schema(CATALOG_MODEL, good.with_columns(view=pl.lit("raw.x"))).passed
    assert not validate_schema(CATALOG_MODEL, good.with_columns(view=pl.lit("no_layer"))).passed
