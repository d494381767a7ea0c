"""Where things live and which market source to use, read from the environment.

Secrets (the Polygon key) are read here and only here, at the moment a client is built; they are
never stored in Dagster config, metadata or logs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

API_KEY_ENV = "POLYGON_API_KEY"
DATA_DIR_ENV = "SMALLCAPS_DATA_DIR"
MLRUNS_DIR_ENV = "SMALLCAPS_MLRUNS_DIR"
LOCAL_BARS_ENV = "SMALLCAPS_LOCAL_BARS"
LOCAL_TIMEZONE_ENV = "SMALLCAPS_LOCAL_TIMEZONE"
SOURCE_FILE = "source.json"
CATALOG_FILE = "smallcaps.duckdb"


def project_root() -> Path:
    """The checkout this package lives in (falls back to the working directory when installed)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def data_root() -> str:
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return configured if "://" in configured else str(Path(configured).expanduser().resolve())
    return str(project_root() / "data")


def catalog_path() -> str:
    """The DuckDB catalog: ``smallcaps.duckdb`` in the data root; DuckDB needs a local file, so a
    data root on object storage keeps its catalog in the project's ``data/``."""
    root = data_root()
    base = root if "://" not in root else str(project_root() / "data")
    return f"{base}/{CATALOG_FILE}"


def mlruns_root() -> Path:
    configured = os.environ.get(MLRUNS_DIR_ENV)
    return Path(configured).expanduser().resolve() if configured else project_root() / "mlruns"


def polygon_api_key() -> str | None:
    key = os.environ.get(API_KEY_ENV, "").strip()
    return key or None


@dataclass(frozen=True)
class LocalBarsSettings:
    """The folder of the user's own bar files a data root is built from (``source.json``), and
    the timezone of its naive timestamps."""

    path: str
    timezone: str = "America/New_York"

    def to_json(self) -> str:
        return json.dumps({"source": "local", "local": asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LocalBarsSettings:
        payload = json.loads(text)["local"]
        return cls(path=str(payload["path"]), timezone=str(payload["timezone"]))


def local_bars() -> LocalBarsSettings | None:
    """``SMALLCAPS_LOCAL_BARS`` (resolved to an absolute path) and ``SMALLCAPS_LOCAL_TIMEZONE``."""
    folder = os.environ.get(LOCAL_BARS_ENV, "").strip()
    if not folder:
        return None
    timezone = os.environ.get(LOCAL_TIMEZONE_ENV, "").strip() or LocalBarsSettings.timezone
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"{LOCAL_TIMEZONE_ENV}={timezone!r} is not an IANA timezone (e.g. America/New_York)"
        ) from exc
    return LocalBarsSettings(str(Path(folder).expanduser().resolve()), timezone)


@dataclass(frozen=True)
class SimulatorSettings:
    """The simulated market a data root was built from; kept beside the data so every later run
    (CLI, UI, schedule) keeps generating the same market."""

    seed: int = 7
    n_tickers: int = 300
    signal: float = 1.0
    history_start: dt.date = dt.date(2018, 1, 2)

    def to_json(self) -> str:
        payload = asdict(self)
        payload["history_start"] = self.history_start.isoformat()
        return json.dumps({"source": "simulated", "simulator": payload}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SimulatorSettings:
        payload = json.loads(text)["simulator"]
        return cls(
            seed=int(payload["seed"]),
            n_tickers=int(payload["n_tickers"]),
            signal=float(payload["signal"]),
            history_start=dt.date.fromisoformat(payload["history_start"]),
        )
