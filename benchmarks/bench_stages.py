"""Every pipeline stage on a full-market session: backtest throughput, peak memory, scaling.

The session is :func:`benchmarks.bench_events.synthetic_session` (5,000 tickers x 960 minutes),
taken through the real stages in order, each on the output of the one before: ingestion parsing
(``parse_aggregates`` per ticker on decoded Polygon rows, as the raw minute-bar asset does after
its requests), minute-bar processing, event detection, event features, triple-barrier labels and
the backtest of the session's candidates.

* Backtest: a month (the 20 NYSE sessions of March 2024) of full-market candidate trades: every
  event ``detect_events`` finds in the session, labelled, with the sizing inputs from its
  features (assembled as ``defs/backtest.py`` does), on every session of the month at the same
  New York times. Fills per second count an entry and an exit per trade taken; candidates per
  second count every row evaluated. References on the same candidates in the same run: a plain
  pandas ``iterrows`` implementation of the same rules and cost arithmetic (checked to book the
  same trades, skips and P&L) and a bare Python walk over the rows (the floor of any row loop),
  under the default rules and with every sized candidate taken (the fill path at full load).
* Memory: peak RSS of each stage in a fresh interpreter of its own, next to that interpreter's
  RSS after the imports alone (idle), so the stage's increment is visible.
* Scaling: each stage on the first quarter, half and all of the session's tickers (1x, 2x, 4x):
  wall and CPU seconds and peak RSS, with growth ratios (2 and 4 mean linear). CPU seconds are
  the steadier figure on a shared machine.

The child of a stage runs 1x, 2x then 4x, growing, so each run's peak is its own (memory a smaller
run freed is reused first, and the peak is reset before each run); its 4x run is the full-market
figure of the memory section, and writes the stage's output for the next stages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import heapq
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from benchmarks import memory
from benchmarks.bench_events import DAY, synthetic_session, timed
from smallcaps_assets.core import calendar
from smallcaps_assets.core.backtest import RiskRules, run_backtest
from smallcaps_assets.core.costs import CostModel
from smallcaps_assets.core.events import DIRECTION, detect_events
from smallcaps_assets.core.features import FeatureInputs, event_features
from smallcaps_assets.core.labels import label_events
from smallcaps_assets.core.minute import NY_ZONE, PRIOR_DAY_SCHEMA, process_minute_bars
from smallcaps_assets.sources import parsers

REPO = Path(__file__).resolve().parents[1]
GIB = 1024**3
MONTH = calendar.sessions(dt.date(2024, 3, 1), dt.date(2024, 3, 31))  # 20 sessions
SCALES = (1, 2, 4)


@dataclass(frozen=True)
class Sizes:
    tickers: int  # the full-market session: the 4x of the scaling runs
    sessions: int  # the backtest's month
    # The references replay the month's first candidates in entry order: a morning of the first
    # session at full-market density (a time prefix of a sequential backtest is a backtest).
    reference_candidates: int

    @property
    def base_tickers(self) -> int:
        return self.tickers // SCALES[-1]


FULL = Sizes(tickers=5_000, sessions=len(MONTH), reference_candidates=20_000)
QUICK = Sizes(tickers=40, sessions=4, reference_candidates=300)

# Every candidate with a size of at least one share becomes a trade: the fill path at full load
# (costs, the position heap, the trade rows), where the default rules mostly skip candidates.
EVERY_CANDIDATE = RiskRules(
    account_size=1e7,
    risk_per_trade=1e-4,
    max_position_fraction=1e-4,
    participation_cap=1.0,
    max_open_positions=10**9,
    max_daily_loss=1.0,
    kill_switch_drawdown=1.0,
)


# -- inputs ---------------------------------------------------------------------------------------
def raw_minute_bars(session: pl.DataFrame) -> pl.DataFrame:
    """The synthetic session as the raw minute-bar asset stores it (``MINUTE_BARS_SCHEMA``)."""
    raw = session.with_columns(
        window_start=pl.col("ts"),
        transactions=(pl.col("volume") / 50.0).ceil().cast(pl.Int64),
    )
    return raw.select(pl.col(n).cast(t) for n, t in parsers.MINUTE_BARS_SCHEMA.items())


def prior_day(raw: pl.DataFrame) -> pl.DataFrame:
    """D-1's close 5 % above each ticker's first open: the SSR rule then watches a threshold 5.5 %
    below that open, which some of the random walks cross."""
    return (
        raw.group_by("ticker")
        .agg(previous_close=pl.col("open").first() * 1.05)
        .with_columns(ssr_carried_in=pl.lit(False))
        .select(PRIOR_DAY_SCHEMA.names())
    )


def polygon_rows(raw: pl.DataFrame) -> list[tuple[str, list[dict[str, Any]]]]:
    """Decoded ``/v2/aggs`` results per ticker: what the raw asset holds after its requests."""
    wire = raw.select(
        "ticker",
        t=pl.col("window_start").dt.epoch("ms"),
        o="open",
        h="high",
        l="low",
        c="close",
        v="volume",
        vw="vwap",
        n="transactions",
    )
    return [
        (str(key[0]), part.drop("ticker").to_dicts())
        for key, part in wire.group_by("ticker", maintain_order=True)
    ]


def parse_all(rows: list[tuple[str, list[dict[str, Any]]]]) -> pl.DataFrame:
    """The raw asset's parsing: one ``parse_aggregates`` per ticker, then one frame."""
    return pl.concat([parsers.parse_aggregates(bars, ticker) for ticker, bars in rows])


