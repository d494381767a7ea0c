"""The small-cap cost model: ECN fees, the SEC fee on sales, spread-based slippage and the
borrow fee of shorts.

Each part is reported separately so a backtest can say what ate its edge:

* ``ecn_fees``: ``ecn_fee_per_share`` on every share bought and sold;
* ``sec_fee``: ``sec_fee_per_million`` dollars per million of *sale* proceeds: a long's exit, a
  short's entry (the short sale);
* ``borrow_fee``: shorts only, ``borrow_fee_annual`` (an annualized rate, default 30 %: small
  caps are often hard to borrow, with rates from a few percent to well over 100 %) on the short
  notional (shares x entry price) for the time held, counted in calendar time over a 365-day
  year. The shares are assumed locatable: bar data says nothing about the borrow available;
* ``slippage``: per share, ``price x spread x factor x (1 + imbalance)`` on each fill, where the
  factor is ``slippage_factor`` normally and ``ssr_slippage_factor`` while short-sale
  restrictions are in force (the book thins out), and ``imbalance`` in [0, 1] is a volume
  imbalance proxy (e.g. the trade's share of the bar's volume, or a buy/sell imbalance).

``spread`` is a fraction of price (0.01 = 1 %). It is floored at ``min_spread`` because bar-based
spread estimators return 0 when bars show no bid-ask bounce, and a zero-cost fill is never real.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from smallcaps_assets.core.events import Direction

__all__ = ["CostModel", "TradeCosts", "borrow_fee", "trade_costs"]

_YEAR: Final = dt.timedelta(days=365)


@dataclass(frozen=True)
class CostModel:
    ecn_fee_per_share: float = 0.003
    sec_fee_per_million: float = 27.80
    slippage_factor: float = 0.5
    ssr_slippage_factor: float = 2.0
    min_spread: float = 0.001
    borrow_fee_annual: float = 0.30

    def __post_init__(self) -> None:
        values = (
            self.ecn_fee_per_share,
            self.sec_fee_per_million,
            self.slippage_factor,
            self.ssr_slippage_factor,
            self.min_spread,
            self.borrow_fee_annual,
        )
        if any(v < 0 for v in values):
            raise ValueError(f"cost parameters must be non-negative: {self}")


@dataclass(frozen=True)
class TradeCosts:
    ecn_fees: float
    sec_fee: float
    slippage: float
    borrow_fee: float = 0.0

    @property
    def fees(self) -> float:
        return self.ecn_fees + self.sec_fee

    @property
    def total(self) -> float:
        return self.fees + self.slippage + self.borrow_fee


def _slippage(
    price: float, shares: float, spread: float, ssr: bool, imbalance: float, model: CostModel
) -> float:
    factor = model.ssr_slippage_factor if ssr else model.slippage_factor
    return price * max(spread, model.min_spread) * factor * (1.0 + imbalance) * shares


def trade_costs(
    shares: float,
    entry_price: float,
    exit_price: float,
    *,
    spread: float,
    ssr_at_entry: bool = False,
    ssr_at_exit: bool = False,
    imbalance: float = 0.0,
    model: CostModel | None = None,
    direction: Direction = "long",
    held: dt.timedelta = dt.timedelta(0),
) -> TradeCosts:
    """Costs in dollars of a round trip of ``shares`` shares in ``direction``, held for
    ``held`` (which only a short's borrow fee depends on)."""
    model = model or CostModel()
    if shares < 0 or entry_price <= 0 or exit_price <= 0:
        raise ValueError(
            f"shares must be >= 0 and prices > 0 (got {shares}, {entry_price}, {exit_price})"
        )
    if direction not in ("long", "short") or held < dt.timedelta(0):
        raise ValueError(f"direction must be long or short and held >= 0: {direction}, {held}")
    if not 0.0 <= imbalance <= 1.0:
        raise ValueError(f"imbalance must be within [0, 1], got {imbalance}")
    slippage = _slippage(entry_price, shares, spread, ssr_at_entry, imbalance, model) + _slippage(
        exit_price, shares, spread, ssr_at_exit, imbalance, model
    )
    short = direction == "short"
    sale_price = entry_price if short else exit_price
    return TradeCosts(
        ecn_fees=2.0 * shares * model.ecn_fee_per_share,
        sec_fee=shares * sale_price * model.sec_fee_per_million / 1_000_000.0,
        slippage=slippage,
        borrow_fee=borrow_fee(shares * entry_price, held, model) if short else 0.0,
    )


def borrow_fee(notional: float, held: dt.timedelta, model: CostModel | None = None) -> float:
    """Dollars to borrow ``notional`` of stock for ``held``: the annual rate pro rata over a
    365-day calendar year."""
    model = model or CostModel()
    return notional * model.borrow_fee_annual * held / _YEAR
