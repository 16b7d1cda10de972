"""Retraining: schedules launch candidates; a complete new window trains teachers, then a
candidate, each exactly once."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import TEACHER_JOB
from sensequant_assets.defs.tags import (
    CANDIDATE_TAG,
    END_TAG,
    NEW_WINDOW_TAG,
    RETRAIN_TAG,
    SEARCH_TAG,
    search_requested,
)
from sensequant_assets.settings import load_settings
from sensequant_assets.training.resources import latest_complete_window
from sensequant_assets_tests.jobs import ingest, ingest_benchmark

IST = ZoneInfo("Asia/Kolkata")
WINDOWS = ["2024-03-13_to_2024-09-08", "2024-04-12_to_2024-10-08", "2024-05-12_to_2024-11-07"]


def test_latest_complete_window_needs_the_label_horizon_stored() -> None:
    from sensequant_assets.calendar import TradingCalendar

    calendar = TradingCalendar()
    # the second window ends 2024-10-08; 7 sessions later is 2024-10-17
    assert (
        latest_complete_window(WINDOWS, ["TCS"], calendar, 7, dt.date(2024, 10, 16)) == (WINDOWS[0])
    )
    assert (
        latest_complete_window(WINDOWS, ["TCS"], calendar, 7, dt.date(2024, 10, 17)) == (WINDOWS[1])
    )
    assert latest_complete_window(WINDOWS, ["TCS"], calendar, 7, None) is None


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", "INFY,TCS")
    return load_settings()


def test_schedules_launch_a_named_candidate_once_data_exists(settings) -> None:
    defs = build_defs(settings)
    weekly = defs.resolve_schedule_def("weekly_retrain")
    assert weekly.execution_timezone == "Asia/Kolkata"
    moment = dt.datetime(2025, 4, 5, 10, 0, tzinfo=IST)
    with dg.DagsterInstance.ephemeral() as instance:
        empty = weekly(dg.build_schedule_context(instance, scheduled_execution_time=moment))
        assert isinstance(empty, dg.SkipReason)
        for symbol in ("INFY", "TCS"):
            ingest(settings, instance, symbol)
        request = weekly(dg.build_schedule_context(instance, scheduled_execution_time=moment))
    assert request.run_key == "candidate:live_candidate_20250405_100000"
    assert request.tags["sensequant/candidate"] == "live_candidate_20250405_100000"
    assert request.tags["sensequant/symbols"] == "INFY,TCS"
    assert request.tags["sensequant/end_date"] == "2025-04-04"


def test_weekly_and_monthly_on_the_same_tick_name_two_candidates(settings) -> None:
    """2026-08-01 is a Saturday and the 1st: both schedules fire at 10:00 IST."""
    defs = build_defs(settings)
    moment = dt.datetime(2026, 8, 1, 10, 0, tzinfo=IST)
    with dg.DagsterInstance.ephemeral() as instance:
        for symbol in ("INFY", "TCS"):
            ingest(settings, instance, symbol)
        requests = [
            defs.resolve_schedule_def(name)(
                dg.build_schedule_context(instance, scheduled_execution_time=moment)
            )
            for name in ("weekly_retrain", "monthly_retrain")
        ]
    ids = [request.tags["sensequant/candidate"] for request in requests]
    assert ids == ["live_candidate_20260801_100000", "live_candidate_20260801_100001"]
    assert len({request.run_key for request in requests}) == 2


@pytest.mark.slow
def test_a_complete_new_window_trains_teachers_then_a_candidate_once(settings) -> None:
    defs = build_defs(settings)
    sensor = defs.resolve_sensor_def("new_window_sensor")
    follow_up = defs.resolve_sensor_def("new_window_candidate_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        for symbol in ("INFY", "TCS"):
            ingest(settings, instance, symbol)
        ingest_benchmark(settings, instance)
        tick = sensor(dg.build_sensor_context(instance=instance))
        (request,) = tick.run_requests
        window = request.tags[NEW_WINDOW_TAG]
        assert request.run_key == f"window:{window}" and tick.cursor == window
        assert request.tags["dagster/asset_partition_range_start"] == f"INFY|{window}"
        assert request.tags["dagster/asset_partition_range_end"] == f"TCS|{window}"
        again = sensor(dg.build_sensor_context(instance=instance, cursor=tick.cursor))
        assert isinstance(again, dg.SkipReason)

        result = defs.resolve_job_def(TEACHER_JOB).execute_in_process(
            instance=instance, tags=request.tags
        )
        assert result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="new_window_candidate_sensor",
            dagster_event=result.get_run_success_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )
        candidate = follow_up(context)
    assert candidate.run_key == f"candidate-for-window:{window}"
    assert candidate.tags["sensequant/retrain"] == "new_window"
    assert candidate.tags["sensequant/candidate"].startswith("live_candidate_")


def test_quarterly_retrain_searches_on_the_first_session_of_a_quarter_only(settings) -> None:
    defs = build_defs(settings)
    quarterly = defs.resolve_schedule_def("quarterly_retrain")
    assert quarterly.cron_schedule == "0 10 1-7 1,4,7,10 *"
    assert quarterly.execution_timezone == "Asia/Kolkata"
    assert quarterly.default_status == dg.DefaultScheduleStatus.STOPPED  # like every schedule
    with dg.DagsterInstance.ephemeral() as instance:

        def tick(name: str, day: dt.date) -> tuple[list[dg.RunRequest], str | None]:
            context = dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=dt.datetime.combine(day, dt.time(10), IST),
                repository_def=defs.get_repository_def(),
            )
            data = defs.resolve_schedule_def(name).evaluate_tick(context)
            return list(data.run_requests or []), data.skip_message

        # 2023-10-01 is a Sunday and 2023-10-02 (Gandhi Jayanti) an NSE holiday
        assert tick("quarterly_retrain", dt.date(2023, 10, 2)) == (
            [],
            "2023-10-02 is not the quarter's first NSE session (2023-10-03)",
        )
        assert tick("quarterly_retrain", dt.date(2025, 4, 2)) == (
            [],
            "2025-04-02 is not the quarter's first NSE session (2025-04-01)",
        )
        first = dt.date(2025, 4, 1)
        assert tick("quarterly_retrain", first) == ([], "no stored OHLCV for every symbol yet")
        for symbol in ("INFY", "TCS"):
            ingest(settings, instance, symbol)
        (request,), _ = tick("quarterly_retrain", first)
        (monthly,), _ = tick("monthly_retrain", first)
    assert request.run_key == "candidate:live_candidate_20250401_100002"
    assert request.tags[CANDIDATE_TAG] == "live_candidate_20250401_100002"
    assert request.tags[RETRAIN_TAG] == "quarterly_retrain"
    assert search_requested(request.tags) and request.tags[SEARCH_TAG] == "true"
    assert request.tags[END_TAG] == "2025-04-04"
    assert monthly.tags[CANDIDATE_TAG] == "live_candidate_20250401_100001"
    assert not search_requested(monthly.tags)
    with pytest.raises(ValueError, match="sensequant/search='yes' must be true or false"):
        search_requested({SEARCH_TAG: "yes"})
