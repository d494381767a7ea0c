"""DuckDB catalog: one view per dataset over its partition files, so any SQL client sees every layer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")

# What a catalog refresh made: one row per view and its row count (checked before it commits).
CATALOG_MODEL = pa.DataFrameSchema(
    {
        "view": pa.Column(
            pl.String,
            checks=pa.Check.str_matches(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$"),
            unique=True,
        ),
        "rows": pa.Column(pl.Int64, checks=pa.Check.ge(0)),
    },
    strict=True,
    name="CatalogModel",
)


@dataclass(frozen=True)
class ViewSpec:
    layer: str
    dataset: str
    glob: str  # absolute path or URL glob of the dataset's partition files

    @property
    def name(self) -> str:
        return f"{self.layer}.{self.dataset}"


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_statements(views: list[ViewSpec]) -> list[str]:
    """SQL that (re)creates each layer's schema and the datasets' views."""
    statements: list[str] = []
    for layer in sorted({v.layer for v in views}):
        _require_identifier(layer)
        statements.append(f"CREATE SCHEMA IF NOT EXISTS {layer}")
    for view in views:
        _require_identifier(view.layer)
        _require_identifier(view.dataset)
        statements.append(
            f"CREATE OR REPLACE VIEW {view.layer}.{view.dataset} AS SELECT * FROM read_parquet("
            f"{_quote_literal(view.glob)}, hive_partitioning = true, union_by_name = true)"
        )
    return statements


def _require_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a safe SQL identifier for a catalog view")


# Per month of the processed layer: universe size, candidates, halts and SSR among candidates,
# watchlist. Needs the views processed.universe, processed.minute_bars and processed.watchlist.
PROCESSED_MONTHLY_SQL = """
WITH u AS (
    SELECT date, count(*) AS members, count(*) FILTER (WHERE is_candidate) AS candidates
    FROM processed.universe GROUP BY date
), per_ticker AS (
    SELECT date, ticker, sum(halt_resumption::INTEGER) AS halts,
           bool_or(ssr_active) AS ssr, bool_or(ssr_trigger) AS triggered
    FROM processed.minute_bars GROUP BY date, ticker
), m AS (
    SELECT date, sum(halts) AS halts, count(*) FILTER (WHERE ssr) AS ssr_days,
           count(*) FILTER (WHERE triggered) AS ssr_triggers
    FROM per_ticker GROUP BY date
), w AS (
    SELECT date, count(*) FILTER (WHERE is_watchlist) AS watchlist
    FROM processed.watchlist GROUP BY date
)
SELECT strftime(u.date, '%Y-%m') AS month,
       count(*) AS sessions,
       round(avg(members), 1) AS avg_universe,
       min(members) AS min_universe,
       max(members) AS max_universe,
       sum(candidates)::BIGINT AS candidates,
       round(avg(candidates), 2) AS candidates_per_day,
       coalesce(sum(m.halts), 0)::BIGINT AS halts,
       coalesce(sum(m.ssr_days), 0)::BIGINT AS ssr_ticker_days,
       coalesce(sum(m.ssr_triggers), 0)::BIGINT AS ssr_triggers,
       coalesce(sum(w.watchlist), 0)::BIGINT AS watchlist
FROM u LEFT JOIN m USING (date) LEFT JOIN w USING (date)
GROUP BY 1 ORDER BY 1
"""
PROCESSED_MONTHLY_VIEWS = ("processed.universe", "processed.minute_bars", "processed.watchlist")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
