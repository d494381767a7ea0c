"""The simulated market's structure: identities, exact daily/minute agreement, determinism."""

from __future__ import annotations

import re
import time
from datetime import date
from functools import lru_cache

import numpy as np
import polars as pl
import pytest

from smallcaps_assets.sources.simulator import SimConfig, SimulatedMarket
from smallcaps_assets.sources.simulator.calendar import sessions_between
from smallcaps_assets.sources.simulator.universe import build_universe

SMALL = SimConfig(
    seed=11, n_tickers=80, history_start=date(2022, 1, 3), history_end=date(2023, 12, 29)
)


@lru_cache(maxsize=4)
def market(config: SimConfig = SMALL) -> SimulatedMarket:
    return SimulatedMarket(config)


def test_config_defaults_are_the_documented_ones():
    cfg = SimConfig()
    assert (cfg.seed, cfg.n_tickers, cfg.signal) == (7, 300, 1.0)
    assert (cfg.history_start, cfg.history_end) == (date(2018, 1, 2), date(2026, 12, 31))
    with pytest.raises(AttributeError):
        cfg.seed = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"n_tickers": 0},
        {"signal": -0.5},
        {"signal": float("nan")},
        {"history_start": date(2024, 1, 1), "history_end": date(2023, 1, 1)},
        {"history_start": date(2001, 1, 2)},
    ],
)
def test_config_rejects_nonsense(kwargs):
    with pytest.raises(ValueError, match=r"."):
        SimConfig(**kwargs)


def test_construction_is_cheap_and_building_is_lazy():
    started = time.perf_counter()
    SimulatedMarket(SimConfig(n_tickers=5000))
    assert time.perf_counter() - started < 0.2


def test_symbols_are_unique_one_to_five_uppercase_letters():
    sessions = sessions_between(date(2018, 1, 2), date(2026, 12, 31))
    universe = build_universe(7, 5000, sessions)
    assert len(set(universe.symbols)) == 5000
    assert all(re.fullmatch(r"[A-Z]{1,5}", s) for s in universe.symbols)
    # A ticker is the same company whatever the universe size.
    assert build_universe(7, 50, sessions).symbols == universe.symbols[:50]


def _sample_pairs(m: SimulatedMarket) -> tuple[np.ndarray, np.ndarray]:
    """Gap days, early closes, split days and ordinary days of one market."""
    panel, sessions = m.panel, m.sessions
    gaps = panel.gaps
    picks = [(int(i), int(t)) for i, t in zip(gaps.tid[:40], gaps.t[:40], strict=True)]
    picks += [(int(i), int(t)) for i, t in zip(panel.splits.tid, panel.splits.t, strict=True)]
    early = np.flatnonzero(sessions.regular_minutes < 390)
    for t in early[:3]:
        picks += [(int(i), int(t)) for i in m.listed_on(int(t))[:10]]
    for t in (10, 250, 400):
        picks += [(int(i), t) for i in m.listed_on(t)[:15]]
    tids, ts = zip(*sorted(set(picks)), strict=True)
    return np.array(tids), np.array(ts)


def test_daily_bars_are_exactly_the_aggregate_of_the_minute_bars():
    m = market()
    tids, ts = _sample_pairs(m)
    assert m.panel.regime[tids, ts].sum() >= 20
    assert (m.sessions.regular_minutes[ts] < 390).any()
    for tid, t in zip(tids, ts, strict=True):
        symbol, day = m.universe.symbols[tid], m.sessions.days[t]
        daily = m.day_bars(symbol, day, day).row(0, named=True)
        minutes = m.minute_bars(symbol, day)
        regular = minutes.filter(pl.col("session") == "regular")
        assert daily["open"] == regular["open"][0], (symbol, day)
        assert daily["close"] == regular["close"][-1], (symbol, day)
        assert daily["high"] == regular["high"].max(), (symbol, day)
        assert daily["low"] == regular["low"].min(), (symbol, day)
        assert daily["volume"] == minutes["volume"].sum(), (symbol, day)
        assert daily["trades"] == minutes["trades"].sum(), (symbol, day)
        weighted = (minutes["vwap"] * minutes["volume"]).sum() / minutes["volume"].sum()
        assert abs(daily["vwap"] - weighted) <= 0.00005 + 1e-9, (symbol, day)


