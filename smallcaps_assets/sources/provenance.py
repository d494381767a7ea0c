"""Which market-data source a data root holds, and which one the environment asks for.

A data root holds one source: Polygon.io, the user's local bar files or the simulated market (and
for the last two, one folder and timezone, or one simulator configuration). The first run that
downloads into a root claims it by writing ``source.json``; every later run must ask for the same
source, or it is refused with :class:`SourceMismatchError` before anything is written. Settings
that cannot be used (a ticker count of 0, an unknown timezone) are refused before the claim, so an
invalid request never claims a root.

The environment is read when these functions are called, never at import time:
``POLYGON_API_KEY`` selects Polygon.io, ``SMALLCAPS_LOCAL_BARS`` (and
``SMALLCAPS_LOCAL_TIMEZONE``) the user's files, and otherwise the simulated market is used, with
``SMALLCAPS_SIM_*`` overriding the configuration recorded in the root (they must agree with it).

Pure bookkeeping: no Dagster here; ``defs/resources.py`` wraps it in the market resource.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Literal

from smallcaps_assets import settings
from smallcaps_assets.settings import SOURCE_FILE, LocalBarsSettings, SimulatorSettings

if TYPE_CHECKING:
    from smallcaps_assets.core.storage import DataStore
    from smallcaps_assets.sources.simulator import SimConfig

Source = Literal["polygon", "local", "simulated"]

SIM_ENV: Final[Mapping[str, str]] = {
    "seed": "SMALLCAPS_SIM_SEED",
    "n_tickers": "SMALLCAPS_SIM_TICKERS",
    "signal": "SMALLCAPS_SIM_SIGNAL",
    "history_start": "SMALLCAPS_SIM_START",
}

_SOURCE_NAMES: Final[Mapping[str, str]] = {
    "polygon": "Polygon.io data",
    "simulated": "the simulated market",
}


class SourceMismatchError(ValueError):
    """A data root asked to mix market-data sources (or two configurations of one)."""


# The earlier name, kept because callers catch the error by either name.
SimulatorMismatchError = SourceMismatchError


def requested_source() -> Source:
    """The source the environment selects: Polygon.io when ``POLYGON_API_KEY`` is set, the local
    files when ``SMALLCAPS_LOCAL_BARS`` is, otherwise the simulated market. Both set is refused:
    a data root holds one source. Raises ValueError for an invalid ``SMALLCAPS_LOCAL_TIMEZONE``."""
    local = settings.local_bars()
    if settings.polygon_api_key() is not None:
        if local is not None:
            raise SourceMismatchError(
                f"both POLYGON_API_KEY and {settings.LOCAL_BARS_ENV} are set; a data root holds "
                "one source, so unset one of them"
            )
        return "polygon"
    return "local" if local is not None else "simulated"


def local_settings() -> LocalBarsSettings:
    """The local bars the environment asks for; only called once the source is ``local``."""
    local = settings.local_bars()
    if local is None:
        raise RuntimeError(f"{settings.LOCAL_BARS_ENV} is not set")
    return local


def recorded_source(store: DataStore) -> str | None:
    """The source ``source.json`` records for this root, or None for an unclaimed root."""
    text = store.read_text(SOURCE_FILE)
    return str(json.loads(text)["source"]) if text else None


def describe(store: DataStore, source: str) -> str:
    """What the root holds, in words, for an error message."""
    if source == "local":
        recorded = LocalBarsSettings.from_json(store.read_text(SOURCE_FILE) or "")
        return f"local bars from {recorded.path} (timezone {recorded.timezone})"
    return _SOURCE_NAMES.get(source, source)


def claim_for_polygon(store: DataStore) -> None:
    """Mark a data root as holding Polygon.io data, refusing one built from another source: they
    never mix in one root (nor the other way round: see :func:`simulator_settings`)."""
    source = recorded_source(store)
    if source is None:
        store.write_text(SOURCE_FILE, json.dumps({"source": "polygon"}, indent=2))
    elif source != "polygon":
        raise SourceMismatchError(
            f"the data root {store.root} holds {describe(store, source)}, but POLYGON_API_KEY is "
            "set; use another data directory (SMALLCAPS_DATA_DIR) for Polygon.io data"
        )


def claim_for_local(store: DataStore, local: LocalBarsSettings, *, dry_run: bool = False) -> None:
    """Mark a data root as built from the local bars in ``local.path``, refusing a root built
    from Polygon, the simulator, another folder or another timezone (``dry_run``: only refuse)."""
    source = recorded_source(store)
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
            f"the data root {store.root} holds {describe(store, source)}, but "
            f"{settings.LOCAL_BARS_ENV} asks for local bars from {local.path} (timezone "
            f"{local.timezone}); use another data directory (SMALLCAPS_DATA_DIR) for them"
        )


def simulator_settings(store: DataStore) -> SimulatorSettings:
    """The simulator a data root is built from: what it was first built with (``source.json``),
    so every later run extends the same market; environment overrides must agree with it. An
    unclaimed root is claimed for the requested market once that market is known to be valid."""
    held = recorded_source(store)
    if held in ("polygon", "local"):
        # A lost secret (or variable) must not turn a real data root into a simulated one.
        setting = "POLYGON_API_KEY" if held == "polygon" else settings.LOCAL_BARS_ENV
        raise SourceMismatchError(
            f"the data root {store.root} holds {describe(store, held)}, but {setting} "
            "is not set; set it, or use another data directory for the simulated market"
        )
    if settings.local_bars() is not None:
        raise SourceMismatchError(
            f"{settings.LOCAL_BARS_ENV} is set: market data comes from local files, not from the "
            "simulated market"
        )
    recorded_text = store.read_text(SOURCE_FILE)
    recorded = SimulatorSettings.from_json(recorded_text) if recorded_text else None
    requested = requested_simulator(recorded or SimulatorSettings())
    try:
        sim_config(requested)
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
        raise SourceMismatchError(
            f"the data root {store.root} was built from the simulated market {recorded}, but the "
            f"environment asks for {requested}; use another data directory (SMALLCAPS_DATA_DIR "
            "or --data-dir) for a different market"
        )
    return recorded


def requested_simulator(base: SimulatorSettings) -> SimulatorSettings:
    """``base`` with the ``SMALLCAPS_SIM_*`` variables that are set applied; raises ValueError
    naming a variable whose value does not parse."""
    overrides: dict[str, int | float | dt.date] = {}
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


def sim_config(sim: SimulatorSettings) -> SimConfig:
    """The simulator's config for ``sim``; raises ValueError naming what it refuses (a ticker
    count below 1, a negative seed or signal, ...)."""
    # The simulator package takes seconds to import; only what asks for it pays.
    from smallcaps_assets.sources.simulator import SimConfig

    return SimConfig(
        seed=sim.seed,
        n_tickers=sim.n_tickers,
        signal=sim.signal,
        history_start=sim.history_start,
    )


def source_label(store: DataStore, source: Source | None = None) -> str:
    """The source in a few words for run metadata (``polygon``, ``local(<folder>)``,
    ``simulated(seed=…, tickers=…, signal=…)``); the simulated one is read from (or claims) the
    root like :func:`simulator_settings`."""
    source = source or requested_source()
    if source == "polygon":
        return "polygon"
    if source == "local":
        return f"local({local_settings().path})"
    sim = simulator_settings(store)
    return f"simulated(seed={sim.seed}, tickers={sim.n_tickers}, signal={sim.signal})"
