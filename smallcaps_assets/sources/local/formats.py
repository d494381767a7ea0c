"""Readers of the bar files a user already has: pure functions from a path to a typed Polars frame.

No Dagster and no HTTP here. Every reader either returns a clean frame or raises
:class:`~smallcaps_assets.sources.local.errors.LocalBarsError` naming the file, the problem and
the first offending row, so a bad file stops the run before anything is built on it.

Minute bars come out in the raw minute-bar layout of the Polygon parsers
(:data:`~smallcaps_assets.sources.parsers.MINUTE_BARS_SCHEMA`: ``window_start`` is the bar
*start*, ms UTC), sorted by ticker and start. Formats:

* the vendor's flat files, one file per session (``.csv``, ``.csv.gz``, ``.parquet``) with
  ``ticker,volume,open,close,high,low,window_start,transactions`` and ``window_start`` in ns
  since the epoch (UTC): minute files (:func:`read_flat_minutes`) and day files
  (:func:`read_flat_days`, ``window_start`` = 00:00 ET of the session);
* plain OHLCV per-ticker files (:func:`read_ohlcv`): ``Datetime`` / ``timestamp`` / ``date``,
  ``Open``, ``High``, ``Low``, ``Close``, ``Volume`` (any case; extra columns ignored; optional
  ``vwap``/``vw`` and ``transactions``/``trades``), the timestamp the bar start, either with a
  UTC offset or naive in a declared timezone;
* Alpha Vantage ``TIME_SERIES_INTRADAY`` JSON (:func:`read_alphavantage`, ``.json[.gz]``).

What is refused: a missing required column, an unparsable timestamp or number, a negative
price or volume (NaN and infinity too), a bar start that is not a whole minute, a bar on a day
that is not an NYSE session, a flat-file row of another session than the file's name, and two
different bars of one ticker at one start. Exactly repeated rows are dropped and counted
(``exact_duplicates``), never silently. A price of zero is let through: the vendor itself
sends such post-market bars, and the raw layer's schema check reports them as it would from
the REST API.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from smallcaps_assets.core import calendar
from smallcaps_assets.core.minute import POST_CLOSE, PRE_OPEN, REGULAR_OPEN, regular_close_et
from smallcaps_assets.core.schemas import BAR_VALUES, OHLCV
from smallcaps_assets.sources.local.errors import LocalBarsError
from smallcaps_assets.sources.parsers import DAILY_BARS_SCHEMA, MINUTE_BARS_SCHEMA

__all__ = [
    "DAILY_SCHEMA",
    "DEFAULT_TIMEZONE",
    "FLAT_REQUIRED",
    "MINUTE_SCHEMA",
    "SPLITS_SCHEMA",
    "SUPPORTED_SUFFIXES",
    "TICKERS_SCHEMA",
    "ParsedBars",
    "daily_from_minutes",
    "file_suffix",
    "merge_bars",
    "read_alphavantage",
    "read_flat_days",
    "read_flat_minutes",
    "read_minute_file",
    "read_ohlcv",
    "read_splits_csv",
    "read_tickers_csv",
    "session_from_file_name",
    "table_columns",
    "ticker_from_file_name",
]

DEFAULT_TIMEZONE: Final = "America/New_York"
NY: Final = calendar.NY.key
SUPPORTED_SUFFIXES: Final = (".csv.gz", ".csv", ".parquet", ".json.gz", ".json")

MINUTE_SCHEMA: Final = MINUTE_BARS_SCHEMA
# One daily bar per ticker and session: regular-session OHLC, volume over 04:00-20:00 ET.
# The raw daily-bar columns without the two a file cannot state (OTC listing, Polygon's stamp).
DAILY_SCHEMA: Final = pl.Schema(
    {k: v for k, v in DAILY_BARS_SCHEMA.items() if k not in ("otc", "window_start")}
)
TICKERS_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "type": pl.String(),
        "primary_exchange": pl.String(),
        "shares_outstanding": pl.Float64(),
        "name": pl.String(),
        "cik": pl.String(),
        "list_date": pl.Date(),
        "delisted_date": pl.Date(),
    }
)
SPLITS_SCHEMA: Final = pl.Schema(
    {
        "ticker": pl.String(),
        "execution_date": pl.Date(),
        "split_from": pl.Float64(),
        "split_to": pl.Float64(),
    }
)

FLAT_REQUIRED: Final = ("ticker", "volume", "open", "close", "high", "low", "window_start")
_KEY: Final = ["ticker", "window_start"]
_MINUTE_MS: Final = 60_000
_NS_PER_MS: Final = 1_000_000
# Plain OHLCV column names (lower case) -> our column; the first one found wins.
_TIMESTAMP_NAMES: Final = ("datetime", "timestamp", "date")
_TICKER_NAMES: Final = ("ticker", "symbol")
_VWAP_NAMES: Final = ("vwap", "vw")
_TRADES_NAMES: Final = ("transactions", "trades")
# Exchange names people write instead of the MIC codes Polygon (and the universe screen) use.
_EXCHANGE_NAMES: Final = {
    "NASDAQ": "XNAS",
    "NYSE": "XNYS",
    "AMEX": "XASE",
    "NYSE AMERICAN": "XASE",
    "NYSEAMERICAN": "XASE",
    "NYSE MKT": "XASE",
}
# Alpha Vantage field names inside one bar of "Time Series (1min)".
_AV_FIELDS: Final = {
    "open": "1. open",
    "high": "2. high",
    "low": "3. low",
    "close": "4. close",
    "volume": "5. volume",
}
_AV_SERIES: Final = "Time Series (1min)"

Where = Callable[[int], str]


@dataclass(frozen=True)
class ParsedBars:
    """Validated bars (:data:`MINUTE_SCHEMA`, or :data:`DAILY_SCHEMA` for day files) and how many
    exactly repeated rows were dropped."""

    frame: pl.DataFrame
    exact_duplicates: int = 0


# -- file names -----------------------------------------------------------------------------------
def file_suffix(path: Path) -> str | None:
    """The supported suffix of ``path`` (``.csv.gz`` before ``.csv``), or None."""
    name = path.name.lower()
    return next((s for s in SUPPORTED_SUFFIXES if name.endswith(s)), None)


def _stem(path: Path) -> str:
    suffix = file_suffix(path)
    return path.name[: -len(suffix)] if suffix else path.stem


def ticker_from_file_name(path: Path) -> str:
    """``GRI.json.gz`` and ``gri_2025-05.csv`` -> ``GRI`` (the name before the first ``_``)."""
    ticker = _stem(path).split("_", 1)[0].strip().upper()
    if not ticker:
        raise LocalBarsError(path, "cannot tell the ticker from the file name; name it TICKER.csv")
    return ticker


def session_from_file_name(path: Path) -> dt.date:
    """The session a flat file holds: its name is the date, e.g. ``2025-05-12.csv.gz``."""
    stem = _stem(path)
    try:
        day = dt.date.fromisoformat(stem)
    except ValueError:
        day = None
    if day is None or len(stem) != 10:
        raise LocalBarsError(
            path, "a flat file's name must be its session date, YYYY-MM-DD (e.g. 2025-05-12.csv.gz)"
        )
    if not calendar.is_session(day):
        raise LocalBarsError(path, f"{day} ({day:%A}) is not an NYSE session")
    return day


# -- tables ---------------------------------------------------------------------------------------
def table_columns(path: Path) -> list[str]:
    """Column names of a CSV(.gz) or parquet file, reading only its header."""
    try:
        if file_suffix(path) == ".parquet":
            return list(pl.read_parquet_schema(path))
        return pl.read_csv(path, n_rows=0, infer_schema=False).columns
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LocalBarsError(path, f"cannot be read as {_kind(path)}: {_short(exc)}") from exc


def _read_table(path: Path) -> pl.DataFrame:
    """A CSV as text columns (so every value is checked by us, not guessed), or a parquet file."""
    try:
        if file_suffix(path) == ".parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LocalBarsError(path, f"cannot be read as {_kind(path)}: {_short(exc)}") from exc


def _kind(path: Path) -> str:
    return "parquet" if file_suffix(path) == ".parquet" else "CSV"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _columns_by_lower_name(frame: pl.DataFrame) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in frame.columns:
        found.setdefault(name.strip().lower(), name)
    return found


def _require(path: Path, columns: dict[str, str], wanted: Sequence[str]) -> None:
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise LocalBarsError(
            path,
            f"missing required column(s) {', '.join(missing)} (found: {', '.join(columns.values())})",
        )


def _table_where(index: int) -> str:
    return f"data row {index + 1}"


# -- values ---------------------------------------------------------------------------------------
def _numbers(
    values: pl.Series,
    path: Path,
    label: str,
    where: Where,
    *,
    integer: bool = False,
    required: bool = True,
) -> pl.Series:
    """Float64 (or Int64) values of a column, refusing text that is not a number."""
    target = pl.Int64() if integer else pl.Float64()
    if values.dtype == pl.String:
        text = values.str.strip_chars().replace("", None)
        if integer:
            # Parsed as integers first (ns timestamps do not survive a float); "129.0" is still
            # an integral count written by a float-minded exporter.
            as_float = text.cast(pl.Float64, strict=False)
            parsed = (
                pl.DataFrame({"exact": text.cast(pl.Int64, strict=False), "float": as_float})
                .select(
                    pl.when(pl.col("exact").is_not_null())
                    .then(pl.col("exact"))
                    .when(pl.col("float").is_finite() & (pl.col("float") % 1 == 0))
                    .then(pl.col("float").cast(pl.Int64, strict=False))
                )
                .to_series()
            )
        else:
            parsed = text.cast(target, strict=False)
        bad = (text.is_not_null() & parsed.is_null()).arg_true()
        if len(bad):
            index = int(bad[0])
            kind = "an integer" if integer else "a number"
            raise LocalBarsError(
                path, f"column {label!r} is not {kind} at {where(index)}: {text[index]!r}"
            )
    elif values.dtype.is_numeric():
        parsed = values
        if integer and values.dtype.is_float():
            integral = (values.is_finite() & (values % 1 == 0)).fill_null(True)
            bad = (~integral).arg_true()
            if len(bad):
                index = int(bad[0])
                raise LocalBarsError(
                    path, f"column {label!r} is not an integer at {where(index)}: {values[index]}"
                )
        parsed = parsed.cast(target)
    else:
        raise LocalBarsError(path, f"column {label!r} holds {values.dtype}, expected numbers")
    if required:
        missing = parsed.is_null().arg_true()
        if len(missing):
            raise LocalBarsError(path, f"column {label!r} is empty at {where(int(missing[0]))}")
    return parsed.rename(values.name)


def _naive_or_aware_times(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Text normalized to ``YYYY-MM-DD HH:MM[:SS[.f]][+HH:MM]`` and a flag: has an offset."""
    clean = text.str.strip_chars().str.replace("T", " ", literal=True).str.replace(r"Z$", "+00:00")
    return clean, clean.str.contains(r"[+-]\d{2}:?\d{2}$")


