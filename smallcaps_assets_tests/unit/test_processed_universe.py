"""The point-in-time universe: filters on D-1's unadjusted close and as-of-D shares, keeps names
that delist later, and picks gappers from D's open alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import polars as pl
import pytest
from pandera.errors import SchemaError

from smallcaps_assets.core.processed_schemas import (
    ProcessedUniverse,
    check_point_in_time,
    universe_model,
)
from smallcaps_assets.core.universe import (
    UNIVERSE_SCHEMA,
    UniverseRules,
    build_universe,
    members_outside_band,
    screenable_listings,
    universe_stats,
)
from smallcaps_assets.sources import parsers

DAY = date(2024, 3, 5)
PREVIOUS = date(2024, 3, 4)
RULES = UniverseRules()


def listing(ticker: str, **extra: Any) -> dict[str, Any]:
    row = {"ticker": ticker, "name": f"{ticker} Inc", "market": "stocks", "active": True}
    return row | {"type": "CS", "primary_exchange": "XNAS", "cik": "0000000001"} | extra


def detail(ticker: str, shares: float | None = 10_000_000.0, **extra: Any) -> dict[str, Any]:
    row = {"ticker": ticker, "name": f"{ticker} Inc", "active": True, "type": "CS"}
    return row | {"primary_exchange": "XNAS", "share_class_shares_outstanding": shares} | extra


def day_bar(ticker: str, close: float, open_: float | None = None) -> dict[str, Any]:
    open_ = close if open_ is None else open_
    high, low = max(open_, close), min(open_, close)
    return {"T": ticker, "o": open_, "h": high, "l": low, "c": close, "v": 5e5, "t": 0}


def universe(
    listings: list[dict[str, Any]],
    details: list[dict[str, Any]],
    previous: list[dict[str, Any]],
    today: list[dict[str, Any]],
    rules: UniverseRules = RULES,
    splits: pl.DataFrame | None = None,
) -> pl.DataFrame:
    return build_universe(
        parsers.parse_tickers(listings, as_of=DAY),
        parsers.parse_ticker_details(details, as_of=DAY),
        parsers.parse_grouped_daily(previous, PREVIOUS),
        parsers.parse_grouped_daily(today, DAY),
        rules,
        DAY,
        splits=splits,
    )


def members(frame: pl.DataFrame) -> list[str]:
    return frame.get_column("ticker").to_list()


def test_only_listed_common_stocks_on_major_exchanges_qualify() -> None:
    names = ["GOOD", "ETF", "ADR", "OTC", "ARCA", "DEAD", "FOREX"]
    listings = [
        listing("GOOD"),
        listing("ETF", type="ETF"),
        listing("ADR", type="ADRC"),
        listing("OTC", primary_exchange="OTCM"),
        listing("ARCA", primary_exchange="ARCX"),
        listing("DEAD", active=False, delisted_utc="2024-02-01T05:00:00Z"),
        listing("FOREX", market="fx"),
    ]
    # Details agree with the list here; where they differ, the next test shows details win.
    details = [
        detail(row["ticker"], type=row["type"], primary_exchange=row["primary_exchange"])
        for row in listings
    ]
    frame = universe(listings, details, [day_bar(n, 5.0) for n in names], [])
    assert members(frame) == ["GOOD"]


def test_details_as_of_the_session_override_the_ticker_list() -> None:
    listings = [listing("NOWETF"), listing("MOVED", primary_exchange="OTCM")]
    details = [detail("NOWETF", type="ETF"), detail("MOVED", primary_exchange="XNYS")]
    frame = universe(listings, details, [day_bar("NOWETF", 5), day_bar("MOVED", 5)], [])
    assert members(frame) == ["MOVED"]
    assert frame.row(0, named=True)["primary_exchange"] == "XNYS"


def test_a_name_delisted_later_is_a_member_while_it_qualified() -> None:
    listings = [
        listing("LATER"),  # the ticker list of D still calls it active
        listing("FLAGGED", active=False, delisted_utc="2024-06-03T04:00:00Z"),
        listing("GONE", active=False, delisted_utc="2024-03-05T05:00:00Z"),  # delisted on D
    ]
    names = ["LATER", "FLAGGED", "GONE"]
    frame = universe(listings, [detail(n) for n in names], [day_bar(n, 2.0) for n in names], [])
    assert members(frame) == ["FLAGGED", "LATER"]


@pytest.mark.parametrize(
    ("close", "member"),
    [(0.49, False), (0.50, True), (20.0, True), (20.01, False)],
)
def test_price_band_is_inclusive_on_the_previous_unadjusted_close(
    close: float, member: bool
) -> None:
    frame = universe([listing("AAA")], [detail("AAA", 1e6)], [day_bar("AAA", close)], [])
    assert (members(frame) == ["AAA"]) is member


def test_shares_and_market_cap_caps() -> None:
    listings = [listing(n) for n in ("SMALL", "FLOAT", "CAP", "WEIGHTED", "UNKNOWN")]
    details = [
        detail("SMALL", 99_999_999.0),
        detail("FLOAT", 100_000_000.0),  # shares must be strictly below the cap
        detail("CAP", 99_000_000.0),  # 99m x $20.00 = $1.98bn, fine; x $20.5 is out of band
        detail("WEIGHTED", None, weighted_shares_outstanding=5_000_000.0),
        detail("UNKNOWN", None),
    ]
    previous = [day_bar("SMALL", 1.0), day_bar("FLOAT", 1.0), day_bar("CAP", 20.0)]
    previous += [day_bar("WEIGHTED", 3.0), day_bar("UNKNOWN", 3.0)]
    frame = universe(listings, details, previous, [])
    assert members(frame) == ["CAP", "SMALL", "WEIGHTED"]
    caps = dict(frame.select("ticker", "market_cap").iter_rows())
    assert caps["WEIGHTED"] == 15_000_000.0

    tight = replace(RULES, market_cap_max=1_000_000_000.0)
    assert members(universe(listings, details, previous, [], rules=tight)) == ["SMALL", "WEIGHTED"]


def test_candidates_gap_up_at_least_gap_min_from_the_previous_close() -> None:
    names = ["GAP", "EDGE", "FLAT", "DOWN", "NOOPEN"]
    previous = [day_bar(n, 2.0) for n in names]
    today = [
        day_bar("GAP", 2.9, open_=2.5),
        day_bar("EDGE", 2.0, open_=2.2),
        day_bar("FLAT", 2.0, open_=2.1),
        day_bar("DOWN", 1.0, open_=1.5),
    ]
    frame = universe([listing(n) for n in names], [detail(n) for n in names], previous, today)
    gaps = {row["ticker"]: row for row in frame.iter_rows(named=True)}
    assert gaps["GAP"]["gap_pct"] == pytest.approx(0.25)
    assert {n for n, row in gaps.items() if row["is_candidate"]} == {"GAP", "EDGE"}
    assert gaps["NOOPEN"]["open"] is None
    assert gaps["NOOPEN"]["is_candidate"] is False
    ProcessedUniverse.validate(frame)


def test_only_the_open_of_the_session_is_read() -> None:
    listings, details = [listing("GAP")], [detail("GAP")]
    previous = [day_bar("GAP", 2.0)]
    full = universe(listings, details, previous, [day_bar("GAP", 9.0, open_=2.5)])
    opens_only = build_universe(
        parsers.parse_tickers(listings, as_of=DAY),
        parsers.parse_ticker_details(details, as_of=DAY),
        parsers.parse_grouped_daily(previous, PREVIOUS),
        pl.DataFrame({"ticker": ["GAP"], "open": [2.5]}),
        RULES,
        DAY,
    )
    assert opens_only.equals(full)


def test_a_split_executing_on_the_session_is_not_a_gap() -> None:
    names = ["REV", "FWD"]
    previous = [day_bar("REV", 0.60), day_bar("FWD", 10.0)]
    today = [day_bar("REV", 6.1, open_=6.1), day_bar("FWD", 5.6, open_=5.6)]
    splits = parsers.parse_splits(
        [
            {"ticker": "REV", "execution_date": "2024-03-05", "split_from": 10, "split_to": 1},
            {"ticker": "FWD", "execution_date": "2024-03-05", "split_from": 1, "split_to": 2},
            {"ticker": "FWD", "execution_date": "2024-03-06", "split_from": 1, "split_to": 9},
        ]
    )
    listings, details = [listing(n) for n in names], [detail(n) for n in names]
    naive = universe(listings, details, previous, today)
    assert dict(naive.select("ticker", "is_candidate").iter_rows()) == {"FWD": False, "REV": True}

    frame = universe(listings, details, previous, today, splits=splits)
    rows = {row["ticker"]: row for row in frame.iter_rows(named=True)}
    assert rows["REV"]["previous_close"] == 0.60  # the band still reads the unadjusted close
    assert rows["REV"]["previous_close_adjusted"] == pytest.approx(6.0)
    assert rows["REV"]["gap_pct"] == pytest.approx(6.1 / 6.0 - 1)
    assert rows["FWD"]["previous_close_adjusted"] == 5.0
    assert rows["FWD"]["gap_pct"] == pytest.approx(0.12)
    assert {n for n, row in rows.items() if row["is_candidate"]} == {"FWD"}
    ProcessedUniverse.validate(frame)


def test_previous_bars_of_other_sessions_are_not_used() -> None:
    stale = parsers.parse_grouped_daily([day_bar("AAA", 5.0)], date(2024, 3, 1))
    frame = build_universe(
        parsers.parse_tickers([listing("AAA")], as_of=DAY),
        parsers.parse_ticker_details([detail("AAA")], as_of=DAY),
        stale,
        parsers.parse_grouped_daily([], DAY),
        RULES,
        DAY,
    )
    assert frame.is_empty()


def test_stats_schema_and_checks() -> None:
    names = ["AAA", "BBB", "CCC"]
    listings = [listing("AAA"), listing("BBB", primary_exchange="XNYS"), listing("CCC")]
    frame = universe(
        listings,
        [detail("AAA"), detail("BBB", primary_exchange="XNYS"), detail("CCC")],
        [day_bar(n, 2.0) for n in names],
        [day_bar("AAA", 3.0, open_=3.0)],
    )
    assert frame.schema == UNIVERSE_SCHEMA
    assert universe_stats(frame) == {
        "size": 3,
        "candidates": 1,
        "by_exchange": {"XNAS": 2, "XNYS": 1},
        "candidates_by_exchange": {"XNAS": 1},
    }
    ProcessedUniverse.validate(frame)
    assert check_point_in_time("universe", frame, DAY).passed

    out_of_band = frame.with_columns(previous_close=pl.lit(25.0))
    with pytest.raises(SchemaError, match="previous_close_inside_band"):
        ProcessedUniverse.validate(out_of_band)
    universe_model(replace(RULES, price_max=30.0)).validate(out_of_band)


def test_screenable_listings_count_the_pool_the_screen_draws_from() -> None:
    listings = [
        listing("AAA"),
        listing("BBB"),
        listing("ETF", type="ETF"),
        listing("OTCX", primary_exchange="OTCM"),
        listing("NOBAR"),
    ]
    previous = [
        day_bar("AAA", 5.0),
        day_bar("BBB", 50.0),
        day_bar("ETF", 5.0),
        day_bar("OTCX", 1.0),
    ]
    count = screenable_listings(
        parsers.parse_tickers(listings, as_of=DAY),
        parsers.parse_grouped_daily(previous, PREVIOUS),
        DAY,
    )
    # AAA and BBB (priced out of the band, but screenable); not the ETF, the OTC name or NOBAR.
    assert count == 2


def test_members_outside_band_re_derives_the_price_rule_from_raw_bars() -> None:
    frame = universe(
        [listing("AAA"), listing("BBB")],
        [detail("AAA"), detail("BBB")],
        [day_bar("AAA", 5.0), day_bar("BBB", 6.0)],
        [day_bar("AAA", 5.0), day_bar("BBB", 6.0)],
    )
    previous = parsers.parse_grouped_daily([day_bar("AAA", 5.0), day_bar("BBB", 6.0)], PREVIOUS)
    assert members_outside_band(frame, previous, RULES, DAY).is_empty()
    # The same members against bars saying BBB closed at $25 (or not at all) are flagged.
    repriced = parsers.parse_grouped_daily([day_bar("AAA", 5.0), day_bar("BBB", 25.0)], PREVIOUS)
    assert members_outside_band(frame, repriced, RULES, DAY).get_column("ticker").to_list() == [
        "BBB"
    ]
    missing = parsers.parse_grouped_daily([day_bar("AAA", 5.0)], PREVIOUS)
    assert members_outside_band(frame, missing, RULES, DAY).get_column("ticker").to_list() == [
        "BBB"
    ]
