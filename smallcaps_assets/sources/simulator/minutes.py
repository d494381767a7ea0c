"""One-minute bars (04:00-20:00 ET) that aggregate exactly to the daily panel.

Each ticker-day is built from its own stream (``Purpose.MINUTES``), in three parts:

* premarket (04:00-09:30): a bridge from the previous close to the open; when the morning's news
  broke premarket the price jumps at the news minute and volume clusters after it, when it broke
  the evening before the gap is in the price from 04:00;
* regular session: on a gap-regime day, the bars of ``gapsession.py`` (the i.i.d. law, with
  halts); otherwise a bridge through four anchors - the open, a bar touching the day's high,
  one touching its low, and the close - kept inside [low, high], so the first bar opens at the
  daily open, the last closes at the daily close and the extremes are hit exactly;
* after hours (four hours from the close): a walk from the close; on gap days the i.i.d. law
  continues, with every minute of the first hour trading.

Each part's daily volume is split exactly over its trading minutes (largest remainder, at least
one share per bar), so the regular bars' open/high/low/close and the sum of all volumes
reproduce the daily bar; vwap and trades aggregate to the daily vw and n. Which minutes trade is
a weighted draw: U-shaped in the regular session, rising into the open premarket, fading after
the close; illiquid names leave many minutes without a bar. On gap days with a signal, regular
volume also bursts where the planted drift is strong (never at signal 0: volume must not carry
information about the path to come).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from smallcaps_assets.sources.simulator.calendar import (
    AFTER_HOURS_MINUTES,
    FULL_SESSION_MINUTES,
    MINUTE_MS,
    PREMARKET_MINUTES,
    Sessions,
)
from smallcaps_assets.sources.simulator.daily import TICKS_PER_DOLLAR, DailyPanel, to_ticks
from smallcaps_assets.sources.simulator.gapsession import (
    DRIFT_UNIT,
    GapSessions,
    gap_after_hours,
    gap_sessions,
)
from smallcaps_assets.sources.simulator.rng import Purpose, Streams
from smallcaps_assets.sources.simulator.universe import Universe

_BATCH: Final = 256
_DAY_MINUTES: Final = PREMARKET_MINUTES + FULL_SESSION_MINUTES + AFTER_HOURS_MINUTES
# Column of each part inside the 960-wide per-minute noise arrays (fixed for every day, so the
# stream layout does not depend on an early close).
_PRE_COLUMNS: Final = slice(0, PREMARKET_MINUTES)
_REGULAR_COLUMNS: Final = slice(PREMARKET_MINUTES, PREMARKET_MINUTES + FULL_SESSION_MINUTES)
_POST_COLUMNS: Final = slice(PREMARKET_MINUTES + FULL_SESSION_MINUTES, _DAY_MINUTES)
_NO_NEWS: Final = -2  # news minute code: none that day (-1 = the evening before)
GAP_OPEN_VOLUME: Final = 6.0  # gap days: extra volume intensity at the open, decaying in 30 min


@dataclass(frozen=True, eq=False)
class MinuteBars:
    """Bars of a batch of ticker-days; pair ``k`` owns rows ``offsets[k]:offsets[k + 1]``."""

    offsets: np.ndarray
    t: np.ndarray  # int64 epoch ms, window start
    open: np.ndarray  # int64 ticks
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # int64 shares
    vwap: np.ndarray  # int64 ticks
    trades: np.ndarray  # int64
    regular: np.ndarray  # bool: 09:30 ET to the close

    @property
    def pairs(self) -> int:
        return len(self.offsets) - 1

    def pair(self, k: int) -> slice:
        return slice(int(self.offsets[k]), int(self.offsets[k + 1]))

    def daily_vwap_and_trades(self) -> tuple[np.ndarray, np.ndarray]:
        """Per pair: volume-weighted price in ticks (unrounded) and the number of trades."""
        owner = np.repeat(np.arange(self.pairs), np.diff(self.offsets))
        volume = np.bincount(owner, weights=self.volume, minlength=self.pairs)
        value = np.bincount(owner, weights=self.volume * self.vwap, minlength=self.pairs)
        trades = np.bincount(owner, weights=self.trades, minlength=self.pairs)
        return value / np.maximum(volume, 1), np.rint(trades).astype(np.int64)


@dataclass(frozen=True, eq=False)
class _Draws:
    meta: np.ndarray  # (batch, 8) uniforms
    walks: np.ndarray  # (batch, 3, 391) normals: premarket, regular bridge, after hours
    excursions: np.ndarray  # (batch, 2, 960) uniforms: up, down
    keys: np.ndarray  # (batch, 960) uniforms: which minutes trade
    picks: np.ndarray  # (batch, 390) uniforms: where the high and the low are touched
    volume_noise: np.ndarray  # (batch, 960) uniforms
    vwap_noise: np.ndarray  # (batch, 960) uniforms
    trade_noise: np.ndarray  # (batch, 960) uniforms


def _draw(seed: int, tids: np.ndarray, ordinals: np.ndarray) -> _Draws:
    batch, wide = len(tids), FULL_SESSION_MINUTES + 1
    draws = _Draws(
        meta=np.empty((batch, 8)),
        walks=np.empty((batch, 3, wide)),
        excursions=np.empty((batch, 2, _DAY_MINUTES)),
        keys=np.empty((batch, _DAY_MINUTES)),
        picks=np.empty((batch, FULL_SESSION_MINUTES)),
        volume_noise=np.empty((batch, _DAY_MINUTES)),
        vwap_noise=np.empty((batch, _DAY_MINUTES)),
        trade_noise=np.empty((batch, _DAY_MINUTES)),
    )
    streams = Streams(seed, Purpose.MINUTES)
    for k in range(batch):
        rng = streams.at(int(tids[k]), int(ordinals[k]))
        rng.random(out=draws.meta[k])
        rng.standard_normal(out=draws.walks[k])
        rng.random(out=draws.excursions[k])
        rng.random(out=draws.keys[k])
        rng.random(out=draws.picks[k])
        rng.random(out=draws.volume_noise[k])
        rng.random(out=draws.vwap_noise[k])
        rng.random(out=draws.trade_noise[k])
    return draws


@dataclass(frozen=True, eq=False)
class _Part:
    """One part of the day for a batch: (batch, width) arrays, ``active`` marks bars."""

    start: np.ndarray  # (batch,) minutes after 04:00 of column 0
    columns: slice  # where the part sits in the per-minute noise arrays
    active: np.ndarray
    open: np.ndarray  # float64 holding whole ticks
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    weight: np.ndarray  # relative volume intensity before noise
    total: np.ndarray  # (batch,) the part's volume
    regular: bool


class MinuteEngine:
    """Builds minute bars for any listed (ticker, session) pairs of one market."""

    def __init__(
        self, seed: int, signal: float, sessions: Sessions, universe: Universe, panel: DailyPanel
    ) -> None:
        self._seed = seed
        self._signal = signal
        self._sessions = sessions
        self._universe = universe
        self._panel = panel
        gaps, news = panel.gaps, panel.catalysts
        self._gap_row = {
            (int(i), int(t)): k for k, (i, t) in enumerate(zip(gaps.tid, gaps.t, strict=True))
        }
        self._news_minute = {
            (int(i), int(t)): int(m) for i, t, m in zip(news.tid, news.t, news.minute, strict=True)
        }

    def bars(self, tids: np.ndarray, ts: np.ndarray) -> MinuteBars:
        """Bars of the pairs ``(tids[k], ts[k])``, pair by pair in time order."""
        tids = np.asarray(tids, dtype=np.int64)
        ts = np.asarray(ts, dtype=np.int64)
        pieces = [
            self._batch(tids[s : s + _BATCH], ts[s : s + _BATCH])
            for s in range(0, len(tids), _BATCH)
        ]
        if not pieces:
            empty = np.empty(0, dtype=np.int64)
            return MinuteBars(np.zeros(1, np.int64), *(empty,) * 8, np.empty(0, bool))
        counts = np.concatenate([np.diff(p.offsets) for p in pieces])

        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in pieces])

        return MinuteBars(
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            t=joined("t"),
            open=joined("open"),
            high=joined("high"),
            low=joined("low"),
            close=joined("close"),
            volume=joined("volume"),
            vwap=joined("vwap"),
            trades=joined("trades"),
            regular=joined("regular"),
        )

    def _batch(self, tids: np.ndarray, ts: np.ndarray) -> MinuteBars:
        panel = self._panel
        o = panel.open[tids, ts].astype(np.float64)
        if np.any(o <= 0):
            raise ValueError("minute bars were asked for a ticker-session that is not listed")
        day = _Day(
            tids=tids,
            ts=ts,
            open=o,
            high=panel.high[tids, ts].astype(np.float64),
            low=panel.low[tids, ts].astype(np.float64),
            close=panel.close[tids, ts].astype(np.float64),
            previous_close=panel.previous_close(tids, ts),
            regular_minutes=self._sessions.regular_minutes[ts].astype(np.int64),
            regime=panel.regime[tids, ts],
            news_minute=np.array(
                [
                    self._news_minute.get((int(i), int(t)), _NO_NEWS)
                    for i, t in zip(tids, ts, strict=True)
                ]
            ),
            trade_size=np.clip(
                self._universe.trade_size[tids] * np.sqrt(5.0 * TICKS_PER_DOLLAR / o), 30.0, 5000.0
            ),
        )
        draws = _draw(self._seed, tids, self._sessions.ordinals[ts])
        regular, law = self._regular(day, draws, panel.volume_regular[tids, ts])
        parts = [
            _premarket(day, draws, panel.volume_pre[tids, ts]),
            regular,
            self._after_hours(day, draws, panel.volume_post[tids, ts], law),
        ]
        return _flatten(parts, draws, day, self._sessions.premarket_start_ms(ts))

    def _regular(
        self, day: _Day, draws: _Draws, total: np.ndarray
    ) -> tuple[_Part, GapSessions | None]:
        """Bridge bars, replaced on gap-regime days by the session law (also returned)."""
        part = _bridge_session(day, draws, total)
        gap_idx = np.flatnonzero(day.regime)
        if len(gap_idx) == 0:
            return part, None
        rows = [self._gap_row[(int(day.tids[k]), int(day.ts[k]))] for k in gap_idx]
        law = gap_sessions(
            self._seed,
            day.tids[gap_idx].tolist(),
            self._sessions.ordinals[day.ts[gap_idx]].tolist(),
            self._panel.gaps.quality[rows],
            day.regular_minutes[gap_idx],
            self._signal,
        )
        o = day.open[gap_idx, None]
        for array, rel in (
            (part.open, law.open_rel),
            (part.high, law.high_rel),
            (part.low, law.low_rel),
            (part.close, law.close_rel),
        ):
            array[gap_idx] = to_ticks(o * np.exp(rel))
        part.active[gap_idx] = law.present
        # Gappers trade a quarter of the session's volume in its first half hour.
        j = np.arange(part.weight.shape[1])[None, :]
        closing = np.exp(-np.maximum(day.regular_minutes[gap_idx, None] - 1 - j, 0) / 20.0)
        part.weight[gap_idx] = 1.0 + GAP_OPEN_VOLUME * np.exp(-j / 30.0) + 1.5 * closing
        part.weight[gap_idx] *= 1.0 + 1.5 * np.abs(law.drift) / DRIFT_UNIT
        return part, law

    def _after_hours(
        self, day: _Day, draws: _Draws, total: np.ndarray, law: GapSessions | None
    ) -> _Part:
        batch, m = len(day.open), AFTER_HOURS_MINUTES
        j = np.arange(m)[None, :]
        log_c = np.log(day.close)
        sigma = 0.001 + 0.1 * np.log(day.high / day.low) / np.sqrt(60.0)
        steps = draws.walks[:, 2, : m + 1] * sigma[:, None]
        steps[:, 0] = 0.0
        latent = log_c[:, None] + np.cumsum(steps, axis=1)
        weight = np.exp(-j / 30.0) + 0.15 + np.zeros((batch, 1))
        count = _bar_count(total, day.trade_size, np.full(batch, m))
        active = _top_k(_scores(draws.keys[:, _POST_COLUMNS], weight), count)
        part = _walk_bars(
            latent, active, draws.excursions[:, :, _POST_COLUMNS], 0.3 * sigma, weight, total,
            start=PREMARKET_MINUTES + day.regular_minutes, columns=_POST_COLUMNS, regular=False,
        )  # fmt: skip
        if law is None:
            return part
        # Gap days: the session law runs on through the evening.
        for row, k in enumerate(np.flatnonzero(day.regime)):
            evening = gap_after_hours(
                self._seed,
                int(day.tids[k]),
                int(self._sessions.ordinals[day.ts[k]]),
                float(law.latent_close[row]),
                int(law.halt_spill[row]),
                m,
            )
            for array, rel in (
                (part.open, evening.open_rel),
                (part.high, evening.high_rel),
                (part.low, evening.low_rel),
                (part.close, evening.close_rel),
            ):
                array[k] = to_ticks(day.open[k] * np.exp(rel))
            part.active[k] = evening.present
        return part


@dataclass(frozen=True, eq=False)
class _Day:
    """The daily facts of a batch of ticker-days, in ticks."""

    tids: np.ndarray
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    previous_close: np.ndarray  # in today's share basis
    regular_minutes: np.ndarray
    regime: np.ndarray
    news_minute: np.ndarray  # premarket minute of the day's news; -1 evening before; -2 none
    trade_size: np.ndarray  # shares per trade


def _premarket(day: _Day, draws: _Draws, total: np.ndarray) -> _Part:
    batch, m = len(day.open), PREMARKET_MINUTES
    j = np.arange(m)[None, :]
    log_o, log_prev = np.log(day.open), np.log(day.previous_close)
    gap = log_o - log_prev
    evening_news = day.regime & (day.news_minute == -1)
    news_at = day.news_minute
    jumps = news_at >= 0
    start = np.where(evening_news, log_o - 0.3 * gap * draws.meta[:, 0], log_prev)
    # Anchors: the start, the open at 09:30 (padded), or start, news minute, one after, open.
    positions = np.tile(np.array([0.0, m, m, m]), (batch, 1))
    values = np.stack([start, log_o, log_o, log_o], axis=1)
    positions[jumps, 1] = news_at[jumps]
    positions[jumps, 2] = news_at[jumps] + 1
    values[jumps, 1] = (log_prev + 0.1 * gap * (draws.meta[:, 1] - 0.5))[jumps]
    values[jumps, 2] = (log_o + 0.25 * gap * (draws.meta[:, 2] - 0.5))[jumps]
    # Only what is known by 09:30 may shape the premarket: never the session's own range.
    sigma = 0.001 + 0.2 * np.abs(gap) / np.sqrt(60.0)
    latent = _bridge(draws.walks[:, 0, : m + 1] * sigma[:, None], positions, values)

    weight = 0.3 + np.exp(-(m - 1 - j) / 45.0) + np.zeros((batch, 1))
    since_news = j - news_at[:, None]
    weight += np.where(
        jumps[:, None] & (since_news >= 0), 1.5 + 4.0 * np.exp(-since_news / 40.0), 0.0
    )
    weight += np.where(evening_news[:, None], 1.5, 0.0)
    count = _bar_count(total, day.trade_size, np.full(batch, m))
    active = _top_k(_scores(draws.keys[:, _PRE_COLUMNS], weight), count)
    return _walk_bars(
        latent, active, draws.excursions[:, :, _PRE_COLUMNS], 0.35 * sigma, weight, total,
        start=np.zeros(batch, np.int64), columns=_PRE_COLUMNS, regular=False,
    )  # fmt: skip


def _bridge_session(day: _Day, draws: _Draws, total: np.ndarray) -> _Part:
    """Regular bars through the open, the day's high and low, and the close."""
    batch, n = len(day.open), FULL_SESSION_MINUTES
    j = np.arange(n)[None, :]
    end = day.regular_minutes
    inside = j < end[:, None]
    weight = (
        1.0 + 2.5 * np.exp(-j / 25.0) + 1.5 * np.exp(-np.maximum(end[:, None] - 1 - j, 0) / 20.0)
    )
    weight = np.where(inside, weight, 1.0)
    scores = _scores(draws.keys[:, _REGULAR_COLUMNS], weight)
    rows = np.arange(batch)
    scores[:, 0] = np.inf  # the opening print
    scores[rows, end - 1] = np.inf  # the closing print
    scores[~inside] = -np.inf
    count = np.maximum(_bar_count(total, day.trade_size, end), 2)
    active = _top_k(scores, count)

    high_bar = np.argmax(np.where(active, draws.picks, -1.0), axis=1)
    low_bar = np.argmax(
        np.where(active & (j != high_bar[:, None]), 1.0 - draws.picks, -1.0), axis=1
    )
    log_o, log_h, log_l, log_c = (np.log(x) for x in (day.open, day.high, day.low, day.close))
    below_high = (log_h - np.maximum(log_o, log_c)) * draws.meta[:, 3]
    above_low = (np.minimum(log_o, log_c) - log_l) * draws.meta[:, 4]
    positions = np.stack(
        [np.zeros(batch), high_bar + 1.0, low_bar + 1.0, end.astype(np.float64)], axis=1
    )
    values = np.stack([log_o, log_h - 0.5 * below_high, log_l + 0.5 * above_low, log_c], axis=1)
    # An extreme touched in the last bar needs no anchor of its own: that bar closes the day.
    values[:, 1:3] = np.where(positions[:, 1:3] >= end[:, None], log_c[:, None], values[:, 1:3])
    order = np.argsort(positions, axis=1, kind="stable")
    positions = np.take_along_axis(positions, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    sigma = 0.5 * (log_h - log_l) / np.sqrt(end)
    latent = _bridge(draws.walks[:, 1] * sigma[:, None], positions, values)
    latent = np.clip(latent, log_l[:, None], log_h[:, None])
    part = _walk_bars(
        latent, active, draws.excursions[:, :, _REGULAR_COLUMNS], 0.2 * sigma, weight, total,
        start=np.full(batch, PREMARKET_MINUTES), columns=_REGULAR_COLUMNS, regular=True,
    )  # fmt: skip
    np.minimum(part.high, day.high[:, None], out=part.high)
    np.maximum(part.low, day.low[:, None], out=part.low)
    part.high[rows, high_bar] = day.high
    part.low[rows, low_bar] = day.low
    return part


def _bridge(increments: np.ndarray, positions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A random walk pinned to ``values`` at the (sorted) boundary ``positions``.

    ``increments`` is (batch, m + 1) with column ``x`` the step into boundary ``x``; between
    two anchors the walk is a Brownian bridge, after the last one it walks freely.
    """
    width = increments.shape[1]
    walk = np.cumsum(increments, axis=1)
    walk -= walk[:, :1]
    x = np.arange(width, dtype=np.float64)[None, :]
    segment = (positions[:, None, :] <= x[:, :, None]).sum(axis=2) - 1
    segment = np.clip(segment, 0, positions.shape[1] - 2)
    p0 = np.take_along_axis(positions, segment, axis=1)
    p1 = np.take_along_axis(positions, segment + 1, axis=1)
    v0 = np.take_along_axis(values, segment, axis=1)
    v1 = np.take_along_axis(values, segment + 1, axis=1)
    w0 = np.take_along_axis(walk, p0.astype(np.int64), axis=1)
    w1 = np.take_along_axis(walk, np.minimum(p1, width - 1).astype(np.int64), axis=1)
    span = p1 - p0
    frac = np.divide(x - p0, span, out=np.zeros_like(span), where=span > 0)
    return v0 + (v1 - v0) * frac + (walk - w0) - (w1 - w0) * frac


def _scores(uniforms: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Gumbel keys: the top-k of these is a weighted draw without replacement."""
    return np.log(weight) - np.log(-np.log(np.maximum(uniforms, 1e-300)))


def _top_k(scores: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The ``k[row]`` highest scores of each row (scores are continuous: no ties to break)."""
    width = scores.shape[1]
    ranked = np.sort(scores, axis=1)
    kth = np.take_along_axis(ranked, np.clip(width - k, 0, width - 1)[:, None], axis=1)
    return (scores >= kth) & (k[:, None] > 0) & (scores > -np.inf)


def _bar_count(total: np.ndarray, trade_size: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """How many minutes trade: Poisson-like coverage by the day's expected number of trades."""
    trades = total / trade_size
    coverage = 1.0 - np.exp(-trades / np.maximum(minutes, 1))
    count = np.rint(minutes * coverage).astype(np.int64)
    count = np.minimum(np.minimum(count, minutes), total.astype(np.int64))
    return np.where(total > 0, np.maximum(count, 1), 0)


def _walk_bars(
    latent: np.ndarray,
    active: np.ndarray,
    excursions: np.ndarray,
    excursion_sigma: np.ndarray,
    weight: np.ndarray,
    total: np.ndarray,
    *,
    start: np.ndarray,
    columns: slice,
    regular: bool,
) -> _Part:
    """Bars on a log-price path sampled at minute boundaries (``latent`` is width + 1 wide)."""
    width = active.shape[1]
    opens = to_ticks(np.exp(latent[:, :width]))
    closes = to_ticks(np.exp(latent[:, 1 : width + 1]))
    up = -excursion_sigma[:, None] * np.log1p(-excursions[:, 0, :width])
    down = -excursion_sigma[:, None] * np.log1p(-excursions[:, 1, :width])
    return _Part(
        start=np.asarray(start, dtype=np.int64),
        columns=columns,
        active=active,
        open=opens,
        high=to_ticks(np.maximum(opens, closes) * np.exp(up)),
        low=to_ticks(np.minimum(opens, closes) * np.exp(-down)),
        close=closes,
        weight=weight.copy(),
        total=np.asarray(total, dtype=np.int64),
        regular=regular,
    )


def _allocate(total: np.ndarray, weight: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Whole shares summing exactly to ``total``: one per bar, the rest by largest remainder."""
    count = active.sum(axis=1)
    rest = np.maximum(total - count, 0).astype(np.float64)
    w = np.where(active, weight, 0.0)
    share = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    raw = share * rest[:, None]
    base = np.floor(raw)
    missing = np.clip(rest - base.sum(axis=1), 0, None).astype(np.int64)
    remainder = np.where(active, raw - base, -1.0)
    order = np.argsort(-remainder, axis=1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(w.shape[1])[None, :], axis=1)
    extra = rank < missing[:, None]
    return np.where(active, 1 + base.astype(np.int64) + extra, 0)


def _logistic(uniforms: np.ndarray) -> np.ndarray:
    """Unit-variance logistic noise: normal-like, and cheaper to draw than normals."""
    u = np.clip(uniforms, 1e-12, 1.0 - 1e-12)
    return np.log(u / (1.0 - u)) * (np.sqrt(3.0) / np.pi)


def _flatten(parts: list[_Part], draws: _Draws, day: _Day, premarket_ms: np.ndarray) -> MinuteBars:
    chunks: dict[str, list[np.ndarray]] = {
        k: [] for k in ("row", "minute", "o", "h", "l", "c", "v", "vw", "n", "reg")
    }
    for part in parts:
        noise = _logistic(draws.volume_noise[:, part.columns][:, : part.active.shape[1]])
        volume = _allocate(part.total, part.weight * np.exp(0.6 * noise), part.active)
        rows, cols = np.nonzero(part.active)
        o, h, lo, c = (a[rows, cols] for a in (part.open, part.high, part.low, part.close))
        typical = (o + h + lo + c) / 4.0
        position = draws.vwap_noise[:, part.columns][rows, cols] - 0.5
        vwap = np.clip(np.rint(typical + position * (h - lo) * 0.5), lo, h)
        v = volume[rows, cols]
        per_trade = day.trade_size[rows] * np.exp(
            0.4 * draws.trade_noise[:, part.columns][rows, cols]
        )
        trades = np.clip(np.rint(v / per_trade), 1, v)
        for key, value in (
            ("row", rows), ("minute", part.start[rows] + cols), ("o", o), ("h", h), ("l", lo),
            ("c", c), ("v", v), ("vw", vwap), ("n", trades),
            ("reg", np.full(len(rows), part.regular)),
        ):  # fmt: skip
            chunks[key].append(value)
    merged = {k: np.concatenate(v) for k, v in chunks.items()}
    order = np.lexsort((merged["minute"], merged["row"]))
    row = merged["row"][order]
    counts = np.bincount(row, minlength=len(day.open))
    return MinuteBars(
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        t=premarket_ms[row] + merged["minute"][order] * MINUTE_MS,
        open=merged["o"][order].astype(np.int64),
        high=merged["h"][order].astype(np.int64),
        low=merged["l"][order].astype(np.int64),
        close=merged["c"][order].astype(np.int64),
        volume=merged["v"][order].astype(np.int64),
        vwap=merged["vw"][order].astype(np.int64),
        trades=merged["n"][order].astype(np.int64),
        regular=merged["reg"][order],
    )
