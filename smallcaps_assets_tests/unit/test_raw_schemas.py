"""Pandera models of the raw datasets: they accept what the parsers make of real Polygon
responses and reject broken frames with failure cases that name the check."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pandera.polars as pa
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandera.errors import SchemaErrors

from smallcaps_assets.core.schemas import (
    RAW_MODELS,
    TICKER_PATTERN,
    RawDailyBars,
    RawDividends,
    RawFinancials,
    RawMinuteBars,
    RawNews,
    RawSplits,
    RawTickerDetails,
    RawTickers,
)
from smallcaps_assets.sources import parsers
from smallcaps_assets_tests.polygon_fixtures import fixture_results, load_fixture

DAY = date(2024, 1, 2)


def failed_checks(model: type[pa.DataFrameModel], frame: pl.DataFrame) -> set[tuple[str, str]]:
    """(column, check) pairs that fail; the column is the model name for frame-wide checks."""
    with pytest.raises(SchemaErrors) as caught:
        model.validate(frame, lazy=True)
    cases = caught.value.failure_cases
    return {(str(column), str(check)) for column, check in cases.select("column", "check").rows()}


def valid_daily_bars() -> pl.DataFrame:
    rows = [
        {"T": "GME", "o": 10.0, "h": 12.0, "l": 9.5, "c": 11.0, "v": 1000.5, "t": 0, "vw": 10.8},
        {"T": "AMC", "o": 5.0, "h": 5.5, "l": 4.0, "c": 4.2, "v": 0, "t": 0, "n": 12},
    ]
    return parsers.parse_grouped_daily(rows, DAY)


# -- models and parser schemas describe the same frames -----------------------------------------
def test_models_cover_the_same_datasets_as_the_parsers() -> None:
    assert set(RAW_MODELS) == set(parsers.RAW_SCHEMAS)


@pytest.mark.parametrize("dataset", sorted(RAW_MODELS))
def test_model_columns_and_dtypes_equal_the_parser_schema(dataset: str) -> None:
    schema = RAW_MODELS[dataset].to_schema()
    model_dtypes = {name: column.dtype.type for name, column in schema.columns.items()}
    assert model_dtypes == dict(parsers.RAW_SCHEMAS[dataset])
    # An empty frame straight from the parser schema is valid: no missing or extra column.
    RAW_MODELS[dataset].validate(pl.DataFrame(schema=parsers.RAW_SCHEMAS[dataset]))


# -- parsed fixtures pass -----------------------------------------------------------------------
def test_tickers_fixture_frames_are_valid() -> None:
    rows = fixture_results("recorded/v3_reference_tickers__page1.json") + fixture_results(
        "recorded/v3_reference_tickers__cursor_page2.json"
    )
    RawTickers.validate(parsers.parse_tickers(rows, as_of=date(2022, 4, 27)))
    spec = fixture_results("spec_examples/spec_v3_reference_tickers.json")
    RawTickers.validate(parsers.parse_tickers(spec, as_of=date(2021, 4, 25)))


def test_ticker_details_fixture_frames_are_valid() -> None:
    for relative, as_of in [
        ("recorded/v3_reference_tickers_AAPL.json", date(2022, 5, 2)),
        ("recorded/v3_reference_tickers_AAPL__date=2020-10-01.json", date(2020, 10, 1)),
        ("spec_examples/spec_v3_reference_tickers_ticker.json", date(2022, 1, 10)),
    ]:
        details = load_fixture(relative)["results"]
        RawTickerDetails.validate(parsers.parse_ticker_details([details], as_of=as_of))


def test_bar_fixture_frames_are_valid() -> None:
    daily = pl.concat(
        [
            parsers.parse_grouped_daily(
                fixture_results(
                    "recorded/v2_aggs_grouped_locale_us_market_stocks_2005-04-04__adjusted=true.json"
                ),
                date(2005, 4, 4),
            ),
            parsers.parse_grouped_daily(
                fixture_results("spec_examples/spec_v2_aggs_grouped_locale_us_market_stocks.json"),
                date(2020, 10, 14),
            ),
        ]
    )
    RawDailyBars.validate(daily)
    minute = pl.concat(
        [
            parsers.parse_aggregates(fixture_results(relative), "AAPL")
            for relative in (
                "spec_examples/spec_v2_aggs_ticker_range.json",
                "recorded/v2_aggs_ticker_AAPL_range_1_day_2005-04-01_2005-04-04.json",
            )
        ]
    )
    RawMinuteBars.validate(minute)


@pytest.mark.parametrize(
    ("model", "parse", "fixtures"),
    [
        (
            RawSplits,
            parsers.parse_splits,
            ["recorded/v3_reference_splits.json", "spec_examples/spec_v3_reference_splits.json"],
        ),
        (
            RawDividends,
            parsers.parse_dividends,
            [
                "recorded/v3_reference_dividends.json",
                "spec_examples/spec_v3_reference_dividends.json",
            ],
        ),
        (
            RawFinancials,
            parsers.parse_financials,
            [
                "recorded/vX_reference_financials.json",
                "spec_examples/spec_vX_reference_financials.json",
            ],
        ),
        (
            RawNews,
            parsers.parse_news,
            [
                "spec_examples/spec_v2_reference_news.json",
                "recorded/v2_reference_news__ticker=NFLX.json",
            ],
        ),
    ],
)
def test_reference_fixture_frames_are_valid(
    model: type[pa.DataFrameModel], parse: Any, fixtures: list[str]
) -> None:
    rows = [row for relative in fixtures for row in fixture_results(relative)]
    frame = parse(rows)
    assert frame.height >= len(fixtures)
    model.validate(frame)


def test_ticker_pattern_accepts_every_stock_ticker_in_the_fixtures() -> None:
    tickers = {
        row["ticker"]
        for relative in (
            "recorded/v3_reference_tickers__page1.json",
            "recorded/v3_reference_tickers__cursor_page2.json",
            "recorded/v3_reference_splits.json",
            "recorded/v3_reference_dividends.json",
            "spec_examples/spec_v3_reference_splits.json",
        )
        for row in fixture_results(relative)
    }
    tickers |= {
        row["T"]
        for row in fixture_results(
            "spec_examples/spec_v2_aggs_grouped_locale_us_market_stocks.json"
        )
    }
    assert {"KIMpL", "CIG.C", "AAAU"} <= tickers
    assert all(re.fullmatch(TICKER_PATTERN, ticker) for ticker in tickers), tickers


@pytest.mark.parametrize(
    "ticker", ["aapl", "", "1ABC", "ABCDEFGHIJK", "O:A220520C00065000", "X:BTCUSD", "GME "]
)
def test_ticker_pattern_rejects_non_stock_symbols(ticker: str) -> None:
    assert re.fullmatch(TICKER_PATTERN, ticker) is None


# -- broken frames are rejected, naming the check -----------------------------------------------
def test_duplicate_ticker_on_one_day_is_rejected() -> None:
    bars = valid_daily_bars()
    checks = failed_checks(RawDailyBars, pl.concat([bars, bars.head(1)]))
    assert ("RawDailyBars", "multiple_fields_uniqueness") in checks


def test_high_below_low_is_rejected() -> None:
    bars = valid_daily_bars().with_columns(
        pl.when(pl.col("ticker") == "GME").then(9.0).otherwise(pl.col("high")).alias("high")
    )
    checks = failed_checks(RawDailyBars, bars)
    assert ("RawDailyBars", "high_not_below_low") in checks
    assert ("RawDailyBars", "high_not_below_open_close") in checks


def test_low_above_open_is_rejected() -> None:
    bars = valid_daily_bars().with_columns(pl.lit(10.5).alias("low"))
    checks = failed_checks(RawDailyBars, bars)
    assert ("RawDailyBars", "low_not_above_open_close") in checks


def test_negative_low_is_rejected_and_a_zero_low_print_is_kept() -> None:
    bars = valid_daily_bars().with_columns(pl.lit(-0.01).alias("low"))
    checks = failed_checks(RawDailyBars, bars)
    assert ("RawDailyBars", "low_not_negative") in checks
    assert ("low", "greater_than_or_equal_to(0)") in checks
    # Real post-market bars carry l: 0; raw keeps what the vendor sent (processed repairs it).
    RawDailyBars.validate(valid_daily_bars().with_columns(pl.lit(0.0).alias("low")), lazy=True)


def test_negative_volume_is_rejected() -> None:
    bars = valid_daily_bars().with_columns(pl.lit(-1.0).alias("volume"))
    assert ("volume", "greater_than_or_equal_to(0)") in failed_checks(RawDailyBars, bars)


def test_wrong_dtype_is_rejected_not_coerced() -> None:
    bars = valid_daily_bars().with_columns(pl.col("volume").cast(pl.Int64))
    assert ("volume", "dtype('Float64')") in failed_checks(RawDailyBars, bars)


def test_naive_or_wrong_unit_timestamps_are_rejected() -> None:
    bars = valid_daily_bars().with_columns(
        pl.col("window_start").dt.replace_time_zone(None).dt.cast_time_unit("us")
    )
    checks = failed_checks(RawDailyBars, bars)
    assert any(column == "window_start" and check.startswith("dtype(") for column, check in checks)


def test_extra_column_is_rejected() -> None:
    bars = valid_daily_bars().with_columns(pl.lit(1).alias("unexpected"))
    assert ("RawDailyBars", "column_in_schema") in failed_checks(RawDailyBars, bars)


def test_minute_bars_reject_a_repeated_window() -> None:
    rows = [{"o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": 5, "t": 60_000}] * 2
    frame = parsers.parse_aggregates(rows, "GME")
    assert ("RawMinuteBars", "multiple_fields_uniqueness") in failed_checks(RawMinuteBars, frame)


def test_split_ratio_must_be_positive() -> None:
    frame = parsers.parse_splits(
        [{"ticker": "GME", "execution_date": "2022-07-22", "split_from": 0, "split_to": 4}]
    )
    assert ("split_from", "greater_than(0)") in failed_checks(RawSplits, frame)


def test_negative_dividend_and_unknown_type_are_rejected() -> None:
    frame = parsers.parse_dividends(
        [
            {
                "ticker": "GME",
                "cash_amount": -0.38,
                "ex_dividend_date": "2019-03-14",
                "dividend_type": "XX",
            }
        ]
    )
    checks = failed_checks(RawDividends, frame)
    assert ("cash_amount", "greater_than_or_equal_to(0)") in checks
    assert any(column == "dividend_type" and check.startswith("isin(") for column, check in checks)


def test_unknown_sentiment_and_duplicate_article_are_rejected() -> None:
    row = {
        "id": "n1",
        "published_utc": "2021-01-27T14:30:00Z",
        "title": "GME squeeze",
        "insights": [{"ticker": "GME", "sentiment": "bullish"}],
    }
    checks = failed_checks(RawNews, parsers.parse_news([row, row]))
    assert ("insights", "insight_sentiment_known") in checks
    assert any(check.endswith("uniqueness") or check == "field_uniqueness" for _, check in checks)


def test_financial_period_must_not_end_before_it_starts() -> None:
    frame = parsers.parse_financials(
        [
            {
                "cik": "0001326380",
                "start_date": "2021-11-01",
                "end_date": "2021-10-30",
                "filing_date": "2021-12-08",
                "financials": {},
            }
        ]
    )
    assert ("RawFinancials", "period_start_not_after_end") in failed_checks(RawFinancials, frame)


def test_lowercase_ticker_is_rejected() -> None:
    frame = parsers.parse_tickers(
        [{"ticker": "gme", "name": "GameStop", "market": "stocks", "active": True}], as_of=DAY
    )
    assert ("ticker", f"str_matches('{TICKER_PATTERN}')") in failed_checks(RawTickers, frame)


# -- property: whatever the parser builds from valid rows passes the model ----------------------
prices = st.floats(min_value=1e-4, max_value=1e6, allow_nan=False, allow_infinity=False)
volumes = st.one_of(
    st.integers(min_value=0, max_value=10**11),
    st.floats(min_value=0, max_value=1e11, allow_nan=False, allow_infinity=False),
)


@st.composite
def grouped_daily_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    tickers = draw(
        st.lists(st.from_regex(TICKER_PATTERN, fullmatch=True), unique=True, max_size=25)
    )
    rows = []
    for ticker in tickers:
        # Sorting four draws gives low <= open, close <= high without any rounding step.
        low, middle_a, middle_b, high = sorted(draw(st.lists(prices, min_size=4, max_size=4)))
        open_, close = draw(st.permutations([middle_a, middle_b]))
        row: dict[str, Any] = {
            "T": ticker,
            "o": open_,
            "h": high,
            "l": low,
            "c": close,
            "v": draw(volumes),
            "t": draw(st.integers(min_value=0, max_value=2**42)),
        }
        if draw(st.booleans()):
            row["vw"] = draw(st.one_of(st.none(), prices))
        if draw(st.booleans()):
            row["n"] = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=10**7)))
        if draw(st.booleans()):
            row["otc"] = draw(st.booleans())
        rows.append(row)
    return rows


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=grouped_daily_rows())
def test_any_parsed_grouped_daily_frame_of_valid_rows_passes(rows: list[dict[str, Any]]) -> None:
    frame = parsers.parse_grouped_daily(rows, DAY)
    assert frame.height == len(rows)
    RawDailyBars.validate(frame)
