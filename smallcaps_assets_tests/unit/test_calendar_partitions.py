import datetime as dt

import pytest

from smallcaps_assets.core import calendar
from smallcaps_assets.defs.partitions import months, trading_days


def test_2019_to_2024_has_1510_sessions():
    keys = trading_days.get_partition_keys()
    in_window = [k for k in keys if "2019-01-01" <= k <= "2024-12-31"]
    assert len(in_window) == 1510
    assert keys[0] == "2019-01-02"


@pytest.mark.parametrize(
    ("day", "why"),
    [
        ("2024-07-04", "Independence Day"),
        ("2024-12-25", "Christmas"),
        ("2025-01-09", "national day of mourning (ad-hoc closure)"),
        ("2018-12-05", "before the first partition (and an ad-hoc closure)"),
        ("2024-03-02", "Saturday"),
        ("2024-03-03", "Sunday"),
    ],
)
def test_closed_days_are_not_partitions(day, why):
    assert not trading_days.has_partition_key(day), why


def test_partition_keys_equal_exchange_sessions_exactly():
    keys = [k for k in trading_days.get_partition_keys() if k <= "2025-12-31"]
    expected = [
        d.isoformat() for d in calendar.sessions(dt.date(2019, 1, 2), dt.date(2025, 12, 31))
    ]
    assert keys == expected


def test_next_partition_skips_holiday_and_weekend():
    assert trading_days.get_next_partition_key("2024-07-03") == "2024-07-05"
    assert trading_days.get_next_partition_key("2024-03-01") == "2024-03-04"


def test_previous_session_and_utc_bounds():
    assert calendar.previous_session(dt.date(2024, 7, 5)) == dt.date(2024, 7, 3)
    assert calendar.previous_session(dt.date(2024, 7, 4)) == dt.date(2024, 7, 3)
    start, end = calendar.session_bounds_utc(dt.date(2024, 3, 11))  # the day after DST starts
    assert start == dt.datetime(2024, 3, 11, 4, tzinfo=dt.UTC)
    assert end == dt.datetime(2024, 3, 12, 4, tzinfo=dt.UTC)


def test_months_start_in_2019():
    assert months.get_partition_keys()[0] == "2019-01-01"
