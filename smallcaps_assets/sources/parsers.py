"""Pure functions turning Polygon ``results`` rows into typed Polars frames.

Each endpoint is a field table (:class:`Endpoint`): for every vendor field, the column it fills,
the conversion of its JSON value and whether it is required. One function,
:func:`parse_records`, reads any table. It returns a frame with exactly the dataset's
``RAW_SCHEMAS`` entry (derived from its Pandera model in ``core/schemas.py``; same column order
and dtypes for any input, the empty one included), so downstream code never sees an inferred
dtype. A row that lacks a required field, or carries a value of the wrong JSON type, raises
:class:`PolygonSchemaError` naming the endpoint, the field and the row; optional fields that are
absent or null take their default, which is null unless the table gives one.

Timestamps are UTC. ``window_start`` keeps Polygon's millisecond epoch (``t``) losslessly; note
that grouped-daily ``t`` is the session *close* (16:00 ET) while custom bars stamp the window
start, so the name follows the flat files rather than the grouped endpoint's semantics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, NamedTuple, NoReturn

import polars as pl

from smallcaps_assets.core.schemas import RAW_MODELS, polars_schema
from smallcaps_assets.sources.errors import PolygonSchemaError

__all__ = [
    "DAILY_BARS_SCHEMA",
    "DIVIDENDS_SCHEMA",
    "ENDPOINTS",
    "FINANCIALS_SCHEMA",
    "MINUTE_BARS_SCHEMA",
    "NEWS_SCHEMA",
    "RAW_SCHEMAS",
    "SPLITS_SCHEMA",
    "TICKERS_SCHEMA",
    "TICKER_DETAILS_SCHEMA",
    "Conversion",
    "Endpoint",
    "Field",
    "parse_aggregates",
    "parse_dividends",
    "parse_financials",
    "parse_grouped_daily",
    "parse_news",
    "parse_records",
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


# -- conversions: the typed value, or _Invalid saying what was wrong ------------------------------
class _Invalid(Exception):
    """A value a conversion refuses; ``at`` points inside it (``[0].sentiment``) when needed."""

    def __init__(self, problem: str, at: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.at = at


def _preview(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _wrong(expected: str, value: Any) -> _Invalid:
    return _Invalid(f"must be {expected}, got {_preview(value)}")


_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _wrong("a string", value)


def _as_float(value: Any) -> float:
    # bool is an int subclass; true/false where a number belongs is a broken row, not 1.0/0.0.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _wrong("a number", value)


def _as_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    # JSON encoders sometimes emit integral counts as 154000.0.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _wrong("an integer", value)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _wrong("a boolean", value)


def _as_date(value: Any) -> date:
    # date.fromisoformat also takes "20200101" and week dates; Polygon sends only YYYY-MM-DD,
    # so anything else means the field changed meaning and should stop the run.
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _wrong("a YYYY-MM-DD date", value)


def _as_utc_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        # A naive timestamp would be silently read as UTC; Polygon always sends an offset.
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    raise _wrong("an RFC 3339 timestamp with a UTC offset", value)


def _as_str_list(value: Any) -> list[str]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise _wrong("a list of strings", value)


def _as_distinct_tickers(value: Any) -> list[str | None]:
    # A filing lists every ticker of the issuer (share classes), repeats included; a filing
    # without tickers keeps one row with a null ticker.
    return list(dict.fromkeys(_as_str_list(value))) or [None]


def _as_fiscal_year(value: Any) -> str:
    # Documented as a string ("2022"); accept a bare integer rather than failing a whole day.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _as_str(value)


def _as_statements_json(value: Any) -> str:
    if not isinstance(value, dict):
        raise _wrong("an object", value)
    # Sorted keys make the text (and so the stored file's hash) independent of key order.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# Keys of one news insight and whether each is required; all are strings.
_INSIGHT_KEYS: Final = (("ticker", True), ("sentiment", True), ("sentiment_reasoning", False))


def _as_insights(value: Any) -> list[dict[str, str | None]]:
    if not isinstance(value, list):
        raise _wrong("a list", value)
    insights: list[dict[str, str | None]] = []
    for position, item in enumerate(value):
        at = f"[{position}]"
        if not isinstance(item, dict):
            raise _Invalid(f"must be an object, got {_preview(item)}", at)
        values: dict[str, str | None] = {}
        for key, required in _INSIGHT_KEYS:
            part = item.get(key)
            if part is None:
                if required:
                    raise _Invalid("is required but missing or null", f"{at}.{key}")
                values[key] = None
            elif isinstance(part, str):
                values[key] = part
            else:
                raise _Invalid(f"must be a string, got {_preview(part)}", f"{at}.{key}")
        insights.append(values)
    return insights


@dataclass(frozen=True)
class Conversion:
    """How one JSON value becomes a column value (or :class:`_Invalid`).

    ``exact`` lists the JSON types a value may have to be stored as it is, letting a table whose
    every field has them skip the row-by-row pass (see :func:`_columnar`); it is empty when
    every value needs converting. ``type()`` is compared exactly, so bool (an int subclass) is
    never taken for a number.
    """

    convert: Callable[[Any], Any]
    exact: frozenset[type] = frozenset()


STRING: Final = Conversion(_as_str, frozenset({str}))
# Ints are stored as they are: the Float64 column holds the same value float() would give.
NUMBER: Final = Conversion(_as_float, frozenset({int, float}))
INTEGER: Final = Conversion(_as_int, frozenset({int}))
# Polygon's `t`: an integer millisecond epoch, which a Datetime("ms") column stores as is.
EPOCH_MS: Final = INTEGER
BOOLEAN: Final = Conversion(_as_bool, frozenset({bool}))
DATE: Final = Conversion(_as_date)
UTC_TIMESTAMP: Final = Conversion(_as_utc_datetime)
STRING_LIST: Final = Conversion(_as_str_list)
DISTINCT_TICKERS: Final = Conversion(_as_distinct_tickers)
FISCAL_YEAR: Final = Conversion(_as_fiscal_year)
STATEMENTS_JSON: Final = Conversion(_as_statements_json)
INSIGHTS: Final = Conversion(_as_insights)

REQUIRED: Final = True
OPTIONAL: Final = False


class Field(NamedTuple):
    """One row of a field table: vendor field -> column, conversion, required or optional.

    ``source`` is the vendor key, or a key path into nested objects (always optional: a missing
    level is null). An optional field that is absent or null takes ``default``.
    """

    source: str | tuple[str, ...]
    column: str
    conversion: Conversion
    required: bool
    default: Any = None


@dataclass(frozen=True)
class Endpoint:
    """The field table of one endpoint and how its rows are named in errors.

    Fields are read in table order, so a row with several problems reports the first. ``fixed``
    columns take one value for the whole call (the date asked for, the ticker of a bar series);
    a fixed ``ticker`` also names the rows in errors. ``explode`` names a column whose converted
    value is a list: the record becomes one row per item. Fields and fixed columns together are
    exactly the dataset's columns.
    """

    path: str
    dataset: str
    fields: tuple[Field, ...]
    fixed: tuple[str, ...] = ()
    ticker_key: str | None = None
    label_key: str | None = None
    explode: str | None = None

    def __post_init__(self) -> None:
        columns = [field.column for field in self.fields] + list(self.fixed)
        if sorted(columns) != sorted(self.schema):
            raise ValueError(f"{self.path}: table columns {columns} != {list(self.schema)}")

    @property
    def schema(self) -> pl.Schema:
        return RAW_SCHEMAS[self.dataset]


# The values of one bar, shared by grouped-daily and custom-range bars.
_BAR_VALUES: Final = (
    Field("o", "open", NUMBER, REQUIRED),
    Field("h", "high", NUMBER, REQUIRED),
    Field("l", "low", NUMBER, REQUIRED),
    Field("c", "close", NUMBER, REQUIRED),
    Field("v", "volume", NUMBER, REQUIRED),
    Field("vw", "vwap", NUMBER, OPTIONAL),
    Field("n", "transactions", INTEGER, OPTIONAL),
)

TICKERS: Final = Endpoint(
    "/v3/reference/tickers",
    "tickers",
    (
        Field("ticker", "ticker", STRING, REQUIRED),
        Field("name", "name", STRING, REQUIRED),
        Field("market", "market", STRING, REQUIRED),
        Field("locale", "locale", STRING, OPTIONAL),
        Field("primary_exchange", "primary_exchange", STRING, OPTIONAL),
        Field("type", "type", STRING, OPTIONAL),
        Field("active", "active", BOOLEAN, REQUIRED),
        Field("currency_name", "currency_name", STRING, OPTIONAL),
        Field("cik", "cik", STRING, OPTIONAL),
        Field("composite_figi", "composite_figi", STRING, OPTIONAL),
        Field("share_class_figi", "share_class_figi", STRING, OPTIONAL),
        Field("last_updated_utc", "last_updated_utc", UTC_TIMESTAMP, OPTIONAL),
        Field("delisted_utc", "delisted_utc", UTC_TIMESTAMP, OPTIONAL),
    ),
    fixed=("as_of",),
    ticker_key="ticker",
)

TICKER_DETAILS: Final = Endpoint(
    "/v3/reference/tickers/{ticker}",
    "ticker_details",
    (
        Field("ticker", "ticker", STRING, REQUIRED),
        Field("name", "name", STRING, REQUIRED),
        Field("market", "market", STRING, OPTIONAL),
        Field("locale", "locale", STRING, OPTIONAL),
        Field("primary_exchange", "primary_exchange", STRING, OPTIONAL),
        Field("type", "type", STRING, OPTIONAL),
        Field("active", "active", BOOLEAN, REQUIRED),
        Field("currency_name", "currency_name", STRING, OPTIONAL),
        Field("cik", "cik", STRING, OPTIONAL),
        Field("list_date", "list_date", DATE, OPTIONAL),
        Field("delisted_utc", "delisted_utc", UTC_TIMESTAMP, OPTIONAL),
        Field("market_cap", "market_cap", NUMBER, OPTIONAL),
        Field("share_class_shares_outstanding", "share_class_shares_outstanding", NUMBER, OPTIONAL),
        Field("weighted_shares_outstanding", "weighted_shares_outstanding", NUMBER, OPTIONAL),
        Field("sic_code", "sic_code", STRING, OPTIONAL),
        Field("sic_description", "sic_description", STRING, OPTIONAL),
        Field("total_employees", "total_employees", INTEGER, OPTIONAL),
        Field("round_lot", "round_lot", INTEGER, OPTIONAL),
    ),
    fixed=("as_of",),
    ticker_key="ticker",
)

GROUPED_DAILY: Final = Endpoint(
    "/v2/aggs/grouped/locale/us/market/stocks/{date}",
    "daily_bars",
    (
        Field("T", "ticker", STRING, REQUIRED),
        *_BAR_VALUES,
        # Polygon leaves `otc` out when it is false.
        Field("otc", "otc", BOOLEAN, OPTIONAL, default=False),
        Field("t", "window_start", EPOCH_MS, REQUIRED),
    ),
    fixed=("date",),
    ticker_key="T",
)

# The rows carry no ticker of their own: it is the one asked for.
AGGREGATES: Final = Endpoint(
    "/v2/aggs/ticker/{ticker}/range",
    "minute_bars",
    (Field("t", "window_start", EPOCH_MS, REQUIRED), *_BAR_VALUES),
    fixed=("ticker",),
)

# A 2-for-1 split is from=1, to=2; reverse splits invert.
SPLITS: Final = Endpoint(
    "/v3/reference/splits",
    "splits",
    (
        Field("id", "id", STRING, OPTIONAL),
        Field("ticker", "ticker", STRING, REQUIRED),
        Field("execution_date", "execution_date", DATE, REQUIRED),
        Field("split_from", "split_from", NUMBER, REQUIRED),
        Field("split_to", "split_to", NUMBER, REQUIRED),
    ),
    ticker_key="ticker",
)

DIVIDENDS: Final = Endpoint(
    "/v3/reference/dividends",
    "dividends",
    (
        Field("id", "id", STRING, OPTIONAL),
        Field("ticker", "ticker", STRING, REQUIRED),
        Field("cash_amount", "cash_amount", NUMBER, REQUIRED),
        Field("currency", "currency", STRING, OPTIONAL),
        Field("declaration_date", "declaration_date", DATE, OPTIONAL),
        Field("dividend_type", "dividend_type", STRING, OPTIONAL),
        Field("ex_dividend_date", "ex_dividend_date", DATE, REQUIRED),
        Field("frequency", "frequency", INTEGER, OPTIONAL),
        Field("pay_date", "pay_date", DATE, OPTIONAL),
        Field("record_date", "record_date", DATE, OPTIONAL),
    ),
    ticker_key="ticker",
)

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

# One output row per filing and listed ticker, to join on ticker directly.
FINANCIALS: Final = Endpoint(
    "/vX/reference/financials",
    "financials",
    (
        Field("cik", "cik", STRING, REQUIRED),
        Field("end_date", "end_date", DATE, REQUIRED),
        Field("filing_date", "filing_date", DATE, REQUIRED),
        # The whole statement object, kept as text next to the flattened concepts.
        Field("financials", "financials_json", STATEMENTS_JSON, REQUIRED),
        Field("company_name", "company_name", STRING, OPTIONAL),
        Field("start_date", "start_date", DATE, OPTIONAL),
        Field("acceptance_datetime", "acceptance_datetime", UTC_TIMESTAMP, OPTIONAL),
        Field("fiscal_period", "fiscal_period", STRING, OPTIONAL),
        Field("fiscal_year", "fiscal_year", FISCAL_YEAR, OPTIONAL),
        Field("timeframe", "timeframe", STRING, OPTIONAL),
        Field("source_filing_url", "source_filing_url", STRING, OPTIONAL),
        *(
            Field(("financials", statement, concept, "value"), column, NUMBER, OPTIONAL)
            for column, (statement, concept) in FINANCIAL_CONCEPTS.items()
        ),
        Field("tickers", "ticker", DISTINCT_TICKERS, OPTIONAL, default=[None]),
    ),
    label_key="cik",
    explode="ticker",
)

# ``tickers``, ``keywords`` and ``insights`` are empty lists when absent (older articles have
# neither keywords nor insights).
NEWS: Final = Endpoint(
    "/v2/reference/news",
    "news",
    (
        Field("id", "id", STRING, REQUIRED),
        Field("published_utc", "published_utc", UTC_TIMESTAMP, REQUIRED),
        Field("title", "title", STRING, REQUIRED),
        Field("author", "author", STRING, OPTIONAL),
        Field("article_url", "article_url", STRING, OPTIONAL),
        Field(("publisher", "name"), "publisher_name", STRING, OPTIONAL),
        Field("description", "description", STRING, OPTIONAL),
        Field("tickers", "tickers", STRING_LIST, OPTIONAL, default=[]),
        Field("keywords", "keywords", STRING_LIST, OPTIONAL, default=[]),
        Field("insights", "insights", INSIGHTS, OPTIONAL, default=[]),
    ),
    label_key="id",
)

ENDPOINTS: Final[dict[str, Endpoint]] = {
    endpoint.dataset: endpoint
    for endpoint in (
        TICKERS,
        TICKER_DETAILS,
        GROUPED_DAILY,
        SPLITS,
        DIVIDENDS,
        FINANCIALS,
        NEWS,
        AGGREGATES,
    )
}
"""Each raw dataset's endpoint table, by dataset name (the keys of ``RAW_SCHEMAS``)."""


