"""The simulated market: lazily built panels and plain Polars accessors over them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import Final

import numpy as np
import polars as pl

from smallcaps_assets.core.universe import COMMON_STOCK, MAJOR_EXCHANGES, UniverseRules
from smallcaps_assets.sources.simulator.calendar import Sessions, et_ms, sessions_between
from smallcaps_assets.sources.simulator.config import SimConfig
from smallcaps_assets.sources.simulator.corporate import build_dividends, build_financials
from smallcaps_assets.sources.simulator.daily import (
    TICKS_PER_DOLLAR,
    Catalyst,
    DailyPanel,
    build_daily_panel,
)
from smallcaps_assets.sources.simulator.gapsession import Pattern
from smallcaps_assets.sources.simulator.minutes import MinuteBars, MinuteEngine
from smallcaps_assets.sources.simulator.news import build_news
from smallcaps_assets.sources.simulator.universe import Kind, Universe, build_universe

_UNKNOWN: Final = -1


@dataclass(frozen=True, eq=False)
class _Core:
    universe: Universe
    panel: DailyPanel
    engine: MinuteEngine
    tid_of: dict[str, int]


class SimulatedMarket:
    """A deterministic small-cap market; cheap to construct, heavy parts built on first use.

    Everything is a pure function of the config: two instances with equal configs, in any
    process, answer every question identically whatever order they are asked in. Safe to share
    between threads and asyncio tasks (the lazy builds are guarded by a lock).
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config if config is not None else SimConfig()
        self._lock = threading.RLock()
        self._core: _Core | None = None
        self._tables: dict[str, pl.DataFrame] = {}
        self._daily_vwap: np.ndarray | None = None  # ticks, -1 until computed
        self._daily_trades: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"SimulatedMarket({self.config!r})"

    # -- the lazily built parts ---------------------------------------------------------------
    @property
    def sessions(self) -> Sessions:
        return sessions_between(self.config.history_start, self.config.history_end)

    @property
    def universe(self) -> Universe:
        return self._built().universe

    @property
    def panel(self) -> DailyPanel:
        return self._built().panel

    def _built(self) -> _Core:
        if self._core is None:
            with self._lock:
                if self._core is None:
                    cfg = self.config
                    universe = build_universe(cfg.seed, cfg.n_tickers, self.sessions)
                    panel = build_daily_panel(cfg, self.sessions, universe)
                    engine = MinuteEngine(cfg.seed, cfg.signal, self.sessions, universe, panel)
                    tid_of = {symbol: tid for tid, symbol in enumerate(universe.symbols)}
                    self._core = _Core(universe, panel, engine, tid_of)
        return self._core

    def _table(self, name: str, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        table = self._tables.get(name)
        if table is None:
            with self._lock:
                table = self._tables.get(name)
                if table is None:
                    table = build()
                    self._tables[name] = table
        return table

    def financials_table(self) -> pl.DataFrame:
        """Filings with one column per concept (``tid`` indexes the universe)."""
        return self._table(
            "financials",
            lambda: build_financials(self.config.seed, self.sessions, self.universe, self.panel),
        )

    def dividends_table(self) -> pl.DataFrame:
        return self._table(
            "dividends",
            lambda: build_dividends(self.config.seed, self.sessions, self.universe, self.panel),
        )

    def news_table(self) -> pl.DataFrame:
        """Articles as numbers (render them with ``news.render_article``)."""
        return self._table(
            "news",
            lambda: build_news(
                self.config.seed,
                self.sessions,
                self.universe,
                self.panel,
                self.financials_table(),
            ),
        )

    # -- lookups used by the API ---------------------------------------------------------------
    def ticker_id(self, symbol: str) -> int | None:
        return self._built().tid_of.get(symbol)

    def listed_on(self, t: int) -> np.ndarray:
        """Ticker ids listed on session ``t``."""
        panel = self.panel
        return np.flatnonzero((panel.list_idx <= t) & (t < panel.delist_idx))

    def split_factors(self, tids: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Cumulative split factor of each pair: unadjusted price = economic price * factor."""
        return self.panel.split_factor.pairs(tids, ts)

    def minute_bar_batch(self, tids: np.ndarray, ts: np.ndarray) -> MinuteBars:
        return self._built().engine.bars(np.asarray(tids), np.asarray(ts))

    def daily_vwap_and_trades(
        self, tids: np.ndarray, ts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Daily vw (whole ticks) and n of listed pairs, from their minute bars (cached)."""
        tids = np.asarray(tids, dtype=np.int64)
        ts = np.asarray(ts, dtype=np.int64)
        if self._daily_vwap is None or self._daily_trades is None:
            with self._lock:
                if self._daily_vwap is None or self._daily_trades is None:
                    shape = self.panel.shape
                    self._daily_trades = np.full(shape, _UNKNOWN, dtype=np.int32)
                    self._daily_vwap = np.full(shape, _UNKNOWN, dtype=np.int32)
        vwap, trades = self._daily_vwap, self._daily_trades
        missing = vwap[tids, ts] == _UNKNOWN
        if missing.any():
            # Filling the cache is idempotent, so concurrent fills of one pair agree.
            bars = self.minute_bar_batch(tids[missing], ts[missing])
            value, count = bars.daily_vwap_and_trades()
            trades[tids[missing], ts[missing]] = count
            vwap[tids[missing], ts[missing]] = np.rint(value).astype(np.int64)
        return vwap[tids, ts], trades[tids, ts]

    # -- research accessors --------------------------------------------------------------------
    def trading_days(self) -> list[date]:
        return list(self.sessions.days)

    def tickers(self) -> pl.DataFrame:
        """Every name with its static identity and listing window."""
        universe, panel, days = self.universe, self.panel, self.sessions.days
        return pl.DataFrame(
            {
                "ticker": universe.symbols,
                "name": universe.names,
                "type": [universe.type_code(i) for i in range(universe.count)],
                "market": [universe.market(i) for i in range(universe.count)],
                "primary_exchange": universe.exchange,
                "sic_code": universe.sic_code,
                "list_date": universe.list_date,
                "delist_date": [days[int(t)] if t < len(days) else None for t in panel.delist_idx],
            },
            schema_overrides={"sic_code": pl.String(), "delist_date": pl.Date()},
        )

    def daily_panel(
        self,
        start: date | None = None,
        end: date | None = None,
        *,
        adjusted: bool = False,
    ) -> pl.DataFrame:
        """One row per listed ticker-session: o/h/l/c/v (no vw, n: see ``daily_bars``).

        ``gap`` is the open over the previous close in the same share basis, minus one (null on
        a name's first session); ``gap_regime`` marks sessions under the i.i.d. gap-day law.
        Prices and volumes are unadjusted unless ``adjusted`` (split-adjusted to the end of the
        history).
        """
        sessions, universe, panel = self.sessions, self.universe, self.panel
        lo = 0 if start is None else sessions.first_on_or_after(start)
        hi = sessions.count if end is None else sessions.last_on_or_before(end) + 1
        t_grid = np.arange(lo, hi)
        listed = (panel.list_idx[:, None] <= t_grid) & (t_grid < panel.delist_idx[:, None])
        tids, cols = np.nonzero(listed)
        ts = t_grid[cols]
        factor = panel.split_factor.pairs(tids, ts)
        previous_close = panel.previous_close(tids, ts)
        shares = panel.shares_outstanding_pairs(tids, ts)
        to_today = self._to_today(tids, factor) if adjusted else np.ones(len(tids))
        o = panel.open[tids, ts]
        volume = (
            panel.volume_pre[tids, ts].astype(np.int64)
            + panel.volume_regular[tids, ts]
            + panel.volume_post[tids, ts]
        )
        symbols = pl.Series("ticker", universe.symbols, dtype=pl.String)
        frame = pl.DataFrame(
            {
                "ticker": symbols.gather(tids),
                "date": sessions.dates[ts],
                "open": _price(o * to_today),
                "high": _price(panel.high[tids, ts] * to_today),
                "low": _price(panel.low[tids, ts] * to_today),
                "close": _price(panel.close[tids, ts] * to_today),
                "volume": volume / to_today,
                "premarket_volume": panel.volume_pre[tids, ts] / to_today,
                "split_factor": factor,
                "shares_outstanding": shares,
                # No previous close in the tape on a name's first session.
                "gap": np.where(ts == panel.list_idx[tids], np.nan, o / previous_close - 1.0),
                "gap_regime": panel.regime[tids, ts],
            }
        )
        return frame.with_columns(pl.col("gap").fill_nan(None))

    def daily_bars(
        self, day: date, *, adjusted: bool = False, include_otc: bool = True
    ) -> pl.DataFrame:
        """The session's bars exactly as grouped daily serves them (with vw and n)."""
        t = self.sessions.index_of(day)
        if t is None:
            return pl.DataFrame(schema=_DAILY_BAR_SCHEMA)
        tids = self.listed_on(t)
        if not include_otc:
            tids = tids[self.universe.kind[tids] != Kind.OTC]
        return self._bars_frame(tids, np.full(len(tids), t), adjusted)

    def day_bars(
        self, ticker: str, start: date, end: date, *, adjusted: bool = False
    ) -> pl.DataFrame:
        """One ticker's daily bars (with vw and n) for the sessions in [start, end]."""
        tid = self._require(ticker)
        lo, hi = self.sessions.first_on_or_after(start), self.sessions.last_on_or_before(end)
        ts = np.arange(lo, hi + 1)
        ts = ts[(ts >= self.universe.list_idx[tid]) & (ts < self.panel.delist_idx[tid])]
        return self._bars_frame(np.full(len(ts), tid), ts, adjusted)

    def minute_bars(self, ticker: str, day: date, *, adjusted: bool = False) -> pl.DataFrame:
        """04:00-20:00 ET one-minute bars of one ticker-session (empty when not traded)."""
        tid = self._require(ticker)
        t = self.sessions.index_of(day)
        if t is None or not self.universe.list_idx[tid] <= t < self.panel.delist_idx[tid]:
            return pl.DataFrame(schema=_MINUTE_BAR_SCHEMA)
        bars = self.minute_bar_batch(np.array([tid]), np.array([t]))
        factor = self.split_factors(np.array([tid]), np.array([t]))[0]
        scale = float(self._to_today(np.array([tid]), np.array([factor]))[0]) if adjusted else 1.0
        start = et_ms(day, time(9, 30))
        close = start + int(self.sessions.regular_minutes[t]) * 60_000
        session = np.where(bars.t < start, "pre", np.where(bars.t < close, "regular", "post"))
        return pl.DataFrame(
            {
                "t": bars.t,
                "open": _price(bars.open * scale),
                "high": _price(bars.high * scale),
                "low": _price(bars.low * scale),
                "close": _price(bars.close * scale),
                "volume": bars.volume / scale,
                "vwap": _price(bars.vwap * scale),
                "trades": bars.trades,
                "session": session,
            },
            schema=_MINUTE_BAR_SCHEMA,
        )

    def universe_truth(self, day: date) -> pl.DataFrame:
        """Ground truth for every ticker listed on session ``day`` (empty on non-sessions).

        Includes what the API never says directly: the gap regime, the latent gap quality and
        the morning pattern, the catalyst behind the move, and whether the name passes the
        small-cap filters with information known at the open (previous close, shares as of
        the day).
        """
        t = self.sessions.index_of(day)
        if t is None:
            return pl.DataFrame()
        universe, panel = self.universe, self.panel
        tids = self.listed_on(t)
        ts = np.full(len(tids), t)
        previous = panel.previous_close(tids, ts) / TICKS_PER_DOLLAR
        shares = panel.shares_outstanding_pairs(tids, ts)
        gaps = panel.gaps
        on_day = gaps.t == t
        gap_of = dict(zip(gaps.tid[on_day].tolist(), np.flatnonzero(on_day).tolist(), strict=True))
        rows = np.array([gap_of.get(int(i), -1) for i in tids])
        has = rows >= 0
        rules = UniverseRules()
        exchange = np.array(universe.exchange, dtype=object)[tids]
        type_code = np.array([universe.type_code(int(i)) for i in tids], dtype=object)
        market_cap = previous * shares
        gap = panel.open[tids, t] / TICKS_PER_DOLLAR / previous - 1.0
        small_cap = (
            (type_code == COMMON_STOCK)
            & np.isin(exchange, MAJOR_EXCHANGES)
            & (previous >= rules.price_min)
            & (previous <= rules.price_max)
            & (market_cap < rules.market_cap_max)
            & (shares < rules.shares_max)
        )
        return pl.DataFrame(
            {
                "ticker": [universe.symbols[i] for i in tids],
                "type": type_code.tolist(),
                "market": [universe.market(int(i)) for i in tids],
                "primary_exchange": exchange.tolist(),
                "previous_close": previous,
                "open": panel.open[tids, t] / TICKS_PER_DOLLAR,
                "close": panel.close[tids, t] / TICKS_PER_DOLLAR,
                "gap": gap,
                "gap_day": np.abs(gap) >= rules.gap_min,
                "gap_regime": panel.regime[tids, t],
                "quality": np.where(has, gaps.quality[np.maximum(rows, 0)], np.nan),
                "pattern": [Pattern(int(gaps.pattern[r])).name if r >= 0 else None for r in rows],
                "catalyst": [
                    Catalyst(int(gaps.catalyst[r])).name if r >= 0 else None for r in rows
                ],
                "halts": np.where(has, gaps.halt_count[np.maximum(rows, 0)], 0),
                "shares_outstanding": shares,
                "float_shares": np.rint(shares * universe.float_fraction[tids]),
                "market_cap": market_cap,
                "small_cap_universe": small_cap,
            }
        ).with_columns(pl.col("quality").fill_nan(None))

    def gap_days(self, start: date | None = None, end: date | None = None) -> pl.DataFrame:
        """Truth for every gap-regime session: gap, latent quality, pattern, catalyst, halts."""
        sessions, universe, gaps = self.sessions, self.universe, self.panel.gaps
        lo = 0 if start is None else sessions.first_on_or_after(start)
        hi = sessions.count if end is None else sessions.last_on_or_before(end) + 1
        keep = (gaps.t >= lo) & (gaps.t < hi)
        rows = np.flatnonzero(keep)
        return pl.DataFrame(
            {
                "ticker": [universe.symbols[int(gaps.tid[r])] for r in rows],
                "date": [sessions.days[int(gaps.t[r])] for r in rows],
                "gap": gaps.gap[rows],
                "quality": gaps.quality[rows],
                "pattern": [Pattern(int(p)).name for p in gaps.pattern[rows]],
                "catalyst": [Catalyst(int(c)).name for c in gaps.catalyst[rows]],
                "news_minute": gaps.news_minute[rows],
                "halts": gaps.halt_count[rows],
            },
            schema_overrides={"date": pl.Date()},
        )

    # -- helpers -------------------------------------------------------------------------------
    def _require(self, ticker: str) -> int:
        tid = self.ticker_id(ticker)
        if tid is None:
            raise KeyError(f"no such ticker in the simulated market: {ticker!r}")
        return tid

    def _to_today(self, tids: np.ndarray, factor: np.ndarray) -> np.ndarray:
        """Multiplier from a pair's unadjusted prices to today's (end of history) basis."""
        last = np.full(len(tids), self.sessions.count - 1)
        return self.split_factors(tids, last) / factor

    def _bars_frame(self, tids: np.ndarray, ts: np.ndarray, adjusted: bool) -> pl.DataFrame:
        panel, sessions = self.panel, self.sessions
        vwap, trades = self.daily_vwap_and_trades(tids, ts)
        factor = self.split_factors(tids, ts)
        scale = self._to_today(tids, factor) if adjusted else np.ones(len(tids))
        volume = (
            panel.volume_pre[tids, ts].astype(np.int64)
            + panel.volume_regular[tids, ts]
            + panel.volume_post[tids, ts]
        )
        return pl.DataFrame(
            {
                "ticker": [self.universe.symbols[int(i)] for i in tids],
                "date": [sessions.days[int(t)] for t in ts],
                "open": _price(panel.open[tids, ts] * scale),
                "high": _price(panel.high[tids, ts] * scale),
                "low": _price(panel.low[tids, ts] * scale),
                "close": _price(panel.close[tids, ts] * scale),
                "volume": volume / scale,
                "vwap": _price(vwap * scale),
                "trades": trades,
                "otc": self.universe.kind[tids] == Kind.OTC,
            },
            schema=_DAILY_BAR_SCHEMA,
        )


def _price(ticks: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(ticks, dtype=np.float64) / TICKS_PER_DOLLAR, 4)


_DAILY_BAR_SCHEMA: Final = {
    "ticker": pl.String(),
    "date": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "vwap": pl.Float64(),
    "trades": pl.Int64(),
    "otc": pl.Boolean(),
}
_MINUTE_BAR_SCHEMA: Final = {
    "t": pl.Int64(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "vwap": pl.Float64(),
    "trades": pl.Int64(),
    "session": pl.String(),
}

__all__ = ["SimulatedMarket"]
