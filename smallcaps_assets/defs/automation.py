"""How the graph runs itself: a schedule ingests each session after the close, declarative
automation carries it downstream, and the monthly walk-forward follows the calendar.

* ``after_close`` (16:45 New York, weekdays) requests the session's raw partitions and skips
  NYSE holidays (the built-in partitioned schedule no longer skips excluded days).
* Daily assets below raw run when their upstream partitions of the latest session exist and every
  blocking check on them passed (``eager`` plus ``all_deps_blocking_checks_passed``): a failed
  check holds the session back until the upstream is fixed and rematerialized.
* ``ml/model`` for month M trains once M begins (its training and validation months are
  complete) and M's first session is processed; ``ml/predictions`` and ``backtest/trades`` for M
  run once M has ended; the unpartitioned report and catalogs refresh after any upstream update.
* The automation sensor is on by default (Dagster's implicit one starts stopped).
"""

import datetime as dt
from typing import Any, cast

import dagster as dg

from smallcaps_assets.core import calendar
from smallcaps_assets.defs.partitions import TIMEZONE

Condition = dg.AutomationCondition[Any]

AFTER_CLOSE_CRON = "45 16 * * 1-5"
DAILY_INGEST_JOB = "daily_ingest"
AUTOMATION_SENSOR = "smallcaps_automation"

AC = dg.AutomationCondition
RAW_GROUP = "raw"

daily_ingest_job = dg.define_asset_job(
    DAILY_INGEST_JOB,
    # The raw group: every raw dataset but the minute bars (grouped with the layer they follow).
    selection=dg.AssetSelection.groups(RAW_GROUP),
    description="One session's raw market data (every raw dataset but the minute bars, which "
    "follow the session's universe).",
)


@dg.schedule(
    name="after_close",
    job=daily_ingest_job,
    cron_schedule=AFTER_CLOSE_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="16:45 New York on NYSE sessions: ingest that session; holidays request nothing.",
)
def after_close(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    day = context.scheduled_execution_time.astimezone(calendar.NY).date()
    if not calendar.is_session(day):
        return dg.SkipReason(f"{day.isoformat()} is not an NYSE session")
    return dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())


def _not_busy(condition: Condition) -> Condition:
    return condition & ~AC.any_deps_in_progress() & ~AC.in_progress()


def _labelled(condition: Condition, label: str) -> Condition:
    # with_label is defined on the concrete condition classes, not on the generic base.
    return cast(Condition, cast(Any, condition).with_label(label))


def after_upstream_checks(
    ignore: dg.AssetSelection | None = None,
) -> Condition:
    """The latest session, once its upstream partitions exist and their blocking checks passed.
    ``ignore`` leaves deps out of every clause (the watchlist scores with whichever model is
    newest instead of waiting for one)."""
    updated, missing, checks = (
        AC.any_deps_updated(),
        AC.any_deps_missing(),
        AC.all_deps_blocking_checks_passed(),
    )
    if ignore is not None:
        updated, missing, checks = (
            updated.ignore(ignore),
            missing.ignore(ignore),
            checks.ignore(ignore),
        )
    return _labelled(
        _not_busy(
            AC.in_latest_time_window()
            & (AC.newly_missing() | updated).since_last_handled()
            & ~missing
            & checks
        ),
        "eager after upstream checks",
    )


def when_month_begins() -> Condition:
    """The current month, once, as soon as everything it reads exists."""
    return _labelled(
        _not_busy(
            AC.in_latest_time_window()
            & AC.newly_missing().since_last_handled()
            & ~AC.any_deps_missing()
            & AC.all_deps_blocking_checks_passed()
        ),
        "when the month begins",
    )


# The latest two monthly windows: the current month and the one that just ended. The lookback
# selects windows that start within it, counted back from the current month's end: two months
# are at most 62 days long, three at least 89.
_LAST_TWO_MONTHS = AC.in_latest_time_window(lookback_delta=dt.timedelta(days=62))
_MONTH_ENDED = _labelled(_LAST_TWO_MONTHS & ~AC.in_latest_time_window(), "month just ended")


def when_month_ends() -> Condition:
    """The month that just ended, once its inputs exist; again when an input changes."""
    return _labelled(
        _not_busy(
            # Dagster's condition generics do not unify AssetKey and AssetKey|AssetCheckKey.
            _MONTH_ENDED
            & (_MONTH_ENDED.newly_true() | AC.any_deps_updated()).since_last_handled()  # type: ignore[misc, operator]
            & ~AC.any_deps_missing()
        ),
        "when the month ends",
    )


def after_any_update() -> Condition:
    """Unpartitioned summaries over every partition: refresh whenever an upstream partition
    lands (they cover whatever exists, so a missing old partition must not block them)."""
    return _labelled(_not_busy(AC.any_deps_updated().since_last_handled()), "after any update")


automation_sensor = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates every asset's automation condition (on by default).",
)
