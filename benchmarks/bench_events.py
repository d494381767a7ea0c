"""Features and labels on a synthetic full-market session, against references in the same run.

* Features: the bar-level feature columns (:func:`annotate_bars` + the spread estimate) for
  5,000 tickers x 960 minutes, versus a straightforward pandas implementation of the same
  columns (groupby transforms and rolling windows). Outputs are compared before timing counts.
* Labels: the vectorized triple barrier for 100,000 events versus two per-event loops, each
  timed on every event of a sample of tickers and scaled per event: the pure-Python reference
  (:func:`label_events_reference`, the specification the tests compare against) and the usual
  pandas loop (slice each event's path, boolean masks), checked to agree with the fast labeller.
* Memory: peak RSS of a fresh process that builds the session and computes its features.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from benchmarks import memory
from smallcaps_assets.core.events import annotate_bars
from smallcaps_assets.core.features import spread_estimate
from smallcaps_assets.core.labels import BarrierRules, label_events, label_events_reference
from smallcaps_assets.core.minute import NY_ZONE

DAY = dt.date(2024, 3, 5)
TICKERS = 5_000
MINUTES = 960  # 04:00-20:00 ET
EVENTS = 100_000
LOOP_SAMPLE_TICKERS = 100


def synthetic_session(tickers: int = TICKERS, seed: int = 1) -> pl.DataFrame:
    """Processed-minute-bar columns for ``tickers`` names, every minute 04:00-20:00 ET."""
    rng = np.random.default_rng(seed)
    chunks = [
        _session_chunk(rng, first, min(CHUNK, tickers - first))
        for first in range(0, tickers, CHUNK)
    ]
    return pl.concat(chunks, rechunk=True)


CHUNK = 500


def _session_chunk(rng: np.random.Generator, first: int, tickers: int) -> pl.DataFrame:
    n = tickers * MINUTES
    start = int(dt.datetime(2024, 3, 5, 9, 0, tzinfo=dt.UTC).timestamp() * 1000)  # 04:00 ET
    minute = np.tile(np.arange(MINUTES, dtype=np.int64), tickers)
    steps = rng.normal(0.0, 0.004, size=(tickers, MINUTES))
    base = rng.uniform(1.0, 20.0, size=(tickers, 1))
    close = (base * np.exp(np.cumsum(steps, axis=1))).ravel()
    open_ = np.concatenate([base, close.reshape(tickers, MINUTES)[:, :-1]], axis=1).ravel()
    wick = np.abs(rng.normal(0.0, 0.002, size=n))
    high = np.maximum(open_, close) * (1.0 + wick)
    low = np.minimum(open_, close) * (1.0 - wick)
    volume = rng.lognormal(7.0, 1.2, size=n).round()
    session = np.where(minute < 330, "pre", np.where(minute < 720, "regular", "post"))
    frame = pl.DataFrame(
        {
            "ticker": np.repeat([f"T{i:04d}" for i in range(first, first + tickers)], MINUTES),
            "ts": start + minute * 60_000,
            "session": session,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "vwap": (high + low + close) / 3.0,
        }
    )
    return frame.with_columns(
        ts=pl.col("ts").cast(pl.Datetime("ms", "UTC")),
        halt_resumption=pl.lit(False),
        halts_so_far=pl.lit(0, pl.Int64),
        ssr_active=pl.lit(False),
    ).with_columns(ts_et=pl.col("ts").dt.convert_time_zone(NY_ZONE))


def polars_features(bars: pl.DataFrame) -> pl.DataFrame:
    annotated = annotate_bars(bars)
    return annotated.with_columns(spread_est=spread_estimate().over("ticker")).select(
        "ticker", "ts", *FEATURE_COLUMNS
    )


FEATURE_COLUMNS = [
    "cum_volume",
    "session_vwap",
    "hod_before",
    "lod_before",
    "slope_15",
    "volume_burst",
    "or_high",
    "spread_est",
]


def pandas_features(bars: pl.DataFrame) -> pd.DataFrame:
    """The same columns, written the way a pandas user would: groupby transforms, rolling."""
    df = bars.filter(pl.col("session") == "regular").to_pandas()
    df = df.sort_values(["ticker", "ts"]).reset_index(drop=True)
    g = df.groupby("ticker", sort=False)
    df["cum_volume"] = g["volume"].cumsum()
    df["_dollars"] = df["vwap"] * df["volume"]
    df["session_vwap"] = df.groupby("ticker", sort=False)["_dollars"].cumsum() / df["cum_volume"]
    df["hod_before"] = g["high"].transform(lambda s: s.cummax().shift(1))
    df["lod_before"] = g["low"].transform(lambda s: s.cummin().shift(1))
    log_close = np.log(df["close"])
    x = pd.Series(np.arange(15, dtype=float) - 7.0)

    def slope(window: np.ndarray) -> float:
        return float(np.dot(window, x.to_numpy()) / 280.0)

    df["slope_15"] = log_close.groupby(df["ticker"], sort=False).transform(
        lambda s: s.rolling(15).apply(slope, raw=True)
    )
    df["volume_burst"] = df["volume"] / g["volume"].transform(
        lambda s: s.shift(1).rolling(10).mean()
    )
    minutes = df["ts_et"].dt.hour * 60 + df["ts_et"].dt.minute - 570
    df["_or"] = df["high"].where(minutes < 5)
    df["or_high"] = df.groupby("ticker", sort=False)["_or"].transform("max").where(minutes >= 5)
    mid = (np.log(df["high"]) + np.log(df["low"])) / 2.0
    prev_close = log_close.groupby(df["ticker"], sort=False).shift(1)
    prev_mid = mid.groupby(df["ticker"], sort=False).shift(1)
    df["_term"] = 4.0 * (prev_close - prev_mid) * (prev_close - mid)
    mean = df.groupby("ticker", sort=False)["_term"].transform(
        lambda s: s.rolling(15, min_periods=2).mean()
    )
    df["spread_est"] = np.where(mean > 0, np.sqrt(mean.clip(lower=0)), 0.0)
    return df[["ticker", "ts", *FEATURE_COLUMNS]]


def _same(polars_frame: pl.DataFrame, pandas_frame: pd.DataFrame) -> None:
    left = polars_frame.sort("ticker", "ts")
    for column in FEATURE_COLUMNS:
        a = left.get_column(column).to_numpy().astype(float)
        b = pandas_frame[column].to_numpy().astype(float)
        if not np.allclose(a, b, rtol=1e-7, atol=1e-9, equal_nan=True):
            raise AssertionError(f"pandas and polars disagree on {column}")


def synthetic_events(bars: pl.DataFrame, n: int, seed: int = 2) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    tickers = bars.get_column("ticker").unique().sort().to_numpy()
    open_ms = int(dt.datetime(2024, 3, 5, 14, 30, tzinfo=dt.UTC).timestamp() * 1000)
    picks = (
        pd.DataFrame(
            {
                "ticker": rng.choice(tickers, size=n * 2),
                "minute": rng.integers(1, 370, size=n * 2),
            }
        )
        .drop_duplicates()
        .head(n)
    )
    return pl.DataFrame(
        {
            "date": [DAY] * len(picks),
            "ticker": picks["ticker"].to_numpy(),
            "ts": open_ms + picks["minute"].to_numpy() * 60_000,
            "pattern": ["orb"] * len(picks),
        }
    ).with_columns(ts=pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def pandas_per_event_labels(
    events: pl.DataFrame, bars: pl.DataFrame, rules: BarrierRules | None = None
) -> pd.DataFrame:
    """The usual per-event loop in pandas (slice each event's path, find the first touch with
    boolean masks), same rules as :mod:`smallcaps_assets.core.labels`."""
    rules = rules or BarrierRules()
    regular = bars.filter(pl.col("session") == "regular").to_pandas()
    by_ticker = {t: g.set_index("ts").sort_index() for t, g in regular.groupby("ticker")}
    close_at = pd.Timestamp(dt.datetime(2024, 3, 5, 21, 0, tzinfo=dt.UTC))  # 16:00 ET
    horizon = pd.Timedelta(minutes=rules.timeout_minutes)
    minute = pd.Timedelta(minutes=1)
    out = []
    for event in events.to_pandas().itertuples(index=False):
        path_all = by_ticker.get(event.ticker)
        after = path_all[path_all.index >= event.ts] if path_all is not None else None
        if after is None or after.empty:
            out.append((event.ticker, event.ts, None, None, None))
            continue
        entry_ts, price = after.index[0], after["open"].iloc[0]
        complete = entry_ts + horizon <= close_at
        end = min(entry_ts + horizon, close_at)
        path = after[after.index < end]
        tp, sl = price * (1 + rules.take_profit), price * (1 - rules.stop)
        gap_sl = path["open"] <= sl
        gap_tp = (path["open"] >= tp) & ~gap_sl
        hit_sl = gap_sl | (~gap_tp & (path["low"] <= sl))
        hit_tp = gap_tp | (~hit_sl & (path["high"] >= tp))
        touched = path.index[hit_sl | hit_tp]
        if len(touched):
            at = touched[0]
            gapped = bool(gap_sl[at] or gap_tp[at])
            reason = "stop" if hit_sl[at] else "take_profit"
            exit_price = path["open"][at] if gapped else (sl if reason == "stop" else tp)
            out.append((event.ticker, event.ts, reason, exit_price, at if gapped else at + minute))
            continue
        rest = after[after.index >= end]
        last = path.index[-1]
        if not complete:
            out.append((event.ticker, event.ts, "end_of_day", path["close"].iloc[-1], end))
        elif (
            len(rest)
            and rest["halt_resumption"].iloc[0]
            and rest.index[0] > end
            and last + minute < end
        ):
            out.append(
                (event.ticker, event.ts, "timeout_halted", rest["open"].iloc[0], rest.index[0])
            )
        else:
            out.append((event.ticker, event.ts, "timeout", path["close"].iloc[-1], end))
    return pd.DataFrame(out, columns=["ticker", "ts", "exit_reason", "exit_price", "exit_ts"])


def _same_labels(fast: pl.DataFrame, slow: pd.DataFrame) -> None:
    reasons = fast.get_column("exit_reason").to_list()
    if reasons != [r if isinstance(r, str) else None for r in slow["exit_reason"]]:
        raise AssertionError("pandas per-event labels disagree on exit reasons")
    a = fast.get_column("exit_price").to_numpy().astype(float)
    b = slow["exit_price"].to_numpy().astype(float)
    if not np.allclose(a, b, equal_nan=True):
        raise AssertionError("pandas per-event labels disagree on exit prices")


def timed(fn: Any, *args: Any, repeat: int = 1) -> tuple[float, Any]:
    """Seconds of the fastest of ``repeat`` calls, and the last call's result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - started)
    return best, out


