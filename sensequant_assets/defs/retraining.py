"""Retraining on a cadence and on new data (Asia/Kolkata).

* ``weekly_retrain`` (Saturdays 10:00 IST) and ``monthly_retrain`` (the 1st, 10:00 IST) launch
  ``candidate_job``: a new candidate distilled from every trained teacher over the stored history,
  then evaluated and briefed.
* ``new_window_sensor`` watches the stored OHLCV: once the data for a new training window is
  complete (its label horizon included), it launches one teacher run for that window across
  every symbol; when that run succeeds, ``new_window_candidate_sensor`` launches a candidate run.

Candidate ids come from the tick's time, and run keys and cursors stop a tick from firing twice
for the same window or the same scheduled time. Both schedules tick at 10:00 on a Saturday that
is the 1st, so each names its candidate in a second of its own (cron ticks fall on whole
minutes): weekly ``..._100000``, monthly ``..._100001``. The run still reserves its id at start
(``registry.reservation``), so any other collision fails the later run, never the earlier one.
"""

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import dagster as dg

from sensequant_assets.artifacts import CANDIDATE_PREFIX, TIMESTAMP_FORMAT
from sensequant_assets.calendar import MARKET_TIMEZONE, TradingCalendar
from sensequant_assets.defs.jobs import CANDIDATE_JOB, TEACHER_JOB
from sensequant_assets.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from sensequant_assets.defs.tags import scope_tags
from sensequant_assets.features import WARMUP_SESSIONS
from sensequant_assets.settings import Settings
from sensequant_assets.storage import Warehouse
from sensequant_assets.training import TrainingWindow, window_data_range

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

NEW_WINDOW_TAG = "sensequant/new_window"
RETRAIN_TAG = "sensequant/retrain"


def candidate_request(
    moment: dt.datetime,
    symbols: Sequence[str],
    start: dt.date,
    end: dt.date,
    reason: str,
    run_key: str | None = None,
) -> dg.RunRequest:
    """A candidate run named after ``moment`` (IST), over ``symbols`` from ``start`` to ``end``."""
    local = moment.astimezone(ZoneInfo(MARKET_TIMEZONE))
    candidate_id = CANDIDATE_PREFIX + local.strftime(TIMESTAMP_FORMAT)
    return dg.RunRequest(
        run_key=run_key or f"candidate:{candidate_id}",
        tags={**scope_tags(candidate_id, symbols, start, end), RETRAIN_TAG: reason},
    )


def latest_complete_window(
    windows: Sequence[str],
    symbols: Sequence[str],
    calendar: TradingCalendar,
    horizon: int,
    last_stored: dt.date | None,
) -> str | None:
    """The latest window whose data (warm-up, window, label horizon) ends by ``last_stored``."""
    if last_stored is None or not symbols:
        return None
    complete = [
        key
        for key in windows
        if window_data_range(
            TrainingWindow.from_span_key(symbols[0], key), calendar, WARMUP_SESSIONS, horizon
        )[1]
        <= last_stored
    ]
    return complete[-1] if complete else None


def build_retraining(
    settings: Settings,
    calendar: TradingCalendar,
    symbols: Sequence[str],
    windows: Sequence[str],
    teacher_job: "UnresolvedAssetJobDefinition",
    candidate_job: "UnresolvedAssetJobDefinition",
) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    ordered = sorted(symbols)

    def stored_until() -> dt.date | None:
        """The last day every symbol has stored (the slowest symbol decides)."""
        warehouse = Warehouse.from_settings(settings)
        days = [warehouse.last_date("ohlcv_daily", s) for s in ordered]
        return None if any(d is None for d in days) else min(d for d in days if d)

    def scheduled(name: str, cron: str, description: str, slot: int) -> dg.ScheduleDefinition:
        @dg.schedule(
            name=name,
            cron_schedule=cron,
            execution_timezone=MARKET_TIMEZONE,
            job_name=CANDIDATE_JOB,
            description=description,
        )
        def retrain(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
            last = stored_until()
            if last is None:
                return dg.SkipReason("no stored OHLCV for every symbol yet")
            moment = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
            named = moment + dt.timedelta(seconds=slot)
            return candidate_request(named, ordered, settings.history_start, last, name)

        return retrain

    schedules = [
        scheduled("weekly_retrain", "0 10 * * 6", "Saturdays 10:00 IST: a new candidate.", 0),
        scheduled(
            "monthly_retrain", "0 10 1 * *", "1st of the month 10:00 IST: a new candidate.", 1
        ),
    ]

    @dg.sensor(job_name=TEACHER_JOB, minimum_interval_seconds=600)
    def new_window_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        """Train the teachers of a window once its market data is complete."""
        window = latest_complete_window(
            windows, ordered, calendar, settings.label_horizon, stored_until()
        )
        if window is None or (context.cursor is not None and window <= context.cursor):
            return dg.SkipReason(f"no new complete window (last handled: {context.cursor})")
        request = dg.RunRequest(
            run_key=f"window:{window}",
            tags={
                RANGE_START_TAG: f"{ordered[0]}|{window}",
                RANGE_END_TAG: f"{ordered[-1]}|{window}",
                NEW_WINDOW_TAG: window,
            },
        )
        return dg.SensorResult(run_requests=[request], cursor=window)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[teacher_job],
        request_job=candidate_job,
    )
    def new_window_candidate_sensor(
        context: dg.RunStatusSensorContext,
    ) -> dg.RunRequest | dg.SkipReason:
        """After a new window's teachers trained, build and evaluate a candidate."""
        window = context.dagster_run.tags.get(NEW_WINDOW_TAG)
        if not window:
            return dg.SkipReason("not a new-window teacher run")
        end = window_data_range(
            TrainingWindow.from_span_key(ordered[0], window),
            calendar,
            WARMUP_SESSIONS,
            settings.label_horizon,
        )[1]
        return candidate_request(
            dt.datetime.now(dt.UTC),
            ordered,
            settings.history_start,
            end,
            "new_window",
            run_key=f"candidate-for-window:{window}",
        )

    return schedules, [new_window_sensor, new_window_candidate_sensor]
