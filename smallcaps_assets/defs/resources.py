"""Resources, all in one place: the data store, the market-data client (Polygon, local files or
the simulated market), the DuckDB catalog and the universe and research settings.

Which source a data root holds (``source.json``) is bookkept by
:mod:`smallcaps_assets.sources.provenance`; the names re-exported from it below are imported from
here by the CLI and the tests.

No ``from __future__ import annotations`` here: Dagster reads the market resource's
``ResourceDependency`` annotation at class creation, which a string annotation would hide.
"""

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

import dagster as dg
import httpx
from dagster_duckdb import DuckDBResource
from pydantic import Field

from smallcaps_assets import settings
from smallcaps_assets.core.labels import BarrierRules
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.core.universe import UniverseRules
from smallcaps_assets.settings import LocalBarsSettings, SimulatorSettings
from smallcaps_assets.sources import provenance
from smallcaps_assets.sources.polygon import PolygonClient

# Re-exported for the modules that import them from here (the CLI, the tests).
from smallcaps_assets.sources.provenance import (
    SimulatorMismatchError,
    Source,
    SourceMismatchError,
    claim_for_local,
    claim_for_polygon,
    simulator_settings,
)

if TYPE_CHECKING:
    import duckdb

    from smallcaps_assets.sources.local import LocalBars
    from smallcaps_assets.sources.simulator import SimulatedMarket

__all__ = [
    "CatalogDuckDBResource",
    "DataStoreResource",
    "MarketDataResource",
    "ResearchSettingsResource",
    "SimulatorMismatchError",
    "Source",
    "SourceMismatchError",
    "UniverseRulesResource",
    "claim_for_local",
    "claim_for_polygon",
    "simulator_settings",
]

log = logging.getLogger("smallcaps_assets.source")


class DataStoreResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The data root: a local folder (default ``data/`` in the project, or ``SMALLCAPS_DATA_DIR``
    read when the store is opened) or an fsspec URL."""

    root: str = ""

    def store(self) -> DataStore:
        return DataStore(self.root or settings.data_root())


class MarketDataResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Polygon.io when ``POLYGON_API_KEY`` is set, the user's bar files when
    ``SMALLCAPS_LOCAL_BARS`` names a folder (docs/local-files.md), otherwise the built-in
    simulated market. Both set is refused: a data root holds one source.

    ``data`` is the data root the source is claimed in (``source.json``); the code location
    wires it to its ``data`` resource. Every method that needs the root also takes a ``store``,
    which wins when given (the asset bodies pass the store they write to); without either, the
    default root is used.

    The key is read from the environment when a client is built and is never part of this
    resource's config, so it cannot leak into run config, metadata or the UI.
    """

    # A descriptor to mypy; Dagster and pydantic take None as "no nested data resource".
    data: dg.ResourceDependency[DataStoreResource | None] = None  # type: ignore[assignment]
    base_url: str = "https://api.polygon.io"
    max_concurrency: int = 8
    requests_per_second: float | None = None
    max_retries: int = 6

    def store(self, store: DataStore | None = None) -> DataStore:
        """``store`` when given, else the nested data resource's store (else the default root)."""
        if store is not None:
            return store
        return (self.data or DataStoreResource()).store()

    def source(self) -> Source:
        return provenance.requested_source()

    def is_simulated(self) -> bool:
        return self.source() == "simulated"

    def source_label(self, store: DataStore | None = None) -> str:
        return provenance.source_label(self.store(store), self.source())

    def check_sessions(
        self, store: DataStore | None = None, sessions: Sequence[dt.date] = ()
    ) -> None:
        """Refuse bad input before a raw run writes anything: the local source reads and
        validates now the files that serve these sessions (and the one before the first);
        the network sources have nothing to check up front."""
        if self.source() != "local" or not sessions:
            return
        local = provenance.local_settings()
        claim_for_local(self.store(store), local, dry_run=True)
        from smallcaps_assets.core import calendar

        first = calendar.previous_session(min(sessions))
        _local_bars(local).validate([first, *sessions])

    def details_price_cap(
        self, universe_price_max: float = UniverseRules.price_max
    ) -> float | None:
        """The previous close above which ``raw/ticker_details`` asks for no details: each Polygon
        request costs quota, so only names the configured screen (``universe_rules.price_max``)
        can admit are asked, and never fewer than the default screen's. Local files cost
        nothing, so every listed common stock is read (None)."""
        if self.source() == "local":
            return None
        return max(universe_price_max, UniverseRules.price_max)

    def client(self, store: DataStore | None = None) -> PolygonClient:
        store = self.store(store)
        source = self.source()
        key = settings.polygon_api_key() if source == "polygon" else None
        if source == "polygon":
            claim_for_polygon(store)
        return PolygonClient(
            api_key=key,
            base_url=self.base_url,
            # Positional: test subclasses override ``transport(self, store)``.
            transport=self.transport(store),
            max_concurrency=self.max_concurrency,
            requests_per_second=self.requests_per_second,
            max_retries=self.max_retries,
        )

    def transport(self, store: DataStore | None = None) -> httpx.AsyncBaseTransport | None:
        """None means the real network; tests override this to inject a MockTransport."""
        source = self.source()
        if source == "polygon":
            return None
        if source == "local":
            local = provenance.local_settings()
            claim_for_local(self.store(store), local)
            from smallcaps_assets.sources.local import LocalPolygonTransport

            return LocalPolygonTransport(_local_bars(local))
        sim = simulator_settings(self.store(store))
        _announce_simulation(sim)
        from smallcaps_assets.sources.simulator import SimulatedPolygonTransport

        return SimulatedPolygonTransport(_market(sim))


