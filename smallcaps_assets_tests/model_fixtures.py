"""Fabricated feature/label event partitions and minute bars for the walk-forward model and
backtest assets: a planted signal the models must find, without running the event layers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from smallcaps_assets.core import calendar
from smallcaps_assets.core.features import FEATURES_SCHEMA, NUMERIC_FEATURES
from smallcaps_assets.core.labels import LABELS_SCHEMA
from smallcaps_assets.core.storage import DataStore

PATTERNS = ["orb", "vwap_reclaim", "hod_breakout"]
EVENTS_PER_SESSION = 12


def write_events(
    root: str | Path, first: dt.date, last: dt.date, *, signal: float, seed: int = 3
) -> None:
    """Per session 12 events whose take-profit-first label depends on gap_pct by ``signal``."""
    rng = np.random.default_rng(seed)
    store = DataStore(str(root))
    for day in calendar.sessions(first, last):
        n = EVENTS_PER_SESSION
        open_ms = dt.datetime.combine(day, dt.time(9, 45), tzinfo=calendar.NY).astimezone(dt.UTC)
        ts = [open_ms + dt.timedelta(minutes=7 * i) for i in range(n)]
        gap = rng.normal(0.0, 1.0, n)
        p = 1.0 / (1.0 + np.exp(-(-1.5 + signal * gap)))
        label = (rng.random(n) < p).astype(np.int8)
        features = pl.DataFrame(
            {
                "date": [day] * n,
                "ticker": [f"T{i:02d}" for i in range(n)],
                "ts": ts,
                "pattern": [PATTERNS[i % 3] for i in range(n)],
                "price": rng.uniform(1, 20, n),
                "exchange": ["XNAS"] * n,
                "sector": ["software_services"] * n,
                **{c: rng.normal(0.0, 1.0, n) for c in NUMERIC_FEATURES},
                "last_bar_ts": [t - dt.timedelta(minutes=1) for t in ts],
                "last_news_utc": [None] * n,
            }
        ).with_columns(gap_pct=pl.Series(gap))
        store.write(
            "features",
            "events",
            day,
            features.select(FEATURES_SCHEMA.names()).cast(FEATURES_SCHEMA),
        )
        labels = pl.DataFrame(
            {
                "date": [day] * n,
                "ticker": features.get_column("ticker"),
                "ts": ts,
                "pattern": features.get_column("pattern"),
                "path_complete": [True] * n,
                "entry_ts": ts,
                "entry_price": [10.0] * n,
                "exit_ts": [t + dt.timedelta(minutes=15) for t in ts],
                "exit_price": [10.0] * n,
                "exit_reason": ["timeout"] * n,
                "ret": [0.0] * n,
                "label": label,
                "fwd_ret_5m": [0.0] * n,
                "fwd_ret_15m": [0.0] * n,
            }
        )
        store.write("labels", "events", day, labels.cast(LABELS_SCHEMA))


def write_flat_minute_bars(root: str | Path, first: dt.date, last: dt.date) -> None:
    """Processed minute bars around every labelled event of the sessions: flat at 10.0 (the
    fabricated entry and exit price) inside a 9.5-10.5 range, so every fill is inside a bar."""
    store = DataStore(str(root))
    for day in calendar.sessions(first, last):
        labels = store.read("labels", "events", day)
        rows = []
        for ticker, entry in labels.select("ticker", "entry_ts").iter_rows():
            for minute in range(16):
                rows.append((ticker, entry + dt.timedelta(minutes=minute)))
        bars = pl.DataFrame(
            rows, schema={"ticker": pl.String(), "ts": pl.Datetime("ms", "UTC")}, orient="row"
        )
        bars = bars.unique().with_columns(
            open=pl.lit(10.0),
            high=pl.lit(10.5),
            low=pl.lit(9.5),
            close=pl.lit(10.0),
            volume=pl.lit(1e5),
        )
        store.write("processed", "minute_bars", day, bars)
