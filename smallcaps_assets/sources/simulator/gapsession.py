"""The regular session of a gap day: one i.i.d. minute law plus a planted, learnable drift.

On every session whose open gaps at least ``GAP_REGIME_THRESHOLD`` from the previous close, the
log price follows a latent walk in clock minutes from 09:30 ET::

    X_0 = 0,   X_{j+1} = X_j + mu_j + eps_j                       (log price / open)
    eps_j = SIGMA * Z1_j * m_j,    m_j = exp(KAPPA * Z2_j - KAPPA**2)  (E eps^2 = SIGMA^2)
    bar j: open = X_j, close = X_{j+1},
           high = max(open, close) + EXCURSION * E1_j * m_j,
           low  = min(open, close) - EXCURSION * E2_j * m_j

with ``Z1, Z2`` standard normal and ``E1, E2`` standard exponential, all i.i.d. for every
minute, ticker and day. ``SIGMA``, ``EXCURSION`` and ``KAPPA`` are constants: nothing about the
ticker, its price, its gap, its volatility or the time of day scales them. Trading halts arrive as a Poisson process of constant
rate per minute, last five minutes or more, and show no bars; the latent walk keeps running
through them, and the bar that resumes trading opens at the accumulated price plus an extra
symmetric jump. At ``signal == 0`` the drift ``mu`` is zero, so every future return, excursion
and halt is independent of everything observable before it (and volume, which never feeds back
into price, may vary freely).

With ``signal = s > 0`` a latent gap quality ``q`` (observable through premarket volume,
catalyst news, float and recent dilution; see ``daily.py``) picks a morning pattern and sets
``mu_j = s * A * pattern(j)``:

* ``GO`` (gap-and-go): ``+A*m*exp(-j/tau)``,
* ``FADE``: ``-A*m*exp(-j/tau)``,
* ``RECLAIM`` (VWAP reclaim): ``-0.8*A*m`` until ``turn``, then ``+1.4*A*m*exp(-(j-turn)/tau)``,
* ``PARABOLIC`` run then exhaustion: ``A*m*(0.6 + 1.4*j/turn)`` until ``turn``, then
  ``-1.8*A*m*exp(-(j-turn)/tau)``,
* ``CHOP``: zero drift,

where ``m = max(|q|, 0.5)``, ``tau`` is uniform in [30, 90] minutes and ``turn`` uniform in
[10, 30] (reclaim) or [20, 75] (parabolic). The pattern is chosen from ``q``: above 0.9
parabolic (45%) or go; above 0.25 go (55%) or reclaim; above -0.45 reclaim (35%) or chop;
otherwise fade. With a signal, halts also come faster while the drift is strong (rate times
``1 + 3 * min(|mu|/A, 2)``) and resume with a jump tilted along the drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import numpy as np

from smallcaps_assets.sources.simulator.calendar import FULL_SESSION_MINUTES
from smallcaps_assets.sources.simulator.rng import Purpose, Streams

# Calibrated to real US small-cap gap days (open >= +10 % over the previous close; see
# docs/simulator.md "Calibration"): the median gapper fades about 3.5 % from its open, closes
# above it about a third of the time and trades only ~6 % above its open at the high of day.
# Most of a gap day's variance comes from rare jumps, not from the diffusion, so the median
# session is quiet while a few run or crash: the fat tail that makes barriers fire at all.
SIGMA: Final = 0.0041  # standard deviation of a one-minute diffusive log return
EXCURSION: Final = 0.0016  # scale of the intra-minute high/low excursions
KAPPA: Final = 0.5  # log-normal scale mixing: fat tails shared by return and range
FADE_PER_SESSION: Final = 0.036  # constant log drift a session: gappers fade
JUMP_RATE: Final = 1.1 / 390  # jumps per regular minute (about one a session)
JUMP_MEAN: Final = 0.055  # mean absolute log size of a jump (exponential)
DRIFT_UNIT: Final = 0.0019  # A: log drift per minute of a unit-strength pattern at signal 1
JUMP_TILT: Final = 2.0  # with a signal, jumps lean along the planted drift (squeezes, dumps)
HALT_RATE: Final = 0.0006  # halts per regular-session minute
HALT_MIN_MINUTES: Final = 5
HALT_MAX_MINUTES: Final = 15
HALT_LAST_START: Final = 6  # no halt starts in the last minutes of the session
RESUME_JUMP_SIGMA: Final = 0.03
MAX_HALTS: Final = 8
# On gap days every after-hours minute of the first hour trades, so a 15-minute label window
# starting late in the session sees as many bars as one starting at 10:00.
AFTER_HOURS_FULL_MINUTES: Final = 60
AFTER_HOURS_PRESENCE: Final = 0.35
_CANDIDATES: Final = 16  # Poisson candidates per session (expected count is at most 2.5)
_RATE_CEILING: Final = 7.0  # the planted drift raises the halt rate at most this much
# With a signal, part of a gap day's variance is the planted drift's; the diffusion gives up this
# share of its scale per unit of signal so gap-day paths keep roughly the same spread.
SIGNAL_NOISE_CUT: Final = 0.3
OPEN_VOL_BOOST: Final = 2.0  # the first minutes' volatility is this much above the session's tail
OPEN_VOL_DECAY: Final = 30.0  # minutes over which the opening volatility decays


def intraday_profile(boost: float = OPEN_VOL_BOOST, decay: float = OPEN_VOL_DECAY) -> np.ndarray:
    """Volatility multiplier of each regular minute: high at the open, mean square one."""
    shape = 1.0 + boost * np.exp(-np.arange(FULL_SESSION_MINUTES) / decay)
    return shape / np.sqrt(np.mean(shape**2))


class Pattern(IntEnum):
    CHOP = 0
    GO = 1
    FADE = 2
    RECLAIM = 3
    PARABOLIC = 4


@dataclass(frozen=True, eq=False)
class GapSessions:
    """Regular sessions of a batch of gap days; minute arrays are (batch, 390), log / open."""

    open_rel: np.ndarray
    close_rel: np.ndarray
    high_rel: np.ndarray
    low_rel: np.ndarray
    present: np.ndarray  # bool: a bar exists (not halted, inside the session)
    drift: np.ndarray  # mu_j, the planted drift (zero at signal 0)
    pattern: np.ndarray  # int8 Pattern
    latent_close: np.ndarray  # X at the session's close boundary (after-hours starts here)
    halt_spill: np.ndarray  # int64 halted minutes that run past the close into after-hours
    halt_count: np.ndarray  # int64 halts started in the session
    halt_starts: np.ndarray  # int64 (batch, MAX_HALTS) minute index of each halt, -1 if none

    def summary(self) -> GapSummary:
        cols = np.arange(self.present.shape[1])
        last = np.where(self.present, cols, -1).max(axis=1)
        rows = np.arange(len(last))
        high = np.where(self.present, self.high_rel, -np.inf).max(axis=1)
        low = np.where(self.present, self.low_rel, np.inf).min(axis=1)
        return GapSummary(
            close_rel=self.close_rel[rows, last],
            high_rel=high,
            low_rel=low,
            pattern=self.pattern,
            halt_count=self.halt_count,
            halt_starts=self.halt_starts,
        )


@dataclass(frozen=True, eq=False)
class GapSummary:
    """What the daily panel needs from a gap session (log / open)."""

    close_rel: np.ndarray
    high_rel: np.ndarray
    low_rel: np.ndarray
    pattern: np.ndarray
    halt_count: np.ndarray
    halt_starts: np.ndarray


@dataclass(frozen=True, eq=False)
class _Draws:
    meta: np.ndarray  # (batch, 8) uniforms: pattern, tau, turn
    returns: np.ndarray  # (batch, 390) normals Z1
    mixing: np.ndarray  # (batch, 390) normals Z2
    up: np.ndarray  # (batch, 390) uniforms for the high excursion
    down: np.ndarray  # (batch, 390) uniforms for the low excursion
    halts: np.ndarray  # (batch, 3, _CANDIDATES) uniforms: waiting time, acceptance, length
    jumps: np.ndarray  # (batch, MAX_HALTS) normals for resumption jumps
    moves: np.ndarray  # (batch, 3, 390) uniforms: a jump this minute, its direction, its size


def _draw(seed: int, tids: Sequence[int], ordinals: Sequence[int]) -> _Draws:
    batch, n = len(tids), FULL_SESSION_MINUTES
    meta = np.empty((batch, 8))
    normals = np.empty((batch, 2, n))
    uniforms = np.empty((batch, 2, n))
    halts = np.empty((batch, 3, _CANDIDATES))
    jumps = np.empty((batch, MAX_HALTS))
    moves = np.empty((batch, 3, n))
    streams = Streams(seed, Purpose.GAP_SESSION)
    for k in range(batch):
        rng = streams.at(tids[k], ordinals[k])
        rng.random(out=meta[k])
        rng.standard_normal(out=normals[k])
        rng.random(out=uniforms[k])
        rng.random(out=halts[k])
        rng.standard_normal(out=jumps[k])
        rng.random(out=moves[k])
    # Contiguous per component: the arithmetic below runs faster on unit strides.
    return _Draws(
        meta=meta,
        returns=np.ascontiguousarray(normals[:, 0]),
        mixing=np.ascontiguousarray(normals[:, 1]),
        up=np.ascontiguousarray(uniforms[:, 0]),
        down=np.ascontiguousarray(uniforms[:, 1]),
        halts=halts,
        jumps=jumps,
        moves=moves,
    )


def _jump_moves(moves: np.ndarray, drift: np.ndarray, signal: float) -> np.ndarray:
    """Compound-Poisson log jumps per minute: symmetric and i.i.d. at ``signal == 0``.

    With a signal, a strong planted drift makes jumps likelier and tilts their direction
    along it: a squeeze on a runner's morning, a dump on a fader's.
    """
    occurs, direction, size = moves[:, 0], moves[:, 1], moves[:, 2]
    magnitude = -JUMP_MEAN * np.log1p(-size)
    if not signal:
        return np.where(occurs < JUMP_RATE, np.where(direction < 0.5, magnitude, -magnitude), 0.0)
    strength = drift / DRIFT_UNIT
    rate = JUMP_RATE * (1.0 + np.minimum(np.abs(strength), 2.0))
    up = 0.5 * (1.0 + np.tanh(JUMP_TILT * strength))
    return np.where(occurs < rate, np.where(direction < up, magnitude, -magnitude), 0.0)


def choose_pattern(quality: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.select(
        [
            (quality > 0.9) & (u < 0.45),
            quality > 0.9,
            (quality > 0.25) & (u < 0.55),
            quality > 0.25,
            (quality > -0.45) & (u < 0.35),
            quality > -0.45,
        ],
        [Pattern.PARABOLIC, Pattern.GO, Pattern.GO, Pattern.RECLAIM, Pattern.RECLAIM, Pattern.CHOP],
        default=Pattern.FADE,
    ).astype(np.int8)


def _drift(pattern: np.ndarray, quality: np.ndarray, meta: np.ndarray, signal: float) -> np.ndarray:
    drift = np.zeros((len(pattern), FULL_SESSION_MINUTES))
    if signal == 0.0:
        return drift
    j = np.arange(FULL_SESSION_MINUTES, dtype=np.float64)[None, :]
    strength = (signal * DRIFT_UNIT * np.maximum(np.abs(quality), 0.5))[:, None]
    tau = (30.0 + 60.0 * meta[:, 1])[:, None]
    for kind in (Pattern.GO, Pattern.FADE, Pattern.RECLAIM, Pattern.PARABOLIC):
        rows = np.flatnonzero(pattern == kind)
        if len(rows) == 0:
            continue
        a, t_scale, u = strength[rows], tau[rows], meta[rows, 2:3]
        if kind in (Pattern.GO, Pattern.FADE):
            shape = np.exp(-j / t_scale) * (1.0 if kind == Pattern.GO else -1.0)
        elif kind == Pattern.RECLAIM:
            turn = 10.0 + 20.0 * u
            shape = np.where(j < turn, -0.8, 1.4 * np.exp(-np.maximum(j - turn, 0.0) / t_scale))
        else:
            turn = 20.0 + 55.0 * u
            run = 0.6 + 1.4 * j / turn
            shape = np.where(j < turn, run, -1.8 * np.exp(-np.maximum(j - turn, 0.0) / t_scale))
        drift[rows] = a * shape
    return drift


def gap_sessions(
    seed: int,
    tids: Sequence[int],
    ordinals: Sequence[int],
    quality: np.ndarray,
    regular_minutes: np.ndarray,
    signal: float,
) -> GapSessions:
    """Regular sessions of the gap days ``(tids[k], ordinals[k])``; ``quality[k]`` is q."""
    batch = len(tids)
    n = FULL_SESSION_MINUTES
    draws = _draw(seed, tids, ordinals)
    quality = np.asarray(quality, dtype=np.float64)
    session_end = np.asarray(regular_minutes, dtype=np.int64)
    minutes = np.arange(n)[None, :]
    inside = minutes < session_end[:, None]
    pattern = choose_pattern(quality, draws.meta[:, 0])
    drift = _drift(pattern, quality, draws.meta, signal)
    drift[~inside] = 0.0

    # In-place arithmetic: this runs for every gap day when the panel is built.
    mix = draws.mixing
    mix *= KAPPA
    mix -= KAPPA**2
    np.exp(mix, out=mix)
    profile = intraday_profile()[None, :]
    step = draws.returns
    step *= SIGMA * max(1.0 - SIGNAL_NOISE_CUT * signal, 0.2)
    step *= mix
    step *= profile
    # The fade moves with the volatility, so a window's drift-to-noise ratio (and with it the
    # chance that a fixed-length trade ends up) is the same at every time of day.
    step += np.where(inside, -FADE_PER_SESSION / 390 * profile / profile.mean(), 0.0)
    step += np.where(inside, _jump_moves(draws.moves, drift, signal), 0.0)
    if signal:
        step += drift
    halts = _halts(draws, drift, session_end, signal)
    if halts.count.any():
        step += halts.jump

    latent = np.zeros((batch, n + 1))
    np.cumsum(step, axis=1, out=latent[:, 1:])
    open_rel = latent[:, :-1]
    close_rel = latent[:, 1:]
    mix *= EXCURSION
    mix *= profile
    high_rel = np.maximum(open_rel, close_rel)
    up = draws.up
    np.negative(up, out=up)
    np.log1p(up, out=up)
    up *= mix
    high_rel -= up
    low_rel = np.minimum(open_rel, close_rel)
    down = draws.down
    np.negative(down, out=down)
    np.log1p(down, out=down)
    down *= mix
    low_rel += down
    return GapSessions(
        open_rel=open_rel,
        close_rel=close_rel,
        high_rel=high_rel,
        low_rel=low_rel,
        present=inside & ~halts.halted,
        drift=drift,
        pattern=pattern,
        latent_close=latent[np.arange(batch), session_end],
        halt_spill=halts.spill,
        halt_count=halts.count,
        halt_starts=halts.starts,
    )


@dataclass(frozen=True, eq=False)
class _Halts:
    halted: np.ndarray  # (batch, 390) bool
    jump: np.ndarray  # (batch, 390) extra log move in each halt's last minute
    count: np.ndarray
    starts: np.ndarray  # (batch, MAX_HALTS), -1 padded
    spill: np.ndarray  # halted minutes past the close


def _halts(draws: _Draws, drift: np.ndarray, session_end: np.ndarray, signal: float) -> _Halts:
    """Halt starts as a Poisson process in clock minutes, thinned along a planted drift."""
    batch, n = drift.shape
    ceiling = HALT_RATE * (_RATE_CEILING if signal else 1.0)
    waits = -np.log1p(-draws.halts[:, 0]) / ceiling
    start = 1 + np.floor(np.cumsum(waits, axis=1)).astype(np.int64)
    accepted = start <= (session_end - HALT_LAST_START)[:, None]
    safe_start = np.where(accepted, start, 0)
    if signal:
        strength = np.abs(np.take_along_axis(drift, safe_start, axis=1)) / DRIFT_UNIT
        rate = HALT_RATE * (1.0 + 3.0 * np.minimum(strength, 2.0))
        accepted &= draws.halts[:, 1] < rate / ceiling
    extra = np.floor(np.log1p(-draws.halts[:, 2]) / np.log(0.7)).astype(np.int64)
    length = np.minimum(HALT_MIN_MINUTES + extra, HALT_MAX_MINUTES)

    halted = np.zeros((batch, n), dtype=bool)
    jump = np.zeros((batch, n))
    count = np.zeros(batch, dtype=np.int64)
    starts = np.full((batch, MAX_HALTS), -1, dtype=np.int64)
    spill = np.zeros(batch, dtype=np.int64)
    rows = np.flatnonzero(accepted.any(axis=1))
    if len(rows) == 0:
        return _Halts(halted, jump, count, starts, spill)

    # Work on the few sessions that halt at all: mark each halt's reach and sweep it forward.
    reach = np.zeros((len(rows), n), dtype=np.int64)
    hit = accepted[rows]
    r_index = np.repeat(np.arange(len(rows))[:, None], _CANDIDATES, axis=1)
    np.maximum.at(reach, (r_index[hit], safe_start[rows][hit]), (start + length)[rows][hit])
    np.maximum.accumulate(reach, axis=1, out=reach)
    sub_halted = reach > np.arange(n)[None, :]
    before = np.concatenate([np.zeros((len(rows), 1), bool), sub_halted[:, :-1]], axis=1)
    after = np.concatenate([sub_halted[:, 1:], np.zeros((len(rows), 1), bool)], axis=1)
    begins = sub_halted & ~before  # overlapping halts merge into one
    ordinal = np.minimum(np.cumsum(begins, axis=1) - 1, MAX_HALTS - 1)
    inside = np.arange(n)[None, :] < session_end[rows, None]
    ends = sub_halted & ~after & inside
    # The resumption jump lands in the last halted minute's increment, so the first bar after
    # the halt opens away from the last bar before it (tilted along a planted drift).
    sub_drift = drift[rows]
    tilt = np.sign(sub_drift) * np.minimum(np.abs(sub_drift) / DRIFT_UNIT, 1.0)
    size = np.take_along_axis(draws.jumps[rows], np.maximum(ordinal, 0), axis=1) + 0.5 * tilt
    jump[rows] = np.where(ends, RESUME_JUMP_SIGMA * size, 0.0)
    halted[rows] = sub_halted
    count[rows] = begins.sum(axis=1)
    b_rows, b_cols = np.nonzero(begins)
    keep = ordinal[b_rows, b_cols] < MAX_HALTS
    starts[rows[b_rows[keep]], ordinal[b_rows[keep], b_cols[keep]]] = b_cols[keep]
    end_reach = reach[np.arange(len(rows)), session_end[rows] - 1]
    spill[rows] = np.maximum(end_reach - session_end[rows], 0)
    return _Halts(halted, jump, count, starts, spill)


@dataclass(frozen=True, eq=False)
class GapAfterHours:
    """After-hours minutes of one gap day under the same law (log / regular open)."""

    open_rel: np.ndarray
    close_rel: np.ndarray
    high_rel: np.ndarray
    low_rel: np.ndarray
    present: np.ndarray


def gap_after_hours(
    seed: int, tid: int, ordinal: int, latent_close: float, halt_spill: int, minutes: int
) -> GapAfterHours:
    """The walk continues after the close with the same law, without fade or planted drift."""
    rng = Streams(seed, Purpose.GAP_AFTER_HOURS).at(tid, ordinal)
    normals = rng.standard_normal((2, minutes))
    uniforms = rng.random((3, minutes))
    moves = rng.random((1, 3, minutes))
    mix = np.exp(KAPPA * normals[1] - KAPPA**2)
    step = SIGMA * normals[0] * mix + _jump_moves(moves, np.zeros((1, minutes)), 0.0)[0]
    latent = latent_close + np.concatenate([[0.0], np.cumsum(step)])
    open_rel, close_rel = latent[:-1], latent[1:]
    index = np.arange(minutes)
    present = np.where(index < AFTER_HOURS_FULL_MINUTES, True, uniforms[2] < AFTER_HOURS_PRESENCE)
    present &= index >= halt_spill
    return GapAfterHours(
        open_rel=open_rel,
        close_rel=close_rel,
        high_rel=np.maximum(open_rel, close_rel) - EXCURSION * np.log1p(-uniforms[0]) * mix,
        low_rel=np.minimum(open_rel, close_rel) + EXCURSION * np.log1p(-uniforms[1]) * mix,
        present=present,
    )
