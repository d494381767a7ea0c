"""The planted signal: learnable at signal 1, and nothing at all to learn at signal 0.

The leakage canary downstream needs the regular session of a gap day to be unpredictable from
anything observable before it when ``signal == 0``. These tests pin that down structurally
(the session law ignores everything about the ticker and the day) and statistically (a score
built from the morning's observables does not rank winning barrier trades at signal 0, and
clearly does at signal 1).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import numpy as np
import polars as pl
import pytest

from smallcaps_assets.core.universe import UniverseRules
from smallcaps_assets.sources.simulator import SimConfig, SimulatedMarket
from smallcaps_assets.sources.simulator.config import GAP_REGIME_THRESHOLD
from smallcaps_assets.sources.simulator.daily import Catalyst
from smallcaps_assets.sources.simulator.gapsession import (
    EXCURSION,
    JUMP_MEAN,
    JUMP_RATE,
    KAPPA,
    SIGMA,
    gap_sessions,
    intraday_profile,
)

WINDOW = (date(2022, 1, 3), date(2023, 12, 29))
POSITIVE = [
    c.value
    for c in (
        Catalyst.FDA,
        Catalyst.MERGER,
        Catalyst.CONTRACT,
        Catalyst.PARTNERSHIP,
        Catalyst.EARNINGS_BEAT,
    )
]
NEGATIVE = [c.value for c in (Catalyst.EARNINGS_MISS, Catalyst.OFFERING, Catalyst.BANKRUPTCY)]


@lru_cache(maxsize=2)
def market(signal: float) -> SimulatedMarket:
    return SimulatedMarket(
        SimConfig(signal=signal, history_start=date(2021, 6, 1), history_end=WINDOW[1])
    )


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for value in np.unique(score[np.diff(np.sort(score), prepend=np.nan) == 0]):
        tied = score == value
        ranks[tied] = ranks[tied].mean()
    positives = label.sum()
    negatives = len(label) - positives
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@lru_cache(maxsize=2)
def events(signal: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triple-barrier events on gap-up days: (observable score, minutes since open, the trade
    wins).

    Entries every 10 minutes in the first two hours at the bar close; +15% take profit, -10%
    stop, 15-minute timeout, judged on minute highs and lows, the stop winning ties; a trade
    wins when it exits above its entry (the project's label, core/labels.py).
    """
    m = market(signal)
    panel, sessions, gaps = m.panel, m.sessions, m.panel.gaps
    lo, hi = sessions.first_on_or_after(WINDOW[0]), sessions.last_on_or_before(WINDOW[1])
    seasoned = gaps.t >= panel.list_idx[gaps.tid] + 20  # a month of history to compare with
    rows = np.flatnonzero((gaps.t >= lo) & (gaps.t <= hi) & (gaps.gap > 0) & seasoned)
    tids, ts = gaps.tid[rows], gaps.t[rows]

    # What the morning shows: premarket volume against its own 20-day norm, the news tone,
    # the float value, and a recent offering.
    premarket = panel.volume_pre.astype(np.float64)
    rvol = np.array(
        [
            premarket[i, t] / max(premarket[i, t - 20 : t].mean(), 1.0)
            for i, t in zip(tids, ts, strict=True)
        ]
    )
    catalyst = gaps.catalyst[rows]
    tone = np.select([np.isin(catalyst, POSITIVE), np.isin(catalyst, NEGATIVE)], [1.0, -1.0], 0.0)
    value = panel.shares_outstanding_pairs(tids, ts) * panel.previous_close(tids, ts)
    offers = panel.offerings
    recent = np.array(
        [
            ((offers.tid == i) & (offers.t < t) & (offers.t >= t - 60)).any()
            for i, t in zip(tids, ts, strict=True)
        ]
    )
    day_score = 0.8 * np.log(rvol) + tone - 0.3 * np.log(value) - 0.8 * recent

    bars = m.minute_bar_batch(tids, ts)
    scores, minutes, labels = [], [], []
    for k in range(len(rows)):
        part = bars.pair(k)
        regular = bars.regular[part]
        t = bars.t[part][regular]
        high, low, close = (getattr(bars, name)[part][regular] for name in ("high", "low", "close"))
        start = sessions.open_ms[ts[k]]
        for entry in range(5, 120, 10):
            at = np.flatnonzero(t == start + entry * 60_000)
            if len(at) == 0:
                continue
            i = int(at[0])
            window = (t > t[i]) & (t <= t[i] + 15 * 60_000)
            up = np.flatnonzero(high[window] >= close[i] * 1.15)
            down = np.flatnonzero(low[window] <= close[i] * 0.90)
            first_up = up[0] if len(up) else np.inf
            first_down = down[0] if len(down) else np.inf
            if first_up == first_down == np.inf:
                wins = bool(close[window][-1] > close[i]) if window.any() else False
            else:
                wins = bool(first_up < first_down)
            scores.append(day_score[k])
            minutes.append(entry)
            labels.append(wins)
    return np.array(scores), np.array(minutes), np.array(labels)


def test_at_signal_zero_the_session_law_ignores_quality_ticker_and_day():
    keys = list(range(64))
    days = [738_000 + k for k in keys]
    minutes = np.full(64, 390)
    low_q = gap_sessions(7, keys, days, np.full(64, -3.0), minutes, 0.0)
    high_q = gap_sessions(7, keys, days, np.full(64, 3.0), minutes, 0.0)
    for name in ("open_rel", "high_rel", "low_rel", "close_rel", "present"):
        np.testing.assert_array_equal(getattr(low_q, name), getattr(high_q, name))
    assert not low_q.drift.any()
    # ... and with a signal the same draws carry a drift that depends on quality.
    planted = gap_sessions(7, keys, days, np.full(64, 3.0), minutes, 1.0)
    assert planted.drift.any()


