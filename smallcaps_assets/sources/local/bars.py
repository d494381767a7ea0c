"""A folder of the user's bar files, indexed once and read session by session.

Layout (``root`` is the folder ``SMALLCAPS_LOCAL_BARS`` names)::

    root/
      tickers.csv, splits.csv          optional reference files (see formats.read_*_csv)
      **/minute_aggs_v1/**/YYYY-MM-DD.csv[.gz]|.parquet   vendor minute flat files, one per session
      **/day_aggs_v1/**/YYYY-MM-DD.csv[.gz]|.parquet      vendor day flat files, one per session
      anything else *.csv[.gz] | *.parquet | *.json[.gz]  per-ticker minute files (plain OHLCV or
                                                          Alpha Vantage JSON), e.g. minute/GRI.json.gz

Other files (README.md, hidden files) are skipped and counted.

What is read when. The index is built on first use, once: it walks the folder, reads and
validates both reference files and every per-ticker file in full (they have to be read to know
which sessions they hold; they are kept in memory, split by session), and checks each flat
file's name (its session) and header (its columns). A flat file's rows are read and validated
when its session is first asked for, then kept in a small LRU cache (whole-market minute files
are large). :meth:`LocalBars.validate` reads the files that serve a list of sessions up front,
so a run can refuse a bad file before it writes anything.

A session's minute bars are its minute flat file and the per-ticker files' bars of that session
together; a bar two files agree on is kept once, two files disagreeing on a bar is an error.
A session's daily bars come from its day flat file when there is one (the vendor's own numbers),
otherwise they are aggregated from its minute bars (:func:`formats.daily_from_minutes`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

from smallcaps_assets.core import calendar
from smallcaps_assets.sources.local import formats
from smallcaps_assets.sources.local.errors import LocalBarsError

__all__ = ["CACHED_SESSIONS", "LocalBars", "LocalIndex"]

log = logging.getLogger("smallcaps_assets.source")

MINUTE_FOLDER: Final = "minute_aggs_v1"
DAY_FOLDER: Final = "day_aggs_v1"
TICKERS_FILE: Final = "tickers.csv"
SPLITS_FILE: Final = "splits.csv"
# Whole-market minute sessions kept in memory (a candidate's request spans 21 sessions).
CACHED_SESSIONS: Final = 32


@dataclass
class LocalIndex:
    """What the folder holds, built once by :meth:`LocalBars.index`."""

    minute_files: dict[dt.date, Path] = field(default_factory=dict)
    day_files: dict[dt.date, Path] = field(default_factory=dict)
    # Per-ticker minute bars by session (validated, merged across files).
    per_ticker: dict[dt.date, pl.DataFrame] = field(default_factory=dict)
    per_ticker_files: list[Path] = field(default_factory=list)
    tickers: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=formats.TICKERS_SCHEMA)
    )
    splits: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=formats.SPLITS_SCHEMA))
    skipped_files: list[Path] = field(default_factory=list)

    def sessions(self) -> list[dt.date]:
        """Every session some file holds bars of, ascending."""
        return sorted({*self.minute_files, *self.day_files, *self.per_ticker})


class LocalBars:
    """The market data in ``root``, read lazily and cached; safe to share between threads."""

    def __init__(
        self,
        root: Path | str,
        timezone: str = formats.DEFAULT_TIMEZONE,
        *,
        cached_sessions: int = CACHED_SESSIONS,
    ) -> None:
        self.root = Path(root)
        self.timezone = timezone
        self._cached_sessions = cached_sessions
        self._lock = threading.RLock()
        self._index: LocalIndex | None = None
        self._minutes: OrderedDict[dt.date, pl.DataFrame] = OrderedDict()
        self._daily: dict[dt.date, pl.DataFrame] = {}
        # Exactly repeated bars dropped, per file (or "a + b" for bars two files share).
        self.duplicates_dropped: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"LocalBars({str(self.root)!r}, timezone={self.timezone!r})"

    # -- the index ------------------------------------------------------------------------------
    def index(self) -> LocalIndex:
        with self._lock:
            if self._index is None:
                self._index = self._build_index()
            return self._index

    def _build_index(self) -> LocalIndex:
        if not self.root.is_dir():
            raise LocalBarsError(
                self.root, "is not a folder (SMALLCAPS_LOCAL_BARS names the folder)"
            )
        index = LocalIndex()
        per_ticker: list[tuple[str, pl.DataFrame]] = []
        for path in _walk(self.root):
            parts = path.relative_to(self.root).parts
            suffix = formats.file_suffix(path)
            if path.name.startswith(".") or suffix is None:
                index.skipped_files.append(path)
            elif len(parts) == 1 and path.name.lower() == TICKERS_FILE:
                index.tickers = formats.read_tickers_csv(path)
            elif len(parts) == 1 and path.name.lower() == SPLITS_FILE:
                index.splits = formats.read_splits_csv(path)
            elif MINUTE_FOLDER in parts[:-1]:
                self._add_flat(index.minute_files, path)
            elif DAY_FOLDER in parts[:-1]:
                self._add_flat(index.day_files, path)
            else:
                parsed = formats.read_minute_file(path, self.timezone)
                self._note_duplicates(str(path), parsed.exact_duplicates)
                per_ticker.append((str(path), parsed.frame))
                index.per_ticker_files.append(path)
        merged = formats.merge_bars(per_ticker)
        self._note_duplicates(" + ".join(name for name, _ in per_ticker), merged.exact_duplicates)
        if merged.frame.height:
            by_session = merged.frame.with_columns(
                _session=pl.col("window_start").dt.convert_time_zone(formats.NY).dt.date()
            ).partition_by("_session", as_dict=True, include_key=False)
            index.per_ticker = {key[0]: frame for key, frame in by_session.items()}
        log.info(
            "local bars %s: %d per-ticker file(s), %d minute and %d day flat file(s), %d "
            "session(s), %d file(s) skipped",
            self.root,
            len(index.per_ticker_files),
            len(index.minute_files),
            len(index.day_files),
            len(index.sessions()),
            len(index.skipped_files),
        )
        return index

    @staticmethod
    def _add_flat(files: dict[dt.date, Path], path: Path) -> None:
        session = formats.session_from_file_name(path)
        if session in files:
            raise LocalBarsError(
                path, f"a second file for session {session} (also {files[session]})"
            )
        columns = {c.strip().lower() for c in formats.table_columns(path)}
        missing = [c for c in formats.FLAT_REQUIRED if c not in columns]
        if missing:
            raise LocalBarsError(
                path, f"missing required column(s) {', '.join(missing)} of the flat-file layout"
            )
        files[session] = path

    def _note_duplicates(self, source: str, count: int) -> None:
        if count:
            self.duplicates_dropped[source] = self.duplicates_dropped.get(source, 0) + count
            log.warning("local bars: dropped %d exactly repeated bar(s) in %s", count, source)

    # -- sessions -------------------------------------------------------------------------------
    def sessions(self) -> list[dt.date]:
        return self.index().sessions()

    def reference_tickers(self) -> pl.DataFrame:
        """``tickers.csv`` (:data:`formats.TICKERS_SCHEMA`; empty without the file)."""
        return self.index().tickers

    def splits(self) -> pl.DataFrame:
        """``splits.csv`` (:data:`formats.SPLITS_SCHEMA`; empty without the file)."""
        return self.index().splits

    def minute_bars(self, day: dt.date) -> pl.DataFrame:
        """Every ticker's minute bars of session ``day`` (:data:`formats.MINUTE_SCHEMA`)."""
        index = self.index()
        with self._lock:
            cached = self._minutes.get(day)
            if cached is not None:
                self._minutes.move_to_end(day)
                return cached
            parts: list[tuple[str, pl.DataFrame]] = []
            flat = index.minute_files.get(day)
            if flat is not None:
                parsed = formats.read_flat_minutes(flat, day)
                self._note_duplicates(str(flat), parsed.exact_duplicates)
                parts.append((str(flat), parsed.frame))
            if day in index.per_ticker:
                parts.append(("the per-ticker files", index.per_ticker[day]))
            if len(parts) == 1:
                bars = parts[0][1]
            else:
                merged = formats.merge_bars(parts)
                self._note_duplicates(" + ".join(n for n, _ in parts), merged.exact_duplicates)
                bars = merged.frame
            self._minutes[day] = bars
            while len(self._minutes) > self._cached_sessions:
                self._minutes.popitem(last=False)
            return bars

    def daily_bars(self, day: dt.date) -> pl.DataFrame:
        """Every ticker's daily bar of session ``day`` (:data:`formats.DAILY_SCHEMA`): the day
        flat file's, else aggregated from the session's minute bars."""
        index = self.index()
        with self._lock:
            cached = self._daily.get(day)
            if cached is not None:
                return cached
            flat = index.day_files.get(day)
            if flat is not None:
                parsed = formats.read_flat_days(flat, day)
                self._note_duplicates(str(flat), parsed.exact_duplicates)
                daily = parsed.frame
            else:
                daily = formats.daily_from_minutes(self.minute_bars(day))
            self._daily[day] = daily
            return daily

    def tickers_with_bars(self, day: dt.date) -> set[str]:
        """Tickers that printed on ``day``: in its daily bars, or with any minute bar."""
        names = set(self.daily_bars(day).get_column("ticker").to_list())
        if day not in self.index().day_files:
            names |= set(self.minute_bars(day).get_column("ticker").unique().to_list())
        return names

    def validate(self, sessions: list[dt.date]) -> None:
        """Build the index and read every file that serves these sessions' daily bars (the day
        flat file, else the minute data), raising :class:`LocalBarsError` on the first bad one."""
        self.index()
        for day in sorted(set(sessions)):
            if calendar.is_session(day):
                self.daily_bars(day)

    def summary(self) -> dict[str, int]:
        """Counts for logs and metadata."""
        index = self.index()
        return {
            "per_ticker_files": len(index.per_ticker_files),
            "minute_flat_files": len(index.minute_files),
            "day_flat_files": len(index.day_files),
            "sessions": len(index.sessions()),
            "per_ticker_bars": sum(f.height for f in index.per_ticker.values()),
            "skipped_files": len(index.skipped_files),
            "exact_duplicates_dropped": sum(self.duplicates_dropped.values()),
        }


def _walk(root: Path) -> list[Path]:
    """Every file under ``root``, symlinks followed (fixtures are linked in, never copied)."""
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found.extend(Path(folder) / name for name in sorted(names))
    return found
