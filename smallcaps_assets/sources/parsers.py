"""Pure functions turning Polygon ``results`` rows into typed Polars frames.

Each parser returns a frame with exactly its ``*_SCHEMA`` (same column order and dtypes for any
input, the empty one included), so downstream code and the Pandera models in
``core/schemas.py`` never see an inferred dtype. A row that lacks a required field, or carries a
value of the wrong JSON type, raises :class:`PolygonSchemaError` naming the endpoint, the field
and the row; optional fields that are absent or null become null.

Timestamps are UTC. ``window_start`` keeps Polygon's millisecond epoch (``t``) losslessly; note
that grouped-daily ``t`` is the session *close* (16:00 ET) while custom bars stamp the window
start, so the name follows the flat files rather than the grouped endpoint's semantics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, NoReturn, TypeVar

import polars as pl

from smallcaps_assets.core.schemas import RAW_MODELS, polars_schema
from smallcaps_assets.sources.errors import PolygonSchemaError

__all__ = [
    "DAILY_BARS_SCHEMA",
    "DIVIDENDS_SCHEMA",
    "FINANCIALS_SCHEMA",
    "MINUTE_BARS_SCHEMA",
    "NEWS_SCHEMA",
    "RAW_SCHEMAS",
    "SPLITS_SCHEMA",
    "TICKERS_SCHEMA",
    "TICKER_DETAILS_SCHEMA",
    "parse_aggregates",
    "parse_dividends",
    "parse_financials",
    "parse_grouped_daily",
    "parse_news",
    "parse_splits",
    "parse_ticker_details",
    "parse_tickers",
]

# The plain Polars schema of each raw dataset, derived from its Pandera model (the one statement of
# the dataset's columns, order and dtypes).
RAW_SCHEMAS: Final[dict[str, pl.Schema]] = {
    name: polars_schema(model) for name, model in RAW_MODELS.items()
}
TICKERS_SCHEMA: Final = RAW_SCHEMAS["tickers"]
TICKER_DETAILS_SCHEMA: Final = RAW_SCHEMAS["ticker_details"]
DAILY_BARS_SCHEMA: Final = RAW_SCHEMAS["daily_bars"]
MINUTE_BARS_SCHEMA: Final = RAW_SCHEMAS["minute_bars"]
SPLITS_SCHEMA: Final = RAW_SCHEMAS["splits"]
DIVIDENDS_SCHEMA: Final = RAW_SCHEMAS["dividends"]
FINANCIALS_SCHEMA: Final = RAW_SCHEMAS["financials"]
NEWS_SCHEMA: Final = RAW_SCHEMAS["news"]

# Flattened concepts: output column -> (statement, concept key) inside `financials`.
FINANCIAL_CONCEPTS: Final[Mapping[str, tuple[str, str]]] = {
    "revenues": ("income_statement", "revenues"),
    "net_income_loss": ("income_statement", "net_income_loss"),
    "operating_income_loss": ("income_statement", "operating_income_loss"),
    "basic_average_shares": ("income_statement", "basic_average_shares"),
    "diluted_average_shares": ("income_statement", "diluted_average_shares"),
    "operating_cash_flow": ("cash_flow_statement", "net_cash_flow_from_operating_activities"),
    "assets": ("balance_sheet", "assets"),
    "current_assets": ("balance_sheet", "current_assets"),
    "current_liabilities": ("balance_sheet", "current_liabilities"),
    "liabilities": ("balance_sheet", "liabilities"),
    "equity": ("balance_sheet", "equity"),
}

T = TypeVar("T")


# -- value converters: return the typed value or raise _WrongType -----------------------------
class _WrongType(Exception):
    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _WrongType("a string")


def _as_float(value: Any) -> float:
    # bool is an int subclass; true/false where a number belongs is a broken row, not 1.0/0.0.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _WrongType("a number")


def _as_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    # JSON encoders sometimes emit integral counts as 154000.0.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _WrongType("an integer")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _WrongType("a boolean")


def _as_date(value: Any) -> date:
    # date.fromisoformat also takes "20200101" and week dates; Polygon sends only YYYY-MM-DD,
    # so anything else means the field changed meaning and should stop the run.
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _WrongType("a YYYY-MM-DD date")


def _as_utc_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        # A naive timestamp would be silently read as UTC; Polygon always sends an offset.
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    raise _WrongType("an RFC 3339 timestamp with a UTC offset")


def _as_str_list(value: Any) -> list[str]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise _WrongType("a list of strings")


_WHOLE_ROW: Final = "<row>"


class _Row:
    """One JSON row plus where it came from, so every error can say exactly which value broke."""

    __slots__ = ("_data", "_endpoint", "_index", "_label", "ticker")

    def __init__(
        self,
        endpoint: str,
        index: int,
        data: Any,
        *,
        ticker_key: str | None = None,
        label_key: str | None = None,
        ticker: str | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._index = index
        self.ticker = ticker
        self._label: str | None = None
        if not isinstance(data, dict):
            self._data: Mapping[str, Any] = {}
            self.fail(_WHOLE_ROW, f"is a {type(data).__name__}, expected an object")
        self._data = data
        if ticker is None and ticker_key is not None:
            value = data.get(ticker_key)
            self.ticker = value if isinstance(value, str) else None
        if label_key is not None:
            value = data.get(label_key)
            self._label = f"{label_key} {value!r}" if isinstance(value, str) else None

    def fail(self, field: str, problem: str) -> NoReturn:
        where = f"row {self._index}"
        if self.ticker is not None:
            where += f" (ticker {self.ticker!r})"
        elif self._label is not None:
            where += f" ({self._label})"
        subject = "the row" if field == _WHOLE_ROW else f"field {field!r}"
        raise PolygonSchemaError(
            f"{self._endpoint} {where}: {subject} {problem}",
            endpoint=self._endpoint,
            field=field,
            row_index=self._index,
            ticker=self.ticker,
        )

    def optional(self, field: str, convert: Callable[[Any], T]) -> T | None:
        value = self._data.get(field)
        if value is None:
            return None
        try:
            return convert(value)
        except _WrongType as wrong:
            self.fail(field, f"must be {wrong.expected}, got {_preview(value)}")

    def required(self, field: str, convert: Callable[[Any], T]) -> T:
        value = self.optional(field, convert)
        if value is None:
            self.fail(field, "is required but missing or null")
        return value

    def nested(self, path: Sequence[str], convert: Callable[[Any], T]) -> T | None:
        """Optional value at a key path; a missing level means null, a non-object level is bad."""
        node: Any = self._data
        for depth, key in enumerate(path):
            if node is None:
                return None
            if not isinstance(node, dict):
                self.fail(".".join(path[:depth]), f"must be an object, got {_preview(node)}")
            node = node.get(key)
        if node is None:
            return None
        try:
            return convert(node)
        except _WrongType as wrong:
            self.fail(".".join(path), f"must be {wrong.expected}, got {_preview(node)}")


def _preview(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _frame(columns: Mapping[str, list[Any]], schema: pl.Schema) -> pl.DataFrame:
    # Building from typed Python values with an explicit schema never infers a dtype, so an empty
    # input and a page of nulls produce the same frame layout as a full page.
    return pl.DataFrame(columns, schema=schema)


def _empty_columns(schema: pl.Schema) -> dict[str, list[Any]]:
    return {name: [] for name in schema}


# -- parsers -------------------------------------------------------------------------------------
def parse_tickers(rows: Sequence[Mapping[str, Any]], as_of: date) -> pl.DataFrame:
    """``/v3/reference/tickers`` rows as listed on ``as_of``."""
    endpoint = "/v3/reference/tickers"
    columns = _empty_columns(TICKERS_SCHEMA)
    for index, data in enumerate(rows):
        row = _Row(endpoint, index, data, ticker_key="ticker")
        columns["ticker"].append(row.required("ticker", _as_str))
        columns["name"].append(row.required("name", _as_str))
        columns["market"].append(row.required("market", _as_str))
        columns["locale"].append(row.optional("locale", _as_str))
        columns["primary_exchange"].append(row.optional("primary_exchange", _as_str))
        columns["type"].append(row.optional("type", _as_str))
        columns["active"].append(row.required("active", _as_bool))
        columns["currency_name"].append(row.optional("currency_name", _as_str))
        columns["cik"].append(row.optional("cik", _as_str))
        columns["composite_figi"].append(row.optional("composite_figi", _as_str))
        columns["share_class_figi"].append(row.optional("share_class_figi", _as_str))
        columns["last_updated_utc"].append(row.optional("last_updated_utc", _as_utc_datetime))
        columns["delisted_utc"].append(row.optional("delisted_utc", _as_utc_datetime))
        columns["as_of"].append(as_of)
    return _frame(columns, TICKERS_SCHEMA)


def parse_ticker_details(rows: Sequence[Mapping[str, Any]], as_of: date) -> pl.DataFrame:
    """``/v3/reference/tickers/{ticker}`` ``results`` objects, one per ticker, as of ``as_of``."""
    endpoint = "/v3/reference/tickers/{ticker}"
    columns = _empty_columns(TICKER_DETAILS_SCHEMA)
    for index, data in enumerate(rows):
        row = _Row(endpoint, index, data, ticker_key="ticker")
        columns["ticker"].append(row.required("ticker", _as_str))
        columns["as_of"].append(as_of)
        columns["name"].append(row.required("name", _as_str))
        columns["market"].append(row.optional("market", _as_str))
        columns["locale"].append(row.optional("locale", _as_str))
        columns["primary_exchange"].append(row.optional("primary_exchange", _as_str))
        columns["type"].append(row.optional("type", _as_str))
        columns["active"].append(row.required("active", _as_bool))
        columns["currency_name"].append(row.optional("currency_name", _as_str))
        columns["cik"].append(row.optional("cik", _as_str))
        columns["list_date"].append(row.optional("list_date", _as_date))
        columns["delisted_utc"].append(row.optional("delisted_utc", _as_utc_datetime))
        columns["market_cap"].append(row.optional("market_cap", _as_float))
        columns["share_class_shares_outstanding"].append(
            row.optional("share_class_shares_outstanding", _as_float)
        )
        columns["weighted_shares_outstanding"].append(
            row.optional("weighted_shares_outstanding", _as_float)
        )
        columns["sic_code"].append(row.optional("sic_code", _as_str))
        columns["sic_description"].append(row.optional("sic_description", _as_str))
        columns["total_employees"].append(row.optional("total_employees", _as_int))
        columns["round_lot"].append(row.optional("round_lot", _as_int))
    return _frame(columns, TICKER_DETAILS_SCHEMA)


def parse_grouped_daily(rows: Sequence[Mapping[str, Any]], day: date) -> pl.DataFrame:
    """``/v2/aggs/grouped/locale/us/market/stocks/{day}`` rows: one bar per ticker."""
    clean = _clean_columns(rows, _GROUPED_FIELDS)
    if clean is None:
        return _parse_grouped_daily_checked(rows, day)
    columns = {
        "ticker": clean["T"],
        "date": [day] * len(rows),
        **{name: clean[key] for name, key in _BAR_VALUE_COLUMNS.items()},
        # Polygon leaves `otc` out when it is false.
        "otc": [value is True for value in clean["otc"]],
        "window_start": clean["t"],
    }
    return _frame(columns, DAILY_BARS_SCHEMA)


def parse_aggregates(rows: Sequence[Mapping[str, Any]], ticker: str) -> pl.DataFrame:
    """``/v2/aggs/ticker/{ticker}/range/...`` rows (the rows carry no ticker of their own)."""
    clean = _clean_columns(rows, _AGGREGATE_FIELDS)
    if clean is None:
        return _parse_aggregates_checked(rows, ticker)
    columns = {
        "ticker": [ticker] * len(rows),
        "window_start": clean["t"],
        **{name: clean[key] for name, key in _BAR_VALUE_COLUMNS.items()},
    }
    return _frame(columns, MINUTE_BARS_SCHEMA)


# Bars come by the million (a day of minute bars for the universe), so the bar parsers first try a
# column-wise pass that only accepts exactly the JSON types the row-wise path accepts without
# conversion. Anything else (a missing field, a bool or string where a number belongs, an
# integral float count, a non-object row) falls back to the row-wise path, which either accepts it
# or raises the precise PolygonSchemaError. Both paths therefore yield the same frame.
_NONE_TYPE: Final = type(None)
_NUMBER: Final = frozenset({int, float})  # type() is exact, so bool (an int subclass) is excluded
_INTEGER: Final = frozenset({int})
_STRING: Final = frozenset({str})
_BOOLEAN: Final = frozenset({bool})

# JSON key -> (accepted types, required)
_AGGREGATE_FIELDS: Final[Mapping[str, tuple[frozenset[type], bool]]] = {
    "o": (_NUMBER, True),
    "h": (_NUMBER, True),
    "l": (_NUMBER, True),
    "c": (_NUMBER, True),
    "v": (_NUMBER, True),
    "vw": (_NUMBER, False),
    "n": (_INTEGER, False),
    "t": (_INTEGER, True),
}
_GROUPED_FIELDS: Final[Mapping[str, tuple[frozenset[type], bool]]] = {
    "T": (_STRING, True),
    **_AGGREGATE_FIELDS,
    "otc": (_BOOLEAN, False),
}
# Output column -> JSON key for the values shared by both bar frames.
_BAR_VALUE_COLUMNS: Final[Mapping[str, str]] = {
    "open": "o",
    "high": "h",
    "low": "l",
    "close": "c",
    "volume": "v",
    "vwap": "vw",
    "transactions": "n",
}


def _clean_columns(
    rows: Sequence[Mapping[str, Any]], fields: Mapping[str, tuple[frozenset[type], bool]]
) -> dict[str, list[Any]] | None:
    """Column lists when every row is a plain object with well-typed fields, else None."""
    if not all(type(row) is dict for row in rows):
        return None
    columns: dict[str, list[Any]] = {}
    for key, (accepted, required) in fields.items():
        values = [row.get(key) for row in rows]
        allowed = accepted if required else accepted | {_NONE_TYPE}
        if not set(map(type, values)) <= allowed:
            return None
        columns[key] = values
    return columns


def _parse_grouped_daily_checked(rows: Sequence[Mapping[str, Any]], day: date) -> pl.DataFrame:
    endpoint = "/v2/aggs/grouped/locale/us/market/stocks/{date}"
    columns = _empty_columns(DAILY_BARS_SCHEMA)
    for index, data in enumerate(rows):
        row = _Row(endpoint, index, data, ticker_key="T")
        columns["ticker"].append(row.required("T", _as_str))
        columns["date"].append(day)
        _append_bar_values(row, columns)
        columns["otc"].append(bool(row.optional("otc", _as_bool)))
        columns["window_start"].append(row.required("t", _as_int))
    return _frame(columns, DAILY_BARS_SCHEMA)


def _parse_aggregates_checked(rows: Sequence[Mapping[str, Any]], ticker: str) -> pl.DataFrame:
    endpoint = "/v2/aggs/ticker/{ticker}/range"
    columns = _empty_columns(MINUTE_BARS_SCHEMA)
    for index, data in enumerate(rows):
        row = _Row(endpoint, index, data, ticker=ticker)
        columns["ticker"].append(ticker)
        columns["window_start"].append(row.required("t", _as_int))
        _append_bar_values(row, columns)
    return _frame(columns, MINUTE_BARS_SCHEMA)


def _append_bar_values(row: _Row, columns: dict[str, list[Any]]) -> None:
    columns["open"].append(row.required("o", _as_float))
    columns["high"].append(row.required("h", _as_float))
    columns["low"].append(row.required("l", _as_float))
    columns["close"].append(row.required("c", _as_float))
    columns["volume"].append(row.required("v", _as_float))
    columns["vwap"].append(row.optional("vw", _as_float))
    columns["transactions"].append(row.optional("n", _as_int))


def parse_splits(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """``/v3/reference/splits`` rows. A 2-for-1 split is from=1, to=2; reverse splits invert."""
    endpoint = "/v3/reference/splits"
    columns = _empty_columns(SPLITS_SCHEMA)
    for index, data in enumerate(rows):
        row = _Row(endpoint, index, data, ticker_key="ticker")
        columns["id"].append(row.optional("id", _as_str))
        columns["ticker"].append(row.required("ticker", _as_str))
        columns["execution_date"].append(row.required("execution_date", _as_date))
        columns["split_from"].append(row.required("split_from", _as_float))
        columns["split_to"].append(row.required("split_to", _as_float))
    return _frame(columns, SPLITS_SCHEMA)


def parse_dividends(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """``/v3/reference/dividends`` rows."""
    endpoint = "/v3/reference/dividends"
    columns = _empty_columns(DIVIDENDS_SCHEMA)
    for index, data in enumerate(rows):
        row = _Row(endpoint, index, data, ticker_key="ticker")
        columns["id"].append(row.optional("id", _as_str))
        columns["ticker"].append(row.required("ticker", _as_str))
        columns["cash_amount"].append(row.required("cash_amount", _as_float))
        columns["currency"].append(row.optional("currency", _as_str))
        columns["declaration_date"].append(row.optional("declaration_date", _as_date))
        columns["dividend_type"].append(row.optional("dividend_type", _as_str))
        columns["ex_dividend_date"].append(row.required("ex_dividend_date", _as_date))
        columns["frequency"].append(row.optional("frequency", _as_int))
        columns["pay_date"].append(row.optional("pay_date", _as_date))
        columns["record_date"].append(row.optional("record_date", _as_date))
    return _frame(columns, DIVIDENDS_SCHEMA)


def parse_financials(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """``/vX/reference/financials`` rows: one output row per filing and listed ticker.

    A filing lists every ticker of the issuer (share classes), so it is repeated per ticker to
    join on ticker directly; a filing without tickers keeps one row with a null ticker.
    """
    endpoint = "/vX/reference/financials"
    columns = _empty_columns(FINANCIALS_SCHEMA)
    for index, data in enumerate(rows):
        row = _Row(endpoint, index, data, label_key="cik")
        cik = row.required("cik", _as_str)
        end_date = row.required("end_date", _as_date)
        filing_date = row.required("filing_date", _as_date)
        statements = row.required("financials", _as_object)
        filing: dict[str, Any] = {
            "cik": cik,
            "company_name": row.optional("company_name", _as_str),
            "start_date": row.optional("start_date", _as_date),
            "end_date": end_date,
            "filing_date": filing_date,
            "acceptance_datetime": row.optional("acceptance_datetime", _as_utc_datetime),
            "fiscal_period": row.optional("fiscal_period", _as_str),
            "fiscal_year": row.optional("fiscal_year", _as_fiscal_year),
            "timeframe": row.optional("timeframe", _as_str),
            "source_filing_url": row.optional("source_filing_url", _as_str),
        }
        for column, (statement, concept) in FINANCIAL_CONCEPTS.items():
            filing[column] = row.nested(("financials", statement, concept, "value"), _as_float)
        # Sorted keys make the text (and so the stored file's hash) independent of key order.
        filing["financials_json"] = json.dumps(
            statements, separators=(",", ":"), sort_keys=True, ensure_ascii=False
        )
        tickers: list[str | None] = list(row.optional("tickers", _as_str_list) or []) or [None]
        for ticker in dict.fromkeys(tickers):
            columns["ticker"].append(ticker)
            for name, value in filing.items():
                columns[name].append(value)
    return _frame(columns, FINANCIALS_SCHEMA)


def _as_object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise _WrongType("an object")


def _as_fiscal_year(value: Any) -> str:
    # Documented as a string ("2022"); accept a bare integer rather than failing a whole day.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _as_str(value)


def parse_news(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """``/v2/reference/news`` rows, one per article. ``tickers``, ``keywords`` and ``insights``
    are empty lists when absent (older articles have neither keywords nor insights)."""
    endpoint = "/v2/reference/news"
    columns = _empty_columns(NEWS_SCHEMA)
    for index, data in enumerate(rows):
        row = _Row(endpoint, index, data, label_key="id")
        columns["id"].append(row.required("id", _as_str))
        columns["published_utc"].append(row.required("published_utc", _as_utc_datetime))
        columns["title"].append(row.required("title", _as_str))
        columns["author"].append(row.optional("author", _as_str))
        columns["article_url"].append(row.optional("article_url", _as_str))
        columns["publisher_name"].append(row.nested(("publisher", "name"), _as_str))
        columns["description"].append(row.optional("description", _as_str))
        columns["tickers"].append(row.optional("tickers", _as_str_list) or [])
        columns["keywords"].append(row.optional("keywords", _as_str_list) or [])
        columns["insights"].append(_insights(row, row.optional("insights", _as_list) or []))
    return _frame(columns, NEWS_SCHEMA)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    raise _WrongType("a list")


def _insights(row: _Row, items: list[Any]) -> list[dict[str, str | None]]:
    insights: list[dict[str, str | None]] = []
    for position, item in enumerate(items):
        prefix = f"insights[{position}]"
        if not isinstance(item, dict):
            row.fail(prefix, f"must be an object, got {_preview(item)}")
        values: dict[str, str | None] = {}
        for key, required in (
            ("ticker", True),
            ("sentiment", True),
            ("sentiment_reasoning", False),
        ):
            value = item.get(key)
            if value is None:
                if required:
                    row.fail(f"{prefix}.{key}", "is required but missing or null")
                values[key] = None
            elif isinstance(value, str):
                values[key] = value
            else:
                row.fail(f"{prefix}.{key}", f"must be a string, got {_preview(value)}")
        insights.append(values)
    return insights
