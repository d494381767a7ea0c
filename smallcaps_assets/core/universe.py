"""Thresholds that define the small-cap universe (issue-configurable, shared by every layer)."""

from __future__ import annotations

from dataclasses import dataclass

COMMON_STOCK = "CS"
MAJOR_EXCHANGES = ("XNAS", "XNYS", "XASE")


@dataclass(frozen=True)
class UniverseRules:
    price_min: float = 0.50
    price_max: float = 20.0
    market_cap_max: float = 2_000_000_000.0
    shares_max: float = 100_000_000.0
    gap_min: float = 0.10
