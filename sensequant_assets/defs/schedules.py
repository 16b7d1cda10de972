"""Daily ingestion after the NSE close (15:30 IST), at 18:00 IST on weekdays.

A stock ``build_schedule_from_partitioned_job`` would emit one run per symbol each evening;
these schedules emit one range-tagged run covering every symbol for the day instead.
"""

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import dagster as dg

from sensequant_assets.calendar import MARKET_TIMEZONE, TradingCalendar
from sensequant_assets.defs.jobs import BENCHMARK_JOB, OHLCV_JOB
from sensequant_assets.defs.partitions import DATE_FORMAT, one_day_all_symbols_tags

DAILY_CRON = "0 18 * * 1-5"


def _session_or_skip(
    context: dg.ScheduleEvaluationContext, calendar: TradingCalendar
) -> dt.date | dg.SkipReason:
    """Today's IST date when it is an NSE session, else the reason to skip the tick."""
    moment = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    day = moment.astimezone(ZoneInfo(MARKET_TIMEZONE)).date()
    if not calendar.is_trading_day(day):
        return dg.SkipReason(f"{day} is not an NSE trading day")
    return day


def build_schedules(
    calendar: TradingCalendar, symbols: Sequence[str]
) -> list[dg.ScheduleDefinition]:
    @dg.schedule(
        cron_schedule=DAILY_CRON,
        execution_timezone=MARKET_TIMEZONE,
        job_name=OHLCV_JOB,
        description="After the close, ingest today's session for every symbol in one run.",
    )
    def ohlcv_daily_schedule(
        context: dg.ScheduleEvaluationContext,
    ) -> dg.RunRequest | dg.SkipReason:
        day = _session_or_skip(context, calendar)
        if isinstance(day, dg.SkipReason):
            return day
        return dg.RunRequest(
            run_key=f"ohlcv_daily:{day}", tags=one_day_all_symbols_tags(day, symbols)
        )

    @dg.schedule(
        cron_schedule=DAILY_CRON,
        execution_timezone=MARKET_TIMEZONE,
        job_name=BENCHMARK_JOB,
        description="After the close, ingest today's NIFTY 50 bar.",
    )
    def nifty50_benchmark_schedule(
        context: dg.ScheduleEvaluationContext,
    ) -> dg.RunRequest | dg.SkipReason:
        day = _session_or_skip(context, calendar)
        if isinstance(day, dg.SkipReason):
            return day
        return dg.RunRequest(
            run_key=f"nifty50_benchmark:{day}", partition_key=day.strftime(DATE_FORMAT)
        )

    return [ohlcv_daily_schedule, nifty50_benchmark_schedule]
