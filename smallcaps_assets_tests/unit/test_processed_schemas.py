"""Processed Pandera models agree with the frames the core functions build, and the
point-in-time check helper reports what a static model cannot see."""

from __future__ import annotations

from datetime import date

import pandera.polars as pa
import polars as pl
import pytest
from pandera.errors import SchemaErrors

from smallcaps_assets.core.processed_schemas import (
    PROCESSED_MODELS,
    PROCESSED_SCHEMAS,
    ProcessedCorporateActions,
    ProcessedDailyBars,
    ProcessedMinuteBars,
    check_point_in_time,
)

DAY = date(2024, 3, 5)


def test_models_cover_the_processed_datasets() -> None:
    assert set(PROCESSED_MODELS) == {
        "daily_bars",
        "corporate_actions",
        "fundamentals",
        "news_daily",
        "universe",
        "minute_bars",
    }
    assert set(PROCESSED_SCHEMAS) == set(PROCESSED_MODELS)


@pytest.mark.parametrize("dataset", sorted(PROCESSED_MODELS))
def test_model_columns_and_dtypes_equal_the_builder_schema(dataset: str) -> None:
    schema = PROCESSED_MODELS[dataset].to_schema()
    model_dtypes = {name: column.dtype.type for name, column in schema.columns.items()}
    assert model_dtypes == dict(PROCESSED_SCHEMAS[dataset])
    assert list(model_dtypes) == PROCESSED_SCHEMAS[dataset].names()
    PROCESSED_MODELS[dataset].validate(pl.DataFrame(schema=PROCESSED_SCHEMAS[dataset]))


def failed_checks(model: type[pa.DataFrameModel], frame: pl.DataFrame) -> set[str]:
    with pytest.raises(SchemaErrors) as caught:
        model.validate(frame, lazy=True)
    return set(caught.value.failure_cases.get_column("check").cast(pl.String).to_list())


def daily_bar(**values: object) -> pl.DataFrame:
    row = {"ticker": "AAA", "date": DAY, "open": 5.0, "high": 6.0, "low": 4.0, "close": 5.5}
    row |= {"volume": 100.0, "vwap": None, "transactions": None}
    row |= {"split_factor_to_d": 1.0, "quality_flag": "ok"}
    return pl.DataFrame([row | values], schema=PROCESSED_SCHEMAS["daily_bars"])


def test_daily_bar_model_allows_flagged_inconsistency_only() -> None:
    ProcessedDailyBars.validate(daily_bar(high=4.5, quality_flag="ohlc_inconsistent"))
    assert "ohlc_consistent_unless_flagged" in failed_checks(
        ProcessedDailyBars, daily_bar(high=4.5)
    )
    assert "finite_prices" in failed_checks(ProcessedDailyBars, daily_bar(close=float("nan")))
    doubled = pl.concat([daily_bar(), daily_bar()])
    assert any("unique" in check for check in failed_checks(ProcessedDailyBars, doubled))


def test_corporate_model_rejects_actions_after_the_row_date() -> None:
    row = {
        "date": DAY,
        "ticker": "AAA",
        "last_split_date": date(2024, 3, 6),
        "last_split_ratio": 0.1,
        "last_split_is_reverse": True,
        "split_count_12m": 1,
        "reverse_split_count_12m": 1,
        "split_factor_to_d": 10.0,
        "dividend_count_12m": 0,
    }
    frame = pl.DataFrame([row], schema=PROCESSED_SCHEMAS["corporate_actions"])
    assert "actions_not_after_date" in failed_checks(ProcessedCorporateActions, frame)
    report = check_point_in_time("corporate_actions", frame, DAY)
    assert report.by_check == {"actions executed by the session": 1}


def test_minute_model_rejects_bars_outside_the_window() -> None:
    evening = pl.datetime(2024, 3, 5, 20, 0, time_zone="America/New_York", time_unit="ms")
    row = {
        "ticker": "AAA",
        "date": DAY,
        "session": "post",
        "open": 5.0,
        "high": 5.0,
        "low": 5.0,
        "close": 5.0,
        "volume": 1.0,
        "vwap": None,
        "transactions": None,
        "missing_minutes_before": None,
        "halt_resumption": False,
        "halts_so_far": 0,
        "ssr_trigger": False,
        "ssr_active": False,
    }
    frame = (
        pl.DataFrame([row])
        .with_columns(ts_et=evening)
        .with_columns(ts=pl.col("ts_et").dt.convert_time_zone("UTC"))
        .select(
            pl.col(name).cast(dtype) for name, dtype in PROCESSED_SCHEMAS["minute_bars"].items()
        )
    )
    assert "inside_session_window" in failed_checks(ProcessedMinuteBars, frame)


def test_point_in_time_check_reports_rows_of_another_session() -> None:
    frame = daily_bar().vstack(daily_bar(ticker="BBB", date=date(2024, 3, 6)))
    report = check_point_in_time("daily_bars", frame, DAY, partition="2024-03-05")
    assert (report.rows_checked, report.failures) == (2, 1)
    assert report.by_check == {"date is the session": 1}
    assert report.sample[0]["row"] == "1"
    assert report.sample[0]["partition"] == "2024-03-05"