# -- reading a table ----------------------------------------------------------------------------
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

    def read(self, field: Field) -> Any:
        """The converted value of ``field``, its default when absent, or a precise error."""
        source, _, conversion, required, default = field
        if isinstance(source, str):
            name, value = source, self._data.get(source)
        else:
            name, value = self._nested(source)
        if value is None:
            if required:
                self.fail(name, "is required but missing or null")
            return default
        try:
            return conversion.convert(value)
        except _Invalid as invalid:
            self.fail(name + invalid.at, invalid.problem)

    def _nested(self, path: tuple[str, ...]) -> tuple[str, Any]:
        """The value at a key path: a missing level is null, a level that is not an object is
        bad."""
        node: Any = self._data
        for depth, key in enumerate(path):
            if node is None:
                return ".".join(path), None
            if not isinstance(node, dict):
                self.fail(".".join(path[:depth]), f"must be an object, got {_preview(node)}")
            node = node.get(key)
        return ".".join(path), node


def parse_records(
    endpoint: Endpoint,
    rows: Sequence[Any],
    fixed: Mapping[str, Any] | None = None,
    *,
    columnar: bool = True,
) -> pl.DataFrame:
    """``rows`` of ``endpoint`` as a frame with exactly its dataset's schema.

    ``fixed`` gives the value of each of the endpoint's fixed columns. With ``columnar`` a table
    whose fields all have exact JSON types is first tried column by column (bars come by the
    million); any row that is not exactly well typed falls back to the row-wise pass, which
    accepts it or raises the precise error, so both passes yield the same frame.
    """
    fixed = dict(fixed or {})
    if sorted(fixed) != sorted(endpoint.fixed):
        raise ValueError(f"{endpoint.path}: fixed columns {sorted(fixed)} != {endpoint.fixed}")
    columns = _columnar(endpoint, rows, fixed) if columnar else None
    if columns is None:
        columns = _row_wise(endpoint, rows, fixed)
    # Building from typed Python values with an explicit schema never infers a dtype, so an empty
    # input and a page of nulls produce the same frame layout as a full page.
    return pl.DataFrame(columns, schema=endpoint.schema)


