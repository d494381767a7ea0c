"""Processed daily bars and split adjustment: cleaning is counted, and only splits executed on or
before the session move prices."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import polars as pl
import pytest

from smallcaps_assets.core.bars import (
    PROCESSED_DAILY_BARS_SCHEMA,
    SPLIT_FACTORS_SCHEMA,
    adjust_history_to,
    process_daily_bars,
    split_adjustment_factors,
)
from smallcaps_assets.core.processed_schemas import ProcessedDailyBars
from smallcaps_assets.sources import parsers

DAY = date(2024, 3, 5)  # a Tuesday session


def bar(ticker: str, close: float, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"T": ticker, "o": close, "h": close, "l": close, "c": close}
    row |= {"v": 1000, "t": 1_709_672_400_000}
    return row | extra


def splits(*rows: tuple[str, str, float, float]) -> pl.DataFrame:
    return parsers.parse_splits(
        [
            {"ticker": t, "execution_date": d, "split_from": f, "split_to": to}
            for t, d, f, to in rows
        ]
    )


NO_SPLITS = splits()


def history(*rows: tuple[str, date, float]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"ticker": t, "date": d, "close": c, "volume": 1000.0} for t, d, c in rows],
        schema={"ticker": pl.String, "date": pl.Date, "close": pl.Float64, "volume": pl.Float64},
    )


# -- cleaning ------------------------------------------------------------------------------------
def test_otc_and_unusable_prices_are_dropped_and_counted() -> None:
    raw = parsers.parse_grouped_daily(
        [
            bar("GOOD", 5.0),
            bar("PINK", 1.0, otc=True),
            bar("ZERO", 0.0),
            bar("NEG", 2.0, l=-1.0),
        ],
        DAY,
    )
    # NaN cannot come through JSON; a hand-edited file could still carry one.
    raw = pl.concat([raw, raw.head(1).with_columns(ticker=pl.lit("NAN"), close=float("nan"))])
    result = process_daily_bars(raw, NO_SPLITS, DAY)
    assert result.frame.get_column("ticker").to_list() == ["GOOD"]
    assert result.stats == {
        "input_rows": 5,
        "other_date": 0,
        "otc": 1,
        "invalid_price": 3,
        "duplicate": 0,
        "output_rows": 1,
    }


def test_duplicates_keep_the_last_row_and_are_counted() -> None:
    raw = parsers.parse_grouped_daily([bar("DUP", 5.0), bar("DUP", 6.0), bar("ONE", 3.0)], DAY)
    result = process_daily_bars(raw, NO_SPLITS, DAY)
    frame = result.frame
    assert result.stats["duplicate"] == 1
    assert frame.filter(pl.col("ticker") == "DUP").get_column("close").to_list() == [6.0]
    flags = dict(frame.select("ticker", "quality_flag").iter_rows())
    assert flags == {"DUP": "duplicate_resolved", "ONE": "ok"}


def test_rows_of_another_session_are_dropped() -> None:
    raw = pl.concat(
        [
            parsers.parse_grouped_daily([bar("OLD", 5.0)], date(2024, 3, 4)),
            parsers.parse_grouped_daily([bar("NEW", 5.0)], DAY),
        ]
    )
    result = process_daily_bars(raw, NO_SPLITS, DAY)
    assert result.frame.get_column("ticker").to_list() == ["NEW"]
    assert result.stats["other_date"] == 1


def test_suspect_bars_are_kept_with_a_quality_flag() -> None:
    raw = parsers.parse_grouped_daily(
        [bar("BENT", 5.0, h=4.0), bar("QUIET", 2.0, v=0), bar("FINE", 3.0)], DAY
    )
    frame = process_daily_bars(raw, NO_SPLITS, DAY).frame
    assert dict(frame.select("ticker", "quality_flag").iter_rows()) == {
        "BENT": "ohlc_inconsistent",
        "FINE": "ok",
        "QUIET": "zero_volume",
    }
    ProcessedDailyBars.validate(frame)


def test_output_schema_is_exact_even_when_empty() -> None:
    empty = pl.DataFrame(schema=parsers.DAILY_BARS_SCHEMA)
    result = process_daily_bars(empty, NO_SPLITS, DAY)
    assert result.frame.schema == PROCESSED_DAILY_BARS_SCHEMA
    assert result.stats["output_rows"] == 0
    ProcessedDailyBars.validate(result.frame)


# -- the split index ------------------------------------------------------------------------------
def test_split_index_counts_splits_up_to_and_including_the_session() -> None:
    raw = parsers.parse_grouped_daily([bar("RS", 5.0), bar("TWO", 50.0), bar("NONE", 1.0)], DAY)
    known = splits(
        ("RS", "2023-06-01", 10, 1),  # 1-for-10 reverse split before D
        ("TWO", "2024-03-05", 1, 2),  # 2-for-1 executing on D
        ("NONE", "2024-03-06", 1, 4),  # executes after D: unknown on D
    )
    frame = process_daily_bars(raw, known, DAY).frame
    assert dict(frame.select("ticker", "split_factor_to_d").iter_rows()) == {
        "NONE": 1.0,
        "RS": 10.0,
        "TWO": 0.5,
    }
    ProcessedDailyBars.validate(frame)


def test_a_split_after_the_session_changes_nothing() -> None:
    raw = parsers.parse_grouped_daily([bar("AAA", 5.0), bar("BBB", 7.0)], DAY)
    known = splits(("AAA", "2022-01-03", 1, 3))
    future = splits(("AAA", "2024-03-06", 10, 1), ("BBB", "2025-01-02", 1, 2))
    before = process_daily_bars(raw, known, DAY)
    after = process_daily_bars(raw, pl.concat([known, future]), DAY)
    assert after.frame.equals(before.frame)
    assert after.stats == before.stats


def test_split_adjustment_factors_compound_later_splits() -> None:
    known = splits(
        ("AAA", "2023-06-01", 10, 1),
        ("AAA", "2024-01-10", 1, 2),
        ("AAA", "2024-03-06", 1, 5),  # after D
    )
    factors = split_adjustment_factors(known, DAY)
    assert factors.schema == SPLIT_FACTORS_SCHEMA
    assert factors.rows() == [
        ("AAA", date(2023, 6, 1), 0.1, 5.0),  # prices before June: x10 then /2
        ("AAA", date(2024, 1, 10), 2.0, 0.5),
    ]


# -- adjusting a history -------------------------------------------------------------------------
def test_reverse_split_before_the_session_multiplies_earlier_prices() -> None:
    bars = history(
        ("RS", date(2024, 2, 1), 0.30),
        ("RS", date(2024, 2, 2), 0.32),
        ("RS", date(2024, 2, 5), 3.10),  # execution date: already post-split
    )
    adjusted = adjust_history_to(DAY, bars, splits(("RS", "2024-02-05", 10, 1)))
    assert adjusted.get_column("close").to_list() == pytest.approx([3.0, 3.2, 3.1])
    assert adjusted.get_column("volume").to_list() == pytest.approx([100.0, 100.0, 1000.0])
    assert adjusted.get_column("adjustment_factor").to_list() == [10.0, 10.0, 1.0]


def test_split_on_the_session_applies_to_prices_before_it_only() -> None:
    bars = history(("TWO", date(2024, 3, 4), 40.0), ("TWO", DAY, 20.5))
    adjusted = adjust_history_to(DAY, bars, splits(("TWO", "2024-03-05", 1, 2)))
    assert adjusted.get_column("close").to_list() == [20.0, 20.5]


def test_splits_after_the_session_are_ignored_when_adjusting() -> None:
    bars = history(("AAA", date(2024, 3, 1), 4.0), ("BBB", DAY, 9.0))
    adjusted = adjust_history_to(DAY, bars, splits(("AAA", "2024-03-06", 1, 2)))
    assert adjusted.get_column("close").to_list() == [4.0, 9.0]


def test_history_after_the_session_is_refused() -> None:
    bars = history(("AAA", date(2024, 3, 6), 4.0))
    with pytest.raises(ValueError, match="after 2024-03-05"):
        adjust_history_to(DAY, bars, NO_SPLITS)


def test_the_stored_index_rebases_like_adjust_history_to() -> None:
    """price_t * I(D) / I(t) with each partition's own index equals adjusting with the splits."""
    known = splits(("AAA", "2024-01-10", 1, 2), ("AAA", "2024-02-05", 10, 1))
    sessions = [date(2024, 1, 9), date(2024, 1, 10), date(2024, 2, 2), date(2024, 2, 5), DAY]
    closes = [8.0, 4.1, 0.4, 4.2, 4.4]
    partitions = [
        process_daily_bars(parsers.parse_grouped_daily([bar("AAA", c)], d), known, d).frame
        for d, c in zip(sessions, closes, strict=True)
    ]
    index = {row["date"]: row["split_factor_to_d"] for p in partitions for row in p.to_dicts()}
    rebased = [c * index[DAY] / index[d] for d, c in zip(sessions, closes, strict=True)]
    adjusted = adjust_history_to(
        DAY, history(*(("AAA", d, c) for d, c in zip(sessions, closes, strict=True))), known
    )
    assert adjusted.get_column("close").to_list() == pytest.approx(rebased)
    assert math.isclose(rebased[0], 8.0 * 0.5 * 10)
