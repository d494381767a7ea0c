"""The endpoint field tables against the Pandera models and the recorded Polygon responses.

Each table covers exactly its dataset's model (columns, and which may be null). Over every
recorded and documented fixture of an endpoint, its parser gives the frame one can state from
the fixture and the model: one row per result (per filing and listed ticker for financials),
the model's columns and dtypes, and each value the vendor's converted by the standard library.
Every parser over every fixture gives a frame of its schema or a ``PolygonSchemaError``, nothing
else. Fixtures are read in place from ``../shared/fixtures/polygon``; the tests that need them
skip with the reason when that folder is absent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from smallcaps_assets.core.schemas import BAR_VALUES, OHLC, OHLCV, RAW_MODELS, polars_schema
from smallcaps_assets.sources import parsers
from smallcaps_assets.sources.errors import PolygonSchemaError
from smallcaps_assets_tests.polygon_fixtures import fixture_results, fixtures_dir

DAY = date(2024, 1, 2)
TICKER = "AAPL"
FIXED: dict[str, dict[str, Any]] = {
    "tickers": {"as_of": DAY},
    "ticker_details": {"as_of": DAY},
    "daily_bars": {"date": DAY},
    "minute_bars": {"ticker": TICKER},
}
PARSERS: dict[str, Callable[[list[Any]], pl.DataFrame]] = {
    "tickers": lambda rows: parsers.parse_tickers(rows, as_of=DAY),
    "ticker_details": lambda rows: parsers.parse_ticker_details(rows, as_of=DAY),
    "daily_bars": lambda rows: parsers.parse_grouped_daily(rows, DAY),
    "minute_bars": lambda rows: parsers.parse_aggregates(rows, TICKER),
    "splits": parsers.parse_splits,
    "dividends": parsers.parse_dividends,
    "financials": parsers.parse_financials,
    "news": parsers.parse_news,
}
# The fixtures of each endpoint (INDEX.md in the fixture folder says where each came from).
FIXTURES: dict[str, tuple[str, ...]] = {
    "tickers": (
        "recorded/v3_reference_tickers__page1.json",
        "recorded/v3_reference_tickers__cursor_page2.json",
        "spec_examples/spec_v3_reference_tickers.json",
    ),
    "ticker_details": (
        "recorded/v3_reference_tickers_AAPL.json",
        "recorded/v3_reference_tickers_AAPL__date=2020-10-01.json",
        "spec_examples/spec_v3_reference_tickers_ticker.json",
    ),
    "daily_bars": (
        "recorded/v2_aggs_grouped_locale_us_market_stocks_2005-04-04__adjusted=true.json",
        "spec_examples/spec_v2_aggs_grouped_locale_us_market_stocks.json",
    ),
    "minute_bars": (
        "recorded/v2_aggs_ticker_AAPL_range_1_day_2005-04-01_2005-04-04.json",
        "recorded/v2_aggs_ticker_AAPL_range_1_day_2005-04-02_2005-04-04.json",
        "spec_examples/spec_v2_aggs_ticker_range.json",
    ),
    "splits": (
        "recorded/v3_reference_splits.json",
        "spec_examples/spec_v3_reference_splits.json",
    ),
    "dividends": (
        "recorded/v3_reference_dividends.json",
        "spec_examples/spec_v3_reference_dividends.json",
    ),
    "financials": (
        "recorded/vX_reference_financials.json",
        "spec_examples/spec_vX_reference_financials.json",
    ),
    "news": (
        "recorded/v2_reference_news__ticker=NFLX.json",
        "spec_examples/spec_v2_reference_news.json",
    ),
}
CASES = [(dataset, relative) for dataset, files in FIXTURES.items() for relative in files]


# -- the tables and the models ------------------------------------------------------------------
def test_every_dataset_has_one_table_and_its_schema_comes_from_the_model() -> None:
    assert set(parsers.ENDPOINTS) == set(RAW_MODELS) == set(parsers.RAW_SCHEMAS) == set(PARSERS)
    for dataset, model in RAW_MODELS.items():
        assert parsers.RAW_SCHEMAS[dataset] == polars_schema(model)  # same order, same dtypes
        assert parsers.ENDPOINTS[dataset].schema == polars_schema(model)


@pytest.mark.parametrize("dataset", sorted(RAW_MODELS))
def test_table_fills_exactly_the_model_columns(dataset: str) -> None:
    endpoint = parsers.ENDPOINTS[dataset]
    filled = [field.column for field in endpoint.fields] + list(endpoint.fixed)
    assert sorted(filled) == sorted(polars_schema(RAW_MODELS[dataset]))
    assert len(filled) == len(set(filled))
    assert sorted(endpoint.fixed) == sorted(FIXED.get(dataset, {}))


@pytest.mark.parametrize("dataset", sorted(RAW_MODELS))
def test_a_column_may_be_null_exactly_when_its_field_is_optional_without_a_default(
    dataset: str,
) -> None:
    endpoint = parsers.ENDPOINTS[dataset]
    columns = RAW_MODELS[dataset].to_schema().columns
    for field in endpoint.fields:
        if field.column == endpoint.explode:
            can_be_null = None in (field.default or [])
        else:
            can_be_null = not field.required and field.default is None
        assert columns[field.column].nullable == can_be_null, field
    for name in endpoint.fixed:
        assert not columns[name].nullable


def test_bar_column_names_come_from_the_bar_model() -> None:
    assert OHLC == ("open", "high", "low", "close")
    assert OHLCV[:4] == OHLC
    assert OHLCV[4:] == ("volume",)
    assert BAR_VALUES[:5] == OHLCV
    assert BAR_VALUES[5:] == ("vwap", "transactions")
    for dataset in ("daily_bars", "minute_bars"):
        columns = tuple(polars_schema(RAW_MODELS[dataset]))
        assert columns[2 : 2 + len(BAR_VALUES)] == BAR_VALUES


def test_a_table_that_misses_a_model_column_is_refused() -> None:
    fields = parsers.SPLITS.fields[:-1]
    with pytest.raises(ValueError, match="table columns"):
        parsers.Endpoint("/v3/reference/splits", "splits", fields)


def test_fixed_columns_must_be_given_exactly() -> None:
    with pytest.raises(ValueError, match="fixed columns"):
        parsers.parse_records(parsers.TICKERS, [], {})


# -- the recorded fixtures ----------------------------------------------------------------------
def _expected_value(dtype: pl.DataType, raw: Any) -> Any:
    """A vendor value as the column should hold it, stated with the standard library."""
    if isinstance(dtype, pl.Float64):
        return float(raw)
    if isinstance(dtype, pl.Int64):
        return int(raw)
    if isinstance(dtype, pl.Date):
        return date.fromisoformat(raw)
    if isinstance(dtype, pl.Datetime) and dtype.time_unit == "ms":
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=raw)
    if isinstance(dtype, pl.Datetime):
        return datetime.fromisoformat(raw).astimezone(UTC)
    if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
        keys = [f.name for f in dtype.inner.fields]
        return [{key: item.get(key) for key in keys} for item in raw]
    if isinstance(dtype, pl.String) and isinstance(raw, int):
        return str(raw)  # fiscal_year may come as a bare number
    return raw


def _value_at(row: dict[str, Any], source: str | tuple[str, ...]) -> Any:
    if isinstance(source, str):
        return row.get(source)
    node: Any = row
    for key in source:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _expected_frame(dataset: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    endpoint = parsers.ENDPOINTS[dataset]
    schema = polars_schema(RAW_MODELS[dataset])
    records: list[dict[str, Any]] = []
    for row in rows:
        record = dict(FIXED.get(dataset, {}))
        for field in endpoint.fields:
            raw = _value_at(row, field.source)
            if field.column == "financials_json":
                record[field.column] = json.dumps(
                    raw, separators=(",", ":"), sort_keys=True, ensure_ascii=False
                )
            elif raw is None:
                record[field.column] = field.default
            else:
                record[field.column] = _expected_value(schema[field.column], raw)
        if endpoint.explode is None:
            records.append(record)
        else:
            tickers = list(dict.fromkeys(row.get("tickers") or [])) or [None]
            records.extend({**record, endpoint.explode: ticker} for ticker in tickers)
    return pl.DataFrame(records, schema=schema)


def _expected_rows(dataset: str, rows: list[dict[str, Any]]) -> int:
    if dataset == "financials":
        return sum(len(set(row.get("tickers") or [])) or 1 for row in rows)
    return len(rows)


@pytest.mark.parametrize(("dataset", "relative"), CASES)
def test_fixture_gives_the_frame_stated_by_the_fixture_and_the_model(
    dataset: str, relative: str
) -> None:
    rows = fixture_results(relative)
    frame = PARSERS[dataset](rows)

    assert frame.height == _expected_rows(dataset, rows) > 0
    assert frame.schema == polars_schema(RAW_MODELS[dataset])
    assert_frame_equal(frame, _expected_frame(dataset, rows), check_exact=True)
    RAW_MODELS[dataset].validate(frame)
    if dataset == "financials":
        for parsed, row in zip(frame["financials_json"], rows, strict=False):
            assert json.loads(parsed) == row["financials"]


@pytest.mark.parametrize(("dataset", "relative"), CASES)
def test_fixture_parses_the_same_row_by_row(dataset: str, relative: str) -> None:
    rows = fixture_results(relative)
    endpoint = parsers.ENDPOINTS[dataset]
    fixed = FIXED.get(dataset, {})
    assert_frame_equal(
        parsers.parse_records(endpoint, rows, fixed, columnar=False),
        parsers.parse_records(endpoint, rows, fixed),
        check_exact=True,
    )


def test_every_parser_over_every_fixture_gives_its_schema_or_a_schema_error() -> None:
    folder = fixtures_dir()
    paths = sorted(folder.glob("*/*.json"))
    assert len(paths) >= len(CASES)
    parsed = 0
    refused: list[tuple[str, PolygonSchemaError]] = []
    for path in paths:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(payload, dict) or "results" not in payload:
            continue
        results = payload["results"]
        rows = results if isinstance(results, list) else [results]
        for dataset, parse in PARSERS.items():
            try:
                frame = parse(rows)
            except PolygonSchemaError as error:
                refused.append((dataset, error))
                continue
            assert frame.schema == parsers.RAW_SCHEMAS[dataset], (path.name, dataset)
            parsed += 1
    assert parsed >= len(CASES)
    assert refused
    for dataset, refusal in refused:
        assert refusal.endpoint == parsers.ENDPOINTS[dataset].path
        assert f"field {refusal.field!r}" in str(refusal) or refusal.field == "<row>"
