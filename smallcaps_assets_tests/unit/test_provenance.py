"""Source bookkeeping (sources/provenance.py): the first claim of a data root writes source.json,
a later run asking for another source or another configuration is refused, and settings that
cannot be used never claim a root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smallcaps_assets import settings
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.settings import SOURCE_FILE, LocalBarsSettings, SimulatorSettings
from smallcaps_assets.sources import provenance
from smallcaps_assets.sources.provenance import (
    SIM_ENV,
    SourceMismatchError,
    claim_for_local,
    claim_for_polygon,
    simulator_settings,
)

ENV = [
    settings.API_KEY_ENV,
    settings.LOCAL_BARS_ENV,
    settings.LOCAL_TIMEZONE_ENV,
    settings.DATA_DIR_ENV,
    *SIM_ENV.values(),
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def root(tmp_path: Path) -> DataStore:
    return DataStore(str(tmp_path / "data"))


def _recorded(store: DataStore) -> dict[str, object] | None:
    text = store.read_text(SOURCE_FILE)
    return None if text is None else json.loads(text)


def _folder(tmp_path: Path, name: str = "bars") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


def _claim(kind: str, store: DataStore, tmp_path: Path, folder: str) -> None:
    """Claim ``store`` as the given source would (``folder``: the local bars' folder name)."""
    if kind == "polygon":
        claim_for_polygon(store)
    elif kind == "local":
        claim_for_local(store, LocalBarsSettings(str(_folder(tmp_path, folder))))
    else:
        simulator_settings(store)


# -- the environment selects one source ----------------------------------------------------------
def test_the_environment_selects_polygon_local_or_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert provenance.requested_source() == "simulated"
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(_folder(tmp_path)))
    assert provenance.requested_source() == "local"
    assert provenance.local_settings() == LocalBarsSettings(str((tmp_path / "bars").resolve()))
    monkeypatch.delenv(settings.LOCAL_BARS_ENV)
    monkeypatch.setenv(settings.API_KEY_ENV, "sk-test")
    assert provenance.requested_source() == "polygon"
    monkeypatch.setenv(settings.API_KEY_ENV, "   ")  # blank is unset
    assert provenance.requested_source() == "simulated"


def test_a_polygon_key_and_local_bars_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.API_KEY_ENV, "sk-test")
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(_folder(tmp_path)))
    with pytest.raises(SourceMismatchError, match="both POLYGON_API_KEY and SMALLCAPS_LOCAL_BARS"):
        provenance.requested_source()


# -- the first claim writes source.json -----------------------------------------------------------
def test_first_polygon_claim_writes_source_json_and_a_repeat_is_fine(root: DataStore) -> None:
    assert provenance.recorded_source(root) is None
    claim_for_polygon(root)
    assert _recorded(root) == {"source": "polygon"}
    claim_for_polygon(root)
    assert provenance.recorded_source(root) == "polygon"


def test_first_local_claim_records_folder_and_timezone(tmp_path: Path, root: DataStore) -> None:
    local = LocalBarsSettings(str(_folder(tmp_path)), "America/Chicago")
    claim_for_local(root, local)
    assert _recorded(root) == {
        "source": "local",
        "local": {"path": local.path, "timezone": "America/Chicago"},
    }
    claim_for_local(root, local)  # the same folder and timezone again
    assert (
        provenance.describe(root, "local")
        == f"local bars from {local.path} (timezone America/Chicago)"
    )


def test_first_simulator_claim_records_the_requested_market(
    root: DataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "11")
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "40")
    sim = simulator_settings(root)
    assert sim == SimulatorSettings(seed=11, n_tickers=40)
    assert _recorded(root) == json.loads(sim.to_json())
    # Later runs extend the recorded market, with or without the variables.
    monkeypatch.delenv("SMALLCAPS_SIM_SEED")
    monkeypatch.delenv("SMALLCAPS_SIM_TICKERS")
    assert simulator_settings(root) == sim
    assert provenance.source_label(root) == "simulated(seed=11, tickers=40, signal=1.0)"


# -- a second claim with other settings is refused ------------------------------------------------
def test_another_simulated_market_is_refused_and_the_root_keeps_its_own(
    root: DataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulator_settings(root)
    before = root.read_text(SOURCE_FILE)
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "12")
    with pytest.raises(
        SourceMismatchError,
        match=r"was built from the simulated market .*seed=7.* asks for .*seed=12.*use another "
        r"data directory",
    ):
        simulator_settings(root)
    assert root.read_text(SOURCE_FILE) == before


