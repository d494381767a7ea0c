"""The point-in-time small-cap universe and its gappers (the candidates of a session).

Thresholds live in :class:`UniverseRules` (issue-configurable, shared by every layer).

What is known when. The universe of session D is decided before the open from D's ticker list and
as-of-D details (listing, type, exchange, shares) and from D-1's unadjusted close. The candidate
flag adds exactly one number from D: its opening print, known at 09:30 ET. D's high, low, close
and volume are only known later, so :func:`build_universe` cuts D's bars down to ``ticker`` and
``open`` before doing anything else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, TypedDict

import polars as pl

from smallcaps_assets.core import calendar
from smallcaps_assets.core.bars import conform, split_factor_to, valid_price

__all__ = [
    "COMMON_STOCK",
    "MAJOR_EXCHANGES",
    "UNIVERSE_SCHEMA",
    "UniverseRules",
    "UniverseStats",
    "build_universe",
    "members_outside_band",
    "screenable_listings",
    "universe_stats",
]

COMMON_STOCK = "CS"
MAJOR_EXCHANGES = ("XNAS", "XNYS", "XASE")


@dataclass(frozen=True)
class UniverseRules:
    price_min: float = 0.50
    price_max: float = 20.0
    market_cap_max: float = 2_000_000_000.0
    shares_max: float = 100_000_000.0
    gap_min: float = 0.10
    # Watchlist: a candidate whose premarket is unusually active (see core.minute.watchlist_flags).
    premarket_volume_min: float = 100_000.0
    premarket_rvol_min: float = 2.0


UNIVERSE_SCHEMA: Final = pl.Schema(
    {
        "date": pl.Date(),
        "ticker": pl.String(),
        "name": pl.String(),
        "cik": pl.String(),
        "primary_exchange": pl.String(),
        "type": pl.String(),
        "previous_close": pl.Float64(),
        "split_factor_on_day": pl.Float64(),
        "previous_close_adjusted": pl.Float64(),
        "shares_outstanding": pl.Float64(),
        "market_cap": pl.Float64(),
        "open": pl.Float64(),
        "gap_pct": pl.Float64(),
        "is_candidate": pl.Boolean(),
    }
)


class UniverseStats(TypedDict):
    size: int
    candidates: int
    by_exchange: dict[str, int]
    candidates_by_exchange: dict[str, int]


def _opening_prices(open_bars_d: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """``ticker`` and ``open`` of D's bars: the only part of D's bars known at 09:30 ET.

    ``date`` is read only to discard rows of other sessions when the frame has one. A ticker
    listed twice keeps its last row, as in processed daily bars.
    """
    wanted = ["ticker", "open", *(["date"] if "date" in open_bars_d.columns else [])]
    opens = open_bars_d.select(wanted)
    if "date" in wanted:
        opens = opens.filter(pl.col("date") == day).drop("date")
    return opens.filter(valid_price("open")).unique(
        subset="ticker", keep="last", maintain_order=True
    )


def _previous_closes(prev_bars: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Unadjusted close of the session before ``day`` per ticker (raw or processed bars)."""
    closes = prev_bars
    if "date" in closes.columns:
        closes = closes.filter(pl.col("date") == calendar.previous_session(day))
    if "otc" in closes.columns:
        closes = closes.filter(~pl.col("otc").fill_null(False))
    return (
        closes.filter(valid_price("close"))
        .unique(subset="ticker", keep="last", maintain_order=True)
        .select("ticker", pl.col("close").alias("previous_close"))
    )


