"""The daily model: prices, volumes, catalysts, offerings and splits for every ticker-session.

Per ticker, in log "economic" price (on the original share basis, so splits do not move it)::

    log sigma_t = log base_vol + u_t + b_t + v_t / 2
                  u: AR(1), phi 0.97, shock 0.12;  b: 0.85 * b + 1.5 * |jump| (post-news unrest)
                  v: the market's own AR(1) volatility regime
    overnight_t = 0.3 * min(sigma_t, 0.09) * N + 0.3 * beta * f_t + jump_t
    intraday_t  = gap regime: the session law of ``gapsession.py`` (close of the last bar)
                  otherwise: 0.95 * min(sigma_t, 0.2) * t3 / sqrt(3) + 0.7 * beta * f_t
                             - fade (70% of a run-up given back over 20 sessions)
                             + pull towards the anchor (0.4% of the gap a session)

``f_t`` is a market factor; ``t3`` is Student-t with 3 degrees of freedom, so daily returns are
fat-tailed even away from gaps. Jumps come from news catalysts (FDA, merger, contract,
partnership, earnings), offerings (dilution and a gap down), bankruptcies; gaps also come,
rarely, from diffusion. The anchor is fundamental value per share: it drifts at the ticker's
rate, slides into a bankruptcy and absorbs 70% of each offering's dilution. A session whose
overnight move reaches ``GAP_REGIME_THRESHOLD`` is a gap-regime session.

The gap quality ``q`` of a session (used only by the gap-session law) is::

    q = 0.5 * z_rvol + 0.6 * catalyst_score - 0.35 * (log(float) - log(20e6)) - 0.6 * diluted
        + 0.4 * eta

where ``z_rvol`` also multiplies the session's premarket volume by ``exp(z_rvol)`` (so
premarket RVOL reveals it), ``catalyst_score`` is the tone of the morning's news (FDA 1.3,
merger 1.0, contract 0.8, partnership 0.7, earnings beat 0.5, no news 0, earnings miss -0.6,
offering -1.3, bankruptcy -1.5), the float is economic float shares, ``diluted`` flags an
offering in the previous 60 sessions, and ``eta`` is unobservable noise.

Unadjusted prices are the economic price times the cumulative split factor. Reverse splits
come after 25 sessions under $1 (executed 10-35 sessions later, to a $3-8 price); forward splits
after 60 sessions above $150. Prices are stored as integer ten-thousandths of a dollar.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import numpy as np

from smallcaps_assets.sources.simulator.calendar import Sessions
from smallcaps_assets.sources.simulator.config import GAP_REGIME_THRESHOLD, SimConfig
from smallcaps_assets.sources.simulator.gapsession import MAX_HALTS, Pattern, gap_sessions
from smallcaps_assets.sources.simulator.rng import Purpose, Streams, stream
from smallcaps_assets.sources.simulator.universe import DelistReason, Kind, Universe

TICKS_PER_DOLLAR: Final = 10_000
MAX_TICKS: Final = 2_000_000_000
MAX_VOLUME: Final = 2_000_000_000
PREMARKET_NEWS_LAST_MINUTE: Final = 318  # 09:18 ET: premarket catalysts land before this

_CHUNK: Final = 256  # tickers simulated together (bounds memory at any universe size)
_GAP_BATCH: Final = 256  # small batches stay in cache
_WORKERS: Final = 4
_SV_PHI: Final = 0.97
_SV_SHOCK: Final = 0.16
_REVERSE_RATIOS: Final = np.array([5, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100])
_TYPICAL_FLOAT: Final = 20e6
# Centres q so that the median gap-up carries no planted drift: a signal changes *which*
# gappers run, not the median gap day (which fades, as real ones do).
QUALITY_CENTRE: Final = -0.3
# Weight of the unobservable part of gap quality: the lower, the more of q the morning shows.
QUALITY_NOISE: Final = 0.4
_DILUTION_MEMORY: Final = 60  # sessions an offering weighs on later gaps
_FADE_SESSIONS: Final = 20
_FADE_SHARE: Final = 0.7
_REVERSION: Final = 0.004  # per session: a half-life of about 170 sessions
# After a jump, log volatility rises by _BOOST_SIZE * |jump| and decays by _BOOST_DECAY a day:
# a catalyst leaves the stock restless for a week or two (volatility clustering).
_BOOST_SIZE: Final = 1.5
_BOOST_DECAY: Final = 0.85

# Rows of each ticker's daily draws (normals, then uniforms), one value per session.
(
    _N_VOLATILITY, _N_OVERNIGHT, _N_VOLUME, _N_PREMARKET, _N_AFTER_HOURS, _N_INTEREST,
    _N_QUALITY, _N_HIGH, _N_LOW,
) = range(9)  # fmt: skip
(
    _U_CATALYST,  # a news catalyst today
    _U_KIND,
    _U_SIZE,
    _U_OFFERING,  # an offering today; column 0 also times an acquisition announcement
    _U_DILUTION,  # its size; column 0 also times a bankruptcy filing
    _U_TIMING,  # premarket or evening-before news; the IPO pop
    _U_DISCOUNT,  # the offering's gap down
    _U_GENERIC,  # a headline on a gap without a catalyst
    _U_MINUTE,  # the premarket minute of the news
) = range(9)


class Catalyst(IntEnum):
    NONE = 0
    FDA = 1
    MERGER = 2
    CONTRACT = 3
    PARTNERSHIP = 4
    EARNINGS_BEAT = 5
    EARNINGS_MISS = 6
    OFFERING = 7
    BANKRUPTCY = 8
    GENERIC = 9  # an unremarkable headline on a gap without a real catalyst


CATALYST_SCORE: Final = {
    Catalyst.NONE: 0.0,
    Catalyst.FDA: 1.3,
    Catalyst.MERGER: 1.0,
    Catalyst.CONTRACT: 0.8,
    Catalyst.PARTNERSHIP: 0.7,
    Catalyst.EARNINGS_BEAT: 0.5,
    Catalyst.EARNINGS_MISS: -0.6,
    Catalyst.OFFERING: -1.3,
    Catalyst.BANKRUPTCY: -1.5,
    Catalyst.GENERIC: 0.0,
}
_SCORE_BY_CODE: Final = np.array([CATALYST_SCORE[Catalyst(c)] for c in range(len(Catalyst))])

# Catalyst mix (FDA, merger, contract, partnership, beat, miss) by sector group.
_MIX_BIO: Final = np.cumsum([0.35, 0.07, 0.10, 0.20, 0.14, 0.14])
_MIX_OTHER: Final = np.cumsum([0.0, 0.10, 0.30, 0.20, 0.20, 0.20])
# Overnight jump of each catalyst: gap = base + exponential(scale) (negative for a miss).
_JUMP_BASE: Final = np.array([0.0, 0.04, 0.06, 0.02, 0.02, 0.01, 0.02])
_JUMP_SCALE: Final = np.array([0.0, 0.10, 0.08, 0.06, 0.06, 0.05, 0.06])


@dataclass(frozen=True, eq=False)
class EventTable:
    """Sparse per ticker-session events, sorted by (session, ticker)."""

    tid: np.ndarray  # int64
    t: np.ndarray  # int64 session index
    code: np.ndarray  # int64 Catalyst
    value: np.ndarray  # float64 event size (gap, dilution, ...)
    minute: np.ndarray  # int64 premarket minute the news broke, -1 = the evening before

    @staticmethod
    def concat(parts: list[EventTable]) -> EventTable:
        if not parts:
            empty = np.empty(0, dtype=np.int64)
            return EventTable(empty, empty, empty, np.empty(0), empty)
        tid = np.concatenate([p.tid for p in parts])
        t = np.concatenate([p.t for p in parts])
        order = np.lexsort((tid, t))
        return EventTable(
            tid=tid[order],
            t=t[order],
            code=np.concatenate([p.code for p in parts])[order],
            value=np.concatenate([p.value for p in parts])[order],
            minute=np.concatenate([p.minute for p in parts])[order],
        )

    def __len__(self) -> int:
        return len(self.tid)


@dataclass(frozen=True, eq=False)
class GapTable:
    """One row per gap-regime session, sorted by (session, ticker)."""

    tid: np.ndarray
    t: np.ndarray
    gap: np.ndarray  # open / previous close - 1 (economic)
    quality: np.ndarray
    pattern: np.ndarray  # int8 Pattern
    halt_count: np.ndarray
    halt_starts: np.ndarray  # (rows, MAX_HALTS) regular-session minute of each halt, -1 padded
    catalyst: np.ndarray  # int64 Catalyst of the morning's news (NONE if none)
    news_minute: np.ndarray  # premarket minute of that news, -1 evening before / none

    def __len__(self) -> int:
        return len(self.tid)


@dataclass(frozen=True, eq=False)
class SplitTable:
    tid: np.ndarray
    t: np.ndarray  # execution session
    split_from: np.ndarray
    split_to: np.ndarray

    def __len__(self) -> int:
        return len(self.tid)


_KEY_SHIFT: Final = 32  # (ticker, session) packed into one sortable int64


@dataclass(frozen=True, eq=False)
class Steps:
    """Piecewise-constant series per ticker: ``value[i, k]`` holds after the k-th change.

    ``keys`` packs every change as ``(ticker << 32) | session``, sorted, so looking up any
    number of (ticker, session) pairs is one ``searchsorted``.
    """

    keys: np.ndarray  # int64, sorted
    before: np.ndarray  # int64 (n_tickers,) changes of the tickers with a smaller id
    value: np.ndarray  # (n_tickers, k + 1) float64; column 0 holds before the first change

    @staticmethod
    def build(initial: np.ndarray, changes: list[tuple[np.ndarray, np.ndarray]]) -> Steps:
        width = max((len(t) for t, _ in changes), default=0)
        value = np.repeat(np.asarray(initial, dtype=np.float64)[:, None], width + 1, axis=1)
        keys = []
        for i, (t, v) in enumerate(changes):
            value[i, 1 : len(v) + 1] = v
            value[i, len(v) + 1 :] = v[-1] if len(v) else initial[i]
            keys.append((np.int64(i) << _KEY_SHIFT) | np.asarray(t, dtype=np.int64))
        counts = np.array([len(t) for t, _ in changes], dtype=np.int64)
        before = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        flat = np.concatenate(keys) if keys else np.empty(0, dtype=np.int64)
        return Steps(np.sort(flat), before, value)

    def pairs(self, tids: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """The value of ``tids[k]`` at session ``ts[k]`` for every k."""
        tids = np.asarray(tids, dtype=np.int64)
        ts = np.broadcast_to(np.asarray(ts, dtype=np.int64), tids.shape)
        query = (tids << _KEY_SHIFT) | ts
        k = np.searchsorted(self.keys, query, side="right") - self.before[tids]
        return self.value[tids, k]

    def of(self, tid: int, t: int | np.ndarray) -> np.ndarray:
        """One ticker's value at session(s) ``t``."""
        ts = np.asarray(t, dtype=np.int64)
        return self.pairs(np.full(ts.shape, tid), ts).reshape(ts.shape)


