"""The schedule and declarative automation, evaluated at chosen times against a real instance."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
from dagster._utils.schedules import schedule_execution_time_iterator

from smallcaps_assets.core.calendar import NY
from smallcaps_assets.definitions import defs
from smallcaps_assets.defs.automation import AUTOMATION_SENSOR, DAILY_INGEST_JOB, after_close
from smallcaps_assets.defs.partitions import trading_days
from smallcaps_assets.defs.processed import processed_assets
from smallcaps_assets.defs.raw import RAW_DATASETS, raw_assets, raw_minute_bars_asset
from smallcaps_assets_tests.resource_fixtures import daily_graph_resources

REPO = defs.get_repository_def()
UNIVERSE = dg.AssetKey(["processed", "universe"])
MINUTE_BARS = dg.AssetKey(["raw", "minute_bars"])
DAILY_BARS = dg.AssetKey(["processed", "daily_bars"])


def tick(moment: dt.datetime) -> dg.ScheduleExecutionData:  # type: ignore[name-defined]
    context = dg.build_schedule_context(scheduled_execution_time=moment, repository_def=REPO)
    return after_close.evaluate_tick(context)


def at_16_45(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(16, 45), tzinfo=NY)


def test_the_schedule_requests_the_session_at_16_45_new_york():
    data = tick(at_16_45(dt.date(2024, 7, 5)))
    [request] = data.run_requests or []
    assert request.partition_key == "2024-07-05"
    assert request.run_key == "2024-07-05"
    assert trading_days.has_partition_key(request.partition_key)
    # A half-day session (13:00 close) is still a session.
    [half_day] = tick(at_16_45(dt.date(2024, 7, 3))).run_requests or []
    assert half_day.partition_key == "2024-07-03"


@pytest.mark.parametrize(
    "day",
    [dt.date(2024, 7, 4), dt.date(2024, 7, 6), dt.date(2024, 12, 25)],
    ids=["independence-day", "saturday", "christmas"],
)
def test_the_schedule_requests_nothing_on_holidays_and_weekends(day):
    data = tick(at_16_45(day))
    assert not data.run_requests
    assert data.skip_message == f"{day.isoformat()} is not an NYSE session"


def test_the_schedule_ticks_at_16_45_eastern_on_weekdays_across_daylight_saving():
    start = dt.datetime(2024, 3, 8, 17, 0, tzinfo=NY).timestamp()  # Friday, DST starts Sunday
    # Dagster's own cron iterator: the one its scheduler daemon uses.
    ticks = schedule_execution_time_iterator(
        start, after_close.cron_schedule, after_close.execution_timezone
    )
    first_three = [next(ticks) for _ in range(3)]
    assert [t.astimezone(NY).strftime("%a %H:%M") for t in first_three] == [
        "Mon 16:45",
        "Tue 16:45",
        "Wed 16:45",
    ]
    # 16:45 New York is 20:45 UTC after the change (EDT), 21:45 before it.
    assert first_three[0].astimezone(dt.UTC).hour == 20


def test_the_schedule_targets_the_raw_datasets_and_automation_is_on_by_default():
    job = defs.resolve_job_def(DAILY_INGEST_JOB)
    assert job.asset_layer.executable_asset_keys == {d.key for d in RAW_DATASETS}
    assert after_close.default_status == dg.DefaultScheduleStatus.RUNNING
    sensor = defs.resolve_sensor_def(AUTOMATION_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    conditions = {
        key.to_user_string(): asset.automation_conditions_by_key.get(key)
        for key, asset in REPO.assets_defs_by_key.items()
    }
    unautomated = sorted(k for k, c in conditions.items() if c is None)
    assert unautomated == sorted(d.key.to_user_string() for d in RAW_DATASETS)


# -- declarative automation, evaluated tick by tick on a real (ephemeral) instance ----------------
DAY = dt.date(2024, 3, 5)


def _materialize(instance, root, keys, start, end, **rules):
    return dg.materialize(
        [*raw_assets, raw_minute_bars_asset, *processed_assets],
        resources=daily_graph_resources(root, **rules),
        instance=instance,
        selection=keys,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
        raise_on_error=False,
    )


class Ticker:
    """Successive automation evaluations sharing a cursor, like the sensor's ticks."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor = None

    def __call__(self, moment: dt.datetime) -> dict[str, list[str | None]]:
        result = dg.evaluate_automation_conditions(
            defs, self.instance, evaluation_time=moment, cursor=self.cursor
        )
        self.cursor = result.cursor
        return {
            key.to_user_string(): sorted(result.get_requested_partitions(key), key=str)
            for key in REPO.asset_graph.get_all_asset_keys()
            if result.get_num_requested(key)
        }