def _row_wise(
    endpoint: Endpoint, rows: Sequence[Any], fixed: Mapping[str, Any]
) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in endpoint.schema}
    reads = [(field, columns[field.column]) for field in endpoint.fields]
    constants = [(columns[name], value) for name, value in fixed.items()]
    ticker = fixed.get("ticker")
    for index, data in enumerate(rows):
        row = _Row(
            endpoint.path,
            index,
            data,
            ticker_key=endpoint.ticker_key,
            label_key=endpoint.label_key,
            ticker=ticker,
        )
        if endpoint.explode is None:
            for field, target in reads:
                target.append(row.read(field))
            for target, value in constants:
                target.append(value)
            continue
        record = {**fixed, **{field.column: row.read(field) for field in endpoint.fields}}
        for item in record[endpoint.explode]:
            for name, target in columns.items():
                target.append(item if name == endpoint.explode else record[name])
    return columns


_NONE_TYPE: Final = type(None)


def _columnar(
    endpoint: Endpoint, rows: Sequence[Any], fixed: Mapping[str, Any]
) -> dict[str, list[Any]] | None:
    """Column lists when the table allows it and every row is a plain object whose fields have
    exactly the accepted JSON types; None sends the rows to the row-wise pass."""
    fields = endpoint.fields
    if endpoint.explode is not None or not all(
        isinstance(field.source, str) and field.conversion.exact for field in fields
    ):
        return None
    if not all(type(row) is dict for row in rows):
        return None
    values: dict[str, list[Any]] = {name: [value] * len(rows) for name, value in fixed.items()}
    for field in fields:
        source = field.source
        column = [row.get(source) for row in rows]
        allowed = (
            field.conversion.exact if field.required else field.conversion.exact | {_NONE_TYPE}
        )
        if not set(map(type, column)) <= allowed:
            return None
        if field.default is not None:
            column = [field.default if value is None else value for value in column]
        values[field.column] = column
    return {name: values[name] for name in endpoint.schema}


