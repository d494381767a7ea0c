"""The daily graph through Dagster on REAL bars, served by the local-files source.

The fixtures are read in place from ``../shared/fixtures/real_bars/`` (beside the project; never
copied into it): each data set is a tmp folder of symlinks named by ticker plus a small
``tickers.csv``, and ``SMALLCAPS_LOCAL_BARS`` points at it. Raw -> processed minute bars ->
watchlist -> events -> labels are materialized with the code location's own asset definitions.

What the real data says is recomputed here independently, straight from the vendor files (the
JSON and the CSV), and compared with what the graph stored: the gap, the premarket volume and its
RVOL, the session tags, bar counts, the cumulative volume and price each event saw.

Also here: the refusals (a data root holds one source) and bad files failing a raw run before any
partition is written.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from smallcaps_assets import settings
from smallcaps_assets.core import calendar, minute, universe
from smallcaps_assets.core.events import DIRECTION
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.definitions import defs
from smallcaps_assets.defs.resources import (
    DataStoreResource,
    MarketDataResource,
    ResearchSettingsResource,
    SourceMismatchError,
    UniverseRulesResource,
    simulator_settings,
)
from smallcaps_assets.sources.local import LocalBars, LocalBarsError

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_BARS = REPO_ROOT.parent / "shared" / "fixtures" / "real_bars"
ALPHA_VANTAGE = REAL_BARS / "alphavantage_2025-05"
AV_TICKERS = ("GRI", "WOLF", "AMC", "BTBT", "BAER")
YF_TICKERS = ("GME", "AMC")

# The daily graph as the code location defines it (models, backtests and catalogs need
# resources this test does not provide and are not part of what is proven here).
DAILY_GRAPH = [
    a for a in defs.assets if a.key.path[0] in ("raw", "processed", "features", "labels")
]
RAW_KEYS = [
    dg.AssetKey(["raw", n])
    for n in (
        "tickers",
        "daily_bars",
        "ticker_details",
        "splits",
        "dividends",
        "financials",
        "news",
    )
]
REST_KEYS = [
    *(
        dg.AssetKey(["processed", n])
        for n in (
            "daily_bars",
            "corporate_actions",
            "fundamentals",
            "news_daily",
            "universe",
            "minute_bars",
            "watchlist",
        )
    ),
    dg.AssetKey(["raw", "minute_bars"]),
    dg.AssetKey(["features", "events"]),
    dg.AssetKey(["labels", "events"]),
]
NY = "America/New_York"

# The reference values below are THIS TEST'S DECLARATION, not vendor data: the fixtures carry bars
# only. Exchanges are the real listings; share counts are round figures of the right size, chosen
# so that GRI and BAER pass the default < 100M shares screen and WOLF, AMC and BTBT do not.
AV_TICKERS_CSV = """ticker,type,primary_exchange,shares_outstanding,name
GRI,CS,XNAS,3000000,GRI Bio
BAER,CS,XNAS,54000000,Bridger Aerospace
BTBT,CS,XNAS,200000000,Bit Digital
WOLF,CS,XNYS,156000000,Wolfspeed
AMC,CS,XNYS,430000000,AMC Entertainment
"""
# Also the test's declaration (roughly the 2022 share counts).
YF_TICKERS_CSV = """ticker,type,primary_exchange,shares_outstanding
GME,CS,XNYS,76000000
AMC,CS,XNYS,516000000
"""


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(
            f"real-bar fixtures not found at {path} (../shared/fixtures/real_bars beside the "
            "project); these tests read them in place"
        )


def _range_tags(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def _resources(root: Path, rules: UniverseRulesResource) -> dict[str, Any]:
    return {
        "market": MarketDataResource(),
        "data": DataStoreResource(root=str(root)),
        "universe_rules": rules,
        "research": ResearchSettingsResource(),
    }


def _materialize(
    root: Path, keys: list[dg.AssetKey], start: str, end: str, rules: UniverseRulesResource
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        DAILY_GRAPH,
        resources=_resources(root, rules),
        selection=keys,
        tags=_range_tags(start, end),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


@dataclass(frozen=True)
class Month:
    bars: Path  # the folder SMALLCAPS_LOCAL_BARS names
    root: Path  # the data root
    runs: list[dg.ExecuteInProcessResult]

    @property
    def store(self) -> DataStore:
        return DataStore(str(self.root))

    def read(self, layer: str, dataset: str, day: str) -> pl.DataFrame:
        return self.store.read(layer, dataset, day)


def _build_month(
    base: Path,
    links: dict[str, Path],
    tickers_csv: str,
    sessions: list[dt.date],
    rules: UniverseRulesResource,
) -> Month:
    bars = base / "bars"
    (bars / "minute").mkdir(parents=True)
    for name, target in links.items():
        os.symlink(target, bars / "minute" / name)
    (bars / "tickers.csv").write_text(tickers_csv)
    root = base / "data"
    first, second, last = (d.isoformat() for d in (sessions[0], sessions[1], sessions[-1]))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("POLYGON_API_KEY", raising=False)
        mp.delenv(settings.LOCAL_TIMEZONE_ENV, raising=False)
        mp.setenv(settings.LOCAL_BARS_ENV, str(bars))
        runs = [
            _materialize(root, RAW_KEYS, first, last, rules),
            # The first session has no previous session's bars in the files, so it gets raw data
            # and processed daily bars (the next session's prior close and SSR state) only.
            _materialize(root, [dg.AssetKey(["processed", "daily_bars"])], first, first, rules),
            _materialize(root, REST_KEYS, second, last, rules),
        ]
    return Month(bars, root, runs)


def _assert_every_run_and_check_passed(month: Month) -> None:
    for run in month.runs:
        failures = [e for e in run.all_events if e.is_step_failure]
        assert run.success, [f.step_failure_data.error.to_string() for f in failures]
        evaluations = run.get_asset_check_evaluations()
        assert evaluations
        failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed]
        assert not failed, failed


def _check_names(month: Month) -> set[tuple[str, str]]:
    return {
        (e.asset_key.to_user_string(), e.check_name)
        for run in month.runs
        for e in run.get_asset_check_evaluations()
    }


# -- the vendor files, read independently of the source under test ------------------------------
def alpha_vantage_bars(ticker: str) -> pl.DataFrame:
    """``ts_et`` (naive New York bar start), o/h/l/c/v straight from the Alpha Vantage JSON."""
    payload = json.loads(gzip.decompress((ALPHA_VANTAGE / _av_file(ticker)).read_bytes()))
    assert payload["Meta Data"]["6. Time Zone"] == "US/Eastern"
    series = payload["Time Series (1min)"]
    return (
        pl.DataFrame(
            {
                "ts_et": [dt.datetime.fromisoformat(k) for k in series],
                **{
                    name: [float(v[field]) for v in series.values()]
                    for name, field in (
                        ("o", "1. open"),
                        ("h", "2. high"),
                        ("l", "3. low"),
                        ("c", "4. close"),
                        ("v", "5. volume"),
                    )
                },
            }
        )
        .with_columns(date=pl.col("ts_et").dt.date(), clock=pl.col("ts_et").dt.time())
        .sort("ts_et")
    )


def yfinance_bars(ticker: str) -> pl.DataFrame:
    frame = pl.read_csv(REAL_BARS / _yf_file(ticker), infer_schema=False)
    stamp = pl.col("Datetime").str.to_datetime("%Y-%m-%d %H:%M:%S%z", time_unit="ms")
    return (
        frame.select(
            ts_et=stamp.dt.convert_time_zone(NY).dt.replace_time_zone(None),
            o=pl.col("Open").cast(pl.Float64),
            c=pl.col("Close").cast(pl.Float64),
            v=pl.col("Volume").cast(pl.Float64),
        )
        .with_columns(date=pl.col("ts_et").dt.date(), clock=pl.col("ts_et").dt.time())
        .sort("ts_et")
    )


def _av_file(ticker: str) -> str:
    return f"{ticker}_2025-05_alphavantage_raw.json.gz"


def _yf_file(ticker: str) -> str:
    return f"yfinance_1m_{ticker}_2022-03-14_2022-04-18.csv"


PRE = pl.col("clock") < dt.time(9, 30)
REGULAR = (pl.col("clock") >= dt.time(9, 30)) & (pl.col("clock") < dt.time(16))


def session_tag(clock: dt.time) -> str:
    if clock < dt.time(9, 30):
        return "pre"
    return "regular" if clock < dt.time(16) else "post"


def gap(bars: pl.DataFrame, day: dt.date) -> float:
    """D's first regular open over D-1's last regular close, minus one (no split in between)."""
    regular = bars.filter(REGULAR)
    previous = calendar.previous_session(day)
    today_open = regular.filter(pl.col("date") == day).get_column("o")[0]
    yesterday_close = regular.filter(pl.col("date") == previous).get_column("c")[-1]
    return float(today_open / yesterday_close - 1.0)


def premarket_volume(bars: pl.DataFrame, day: dt.date) -> float:
    return float(bars.filter((pl.col("date") == day) & PRE).get_column("v").sum())


# -- the Alpha Vantage month (real premarket volume) -----------------------------------------------
MAY_2025 = calendar.sessions(dt.date(2025, 5, 1), dt.date(2025, 5, 30))
GRI_DAY = dt.date(2025, 5, 12)
WOLF_DAY = dt.date(2025, 5, 21)


@pytest.fixture(scope="module")
def may(tmp_path_factory: pytest.TempPathFactory) -> Month:
    _need(ALPHA_VANTAGE)
    links = {f"{t}.json.gz": ALPHA_VANTAGE / _av_file(t) for t in AV_TICKERS}
    # Default screen: $0.50-$20, market cap < $2B, shares < 100M. Five declared names of which
    # the screen keeps two, inside the default 5-95 % universe share bounds.
    return _build_month(
        tmp_path_factory.mktemp("alpha_vantage"),
        links,
        AV_TICKERS_CSV,
        MAY_2025,
        UniverseRulesResource(),
    )


def test_may_every_partition_is_built_and_every_blocking_check_passes(may: Month) -> None:
    _assert_every_run_and_check_passed(may)
    names = _check_names(may)
    for asset in ("raw/minute_bars", "processed/minute_bars", "features/events", "labels/events"):
        assert (asset, "schema") in names
    assert ("features/events", "point_in_time") in names
    assert ("labels/events", "point_in_time") in names
    assert ("labels/events", "labels_cover_events") in names
    sessions = [d.isoformat() for d in MAY_2025]
    assert may.store.partitions("raw", "daily_bars") == sessions
    assert may.store.partitions("labels", "events") == sessions[1:]
    source = json.loads((may.root / "source.json").read_text())
    assert source == {
        "source": "local",
        "local": {"path": str(may.bars.resolve()), "timezone": "America/New_York"},
    }
    # Every raw materialization says where its data came from.
    labels = {
        e.materialization.metadata["source"].value
        for e in may.runs[0].get_asset_materialization_events()
    }
    assert labels == {f"local({may.bars.resolve()})"}


def test_gri_gap_up_is_the_months_only_candidate(may: Month) -> None:
    gri = alpha_vantage_bars("GRI")
    expected_gap = gap(gri, GRI_DAY)
    assert expected_gap == pytest.approx(0.1103, abs=5e-4)  # +11.0 %, as the fixture notes say
    members = may.read("processed", "universe", GRI_DAY.isoformat())
    row = members.filter(pl.col("ticker") == "GRI").row(0, named=True)
    assert row["is_candidate"]
    assert row["gap_pct"] == pytest.approx(expected_gap, rel=1e-9)
    assert row["shares_outstanding"] == 3_000_000
    # Only GRI and BAER pass the shares screen; across the month GRI 2025-05-12 is the one
    # screened open >= 10 % above the previous close (BAER's best is +8.3 % on 05-22).
    candidates = {
        (day.isoformat(), ticker)
        for day in MAY_2025[1:]
        for ticker in may.read("processed", "universe", day.isoformat())
        .filter(pl.col("is_candidate"))
        .get_column("ticker")
    }
    assert candidates == {("2025-05-12", "GRI")}
    for day in MAY_2025[1:]:
        assert set(may.read("processed", "universe", day.isoformat())["ticker"]) == {
            "BAER",
            "GRI",
        }


def test_gri_premarket_volume_and_rvol_come_from_its_real_premarket_bars(may: Month) -> None:
    gri = alpha_vantage_bars("GRI")
    volume = premarket_volume(gri, GRI_DAY)
    assert volume == 6_647.0
    # The RVOL baseline is the 20 sessions before D, but the files start on 2025-05-01: GRI has
    # 7 earlier sessions. core.minute.trailing_premarket_volume averages over the sessions it
    # observed (unknown sessions are not zeros), so the baseline is the mean of those 7.
    earlier = [d for d in MAY_2025 if d < GRI_DAY]
    assert len(earlier) == 7
    baseline = sum(premarket_volume(gri, d) for d in earlier) / len(earlier)
    assert baseline == pytest.approx(49_317.43, abs=0.01)
    watch = may.read("processed", "watchlist", GRI_DAY.isoformat()).row(0, named=True)
    assert watch["ticker"] == "GRI"
    assert watch["premarket_volume"] == volume
    assert watch["premarket_bars"] == gri.filter((pl.col("date") == GRI_DAY) & PRE).height == 40
    assert watch["avg_premarket_volume_20d"] == pytest.approx(baseline, rel=1e-12)
    assert watch["premarket_rvol"] == pytest.approx(volume / baseline, rel=1e-12)
    assert watch["premarket_rvol"] == pytest.approx(0.1348, abs=1e-4)
    # Watchlist = premarket volume > 100k and RVOL > 2: a quiet premarket for this gapper.
    assert watch["is_watchlist"] is (volume > 100_000 and volume / baseline > 2) is False
    requests = may.read("raw", "minute_requests", GRI_DAY.isoformat()).row(0, named=True)
    assert (requests["status"], requests["history_sessions"]) == ("ok", 7)
    assert minute.minute_history_sessions(GRI_DAY)[0] == dt.date(2025, 4, 11)


def test_wolf_crash_is_no_candidate(may: Month) -> None:
    wolf = alpha_vantage_bars("WOLF")
    expected = gap(wolf, WOLF_DAY)
    assert expected == pytest.approx(-0.6364, abs=5e-4)
    raw_today = may.read("raw", "daily_bars", WOLF_DAY.isoformat()).filter(
        pl.col("ticker") == "WOLF"
    )
    raw_before = may.read("raw", "daily_bars", "2025-05-20").filter(pl.col("ticker") == "WOLF")
    assert raw_today["open"][0] / raw_before["close"][0] - 1.0 == pytest.approx(expected, rel=1e-9)
    members = may.read("processed", "universe", WOLF_DAY.isoformat())
    assert "WOLF" not in set(members["ticker"])  # 156M declared shares: outside the screen
    # With the size caps lifted, the same stored raw partitions make WOLF a member whose gap is
    # the crash, and a gap down is never a candidate.
    store = may.store
    relaxed = universe.build_universe(
        store.read("raw", "tickers", WOLF_DAY),
        store.read("raw", "ticker_details", WOLF_DAY),
        store.read("raw", "daily_bars", dt.date(2025, 5, 20)),
        store.read("raw", "daily_bars", WOLF_DAY),
        universe.UniverseRules(shares_max=1e12, market_cap_max=1e15),
        WOLF_DAY,
    ).filter(pl.col("ticker") == "WOLF")
    assert relaxed["gap_pct"][0] == pytest.approx(expected, rel=1e-9)
    assert not relaxed["is_candidate"][0]


def test_session_tags_follow_the_timestamps(may: Month) -> None:
    gri = alpha_vantage_bars("GRI").filter(pl.col("date") == GRI_DAY)
    stored = may.read("processed", "minute_bars", GRI_DAY.isoformat())
    assert stored.height == gri.height == 165
    tagged = stored.select(clock=pl.col("ts_et").dt.time(), session="session").sort("clock")
    expected = [session_tag(c) for c in gri["clock"]]
    assert tagged["clock"].to_list() == gri["clock"].to_list()
    assert tagged["session"].to_list() == expected
    counts = dict(stored.group_by("session").len().iter_rows())
    assert counts == {"pre": 40, "regular": 112, "post": 13}


def test_no_bar_is_dropped_between_the_files_and_the_stored_partitions(may: Month) -> None:
    in_files = {t: alpha_vantage_bars(t).height for t in AV_TICKERS}
    assert in_files == {"GRI": 3834, "WOLF": 17860, "AMC": 16826, "BTBT": 12567, "BAER": 2693}
    source = LocalBars(may.bars)
    summary = source.summary()
    assert summary["exact_duplicates_dropped"] == 0  # none in these files (a map cannot repeat)
    assert summary["per_ticker_bars"] == sum(in_files.values())
    # The candidate's request: every bar of its baseline window and of D, in hours.
    gri = alpha_vantage_bars("GRI")
    window = gri.filter(pl.col("date").is_between(dt.date(2025, 4, 11), GRI_DAY))
    raw = may.read("raw", "minute_bars", GRI_DAY.isoformat())
    assert raw.height == window.height == 1_668
    per_day = raw.group_by(date=pl.col("window_start").dt.convert_time_zone(NY).dt.date()).len()
    assert dict(per_day.iter_rows()) == dict(window.group_by("date").len().iter_rows())
    assert raw["volume"].sum() == window["v"].sum()
    # Daily bars: one per ticker and session, each the aggregate of that day's bars.
    for day in MAY_2025:
        daily = may.read("raw", "daily_bars", day.isoformat())
        assert set(daily["ticker"]) == set(AV_TICKERS), day
    wolf = alpha_vantage_bars("WOLF")
    bar = may.read("raw", "daily_bars", WOLF_DAY.isoformat()).filter(pl.col("ticker") == "WOLF")
    wolf_day = wolf.filter(pl.col("date") == WOLF_DAY)
    assert bar["volume"][0] == wolf_day["v"].sum()
    assert bar["high"][0] == wolf_day.filter(REGULAR)["h"].max()
    # The JSON has neither a vwap nor a trade count.
    assert bar["vwap"][0] is None
    assert bar["transactions"][0] is None


def test_events_and_labels_of_the_candidate_use_nothing_after_their_event(may: Month) -> None:
    day = GRI_DAY.isoformat()
    events = may.read("features", "events", day)
    labels = may.read("labels", "events", day)
    assert dict(events.group_by("pattern").len().iter_rows()) == {
        "first_pullback": 1,
        "hod_breakout": 1,
        "vwap_reclaim": 4,
        "vwap_reject": 1,
    }
    assert set(events["ticker"]) == {"GRI"}
    # Only a candidate with bars has events: every other session of the month has none.
    for other in MAY_2025[1:]:
        if other != GRI_DAY:
            assert may.read("features", "events", other.isoformat()).height == 0, other
    gri = alpha_vantage_bars("GRI").filter(pl.col("date") == GRI_DAY)
    regular = gri.filter(REGULAR)
    for event in events.iter_rows(named=True):
        start = event["ts"].astimezone(calendar.NY).replace(tzinfo=None)
        assert event["last_bar_ts"] < event["ts"]
        seen = regular.filter(pl.col("ts_et") < start)
        # The signal bar is the last bar that started before the event; nothing later is used.
        assert event["price"] == seen["c"][-1]
        assert event["cum_volume"] == seen["v"].sum()
        assert event["premarket_volume"] == 6_647.0
        assert event["gap_pct"] == pytest.approx(0.1103, abs=5e-4)
    assert labels.height == events.height == 7
    assert labels["path_complete"].all()
    assert dict(labels.group_by("exit_reason").len().iter_rows()) == {"timeout": 7}
    assert labels["label"].sum() == 2  # two of seven trades exit above their entry
    for label in labels.iter_rows(named=True):
        entry = label["entry_ts"].astimezone(calendar.NY).replace(tzinfo=None)
        assert label["entry_ts"] >= label["ts"]
        # Entry at the open of the first bar starting at or after the event.
        first_after = gri.filter(
            pl.col("ts_et") >= label["ts"].astimezone(calendar.NY).replace(tzinfo=None)
        )
        assert entry == first_after["ts_et"][0]
        assert label["entry_price"] == first_after["o"][0]


# -- the yfinance month (GME/AMC, no extended-hours volume) ------------------------------------------
MARCH_2022 = calendar.sessions(dt.date(2022, 3, 14), dt.date(2022, 4, 18))
GME_DAY = dt.date(2022, 4, 1)
CACHE_GAPS = (dt.date(2022, 3, 21), dt.date(2022, 3, 29), dt.date(2022, 4, 6))


@pytest.fixture(scope="module")
def march(tmp_path_factory: pytest.TempPathFactory) -> Month:
    for ticker in YF_TICKERS:
        _need(REAL_BARS / _yf_file(ticker))
    links = {f"{t}.csv": REAL_BARS / _yf_file(t) for t in YF_TICKERS}
    # GME traded $78-190 and AMC $13-30 with multi-billion market caps, far outside the default
    # small-cap screen ($20 price cap, $2B cap). These are the only real bars with a whole month
    # of sessions, so the screen is widened to let GME through and prove the graph runs on them;
    # AMC stays out on shares (516M declared). A two-name data set is its own universe, and the
    # three sessions after the cache gaps have no previous close at all, so the universe may be
    # empty and may be all of the screenable listings.
    rules = UniverseRulesResource(
        price_max=250.0,
        market_cap_max=50e9,
        min_members=0,
        min_listed_share=0.0,
        max_listed_share=1.0,
    )
    return _build_month(
        tmp_path_factory.mktemp("yfinance"), links, YF_TICKERS_CSV, MARCH_2022, rules
    )


def test_march_every_partition_is_built_and_every_blocking_check_passes(march: Month) -> None:
    _assert_every_run_and_check_passed(march)
    assert march.store.partitions("labels", "events") == [d.isoformat() for d in MARCH_2022[1:]]


def test_gme_gap_up_is_a_candidate_without_premarket_volume(march: Month) -> None:
    gme = yfinance_bars("GME")
    expected = gap(gme, GME_DAY)
    assert expected == pytest.approx(0.1341, abs=5e-4)
    candidates = {
        (day.isoformat(), ticker)
        for day in MARCH_2022[1:]
        for ticker in march.read("processed", "universe", day.isoformat())
        .filter(pl.col("is_candidate"))
        .get_column("ticker")
    }
    assert candidates == {("2022-04-01", "GME")}
    row = march.read("processed", "universe", "2022-04-01").row(0, named=True)
    assert row["gap_pct"] == pytest.approx(expected, rel=1e-9)
    # Yahoo reports no extended-hours volume: the premarket has bars but no volume, the RVOL
    # baseline is zero, so the RVOL is undefined and the candidate is not watchlisted.
    pre = gme.filter((pl.col("date") == GME_DAY) & PRE)
    assert pre.height > 0
    assert pre["v"].sum() == 0
    watch = march.read("processed", "watchlist", "2022-04-01").row(0, named=True)
    assert watch["premarket_volume"] == 0.0
    assert watch["premarket_bars"] == pre.height
    assert watch["avg_premarket_volume_20d"] == 0.0
    assert watch["premarket_rvol"] is None
    assert watch["is_watchlist"] is False


def test_the_cache_gaps_are_kept_not_filled(march: Month) -> None:
    gme = yfinance_bars("GME")
    for day in CACHE_GAPS:
        # Only extended-hours rows that day: no regular session, so no daily bar.
        assert gme.filter((pl.col("date") == day) & REGULAR).height == 0
        assert gme.filter(pl.col("date") == day).height > 0
        assert march.read("raw", "daily_bars", day.isoformat()).height == 0
        # The next session has no previous close: nothing can be screened.
        following = calendar.next_session(day).isoformat()
        assert march.read("processed", "universe", following).height == 0
    assert not calendar.is_session(dt.date(2022, 4, 15))  # Good Friday: no partition at all


def test_gme_events_and_labels(march: Month) -> None:
    events = march.read("features", "events", "2022-04-01")
    labels = march.read("labels", "events", "2022-04-01")
    assert dict(events.group_by("pattern").len().iter_rows()) == {
        "first_pullback": 1,
        "vwap_reject": 3,
    }
    assert (events["premarket_volume"] == 0.0).all()
    assert events["premarket_rvol"].is_null().all()
    assert (events["last_bar_ts"] < events["ts"]).all()
    regular = yfinance_bars("GME").filter((pl.col("date") == GME_DAY) & REGULAR)
    for event in events.iter_rows(named=True):
        seen = regular.filter(
            pl.col("ts_et") < event["ts"].astimezone(calendar.NY).replace(tzinfo=None)
        )
        assert event["cum_volume"] == seen["v"].sum()
        assert event["price"] == pytest.approx(seen["c"][-1], rel=1e-12)
    assert labels.height == 4
    assert dict(labels.group_by("exit_reason").len().iter_rows()) == {"timeout": 4}
    # vwap_reject is traded short: its return is the fall from entry to exit. On this day the
    # long pullback timed out at a loss and the three VWAP rejections timed out below entry.
    for row in labels.iter_rows(named=True):
        sign = 1.0 if DIRECTION[row["pattern"]] == "long" else -1.0
        assert row["ret"] == pytest.approx(sign * (row["exit_price"] / row["entry_price"] - 1.0))
        assert row["label"] == int(row["ret"] > 0)
    by_pattern = dict(labels.group_by("pattern").agg(pl.col("label").sum()).iter_rows())
    assert by_pattern == {"first_pullback": 0, "vwap_reject": 3}
    # Every bar of the day is stored, tagged by its offset-aware start (04:00-19:59 ET).
    day_bars = yfinance_bars("GME").filter(pl.col("date") == GME_DAY)
    stored = march.read("processed", "minute_bars", "2022-04-01").sort("ts")
    assert stored.height == day_bars.height
    assert stored["ts_et"].dt.time().to_list() == day_bars["clock"].to_list()
    assert stored["session"].to_list() == [session_tag(c) for c in day_bars["clock"]]
    assert set(stored["session"]) == {"pre", "regular", "post"}


# -- one source per data root ---------------------------------------------------------------------
def _bars_folder(base: Path) -> Path:
    folder = base / "bars"
    folder.mkdir()
    (folder / "ABC.csv").write_text(
        "Datetime,Open,High,Low,Close,Volume\n2025-05-12 09:30:00,1.0,1.1,0.9,1.05,100\n"
    )
    return folder


def test_local_bars_and_a_polygon_key_together_are_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("POLYGON_API_KEY", "sk-test")
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(_bars_folder(tmp_path)))
    store = DataStore(str(tmp_path / "data"))
    with pytest.raises(SourceMismatchError, match="both POLYGON_API_KEY and SMALLCAPS_LOCAL_BARS"):
        MarketDataResource().client(store)
    assert not (tmp_path / "data" / "source.json").exists()


def test_a_root_keeps_the_source_it_was_built_from(tmp_path, monkeypatch) -> None:
    folder = _bars_folder(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(folder))
    market = MarketDataResource()
    local_root = DataStore(str(tmp_path / "local"))
    assert market.source() == "local"
    assert market.source_label(local_root) == f"local({folder.resolve()})"
    market.client(local_root)  # claims the root
    assert json.loads((tmp_path / "local" / "source.json").read_text())["local"] == {
        "path": str(folder.resolve()),
        "timezone": "America/New_York",
    }
    market.client(local_root)  # the same folder again is fine

    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(other))
    with pytest.raises(SourceMismatchError, match=r"holds local bars from .*asks for local bars"):
        market.client(local_root)
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(folder))
    monkeypatch.setenv(settings.LOCAL_TIMEZONE_ENV, "America/Chicago")
    with pytest.raises(SourceMismatchError, match="timezone America/Chicago"):
        market.client(local_root)
    monkeypatch.delenv(settings.LOCAL_TIMEZONE_ENV)

    # A local root refuses the simulator (the variable lost) and Polygon (a key set).
    monkeypatch.delenv(settings.LOCAL_BARS_ENV)
    with pytest.raises(
        SourceMismatchError, match=r"holds local bars .* SMALLCAPS_LOCAL_BARS is not"
    ):
        simulator_settings(local_root)
    monkeypatch.setenv("POLYGON_API_KEY", "sk-test")
    with pytest.raises(SourceMismatchError, match=r"holds local bars .* POLYGON_API_KEY is set"):
        market.client(local_root)

    # A simulated root and a Polygon root refuse local bars, before any file is read.
    monkeypatch.delenv("POLYGON_API_KEY")
    simulated_root = DataStore(str(tmp_path / "simulated"))
    simulator_settings(simulated_root)
    polygon_root = tmp_path / "polygon"
    polygon_root.mkdir()
    (polygon_root / "source.json").write_text('{"source": "polygon"}')
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(folder))
    for root, held in (
        (simulated_root, "the simulated market"),
        (DataStore(str(polygon_root)), "Polygon.io data"),
    ):
        with pytest.raises(SourceMismatchError, match=f"holds {held}, but SMALLCAPS_LOCAL_BARS"):
            market.client(root)
        with pytest.raises(SourceMismatchError):
            market.check_sessions(root, [dt.date(2025, 5, 12)])
    # And the simulator is not silently used while local bars are asked for.
    with pytest.raises(SourceMismatchError, match="market data comes from local files"):
        simulator_settings(DataStore(str(tmp_path / "fresh")))


def test_an_invalid_timezone_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(_bars_folder(tmp_path)))
    monkeypatch.setenv(settings.LOCAL_TIMEZONE_ENV, "Mars/Olympus")
    with pytest.raises(ValueError, match="SMALLCAPS_LOCAL_TIMEZONE='Mars/Olympus'"):
        settings.local_bars()


# -- bad files fail the raw run before any partition is written -----------------------------------
def _flat_row(ticker: str, start_et: str, price: str = "1.0") -> str:
    ns = int(dt.datetime.fromisoformat(start_et).replace(tzinfo=calendar.NY).timestamp()) * 10**9
    return f"{ticker},100,{price},{price},{price},{price},{ns},3"


FLAT_HEADER = "ticker,volume,open,close,high,low,window_start,transactions"
GOOD_CSV = "Datetime,Open,High,Low,Close,Volume\n2025-05-12 09:30:00,1.0,1.1,0.9,1.05,100\n"

BAD_FILES: dict[str, tuple[dict[str, str], str]] = {
    "missing_column": (
        {"minute/ABC.csv": "Datetime,Open,High,Low,Close\n2025-05-12 09:30:00,1,1,1,1\n"},
        "missing required column(s) volume",
    ),
    "unparsable_timestamp": (
        {"minute/ABC.csv": "Datetime,Open,High,Low,Close,Volume\n2025-05-12 9h30,1,1,1,1,5\n"},
        "unparsable timestamp in column 'Datetime' at data row 1: '2025-05-12 9h30'",
    ),
    "session_in_the_wrong_file": (
        {
            "minute_aggs_v1/2025/05/2025-05-12.csv": "\n".join(
                [
                    FLAT_HEADER,
                    _flat_row("ABC", "2025-05-12 09:30"),
                    _flat_row("ABC", "2025-05-13 09:30"),
                ]
            )
            + "\n"
        },
        "1 row(s) belong to session(s) 2025-05-13, not to 2025-05-12 as the file name says",
    ),
    "conflicting_duplicate": (
        {
            "minute/ABC.csv": "Datetime,Open,High,Low,Close,Volume\n"
            "2025-05-12 09:30:00,1,1,1,1,5\n2025-05-12 09:30:00,1,1,1,1.5,5\n"
        },
        "ticker 'ABC' has two different bars at 2025-05-12 13:30:00+00:00 (data row 1 and data row 2)",
    ),
    "negative_price": (
        {"minute/ABC.csv": "Datetime,Open,High,Low,Close,Volume\n2025-05-12 09:30:00,1,1,-1,1,5\n"},
        "column 'low' has a negative or non-finite price at data row 1: -1.0",
    ),
    "non_numeric_price": (
        {
            "minute/ABC.csv": "Datetime,Open,High,Low,Close,Volume\n2025-05-12 09:30:00,1,one,1,1,5\n"
        },
        "column 'High' is not a number at data row 1: 'one'",
    ),
    "flat_file_missing_column": (
        {"day_aggs_v1/2025-05-12.csv": "ticker,volume,open,close,high,low\nABC,1,1,1,1,1\n"},
        "missing required column(s) window_start of the flat-file layout",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_fails_the_raw_run_naming_the_file_and_leaves_nothing(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, problem = BAD_FILES[case]
    folder = tmp_path / "bars"
    for relative, text in {"minute/GOOD.csv": GOOD_CSV, **files}.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    bad_file = folder / next(iter(files))
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(folder))
    root = tmp_path / "data"
    result = _materialize(root, RAW_KEYS, "2025-05-12", "2025-05-13", UniverseRulesResource())
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures
    for failure in failures:
        error = failure.step_failure_data.error
        cause = error.cause or error
        assert cause.cls_name == LocalBarsError.__name__
        assert cause.message.startswith(
            f"smallcaps_assets.sources.local.errors.LocalBarsError: {bad_file}: "
        )
        assert problem in cause.message
    assert not list(root.rglob("*.parquet"))
    assert not (root / "source.json").exists()


def test_a_bad_later_session_stops_the_run_before_the_good_one_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "bars" / "minute_aggs_v1"
    folder.mkdir(parents=True)
    (folder / "2025-05-12.csv").write_text(
        f"{FLAT_HEADER}\n{_flat_row('ABC', '2025-05-12 09:30')}\n"
    )
    (folder / "2025-05-13.csv").write_text(
        f"{FLAT_HEADER}\n{_flat_row('ABC', '2025-05-13 09:30', price='-2')}\n"
    )
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(tmp_path / "bars"))
    root = tmp_path / "data"
    daily = [dg.AssetKey(["raw", "daily_bars"])]
    result = _materialize(root, daily, "2025-05-12", "2025-05-13", UniverseRulesResource())
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert (
        "2025-05-13.csv: column 'open' has a negative"
        in failure.step_failure_data.error.cause.message
    )
    assert not list(root.rglob("*.parquet"))
    # The good session alone goes through, and its bar is the file's.
    ok = _materialize(root, daily, "2025-05-12", "2025-05-12", UniverseRulesResource())
    assert ok.success
    bars = DataStore(str(root)).read("raw", "daily_bars", "2025-05-12")
    assert bars.select("ticker", "open", "volume", "transactions").rows() == [
        ("ABC", 1.0, 100.0, 3)
    ]
