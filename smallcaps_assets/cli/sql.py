"""``smallcaps sql``: a query over the DuckDB catalog's views (``raw.daily_bars``,
``processed.universe``, ...), printed as a table."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
import polars as pl

from smallcaps_assets import settings
from smallcaps_assets.cli.errors import CliError
from smallcaps_assets.core.catalog import ViewSpec, view_statements
from smallcaps_assets.core.storage import DataStore, dataset_glob
from smallcaps_assets.defs.catalog import default_duckdb_path


def run(args: argparse.Namespace) -> int:
    con = catalog_connection()
    try:
        frame = con.sql(args.query).pl()
    except duckdb.Error as exc:
        raise CliError(f"query failed: {exc}") from exc
    finally:
        con.close()
    with pl.Config(tbl_rows=args.max_rows, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60):
        print(frame)
    return 0


def catalog_connection() -> duckdb.DuckDBPyConnection:
    """Read-only on the catalog file; in-memory views when the file is missing or locked by a writer."""
    path = default_duckdb_path()
    if Path(path).exists():
        try:
            return duckdb.connect(path, read_only=True)
        except duckdb.Error:
            pass  # a run holds the write lock; fall back to fresh views over the same files
    store = DataStore(settings.data_root())
    views = []
    for layer_dir in sorted(Path(store.root).glob("*/")) if "://" not in store.root else []:
        if layer_dir.name.startswith(("_", ".")):
            continue
        for dataset_dir in sorted(layer_dir.glob("*/")):
            if store.partitions(layer_dir.name, dataset_dir.name):
                views.append(
                    ViewSpec(
                        layer_dir.name,
                        dataset_dir.name,
                        dataset_glob(store, layer_dir.name, dataset_dir.name),
                    )
                )
    if not views:
        raise CliError(f"no data under {store.root}: run `make demo` first")
    con = duckdb.connect()
    for statement in view_statements(views):
        con.execute(statement)
    return con