_NEWS_TITLES = (
    "Announces registered direct offering",
    "Receives FDA clearance for device",
    "Reports third quarter results",
    "Announces reverse stock split",
    "Enters strategic partnership",
)


def feature_inputs(tickers: list[str], seed: int = 3) -> FeatureInputs:
    """Everything besides the bars that ``event_features`` joins: one row per ticker (a
    fundamentals row for every other one), the minute-of-day volume baseline and three articles
    per ticker over the previous month."""
    rng = np.random.default_rng(seed)
    n = len(tickers)
    minutes = pl.DataFrame({"minutes_since_open": pl.int_range(0, 390, eager=True)})
    per_minute = pl.DataFrame({"ticker": tickers, "_per_minute": rng.lognormal(7.0, 1.0, n)})
    with_fundamentals = tickers[::2]
    m = len(with_fundamentals)
    day_open = dt.datetime.combine(DAY, dt.time(9, 30), tzinfo=calendar.NY).astimezone(dt.UTC)
    articles = [
        {
            "id": f"{ticker}-{k}",
            "published_utc": (day_open - dt.timedelta(minutes=int(age))).isoformat(),
            "title": _NEWS_TITLES[(i + k) % len(_NEWS_TITLES)],
            "tickers": [ticker],
            "insights": [{"ticker": ticker, "sentiment": ("positive", "neutral", "negative")[k]}],
        }
        for i, ticker in enumerate(tickers)
        for k, age in enumerate(rng.integers(-300, 30 * 24 * 60, size=3))
    ]
    return FeatureInputs(
        universe=pl.DataFrame(
            {
                "ticker": tickers,
                "gap_pct": rng.uniform(0.1, 0.8, n),
                "primary_exchange": rng.choice(["XNAS", "XNYS", "XASE"], n),
                "shares_outstanding": rng.uniform(5e6, 5e7, n),
                "market_cap": rng.uniform(1e7, 3e8, n),
            }
        ),
        watchlist=pl.DataFrame(
            {
                "ticker": tickers,
                "premarket_volume": rng.lognormal(11.0, 1.0, n),
                "premarket_rvol": rng.lognormal(1.0, 0.5, n),
            }
        ),
        tod_baseline=per_minute.join(minutes, how="cross").select(
            "ticker",
            "minutes_since_open",
            avg_cum_volume=pl.col("_per_minute") * (pl.col("minutes_since_open") + 1),
        ),
        daily=pl.DataFrame(
            {
                "ticker": tickers,
                "atr_pct_14": rng.uniform(0.04, 0.25, n),
                "ret_1d": rng.normal(0.0, 0.1, n),
                "ret_5d": rng.normal(0.0, 0.2, n),
                "ret_20d": rng.normal(0.0, 0.3, n),
                "avg_volume_20d": rng.lognormal(13.0, 1.0, n),
            }
        ),
        fundamentals=pl.DataFrame(
            {
                "ticker": with_fundamentals,
                "shares_change_pct": rng.normal(0.1, 0.2, m),
                "cash_burn_quarterly": rng.uniform(1e5, 1e7, m),
                "months_of_runway": rng.uniform(1.0, 36.0, m),
                "revenue_growth_qoq": rng.normal(0.0, 0.3, m),
                "revenue_growth_yoy": rng.normal(0.0, 0.5, m),
            }
        ),
        corporate=pl.DataFrame(
            {
                "ticker": tickers,
                "days_since_reverse_split": pl.Series([None] * n, dtype=pl.Int64),
                "split_count_12m": pl.Series([0] * n, dtype=pl.Int64),
            }
        ),
        news=parsers.parse_news(articles),
        details=pl.DataFrame(
            {"ticker": tickers, "sic_code": rng.choice(["2834", "7372", "3674"], n)}
        ),
    )


