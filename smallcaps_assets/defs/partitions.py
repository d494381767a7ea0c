"""Partition definitions: one per NYSE session, and calendar months for walk-forward models."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from smallcaps_assets.core.calendar import FIRST_SESSION, closed_weekdays

TIMEZONE = "America/New_York"

# Daily windows with exclusions rather than a weekday cron: a 1-5 cron makes Friday's window run
# until Monday, so Friday's partition would only exist after the weekend. ``end_offset=1``: the
# session in progress is a partition, so the 16:45 schedule can request it; raw assets refuse a
# session until it has closed (on weekends and holidays Dagster then also lists the next session,
# dagster-io/dagster#33551, which those assets refuse the same way).
trading_days = dg.DailyPartitionsDefinition(
    start_date=FIRST_SESSION.isoformat(),
    timezone=TIMEZONE,
    end_offset=1,
    exclusions=[
        "0 0 * * 6",
        "0 0 * * 0",
        *[dt.datetime.combine(day, dt.time(0)) for day in closed_weekdays(FIRST_SESSION)],
    ],
)

months = dg.MonthlyPartitionsDefinition(start_date="2019-01-01", timezone=TIMEZONE, end_offset=1)
