import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from sensequant_assets.defs import build_defs
from sensequant_assets.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from sensequant_assets.settings import load_settings

IST = ZoneInfo("Asia/Kolkata")


def evaluate(name: str, when: dt.datetime) -> list[dg.RunRequest] | dg.SkipReason:
    defs = build_defs(load_settings())
    schedule = defs.resolve_schedule_def(name)
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=when,
            repository_def=defs.get_repository_def(),
        )
        data = schedule.evaluate_tick(context)
    return data.run_requests or data.skip_message


def test_daily_schedule_runs_at_18_ist_on_weekdays() -> None:
    schedule = build_defs(load_settings()).resolve_schedule_def("ohlcv_daily_schedule")
    assert schedule.cron_schedule == "0 18 * * 1-5"
    assert schedule.execution_timezone == "Asia/Kolkata"


def test_trading_day_gives_one_run_for_every_symbol() -> None:
    requests = evaluate("ohlcv_daily_schedule", dt.datetime(2024, 1, 25, 18, tzinfo=IST))
    assert len(requests) == 1
    tags = requests[0].tags
    assert tags[RANGE_START_TAG] == "2024-01-25|ABB"
    assert tags[RANGE_END_TAG] == "2024-01-25|ZYDUSLIFE"
    assert requests[0].run_key == "ohlcv_daily:2024-01-25"


def test_holiday_is_skipped_with_a_reason() -> None:
    skip = evaluate("ohlcv_daily_schedule", dt.datetime(2024, 1, 26, 18, tzinfo=IST))
    assert skip == "2024-01-26 is not an NSE trading day"


def test_benchmark_schedule_targets_the_day_partition() -> None:
    requests = evaluate("nifty50_benchmark_schedule", dt.datetime(2024, 1, 25, 18, tzinfo=IST))
    assert [r.partition_key for r in requests] == ["2024-01-25"]
