"""The demo builds and prints the watchlist of the window's last session that had gappers."""

from __future__ import annotations

import polars as pl

from smallcaps_assets.cli.demo import last_session_with_gappers
from smallcaps_assets.cli.report import watchlist_preview
from smallcaps_assets.core.storage import DataStore

KEYS = ["2024-12-26", "2024-12-27", "2024-12-30", "2024-12-31"]


def _watchlist(tickers: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"ticker": tickers}, schema={"ticker": pl.String()})


def test_the_last_session_with_gappers_is_chosen_not_an_empty_last_one(tmp_path):
    store = DataStore(str(tmp_path))
    store.write("processed", "watchlist", KEYS[0], _watchlist(["AAA"]))
    store.write("processed", "watchlist", KEYS[1], _watchlist(["BBB", "CCC"]))
    store.write("processed", "watchlist", KEYS[2], _watchlist([]))
    store.write("processed", "watchlist", KEYS[3], _watchlist([]))
    assert last_session_with_gappers(store, KEYS) == "2024-12-27"
    # A window without any gapper falls back to its last session.
    assert last_session_with_gappers(store, KEYS[2:]) == "2024-12-31"


def test_the_summary_prints_the_newest_watchlist(tmp_path):
    store = DataStore(str(tmp_path))
    assert watchlist_preview(store) == ""
    store.write_text("reports/watchlist/2024-12-26.md", "# Watchlist 2024-12-26\n\nold\n")
    store.write_text(
        "reports/watchlist/2024-12-27.md", "# Watchlist 2024-12-27\n\n## Gappers\n\n| BBB |\n"
    )
    preview = watchlist_preview(store)
    assert "reports/watchlist/2024-12-27.md" in preview
    assert "| BBB |" in preview
    assert "old" not in preview
