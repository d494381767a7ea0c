"""Random streams keyed by what they are for, so any piece of the market regenerates alone.

Every draw comes from a generator seeded by ``(seed, purpose, ticker id[, day ordinal])``. A
ticker-day's minute bars therefore never depend on which other tickers or days were asked for
first, in this process or another one. Day keys are proleptic ordinals (``date.toordinal()``),
so they do not move when the configured history window does.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Purpose(IntEnum):
    # Values are part of the seed: changing one changes the market.
    STATIC = 1  # per-ticker identity and long-run parameters
    DAILY = 2  # per-ticker daily series (volatility, returns, events)
    MARKET = 3  # market-wide factor and volatility regime
    GAP_SESSION = 4  # per ticker-day regular session of a gap day (the i.i.d. law)
    MINUTES = 5  # per ticker-day minute-bar construction outside that law
    CORPORATE = 6  # per-ticker split timing, dividends
    FINANCIALS = 7  # per-ticker filings
    NEWS = 8  # per-ticker background news
    GAP_AFTER_HOURS = 9  # per ticker-day after-hours continuation of a gap day


def stream(seed: int, purpose: Purpose, *keys: int) -> np.random.Generator:
    """A generator for ``purpose`` and the integer ``keys`` (ticker id, day ordinal, ...)."""
    return np.random.default_rng([seed, int(purpose), *keys])
