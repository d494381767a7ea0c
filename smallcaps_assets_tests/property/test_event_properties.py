"""Properties of the research core: features never see data stamped after their event, and the
vectorized triple-barrier labeller equals the plain per-event loop, and a short on a path
mirrored around its entry has the outcome of the long on the original path."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smallcaps_assets.core import features, labels
from smallcaps_assets.core.events import DIRECTION, PATTERNS, detect_events
from smallcaps_assets.core.minute import process_minute_bars
from smallcaps_assets.sources import parsers
from smallcaps_assets_tests.minute_fixtures import DAY, NY, bars_from

settings.register_profile(
    "events", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("events")

OPEN = dt.datetime.combine(DAY, dt.time(9, 30), tzinfo=NY)


@st.composite
def minute_paths(draw: st.DrawFn, tickers: tuple[str, ...] = ("AAA", "BBB")) -> pl.DataFrame:
    """Random-walk regular-session bars (with holes: illiquid minutes and halts) plus a few
    premarket bars, processed as the asset would."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for ticker in tickers:
        n = draw(st.integers(20, 120))
        start = draw(st.integers(0, 360 - n))
        steps = draw(st.lists(st.floats(-0.06, 0.06), min_size=n, max_size=n))
        holes = draw(st.sets(st.integers(1, n - 1), max_size=n // 4))
        price = draw(st.floats(1.0, 20.0))
        for minute in range(4):  # premarket
            t = dt.datetime.combine(DAY, dt.time(8, minute), tzinfo=NY)
            rows.append((ticker, _bar(t, price, price, 5_000.0)))
        for i, step in enumerate(steps):
            new = max(0.05, price * (1.0 + step))
            if i not in holes:
                t = OPEN + dt.timedelta(minutes=start + i)
                volume = draw(st.floats(100.0, 200_000.0))
                rows.append((ticker, _bar(t, price, new, volume, wick=abs(step) / 2)))
            price = new
    raw = pl.concat([parsers.parse_aggregates([r], t) for t, r in rows])
    return process_minute_bars(raw, DAY).frame


def _bar(t: dt.datetime, open_: float, close: float, volume: float, wick: float = 0.0) -> dict:
    high = max(open_, close) * (1.0 + wick)
    low = min(open_, close) * (1.0 - wick)
    return {
        "t": int(t.timestamp() * 1000),
        "o": open_,
        "h": high,
        "l": low,
        "c": close,
        "v": volume,
    }


def _inputs(bars: pl.DataFrame, news: pl.DataFrame) -> features.FeatureInputs:
    tickers = bars.get_column("ticker").unique().sort().to_list()
    n = len(tickers)
    return features.FeatureInputs(
        universe=pl.DataFrame(
            {
                "ticker": tickers,
                "gap_pct": [0.2] * n,
                "primary_exchange": ["XNAS"] * n,
                "shares_outstanding": [1e7] * n,
                "market_cap": [5e7] * n,
            }
        ),
        watchlist=pl.DataFrame(
            {"ticker": tickers, "premarket_volume": [2e4] * n, "premarket_rvol": [3.0] * n}
        ),
        tod_baseline=pl.DataFrame(
            {
                "ticker": [t for t in tickers for _ in range(390)],
                "minutes_since_open": list(range(390)) * n,
                "avg_cum_volume": [1000.0 * (m + 1) for m in range(390)] * n,
            }
        ),
        daily=pl.DataFrame(
            {
                "ticker": tickers,
                "atr_pct_14": [0.08] * n,
                "ret_1d": [0.0] * n,
                "ret_5d": [0.0] * n,
                "ret_20d": [0.0] * n,
                "avg_volume_20d": [1e6] * n,
            }
        ),
        fundamentals=pl.DataFrame(
            schema={
                "ticker": pl.String(),
                "shares_change_pct": pl.Float64(),
                "cash_burn_quarterly": pl.Float64(),
                "months_of_runway": pl.Float64(),
                "revenue_growth_qoq": pl.Float64(),
                "revenue_growth_yoy": pl.Float64(),
            }
        ),
        corporate=pl.DataFrame(
            schema={
                "ticker": pl.String(),
                "days_since_reverse_split": pl.Int64(),
                "split_count_12m": pl.Int64(),
            }
        ),
        news=news,
        details=pl.DataFrame({"ticker": tickers, "sic_code": ["2834"] * n}),
    )


def _news(minutes: list[int], tone: list[str]) -> pl.DataFrame:
    rows = [
        {
            "id": str(i),
            "published_utc": (OPEN + dt.timedelta(minutes=m)).isoformat(),
            "title": "Announces registered direct offering" if i % 2 else "FDA clears device",
            "tickers": ["AAA" if i % 3 else "BBB"],
            "insights": [{"ticker": "AAA" if i % 3 else "BBB", "sentiment": tone[i % len(tone)]}],
        }
        for i, m in enumerate(minutes)
    ]
    return parsers.parse_news(rows)


@given(
    bars=minute_paths(),
    news_minutes=st.lists(st.integers(-5000, 400), max_size=10),
    tone=st.lists(st.sampled_from(["positive", "neutral", "negative"]), min_size=1),
    scale=st.floats(0.3, 3.0),
    data=st.data(),
)
def test_perturbing_data_after_an_event_leaves_its_features_unchanged(
    bars: pl.DataFrame,
    news_minutes: list[int],
    tone: list[str],
    scale: float,
    data: st.DataObject,
) -> None:
    news = _news(news_minutes, tone)
    found = detect_events(bars, DAY)
    if found.is_empty():
        return
    event = found.row(data.draw(st.integers(0, found.height - 1)), named=True)
    cut = event["ts"]
    later = pl.col("ts") >= cut
    # Every bar starting at or after the event: prices scaled, volumes reshuffled, some dropped.
    perturbed = bars.with_columns(
        *(
            pl.when(later).then(pl.col(c) * scale).otherwise(pl.col(c))
            for c in ("open", "high", "low", "close", "vwap")
        ),
        volume=pl.when(later)
        .then(pl.col("volume") * (scale**2) + 17.0)
        .otherwise(pl.col("volume")),
    ).filter(~(later & (pl.int_range(pl.len()) % 3 == 0)))
    later_news = pl.col("published_utc") > cut.astimezone(dt.UTC)
    perturbed_news = pl.concat(
        [
            news.filter(~later_news),
            _news([400, 401], ["negative"]).with_columns(id=pl.lit("late") + pl.col("id")),
        ]
    )
    keys = {"ticker": event["ticker"], "ts": event["ts"], "pattern": event["pattern"]}
    one = found.filter(
        (pl.col("ticker") == keys["ticker"])
        & (pl.col("ts") == keys["ts"])
        & (pl.col("pattern") == keys["pattern"])
    )
    before = features.event_features(one, bars, _inputs(bars, news))
    after = features.event_features(one, perturbed, _inputs(perturbed, perturbed_news))
    assert before.equals(after), (before.to_dicts(), after.to_dicts())
    assert (before.get_column("last_bar_ts") < before.get_column("ts")).all()


@given(bars=minute_paths(), data=st.data())
def test_fast_labeller_equals_the_per_event_loop(bars: pl.DataFrame, data: st.DataObject) -> None:
    found = detect_events(bars, DAY)
    # Plus events at arbitrary minutes: before the first bar, inside holes, near the close.
    extra_minutes = data.draw(st.lists(st.integers(-5, 395), max_size=6, unique=True))
    extra = pl.DataFrame(
        {
            "date": [DAY] * len(extra_minutes),
            "ticker": ["AAA"] * len(extra_minutes),
            "ts": [(OPEN + dt.timedelta(minutes=m)).astimezone(dt.UTC) for m in extra_minutes],
            "pattern": data.draw(
                st.lists(
                    st.sampled_from(PATTERNS),
                    min_size=len(extra_minutes),
                    max_size=len(extra_minutes),
                )
            ),
        },
        schema={
            "date": pl.Date(),
            "ticker": pl.String(),
            "ts": pl.Datetime("ms", "UTC"),
            "pattern": pl.String(),
        },
    )
    events = pl.concat([found.select(extra.columns), extra]).unique(
        subset=["ticker", "ts", "pattern"], maintain_order=True
    )
    rules = labels.BarrierRules(
        take_profit=data.draw(st.sampled_from([0.02, 0.05, 0.15])),
        stop=data.draw(st.sampled_from([0.02, 0.05, 0.10])),
        timeout_minutes=data.draw(st.sampled_from([5, 15])),
    )
    fast = labels.label_events(events, bars, DAY, rules)
    slow = labels.label_events_reference(events, bars, DAY, rules)
    assert fast.equals(slow)


LONG_PATTERN = next(p for p, d in DIRECTION.items() if d == "long")
SHORT_PATTERN = next(p for p, d in DIRECTION.items() if d == "short")


@st.composite
def cent_paths(draw: st.DrawFn) -> tuple[list[float], list[float], list[float], list[float]]:
    """Opens, highs, lows and closes in whole cents; the 09:31 bar (the entry) opens at 10.00,
    later bars may gap. Barriers are set on half cents, so no price ties a barrier."""
    n = draw(st.integers(3, 25))
    opens: list[float] = []
    closes: list[float] = []
    highs: list[float] = []
    lows: list[float] = []
    previous = 1000
    for i in range(n):
        gap = draw(st.integers(-150, 150)) if draw(st.booleans()) else 0
        o = 1000 if i == 1 else min(1800, max(200, previous + gap))
        c = min(1800, max(200, o + draw(st.integers(-120, 120))))
        h = max(o, c) + draw(st.integers(0, 80))
        lo = max(150, min(o, c) - draw(st.integers(0, 80)))
        opens.append(o / 100)
        closes.append(c / 100)
        highs.append(h / 100)
        lows.append(lo / 100)
        previous = c
    return opens, highs, lows, closes


@given(path=cent_paths(), holes=st.sets(st.integers(2, 24), max_size=6))
def test_a_short_on_the_mirrored_path_has_the_longs_outcome(
    path: tuple[list[float], list[float], list[float], list[float]], holes: set[int]
) -> None:
    opens, highs, lows, closes = path
    entry = 10.0

    def mirror(values: list[float]) -> list[float | None]:
        return [round(2 * entry - v, 2) for v in values]

    rules = labels.BarrierRules(take_profit=0.0525, stop=0.0375, timeout_minutes=15)
    skip = {i for i in holes if i < len(closes)}
    up = bars_from(closes, opens=list(opens), highs=list(highs), lows=list(lows), skip=skip)
    down = bars_from(
        mirror(closes),  # type: ignore[arg-type]
        opens=mirror(opens),
        highs=mirror(lows),
        lows=mirror(highs),
        skip=skip,
    )
    ts = dt.datetime.combine(DAY, dt.time(9, 31), tzinfo=NY).astimezone(dt.UTC)

    def event(pattern: str) -> pl.DataFrame:
        return pl.DataFrame(
            {"date": [DAY], "ticker": ["AAA"], "ts": [ts], "pattern": [pattern]},
            schema={
                "date": pl.Date(),
                "ticker": pl.String(),
                "ts": pl.Datetime("ms", "UTC"),
                "pattern": pl.String(),
            },
        )

    long_ = labels.label_events(event(LONG_PATTERN), up, DAY, rules)
    short = labels.label_events(event(SHORT_PATTERN), down, DAY, rules)
    assert short.equals(labels.label_events_reference(event(SHORT_PATTERN), down, DAY, rules))
    a, b = long_.row(0, named=True), short.row(0, named=True)
    assert a["entry_price"] == b["entry_price"] == entry
    for same in ("exit_reason", "exit_ts", "entry_ts", "label", "path_complete"):
        assert a[same] == b[same], (same, a, b)
    assert b["exit_price"] == pytest.approx(2 * entry - a["exit_price"])
    for signed in ("ret", "fwd_ret_5m", "fwd_ret_15m"):
        assert b[signed] == pytest.approx(a[signed], abs=1e-12), (signed, a, b)