def _listed_on(tickers_d: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Tickers trading on ``day``: active then, including those delisted at a later date.

    A delisting timestamp on or before ``day`` (in New York dates) overrides an ``active`` flag;
    one after ``day`` means the listing was alive on ``day`` whatever the flag says, so a
    ticker list fetched after the fact cannot drop a name that later died.
    """
    listings = tickers_d
    if "as_of" in listings.columns:
        listings = listings.filter(pl.col("as_of") == day)
    delisted_on = pl.col("delisted_utc").dt.convert_time_zone(calendar.NY.key).dt.date()
    listed = (
        pl.when(pl.col("delisted_utc").is_null())
        .then(pl.col("active"))
        .otherwise(delisted_on > day)
        .fill_null(False)
    )
    return (
        listings.filter(listed & (pl.col("market") == "stocks"))
        .sort("ticker", pl.col("last_updated_utc"), nulls_last=False)
        .unique(subset="ticker", keep="last", maintain_order=True)
        .select("ticker", "name", "cik", "primary_exchange", "type")
    )


def build_universe(
    tickers_d: pl.DataFrame,
    details_d: pl.DataFrame,
    prev_bars: pl.DataFrame,
    open_bars_d: pl.DataFrame,
    rules: UniverseRules,
    day: dt.date,
    *,
    splits: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The small-cap universe of session ``day`` with its gap candidates.

    Inputs: D's raw tickers (active and delisted), D's raw ticker details, D-1's daily bars
    (raw or processed, unadjusted), D's daily bars of which only ``ticker`` and ``open`` are
    read (a frame with just those columns is enough), and optionally the splits known on D.

    A member is a listing alive on D (see :func:`_listed_on`; names delisted later are kept) of
    type CS on XNAS, XNYS or XASE (details as of D override the ticker list's type and exchange)
    with:

    * ``price_min <= previous_close <= price_max`` on D-1's *unadjusted* close;
    * shares (share-class shares outstanding, else weighted) ``< shares_max``;
    * ``market_cap = previous_close_adjusted * shares < market_cap_max``. Details' own
      ``market_cap`` is not used: Polygon derives it from the latest close, which for an as-of-D
      request can be D's own close.

    A name without a D-1 close or a share count cannot be screened and is left out.

    ``previous_close_adjusted`` is the D-1 close on D's share basis: it differs from
    ``previous_close`` only when a split executes on D (``split_factor_on_day`` != 1), which is
    announced in advance and so known before the open. Without it a 1-for-10 reverse split would
    look like a 900% gap. Pass ``splits`` to get this right; without them the factor is 1.

    ``gap_pct = open / previous_close_adjusted - 1`` (null without a valid D open) and
    ``is_candidate = gap_pct >= gap_min`` (gap-ups only).

    Schema: :data:`UNIVERSE_SCHEMA`, members only, sorted by ticker.
    """
    opens = _opening_prices(open_bars_d, day)
    del open_bars_d  # nothing below may reach D's high, low, close or volume

    details = details_d
    if "as_of" in details.columns:
        details = details.filter(pl.col("as_of") == day)
    details = details.unique(subset="ticker", keep="last", maintain_order=True).select(
        "ticker",
        pl.col("type").alias("_details_type"),
        pl.col("primary_exchange").alias("_details_exchange"),
        shares_outstanding=pl.coalesce(
            "share_class_shares_outstanding", "weighted_shares_outstanding"
        ),
    )
    factors = pl.DataFrame(schema={"ticker": pl.String(), "split_factor_to_d": pl.Float64()})
    if splits is not None:
        # Only a split executing on D moves D-1's close onto D's basis.
        factors = split_factor_to(splits.filter(pl.col("execution_date") == day), day)

    close = pl.col("previous_close")
    shares = pl.col("shares_outstanding")
    market_cap = pl.col("market_cap")
    members = (
        _listed_on(tickers_d, day)
        .join(details, on="ticker", how="inner")
        .with_columns(
            type=pl.coalesce("_details_type", "type"),
            primary_exchange=pl.coalesce("_details_exchange", "primary_exchange"),
        )
        .filter(
            (pl.col("type") == COMMON_STOCK) & pl.col("primary_exchange").is_in(MAJOR_EXCHANGES)
        )
        .join(_previous_closes(prev_bars, day), on="ticker", how="inner")
        .join(factors, on="ticker", how="left")
        .with_columns(split_factor_on_day=pl.col("split_factor_to_d").fill_null(1.0))
        .with_columns(previous_close_adjusted=close * pl.col("split_factor_on_day"))
        .with_columns(market_cap=pl.col("previous_close_adjusted") * shares)
        .filter(
            close.is_between(rules.price_min, rules.price_max)
            & (shares < rules.shares_max)
            & (market_cap < rules.market_cap_max)
        )
    )
    gap = pl.col("open") / pl.col("previous_close_adjusted") - 1.0
    return (
        members.join(opens, on="ticker", how="left")
        .with_columns(gap_pct=gap, date=pl.lit(day))
        .with_columns(is_candidate=(pl.col("gap_pct") >= rules.gap_min).fill_null(False))
        .pipe(conform, UNIVERSE_SCHEMA)
        .sort("ticker")
    )


def screenable_listings(tickers_d: pl.DataFrame, prev_bars: pl.DataFrame, day: dt.date) -> int:
    """Listings alive on ``day`` of type CS on a major exchange with a D-1 close: the pool the
    screen draws from, and the denominator of the universe size check."""
    return (
        _listed_on(tickers_d, day)
        .filter(
            (pl.col("type") == COMMON_STOCK) & pl.col("primary_exchange").is_in(MAJOR_EXCHANGES)
        )
        .join(_previous_closes(prev_bars, day), on="ticker", how="inner")
        .height
    )


def members_outside_band(
    members: pl.DataFrame, prev_bars: pl.DataFrame, rules: UniverseRules, day: dt.date
) -> pl.DataFrame:
    """Members whose D-1 unadjusted close, re-read from ``prev_bars``, is missing or outside the
    price band: an independent re-derivation of the screen's price rule (must be empty)."""
    closes = _previous_closes(prev_bars, day).rename({"previous_close": "_close"})
    return members.join(closes, on="ticker", how="left").filter(
        ~pl.col("_close").is_between(rules.price_min, rules.price_max).fill_null(False)
    )


def universe_stats(frame: pl.DataFrame) -> UniverseStats:
    """Size, candidate count and both by primary exchange, for run metadata."""

    def by_exchange(rows: pl.DataFrame) -> dict[str, int]:
        counts = rows.group_by("primary_exchange").len().sort("primary_exchange")
        return {str(exchange): int(n) for exchange, n in counts.iter_rows()}

    candidates = frame.filter(pl.col("is_candidate"))
    return UniverseStats(
        size=frame.height,
        candidates=candidates.height,
        by_exchange=by_exchange(frame),
        candidates_by_exchange=by_exchange(candidates),
    )
