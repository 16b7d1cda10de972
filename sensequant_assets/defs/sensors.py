"""Sensors: promote approved candidates, record failed candidate runs, train new windows.

* ``promotion_sensor`` deploys each newly approved candidate once
  (:func:`~sensequant_assets.release.deployment.promotion_requests` keeps the cursor): to
  production, or with ``SENSEQUANT_PROMOTE_VIA_STAGING`` to staging, and to production once
  the registry records that its staging trial ended in ``promote``.
* ``demotion_sensor`` rolls production back to the previous model when the live scorecard
  sits below its walk-forward band, or its drift checks stayed at ERROR, for
  ``SENSEQUANT_DEMOTION_SESSIONS`` sessions (not for a pinned model), recording why in the
  registry and telling the webhook.
* ``run_failure_notifier`` tells the webhook (``SENSEQUANT_WEBHOOK_URL``) of every failed run.
* ``candidate_failure_sensor`` writes a partial briefing and a ``failed`` registry entry for a
  failed candidate run, only for the candidate id it reserved
  (:mod:`~sensequant_assets.registry.reservation`), never for another run's.
* ``production_signals_sensor`` scores a session with the production model, and its live
  scorecard, once the daily update (one day × every symbol) of ``ohlcv_daily`` succeeded, when
  a model is live, and
  with the staged model in shadow (then judging its trial) while one is on trial; with the
  reward loop on, it also rewards the production calls that matured that day
  (``live_rewards_job``).
* ``new_window_sensor`` watches the stored OHLCV: once the data for a new training window is
  complete (its label horizon included), it launches one teacher run for that window across
  every symbol; when that run succeeds, ``new_window_candidate_sensor`` launches a candidate run.

All keep cursors (and run keys) so a tick never re-fires for the same approval or window.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import dagster as dg

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs.assets.monitoring import REPORT_KEY, SCORECARD
from sensequant_assets.defs.check_history import drift_by_session
from sensequant_assets.defs.jobs import (
    CANDIDATE_JOB,
    OHLCV_JOB,
    PROMOTE_JOB,
    REWARDS_JOB,
    SIGNALS_JOB,
    STAGE_JOB,
    STAGE_PHASES,
    STAGING_SIGNALS_JOB,
    TEACHER_JOB,
    candidate_request,
)
from sensequant_assets.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from sensequant_assets.defs.tags import (
    CANDIDATE_TAG,
    HISTORICAL_RUN_TAG,
    NEW_WINDOW_TAG,
    candidate_owner,
)
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.features import WARMUP_SESSIONS
from sensequant_assets.live.demotion import decide_demotion, pinned_model
from sensequant_assets.live.notify import Notifier
from sensequant_assets.live.production import SIGNALS_TABLE
from sensequant_assets.orchestration.runs import step_failure
from sensequant_assets.registry import APPROVED, StateManager
from sensequant_assets.registry.approval import production_refusal
from sensequant_assets.registry.reservation import try_reserve
from sensequant_assets.registry.trial import PROMOTE
from sensequant_assets.release.deployment import (
    current_production,
    current_staging,
    promotion_requests,
    rollback_production,
)
from sensequant_assets.release.stage import record_failed_candidate
from sensequant_assets.settings import Settings
from sensequant_assets.storage import Warehouse
from sensequant_assets.training import TrainingWindow, window_data_range
from sensequant_assets.training.resources import latest_complete_window

DEMOTED_BY = "demotion sensor"

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def build_sensors(
    settings: Settings,
    calendar: TradingCalendar,
    symbols: Sequence[str],
    windows: Sequence[str],
    evaluation: Evaluation,
    jobs: Mapping[str, "UnresolvedAssetJobDefinition"],
) -> list[dg.SensorDefinition]:
    """Every sensor; ``jobs`` are the definitions' jobs by name (sensors target job objects)."""
    return [
        *_release_sensors(evaluation, jobs),
        _signals_sensor(
            evaluation,
            jobs[OHLCV_JOB],
            [jobs[SIGNALS_JOB], jobs[STAGING_SIGNALS_JOB], jobs[REWARDS_JOB]],
        ),
        _demotion_sensor(evaluation),
        *_new_window_sensors(
            settings, calendar, symbols, windows, jobs[TEACHER_JOB], jobs[CANDIDATE_JOB]
        ),
    ]


def _release_sensors(
    evaluation: Evaluation, jobs: Mapping[str, "UnresolvedAssetJobDefinition"]
) -> list[dg.SensorDefinition]:
    return [
        _promotion_sensor(evaluation, jobs),
        _candidate_failure_sensor(evaluation, jobs[CANDIDATE_JOB]),
        _run_failure_notifier(evaluation),
    ]


