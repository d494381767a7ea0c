"""Pandera schemas and point-in-time rules of the event datasets (features and labels)."""

from __future__ import annotations

import datetime as dt
from typing import Final

import pandera.polars as pa
import polars as pl

from smallcaps_assets.core import events, features, labels
from smallcaps_assets.core.validation import CheckReport, rules_report

__all__ = [
    "FEATURES_MODEL",
    "LABELS_MODEL",
    "features_point_in_time",
    "labels_cover_events",
    "labels_point_in_time",
]

_KEY: Final = ["ticker", "ts", "pattern"]
_NON_NEGATIVE: Final = frozenset(
    {
        "minutes_since_open",
        "premarket_volume",
        "premarket_rvol",
        "tod_rvol",
        "volume_burst",
        "cum_volume",
        "atr_pct_14",
        "float_shares",
        "market_cap",
        "float_rotation",
        "split_count_12m",
        "news_count_1d",
        "news_count_7d",
        "news_count_30d",
        "spread_est",
        "halts_so_far",
    }
)


def _column(name: str, dtype: pl.DataType) -> pa.Column:
    checks = [pa.Check.ge(0)] if name in _NON_NEGATIVE else []
    if name == "volume_gini":
        checks = [pa.Check.in_range(0.0, 1.0)]
    return pa.Column(dtype, checks=checks, nullable=True)


FEATURES_MODEL: Final = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "ticker": pa.Column(pl.String),
        "ts": pa.Column(pl.Datetime("ms", "UTC")),
        "pattern": pa.Column(pl.String, checks=pa.Check.isin(list(events.PATTERNS))),
        "price": pa.Column(pl.Float64, checks=pa.Check.gt(0)),
        "exchange": pa.Column(pl.String),
        "sector": pa.Column(pl.String),
        **{n: _column(n, pl.Float64()) for n in features.NUMERIC_FEATURES},
        "last_bar_ts": pa.Column(pl.Datetime("ms", "UTC")),
        "last_news_utc": pa.Column(pl.Datetime("us", "UTC"), nullable=True),
    },
    strict=True,
    coerce=False,
    unique=_KEY,
    name="EventFeatures",
)

LABELS_MODEL: Final = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "ticker": pa.Column(pl.String),
        "ts": pa.Column(pl.Datetime("ms", "UTC")),
        "pattern": pa.Column(pl.String, checks=pa.Check.isin(list(events.PATTERNS))),
        "path_complete": pa.Column(pl.Boolean),
        "entry_ts": pa.Column(pl.Datetime("ms", "UTC"), nullable=True),
        "entry_price": pa.Column(pl.Float64, checks=pa.Check.gt(0), nullable=True),
        "exit_ts": pa.Column(pl.Datetime("ms", "UTC"), nullable=True),
        "exit_price": pa.Column(pl.Float64, checks=pa.Check.gt(0), nullable=True),
        "exit_reason": pa.Column(
            pl.String, checks=pa.Check.isin(list(labels.EXIT_REASONS)), nullable=True
        ),
        "ret": pa.Column(pl.Float64, nullable=True),
        "label": pa.Column(pl.Int8, checks=pa.Check.isin([0, 1]), nullable=True),
        "fwd_ret_5m": pa.Column(pl.Float64, nullable=True),
        "fwd_ret_15m": pa.Column(pl.Float64, nullable=True),
    },
    strict=True,
    coerce=False,
    unique=_KEY,
    name="EventLabels",
)


def features_point_in_time(frame: pl.DataFrame, day: dt.date, partition: str = "") -> CheckReport:
    """No feature row uses a bar or an article stamped after its event."""
    ts_us = pl.col("ts").cast(pl.Datetime("us", "UTC"))
    return rules_report(
        frame,
        {
            "date is the session": pl.col("date") == day,
            "last bar started before the event": pl.col("last_bar_ts") < pl.col("ts"),
            "no article after the event": (pl.col("last_news_utc") <= ts_us).fill_null(True),
        },
        partition=partition,
        label="features",
    )


def labels_point_in_time(frame: pl.DataFrame, day: dt.date, partition: str = "") -> CheckReport:
    """Entries at or after the event, exits after entries, labels exactly where the path is
    complete."""
    complete = pl.col("path_complete")
    return rules_report(
        frame,
        {
            "date is the session": pl.col("date") == day,
            "entry at or after the event": (pl.col("entry_ts") >= pl.col("ts")).fill_null(
                ~complete
            ),
            "exit after entry": (pl.col("exit_ts") > pl.col("entry_ts")).fill_null(~complete),
            "label only where the path is complete": complete == pl.col("label").is_not_null(),
        },
        partition=partition,
        label="labels",
    )


def labels_cover_events(
    labelled: pl.DataFrame, events_frame: pl.DataFrame, partition: str = ""
) -> CheckReport:
    """Every event has exactly one label row and every label row an event."""
    missing = events_frame.select(_KEY).join(labelled.select(_KEY), on=_KEY, how="anti")
    extra = labelled.select(_KEY).join(events_frame.select(_KEY), on=_KEY, how="anti")
    both = pl.concat(
        [
            missing.with_columns(_problem=pl.lit("event without a label")),
            extra.with_columns(_problem=pl.lit("label without an event")),
        ]
    )
    report = rules_report(both, {"labels match events": pl.lit(False)}, partition=partition)
    report.rows_checked = labelled.height
    return report