# -- the parsers ---------------------------------------------------------------------------------
def parse_tickers(rows: Sequence[Mapping[str, Any]], as_of: date) -> pl.DataFrame:
    """``/v3/reference/tickers`` rows as listed on ``as_of``."""
    return parse_records(TICKERS, rows, {"as_of": as_of})


def parse_ticker_details(rows: Sequence[Mapping[str, Any]], as_of: date) -> pl.DataFrame:
    """``/v3/reference/tickers/{ticker}`` ``results`` objects, one per ticker, as of ``as_of``."""
    return parse_records(TICKER_DETAILS, rows, {"as_of": as_of})


def parse_grouped_daily(rows: Sequence[Mapping[str, Any]], day: date) -> pl.DataFrame:
    """``/v2/aggs/grouped/locale/us/market/stocks/{day}`` rows: one bar per ticker."""
    return parse_records(GROUPED_DAILY, rows, {"date": day})


def parse_aggregates(rows: Sequence[Mapping[str, Any]], ticker: str) -> pl.DataFrame:
    """``/v2/aggs/ticker/{ticker}/range/...`` rows (the rows carry no ticker of their own)."""
    return parse_records(AGGREGATES, rows, {"ticker": ticker})


def parse_splits(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """``/v3/reference/splits`` rows. A 2-for-1 split is from=1, to=2; reverse splits invert."""
    return parse_records(SPLITS, rows)


def parse_dividends(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """``/v3/reference/dividends`` rows."""
    return parse_records(DIVIDENDS, rows)


def parse_financials(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """``/vX/reference/financials`` rows: one output row per filing and listed ticker.

    A filing lists every ticker of the issuer (share classes), so it is repeated per ticker to
    join on ticker directly; a filing without tickers keeps one row with a null ticker.
    """
    return parse_records(FINANCIALS, rows)


def parse_news(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """``/v2/reference/news`` rows, one per article. ``tickers``, ``keywords`` and ``insights``
    are empty lists when absent (older articles have neither keywords nor insights)."""
    return parse_records(NEWS, rows)


# The row-wise pass of the two bar parsers, for tests that hold it equal to the column-wise one.
def _parse_grouped_daily_checked(rows: Sequence[Mapping[str, Any]], day: date) -> pl.DataFrame:
    return parse_records(GROUPED_DAILY, rows, {"date": day}, columnar=False)


def _parse_aggregates_checked(rows: Sequence[Mapping[str, Any]], ticker: str) -> pl.DataFrame:
    return parse_records(AGGREGATES, rows, {"ticker": ticker}, columnar=False)