def _promotion_sensor(
    evaluation: Evaluation, jobs: Mapping[str, "UnresolvedAssetJobDefinition"]
) -> dg.SensorDefinition:
    layout = evaluation.training.layout
    via_staging = evaluation.training.settings.promote_via_staging

    @dg.sensor(jobs=[jobs[PROMOTE_JOB], jobs[STAGE_JOB]], minimum_interval_seconds=60)
    def promotion_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        """Deploy each newly approved candidate once: to production, or with
        SENSEQUANT_PROMOTE_VIA_STAGING to staging, and to production once its staging trial
        recorded promote. One trained on synthetic data never goes to production (logged)."""
        registry = StateManager(layout.registry)
        ids, cursor = promotion_requests(registry, context.cursor)
        requests = [
            dg.RunRequest(
                run_key=f"stage:{run_id}", job_name=STAGE_JOB, tags={CANDIDATE_TAG: run_id}
            )
            for run_id in (ids if via_staging else [])
        ]
        ready = ids if not via_staging else _trial_passed(registry)
        for run_id in ready:
            if refusal := production_refusal(registry.get_candidate_run(run_id)):
                context.log.info(f"not promoted: {refusal}")
                continue
            requests.append(dg.RunRequest(run_key=f"promote:{run_id}", job_name=PROMOTE_JOB,
                                          tags={CANDIDATE_TAG: run_id}))  # fmt: skip
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    def _trial_passed(registry: StateManager) -> list[str]:
        """The staged run, if its trial ended in promote and it is not deployed yet."""
        staged = current_staging(layout)
        if staged is None or registry.staging_outcome(staged) != PROMOTE:
            return []
        return [staged] if registry.get_candidate_run(staged).status == APPROVED else []

    return promotion_sensor


def _candidate_failure_sensor(
    evaluation: Evaluation, candidate_job: "UnresolvedAssetJobDefinition"
) -> dg.SensorDefinition:
    layout = evaluation.training.layout

    @dg.run_failure_sensor(monitored_jobs=[candidate_job])  # type: ignore[arg-type]
    def candidate_failure_sensor(context: dg.RunFailureSensorContext) -> None:
        """A failed candidate run gets a partial briefing and a failed registry entry, for the
        candidate id it holds (reserved now if it never was): another run's is left alone."""
        run = context.dagster_run
        candidate_id = run.tags.get(CANDIDATE_TAG) or run.tags.get(HISTORICAL_RUN_TAG)
        if not candidate_id:
            context.log.info(f"run {run.run_id} has no candidate tag: skipped")
            return
        owner = candidate_owner(run.tags, run.run_id, run.root_run_id)
        held = try_reserve(StateManager(layout.registry), candidate_id, owner)
        if held.owner != owner:
            context.log.info(
                f"{candidate_id} is reserved by run {held.owner}, not by the failed run "
                f"{run.run_id}: its registry entry and briefing are left as they are"
            )
            return
        steps = context.get_step_failure_events()
        phase, error = "candidate", context.failure_event.message or "run failed"
        if steps:
            step, error = step_failure(steps[0])
            phase = STAGE_PHASES.get(step, "candidate")
        if not record_failed_candidate(evaluation, candidate_id, phase, error, run.run_id):
            context.log.info(f"{candidate_id} is already reviewed: its briefing is left as it is")

    return candidate_failure_sensor


def _run_failure_notifier(evaluation: Evaluation) -> dg.SensorDefinition:
    @dg.run_failure_sensor(name="run_failure_notifier")
    def run_failure_notifier(context: dg.RunFailureSensorContext) -> None:
        """Tell the webhook of every failed run: its job, run id, first failed step and why."""
        run = context.dagster_run
        steps = context.get_step_failure_events()
        step, error = (
            step_failure(steps[0]) if steps else ("run", context.failure_event.message or "")
        )
        details = {"job": run.job_name, "run": run.run_id, "step": step, "error": error[:500]}
        if candidate := run.tags.get(CANDIDATE_TAG) or run.tags.get(HISTORICAL_RUN_TAG):
            details["candidate"] = candidate
        delivery = Notifier.of(evaluation.training.settings)(
            "run_failed", f"{run.job_name} run {run.run_id[:8]} failed", details
        )
        context.log.info(f"notification: {delivery.status} {delivery.detail}")

    return run_failure_notifier