def test_at_signal_zero_minute_returns_share_one_law_across_names_and_the_clock():
    m = market(0.0)
    gaps = m.panel.gaps
    rows = np.arange(0, len(gaps), 3)[:600]
    law = gap_sessions(
        7, gaps.tid[rows].tolist(), m.sessions.ordinals[gaps.t[rows]].tolist(), gaps.quality[rows],
        m.sessions.regular_minutes[gaps.t[rows]], 0.0,
    )  # fmt: skip
    steps = law.close_rel - law.open_rel  # each bar's own log return
    inside = law.present
    # Diffusion plus compound-Poisson jumps of exponential size: Var = SIGMA^2 + rate * 2 mean^2.
    expected = np.sqrt(SIGMA**2 + JUMP_RATE * 2 * JUMP_MEAN**2)
    assert np.std(steps[inside]) == pytest.approx(expected, rel=0.08)
    morning = steps[:, :60][inside[:, :60]]
    afternoon = steps[:, 300:360][inside[:, 300:360]]
    # The clock sets one volatility profile for every name (high at the open); the median bar
    # move, which jumps hardly touch, follows it. Whether a trade of a fixed length ends up is
    # what must not depend on the clock: see the minute AUC below.
    profile = intraday_profile()
    expected_ratio = profile[:60].mean() / profile[300:360].mean()
    observed_ratio = np.median(np.abs(morning)) / np.median(np.abs(afternoon))
    assert observed_ratio == pytest.approx(expected_ratio, rel=0.1)
    assert expected_ratio > 1.5
    assert np.mean(morning) == pytest.approx(np.mean(afternoon), abs=3e-4)
    ranges = (law.high_rel - np.maximum(law.open_rel, law.close_rel))[law.present]
    # E[exponential] * E[exp(KAPPA * Z - KAPPA^2)] = exp(-KAPPA^2 / 2), times the clock's profile
    expected_range = EXCURSION * np.exp(-(KAPPA**2) / 2) * profile.mean()
    assert np.mean(ranges) == pytest.approx(expected_range, rel=0.05)
    # Realized volatility of a day says nothing about the name's own volatility or the gap.
    realized = np.array([np.std(s[p]) for s, p in zip(steps, law.present, strict=True)])
    base_vol = m.universe.base_vol[gaps.tid[rows]]
    assert abs(np.corrcoef(realized, base_vol)[0, 1]) < 0.1
    assert abs(np.corrcoef(realized, np.abs(gaps.gap[rows]))[0, 1]) < 0.1


def test_at_signal_zero_the_morning_observables_do_not_rank_winning_trades():
    scores, minutes, labels = events(0.0)
    assert labels.sum() > 300
    print(
        f"signal 0: {len(labels)} events, winning {labels.mean():.1%}, AUC {auc(scores, labels):.3f}"
    )
    assert auc(scores, labels) == pytest.approx(0.5, abs=0.03)
    assert auc(minutes.astype(float), labels) == pytest.approx(0.5, abs=0.03)


def test_at_signal_one_the_same_observables_rank_winning_trades():
    scores, _, labels = events(1.0)
    print(
        f"signal 1: {len(labels)} events, winning {labels.mean():.1%}, AUC {auc(scores, labels):.3f}"
    )
    assert auc(scores, labels) > 0.55


def test_every_reported_gap_of_ten_percent_runs_under_the_session_law():
    assert UniverseRules().gap_min > GAP_REGIME_THRESHOLD
    panel = market(0.0).daily_panel()
    big = panel.filter(pl.col("gap").abs() >= 0.10)
    assert big.height > 500
    assert big["gap_regime"].all()


def test_at_signal_zero_nothing_before_a_bar_hints_at_how_far_the_session_will_move():
    m = market(0.0)
    gaps, sessions = m.panel.gaps, m.sessions
    rows = np.flatnonzero(gaps.t >= gaps.t.max() - 300)
    tids, ts = gaps.tid[rows], gaps.t[rows]
    bars = m.minute_bar_batch(tids, ts)
    early_volume, premarket_wiggle, later_move = [], [], []
    for k in range(len(rows)):
        part = bars.pair(k)
        t, close, volume = bars.t[part], bars.close[part], bars.volume[part]
        open_ms = sessions.open_ms[ts[k]]
        pre = t < open_ms
        first_half_hour = (t >= open_ms) & (t < open_ms + 30 * 60_000)
        rest = bars.regular[part] & (t >= open_ms + 30 * 60_000)
        if pre.sum() < 5 or rest.sum() < 60:
            continue
        early_volume.append(np.log(volume[first_half_hour].sum()))
        premarket_wiggle.append(np.std(np.diff(np.log(close[pre]))))
        later_move.append(abs(np.log(close[rest][-1] / close[first_half_hour][-1])))
    assert len(later_move) > 300
    # Independent series: the sample correlation is ~N(0, 1/n); three standard errors.
    bound = 3.0 / np.sqrt(len(later_move))
    for observed in (early_volume, premarket_wiggle):
        assert abs(np.corrcoef(observed, later_move)[0, 1]) < bound
