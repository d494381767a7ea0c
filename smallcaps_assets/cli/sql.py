"""``smallcaps sql``: a query over the DuckDB catalog's views (``raw.daily_bars``,
``processed.universe``, ...), printed as a table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import polars as pl

from smallcaps_assets import settings
from smallcaps_assets.cli.errors import CliError


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


def catalog_connection(*, quiet: bool = False) -> duckdb.DuckDBPyConnection:
    """The catalog file, read-only. Without it (no catalog run yet), or while a run holds its
    write lock, the same views built in memory over the data root's files, said in one line on
    stderr unless ``quiet``."""
    path = settings.catalog_path()
    if Path(path).exists():
        try:
            return duckdb.connect(path, read_only=True)
        except duckdb.Error:
            reason = f"the catalog {path} is locked by a running write"
    else:
        reason = f"no catalog at {path}"
    con, root = _views_in_memory()
    if not quiet:
        print(
            f"smallcaps sql: {reason}; querying views built in memory over the files in {root}",
            file=sys.stderr,
            flush=True,
        )
    return con


def _views_in_memory() -> tuple[duckdb.DuckDBPyConnection, str]:
    """A view per dataset with partition files under the data root, in an in-memory database."""
    from smallcaps_assets.core.catalog import ViewSpec, view_statements
    from smallcaps_assets.core.storage import DataStore, dataset_glob

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
    return con, store.root