@pytest.mark.parametrize(
    ("other", "match"),
    [
        ({"path": "other"}, r"holds local bars from .*bars .*asks for local bars from .*other"),
        ({"timezone": "America/Chicago"}, r"asks for .*\(timezone America/Chicago\)"),
    ],
)
def test_another_local_folder_or_timezone_is_refused(
    tmp_path: Path, root: DataStore, other: dict[str, str], match: str
) -> None:
    local = LocalBarsSettings(str(_folder(tmp_path)))
    claim_for_local(root, local)
    before = root.read_text(SOURCE_FILE)
    if "path" in other:
        other = {"path": str(_folder(tmp_path, other["path"]))}
    requested = LocalBarsSettings(**{"path": local.path, "timezone": local.timezone, **other})
    with pytest.raises(SourceMismatchError, match=match):
        claim_for_local(root, requested)
    with pytest.raises(SourceMismatchError, match=match):
        claim_for_local(root, requested, dry_run=True)
    assert root.read_text(SOURCE_FILE) == before


# -- polygon, local and simulated never mix in one root -------------------------------------------
KINDS = ["polygon", "local", "simulated"]
HELD = {
    "polygon": "Polygon.io data",
    "local": "local bars from",
    "simulated": "the simulated market",
}


@pytest.mark.parametrize(
    ("held", "asked"), [(h, a) for h in KINDS for a in KINDS if h != a], ids=lambda k: k
)
def test_sources_never_mix_in_one_data_root(
    tmp_path: Path, root: DataStore, monkeypatch: pytest.MonkeyPatch, held: str, asked: str
) -> None:
    _claim(held, root, tmp_path, "held")
    before = root.read_text(SOURCE_FILE)
    with pytest.raises(SourceMismatchError, match=f"holds {HELD[held]}") as refused:
        _claim(asked, root, tmp_path, "asked")
    assert "use another data directory" in str(refused.value)
    assert root.read_text(SOURCE_FILE) == before


def test_the_simulator_is_not_used_while_local_bars_are_asked_for(
    tmp_path: Path, root: DataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(_folder(tmp_path)))
    with pytest.raises(SourceMismatchError, match="market data comes from local files"):
        simulator_settings(root)
    assert _recorded(root) is None


# -- nothing written on invalid settings ----------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "value", "match"),
    [
        ("SMALLCAPS_SIM_TICKERS", "0", r"from SMALLCAPS_SIM_TICKERS=0 cannot be built: n_tickers"),
        ("SMALLCAPS_SIM_SEED", "-1", r"cannot be built: seed must be a non-negative"),
        ("SMALLCAPS_SIM_SIGNAL", "nan", r"cannot be built: signal must be a finite"),
        ("SMALLCAPS_SIM_SEED", "seven", r"SMALLCAPS_SIM_SEED='seven' is not a valid seed"),
        ("SMALLCAPS_SIM_START", "2018-13-01", r"SMALLCAPS_SIM_START='2018-13-01' is not a valid"),
    ],
)
def test_an_invalid_simulated_market_claims_nothing(
    root: DataStore, monkeypatch: pytest.MonkeyPatch, env: str, value: str, match: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValueError, match=match):
        simulator_settings(root)
    assert _recorded(root) is None


def test_an_invalid_local_timezone_claims_nothing(
    tmp_path: Path, root: DataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.LOCAL_BARS_ENV, str(_folder(tmp_path)))
    monkeypatch.setenv(settings.LOCAL_TIMEZONE_ENV, "Mars/Olympus")
    with pytest.raises(ValueError, match="SMALLCAPS_LOCAL_TIMEZONE='Mars/Olympus'"):
        provenance.source_label(root)
    assert _recorded(root) is None


def test_a_dry_run_local_claim_writes_nothing(tmp_path: Path, root: DataStore) -> None:
    claim_for_local(root, LocalBarsSettings(str(_folder(tmp_path))), dry_run=True)
    assert _recorded(root) is None


def test_provenance_imports_no_dagster() -> None:
    code = (
        "import sys, smallcaps_assets.sources.provenance\n"
        "assert not any(m == 'dagster' or m.startswith('dagster.') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