def test_minute_bars_are_well_formed_and_only_exist_when_something_traded():
    m = market()
    tids, ts = _sample_pairs(m)
    for tid, t in list(zip(tids, ts, strict=True))[::3]:
        day = m.sessions.days[t]
        bars = m.minute_bars(m.universe.symbols[tid], day)
        stamps = bars["t"].to_numpy()
        premarket_start = int(m.sessions.premarket_start_ms(t))
        close_ms = int(m.sessions.open_ms[t]) + int(m.sessions.regular_minutes[t]) * 60_000
        assert stamps.min() >= premarket_start
        assert stamps.max() < close_ms + 240 * 60_000
        assert (np.diff(stamps) > 0).all()
        assert (stamps % 60_000 == 0).all()
        assert (bars["volume"] >= 1).all()
        assert (bars["trades"] >= 1).all()
        assert (bars["trades"] <= bars["volume"]).all()
        body_low = np.minimum(bars["open"], bars["close"])
        body_high = np.maximum(bars["open"], bars["close"])
        assert (bars["low"] <= body_low).all()
        assert (bars["high"] >= body_high).all()
        assert ((bars["vwap"] >= bars["low"]) & (bars["vwap"] <= bars["high"])).all()


def test_a_pair_gets_the_same_bars_alone_or_in_any_batch():
    m = market()
    tids, ts = _sample_pairs(m)
    together = m.minute_bar_batch(tids, ts)
    fresh = SimulatedMarket(SMALL)
    for k in (0, len(tids) // 2, len(tids) - 1):
        alone = fresh.minute_bar_batch(tids[k : k + 1], ts[k : k + 1])
        part = together.pair(k)
        for name in ("t", "open", "high", "low", "close", "volume", "vwap", "trades"):
            np.testing.assert_array_equal(getattr(alone, name), getattr(together, name)[part])


def test_same_config_same_market_and_another_seed_another_market():
    first = market().daily_panel(date(2023, 3, 1), date(2023, 3, 31))
    again = SimulatedMarket(SMALL).daily_panel(date(2023, 3, 1), date(2023, 3, 31))
    assert first.equals(again)
    other = SimulatedMarket(
        SimConfig(
            seed=12, n_tickers=80, history_start=SMALL.history_start, history_end=SMALL.history_end
        )
    ).daily_panel(date(2023, 3, 1), date(2023, 3, 31))
    assert not first.equals(other)


def test_only_listed_names_trade_and_listing_windows_are_respected():
    m = market()
    panel, tickers = m.panel, m.tickers()
    listed = (np.arange(m.sessions.count)[None, :] >= panel.list_idx[:, None]) & (
        np.arange(m.sessions.count)[None, :] < panel.delist_idx[:, None]
    )
    assert ((panel.open > 0) == listed).all()
    frame = m.daily_panel()
    spans = frame.group_by("ticker").agg(
        pl.col("date").min().alias("first"), pl.col("date").max().alias("last")
    )
    joined = spans.join(tickers, on="ticker")
    in_history = joined.filter(pl.col("list_date") >= SMALL.history_start)
    assert (in_history["first"] == in_history["list_date"]).all()
    delisted = joined.filter(pl.col("delist_date").is_not_null())
    assert delisted.height > 0
    assert (delisted["last"] < delisted["delist_date"]).all()


# Splits are rare events (a few a year per hundred names): a longer, wider market has some.
WITH_SPLITS = SimConfig(
    seed=11, n_tickers=300, history_start=date(2019, 1, 2), history_end=date(2023, 12, 29)
)


def test_adjusted_history_has_no_split_jumps_but_unadjusted_does():
    m = market(WITH_SPLITS)
    splits = m.panel.splits
    assert len(splits) > 0
    for tid, t, split_from, split_to in list(
        zip(splits.tid, splits.t, splits.split_from, splits.split_to, strict=True)
    )[:10]:
        symbol = m.universe.symbols[tid]
        days = m.sessions.days[t - 1], m.sessions.days[t]
        raw = m.day_bars(symbol, *days)
        adjusted = m.day_bars(symbol, *days, adjusted=True)
        ratio = split_from / split_to
        raw_move = raw["open"][1] / raw["close"][0]
        adjusted_move = adjusted["open"][1] / adjusted["close"][0]
        assert raw_move / adjusted_move == pytest.approx(ratio, rel=2e-3)
        assert raw["volume"][0] / adjusted["volume"][0] == pytest.approx(
            adjusted["close"][0] / raw["close"][0], rel=1e-6
        )


def test_universe_truth_reveals_the_latent_state_of_the_day():
    m = market()
    panel = m.panel
    t = int(panel.gaps.t[len(panel.gaps) // 2])
    day = m.sessions.days[t]
    truth = m.universe_truth(day)
    assert truth.height == len(m.listed_on(t))
    regime = truth.filter(pl.col("gap_regime"))
    assert regime.height >= 1
    assert regime["quality"].null_count() == 0
    assert regime["pattern"].null_count() == 0
    assert (
        truth.filter(~pl.col("gap_regime"))["quality"].null_count() == truth.height - regime.height
    )
    small = truth.filter(pl.col("small_cap_universe"))
    assert small.height > 0
    assert set(small["type"]) == {"CS"}
    assert set(small["primary_exchange"]) <= {"XNAS", "XNYS", "XASE"}
    assert small["previous_close"].is_between(0.5, 20.0).all()
    assert m.universe_truth(date(2023, 7, 4)).is_empty()
