"""DuckDB catalog: one view per dataset over its partition files, so any SQL client sees every layer."""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


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
