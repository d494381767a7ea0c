"""`smallcaps sql` reads the DuckDB catalog's views when the catalog file exists (without loading
Dagster or Pandera), and builds the same views in memory over the files, saying so, when not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import duckdb
import polars as pl
import pytest

from smallcaps_assets import cli, settings
from smallcaps_assets.core.catalog import ViewSpec, view_statements
from smallcaps_assets.core.storage import DataStore, dataset_glob


@pytest.fixture
def root(tmp_path, monkeypatch) -> DataStore:
    store = DataStore(str(tmp_path / "data"))
    for day, rows in (("2024-03-01", 2), ("2024-03-04", 3)):
        store.write(
            "raw", "daily_bars", day, pl.DataFrame({"ticker": [f"T{i}" for i in range(rows)]})
        )
    monkeypatch.setenv(settings.DATA_DIR_ENV, store.root)
    return store


def write_catalog(store: DataStore) -> None:
    with duckdb.connect(settings.catalog_path()) as con:
        view = ViewSpec("raw", "daily_bars", dataset_glob(store, "raw", "daily_bars"))
        for statement in view_statements([view]):
            con.execute(statement)


def sql(capsys, query: str) -> tuple[int, str, str]:
    code = cli.main(["sql", query])
    out, err = capsys.readouterr()
    return code, out, err


def test_without_a_catalog_the_views_are_built_in_memory_and_it_says_so(root, capsys):
    code, out, err = sql(capsys, "select count(*) as n from raw.daily_bars")
    assert code == 0
    assert "│ 5   │" in out
    assert err == (
        f"smallcaps sql: no catalog at {root.root}/smallcaps.duckdb; querying views built in "
        f"memory over the files in {root.root}\n"
    )


def test_with_a_catalog_its_views_are_read_and_nothing_is_said(root, capsys):
    write_catalog(root)
    code, out, err = sql(capsys, "select count(*) as n from raw.daily_bars")
    assert (code, err) == (0, "")
    assert "│ 5   │" in out


def test_a_query_on_the_catalog_loads_neither_dagster_nor_pandera(root):
    write_catalog(root)
    probe = textwrap.dedent(
        """
        import sys
        from smallcaps_assets.cli import main

        assert main(["sql", "select 1"]) == 0
        print(sorted(m for m in ("dagster", "pandera", "mlflow") if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=os.environ, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    assert done.stderr == ""


def test_no_data_and_no_catalog_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "empty"))
    code, out, err = sql(capsys, "select 1")
    assert (code, out) == (2, "")
    assert err == f"smallcaps: no data under {tmp_path / 'empty'}: run `make demo` first\n"
