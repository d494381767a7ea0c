"""Partitioned parquet storage under one data root (a local folder or any fsspec URL).

Layout: ``<root>/<layer>/<dataset>/date=YYYY-MM-DD/part-0.parquet`` so DuckDB and Polars can prune
by date. Writes are atomic (temporary file, then rename) and replace the partition, never append.
Raw data is immutable: a re-download that differs keeps the earlier file under ``_versions/``.

Write-audit-publish: a frame that fails its checks never becomes the partition. It is kept under
``_quarantine/`` with a ``REJECTED.json`` marker beside it, and until a later frame passes and is
published, reading that partition raises :class:`RejectedPartitionError` (so nothing downstream,
in this run or a later one, builds on a partition whose latest audit failed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import posixpath
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import fsspec
import polars as pl
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

PART_FILE = "part-0.parquet"
VERSIONS_DIR = "_versions"
QUARANTINE_DIR = "_quarantine"
REJECTION_FILE = "REJECTED.json"


class RejectedPartitionError(RuntimeError):
    """The partition's latest frame failed its blocking checks; the stored file is an older one."""


class WriteOutcome(StrEnum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    REPLACED = "replaced"
    VERSIONED = "versioned"  # raw only: the earlier, different file was kept as a version


@dataclass(frozen=True)
class WriteReport:
    path: str
    outcome: WriteOutcome
    rows: int
    sha256: str
    previous_version: str | None = None


class DataStore:
    """Reads and writes partition files under ``root``; ``root`` may be a path or fsspec URL."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        fs, base = url_to_fs(self.root)
        self._fs: fsspec.AbstractFileSystem = fs
        self._base: str = base
        self._is_local = "file" in (
            fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        )

    def __repr__(self) -> str:
        return f"DataStore({self.root!r})"

    # -- paths -------------------------------------------------------------------------------
    def dataset_dir(self, layer: str, dataset: str) -> str:
        return posixpath.join(self._base, layer, dataset)

    def partition_path(self, layer: str, dataset: str, day: dt.date | str) -> str:
        return posixpath.join(self.dataset_dir(layer, dataset), f"date={_iso(day)}", PART_FILE)

    def url(self, path: str) -> str:
        """The path as a URL a reader outside this store (DuckDB, Polars) understands."""
        if self._is_local:
            return path
        return str(self._fs.unstrip_protocol(path))

    def exists(self, layer: str, dataset: str, day: dt.date | str) -> bool:
        return bool(self._fs.exists(self.partition_path(layer, dataset, day)))

    def partitions(self, layer: str, dataset: str) -> list[str]:
        """Partition keys (ISO dates) that have a file, sorted."""
        pattern = posixpath.join(self.dataset_dir(layer, dataset), "date=*", PART_FILE)
        keys = [
            posixpath.basename(posixpath.dirname(p)).removeprefix("date=")
            for p in self._fs.glob(pattern)
        ]
        return sorted(keys)

    # -- reading -----------------------------------------------------------------------------
    def read(self, layer: str, dataset: str, day: dt.date | str) -> pl.DataFrame:
        """The partition's frame; refuses a partition whose latest audit failed."""
        path = self.partition_path(layer, dataset, day)
        exists = bool(self._fs.exists(path))
        rejection = self.rejection(layer, dataset, day)
        if rejection is not None:
            raise RejectedPartitionError(
                _rejection_message(layer, dataset, day, rejection, has_file=exists)
            )
        if not exists:
            raise FileNotFoundError(
                f"{layer}/{dataset} has no partition {_iso(day)} (expected {self.url(path)}); "
                "materialize it first"
            )
        return self._read_path(path)

    def row_count(self, layer: str, dataset: str, day: dt.date | str) -> int:
        """Rows of a stored partition, from the parquet footer (the data is not read)."""
        with self._fs.open(self.partition_path(layer, dataset, day), "rb") as fh:
            return int(pq.ParquetFile(fh).metadata.num_rows)

    def _read_path(self, path: str) -> pl.DataFrame:
        with self._fs.open(path, "rb") as fh:
            return pl.read_parquet(fh, hive_partitioning=False)

    def read_many(self, layer: str, dataset: str, days: list[dt.date] | list[str]) -> pl.DataFrame:
        frames = [self.read(layer, dataset, d) for d in days]
        return pl.concat(frames, how="vertical") if frames else pl.DataFrame()

    # -- writing -----------------------------------------------------------------------------
    def write(self, layer: str, dataset: str, day: dt.date | str, df: pl.DataFrame) -> WriteReport:
        """Replace the partition atomically (derived layers)."""
        path = self.partition_path(layer, dataset, day)
        payload = _to_parquet_bytes(df)
        existed = bool(self._fs.exists(path))
        self._publish(path, payload)
        self._clear_rejection(layer, dataset, day)
        outcome = WriteOutcome.REPLACED if existed else WriteOutcome.CREATED
        return WriteReport(
            path=self.url(path), outcome=outcome, rows=df.height, sha256=_sha(payload)
        )

    def write_immutable(
        self,
        layer: str,
        dataset: str,
        day: dt.date | str,
        df: pl.DataFrame,
        *,
        ingested_at: dt.datetime,
    ) -> WriteReport:
        """Write a raw partition; never lose an earlier download that differs from this one."""
        path = self.partition_path(layer, dataset, day)
        payload = _to_parquet_bytes(df)
        digest = _sha(payload)
        if not self._fs.exists(path):
            self._publish(path, payload)
            self._clear_rejection(layer, dataset, day)
            return WriteReport(self.url(path), WriteOutcome.CREATED, df.height, digest)
        previous = self._read_path(path)
        self._clear_rejection(layer, dataset, day)
        if _same_content(previous, df):
            return WriteReport(self.url(path), WriteOutcome.UNCHANGED, df.height, digest)
        stamp = ingested_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        version_path = posixpath.join(
            self._base, VERSIONS_DIR, layer, dataset, f"date={_iso(day)}", f"part-0.{stamp}.parquet"
        )
        self._fs.makedirs(posixpath.dirname(version_path), exist_ok=True)
        self._fs.copy(path, version_path)
        self._publish(path, payload)
        return WriteReport(
            self.url(path),
            WriteOutcome.VERSIONED,
            df.height,
            digest,
            previous_version=self.url(version_path),
        )

    # -- quarantine ----------------------------------------------------------------------------
    def quarantine(
        self,
        layer: str,
        dataset: str,
        day: dt.date | str,
        df: pl.DataFrame,
        *,
        rejected_at: dt.datetime,
        failures: dict[str, dict[str, int]],
    ) -> str:
        """Keep a frame that failed its checks beside (never in place of) the partition, and mark
        the partition rejected; returns the quarantined file's URL."""
        stamp = rejected_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        folder = self._quarantine_dir(layer, dataset, day)
        path = posixpath.join(folder, f"part-0.{stamp}.parquet")
        self._publish(path, _to_parquet_bytes(df))
        marker = {
            "partition": _iso(day),
            "dataset": f"{layer}/{dataset}",
            "rejected_at": rejected_at.astimezone(dt.UTC).isoformat(),
            "rows": df.height,
            "quarantined": self.url(path),
            "failed_checks": failures,
        }
        self._publish(
            posixpath.join(folder, REJECTION_FILE), (json.dumps(marker, indent=2) + "\n").encode()
        )
        return self.url(path)

    def rejection(self, layer: str, dataset: str, day: dt.date | str) -> dict[str, Any] | None:
        """The marker of the partition's latest failed audit, or None when it passed."""
        marker = posixpath.join(self._quarantine_dir(layer, dataset, day), REJECTION_FILE)
        if not self._fs.exists(marker):
            return None
        with self._fs.open(marker, "rb") as fh:
            loaded: dict[str, Any] = json.loads(fh.read())
        return loaded

    def quarantined(self, layer: str, dataset: str, day: dt.date | str) -> list[str]:
        pattern = posixpath.join(self._quarantine_dir(layer, dataset, day), "*.parquet")
        return sorted(self.url(p) for p in self._fs.glob(pattern))

    def _quarantine_dir(self, layer: str, dataset: str, day: dt.date | str) -> str:
        return posixpath.join(self._base, QUARANTINE_DIR, layer, dataset, f"date={_iso(day)}")

    def _clear_rejection(self, layer: str, dataset: str, day: dt.date | str) -> None:
        # A frame that passed its audit was just published: the partition is good again (the
        # quarantined files stay for inspection).
        marker = posixpath.join(self._quarantine_dir(layer, dataset, day), REJECTION_FILE)
        if self._fs.exists(marker):
            self._fs.rm(marker)

    def versions(self, layer: str, dataset: str, day: dt.date | str) -> list[str]:
        pattern = posixpath.join(
            self._base, VERSIONS_DIR, layer, dataset, f"date={_iso(day)}", "*.parquet"
        )
        return sorted(self.url(p) for p in self._fs.glob(pattern))

    def write_text(self, relative_path: str, text: str) -> str:
        return self.write_bytes(relative_path, text.encode())

    def read_text(self, relative_path: str) -> str | None:
        data = self.read_bytes(relative_path)
        return None if data is None else data.decode()

    def write_bytes(self, relative_path: str, payload: bytes) -> str:
        """Replace the file at ``relative_path`` under the root atomically; returns its URL."""
        path = posixpath.join(self._base, relative_path)
        self._publish(path, payload)
        return self.url(path)

    def read_bytes(self, relative_path: str) -> bytes | None:
        """The file at ``relative_path`` under the root, or None when there is none."""
        path = posixpath.join(self._base, relative_path)
        if not self._fs.exists(path):
            return None
        with self._fs.open(path, "rb") as fh:
            data: bytes = fh.read()
        return data

    def files(self, relative_pattern: str) -> list[str]:
        """Paths relative to the root of the files matching a glob pattern, sorted."""
        prefix = self._base.rstrip("/") + "/"
        matches = self._fs.glob(posixpath.join(self._base, relative_pattern))
        return sorted(str(m).removeprefix(prefix) for m in matches)

    def _publish(self, path: str, payload: bytes) -> None:
        directory = posixpath.dirname(path)
        self._fs.makedirs(directory, exist_ok=True)
        if not self._is_local:
            # An object store PUT is all-or-nothing already; there is no rename to lean on.
            with self._fs.open(path, "wb") as fh:
                fh.write(payload)
            return
        tmp = posixpath.join(directory, f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")
        try:
            with self._fs.open(tmp, "wb") as fh:
                fh.write(payload)
            self._fs.mv(tmp, path)  # os.replace on a local filesystem: atomic
        finally:
            if self._fs.exists(tmp):
                self._fs.rm(tmp)


def _iso(day: dt.date | str) -> str:
    if isinstance(day, str):
        return dt.date.fromisoformat(day).isoformat()
    return day.isoformat()


def _rejection_message(
    layer: str, dataset: str, day: dt.date | str, marker: dict[str, Any], *, has_file: bool
) -> str:
    failed = ", ".join(
        f"{check} ({sum(cases.values())} failing)"
        for check, cases in (marker.get("failed_checks") or {}).items()
    )
    stored = (
        "the stored file is the earlier one, but nothing is built on it"
        if has_file
        else "no file was ever published, and nothing is built"
    )
    return (
        f"{layer}/{dataset} {_iso(day)} failed its checks when last materialized "
        f"({marker.get('rejected_at', '?')}: {failed or 'blocking checks failed'}); {stored} "
        "until the partition passes. The "
        f"rejected frame is at {marker.get('quarantined', '?')}. Re-materialize {layer}/{dataset} "
        f"for {_iso(day)} once the source is right, or delete its {REJECTION_FILE} under "
        f"{QUARANTINE_DIR}/ to accept the stored file."
    )


def _to_parquet_bytes(df: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    df.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def _sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _same_content(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    if a.schema != b.schema or a.height != b.height:
        return False
    return a.equals(b, null_equal=True)


def time_range(df: pl.DataFrame, column: str) -> dict[str, Any]:
    """First and last value of a temporal column, as ISO strings (None when empty)."""
    if df.is_empty() or column not in df.columns:
        return {"first": None, "last": None}
    lo, hi = df.select(pl.col(column).min().alias("lo"), pl.col(column).max().alias("hi")).row(0)
    return {
        "first": None if lo is None else lo.isoformat(),
        "last": None if hi is None else hi.isoformat(),
    }


def dataset_glob(store: DataStore, layer: str, dataset: str) -> str:
    """A glob over every partition file of a dataset, as readers outside the store spell it."""
    return store.url(posixpath.join(store.dataset_dir(layer, dataset), "date=*", PART_FILE))