def test_automation_moves_a_session_downstream_only_after_upstream_checks_pass(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "40")
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "11")
    root = tmp_path / "data"
    monkeypatch.setenv("SMALLCAPS_DATA_DIR", str(root))
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticker(instance)
    day = DAY.isoformat()

    assert ticks(dt.datetime.combine(DAY, dt.time(9, 0), tzinfo=NY)) == {}
    # Before the session's raw data exists, nothing downstream can run.
    assert ticks(dt.datetime.combine(DAY, dt.time(16, 50), tzinfo=NY)) == {}

    raw = _materialize(instance, root, [d.key for d in RAW_DATASETS], "2024-03-04", day)
    assert raw.success
    requested = ticks(dt.datetime.combine(DAY, dt.time(17, 0), tzinfo=NY))
    assert requested[DAILY_BARS.to_user_string()] == [day]
    assert requested[UNIVERSE.to_user_string()] == [day]
    assert MINUTE_BARS.to_user_string() not in requested  # its universe is not there yet

    # The universe lands but its blocking size check fails: the session stops there.
    failing = _materialize(instance, root, [DAILY_BARS, UNIVERSE], day, day, min_members=10_000)
    assert not failing.success
    assert {
        (e.asset_key, e.check_name) for e in failing.get_asset_check_evaluations() if not e.passed
    } == {(UNIVERSE, "size_within_bounds")}
    held = ticks(dt.datetime.combine(DAY, dt.time(17, 5), tzinfo=NY))
    assert MINUTE_BARS.to_user_string() not in held

    # Fixed and rematerialized: the check passes and the minute bars are requested for D.
    fixed = _materialize(instance, root, [UNIVERSE], day, day)
    assert fixed.success
    released = ticks(dt.datetime.combine(DAY, dt.time(17, 10), tzinfo=NY))
    assert released.get(MINUTE_BARS.to_user_string()) == [day]


FEATURES = dg.AssetKey(["features", "events"])
LABELS = dg.AssetKey(["labels", "events"])
MODEL = dg.AssetKey(["ml", "model"])
PREDICTIONS = dg.AssetKey(["ml", "predictions"])
TRADES = dg.AssetKey(["backtest", "trades"])


def _report_processed_session(instance: dg.DagsterInstance, day: str) -> None:
    """Record D's features and labels as materialized with every blocking check passed, as a
    run of those assets would."""
    for key in (FEATURES, LABELS):
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))
        for check in REPO.asset_graph.get(key).check_keys:
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(key, check.name, passed=True, partition=day)
            )


def _at(day: dt.date, hhmm: str = "18:00") -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), tzinfo=NY)


def test_the_model_trains_when_its_month_begins_and_predictions_follow_the_month_end():
    from smallcaps_assets.core import calendar

    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticker(instance)
    for day in calendar.sessions(dt.date(2024, 1, 2), dt.date(2024, 8, 30)):
        _report_processed_session(instance, day.isoformat())
    assert ticks(_at(dt.date(2024, 8, 30))) == {}  # first evaluation: nothing is new

    # September opens (2 September is Labor Day): the September model waits for its month's
    # first processed session; August's predictions wait for August's model.
    opening = ticks(_at(dt.date(2024, 9, 3), "09:00"))
    assert MODEL.to_user_string() not in opening
    assert PREDICTIONS.to_user_string() not in opening

    _report_processed_session(instance, "2024-09-03")
    trained = ticks(_at(dt.date(2024, 9, 3)))
    assert trained[MODEL.to_user_string()] == ["2024-09-01"]
    assert PREDICTIONS.to_user_string() not in trained

    instance.report_runless_asset_event(dg.AssetMaterialization(MODEL, partition="2024-08-01"))
    ended = ticks(_at(dt.date(2024, 9, 4)))
    assert ended[PREDICTIONS.to_user_string()] == ["2024-08-01"]
    assert ended[TRADES.to_user_string()] == ["2024-08-01"]
    assert MODEL.to_user_string() not in ended  # September's model was requested once already
