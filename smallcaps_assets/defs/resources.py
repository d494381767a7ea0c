"""Resources: the data store and the market-data client (Polygon, local files or the simulated
market)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import dagster as dg
import httpx

from smallcaps_assets import settings
from smallcaps_assets.core.labels import BarrierRules
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.core.universe import UniverseRules
from smallcaps_assets.settings import SOURCE_FILE, LocalBarsSettings, SimulatorSettings
from smallcaps_assets.sources.polygon import PolygonClient

if TYPE_CHECKING:
    from smallcaps_assets.sources.local import LocalBars

Source = Literal["polygon", "local", "simulated"]

log = logging.getLogger("smallcaps_assets.source")

SIM_ENV = {
    "seed": "SMALLCAPS_SIM_SEED",
    "n_tickers": "SMALLCAPS_SIM_TICKERS",
    "signal": "SMALLCAPS_SIM_SIGNAL",
    "history_start": "SMALLCAPS_SIM_START",
}


class DataStoreResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The data root: a local folder (default ``data/`` in the project) or an fsspec URL."""

    root: str = ""

    def store(self) -> DataStore:
        return DataStore(self.root or settings.data_root())


class MarketDataResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Polygon.io when ``POLYGON_API_KEY`` is set, the user's bar files when
    ``SMALLCAPS_LOCAL_BARS`` names a folder (docs/local-files.md), otherwise the built-in
    simulated market. Both set is refused: a data root holds one source.

    The key is read from the environment when a client is built and is never part of this
    resource's config, so it cannot leak into run config, metadata or the UI.
    """

    base_url: str = "https://api.polygon.io"
    max_concurrency: int = 8
    requests_per_second: float | None = None
    max_retries: int = 6

    def source(self) -> Source:
        local = settings.local_bars()
        if settings.polygon_api_key() is not None:
            if local is not None:
                raise SourceMismatchError(
                    f"both POLYGON_API_KEY and {settings.LOCAL_BARS_ENV} are set; a data root holds "
                    "one source, so unset one of them"
                )
            return "polygon"
        return "local" if local is not None else "simulated"

    def is_simulated(self) -> bool:
        return self.source() == "simulated"

    def source_label(self, store: DataStore) -> str:
        source = self.source()
        if source == "polygon":
            return "polygon"
        if source == "local":
            return f"local({_local_settings().path})"
        sim = simulator_settings(store)
        return f"simulated(seed={sim.seed}, tickers={sim.n_tickers}, signal={sim.signal})"

    def check_sessions(self, store: DataStore, sessions: list[dt.date]) -> None:
        """Refuse bad input before a raw run writes anything: the local source reads and
        validates now the files that serve these sessions (and the one before the first);
        the network sources have nothing to check up front."""
        if self.source() != "local" or not sessions:
            return
        local = _local_settings()
        claim_for_local(store, local, dry_run=True)
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

    def client(self, store: DataStore) -> PolygonClient:
        source = self.source()
        key = settings.polygon_api_key() if source == "polygon" else None
        if source == "polygon":
            claim_for_polygon(store)
        return PolygonClient(
            api_key=key,
            base_url=self.base_url,
            transport=self.transport(store),
            max_concurrency=self.max_concurrency,
            requests_per_second=self.requests_per_second,
            max_retries=self.max_retries,
        )

    def transport(self, store: DataStore) -> httpx.AsyncBaseTransport | None:
        """None means the real network; tests override this to inject a MockTransport."""
        source = self.source()
        if source == "polygon":
            return None
        if source == "local":
            local = _local_settings()
            claim_for_local(store, local)
            from smallcaps_assets.sources.local import LocalPolygonTransport

            return LocalPolygonTransport(_local_bars(local))
        sim = simulator_settings(store)
        _announce_simulation(sim)
        from smallcaps_assets.sources.simulator import SimulatedPolygonTransport

        return SimulatedPolygonTransport(_market(sim))


@lru_cache(maxsize=4)
def _market(sim: SimulatorSettings):  # type: ignore[no-untyped-def]
    from smallcaps_assets.sources.simulator import SimulatedMarket

    return SimulatedMarket(_sim_config(sim))


def _sim_config(sim: SimulatorSettings):  # type: ignore[no-untyped-def]
    """The simulator's config for ``sim``; raises ValueError naming what it refuses (a ticker
    count below 1, a negative seed or signal, ...)."""
    from smallcaps_assets.sources.simulator import SimConfig

    return SimConfig(
        seed=sim.seed,
        n_tickers=sim.n_tickers,
        signal=sim.signal,
        history_start=sim.history_start,
    )


@lru_cache(maxsize=8)
def _announce_simulation(sim: SimulatorSettings) -> None:
    log.warning(
        "POLYGON_API_KEY is not set: market data comes from the built-in SIMULATED market "
        "(seed=%s, tickers=%s, signal=%s). Set POLYGON_API_KEY to use Polygon.io.",
        sim.seed,
        sim.n_tickers,
        sim.signal,
    )


def _local_settings() -> LocalBarsSettings:
    local = settings.local_bars()
    if local is None:  # only called once source() said "local"
        raise RuntimeError(f"{settings.LOCAL_BARS_ENV} is not set")
    return local


@lru_cache(maxsize=4)
def _local_bars(local: LocalBarsSettings) -> LocalBars:
    # One index per folder and process: every run in the process shares its cached reads.
    from smallcaps_assets.sources.local import LocalBars

    log.warning(
        "%s is set: market data comes from the LOCAL files in %s (naive timestamps read as %s)",
        settings.LOCAL_BARS_ENV,
        local.path,
        local.timezone,
    )
    return LocalBars(local.path, local.timezone)


class SimulatorMismatchError(ValueError):
    """A data root asked to mix market-data sources (or two configurations of one)."""


# Every refused mix of sources raises this one error type (the CLI catches it by either name).
SourceMismatchError = SimulatorMismatchError

_SOURCE_NAMES = {"polygon": "Polygon.io data", "simulated": "the simulated market"}


def _recorded_source(store: DataStore) -> str | None:
    text = store.read_text(SOURCE_FILE)
    return str(json.loads(text)["source"]) if text else None


def _describe(store: DataStore, source: str) -> str:
    if source == "local":
        recorded = LocalBarsSettings.from_json(store.read_text(SOURCE_FILE) or "")
        return f"local bars from {recorded.path} (timezone {recorded.timezone})"
    return _SOURCE_NAMES.get(source, source)


def claim_for_polygon(store: DataStore) -> None:
    """Mark a data root as holding Polygon.io data, refusing one built from another source: they
    never mix in one root (nor the other way round: see :func:`simulator_settings`)."""
    source = _recorded_source(store)
    if source is None:
        store.write_text(SOURCE_FILE, json.dumps({"source": "polygon"}, indent=2))
    elif source != "polygon":
        raise SourceMismatchError(
            f"the data root {store.root} holds {_describe(store, source)}, but POLYGON_API_KEY is "
            "set; use another data directory (SMALLCAPS_DATA_DIR) for Polygon.io data"
        )


def claim_for_local(store: DataStore, local: LocalBarsSettings, *, dry_run: bool = False) -> None:
    """Mark a data root as built from the local bars in ``local.path``, refusing a root built
    from Polygon, the simulator, another folder or another timezone (``dry_run``: only refuse)."""
    source = _recorded_source(store)
    if source is None:
        if not dry_run:
            store.write_text(SOURCE_FILE, local.to_json())
        return
    recorded = (
        LocalBarsSettings.from_json(store.read_text(SOURCE_FILE) or "")
        if source == "local"
        else None
    )
    if recorded != local:
        raise SourceMismatchError(
            f"the data root {store.root} holds {_describe(store, source)}, but "
            f"{settings.LOCAL_BARS_ENV} asks for local bars from {local.path} (timezone "
            f"{local.timezone}); use another data directory (SMALLCAPS_DATA_DIR) for them"
        )


def simulator_settings(store: DataStore) -> SimulatorSettings:
    """The simulator a data root is built from: what it was first built with (``source.json``),
    so every later run extends the same market; environment overrides must agree with it."""
    recorded_source = _recorded_source(store)
    if recorded_source in ("polygon", "local"):
        # A lost secret (or variable) must not turn a real data root into a simulated one.
        setting = "POLYGON_API_KEY" if recorded_source == "polygon" else settings.LOCAL_BARS_ENV
        raise SimulatorMismatchError(
            f"the data root {store.root} holds {_describe(store, recorded_source)}, but {setting} "
            "is not set; set it, or use another data directory for the simulated market"
        )
    if settings.local_bars() is not None:
        raise SimulatorMismatchError(
            f"{settings.LOCAL_BARS_ENV} is set: market data comes from local files, not from the "
            "simulated market"
        )
    recorded_text = store.read_text(SOURCE_FILE)
    recorded = SimulatorSettings.from_json(recorded_text) if recorded_text else None
    requested = _requested_from_env(recorded or SimulatorSettings())
    try:
        _sim_config(requested)
    except ValueError as exc:
        # Refused before source.json is written: an invalid market must not claim the root.
        given = ", ".join(
            f"{env}={os.environ[env]}" for env in SIM_ENV.values() if os.environ.get(env)
        )
        where = f" from {given}" if given else f" recorded in {store.root}/{SOURCE_FILE}"
        raise ValueError(f"the simulated market{where} cannot be built: {exc}") from exc
    if recorded is None:
        store.write_text(SOURCE_FILE, requested.to_json())
        return requested
    if requested != recorded:
        raise SimulatorMismatchError(
            f"the data root {store.root} was built from the simulated market {recorded}, but the "
            f"environment asks for {requested}; use another data directory (SMALLCAPS_DATA_DIR "
            "or --data-dir) for a different market"
        )
    return recorded


def _requested_from_env(base: SimulatorSettings) -> SimulatorSettings:
    import dataclasses
    import datetime as dt

    overrides: dict[str, object] = {}
    for name, env in SIM_ENV.items():
        raw = os.environ.get(env)
        if raw is None or raw == "":
            continue
        try:
            if name == "history_start":
                overrides[name] = dt.date.fromisoformat(raw)
            elif name == "signal":
                overrides[name] = float(raw)
            else:
                overrides[name] = int(raw)
        except ValueError as exc:
            raise ValueError(f"{env}={raw!r} is not a valid {name}") from exc
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


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