def peak_memory_of_session() -> float:
    """Peak RSS (GiB) of a fresh interpreter building the session and its features."""
    code = (
        "import benchmarks.bench_events as b, benchmarks.memory as m\n"
        "b.polars_features(b.synthetic_session())\n"
        "print(m.peak_rss_kib())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return int(out.stdout.strip().splitlines()[-1]) / (1024 * 1024)


def run() -> dict[str, Any]:
    bars = synthetic_session()
    polars_s, features = timed(polars_features, bars, repeat=2)
    pandas_s, reference = timed(pandas_features, bars)
    _same(features, reference)
    events = synthetic_events(bars, EVENTS)
    fast_s, labelled = timed(label_events, events, bars, DAY, repeat=2)
    # The loop runs on every event of a sample of tickers (with those tickers' bars), so bars per
    # event match the full run and the per-event cost scales linearly.
    sample_tickers = bars.get_column("ticker").unique().sort().head(LOOP_SAMPLE_TICKERS).implode()
    in_sample = pl.col("ticker").is_in(sample_tickers)
    sample = events.filter(in_sample)
    loop_s, looped = timed(label_events_reference, sample, bars.filter(in_sample), DAY)
    if not looped.equals(labelled.filter(in_sample)):
        raise AssertionError("vectorized and loop labels differ on the sample")
    pandas_loop_s, pandas_labels = timed(pandas_per_event_labels, sample, bars.filter(in_sample))
    _same_labels(labelled.filter(in_sample), pandas_labels)
    loop_per_event = loop_s / sample.height
    pandas_per_event = pandas_loop_s / sample.height
    fast_per_event = fast_s / events.height
    peak_gib = peak_memory_of_session()
    return {
        "features": {
            "bars": bars.height,
            "polars_s": round(polars_s, 3),
            "pandas_s": round(pandas_s, 3),
            "speedup": round(pandas_s / polars_s, 1),
            "target": ">= 3x",
        },
        "labels": {
            "events": events.height,
            "vectorized_s": round(fast_s, 3),
            "loop_sample_events": sample.height,
            "loop_sample_s": round(loop_s, 3),
            "loop_s_scaled_to_all_events": round(loop_per_event * events.height, 1),
            "speedup_vs_python_loop": round(loop_per_event / fast_per_event, 0),
            "pandas_loop_sample_s": round(pandas_loop_s, 3),
            "pandas_loop_s_scaled_to_all_events": round(pandas_per_event * events.height, 1),
            "speedup_vs_pandas_loop": round(pandas_per_event / fast_per_event, 0),
            "target": ">= 500x",
        },
        "memory": {"peak_rss_gib": round(peak_gib, 2), "target": "< 2 GiB"},
        "peak_rss_this_process_gib": round(memory.peak_rss_kib() / (1024 * 1024), 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
