"""Market-realism facts on hand-built markets: every fact inside its range on a realistic one, and
each fact pushed out of its range by the input that should push it out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from smallcaps_assets.core import realism
from smallcaps_assets.core.realism import (
    REAL_RANGES,
    MarketRealismModel,
    Population,
    SampleMinimums,
    facts_markdown,
    facts_text,
    histograms,
    measure_realism,
    realism_samples,
)
from smallcaps_assets.core.validation import validate_schema
from smallcaps_assets_tests.realism_fixtures import HandBuiltMarket, Knobs, build_market

RANGED = [key for key, spec in REAL_RANGES.items() if spec.low is not None]


def measure(knobs: Knobs | None = None, **changes: object) -> realism.RealismReport:
    market = build_market(dataclasses.replace(knobs or Knobs(), **changes))  # type: ignore[arg-type]
    return measure_realism(market.daily, market.minutes)


def status(report: realism.RealismReport, key: str) -> str:
    value: str = report.facts.filter(pl.col("key") == key).get_column("status").item()
    return value


@pytest.fixture(scope="module")
def market() -> HandBuiltMarket:
    return build_market()


@pytest.fixture(scope="module")
def baseline(market: HandBuiltMarket) -> realism.RealismReport:
    return measure_realism(market.daily, market.minutes)


# -- the realistic hand-built market ----------------------------------------------------------
def test_every_ranged_fact_is_inside_on_the_hand_built_market(baseline):
    facts = baseline.facts.filter(pl.col("key").is_in(RANGED))
    assert facts.get_column("status").to_list() == ["inside"] * len(RANGED), facts
    assert facts.get_column("inside").to_list() == [True] * len(RANGED)
    assert baseline.outside == []
    assert baseline.insufficient == []


def test_rows_cover_every_fact_then_the_sample_sizes_in_the_schema(baseline):
    assert baseline.facts.schema == realism.REALISM_FACTS_SCHEMA
    keys = baseline.facts.get_column("key").to_list()
    assert keys == [*REAL_RANGES, *(p.value for p in Population)]
    counts = {p: baseline.samples.count(p) for p in Population}
    for population, count in counts.items():
        assert baseline.value(population.value) == count
    assert counts[Population.GAP_DAYS] == counts[Population.GAP_DAYS_WITH_MINUTES] > 100


def test_values_match_what_was_planted(market, baseline):
    # A planted gap day whose previous close left the price band is not in the sample.
    planted = market.gap_days.join(
        baseline.samples.gap_days.select("ticker", "date"), on=["ticker", "date"], how="semi"
    )
    assert planted.height >= market.gap_days.height - 5
    assert baseline.value("gap_day_first30_volume_share") == pytest.approx(0.25)
    assert baseline.value("gap_day_premarket_volume_share") == pytest.approx(0.05)
    assert baseline.value("gap_day_median_hod_minute") == planted.get_column("hod_minute").median()
    assert baseline.value("gap_day_share_hod_first30") == pytest.approx(
        (planted.get_column("hod_minute") < 30).mean()
    )
    assert baseline.value("gap_day_halts_per_day") == pytest.approx(
        planted.get_column("halts").mean()
    )
    assert status(baseline, "gap_day_halts_per_day") == "report"
    sample = baseline.samples.ticker_days
    assert baseline.value("p_gap10") == pytest.approx(planted.height / sample.height)


def test_kurtosis_and_std_agree_with_scipy(baseline):
    stats = pytest.importorskip("scipy.stats")
    returns = baseline.samples.ticker_days.get_column("log_return").to_numpy()
    kept = returns[np.abs(returns) < math.log(3)]
    assert baseline.value("return_std") == pytest.approx(np.std(kept, ddof=1))
    assert baseline.value("return_excess_kurtosis") == pytest.approx(
        stats.kurtosis(kept, fisher=True, bias=True)
    )


# -- one wrong market per fact --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "keys"),
    [
        pytest.param({"gap_rate": 0.03}, ["p_gap10", "p_gap20"], id="gaps-six-times-too-often"),
        pytest.param({"gap_rate": 0.0008}, ["p_gap10"], id="gaps-too-rare"),
        pytest.param({"gap_scale": 0.5}, ["p_gap20", "gap_day_median_gap"], id="gaps-far-too-big"),
        pytest.param({"return_scale": 3.0}, ["return_std"], id="daily-volatility-tripled"),
        pytest.param({"jump_share": 0.0}, ["return_excess_kurtosis"], id="no-fat-tails"),
        pytest.param({"price_median": 4.0}, ["median_previous_close"], id="prices-too-low"),
        pytest.param(
            {"gap_day_drift": 0.5},
            [
                "gap_day_share_close_above_open",
                "gap_day_median_open_to_close",
                "gap_day_median_high_over_open",
            ],
            id="planted-50pct-drift-on-gap-days",
        ),
        pytest.param(
            {"gap_day_drift": 0.04},
            ["gap_day_share_close_above_open", "gap_day_median_open_to_close"],
            id="gappers-that-do-not-fade",
        ),
        pytest.param(
            {"excursion_scale": 0.0, "gap_day_drift": -0.02},
            ["gap_day_median_high_over_open"],
            id="no-excursion-past-the-open",
        ),
        pytest.param(
            {"first30_share": 30 / 390}, ["gap_day_first30_volume_share"], id="flat-volume"
        ),
        pytest.param(
            {"premarket_share": 0.3}, ["gap_day_premarket_volume_share"], id="premarket-heavy"
        ),
        pytest.param(
            {"hod_minutes": (389,)},
            ["gap_day_median_hod_minute", "gap_day_share_hod_first30"],
            id="high-of-day-at-the-close",
        ),
        pytest.param(
            {"hod_minutes": (0,)}, ["gap_day_share_hod_first30"], id="high-of-day-always-at-open"
        ),
    ],
)
def test_a_wrong_market_moves_the_fact_out_of_range(changes, keys):
    report = measure(**changes)
    for key in keys:
        assert status(report, key) == "outside", (key, report.value(key))
    assert set(report.outside) >= set(keys)


def test_a_planted_drift_moves_open_to_close_by_the_drift(baseline):
    drifted = measure(gap_day_drift=0.5)
    # Not exactly +0.5: the drifted closes move later prices, so a few names change band.
    assert drifted.value("gap_day_median_open_to_close") == pytest.approx(
        baseline.value("gap_day_median_open_to_close") + 0.5, abs=0.005
    )
    assert drifted.value("p_gap10") == pytest.approx(baseline.value("p_gap10"), rel=0.05)


# -- the sample and the previous close ------------------------------------------------------------
def bars(rows: list[tuple[str, str, float, float, float, float, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "ticker": pl.String,
            "date": pl.String,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
            "split_factor_to_d": pl.Float64,
        },
        orient="row",
    ).with_columns(pl.col("date").str.to_date())


def test_the_sample_filters_price_band_range_and_dollar_volume():
    frame = bars(
        [
            # 2024-03-01 (Fri) then 2024-03-04 (Mon): one previous session apart.
            ("IN", "2024-03-01", 5, 5.2, 4.9, 5, 1e6, 1),
            ("IN", "2024-03-04", 5.6, 5.8, 5.4, 5.5, 1e6, 1),
            ("CHEAP", "2024-03-01", 0.4, 0.41, 0.39, 0.4, 1e7, 1),
            ("CHEAP", "2024-03-04", 0.5, 0.55, 0.45, 0.5, 1e7, 1),
            ("DEAR", "2024-03-01", 25, 26, 24, 25, 1e6, 1),
            ("DEAR", "2024-03-04", 25, 26, 24, 25, 1e6, 1),
            ("FLAT", "2024-03-01", 5, 5.1, 4.9, 5, 1e6, 1),
            ("FLAT", "2024-03-04", 5, 5, 5, 5, 1e6, 1),
            ("THIN", "2024-03-01", 5, 5.1, 4.9, 5, 1e6, 1),
            ("THIN", "2024-03-04", 5, 5.1, 4.9, 5, 19_999, 1),
        ]
    )
    sample = realism_samples(frame).ticker_days
    assert sample.select("ticker", "date").rows() == [("IN", dt.date(2024, 3, 4))]
    row = sample.row(0, named=True)
    assert row["previous_close"] == 5
    assert row["gap"] == pytest.approx(0.12)
    assert row["log_return"] == pytest.approx(math.log(1.1))
    assert realism_samples(frame).gap_days.get_column("ticker").to_list() == ["IN"]


def test_a_bar_after_a_missing_session_has_no_previous_close():
    # 2024-03-05 is absent: the 03-06 bar must not be compared with 03-04's close.
    frame = bars(
        [
            ("GAPPY", "2024-03-04", 5, 5.1, 4.9, 5, 1e6, 1),
            ("GAPPY", "2024-03-06", 6, 6.1, 5.9, 6, 1e6, 1),
        ]
    )
    assert realism_samples(frame).ticker_days.is_empty()


def test_a_recorded_split_is_not_a_return_and_an_unrecorded_one_is():
    before = ("RS", "2024-03-01", 1.0, 1.05, 0.95, 1.0, 1e6, 1.0)
    # 1-for-10 reverse split on 03-04: prices x10, I(D) = split_from / split_to = 10.
    recorded = bars([before, ("RS", "2024-03-04", 10.2, 10.6, 9.9, 10.4, 1e5, 10.0)])
    unrecorded = bars([before, ("RS", "2024-03-04", 10.2, 10.6, 9.9, 10.4, 1e5, 1.0)])
    good = realism_samples(recorded).ticker_days.row(0, named=True)
    assert good["previous_close"] == pytest.approx(10.0)
    assert good["gap"] == pytest.approx(0.02)
    assert good["log_return"] == pytest.approx(math.log(1.04))
    bad = realism_samples(unrecorded)
    assert bad.ticker_days.row(0, named=True)["gap"] == pytest.approx(9.2)
    assert bad.gap_days.height == 1  # a 920 % "gap": what the split index is there to prevent


def test_missing_columns_are_named():
    frame = bars([("A", "2024-03-01", 1, 1, 1, 1, 1, 1)]).drop("split_factor_to_d")
    with pytest.raises(ValueError, match="split_factor_to_d"):
        realism_samples(frame)
    market = build_market(Knobs(tickers=20))
    with pytest.raises(ValueError, match="session"):
        realism_samples(market.daily, market.minutes.drop("session"))


def test_minute_bars_of_other_days_and_empty_regular_sessions_are_ignored(market):
    other = market.minutes.with_columns(pl.col("ticker") + "X")
    samples = realism_samples(market.daily, pl.concat([market.minutes, other]))
    assert samples.gap_day_minutes.height == samples.gap_days.height
    assert samples.gap_day_minutes.get_column("ticker").str.ends_with("X").sum() == 0
    premarket_only = market.minutes.filter(pl.col("session") == "pre")
    assert realism_samples(market.daily, premarket_only).gap_day_minutes.is_empty()


def test_without_halt_column_halts_are_unknown(market):
    samples = realism_samples(market.daily, market.minutes.drop("halt_resumption"))
    facts = realism.realism_facts(samples)
    halts = facts.filter(pl.col("key") == "gap_day_halts_per_day").row(0, named=True)
    assert halts["value"] is None
    assert halts["n"] == 0


# -- too little data --------------------------------------------------------------------------------
def test_facts_with_too_few_observations_are_insufficient_not_judged():
    report = measure(tickers=20, first=dt.date(2024, 3, 1), last=dt.date(2024, 3, 28))
    assert report.samples.count(Population.GAP_DAYS) < 30
    gap_facts = [k for k in RANGED if REAL_RANGES[k].population is not Population.TICKER_DAYS]
    for key in gap_facts:
        assert status(report, key) == "insufficient", key
    assert report.facts.filter(pl.col("status") == "insufficient").get_column(
        "inside"
    ).null_count() == len(report.insufficient)


def test_no_minute_bars_leaves_intraday_facts_insufficient(market):
    report = measure_realism(market.daily)
    intraday = [
        k for k, s in REAL_RANGES.items() if s.population is Population.GAP_DAYS_WITH_MINUTES
    ]
    for key in intraday:
        assert status(report, key) in {"insufficient", "report"}, key
    assert report.facts.filter(pl.col("key").is_in(intraday)).get_column("n").sum() == 0


def test_minimums_are_configurable(market):
    lenient = measure_realism(market.daily, market.minutes, minimums=SampleMinimums(1, 1, 1))
    strict = measure_realism(
        market.daily, market.minutes, minimums=SampleMinimums(10**9, 10**9, 10**9)
    )
    assert lenient.insufficient == []
    assert set(strict.insufficient) == set(RANGED)


def test_an_empty_input_reports_nothing_and_judges_nothing():
    empty = bars([])
    report = measure_realism(empty)
    assert report.outside == []
    assert report.first_day is None
    assert set(report.insufficient) == set(RANGED)


# -- outputs: histograms, tables, stored schema -----------------------------------------------
def test_histograms_count_every_observation(baseline):
    found = {h.key: h for h in histograms(baseline.samples)}
    assert set(found) == {"gap_sizes", "gap_day_open_to_close", "hod_minute"}
    gap_days = baseline.samples.count(Population.GAP_DAYS)
    assert found["gap_sizes"].n == int(found["gap_sizes"].counts.sum()) == gap_days
    assert found["gap_day_open_to_close"].counts.sum() == gap_days
    assert found["hod_minute"].median == baseline.value("gap_day_median_hod_minute")
    assert found["gap_sizes"].real_low == REAL_RANGES["gap_day_median_gap"].low


def test_tables_show_value_range_verdict_and_source():
    report = measure(gap_day_drift=0.5)
    text = facts_text(report.facts)
    markdown = facts_markdown(report.facts)
    assert "outside" in text
    assert "-3.90% to -3.00%" in text
    assert "**46." in markdown  # the drifted open->close, in bold
    assert realism.REAL_RANGES_SOURCE in markdown
    assert "loose prior" in markdown
    for line in text.splitlines()[2:]:
        assert line.split()[-1].replace(",", "").isdigit(), line


def test_stored_frame_passes_its_model_and_a_tampered_verdict_fails(baseline):
    stored = baseline.facts.with_columns(month=pl.lit(dt.date(2024, 1, 1))).select(
        realism.MARKET_REALISM_SCHEMA.names()
    )
    assert stored.schema == realism.MARKET_REALISM_SCHEMA
    assert validate_schema(MarketRealismModel, stored).passed
    lying = stored.with_columns(
        inside=pl.when(pl.col("key") == "p_gap10").then(False).otherwise(pl.col("inside"))
    )
    report = validate_schema(MarketRealismModel, lying)
    assert not report.passed
    assert any("verdict_matches_range" in check for check in report.by_check)
