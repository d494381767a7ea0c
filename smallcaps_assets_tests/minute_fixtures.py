"""Hand-built processed minute bars for the event, feature and label tests."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl

from smallcaps_assets.core.minute import process_minute_bars
from smallcaps_assets.sources import parsers

NY = ZoneInfo("America/New_York")
DAY = dt.date(2024, 3, 5)


def bars_from(
    closes: list[float],
    *,
    start: str = "09:30",
    volumes: list[float] | None = None,
    highs: list[float | None] | None = None,
    opens: list[float | None] | None = None,
    lows: list[float | None] | None = None,
    skip: set[int] | None = None,
    premarket: list[float] | None = None,
    ticker: str = "AAA",
    day: dt.date = DAY,
) -> pl.DataFrame:
    """Processed minute bars: one bar per minute from ``start`` (bar i opens at close i-1)."""
    rows = []
    first = dt.datetime.combine(day, dt.time.fromisoformat(start), tzinfo=NY)
    for i, price in enumerate(premarket or []):
        t = dt.datetime.combine(day, dt.time(8, 0), tzinfo=NY) + dt.timedelta(minutes=i)
        rows.append(
            {
                "t": int(t.timestamp() * 1000),
                "o": price,
                "h": price,
                "l": price,
                "c": price,
                "v": 1000.0,
            }
        )
    previous = closes[0]
    for i, close in enumerate(closes):
        open_ = opens[i] if opens and opens[i] is not None else previous
        high = highs[i] if highs and highs[i] is not None else max(open_, close)
        low = lows[i] if lows and lows[i] is not None else min(open_, close)
        previous = close
        if skip and i in skip:
            continue
        t = first + dt.timedelta(minutes=i)
        volume = volumes[i] if volumes else 10_000.0
        rows.append(
            {
                "t": int(t.timestamp() * 1000),
                "o": open_,
                "h": high,
                "l": low,
                "c": close,
                "v": volume,
            }
        )
    raw = parsers.parse_aggregates(rows, ticker)
    return process_minute_bars(raw, day).frame