def _signals_sensor(
    evaluation: Evaluation,
    ohlcv_job: "UnresolvedAssetJobDefinition",
    daily_jobs: "Sequence[UnresolvedAssetJobDefinition]",
) -> dg.SensorDefinition:
    """``daily_jobs``: the production signals', the staging signals' and the live rewards'."""
    layout = evaluation.training.layout
    signals_job, staging_signals_job, rewards_job = daily_jobs
    rewarding = evaluation.training.reward_config.enabled

    @dg.run_status_sensor(
        name="production_signals_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[ohlcv_job],
        request_jobs=list(daily_jobs),
    )
    def production_signals_sensor(
        context: dg.RunStatusSensorContext,
    ) -> list[dg.RunRequest] | dg.SkipReason:
        """After a day's update of every symbol, the production model scores that day, and a
        staged model on trial scores it in shadow; with the reward loop on, the production
        calls that matured by that day are rewarded."""
        tags = context.dagster_run.tags
        first, last = tags.get(RANGE_START_TAG, ""), tags.get(RANGE_END_TAG, "")
        day = first.split("|")[0]
        if not day or day != last.split("|")[0]:
            return dg.SkipReason("not a one-day update of every symbol (a backfill or one symbol)")
        jobs = []
        if current_production(layout) is not None:
            jobs.append(signals_job.name)
            if rewarding:
                jobs.append(rewards_job.name)
        staged = current_staging(layout)
        if staged is not None and StateManager(layout.registry).staging_outcome(staged) is None:
            jobs.append(staging_signals_job.name)
        if not jobs:
            return dg.SkipReason(f"no model in production or on trial to score {day} with")
        run = context.dagster_run.run_id
        return [
            dg.RunRequest(run_key=f"{job}:{day}:{run}", job_name=job, partition_key=day)
            for job in jobs
        ]

    return production_signals_sensor


def _demotion_sensor(evaluation: Evaluation) -> dg.SensorDefinition:
    layout, settings = evaluation.training.layout, evaluation.training.settings

    @dg.sensor(minimum_interval_seconds=300)
    def demotion_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        """Roll production back when the live scorecard has sat below its walk-forward band
        for SENSEQUANT_DEMOTION_SESSIONS sessions, unless a person pinned the model."""
        latest = context.instance.fetch_materializations(dg.AssetKey(SCORECARD), limit=1)
        if not latest.records:
            return dg.SensorResult(skip_reason="no live scorecard recorded yet")
        record = latest.records[0]
        cursor = str(record.storage_id)
        if context.cursor == cursor:
            return dg.SensorResult(skip_reason="the latest scorecard was judged already")
        materialization = record.event_log_entry.asset_materialization
        assert materialization is not None  # a materialization record holds one
        report = materialization.metadata[REPORT_KEY].value
        model_id, live = report["model_id"], current_production(layout)
        if model_id != live:
            reason = f"the latest scorecard is {model_id}'s, but {live} is in production"
            return dg.SensorResult(skip_reason=reason, cursor=cursor)
        pin = pinned_model(layout)
        drift = drift_by_session(context.instance, SIGNALS_TABLE, model_id)
        until = dt.date.fromisoformat(report["day"])
        verdicts = [drift[day] for day in sorted(drift) if day <= until]
        decision = decide_demotion(
            model_id, report, verdicts, settings.demotion_sessions, pinned=pin == model_id
        )
        if not decision.demote:
            why = "; ".join(decision.reasons) or f"{model_id} holds up (report of {report['day']})"
            return dg.SensorResult(skip_reason=why, cursor=cursor)
        registry = StateManager(layout.registry)
        reason = "; ".join(decision.reasons)
        restored = rollback_production(layout, registry, by=DEMOTED_BY, reason=reason)
        Notifier.of(settings)(
            "demoted", model_id, {"restored": restored.run_id, "why": reason, "by": DEMOTED_BY}
        )
        context.log.info(f"demoted {model_id}: {reason}; production is {restored.run_id}")
        done = f"demoted {model_id} to {restored.run_id}"
        return dg.SensorResult(skip_reason=done, cursor=cursor)

    return demotion_sensor


def _new_window_sensors(
    settings: Settings,
    calendar: TradingCalendar,
    symbols: Sequence[str],
    windows: Sequence[str],
    teacher_job: "UnresolvedAssetJobDefinition",
    candidate_job: "UnresolvedAssetJobDefinition",
) -> list[dg.SensorDefinition]:
    ordered = sorted(symbols)

    @dg.sensor(job_name=TEACHER_JOB, minimum_interval_seconds=600)
    def new_window_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        """Train the teachers of a window once its market data is complete."""
        stored = Warehouse.from_settings(settings).last_common_date("ohlcv_daily", ordered)
        window = latest_complete_window(windows, ordered, calendar, settings.label_horizon, stored)
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

    return [new_window_sensor, new_window_candidate_sensor]
