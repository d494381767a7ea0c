"""The corporate-action index: reverse splits flagged, 12-month windows, nothing after the session."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from smallcaps_assets.core.corporate import CORPORATE_ACTIONS_SCHEMA, corporate_actions
from smallcaps_assets.core.processed_schemas import ProcessedCorporateActions
from smallcaps_assets.sources import parsers

DAY = date(2024, 3, 5)


def splits(*rows: tuple[str, str, float, float]) -> pl.DataFrame:
    return parsers.parse_splits(
        [
            {"ticker": t, "execution_date": d, "split_from": f, "split_to": to}
            for t, d, f, to in rows
        ]
    )


def dividends(*rows: tuple[str, str, float]) -> pl.DataFrame:
    return parsers.parse_dividends(
        [{"ticker": t, "ex_dividend_date": d, "cash_amount": cash} for t, d, cash in rows]
    )


def row_of(frame: pl.DataFrame, ticker: str) -> dict[str, Any]:
    return frame.filter(pl.col("ticker") == ticker).row(0, named=True)


SPLITS = splits(
    ("RS", "2023-03-05", 1, 2),  # exactly 366 days before D: outside the 12-month window
    ("RS", "2023-03-06", 1, 3),  # exactly 365 days before D: the window's open end, excluded
    ("RS", "2023-09-01", 20, 1),
    ("RS", "2024-01-15", 1, 2),
    ("TODAY", "2024-03-05", 10, 1),
)
DIVIDENDS = dividends(
    ("DIV", "2023-03-07", 0.10),
    ("DIV", "2024-02-01", 0.10),
    ("DIV", "2024-02-01", 0.50),  # special dividend on the same ex date
)


def test_reverse_split_index() -> None:
    frame = corporate_actions(SPLITS, DIVIDENDS, DAY)
    rs = row_of(frame, "RS")
    assert rs["last_split_date"] == date(2024, 1, 15)
    assert rs["last_split_ratio"] == 2.0
    assert rs["last_split_is_reverse"] is False
    assert rs["last_reverse_split_date"] == date(2023, 9, 1)
    assert rs["days_since_reverse_split"] == (DAY - date(2023, 9, 1)).days
    assert rs["split_count_12m"] == 2
    assert rs["reverse_split_count_12m"] == 1
    assert rs["split_factor_to_d"] == 1 / 2 * 1 / 3 * 20 * 1 / 2
    assert rs["dividend_count_12m"] == 0
    assert rs["last_ex_dividend_date"] is None

    today = row_of(frame, "TODAY")
    assert today["last_split_is_reverse"] is True
    assert today["days_since_reverse_split"] == 0


def test_dividend_index_sums_the_last_ex_date() -> None:
    div = row_of(corporate_actions(SPLITS, DIVIDENDS, DAY), "DIV")
    assert div["last_ex_dividend_date"] == date(2024, 2, 1)
    assert div["last_dividend_cash"] == 0.6
    assert div["dividend_count_12m"] == 3
    assert div["last_split_date"] is None
    assert div["days_since_reverse_split"] is None
    assert div["split_count_12m"] == 0
    assert div["split_factor_to_d"] == 1.0


def test_actions_after_the_session_change_nothing() -> None:
    before = corporate_actions(SPLITS, DIVIDENDS, DAY)
    future_splits = splits(("RS", "2024-03-06", 50, 1), ("NEW", "2024-04-01", 1, 2))
    future_dividends = dividends(("DIV", "2024-03-06", 9.0), ("NEWDIV", "2024-05-01", 1.0))
    after = corporate_actions(
        pl.concat([SPLITS, future_splits]), pl.concat([DIVIDENDS, future_dividends]), DAY
    )
    assert after.equals(before)


def test_duplicate_rows_count_once() -> None:
    doubled = corporate_actions(pl.concat([SPLITS, SPLITS]), pl.concat([DIVIDENDS] * 2), DAY)
    assert doubled.equals(corporate_actions(SPLITS, DIVIDENDS, DAY))


def test_schema_and_model() -> None:
    frame = corporate_actions(SPLITS, DIVIDENDS, DAY)
    assert frame.schema == CORPORATE_ACTIONS_SCHEMA
    assert frame.get_column("ticker").to_list() == ["DIV", "RS", "TODAY"]
    ProcessedCorporateActions.validate(frame)
    empty = corporate_actions(splits(), dividends(), DAY)
    assert empty.schema == CORPORATE_ACTIONS_SCHEMA
    assert empty.is_empty()