def _timestamps(
    values: pl.Series, timezone: str, path: Path, label: str, where: Where
) -> pl.Series:
    """Bar starts as ms UTC: offset-aware text as written, naive text in ``timezone``."""
    if isinstance(values.dtype, pl.Datetime):
        stamps = values if values.dtype.time_zone else _localize(values, timezone, path, label)
        return stamps.dt.convert_time_zone("UTC").dt.cast_time_unit("ms")
    if values.dtype != pl.String:
        raise LocalBarsError(
            path,
            f"column {label!r} holds {values.dtype}; expected timestamps such as "
            "'2022-03-14 09:30:00-04:00' (numbers are only read as window_start in ns, in the "
            "flat-file layout)",
        )
    text, aware = _naive_or_aware_times(values)
    blank = (text.is_null() | (text == "")).arg_true()
    if len(blank):
        raise LocalBarsError(path, f"column {label!r} is empty at {where(int(blank[0]))}")
    if aware.any() and not aware.all():
        first_naive = int((~aware).arg_true()[0])
        raise LocalBarsError(
            path,
            f"column {label!r} mixes timestamps with and without a UTC offset "
            f"({where(first_naive)}: {values[first_naive]!r})",
        )
    formats = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M")
    if bool(aware.all()):
        attempts = [text.str.to_datetime(f + "%z", strict=False, time_unit="ms") for f in formats]
        parsed = pl.select(pl.coalesce(attempts)).to_series()
    else:
        attempts = [text.str.to_datetime(f, strict=False, time_unit="ms") for f in formats]
        parsed = pl.select(pl.coalesce(attempts)).to_series()
        unparsable = parsed.is_null().arg_true()
        if len(unparsable) == 0:
            parsed = _localize(parsed, timezone, path, label)
    unparsable = parsed.is_null().arg_true()
    if len(unparsable):
        index = int(unparsable[0])
        raise LocalBarsError(
            path,
            f"unparsable timestamp in column {label!r} at {where(index)}: {values[index]!r} "
            "(expected YYYY-MM-DD HH:MM[:SS], with a UTC offset or in the declared timezone)",
        )
    return parsed.dt.convert_time_zone("UTC").dt.cast_time_unit("ms").rename("window_start")


