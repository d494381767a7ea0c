"""Parsers: recorded Polygon rows in, frames with the documented schema out."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from smallcaps_assets.sources import parsers
from smallcaps_assets.sources.errors import PolygonSchemaError
from smallcaps_assets_tests import polygon_fixtures
from smallcaps_assets_tests.polygon_fixtures import fixture_results, load_fixture

DAY = date(2024, 1, 2)
Parse = Callable[[list[Any]], pl.DataFrame]

PARSERS: dict[str, Parse] = {
    "tickers": lambda rows: parsers.parse_tickers(rows, as_of=DAY),
    "ticker_details": lambda rows: parsers.parse_ticker_details(rows, as_of=DAY),
    "daily_bars": lambda rows: parsers.parse_grouped_daily(rows, DAY),
    "minute_bars": lambda rows: parsers.parse_aggregates(rows, "GME"),
    "splits": parsers.parse_splits,
    "dividends": parsers.parse_dividends,
    "financials": parsers.parse_financials,
    "news": parsers.parse_news,
}

# One minimal valid row per dataset: exactly the required fields.
MINIMAL_ROWS: dict[str, dict[str, Any]] = {
    "tickers": {"ticker": "GME", "name": "GameStop", "market": "stocks", "active": True},
    "ticker_details": {"ticker": "GME", "name": "GameStop", "active": True},
    "daily_bars": {"T": "GME", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10, "t": 0},
    "minute_bars": {"o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10, "t": 0},
    "splits": {"ticker": "GME", "execution_date": "2022-07-22", "split_from": 1, "split_to": 4},
    "dividends": {"ticker": "GME", "cash_amount": 0.38, "ex_dividend_date": "2019-03-14"},
    "financials": {
        "cik": "0001326380",
        "end_date": "2021-10-30",
        "filing_date": "2021-12-08",
        "financials": {},
    },
    "news": {"id": "n1", "published_utc": "2021-01-27T14:30:00Z", "title": "GME"},
}


def test_missing_fixture_folder_skips_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(polygon_fixtures, "FIXTURES_ROOT", tmp_path / "absent")
    with pytest.raises(pytest.skip.Exception, match="fixtures not found"):
        load_fixture("recorded/v3_reference_splits.json")


def test_raw_schemas_cover_every_dataset() -> None:
    assert set(parsers.RAW_SCHEMAS) == set(PARSERS)


@pytest.mark.parametrize("dataset", list(PARSERS))
def test_empty_input_gives_the_exact_schema(dataset: str) -> None:
    frame = PARSERS[dataset]([])
    assert frame.height == 0
    assert frame.schema == parsers.RAW_SCHEMAS[dataset]


@pytest.mark.parametrize("dataset", list(PARSERS))
def test_minimal_row_parses_with_optional_fields_null(dataset: str) -> None:
    frame = PARSERS[dataset]([MINIMAL_ROWS[dataset]])
    assert frame.schema == parsers.RAW_SCHEMAS[dataset]
    assert frame.height == 1


@pytest.mark.parametrize(
    ("dataset", "field"),
    [(dataset, field) for dataset, row in MINIMAL_ROWS.items() for field in row],
)
def test_missing_required_field_names_endpoint_field_and_row(dataset: str, field: str) -> None:
    good = MINIMAL_ROWS[dataset]
    broken = {key: value for key, value in good.items() if key != field}
    with pytest.raises(PolygonSchemaError) as caught:
        PARSERS[dataset]([good, good, broken])
    error = caught.value
    assert error.field == field
    assert error.row_index == 2
    assert f"field {field!r} is required" in str(error)
    assert "row 2" in str(error)
    assert error.endpoint is not None
    assert error.endpoint in str(error)


@pytest.mark.parametrize("dataset", list(PARSERS))
def test_null_required_field_counts_as_missing(dataset: str) -> None:
    row = MINIMAL_ROWS[dataset]
    field = next(iter(row))
    with pytest.raises(PolygonSchemaError, match="is required"):
        PARSERS[dataset]([{**row, field: None}])


def test_schema_error_names_the_ticker_of_the_row() -> None:
    rows = [{"T": "GME", "o": 1, "h": 1, "l": 1, "c": 1, "v": 1, "t": 0}, {"T": "AMC", "o": 1}]
    with pytest.raises(PolygonSchemaError, match=r"row 1 \(ticker 'AMC'\)") as caught:
        parsers.parse_grouped_daily(rows, DAY)
    assert (caught.value.ticker, caught.value.field) == ("AMC", "h")


@pytest.mark.parametrize(
    ("dataset", "override", "field", "expected"),
    [
        ("daily_bars", {"o": "1.5"}, "o", "a number"),
        ("daily_bars", {"v": True}, "v", "a number"),
        ("daily_bars", {"n": 3.5}, "n", "an integer"),
        ("daily_bars", {"t": "1602705600000"}, "t", "an integer"),
        ("daily_bars", {"otc": "false"}, "otc", "a boolean"),
        ("minute_bars", {"vw": "x"}, "vw", "a number"),
        ("tickers", {"active": "true"}, "active", "a boolean"),
        ("tickers", {"last_updated_utc": "2022-04-27T00:00:00"}, "last_updated_utc", "UTC offset"),
        ("ticker_details", {"list_date": "19801212"}, "list_date", "YYYY-MM-DD"),
        ("ticker_details", {"market_cap": "big"}, "market_cap", "a number"),
        ("splits", {"execution_date": "2022-02-30"}, "execution_date", "YYYY-MM-DD"),
        ("news", {"tickers": "GME"}, "tickers", "a list of strings"),
        ("news", {"publisher": "Reuters"}, "publisher", "an object"),
        ("news", {"insights": [{"ticker": "GME"}]}, "insights[0].sentiment", "required"),
        ("news", {"insights": ["positive"]}, "insights[0]", "an object"),
        ("financials", {"financials": []}, "financials", "an object"),
        ("financials", {"financials": {"income_statement": {"revenues": {"value": "1"}}}},
         "financials.income_statement.revenues.value", "a number"),
    ],
)  # fmt: skip
def test_wrong_json_types_are_schema_errors(
    dataset: str, override: dict[str, Any], field: str, expected: str
) -> None:
    row = {**MINIMAL_ROWS[dataset], **override}
    with pytest.raises(PolygonSchemaError, match=expected) as caught:
        PARSERS[dataset]([row])
    assert caught.value.field == field


@pytest.mark.parametrize("dataset", list(PARSERS))
def test_a_row_that_is_not_an_object_is_a_schema_error(dataset: str) -> None:
    with pytest.raises(PolygonSchemaError, match="expected an object") as caught:
        PARSERS[dataset]([MINIMAL_ROWS[dataset], ["not", "a", "row"]])
    assert caught.value.row_index == 1


# -- values from the recorded fixtures ----------------------------------------------------------
def test_tickers_from_both_recorded_pages() -> None:
    rows = fixture_results("recorded/v3_reference_tickers__page1.json") + fixture_results(
        "recorded/v3_reference_tickers__cursor_page2.json"
    )
    frame = parsers.parse_tickers(rows, as_of=date(2022, 4, 27))

    assert frame.schema == parsers.TICKERS_SCHEMA
    assert frame["ticker"].to_list() == ["A", "AA", "AAA", "AAAU"]
    assert frame["cik"].to_list() == ["0001090872", "0001675149", None, "0001708646"]
    assert frame["last_updated_utc"].to_list() == [datetime(2022, 4, 27, tzinfo=UTC)] * 4
    assert frame["delisted_utc"].null_count() == 4
    assert frame["as_of"].unique().to_list() == [date(2022, 4, 27)]


def test_delisted_ticker_keeps_its_delisting_instant() -> None:
    row = {**MINIMAL_ROWS["tickers"], "active": False, "delisted_utc": "2023-06-09T00:00:00Z"}
    frame = parsers.parse_tickers([row], as_of=DAY)
    assert frame.row(0, named=True)["delisted_utc"] == datetime(2023, 6, 9, tzinfo=UTC)


def test_ticker_details_from_recording_and_spec_example() -> None:
    recorded = load_fixture("recorded/v3_reference_tickers_AAPL.json")["results"]
    spec = load_fixture("spec_examples/spec_v3_reference_tickers_ticker.json")["results"]
    frame = parsers.parse_ticker_details([recorded, spec], as_of=DAY)

    assert frame.schema == parsers.TICKER_DETAILS_SCHEMA
    first, second = frame.iter_rows(named=True)
    assert first["list_date"] == date(1980, 12, 12)
    assert first["market_cap"] == 2488795282370.0
    assert first["weighted_shares_outstanding"] == 16185181000.0
    assert (first["sic_code"], first["total_employees"], first["round_lot"]) == (
        "3571",
        154000,
        None,
    )
    assert second["round_lot"] == 100


def test_grouped_daily_keeps_fractional_volume_and_the_close_timestamp() -> None:
    rows = fixture_results("spec_examples/spec_v2_aggs_grouped_locale_us_market_stocks.json")
    frame = parsers.parse_grouped_daily(rows, date(2020, 10, 14))

    assert frame.schema == parsers.DAILY_BARS_SCHEMA
    tanh = frame.filter(pl.col("ticker") == "TANH").row(0, named=True)
    assert tanh["volume"] == 25933.6
    assert (tanh["transactions"], tanh["otc"]) == (1096, False)
    # Grouped-daily `t` is the session close, 16:00 New York time.
    assert tanh["window_start"] == datetime(2020, 10, 14, 20, 0, tzinfo=UTC)
    assert frame["date"].unique().to_list() == [date(2020, 10, 14)]


def test_grouped_daily_reads_otc_flag_when_present() -> None:
    rows = [
        {**MINIMAL_ROWS["daily_bars"], "T": "OTCX", "otc": True},
        {**MINIMAL_ROWS["daily_bars"], "T": "LIST"},
    ]
    assert parsers.parse_grouped_daily(rows, DAY)["otc"].to_list() == [True, False]


def test_aggregates_use_the_given_ticker_and_millisecond_starts() -> None:
    rows = fixture_results("recorded/v2_aggs_ticker_AAPL_range_1_day_2005-04-01_2005-04-04.json")
    frame = parsers.parse_aggregates(rows, "AAPL")

    assert frame.schema == parsers.MINUTE_BARS_SCHEMA
    assert frame["ticker"].to_list() == ["AAPL", "AAPL"]
    # Custom day bars start at 00:00 New York time (EST, then EDT after the switch).
    assert frame["window_start"].to_list() == [
        datetime(2005, 4, 1, 5, 0, tzinfo=UTC),
        datetime(2005, 4, 4, 4, 0, tzinfo=UTC),
    ]
    assert frame["volume"].to_list() == [642646396.0, 578172308.0]


def test_integral_float_counts_take_the_checked_path_and_agree() -> None:
    rows = [
        {**MINIMAL_ROWS["minute_bars"], "n": 12.0},
        {**MINIMAL_ROWS["minute_bars"], "t": 60_000},
    ]
    frame = parsers.parse_aggregates(rows, "GME")
    assert frame["transactions"].to_list() == [12, None]
    assert frame.schema == parsers.MINUTE_BARS_SCHEMA


def test_splits_with_and_without_ids() -> None:
    recorded = parsers.parse_splits(fixture_results("recorded/v3_reference_splits.json"))
    spec = parsers.parse_splits(fixture_results("spec_examples/spec_v3_reference_splits.json"))

    assert recorded.schema == spec.schema == parsers.SPLITS_SCHEMA
    assert recorded["id"].null_count() == recorded.height
    assert spec["id"].null_count() == 0
    reverse = recorded.filter(pl.col("ticker") == "BRW").row(0, named=True)
    assert (reverse["split_from"], reverse["split_to"]) == (2.0, 1.0)
    assert reverse["execution_date"] == date(2022, 5, 20)


def test_dividends_from_recording() -> None:
    frame = parsers.parse_dividends(fixture_results("recorded/v3_reference_dividends.json"))
    assert frame.schema == parsers.DIVIDENDS_SCHEMA
    first = frame.row(0, named=True)
    assert first == {
        "id": None,
        "ticker": "CSSEN",
        "cash_amount": 0.59375,
        "currency": None,
        "declaration_date": date(2020, 9, 9),
        "dividend_type": "CD",
        "ex_dividend_date": date(2025, 6, 12),
        "frequency": 4,
        "pay_date": date(2025, 6, 30),
        "record_date": date(2025, 6, 15),
    }


def test_financials_flatten_concepts_and_keep_the_whole_statement() -> None:
    row = fixture_results("recorded/vX_reference_financials.json")[0]
    frame = parsers.parse_financials([row])

    assert frame.schema == parsers.FINANCIALS_SCHEMA
    filing = frame.row(0, named=True)
    statements = row["financials"]
    assert filing["ticker"] is None  # this recording lists no tickers
    assert (filing["fiscal_period"], filing["fiscal_year"]) == ("Q1", "2022")
    assert filing["revenues"] == statements["income_statement"]["revenues"]["value"]
    assert filing["net_income_loss"] == statements["income_statement"]["net_income_loss"]["value"]
    assert filing["assets"] == statements["balance_sheet"]["assets"]["value"]
    assert (
        filing["operating_cash_flow"]
        == statements["cash_flow_statement"]["net_cash_flow_from_operating_activities"]["value"]
    )
    # Real filings carry no cash line; runway is built from current assets and liabilities.
    assert "cash" not in statements["balance_sheet"]
    balance = statements["balance_sheet"]
    assert filing["current_assets"] == balance["current_assets"]["value"]
    assert filing["current_liabilities"] == balance["current_liabilities"]["value"]
    assert json.loads(filing["financials_json"]) == statements


def test_financials_explode_one_row_per_listed_ticker() -> None:
    row = {
        **MINIMAL_ROWS["financials"],
        "tickers": ["GOOGL", "GOOG", "GOOGL"],
        "acceptance_datetime": "2021-12-08T16:05:00-05:00",
        "fiscal_year": 2021,
    }
    frame = parsers.parse_financials([row])
    assert frame["ticker"].to_list() == ["GOOGL", "GOOG"]
    assert frame["acceptance_datetime"].to_list() == [datetime(2021, 12, 8, 21, 5, tzinfo=UTC)] * 2
    assert frame["fiscal_year"].to_list() == ["2021", "2021"]


def test_financials_with_an_empty_ticker_list_keep_one_row() -> None:
    frame = parsers.parse_financials([{**MINIMAL_ROWS["financials"], "tickers": []}])
    assert frame["ticker"].to_list() == [None]


def test_news_with_and_without_insights() -> None:
    rows = fixture_results("spec_examples/spec_v2_reference_news.json") + fixture_results(
        "recorded/v2_reference_news__ticker=NFLX.json"
    )
    frame = parsers.parse_news(rows)

    assert frame.schema == parsers.NEWS_SCHEMA
    spec, recorded = frame.iter_rows(named=True)
    assert spec["published_utc"] == datetime(2024, 6, 24, 18, 33, 53, tzinfo=UTC)
    assert spec["publisher_name"] == "Investing.com"
    assert spec["keywords"] == ["Federal Reserve", "interest rates", "economic data"]
    assert spec["insights"][0]["ticker"] == "UBS"
    assert spec["insights"][0]["sentiment"] == "positive"
    assert recorded["tickers"] == ["MSFT", "TSN", "NFLX", "AMZN"]
    assert (recorded["keywords"], recorded["insights"]) == ([], [])


def test_news_insight_without_reasoning_is_null_reasoning() -> None:
    row = {**MINIMAL_ROWS["news"], "insights": [{"ticker": "GME", "sentiment": "neutral"}]}
    insight = parsers.parse_news([row])["insights"][0][0]
    assert insight == {"ticker": "GME", "sentiment": "neutral", "sentiment_reasoning": None}


# -- the column-wise fast path agrees with the row-wise checked path ----------------------------
bar_numbers = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.floats(min_value=0, max_value=1e9, allow_nan=False),
)
bar_rows = st.lists(
    st.fixed_dictionaries(
        {
            "T": st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5),
            "o": bar_numbers,
            "h": bar_numbers,
            "l": bar_numbers,
            "c": bar_numbers,
            "v": bar_numbers,
            "t": st.integers(min_value=0, max_value=2**42),
        },
        optional={
            "vw": st.one_of(st.none(), bar_numbers),
            "n": st.one_of(st.none(), st.integers(min_value=0, max_value=10**7)),
            "otc": st.booleans(),
        },
    ),
    max_size=20,
)


@given(rows=bar_rows)
def test_fast_and_checked_bar_parsers_agree(rows: list[dict[str, Any]]) -> None:
    assert_frame_equal(
        parsers.parse_grouped_daily(rows, DAY),
        parsers._parse_grouped_daily_checked(rows, DAY),
    )
    assert_frame_equal(
        parsers.parse_aggregates(rows, "GME"),
        parsers._parse_aggregates_checked(rows, "GME"),
    )
