import datetime as dt
import os

import polars as pl
import pytest

from smallcaps_assets.core.storage import (
    DataStore,
    RejectedPartitionError,
    WriteOutcome,
    time_range,
)

DAY = dt.date(2024, 3, 1)
T0 = dt.datetime(2024, 3, 2, 12, tzinfo=dt.UTC)


def frame(close: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame({"ticker": ["AAA", "BBB"], "close": [close, 2.0]})


def test_layout_is_hive_style(tmp_path):
    store = DataStore(str(tmp_path))
    report = store.write("processed", "daily_bars", DAY, frame())
    assert report.path.endswith("processed/daily_bars/date=2024-03-01/part-0.parquet")
    assert store.partitions("processed", "daily_bars") == ["2024-03-01"]


def test_rewrite_replaces_without_duplicates(tmp_path):
    store = DataStore(str(tmp_path))
    store.write("processed", "x", DAY, frame())
    second = store.write("processed", "x", DAY, frame())
    assert second.outcome is WriteOutcome.REPLACED
    assert store.read("processed", "x", DAY).height == 2
    files = sorted(p.name for p in (tmp_path / "processed" / "x" / "date=2024-03-01").iterdir())
    assert files == ["part-0.parquet"]


def test_raw_same_download_is_unchanged_and_keeps_the_file(tmp_path):
    store = DataStore(str(tmp_path))
    first = store.write_immutable("raw", "x", DAY, frame(), ingested_at=T0)
    path = first.path
    mtime = os.stat(path).st_mtime_ns
    again = store.write_immutable("raw", "x", DAY, frame(), ingested_at=T0 + dt.timedelta(days=1))
    assert (first.outcome, again.outcome) == (WriteOutcome.CREATED, WriteOutcome.UNCHANGED)
    assert os.stat(path).st_mtime_ns == mtime
    assert store.versions("raw", "x", DAY) == []


def test_raw_different_download_keeps_earlier_version(tmp_path):
    store = DataStore(str(tmp_path))
    store.write_immutable("raw", "x", DAY, frame(1.0), ingested_at=T0)
    report = store.write_immutable(
        "raw", "x", DAY, frame(1.5), ingested_at=T0 + dt.timedelta(hours=1)
    )
    assert report.outcome is WriteOutcome.VERSIONED
    versions = store.versions("raw", "x", DAY)
    assert versions == [report.previous_version]
    assert pl.read_parquet(versions[0])["close"][0] == 1.0
    assert store.read("raw", "x", DAY)["close"][0] == 1.5
    # versions live outside the dataset folder so globs over the dataset never see them
    assert store.partitions("raw", "x") == ["2024-03-01"]


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    store = DataStore(str(tmp_path))
    store.write("processed", "x", DAY, frame(1.0))

    def broken_mv(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(store._fs, "mv", broken_mv)
    with pytest.raises(OSError, match="disk full"):
        store.write("processed", "x", DAY, frame(9.0))
    folder = tmp_path / "processed" / "x" / "date=2024-03-01"
    assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]
    assert store.read("processed", "x", DAY)["close"][0] == 1.0


def test_missing_partition_error_names_it(tmp_path):
    store = DataStore(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"raw/daily_bars has no partition 2024-03-01"):
        store.read("raw", "daily_bars", DAY)


def test_time_range():
    df = pl.DataFrame({"d": [dt.date(2024, 1, 3), dt.date(2024, 1, 1)]})
    assert time_range(df, "d") == {"first": "2024-01-01", "last": "2024-01-03"}
    assert time_range(df.clear(), "d") == {"first": None, "last": None}


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_files_round_trip_and_are_listed_relative_to_the_root(tmp_path, kind):
    root = str(tmp_path / "data") if kind == "local" else f"memory://files-{tmp_path.name}/data"
    store = DataStore(root)
    assert store.read_bytes("models/month=2024-08/models.pkl") is None
    assert store.files("models/month=*/models.pkl") == []
    for month in ("2024-09", "2024-08"):
        store.write_bytes(f"models/month={month}/models.pkl", month.encode())
    store.write_text("models/month=2024-10/notes.txt", "not a model")
    assert store.files("models/month=*/models.pkl") == [
        "models/month=2024-08/models.pkl",
        "models/month=2024-09/models.pkl",
    ]
    assert store.read_bytes("models/month=2024-09/models.pkl") == b"2024-09"
    # Replaced whole, never appended to.
    store.write_bytes("models/month=2024-09/models.pkl", b"refit")
    assert store.read_bytes("models/month=2024-09/models.pkl") == b"refit"
    assert store.read_text("models/month=2024-10/notes.txt") == "not a model"


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_a_quarantined_frame_leaves_the_partition_and_blocks_reads_until_one_passes(tmp_path, kind):
    root = str(tmp_path / "data") if kind == "local" else f"memory://wap-{tmp_path.name}/data"
    store = DataStore(root)
    good = pl.DataFrame({"x": [1, 2, 3]})
    store.write("processed", "daily_bars", DAY, good)
    canonical = store.partition_path("processed", "daily_bars", DAY)
    with store._fs.open(canonical, "rb") as fh:
        good_bytes = fh.read()
    bad = pl.DataFrame({"x": [-1]})
    when = dt.datetime(2024, 3, 2, 12, tzinfo=dt.UTC)
    path = store.quarantine(
        "processed", "daily_bars", DAY, bad, rejected_at=when, failures={"schema": {"x: ge": 1}}
    )
    assert store.quarantined("processed", "daily_bars", DAY) == [path]
    with store._fs.open(canonical, "rb") as fh:
        assert fh.read() == good_bytes
    marker = store.rejection("processed", "daily_bars", DAY)
    assert marker is not None
    assert marker["failed_checks"] == {"schema": {"x: ge": 1}}
    with pytest.raises(RejectedPartitionError, match=r"processed/daily_bars 2024-03-01 failed its"):
        store.read("processed", "daily_bars", DAY)
    # Footer row counts still answer (they read no data and never feed a build).
    assert store.row_count("processed", "daily_bars", DAY) == 3
    store.write("processed", "daily_bars", DAY, good)
    assert store.rejection("processed", "daily_bars", DAY) is None
    assert store.read("processed", "daily_bars", DAY).equals(good)
    assert store.quarantined("processed", "daily_bars", DAY) == [path]  # kept for inspection


def test_a_rejected_first_download_says_no_file_was_published(tmp_path):
    store = DataStore(str(tmp_path))
    store.quarantine(
        "raw",
        "tickers",
        DAY,
        pl.DataFrame({"x": []}),
        rejected_at=dt.datetime(2024, 3, 2, tzinfo=dt.UTC),
        failures={"rows_on_session": {"rows on a trading session": 1}},
    )
    with pytest.raises(RejectedPartitionError, match="no file was ever published"):
        store.read("raw", "tickers", DAY)
    # A passing download clears it (raw partitions are written immutably).
    store.write_immutable(
        "raw", "tickers", DAY, pl.DataFrame({"x": [1]}), ingested_at=dt.datetime.now(dt.UTC)
    )
    assert store.read("raw", "tickers", DAY).height == 1