def _localize(naive: pl.Series, timezone: str, path: Path, label: str) -> pl.Series:
    try:
        return naive.dt.replace_time_zone(timezone, ambiguous="raise", non_existent="raise")
    except pl.exceptions.PolarsError as exc:
        raise LocalBarsError(
            path,
            f"column {label!r} has a time that does not exist or is ambiguous in {timezone}: "
            f"{_short(exc)}",
        ) from exc


def _from_epoch_ns(values: pl.Series, path: Path, where: Where) -> pl.Series:
    """``window_start`` in ns since the epoch as ms UTC; refuses starts that are not whole ms."""
    ns = _numbers(values, path, "window_start", where, integer=True)
    ragged = (ns % _NS_PER_MS != 0).arg_true()
    if len(ragged):
        index = int(ragged[0])
        raise LocalBarsError(
            path,
            f"window_start is not a whole millisecond at {where(index)}: {ns[index]} "
            "(the flat-file layout counts nanoseconds since the epoch, UTC)",
        )
    stamps = pl.from_epoch(ns // _NS_PER_MS, time_unit="ms").dt.replace_time_zone("UTC")
    return stamps.dt.cast_time_unit("ms")


# -- validation -----------------------------------------------------------------------------------
def _check_values(frame: pl.DataFrame, path: Path, where: Where) -> None:
    """Prices and volume are finite and not negative."""
    for column in (*OHLCV, "vwap"):
        values = frame.get_column(column)
        # Nulls are refused where a value is required (only vwap may be absent).
        bad = (~values.is_finite() | (values < 0)).fill_null(False).arg_true()
        if len(bad):
            index = int(bad[0])
            what = "price" if column != "volume" else "volume"
            raise LocalBarsError(
                path,
                f"column {column!r} has a negative or non-finite {what} at {where(index)}: "
                f"{values[index]}",
            )
    transactions = frame.get_column("transactions")
    negative = (transactions < 0).fill_null(False).arg_true()
    if len(negative):
        index = int(negative[0])
        raise LocalBarsError(
            path, f"column 'transactions' is negative at {where(index)}: {transactions[index]}"
        )


def _et_dates(stamps: pl.Series) -> pl.Series:
    return stamps.dt.convert_time_zone(NY).dt.date()


def _check_minutes(frame: pl.DataFrame, path: Path, where: Where) -> None:
    """Minute bars start on whole minutes and on NYSE sessions (New York dates)."""
    starts = frame.get_column("window_start")
    ragged = (starts.dt.epoch("ms") % _MINUTE_MS != 0).arg_true()
    if len(ragged):
        index = int(ragged[0])
        raise LocalBarsError(
            path,
            f"bar starts must be whole minutes; {where(index)} starts at {starts[index]} "
            "(are these one-minute bars, stamped at their start?)",
        )
    _check_sessions(_et_dates(starts), path, where)


def _check_sessions(dates: pl.Series, path: Path, where: Where) -> None:
    for day in dates.unique().sort().to_list():
        if not calendar.is_session(day):
            index = int((dates == day).arg_true()[0])
            raise LocalBarsError(
                path,
                f"{where(index)} is on {day} ({day:%A}), which is not an NYSE session "
                "(are the timestamps in the right timezone?)",
            )


def _check_file_session(dates: pl.Series, session: dt.date, path: Path, where: Where) -> None:
    other = (dates != session).arg_true()
    if len(other):
        index = int(other[0])
        elsewhere = dates.filter(dates != session).unique().sort()
        raise LocalBarsError(
            path,
            f"{len(other)} row(s) belong to session(s) {', '.join(map(str, elsewhere[:5]))}, not "
            f"to {session} as the file name says (first: {where(index)}); one file holds one "
            "session",
        )


def _drop_exact_duplicates(
    frame: pl.DataFrame, path: Path, where: Where, key: list[str]
) -> ParsedBars:
    """Drop rows repeated exactly; refuse two different rows under one key."""
    positions = frame.with_row_index("_position")
    repeated = positions.filter(pl.struct(key).is_duplicated())
    if repeated.height == 0:
        return ParsedBars(frame)
    values = [c for c in BAR_VALUES if c in frame.columns]
    variants = repeated.unique(subset=[*key, *values], keep="first", maintain_order=True)
    conflicts = variants.filter(pl.struct(key).is_duplicated())
    if conflicts.height:
        first = conflicts.row(0, named=True)
        rows = conflicts.filter(pl.all_horizontal(pl.col(k) == first[k] for k in key)).get_column(
            "_position"
        )
        described = " and ".join(where(int(i)) for i in rows[:2])
        stamp = first.get("window_start", first.get("date"))
        raise LocalBarsError(
            path,
            f"ticker {first['ticker']!r} has two different bars at {stamp} ({described}); "
            "which one is right cannot be told",
        )
    kept = frame.unique(subset=key, keep="first", maintain_order=True)
    return ParsedBars(kept, exact_duplicates=frame.height - kept.height)


def _conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    # Exactly the schema, whatever unit or width a reader produced: frames of different files
    # are concatenated and must agree.
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def _finish(frame: pl.DataFrame, path: Path, where: Where) -> ParsedBars:
    """Checks shared by every minute reader, then one sorted frame in :data:`MINUTE_SCHEMA`."""
    _check_values(frame, path, where)
    _check_minutes(frame, path, where)
    parsed = _drop_exact_duplicates(frame, path, where, _KEY)
    return ParsedBars(_conform(parsed.frame, MINUTE_SCHEMA).sort(_KEY), parsed.exact_duplicates)


def _bar_columns(
    table: pl.DataFrame,
    columns: dict[str, str],
    path: Path,
    where: Where,
    *,
    vwap: str | None,
    trades: str | None,
) -> dict[str, pl.Series]:
    out = {
        name: _numbers(table.get_column(columns[name]), path, columns[name], where)
        for name in OHLCV
    }
    height = table.height
    out["vwap"] = (
        _numbers(table.get_column(vwap), path, vwap, where, required=False)
        if vwap
        else pl.Series("vwap", [None] * height, dtype=pl.Float64)
    )
    out["transactions"] = (
        _numbers(table.get_column(trades), path, trades, where, integer=True, required=False)
        if trades
        else pl.Series("transactions", [None] * height, dtype=pl.Int64)
    )
    return out


# -- the vendor's flat files ---------------------------------------------------------------------
def read_flat_minutes(path: Path, session: dt.date) -> ParsedBars:
    """One session's minute flat file (every ticker); every row must belong to ``session``."""
    table = _read_table(path)
    columns = _columns_by_lower_name(table)
    _require(path, columns, FLAT_REQUIRED)
    starts = _from_epoch_ns(table.get_column(columns["window_start"]), path, _table_where)
    tickers = _tickers(table.get_column(columns["ticker"]), path, _table_where)
    frame = pl.DataFrame(
        {
            "ticker": tickers,
            "window_start": starts,
            **_bar_columns(
                table, columns, path, _table_where, vwap=None, trades=columns.get("transactions")
            ),
        }
    )
    _check_file_session(_et_dates(starts), session, path, _table_where)
    return _finish(frame, path, _table_where)


def read_flat_days(path: Path, session: dt.date) -> ParsedBars:
    """One session's day flat file: one bar per ticker, ``window_start`` on ``session`` (ET)."""
    table = _read_table(path)
    columns = _columns_by_lower_name(table)
    _require(path, columns, FLAT_REQUIRED)
    starts = _from_epoch_ns(table.get_column(columns["window_start"]), path, _table_where)
    _check_file_session(_et_dates(starts), session, path, _table_where)
    frame = pl.DataFrame(
        {
            "ticker": _tickers(table.get_column(columns["ticker"]), path, _table_where),
            "date": pl.Series("date", [session] * table.height, dtype=pl.Date),
            **_bar_columns(
                table, columns, path, _table_where, vwap=None, trades=columns.get("transactions")
            ),
        }
    )
    _check_values(frame, path, _table_where)
    parsed = _drop_exact_duplicates(frame, path, _table_where, ["ticker"])
    return ParsedBars(_conform(parsed.frame, DAILY_SCHEMA).sort("ticker"), parsed.exact_duplicates)


def _tickers(values: pl.Series, path: Path, where: Where) -> pl.Series:
    tickers = values.cast(pl.String).str.strip_chars()
    blank = (tickers.is_null() | (tickers == "")).arg_true()
    if len(blank):
        raise LocalBarsError(path, f"the ticker is empty at {where(int(blank[0]))}")
    return tickers.rename("ticker")


# -- plain OHLCV files ----------------------------------------------------------------------------
def read_ohlcv(path: Path, timezone: str = DEFAULT_TIMEZONE) -> ParsedBars:
    """A per-ticker (or multi-ticker, with a ``ticker``/``symbol`` column) OHLCV minute file."""
    table = _read_table(path)
    columns = _columns_by_lower_name(table)
    stamp = next((columns[n] for n in _TIMESTAMP_NAMES if n in columns), None)
    if stamp is None:
        raise LocalBarsError(
            path,
            "missing required column Datetime (or timestamp, date) "
            f"(found: {', '.join(table.columns)})",
        )
    _require(path, columns, OHLCV)
    ticker_column = next((columns[n] for n in _TICKER_NAMES if n in columns), None)
    tickers = (
        _tickers(table.get_column(ticker_column), path, _table_where)
        if ticker_column
        else pl.Series("ticker", [ticker_from_file_name(path)] * table.height, dtype=pl.String)
    )
    frame = pl.DataFrame(
        {
            "ticker": tickers,
            "window_start": _timestamps(
                table.get_column(stamp), timezone, path, stamp, _table_where
            ),
            **_bar_columns(
                table,
                columns,
                path,
                _table_where,
                vwap=next((columns[n] for n in _VWAP_NAMES if n in columns), None),
                trades=next((columns[n] for n in _TRADES_NAMES if n in columns), None),
            ),
        }
    )
    return _finish(frame, path, _table_where)


# -- Alpha Vantage --------------------------------------------------------------------------------
class _PairsWithRepeats:
    """A JSON object hook that notes repeated keys: ``json`` keeps the last one silently."""

    def __init__(self) -> None:
        self.exact: list[str] = []
        self.conflicting: list[str] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                (self.exact if obj[key] == value else self.conflicting).append(key)
            obj[key] = value
        return obj


def read_alphavantage(path: Path, timezone: str = DEFAULT_TIMEZONE) -> ParsedBars:
    """Alpha Vantage ``TIME_SERIES_INTRADAY`` (1min): naive bar starts in ``6. Time Zone`` (the
    declared ``timezone`` when the file has none), string OHLCV."""
    repeats = _PairsWithRepeats()
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw
        payload = json.loads(text, object_pairs_hook=repeats)
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, ValueError) as exc:
        raise LocalBarsError(path, f"cannot be read as JSON: {_short(exc)}") from exc
    if not isinstance(payload, dict):
        raise LocalBarsError(path, "is not an Alpha Vantage response (not a JSON object)")
    series = payload.get(_AV_SERIES)
    if not isinstance(series, dict):
        message = next(
            (str(payload[k]) for k in ("Error Message", "Note", "Information") if k in payload),
            None,
        )
        found = ", ".join(map(repr, payload)) or "nothing"
        raise LocalBarsError(
            path,
            f"has no {_AV_SERIES!r} object (found {found})"
            + (f"; Alpha Vantage said: {message[:200]}" if message else ""),
        )
    meta = payload.get("Meta Data")
    meta = meta if isinstance(meta, dict) else {}
    symbol = meta.get("2. Symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise LocalBarsError(path, "has no 'Meta Data' / '2. Symbol': whose bars are these?")
    interval = meta.get("4. Interval")
    if interval is not None and interval != "1min":
        raise LocalBarsError(path, f"holds {interval!r} bars; only 1min bars are read")
    zone = meta.get("6. Time Zone")
    zone = zone if isinstance(zone, str) and zone else timezone
    if repeats.conflicting:
        raise LocalBarsError(
            path,
            f"bar {repeats.conflicting[0]!r} appears twice with different values; which one is "
            "right cannot be told",
        )
    keys = list(series)

    def where(index: int) -> str:
        return f"bar {keys[index]!r}"

    values: dict[str, list[Any]] = {name: [] for name in _AV_FIELDS}
    for key, bar in series.items():
        if not isinstance(bar, dict):
            raise LocalBarsError(path, f"bar {key!r} is not an object")
        for name, field in _AV_FIELDS.items():
            if field not in bar:
                raise LocalBarsError(path, f"bar {key!r} has no {field!r}")
            values[name].append(None if bar[field] is None else str(bar[field]))
    height = len(keys)
    frame = pl.DataFrame(
        {
            "ticker": pl.Series("ticker", [symbol.strip()] * height, dtype=pl.String),
            "window_start": _timestamps(
                pl.Series("timestamp", keys, dtype=pl.String), zone, path, _AV_SERIES, where
            ),
            **{
                name: _numbers(pl.Series(name, values[name], dtype=pl.String), path, field, where)
                for name, field in _AV_FIELDS.items()
            },
            "vwap": pl.Series("vwap", [None] * height, dtype=pl.Float64),
            "transactions": pl.Series("transactions", [None] * height, dtype=pl.Int64),
        }
    )
    parsed = _finish(frame, path, where)
    return ParsedBars(parsed.frame, parsed.exact_duplicates + len(repeats.exact))


def read_minute_file(path: Path, timezone: str = DEFAULT_TIMEZONE) -> ParsedBars:
    """A per-ticker minute file by its suffix: JSON is Alpha Vantage, tables are plain OHLCV."""
    suffix = file_suffix(path)
    if suffix in (".json", ".json.gz"):
        return read_alphavantage(path, timezone)
    if suffix is None:
        raise LocalBarsError(path, f"unsupported file type; use one of {SUPPORTED_SUFFIXES}")
    return read_ohlcv(path, timezone)


def merge_bars(parts: Sequence[tuple[str, pl.DataFrame]]) -> ParsedBars:
    """Minute bars of several files as one frame: a bar two files agree on is kept once (and
    counted); two files disagreeing on a bar is an error naming both."""
    if not parts:
        return ParsedBars(pl.DataFrame(schema=MINUTE_SCHEMA))
    frame = pl.concat(
        [f.select(MINUTE_SCHEMA.names()).with_columns(_file=pl.lit(name)) for name, f in parts]
    )
    repeated = frame.filter(pl.struct(_KEY).is_duplicated())
    if repeated.height == 0:
        return ParsedBars(frame.drop("_file").sort(_KEY))
    variants = repeated.unique(subset=[*_KEY, *BAR_VALUES], keep="first", maintain_order=True)
    conflicts = variants.filter(pl.struct(_KEY).is_duplicated())
    if conflicts.height:
        first = conflicts.row(0, named=True)
        named = conflicts.filter(
            (pl.col("ticker") == first["ticker"])
            & (pl.col("window_start") == first["window_start"])
        ).get_column("_file")
        raise LocalBarsError(
            named[0],
            f"ticker {first['ticker']!r} has a different bar at {first['window_start']} in "
            f"{named[1]}; which one is right cannot be told",
        )
    kept = frame.unique(subset=_KEY, keep="first", maintain_order=True)
    return ParsedBars(kept.drop("_file").sort(_KEY), frame.height - kept.height)


# -- daily bars from minute bars ------------------------------------------------------------------
def daily_from_minutes(minutes: pl.DataFrame) -> pl.DataFrame:
    """Daily bars aggregated as the vendor does (:data:`DAILY_SCHEMA`, sorted by ticker, date).

    ``open``/``close`` are the first regular-session open and last regular-session close,
    ``high``/``low`` the regular-session extremes (09:30 to the close: 16:00, or 13:00 on half
    days), ``volume`` sums every bar from 04:00 to 20:00 ET, ``vwap`` weights the bars' vwap by
    volume and ``transactions`` sums their counts (each null unless every such bar has one). A
    ticker-day without a regular-session bar has no daily bar.
    """
    if minutes.height == 0:
        return pl.DataFrame(schema=DAILY_SCHEMA)
    et = pl.col("window_start").dt.convert_time_zone(NY)
    frame = minutes.sort(_KEY).with_columns(date=et.dt.date(), _time=et.dt.time())
    days = frame.get_column("date").unique().sort()
    closes = pl.DataFrame(
        {"date": days, "_close_time": [regular_close_et(d) for d in days.to_list()]},
        schema={"date": pl.Date(), "_close_time": pl.Time()},
    )
    when = pl.col("_time")
    regular = (when >= REGULAR_OPEN) & (when < pl.col("_close_time"))
    in_day = (when >= PRE_OPEN) & (when < POST_CLOSE)
    volume = pl.col("volume").filter(in_day)
    vwap = pl.col("vwap").filter(in_day)
    trades = pl.col("transactions").filter(in_day)
    daily = (
        frame.join(closes, on="date", how="left")
        .group_by("ticker", "date", maintain_order=True)
        .agg(
            open=pl.col("open").filter(regular).first(),
            high=pl.col("high").filter(regular).max(),
            low=pl.col("low").filter(regular).min(),
            close=pl.col("close").filter(regular).last(),
            volume=volume.sum(),
            vwap=pl.when(vwap.is_null().any().not_() & (volume.sum() > 0)).then(
                ((vwap * volume).sum() / volume.sum()).round(4)
            ),
            transactions=pl.when(trades.is_null().any().not_() & (trades.len() > 0)).then(
                trades.sum()
            ),
        )
        .filter(pl.col("open").is_not_null())
    )
    return _conform(daily, DAILY_SCHEMA).sort("ticker", "date")


# -- reference files ------------------------------------------------------------------------------
def _text_column(table: pl.DataFrame, columns: dict[str, str], name: str) -> pl.Series:
    if name not in columns:
        return pl.Series(name, [None] * table.height, dtype=pl.String)
    values = table.get_column(columns[name]).cast(pl.String).str.strip_chars()
    return pl.Series(name, values).replace("", None)


def _dates(values: pl.Series, path: Path, label: str) -> pl.Series:
    parsed = values.str.to_date("%Y-%m-%d", strict=False)
    bad = (values.is_not_null() & parsed.is_null()).arg_true()
    if len(bad):
        index = int(bad[0])
        raise LocalBarsError(
            path,
            f"column {label!r} is not a YYYY-MM-DD date at {_table_where(index)}: "
            f"{values[index]!r}",
        )
    return parsed.rename(label)


def _unique_keys(frame: pl.DataFrame, key: list[str], path: Path) -> None:
    # The second occurrence is the one to point at.
    repeated = frame.with_row_index("_position").filter(~pl.struct(key).is_first_distinct())
    if repeated.height:
        first = repeated.row(0, named=True)
        label = ", ".join(str(first[k]) for k in key)
        raise LocalBarsError(path, f"{label} is listed twice ({_table_where(first['_position'])})")


def read_tickers_csv(path: Path) -> pl.DataFrame:
    """``tickers.csv``: ticker, type, primary_exchange, shares_outstanding [, name, cik,
    list_date, delisted_date]. A blank type is CS; blank exchange or shares stay unknown."""
    table = _read_table(path)
    columns = _columns_by_lower_name(table)
    _require(path, columns, ("ticker", "type", "primary_exchange", "shares_outstanding"))
    tickers = _tickers(table.get_column(columns["ticker"]), path, _table_where)
    exchange = _text_column(table, columns, "primary_exchange").str.to_uppercase()
    for index, value in enumerate(exchange.to_list()):
        if value in _EXCHANGE_NAMES:
            raise LocalBarsError(
                path,
                f"primary_exchange {value!r} at {_table_where(index)}: write the exchange's MIC "
                f"code ({_EXCHANGE_NAMES[value]}), as Polygon and the universe screen do",
            )
    shares = _numbers(
        table.get_column(columns["shares_outstanding"]),
        path,
        columns["shares_outstanding"],
        _table_where,
        required=False,
    )
    negative = (shares < 0).fill_null(False).arg_true()
    if len(negative):
        raise LocalBarsError(
            path, f"shares_outstanding is negative at {_table_where(int(negative[0]))}"
        )
    frame = pl.DataFrame(
        {
            "ticker": tickers,
            "type": _text_column(table, columns, "type").str.to_uppercase().fill_null("CS"),
            "primary_exchange": exchange,
            "shares_outstanding": shares,
            "name": _text_column(table, columns, "name"),
            "cik": _text_column(table, columns, "cik"),
            "list_date": _dates(_text_column(table, columns, "list_date"), path, "list_date"),
            "delisted_date": _dates(
                _text_column(table, columns, "delisted_date"), path, "delisted_date"
            ),
        },
        schema=TICKERS_SCHEMA,
    )
    _unique_keys(frame, ["ticker"], path)
    backwards = (pl.col("delisted_date") <= pl.col("list_date")).fill_null(False)
    bad = frame.with_row_index("_position").filter(backwards)
    if bad.height:
        raise LocalBarsError(
            path,
            f"{bad['ticker'][0]} is delisted on or before its listing date "
            f"({_table_where(bad['_position'][0])})",
        )
    return frame.sort("ticker")


def read_splits_csv(path: Path) -> pl.DataFrame:
    """``splits.csv``: ticker, execution_date, split_from, split_to (a 1-for-10 reverse split is
    from 10 to 1), one row per ticker and execution date."""
    table = _read_table(path)
    columns = _columns_by_lower_name(table)
    _require(path, columns, ("ticker", "execution_date", "split_from", "split_to"))
    dates = _dates(_text_column(table, columns, "execution_date"), path, "execution_date")
    missing = dates.is_null().arg_true()
    if len(missing):
        raise LocalBarsError(path, f"execution_date is empty at {_table_where(int(missing[0]))}")
    frame = pl.DataFrame(
        {
            "ticker": _tickers(table.get_column(columns["ticker"]), path, _table_where),
            "execution_date": dates,
            **{
                name: _numbers(table.get_column(columns[name]), path, name, _table_where)
                for name in ("split_from", "split_to")
            },
        },
        schema=SPLITS_SCHEMA,
    )
    not_positive = frame.with_row_index("_position").filter(
        (pl.col("split_from") <= 0) | (pl.col("split_to") <= 0)
    )
    if not_positive.height:
        raise LocalBarsError(
            path,
            f"split_from and split_to must be positive "
            f"({_table_where(not_positive['_position'][0])})",
        )
    _unique_keys(frame, ["ticker", "execution_date"], path)
    return frame.sort("execution_date", "ticker")