@dataclass(frozen=True, eq=False)
class DailyPanel:
    """Unadjusted daily facts, (n_tickers, n_sessions) arrays; zeros where not listed."""

    open: np.ndarray  # int32 ticks
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume_pre: np.ndarray  # int32 shares, 04:00-09:30
    volume_regular: np.ndarray
    volume_post: np.ndarray
    regime: np.ndarray  # bool: gap-regime session
    list_idx: np.ndarray  # int64 first listed session
    delist_idx: np.ndarray  # int64 first session no longer listed (count = never)
    start_price: np.ndarray  # float64 reference "previous close" of the first session
    gaps: GapTable
    catalysts: EventTable  # news catalysts incl. offerings and bankruptcies
    offerings: EventTable  # value = dilution (new shares / old shares - 1)
    splits: SplitTable
    split_factor: Steps  # cumulative (split_from / split_to) of the splits executed so far
    economic_shares: Steps  # shares on the original basis; offerings count from their day

    @property
    def shape(self) -> tuple[int, int]:
        tickers, sessions = self.open.shape
        return tickers, sessions

    def shares_outstanding(self, tid: int, t: int | np.ndarray) -> np.ndarray:
        """Unadjusted shares outstanding of ``tid`` at session(s) ``t``."""
        return np.rint(self.economic_shares.of(tid, t) / self.split_factor.of(tid, t))

    def shares_outstanding_pairs(self, tids: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Unadjusted shares outstanding of ``tids[k]`` at session ``ts[k]``."""
        shares = self.economic_shares.pairs(tids, ts) / self.split_factor.pairs(tids, ts)
        return np.rint(shares)

    def previous_close(self, tids: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Ticks of the last close before each pair, in the pair's own share basis.

        On a first listed session it is the reference price (the IPO price, or the last
        close before the history began).
        """
        before = np.maximum(ts - 1, 0)
        factor = self.split_factor.pairs(tids, ts)
        carried = self.close[tids, before] * factor / self.split_factor.pairs(tids, before)
        reference = np.rint(self.start_price[tids] * factor * TICKS_PER_DOLLAR)
        return np.maximum(np.where(ts == self.list_idx[tids], reference, carried), 1.0)


def build_daily_panel(config: SimConfig, sessions: Sessions, universe: Universe) -> DailyPanel:
    n, length = universe.count, sessions.count
    market_return, market_regime = _market(config.seed, length)
    out = {
        name: np.zeros((n, length), dtype=np.int32)
        for name in ("open", "high", "low", "close", "volume_pre", "volume_regular", "volume_post")
    }
    regime = np.zeros((n, length), dtype=bool)
    gap_parts: list[dict[str, np.ndarray]] = []
    catalyst_parts: list[EventTable] = []
    offering_parts: list[EventTable] = []
    split_rows: list[tuple[int, int, int, int]] = []
    split_steps: list[tuple[np.ndarray, np.ndarray]] = []
    share_steps: list[tuple[np.ndarray, np.ndarray]] = []

    def simulate(chunk: slice) -> tuple[slice, _ChunkResult]:
        return chunk, _Chunk(config, sessions, universe, chunk, market_return, market_regime).run()

    # Chunks are independent and mostly numpy (which releases the GIL): simulate them side by
    # side, and assemble in chunk order so the result does not depend on scheduling.
    workers = max(1, min(_WORKERS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(simulate, _chunks(n)))
    for chunk, result in results:
        for name, array in result.arrays.items():
            out[name][chunk] = array
        regime[chunk] = result.regime
        gap_parts.append(result.gaps)
        catalyst_parts.append(result.catalysts)
        offering_parts.append(result.offerings)
        split_rows.extend(result.split_rows)
        split_steps.extend(result.split_steps)
        share_steps.extend(result.share_steps)

    gaps = {k: np.concatenate([p[k] for p in gap_parts]) for k in gap_parts[0]}
    order = np.lexsort((gaps["tid"], gaps["t"]))
    splits = np.array(split_rows, dtype=np.int64).reshape(-1, 4)
    split_order = np.lexsort((splits[:, 0], splits[:, 1]))
    splits = splits[split_order]
    return DailyPanel(
        **out,
        regime=regime,
        list_idx=universe.list_idx.copy(),
        delist_idx=universe.scheduled_delist_idx.copy(),
        start_price=universe.start_price.copy(),
        gaps=GapTable(**{k: v[order] for k, v in gaps.items()}),
        catalysts=EventTable.concat(catalyst_parts),
        offerings=EventTable.concat(offering_parts),
        splits=SplitTable(splits[:, 0], splits[:, 1], splits[:, 2], splits[:, 3]),
        split_factor=Steps.build(np.ones(n), split_steps),
        economic_shares=Steps.build(universe.start_shares, share_steps),
    )


def to_ticks(price_ticks: np.ndarray) -> np.ndarray:
    """Round to whole ticks within [1 tick, MAX_TICKS]; shared with the minute bars."""
    return np.clip(np.rint(price_ticks), 1, MAX_TICKS)


def _chunks(n: int) -> Iterator[slice]:
    for start in range(0, n, _CHUNK):
        yield slice(start, min(start + _CHUNK, n))


def _market(seed: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    rng = stream(seed, Purpose.MARKET)
    shocks = rng.standard_normal((2, length))
    regime = np.empty(length)
    level = 0.35 * shocks[0, 0]
    for t in range(length):
        level = 0.98 * level + 0.07 * shocks[0, t]
        regime[t] = level
    return 0.011 * np.exp(regime) * shocks[1], regime


@dataclass
class _ChunkResult:
    arrays: dict[str, np.ndarray]
    regime: np.ndarray
    gaps: dict[str, np.ndarray]
    catalysts: EventTable
    offerings: EventTable
    split_rows: list[tuple[int, int, int, int]]
    split_steps: list[tuple[np.ndarray, np.ndarray]]
    share_steps: list[tuple[np.ndarray, np.ndarray]]


def _trailing_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum over the previous ``window`` sessions, excluding the current one."""
    total = np.zeros((values.shape[0], values.shape[1] + 1))
    np.cumsum(values, axis=1, out=total[:, 1:])
    before = total[:, :-1]
    start = np.concatenate([np.zeros((values.shape[0], window)), total[:, : -window - 1]], axis=1)
    return before - start[:, : values.shape[1]]


def _rolling_any(flags: np.ndarray, window: int) -> np.ndarray:
    """True where any of the previous ``window`` sessions (excluding this one) is flagged."""
    return _trailing_sum(flags.astype(np.float64), window) > 0.5


class _Chunk:
    """One chunk of tickers through the daily model, stage by stage in model order.

    Arrays are (tickers in chunk, sessions). Each ticker draws from its own stream, so a
    ticker's history does not depend on the chunking.
    """

    def __init__(
        self,
        config: SimConfig,
        sessions: Sessions,
        universe: Universe,
        chunk: slice,
        market_return: np.ndarray,
        market_regime: np.ndarray,
    ) -> None:
        self.config, self.sessions, self.universe, self.chunk = config, sessions, universe, chunk
        self.market_return, self.market_regime = market_return, market_regime
        self.tids = np.arange(chunk.start, chunk.stop)
        count, length = len(self.tids), sessions.count
        self.normals = np.empty((9, count, length))
        self.t3 = np.empty((count, length))
        self.uniforms = np.empty((9, count, length))
        self.split_draws = np.empty((count, 16))
        streams = Streams(config.seed, Purpose.DAILY)
        for k, tid in enumerate(self.tids):
            rng = streams.at(int(tid))
            self.normals[:, k] = rng.standard_normal((9, length))
            self.t3[k] = rng.standard_t(3, length)
            self.uniforms[:, k] = rng.random((9, length))
            self.split_draws[k] = rng.random(16)
        self.kind = universe.kind[chunk]
        self.list_idx = universe.list_idx[chunk]
        self.delist_idx = universe.scheduled_delist_idx[chunk]
        self.t_index = np.arange(length)[None, :]
        self.listed = (self.t_index >= self.list_idx[:, None]) & (
            self.t_index < self.delist_idx[:, None]
        )
        # Sessions with a previous close in the panel (not the first listed one).
        self.traded_before = self.listed & (self.t_index > self.list_idx[:, None])
        self.ipo_day = self.t_index == self.list_idx[:, None]

    def run(self) -> _ChunkResult:
        self._events()
        self._volatility()
        self._overnight()
        self._quality_and_news()
        self._gap_sessions()
        self._prices()
        self._splits()
        self._bars()
        self._volumes()
        return self._result()

    def _events(self) -> None:
        """News catalysts, acquisitions, bankruptcies and offerings with their jumps."""
        u, universe, chunk = self.uniforms, self.universe, self.chunk
        t_index, list_idx, delist_idx = self.t_index, self.list_idx, self.delist_idx
        reason = universe.delist_reason[chunk]
        bio = np.array([universe.sector[i] in ("bio", "med") for i in self.tids])
        mixes = np.where(bio[:, None, None], _MIX_BIO[None, :, None], _MIX_OTHER[None, :, None])
        occurs = (u[_U_CATALYST] < universe.catalyst_rate[chunk, None]) & self.traded_before
        catalyst = np.where(occurs, 1 + (u[_U_KIND][:, None, :] > mixes).sum(axis=1), Catalyst.NONE)
        catalyst = np.minimum(catalyst, Catalyst.EARNINGS_MISS).astype(np.int64)
        size = _JUMP_BASE[catalyst] - np.log(np.maximum(u[_U_SIZE], 1e-12)) * _JUMP_SCALE[catalyst]
        jump = np.where(
            catalyst == Catalyst.EARNINGS_MISS,
            np.log(1.0 - np.minimum(size, 0.6)),
            np.log1p(np.minimum(size, 4.0)),
        )
        jump = np.where(catalyst == Catalyst.NONE, 0.0, jump)

        # Acquisitions: announced 40-90 sessions before the delisting, then the price pins.
        announce = np.where(
            reason == DelistReason.ACQUISITION,
            delist_idx - 40 - (u[_U_OFFERING, :, 0] * 50).astype(int),
            -1,
        )
        announce = np.where(announce > list_idx, announce, -1)
        self.is_announce = t_index == announce[:, None]
        catalyst = np.where(self.is_announce, Catalyst.MERGER, catalyst)
        jump = np.where(self.is_announce, np.log1p(0.25 + 0.5 * u[_U_SIZE]), jump)
        self.pinned = (t_index > announce[:, None]) & (announce[:, None] >= 0)

        # Bankruptcies: a slide over the last 150 sessions, then the filing gaps it down.
        filing = np.where(
            reason == DelistReason.BANKRUPTCY,
            delist_idx - 3 - (u[_U_DILUTION, :, 0] * 8).astype(int),
            -1,
        )
        filing = np.where(filing > list_idx, filing, -1)
        is_filing = t_index == filing[:, None]
        catalyst = np.where(is_filing, Catalyst.BANKRUPTCY, catalyst)
        jump = np.where(is_filing, np.log(1.0 - (0.25 + 0.4 * u[_U_SIZE])), jump)
        self.sliding = (
            (reason[:, None] == DelistReason.BANKRUPTCY)
            & (t_index >= delist_idx[:, None] - 150)
            & (t_index < delist_idx[:, None])
        )

        # Offerings: more likely right after a run-up, never on a catalyst day.
        ran_up = _rolling_any((catalyst != Catalyst.NONE) & (jump > np.log(1.15)), 5)
        rate = universe.offering_rate[chunk, None] * np.where(ran_up, 4.0, 1.0)
        self.offering = (
            (u[_U_OFFERING] < rate)
            & self.traded_before
            & (catalyst == Catalyst.NONE)
            & ~self.pinned
            & (self.kind[:, None] == Kind.CS)
        )
        self.dilution = np.where(self.offering, 0.10 + 0.5 * u[_U_DILUTION], 0.0)
        catalyst = np.where(self.offering, Catalyst.OFFERING, catalyst)
        self.jump = np.where(self.offering, np.log(1.0 - (0.05 + 0.25 * u[_U_DISCOUNT])), jump)
        self.catalyst = np.where(self.listed, catalyst, Catalyst.NONE)

    def _volatility(self) -> None:
        """Log sigma: AR(1) level, market regime, and a decaying boost after every jump."""
        z, length = self.normals[_N_VOLATILITY], self.sessions.count
        level = z[:, 0] * _SV_SHOCK / np.sqrt(1 - _SV_PHI**2)
        boost = np.zeros(len(self.tids))
        log_sigma = np.empty_like(z)
        shock = np.abs(self.jump)
        for t in range(length):
            level = _SV_PHI * level + _SV_SHOCK * z[:, t]
            log_sigma[:, t] = level + boost
            boost = _BOOST_DECAY * boost + _BOOST_SIZE * shock[:, t]
        base = self.universe.base_vol[self.chunk, None]
        self.sigma = np.clip(base * np.exp(log_sigma + 0.5 * self.market_regime), 0.004, 0.25)

    def _overnight(self) -> None:
        beta = self.universe.beta[self.chunk, None]
        diffusion = 0.3 * np.minimum(self.sigma, 0.09) * self.normals[_N_OVERNIGHT]
        overnight = diffusion + 0.3 * beta * self.market_return + self.jump
        overnight = np.where(self.pinned & ~self.is_announce, 0.1 * overnight, overnight)
        first_trade = np.where(
            self.universe.is_ipo[self.chunk, None], 0.25 * self.uniforms[_U_TIMING] - 0.05, 0.0
        )
        overnight = np.where(self.ipo_day, first_trade, overnight)
        self.overnight = np.where(self.listed, overnight, 0.0)
        self.gap = np.expm1(self.overnight)
        # An IPO that opens far from its offer price gaps too: it runs under the same law.
        opens_day = self.traded_before | (self.ipo_day & self.universe.is_ipo[self.chunk, None])
        self.regime = self.listed & opens_day & (np.abs(self.gap) >= GAP_REGIME_THRESHOLD)

    def _quality_and_news(self) -> None:
        """Gap quality from what the morning reveals plus noise; when the news broke."""
        u, universe, chunk = self.uniforms, self.universe, self.chunk
        self.shares = universe.start_shares[chunk, None] * np.cumprod(1.0 + self.dilution, axis=1)
        self.float_shares = self.shares * universe.float_fraction[chunk, None]
        diluted_recently = _rolling_any(self.offering, _DILUTION_MEMORY)
        self.z_rvol = self.normals[_N_INTEREST]
        self.quality = (
            QUALITY_CENTRE
            + 0.5 * self.z_rvol
            + 0.6 * _SCORE_BY_CODE[self.catalyst]
            - 0.35 * (np.log(self.float_shares) - np.log(_TYPICAL_FLOAT))
            - 0.6 * diluted_recently
            + QUALITY_NOISE * self.normals[_N_QUALITY]
        )
        # Gap days without a real catalyst still get a headline about half the time.
        generic = self.regime & (self.catalyst == Catalyst.NONE) & (u[_U_GENERIC] < 0.5)
        self.news_catalyst = np.where(generic, Catalyst.GENERIC, self.catalyst)
        premarket_minute = (u[_U_MINUTE] * PREMARKET_NEWS_LAST_MINUTE).astype(np.int64)
        self.news_minute = np.where((u[_U_TIMING] < 0.55) | generic, premarket_minute, -1)

    def _gap_sessions(self) -> None:
        rows, cols = np.nonzero(self.regime)
        self.rows, self.cols = rows, cols
        n = len(rows)
        self.session_close = np.zeros(n)
        self.session_high = np.zeros(n)
        self.session_low = np.zeros(n)
        self.pattern = np.zeros(n, dtype=np.int8)
        self.halts = np.zeros(n, dtype=np.int64)
        self.halt_starts = np.full((n, MAX_HALTS), -1, dtype=np.int64)
        for start in range(0, n, _GAP_BATCH):
            part = slice(start, start + _GAP_BATCH)
            r, t = rows[part], cols[part]
            summary = gap_sessions(
                self.config.seed,
                self.tids[r].tolist(),
                self.sessions.ordinals[t].tolist(),
                self.quality[r, t],
                self.sessions.regular_minutes[t],
                self.config.signal,
            ).summary()
            self.session_close[part] = summary.close_rel
            self.session_high[part] = summary.high_rel
            self.session_low[part] = summary.low_rel
            self.pattern[part] = summary.pattern
            self.halts[part] = summary.halt_count
            self.halt_starts[part] = summary.halt_starts

    def _prices(self) -> None:
        """The economic (original share basis) log price path.

        Runs fade: over the 20 sessions after a positive jump (or an up day in the gap regime)
        the stock gives back 70% of it. Outside gap sessions the price also reverts slowly to
        an anchor, the fundamental value per share: it drifts at the ticker's own rate, slides
        into a bankruptcy and absorbs most of each offering's dilution.
        """
        rows, cols, chunk = self.rows, self.cols, self.chunk
        run = np.where(self.jump > 0, self.jump, 0.0)
        run[rows, cols] = np.maximum(self.overnight[rows, cols] + self.session_close, 0.0)
        transient = _trailing_sum(-_FADE_SHARE * run / _FADE_SESSIONS, _FADE_SESSIONS)
        self.intraday_sigma = np.minimum(self.sigma, 0.2) * np.where(self.pinned, 0.15, 1.0)
        market = 0.7 * self.universe.beta[chunk, None] * self.market_return
        intraday = 0.95 * self.intraday_sigma * self.t3 / np.sqrt(3.0) + market + transient
        intraday[rows, cols] = self.session_close
        self.intraday = np.where(self.listed, intraday, 0.0)
        anchor_step = (
            np.where(self.listed, self.universe.drift[chunk, None], 0.0)
            + np.where(self.sliding, -0.004, 0.0)
            - 0.7 * np.log1p(self.dilution)
        )
        self.log_close = _revert_to_anchor(
            start=np.log(self.universe.start_price[chunk]),
            anchor_step=anchor_step,
            overnight=self.overnight,
            intraday=self.intraday,
            reverting=self.listed & ~self.regime,
        )
        self.log_open = self.log_close - self.intraday

    def _splits(self) -> None:
        self.split_rows: list[tuple[int, int, int, int]] = []
        self.split_steps: list[tuple[np.ndarray, np.ndarray]] = []
        self.factor = np.ones_like(self.log_close)
        for k, tid in enumerate(self.tids):
            # Quoted over the counter there is no $1 listing rule to restore.
            events = _split_schedule(
                np.exp(self.log_close[k]),
                int(self.list_idx[k]),
                int(self.delist_idx[k]),
                self.split_draws[k],
                reverse=self.kind[k] != Kind.OTC,
            )
            cumulative = np.cumprod([e[1] / e[2] for e in events]) if events else np.empty(0)
            steps = np.array([e[0] for e in events], dtype=np.int64)
            self.split_steps.append((steps, np.asarray(cumulative, dtype=np.float64)))
            for (t_exec, split_from, split_to), cum in zip(events, cumulative, strict=True):
                self.factor[k, t_exec:] = cum
                self.split_rows.append((int(tid), t_exec, split_from, split_to))

    def _bars(self) -> None:
        """Unadjusted daily open/high/low/close in ticks."""
        scale = self.factor * TICKS_PER_DOLLAR
        log_open, log_close = self.log_open, self.log_close
        open_ticks = to_ticks(np.exp(log_open) * scale)
        close_ticks = to_ticks(np.exp(log_close) * scale)
        spread = 0.45 * self.intraday_sigma
        upper = np.maximum(log_open, log_close) + spread * np.abs(self.normals[_N_HIGH])
        lower = np.minimum(log_open, log_close) - spread * np.abs(self.normals[_N_LOW])
        high = np.maximum(to_ticks(np.exp(upper) * scale), np.maximum(open_ticks, close_ticks))
        low = np.minimum(to_ticks(np.exp(lower) * scale), np.minimum(open_ticks, close_ticks))
        # Gap sessions: exactly what their minute bars aggregate to (see minutes.py).
        rows, cols = self.rows, self.cols
        o = open_ticks[rows, cols]
        close_ticks[rows, cols] = to_ticks(o * np.exp(self.session_close))
        high[rows, cols] = to_ticks(o * np.exp(self.session_high))
        low[rows, cols] = to_ticks(o * np.exp(self.session_low))
        self.arrays = {
            name: np.where(self.listed, value, 0).astype(np.int32)
            for name, value in (
                ("open", open_ticks),
                ("high", high),
                ("low", low),
                ("close", close_ticks),
            )
        }

    def _volumes(self) -> None:
        """Unadjusted share volumes per part of the day.

        Premarket volume on gap days is a large fraction of the day's and scales with
        ``exp(z_rvol)``, the observable face of the gap quality.
        """
        universe, chunk, z = self.universe, self.chunk, self.normals
        regime, gap = self.regime, self.gap
        turnover = universe.turnover[chunk, None]
        float_unadjusted = self.float_shares / self.factor
        activity = (
            np.exp(0.4 * z[_N_VOLUME])
            * (self.sigma / universe.base_vol[chunk, None]) ** 0.7
            # A gap day's volume must not know how its session ends: every minute's share of
            # it is visible before the path it would otherwise foretell.
            * (
                1.0
                + 4.0 * np.abs(np.where(regime, 0.0, self.intraday))
                + 3.0 * np.abs(self.overnight)
            )
            * np.where(regime, 4.0 + 25.0 * np.minimum(np.abs(gap), 2.0), 1.0)
            * np.where((self.catalyst != Catalyst.NONE) & ~regime, 2.0, 1.0)
            * np.where(self.pinned, 0.4, 1.0)
        )
        regular = turnover * float_unadjusted * activity
        interest = np.minimum(np.abs(gap), 1.0) + self.z_rvol + 0.2 * z[_N_PREMARKET] - 0.52
        premarket = regular * np.where(
            regime, 0.07 * np.exp(interest), 0.025 * np.exp(0.5 * z[_N_PREMARKET])
        )
        premarket = np.where(self.ipo_day, 0.0, premarket)
        after_hours = regular * 0.05 * np.exp(0.5 * z[_N_AFTER_HOURS]) * np.where(regime, 1.5, 1.0)
        # Gap days trade every regular minute and the first after-hours hour: room for a share
        # per bar whatever the draw.
        minimum_regular = np.where(regime, 2 * 390, 2)
        minimum_post = np.where(regime, 2 * 240, 0)
        for name, volume, minimum in (
            ("volume_pre", premarket, 0),
            ("volume_regular", regular, minimum_regular),
            ("volume_post", after_hours, minimum_post),
        ):
            clipped = np.clip(np.rint(volume), minimum, MAX_VOLUME)
            self.arrays[name] = np.where(self.listed, clipped, 0).astype(np.int32)

    def _result(self) -> _ChunkResult:
        tids, rows, cols = self.tids, self.rows, self.cols
        event_rows, event_cols = np.nonzero(self.news_catalyst != Catalyst.NONE)
        catalysts = EventTable(
            tid=tids[event_rows],
            t=event_cols.astype(np.int64),
            code=self.news_catalyst[event_rows, event_cols],
            value=self.gap[event_rows, event_cols],
            minute=self.news_minute[event_rows, event_cols],
        )
        offer_rows, offer_cols = np.nonzero(self.offering)
        offerings = EventTable(
            tid=tids[offer_rows],
            t=offer_cols.astype(np.int64),
            code=np.full(len(offer_rows), Catalyst.OFFERING, dtype=np.int64),
            value=self.dilution[offer_rows, offer_cols],
            minute=self.news_minute[offer_rows, offer_cols],
        )
        share_steps = []
        for k in range(len(tids)):
            when = np.flatnonzero(self.offering[k])
            share_steps.append((when.astype(np.int64), self.shares[k, when]))
        news_catalyst = self.news_catalyst[rows, cols]
        gaps = {
            "tid": tids[rows],
            "t": cols.astype(np.int64),
            "gap": self.gap[rows, cols],
            "quality": self.quality[rows, cols],
            "pattern": self.pattern,
            "halt_count": self.halts,
            "halt_starts": self.halt_starts,
            "catalyst": news_catalyst,
            "news_minute": np.where(
                news_catalyst == Catalyst.NONE, -1, self.news_minute[rows, cols]
            ),
        }
        return _ChunkResult(
            arrays=self.arrays,
            regime=self.regime,
            gaps=gaps,
            catalysts=catalysts,
            offerings=offerings,
            split_rows=self.split_rows,
            split_steps=self.split_steps,
            share_steps=share_steps,
        )


def _revert_to_anchor(
    *,
    start: np.ndarray,
    anchor_step: np.ndarray,
    overnight: np.ndarray,
    intraday: np.ndarray,
    reverting: np.ndarray,
) -> np.ndarray:
    """Log closes; adds the anchor's move and the pull towards it into ``intraday`` in place."""
    length = overnight.shape[1]
    log_close = np.empty_like(overnight)
    x = start.copy()
    anchor = start.copy()
    for t in range(length):
        anchor += anchor_step[:, t]
        pull = np.where(reverting[:, t], anchor_step[:, t] + _REVERSION * (anchor - x), 0.0)
        intraday[:, t] += pull
        x = x + overnight[:, t] + intraday[:, t]
        log_close[:, t] = x
    return log_close


def _first_run_end(flags: np.ndarray, run: int) -> int:
    """Index where the first run of ``run`` consecutive True values completes; -1 if none."""
    if len(flags) < run:
        return -1
    c = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    hits = np.flatnonzero(c[run:] - c[:-run] == run)
    return int(hits[0]) + run - 1 if len(hits) else -1


def _split_schedule(
    price: np.ndarray, first: int, end: int, draws: np.ndarray, *, reverse: bool
) -> list[tuple[int, int, int]]:
    """(execution session, split_from, split_to) for one ticker's economic close path."""
    events: list[tuple[int, int, int]] = []
    factor = 1.0
    t = first
    for draw in draws:
        window = price[t:end] * factor
        below = _first_run_end(window < 1.0, 25) if reverse else -1
        above = _first_run_end(window > 150.0, 60)
        candidates = [x for x in (below, above) if x >= 0]
        if not candidates:
            break
        trigger = min(candidates)
        execute = t + trigger + 10 + int(draw * 25)
        if execute >= end:
            break
        if trigger == below:
            target = (3.0 + 5.0 * draw) / max(window[trigger], 1e-6)
            ratio = int(_REVERSE_RATIOS[np.argmin(np.abs(np.log(_REVERSE_RATIOS / target)))])
            events.append((execute, ratio, 1))
            factor *= ratio
        else:
            ratio = 2 if draw < 0.7 else 3
            events.append((execute, 1, ratio))
            factor /= ratio
        t = execute
    return events


__all__ = [
    "CATALYST_SCORE",
    "TICKS_PER_DOLLAR",
    "Catalyst",
    "DailyPanel",
    "EventTable",
    "GapTable",
    "Pattern",
    "SplitTable",
    "build_daily_panel",
]