@lru_cache(maxsize=4)
def _market(sim: SimulatorSettings) -> "SimulatedMarket":
    from smallcaps_assets.sources.simulator import SimulatedMarket

    return SimulatedMarket(provenance.sim_config(sim))


@lru_cache(maxsize=8)
def _announce_simulation(sim: SimulatorSettings) -> None:
    log.warning(
        "POLYGON_API_KEY is not set: market data comes from the built-in SIMULATED market "
        "(seed=%s, tickers=%s, signal=%s). Set POLYGON_API_KEY to use Polygon.io.",
        sim.seed,
        sim.n_tickers,
        sim.signal,
    )


@lru_cache(maxsize=4)
def _local_bars(local: LocalBarsSettings) -> "LocalBars":
    # One index per folder and process: every run in the process shares its cached reads.
    from smallcaps_assets.sources.local import LocalBars

    log.warning(
        "%s is set: market data comes from the LOCAL files in %s (naive timestamps read as %s)",
        settings.LOCAL_BARS_ENV,
        local.path,
        local.timezone,
    )
    return LocalBars(local.path, local.timezone)


class CatalogDuckDBResource(DuckDBResource):
    """The DuckDB catalog. An empty ``database`` means ``<data root>/smallcaps.duckdb`` (the
    project's ``data/`` when the root is on object storage), derived when a run opens it rather
    than when the code location is imported, so ``SMALLCAPS_DATA_DIR`` set after the import is
    the one used."""

    database: str = Field(
        default="",
        description="Path to the DuckDB database; empty: smallcaps.duckdb in the data root.",
    )

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    def resolved(self) -> "CatalogDuckDBResource":
        """This resource with ``database`` filled in (itself when it already names one)."""
        if self.database:
            return self
        # defs/catalog.py imports this module: import its path rule when it is used.
        from smallcaps_assets.defs.catalog import default_duckdb_path

        return CatalogDuckDBResource(
            database=default_duckdb_path(), connection_config=self.connection_config
        )

    def create_resource(self, context: dg.InitResourceContext) -> "CatalogDuckDBResource":
        # What an asset receives: the path derived now, so ``duckdb.database`` names the file.
        return self.resolved()

    @contextmanager
    def get_connection(self) -> Iterator["duckdb.DuckDBPyConnection"]:
        resolved = self.resolved()
        if resolved is self:
            with super().get_connection() as conn:
                yield conn
        else:
            with resolved.get_connection() as conn:
                yield conn


class UniverseRulesResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Small-cap screen, gap threshold and watchlist thresholds, plus the universe size bounds.

    Defaults are :class:`~smallcaps_assets.core.universe.UniverseRules`'. ``min_listed_share`` and
    ``max_listed_share`` bound the universe as a share of the session's listed common stocks
    on a major exchange that have a previous close; a universe outside them means a broken input
    (a missing details download, a price feed in cents), not a market regime.
    """

    price_min: float = UniverseRules.price_min
    price_max: float = UniverseRules.price_max
    market_cap_max: float = UniverseRules.market_cap_max
    shares_max: float = UniverseRules.shares_max
    gap_min: float = UniverseRules.gap_min
    premarket_volume_min: float = UniverseRules.premarket_volume_min
    premarket_rvol_min: float = UniverseRules.premarket_rvol_min
    min_members: int = 1
    min_listed_share: float = 0.05
    max_listed_share: float = 0.95

    def rules(self) -> UniverseRules:
        return UniverseRules(
            price_min=self.price_min,
            price_max=self.price_max,
            market_cap_max=self.market_cap_max,
            shares_max=self.shares_max,
            gap_min=self.gap_min,
            premarket_volume_min=self.premarket_volume_min,
            premarket_rvol_min=self.premarket_rvol_min,
        )


class ResearchSettingsResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Feature normalization and triple-barrier settings (defaults: raw features, +15 % / -10 % /
    15 minutes). Changing them changes what downstream models learn: rematerialize the event
    partitions after a change."""

    winsorize: float | None = None
    zscore: bool = False
    take_profit: float = BarrierRules.take_profit
    stop: float = BarrierRules.stop
    timeout_minutes: int = BarrierRules.timeout_minutes

    def barrier_rules(self) -> BarrierRules:
        return BarrierRules(
            take_profit=self.take_profit, stop=self.stop, timeout_minutes=self.timeout_minutes
        )
