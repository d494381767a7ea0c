"""Triple-barrier labels on the minute path after each event.

Rules (all thresholds in :class:`BarrierRules`):

* **Entry**: the open of the first regular-session bar starting at or after the event's ``ts``
  (the bar after the signal bar; after a halt, the resumption bar). ``entry_ts`` is that bar's
  start. Only regular-session bars form paths.
* **Direction**: each event is traded in its pattern's direction (``core.events.DIRECTION``).
* **Barriers**: a long's take profit at ``entry * (1 + take_profit)``, its stop at
  ``entry * (1 - stop)``; a short's are mirrored: take profit at ``entry * (1 - take_profit)``
  (the price fell), stop at ``entry * (1 + stop)`` (the price rose). Timeout ``timeout_minutes``
  after ``entry_ts`` (clock minutes, halts included).
* **Path**: bars starting in ``[entry_ts, entry_ts + timeout)``, in order. For each bar:
  an open at or beyond a barrier exits at that open (a gap *through* the barrier, e.g. on a halt
  resumption, fills at the open, not at the barrier); else a bar trading through the stop (a
  long's low at or under it, a short's high at or over it) exits at the stop, else one trading
  through the take profit (a long's high, a short's low) exits at it. When one bar's range holds both
  barriers the stop wins: bars do not say which came first, and the pessimistic order keeps
  labels honest.
* **Timeout**: exit at the close of the last bar of the path, stamped at the horizon's end. If
  the ticker is halted at the horizon's end (no bar then, and the next bar is a halt
  resumption), the position cannot be closed until the resumption: exit at its open, stamped at
  its start, reason ``timeout_halted``.
* **End of day**: when the horizon reaches past the session's regular close (the last quarter
  hour, or a 13:00 half-day close) the path stops at the close; without a barrier hit the
  position exits at the last bar's close, stamped at the close, reason ``end_of_day``. Such a
  path is not a complete 15-minute outcome: ``path_complete = False`` and ``label`` and the
  forward returns are null (the model never trains on it), but the trade fields (entry, exit,
  reason, ``ret``) are filled, because the backtest trades it.
* An event without an entry bar gets ``path_complete = False`` and every other field null.

``ret`` is the trade's return in its direction: ``exit / entry - 1`` for a long,
``1 - exit / entry`` for a short (sold at the entry, bought back at the exit), so a positive
``ret`` is a trade that made money either way. ``label`` is 1 when the barrier trade exits in
profit (``ret > 0``: the take profit, or a timeout on the right side of the entry), else 0. Not "take profit first": on real small-cap gap days a
+15 % move inside 15 minutes is rare (about 0.2 % of events on the calibrated market, none of
422 events on real GME/AMC bars), so that target has almost no positives to learn from, while
the trade's outcome under the same barriers is what a trader is paid on (docs/decisions.md).
``exit_reason`` keeps which barrier ended the trade. Forward returns at 5 and 15 minutes are
the last close before ``entry_ts + k`` minutes over the entry price, signed like ``ret`` (the
trade's mark-to-market return then).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from smallcaps_assets.core import calendar
from smallcaps_assets.core.bars import conform
from smallcaps_assets.core.events import DIRECTION
from smallcaps_assets.core.minute import regular_close_et
from smallcaps_assets.core.schemas import OHLC

__all__ = [
    "EXIT_REASONS",
    "LABELS_SCHEMA",
    "BarrierRules",
    "label_events",
    "label_events_reference",
]

EXIT_REASONS: Final = ("take_profit", "stop", "timeout", "timeout_halted", "end_of_day")
_TP, _SL, _TIMEOUT, _TIMEOUT_HALTED, _END_OF_DAY = range(5)
# Filled only where the 15-minute path is complete: the training target and its diagnostics.
_OUTCOME_FIELDS: Final = ("label", "fwd_ret_5m", "fwd_ret_15m")
_MINUTE_MS: Final = 60_000

LABELS_SCHEMA: Final = pl.Schema(
    {
        "date": pl.Date(),
        "ticker": pl.String(),
        "ts": pl.Datetime("ms", "UTC"),
        "pattern": pl.String(),
        "path_complete": pl.Boolean(),
        "entry_ts": pl.Datetime("ms", "UTC"),
        "entry_price": pl.Float64(),
        "exit_ts": pl.Datetime("ms", "UTC"),
        "exit_price": pl.Float64(),
        "exit_reason": pl.String(),
        "ret": pl.Float64(),
        "label": pl.Int8(),
        "fwd_ret_5m": pl.Float64(),
        "fwd_ret_15m": pl.Float64(),
    }
)


@dataclass(frozen=True)
class BarrierRules:
    take_profit: float = 0.15
    stop: float = 0.10
    timeout_minutes: int = 15

    def __post_init__(self) -> None:
        if not (self.take_profit > 0 and 0 < self.stop < 1 and self.timeout_minutes >= 1):
            raise ValueError(f"barriers must be positive and the stop below 100%: {self}")


@dataclass
class _Path:
    """Bars of one session as flat arrays sorted by (ticker code, start)."""

    key: npt.NDArray[np.int64]  # ticker code * 2^42 + start ms: one sortable key
    start: npt.NDArray[np.int64]
    code: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    halt: npt.NDArray[np.bool_]


_SHIFT: Final = np.int64(1) << np.int64(42)  # ms timestamps stay below 2^42 until 2109


def _indexed(bars: pl.LazyFrame) -> pl.DataFrame:
    """Regular-session bars with a run-number ticker code and the start in epoch ms."""
    return (
        bars.filter(pl.col("session") == "regular")
        .select("ticker", "ts", *OHLC, "halt_resumption")
        .with_columns(
            _new=(pl.col("ticker") != pl.col("ticker").shift(1)).fill_null(True),
            _start=pl.col("ts").dt.epoch("ms"),
        )
        .with_columns(_code=pl.col("_new").cum_sum().cast(pl.Int64))
        .collect()
    )


def _prepare(events: pl.DataFrame, bars: pl.DataFrame) -> tuple[pl.DataFrame, _Path]:
    b = _indexed(bars.lazy())
    code = b.get_column("_code").to_numpy()
    start = b.get_column("_start").to_numpy()
    key = code * _SHIFT + start
    tickers_ascending = b.filter(pl.col("_new")).get_column("ticker")
    if key.size and not (
        bool(np.all(key[1:] > key[:-1])) and tickers_ascending.is_sorted()
    ):  # processed bars come sorted by (ticker, ts); anything else is sorted here
        b = _indexed(bars.lazy().sort("ticker", "ts"))
        code = b.get_column("_code").to_numpy()
        start = b.get_column("_start").to_numpy()
        key = code * _SHIFT + start
    codes = b.filter(pl.col("_new")).select("ticker", "_code")
    path = _Path(
        key=key,
        start=start,
        code=code,
        open=b.get_column("open").to_numpy(),
        high=b.get_column("high").to_numpy(),
        low=b.get_column("low").to_numpy(),
        close=b.get_column("close").to_numpy(),
        halt=b.get_column("halt_resumption").fill_null(False).to_numpy(),
    )
    ev = events.join(codes, on="ticker", how="left", maintain_order="left").with_columns(
        pl.col("_code").fill_null(-1), _ts=pl.col("ts").dt.epoch("ms")
    )
    return ev, path


def _session_close_ms(day: dt.date) -> int:
    close = dt.datetime.combine(day, regular_close_et(day), tzinfo=calendar.NY)
    return int(close.timestamp() * 1000)


def label_events(
    events: pl.DataFrame, bars: pl.DataFrame, day: dt.date, rules: BarrierRules | None = None
) -> pl.DataFrame:
    """Label session ``day``'s events (``ticker``, ``ts``, ``pattern``, ``date``) on its
    processed minute bars, vectorized over events. Schema: :data:`LABELS_SCHEMA`, in the
    events' order. Equal to :func:`label_events_reference` (property-tested)."""
    rules = rules or BarrierRules()
    ev, path = _prepare(events, bars)
    n = ev.height
    if path.key.size == 0:
        return (
            ev.select("date", "ticker", "ts", "pattern")
            .with_columns(
                path_complete=pl.lit(False),
                **{
                    name: pl.lit(None, dtype)
                    for name, dtype in LABELS_SCHEMA.items()
                    if name not in ("date", "ticker", "ts", "pattern", "path_complete")
                },
            )
            .pipe(conform, LABELS_SCHEMA)
        )
    horizon_ms = rules.timeout_minutes * _MINUTE_MS
    close_ms = _session_close_ms(day)
    codes = ev.get_column("_code").to_numpy().astype(np.int64)
    ts = ev.get_column("_ts").to_numpy().astype(np.int64)
    size = path.key.size
    width = rules.timeout_minutes  # at most one bar per minute of the horizon

    queries = codes * _SHIFT + ts
    order = np.argsort(queries, kind="stable")  # sorted queries walk the keys in cache order
    entry = np.empty_like(order)
    entry[order] = np.searchsorted(path.key, queries[order], side="left")
    # Padding past the last bar (code -2 matches no event) keeps every window in bounds.
    pad = width + 1
    code_p = np.concatenate([path.code, np.full(pad, -2, np.int64)])
    start_p = np.concatenate([path.start, np.full(pad, np.iinfo(np.int64).max // 2)])
    open_p = np.concatenate([path.open, np.ones(pad)])
    high_p = np.concatenate([path.high, np.ones(pad)])
    low_p = np.concatenate([path.low, np.ones(pad)])
    close_p = np.concatenate([path.close, np.ones(pad)])
    halt_p = np.concatenate([path.halt, np.zeros(pad, np.bool_)])

    # +1 for a long, -1 for a short: a short's barriers and returns are the long's mirrored.
    side = np.where(
        ev.get_column("pattern").replace_strict(DIRECTION, default="long").to_numpy() == "short",
        -1.0,
        1.0,
    )
    short = side < 0
    has_entry = code_p[entry] == codes
    entry_idx = np.where(has_entry, entry, size)
    entry_start = np.where(has_entry, start_p[entry_idx], 0)
    complete = has_entry & (entry_start + horizon_ms <= close_ms)
    horizon_end = np.minimum(entry_start + horizon_ms, close_ms)

    def window(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        # Rows of ``width`` consecutive bars from each entry: contiguous reads, not a gather.
        return np.lib.stride_tricks.sliding_window_view(values, width)[entry_idx]

    start_w = window(start_p)
    # The path is a prefix of the window: same ticker, started before the horizon's end.
    in_path = (
        (window(code_p) == codes[:, None]) & (start_w < horizon_end[:, None]) & has_entry[:, None]
    )
    path_len = np.count_nonzero(in_path, axis=1)
    entry_price = open_p[entry_idx]
    tp = (entry_price * (1.0 + side * rules.take_profit))[:, None]
    sl = (entry_price * (1.0 - side * rules.stop))[:, None]
    # Prices times the side: "through the stop" is ``<= sl`` for both directions.
    s = side[:, None]
    o = window(open_p)
    high_w, low_w = window(high_p), window(low_p)
    adverse = np.where(short[:, None], high_w, low_w)  # the extreme that reaches the stop
    favourable = np.where(short[:, None], low_w, high_w)
    gap_sl = in_path & (s * o <= s * sl)
    gap_tp = in_path & (s * o >= s * tp) & ~gap_sl
    hit_sl = gap_sl | (in_path & ~gap_tp & (s * adverse <= s * sl))
    hit_tp = gap_tp | (in_path & ~hit_sl & (s * favourable >= s * tp))
    any_hit = hit_sl | hit_tp
    first = np.argmax(any_hit, axis=1)
    rows = np.arange(n)
    hit = any_hit[rows, first]
    first_idx = entry_idx + first
    is_sl = hit & hit_sl[rows, first]
    gapped = gap_sl[rows, first] | gap_tp[rows, first]
    exit_price = np.where(gapped, open_p[first_idx], np.where(is_sl, sl[:, 0], tp[:, 0]))
    exit_ms = start_p[first_idx] + np.where(gapped, 0, _MINUTE_MS)

    # Timeout: last bar of the path, or the halt resumption when halted at the horizon.
    last_idx = entry_idx + np.maximum(path_len - 1, 0)
    after = last_idx + 1
    halted = (
        complete
        & (code_p[after] == codes)
        & halt_p[after]
        & (start_p[after] > horizon_end)
        & (start_p[last_idx] + _MINUTE_MS < horizon_end)
    )
    timeout_price = np.where(halted, open_p[after], close_p[last_idx])
    timeout_ms = np.where(halted, start_p[after], horizon_end)

    timeout = np.where(complete, np.where(halted, _TIMEOUT_HALTED, _TIMEOUT), _END_OF_DAY)
    reason = np.where(hit, np.where(is_sl, _SL, _TP), timeout)
    final_price = np.where(hit, exit_price, timeout_price)
    final_ms = np.where(hit, exit_ms, timeout_ms)

    def forward(minutes: int) -> npt.NDArray[np.float64]:
        # Bars starting before entry + minutes: also a prefix, so its length finds the last.
        count = np.count_nonzero(
            in_path & (start_w < (entry_start + minutes * _MINUTE_MS)[:, None]), axis=1
        )
        value = side * (close_p[entry_idx + np.maximum(count - 1, 0)] / entry_price - 1.0)
        return np.where(count > 0, value, np.nan)

    fwd5 = forward(min(5, width))
    fwd15 = forward(min(15, width))
    ret = side * (final_price / entry_price - 1.0)
    frame = ev.select("date", "ticker", "ts", "pattern").with_columns(
        path_complete=pl.Series(complete),
        entry_ts=pl.Series(np.where(has_entry, entry_start, -1)).cast(pl.Datetime("ms", "UTC")),
        entry_price=pl.Series(entry_price),
        exit_ts=pl.Series(final_ms).cast(pl.Datetime("ms", "UTC")),
        exit_price=pl.Series(final_price),
        exit_reason=pl.Series(reason).replace_strict(
            dict(enumerate(EXIT_REASONS)), return_dtype=pl.String
        ),
        ret=pl.Series(ret),
        label=pl.Series((ret > 0.0).astype(np.int8)),
        fwd_ret_5m=pl.Series(fwd5).fill_nan(None),
        fwd_ret_15m=pl.Series(fwd15).fill_nan(None),
    )
    return _blank_incomplete(frame)


def _blank_incomplete(frame: pl.DataFrame) -> pl.DataFrame:
    """Null every field without an entry bar (marked by a negative entry time) and the outcome
    fields of paths cut short by the close."""
    has_entry = pl.col("entry_ts").dt.epoch("ms") >= 0
    trade_fields = [
        c
        for c in LABELS_SCHEMA.names()
        if c not in ("date", "ticker", "ts", "pattern", "path_complete", *_OUTCOME_FIELDS)
    ]
    return frame.with_columns(
        *(pl.when(pl.col("path_complete")).then(pl.col(c)).alias(c) for c in _OUTCOME_FIELDS),
        *(pl.when(has_entry).then(pl.col(c)).alias(c) for c in trade_fields),
    ).pipe(conform, LABELS_SCHEMA)


@dataclass(frozen=True)
class _Bar:
    start: int
    open: float
    high: float
    low: float
    close: float
    halt: bool


def _forward_return(
    window: list[_Bar], entry_ms: int, price: float, minutes: int, side: float
) -> float:
    limit = entry_ms + minutes * _MINUTE_MS
    closes = [b.close for b in window if b.start < limit]
    return side * (closes[-1] / price - 1.0)


def _walk(window: list[_Bar], tp: float, sl: float, short: bool) -> tuple[str, float, int] | None:
    """The first barrier the path touches: (reason, price, exit ms), or None."""
    for b in window:
        if short:
            if b.open >= sl:
                return ("stop", b.open, b.start)
            if b.open <= tp:
                return ("take_profit", b.open, b.start)
            if b.high >= sl:
                return ("stop", sl, b.start + _MINUTE_MS)
            if b.low <= tp:
                return ("take_profit", tp, b.start + _MINUTE_MS)
            continue
        if b.open <= sl:
            return ("stop", b.open, b.start)
        if b.open >= tp:
            return ("take_profit", b.open, b.start)
        if b.low <= sl:
            return ("stop", sl, b.start + _MINUTE_MS)
        if b.high >= tp:
            return ("take_profit", tp, b.start + _MINUTE_MS)
    return None


def label_events_reference(
    events: pl.DataFrame, bars: pl.DataFrame, day: dt.date, rules: BarrierRules | None = None
) -> pl.DataFrame:
    """The same labels with a plain loop per event and per bar: the specification the fast
    labeller is tested against (and the baseline of its benchmark)."""
    rules = rules or BarrierRules()
    close_ms = _session_close_ms(day)
    horizon = rules.timeout_minutes * _MINUTE_MS
    by_ticker: dict[str, list[_Bar]] = {}
    regular = bars.filter(pl.col("session") == "regular")
    for row in regular.sort("ticker", "ts").iter_rows(named=True):
        by_ticker.setdefault(row["ticker"], []).append(
            _Bar(
                int(row["ts"].timestamp() * 1000),
                row["open"],
                row["high"],
                row["low"],
                row["close"],
                bool(row["halt_resumption"]),
            )
        )
    out: list[dict[str, object]] = []
    for event in events.iter_rows(named=True):
        record: dict[str, object] = {k: event[k] for k in ("date", "ticker", "ts", "pattern")}
        ts_ms = int(event["ts"].timestamp() * 1000)
        path = by_ticker.get(event["ticker"], [])
        entry_pos = next((i for i, b in enumerate(path) if b.start >= ts_ms), None)
        if entry_pos is None:
            record["path_complete"] = False
            out.append(record)
            continue
        entry_ms, price = path[entry_pos].start, path[entry_pos].open
        complete = entry_ms + horizon <= close_ms
        end = min(entry_ms + horizon, close_ms)
        window = [b for b in path[entry_pos:] if b.start < end]
        short = DIRECTION.get(event["pattern"], "long") == "short"
        side = -1.0 if short else 1.0
        result = _walk(
            window,
            price * (1.0 + side * rules.take_profit),
            price * (1.0 - side * rules.stop),
            short,
        )
        if result is None:
            last = window[-1]
            following = (
                path[entry_pos + len(window)] if entry_pos + len(window) < len(path) else None
            )
            halted_at_end = (
                following is not None
                and following.halt
                and following.start > end
                and last.start + _MINUTE_MS < end
            )
            if not complete:
                result = ("end_of_day", last.close, end)
            elif following is not None and halted_at_end:
                result = ("timeout_halted", following.open, following.start)
            else:
                result = ("timeout", last.close, end)
        reason, exit_price, exit_ms = result
        record.update(
            path_complete=complete,
            entry_ts=dt.datetime.fromtimestamp(entry_ms / 1000, dt.UTC),
            entry_price=price,
            exit_ts=dt.datetime.fromtimestamp(exit_ms / 1000, dt.UTC),
            exit_price=exit_price,
            exit_reason=reason,
            ret=side * (exit_price / price - 1.0),
            label=1 if side * (exit_price - price) > 0 else 0,
            fwd_ret_5m=_forward_return(
                window, entry_ms, price, min(5, rules.timeout_minutes), side
            ),
            fwd_ret_15m=_forward_return(
                window, entry_ms, price, min(15, rules.timeout_minutes), side
            ),
        )
        if not complete:
            record.update(dict.fromkeys(_OUTCOME_FIELDS))
        out.append(record)
    return pl.DataFrame(out, schema=LABELS_SCHEMA) if out else pl.DataFrame(schema=LABELS_SCHEMA)