def _on_session(frame: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """``frame``'s events of ``DAY`` moved to ``day`` at the same New York wall-clock times (a
    UTC shift would move them an hour across the March DST change)."""
    days = (day - DAY).days

    def moved(column: str) -> pl.Expr:
        local = pl.col(column).dt.convert_time_zone(NY_ZONE).dt.replace_time_zone(None)
        return (
            (local + pl.duration(days=days))
            .dt.replace_time_zone(NY_ZONE)
            .dt.convert_time_zone("UTC")
            .alias(column)
        )

    return frame.with_columns(moved("ts"), moved("entry_ts"), moved("exit_ts"), date=pl.lit(day))


def session_candidates(
    labels: pl.DataFrame, features: pl.DataFrame, bars: pl.DataFrame
) -> pl.DataFrame:
    """Backtest candidates of the session: its labelled events with their sizing inputs,
    assembled as ``defs/backtest.py`` does (every event: no model has selected any)."""
    keys = ["ticker", "ts", "pattern"]
    entry_volume = bars.select(
        "ticker", pl.col("ts").alias("entry_ts"), pl.col("volume").alias("entry_bar_volume")
    )
    return (
        labels.drop("date")
        .join(features.select(*keys, "atr_pct_14", "spread_est", "ssr_active"), on=keys, how="left")
        .join(entry_volume, on=["ticker", "entry_ts"], how="left")
        .with_columns(date=pl.lit(DAY), ssr_active=pl.col("ssr_active") > 0)
    )


def month_candidates(session: pl.DataFrame, sessions: list[dt.date]) -> pl.DataFrame:
    """The session's candidates on each of ``sessions``, at the same New York times."""
    return pl.concat([_on_session(session, day) for day in sessions])


# -- the backtest reference -----------------------------------------------------------------------
def pandas_backtest(
    candidates: pl.DataFrame, rules: RiskRules, costs: CostModel
) -> tuple[int, dict[str, int], float, float]:
    """The rules of ``core.backtest`` written as a pandas user would: ``iterrows`` and row
    lookups, the cost arithmetic inline. Returns (trades, skipped, net P&L, final cash)."""
    frame = candidates.sort("entry_ts", "ticker", "pattern", nulls_last=True).to_pandas()
    cash = peak = rules.account_size
    open_positions: list[tuple[pd.Timestamp, int, float, float, dt.date]] = []
    held: dict[int, float] = {}
    locked: dict[int, float] = {}  # a short's proceeds and margin, not spendable
    day_start: dict[dt.date, float] = {}
    day_realized: dict[dt.date, float] = {}
    skipped: dict[str, int] = {}
    killed = False
    trades = 0
    total_net = 0.0
    for trade_id, row in frame.iterrows():
        if pd.isna(row["entry_ts"]) or pd.isna(row["exit_ts"]):
            skipped["no_entry_bar"] = skipped.get("no_entry_bar", 0) + 1
            continue
        entry_ts = row["entry_ts"]
        while open_positions and open_positions[0][0] <= entry_ts:
            _, closed, proceeds, closed_net, closed_day = heapq.heappop(open_positions)
            cash += proceeds
            del held[closed]
            locked.pop(closed, None)
            day_realized[closed_day] = day_realized.get(closed_day, 0.0) + closed_net
            peak = max(peak, cash + sum(held.values()))
        equity = cash + sum(held.values())
        if not killed and equity <= peak * (1.0 - rules.kill_switch_drawdown):
            killed = True
        reason = None
        short = DIRECTION.get(row["pattern"], "long") == "short"
        local = entry_ts.tz_convert(NY_ZONE)
        day = local.date()
        if killed:
            reason = "kill_switch"
        elif not rules.first_entry <= local.time() <= rules.last_entry:
            reason = "outside_entry_hours"
        else:
            day_start.setdefault(day, equity)
            if -day_realized.get(day, 0.0) >= rules.max_daily_loss * day_start[day]:
                reason = "max_daily_loss"
            elif short and not pd.isna(row["ssr_active"]) and bool(row["ssr_active"]):
                reason = "ssr_short"
            elif len(open_positions) >= rules.max_open_positions:
                reason = "max_open_positions"
        entry, exit_ = float(row["entry_price"]), float(row["exit_price"])
        shares = 0.0
        if reason is None:
            atr = row["atr_pct_14"]
            volume = 0.0 if pd.isna(row["entry_bar_volume"]) else float(row["entry_bar_volume"])
            if not pd.isna(atr) and atr > 0:
                shares = float(
                    int(
                        min(
                            equity * rules.risk_per_trade / (entry * atr * rules.atr_stop_multiple),
                            equity * rules.max_position_fraction / entry,
                            rules.participation_cap * volume,
                            (cash - sum(locked.values())) / entry,
                        )
                    )
                )
            if shares < 1:
                reason = "size_zero"
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        spread = max(0.0 if pd.isna(row["spread_est"]) else row["spread_est"], costs.min_spread)
        factor = costs.ssr_slippage_factor if row["ssr_active"] else costs.slippage_factor
        slippage = entry * spread * factor * shares + exit_ * spread * factor * shares
        ecn_fees = 2.0 * shares * costs.ecn_fee_per_share
        # A short sells at the entry (the SEC fee's sale) and borrows the shares until the exit.
        sec_fee = shares * (entry if short else exit_) * costs.sec_fee_per_million / 1_000_000.0
        years = (row["exit_ts"] - entry_ts).total_seconds() / (365 * 24 * 3600)
        borrow = shares * entry * costs.borrow_fee_annual * years if short else 0.0
        total_cost = ecn_fees + sec_fee + slippage + borrow
        entry_cost = ecn_fees / 2.0 + slippage * entry / (entry + exit_)
        entry_cost += sec_fee if short else 0.0
        side = -1.0 if short else 1.0
        cash -= side * shares * entry + entry_cost
        held[trade_id] = side * shares * entry + entry_cost
        if short:
            locked[trade_id] = 2.0 * shares * entry
        net = side * shares * (exit_ - entry) - total_cost
        heapq.heappush(
            open_positions,
            (row["exit_ts"], trade_id, side * shares * exit_ - (total_cost - entry_cost), net, day),
        )
        total_net += net
        trades += 1
    for _, _, proceeds, _, _ in open_positions:
        cash += proceeds
    return trades, skipped, total_net, cash


def bare_row_walk(candidates: pl.DataFrame) -> int:
    """The floor of any per-row backtest: sort as the backtest does and visit every row."""
    rows = 0
    for _ in candidates.sort("entry_ts", "ticker", "pattern", nulls_last=True).iter_rows(
        named=True
    ):
        rows += 1
    return rows


def _seconds(value: float) -> float:
    """Three significant figures: enough for a ratio, and never 0 for a quick run's tiny time."""
    return float(f"{value:.3g}")


def _checked(candidates: pl.DataFrame, rules: RiskRules) -> dict[str, Any]:
    """``run_backtest`` and the pandas reference on the same candidates: same trades, skips and
    P&L, zero drift; seconds of both and of the bare row walk."""
    costs = CostModel()
    backtest_s, result = timed(run_backtest, candidates, rules, costs)
    pandas_s, (trades, skipped, net, cash) = timed(pandas_backtest, candidates, rules, costs)
    walk_s, _ = timed(bare_row_walk, candidates)
    taken = result.trades.height
    net_total = float(result.trades.get_column("net_pnl").sum()) if taken else 0.0
    if (taken, result.skipped) != (trades, skipped):
        raise AssertionError(f"pandas reference disagrees: {trades} {skipped} vs {result.skipped}")
    if not (math.isclose(net, net_total, rel_tol=1e-9, abs_tol=1e-6)):
        raise AssertionError(f"pandas reference books net P&L {net} against {net_total}")
    if not math.isclose(cash, result.final_cash, rel_tol=1e-12, abs_tol=1e-6):
        raise AssertionError(f"pandas reference ends with cash {cash} against {result.final_cash}")
    if abs(result.accounting_drift) >= 1e-6:
        raise AssertionError(f"backtest accounting drift {result.accounting_drift}")
    return {
        "candidates": candidates.height,
        "trades": taken,
        "fills": 2 * taken,
        "backtest_s": backtest_s,
        "pandas_iterrows_s": pandas_s,
        "bare_row_walk_s": walk_s,
        "accounting_drift": result.accounting_drift,
    }


def backtest_throughput(candidates: pl.DataFrame, sizes: Sizes) -> dict[str, dict[str, object]]:
    """Fills and candidates per second on the month; against the references on the month's first
    ``reference_candidates`` in entry order, under the default rules and taking every candidate."""
    costs = CostModel()
    month_s, month = timed(run_backtest, candidates, RiskRules(), costs)
    if abs(month.accounting_drift) >= 1e-6:
        raise AssertionError(f"backtest accounting drift {month.accounting_drift}")
    taken = month.trades.height
    in_entry_order = candidates.sort("entry_ts", "ticker", "pattern", nulls_last=True)
    prefix = in_entry_order.head(sizes.reference_candidates)
    default = _checked(prefix, RiskRules())
    every = _checked(prefix, EVERY_CANDIDATE)

    def versus(figures: dict[str, Any]) -> dict[str, object]:
        per_s = figures["backtest_s"]
        return {
            "candidates": figures["candidates"],
            "trades": figures["trades"],
            "fills": figures["fills"],
            "backtest_s": _seconds(per_s),
            "fills_per_s": round(figures["fills"] / per_s),
            "candidates_per_s": round(figures["candidates"] / per_s),
            "pandas_iterrows_s": _seconds(figures["pandas_iterrows_s"]),
            "speedup_vs_pandas_iterrows": round(figures["pandas_iterrows_s"] / per_s, 1),
            "bare_row_walk_s": _seconds(figures["bare_row_walk_s"]),
            "backtest_over_bare_row_walk": round(per_s / figures["bare_row_walk_s"], 2),
            "accounting_drift": figures["accounting_drift"],
        }

    return {
        "backtest_month": {
            "sessions": sizes.sessions,
            "candidates": candidates.height,
            "candidates_per_session": round(candidates.height / sizes.sessions),
            "trades": taken,
            "fills": 2 * taken,
            "skipped": json.dumps(month.skipped, sort_keys=True),
            "seconds": _seconds(month_s),
            "fills_per_s": round(2 * taken / month_s),
            "candidates_per_s": round(candidates.height / month_s),
            "accounting_drift": month.accounting_drift,
        },
        "backtest_vs_reference_default_rules": versus(default),
        "backtest_vs_reference_every_candidate": versus(every),
    }


# -- stages, each in its own process ---------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    name: str
    load: Callable[[Path, int], Any]  # (workdir, tickers) -> input
    run: Callable[[Any], Any]
    # Writes the 4x output where the next stages read it.
    save: Callable[[Any, Path, Sizes], None] | None = None


def _tickers(workdir: Path, count: int) -> list[str]:
    names: list[str] = json.loads((workdir / "tickers.json").read_text())
    return names[:count]


def _read(workdir: Path, name: str, tickers: list[str]) -> pl.DataFrame:
    return (
        pl.scan_parquet(workdir / f"{name}.parquet")
        .filter(pl.col("ticker").is_in(tickers))
        .collect()
    )


def _load_parse(workdir: Path, count: int) -> Any:
    return polygon_rows(_read(workdir, "raw", _tickers(workdir, count)))


def _load_minute(workdir: Path, count: int) -> Any:
    tickers = _tickers(workdir, count)
    return _read(workdir, "raw", tickers), _read(workdir, "prior", tickers)


def _load_events(workdir: Path, count: int) -> Any:
    return _read(workdir, "minute_bars", _tickers(workdir, count))


def _load_features(workdir: Path, count: int) -> Any:
    tickers = _tickers(workdir, count)
    return (
        _read(workdir, "events", tickers),
        _read(workdir, "minute_bars", tickers),
        feature_inputs(tickers),
    )


def _load_labels(workdir: Path, count: int) -> Any:
    tickers = _tickers(workdir, count)
    events = _read(workdir, "events", tickers).select("date", "ticker", "ts", "pattern")
    return events, _read(workdir, "minute_bars", tickers)


def _load_backtest(workdir: Path, count: int) -> Any:
    return _read(workdir, "candidates", _tickers(workdir, count))


def _saved_as(name: str) -> Callable[[pl.DataFrame, Path, Sizes], None]:
    def save(frame: pl.DataFrame, workdir: Path, sizes: Sizes) -> None:
        frame.write_parquet(workdir / f"{name}.parquet")

    return save


def _save_labels(labels: pl.DataFrame, workdir: Path, sizes: Sizes) -> None:
    labels.write_parquet(workdir / "labels.parquet")
    session_candidates(
        labels,
        pl.read_parquet(workdir / "features.parquet"),
        pl.read_parquet(workdir / "minute_bars.parquet"),
    ).write_parquet(workdir / "candidates.parquet")


STAGES = (  # in pipeline order: each stage reads what the ones before it saved
    Stage("parse", _load_parse, parse_all),
    Stage(
        "minute_bars",
        _load_minute,
        lambda i: process_minute_bars(i[0], DAY, prior=i[1]).frame,
        _saved_as("minute_bars"),
    ),
    Stage("events", _load_events, lambda b: detect_events(b, DAY), _saved_as("events")),
    Stage("features", _load_features, lambda i: event_features(*i), _saved_as("features")),
    Stage("labels", _load_labels, lambda i: label_events(i[0], i[1], DAY), _save_labels),
    Stage("backtest", _load_backtest, lambda c: run_backtest(c).trades),
)


def _peak_gib(resettable: bool) -> float:
    if resettable:
        return memory.peak_rss_kib() / 1024**2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _input_gib(value: Any) -> float:
    """In-memory size of a stage's input: frames as Polars counts them, decoded rows as the
    Python objects they are (every row has the same keys and value types)."""
    if isinstance(value, pl.DataFrame):
        return value.estimated_size() / GIB
    if isinstance(value, FeatureInputs):
        return sum(_input_gib(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, tuple):
        return sum(_input_gib(v) for v in value)
    if isinstance(value, list) and value and isinstance(value[0], tuple):  # decoded rows
        first = value[0][1][0]
        per_row = sys.getsizeof(first) + sum(sys.getsizeof(v) for v in first.values())
        per_list = sum(sys.getsizeof(rows) for _, rows in value)
        return (per_row * sum(len(rows) for _, rows in value) + per_list) / GIB
    return 0.0


def child(stage_names: list[str], workdir: Path, quick: bool) -> dict[str, Any]:
    """Run each stage at 1x, 2x and 4x in this process (a fresh one but in quick runs) and save
    its 4x output."""
    sizes = QUICK if quick else FULL
    gc.collect()
    idle_gib = memory.status_kib("VmRSS") / 1024**2
    figures: dict[str, Any] = {}
    for stage in (s for s in STAGES if s.name in stage_names):
        base = sizes.base_tickers
        # First calls pay one-off costs (the exchange calendar, Polars' thread pool).
        stage.run(stage.load(workdir, 1))
        runs = []
        resettable = True
        for scale in SCALES:
            gc.collect()
            data = stage.load(workdir, base * scale)
            input_gib = _input_gib(data)
            resettable = memory.reset_peak()
            wall, cpu = time.perf_counter(), time.process_time()
            out = stage.run(data)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            runs.append(
                {
                    "tickers": base * scale,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "peak_gib": _peak_gib(resettable),
                    "input_gib": input_gib,
                }
            )
            if scale == SCALES[-1] and stage.save:
                stage.save(out, workdir, sizes)
            del data, out
        figures[stage.name] = {"idle_gib": idle_gib, "peak_resettable": resettable, "runs": runs}
    return figures


def _run_child(stages: list[str], workdir: Path, quick: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_stages", "--child", ",".join(stages)]
    out = subprocess.run(
        [*command, str(workdir), *(["--quick"] if quick else [])],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"stages {stages} failed:\n{out.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


# -- the run ---------------------------------------------------------------------------------------
def _prepare(workdir: Path, sizes: Sizes) -> pl.DataFrame:
    session = synthetic_session(sizes.tickers)
    raw = raw_minute_bars(session)
    del session
    tickers = raw.get_column("ticker").unique().sort().to_list()
    (workdir / "tickers.json").write_text(json.dumps(tickers))
    raw.write_parquet(workdir / "raw.parquet")
    prior_day(raw).write_parquet(workdir / "prior.parquet")
    return raw


def run(quick: bool = False) -> dict[str, object]:
    sizes = QUICK if quick else FULL
    results: dict[str, object] = {}
    stage_figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_stages_") as tmp:
        workdir = Path(tmp)
        bars_in_session = _prepare(workdir, sizes).height
        names = [stage.name for stage in STAGES]
        if quick:
            # A smoke test of the figures: its stages share this process (a fresh interpreter
            # costs seconds of imports), so its peaks are not per stage.
            stage_figures = child(names, workdir, quick=True)
        else:
            for name in names:
                stage_figures.update(_run_child([name], workdir, quick=False))
        candidates = month_candidates(
            pl.read_parquet(workdir / "candidates.parquet"), MONTH[: sizes.sessions]
        )
        events = pl.read_parquet(workdir / "events.parquet")
        labels = pl.read_parquet(workdir / "labels.parquet")

    by_pattern = events.group_by("pattern").len().sort("pattern").iter_rows()
    results["session"] = {
        "tickers": sizes.tickers,
        "bars": bars_in_session,
        "events": events.height,
        "events_per_ticker": round(events.height / sizes.tickers, 1),
        "events_with_entry_bar": labels.filter(pl.col("entry_ts").is_not_null()).height,
        "events_by_pattern": json.dumps(dict(by_pattern)),
    }
    results.update(backtest_throughput(candidates, sizes))

    idle = min(figures["idle_gib"] for figures in stage_figures.values())
    memory: dict[str, object] = {"idle_child_rss_gib": round(idle, 2)}
    for stage in STAGES:
        full = stage_figures[stage.name]["runs"][-1]
        memory[f"{stage.name}_peak_rss_gib"] = round(full["peak_gib"], 2)
        own_idle = stage_figures[stage.name]["idle_gib"]
        memory[f"{stage.name}_above_idle_gib"] = round(full["peak_gib"] - own_idle, 2)
        memory[f"{stage.name}_input_gib"] = round(full["input_gib"], 2)
    memory["peak_rss_reset_before_each_run"] = all(
        f["peak_resettable"] for f in stage_figures.values()
    )
    results["memory"] = memory

    for stage in STAGES:
        runs = stage_figures[stage.name]["runs"]
        first = runs[0]
        section: dict[str, object] = {"base_tickers": first["tickers"]}
        for scale, figures in zip(SCALES, runs, strict=True):
            section[f"wall_s_{scale}x"] = _seconds(figures["wall_s"])
        for scale, figures in zip(SCALES, runs, strict=True):
            section[f"cpu_s_{scale}x"] = _seconds(figures["cpu_s"])
        for scale, figures in zip(SCALES, runs, strict=True):
            section[f"peak_rss_gib_{scale}x"] = round(figures["peak_gib"], 2)
        for scale, figures in zip(SCALES[1:], runs[1:], strict=True):
            section[f"wall_growth_{scale}x"] = round(figures["wall_s"] / first["wall_s"], 2)
            section[f"cpu_growth_{scale}x"] = round(figures["cpu_s"] / first["cpu_s"], 2)
        results[f"scaling_{stage.name}"] = section
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("STAGES", "WORKDIR"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.child:
        stages, workdir = args.child
        print(json.dumps(child(stages.split(","), Path(workdir), args.quick)))
    else:
        print(json.dumps(run(quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
