"""The small-cap cost model: ECN fees, the SEC fee on sales and spread-based slippage.

Each part is reported separately so a backtest can say what ate its edge:

* ``ecn_fees``: ``ecn_fee_per_share`` on every share bought and sold;
* ``sec_fee``: ``sec_fee_per_million`` dollars per million of *sale* proceeds (long exits);
* ``slippage``: per share, ``price x spread x factor x (1 + imbalance)`` on each fill, where the
  factor is ``slippage_factor`` normally and ``ssr_slippage_factor`` while short-sale
  restrictions are in force (the book thins out), and ``imbalance`` in [0, 1] is a volume
  imbalance proxy (e.g. the trade's share of the bar's volume, or a buy/sell imbalance).

``spread`` is a fraction of price (0.01 = 1 %). It is floored at ``min_spread`` because bar-based
spread estimators return 0 when bars show no bid-ask bounce, and a zero-cost fill is never real.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CostModel", "TradeCosts", "trade_costs"]


@dataclass(frozen=True)
class CostModel:
    ecn_fee_per_share: float = 0.003
    sec_fee_per_million: float = 27.80
    slippage_factor: float = 0.5
    ssr_slippage_factor: float = 2.0
    min_spread: float = 0.001

    def __post_init__(self) -> None:
        values = (
            self.ecn_fee_per_share,
            self.sec_fee_per_million,
            self.slippage_factor,
            self.ssr_slippage_factor,
            self.min_spread,
        )
        if any(v < 0 for v in values):
            raise ValueError(f"cost parameters must be non-negative: {self}")


@dataclass(frozen=True)
class TradeCosts:
    ecn_fees: float
    sec_fee: float
    slippage: float

    @property
    def fees(self) -> float:
        return self.ecn_fees + self.sec_fee

    @property
    def total(self) -> float:
        return self.fees + self.slippage


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
) -> TradeCosts:
    """Costs in dollars of a long round trip of ``shares`` shares."""
    model = model or CostModel()
    if shares < 0 or entry_price <= 0 or exit_price <= 0:
        raise ValueError(
            f"shares must be >= 0 and prices > 0 (got {shares}, {entry_price}, {exit_price})"
        )
    if not 0.0 <= imbalance <= 1.0:
        raise ValueError(f"imbalance must be within [0, 1], got {imbalance}")
    slippage = _slippage(entry_price, shares, spread, ssr_at_entry, imbalance, model) + _slippage(
        exit_price, shares, spread, ssr_at_exit, imbalance, model
    )
    return TradeCosts(
        ecn_fees=2.0 * shares * model.ecn_fee_per_share,
        sec_fee=shares * exit_price * model.sec_fee_per_million / 1_000_000.0,
        slippage=slippage,
    )
