"""Schedules (Asia/Kolkata): daily ingestion after the NSE close, and retraining on a cadence.

* ``ohlcv_daily_schedule`` and ``nifty50_benchmark_schedule`` (18:00 IST on weekdays, after the
  15:30 close) ingest the day's session. A stock ``build_schedule_from_partitioned_job`` would
  emit one run per symbol each evening; these emit one range-tagged run covering every symbol
  for the day instead.
* ``weekly_retrain`` (Saturdays 10:00 IST) and ``monthly_retrain`` (the 1st, 10:00 IST) launch
  ``candidate_job``: a new candidate distilled from every trained teacher over the stored
  history, then evaluated and briefed.
* ``quarterly_retrain`` (10:00 IST on the first NSE session of January, April, July and
  October) launches the same job tagged ``sensequant/search=true``: the story's "comprehensive
  retraining with hyperparameter tuning" (``training.search``). It ticks on the first seven days
  of those months and skips, with the reason, every day but the month's first session.

Candidate ids come from the tick's time, and run keys stop a tick from firing twice for the same
scheduled time. The retraining schedules can tick together at 10:00 (a Saturday that is the 1st;
the 1st of a quarter), so each names its candidate in a second of its own (cron ticks fall on
whole minutes): weekly ``..._100000``, monthly ``..._100001``, quarterly ``..._100002``. The run
still reserves its id at start (``registry.reservation``), so any other collision fails the
later run, never the earlier one.
"""

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

import dagster as dg

from sensequant_assets.calendar import MARKET_TIMEZONE, TradingCalendar
from sensequant_assets.defs.jobs import BENCHMARK_JOB, CANDIDATE_JOB, OHLCV_JOB, candidate_request
from sensequant_assets.defs.partitions import DATE_FORMAT, one_day_all_symbols_tags
from sensequant_assets.defs.tags import search_tags
from sensequant_assets.settings import Settings
from sensequant_assets.storage import Warehouse

DAILY_CRON = "0 18 * * 1-5"
QUARTERLY_CRON = "0 10 1-7 1,4,7,10 *"  # a week always holds a session


def _market_day(context: dg.ScheduleEvaluationContext) -> dt.date:
    moment = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    return moment.astimezone(ZoneInfo(MARKET_TIMEZONE)).date()


def _session_or_skip(
    context: dg.ScheduleEvaluationContext, calendar: TradingCalendar
) -> dt.date | dg.SkipReason:
    """Today's IST date when it is an NSE session, else the reason to skip the tick."""
    day = _market_day(context)
    if not calendar.is_trading_day(day):
        return dg.SkipReason(f"{day} is not an NSE trading day")
    return day


def _first_session_or_skip(
    calendar: TradingCalendar,
) -> Callable[[dg.ScheduleEvaluationContext], dg.SkipReason | None]:
    """None on the month's first NSE session, else the reason to skip the tick."""

    def check(context: dg.ScheduleEvaluationContext) -> dg.SkipReason | None:
        day = _market_day(context)
        first = calendar.sessions(day.replace(day=1), day.replace(day=10))[0]
        if day != first:
            return dg.SkipReason(f"{day} is not the quarter's first NSE session ({first})")
        return None

    return check


def build_schedules(
    settings: Settings, calendar: TradingCalendar, symbols: Sequence[str]
) -> list[dg.ScheduleDefinition]:
    return [
        *_ingest_schedules(calendar, symbols),
        *_retrain_schedules(settings, calendar, symbols),
    ]


def _ingest_schedules(
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


def _retrain_schedules(
    settings: Settings, calendar: TradingCalendar, symbols: Sequence[str]
) -> list[dg.ScheduleDefinition]:
    ordered = sorted(symbols)

    def scheduled(
        name: str,
        cron: str,
        description: str,
        slot: int,
        skip: Callable[[dg.ScheduleEvaluationContext], dg.SkipReason | None] | None = None,
        extra_tags: Mapping[str, str] | None = None,
    ) -> dg.ScheduleDefinition:
        @dg.schedule(
            name=name,
            cron_schedule=cron,
            execution_timezone=MARKET_TIMEZONE,
            job_name=CANDIDATE_JOB,
            description=description,
        )
        def retrain(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
            reason = None if skip is None else skip(context)
            if reason is not None:
                return reason
            last = Warehouse.from_settings(settings).last_common_date("ohlcv_daily", ordered)
            if last is None:
                return dg.SkipReason("no stored OHLCV for every symbol yet")
            moment = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
            named = moment + dt.timedelta(seconds=slot)
            return candidate_request(
                named, ordered, settings.history_start, last, name, extra_tags=extra_tags
            )

        return retrain

    return [
        scheduled("weekly_retrain", "0 10 * * 6", "Saturdays 10:00 IST: a new candidate.", 0),
        scheduled(
            "monthly_retrain", "0 10 1 * *", "1st of the month 10:00 IST: a new candidate.", 1
        ),
        scheduled(
            "quarterly_retrain",
            QUARTERLY_CRON,
            "The quarter's first NSE session, 10:00 IST: a new candidate whose student's "
            "configuration a bounded hyperparameter search chooses.",
            2,
            _first_session_or_skip(calendar),
            search_tags(),
        ),
    ]
