"""Sensors: promote approved candidates, train new windows, record failed candidate runs.

A failed run is recorded only for the candidate id it reserved
(:mod:`~sensequant_assets.registry.reservation`), never for another run's.

All keep cursors (and run keys) so a tick never re-fires for the same approval or window.
"""

import json
from collections.abc import Sequence

import dagster as dg

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.defs.evaluation import Evaluation
from sensequant_assets.defs.jobs import PROMOTE_JOB, STAGE_PHASES
from sensequant_assets.defs.release import record_failed_candidate
from sensequant_assets.defs.tags import CANDIDATE_TAG, HISTORICAL_RUN_TAG, candidate_owner
from sensequant_assets.registry import APPROVED, StateManager
from sensequant_assets.registry.approval import production_refusal
from sensequant_assets.registry.reservation import try_reserve
from sensequant_assets.runs import step_failure


def promotion_requests(registry: StateManager, cursor: str | None) -> tuple[list[str], str]:
    """Approved, non-dry-run candidates approved after ``cursor`` (oldest first), new cursor.

    The cursor is the latest approval time handed out, plus the ids approved at that instant,
    so two approvals within the same second are both seen exactly once. A registry changed
    outside sensequant raises :class:`~sensequant_assets.registry.TamperedRegistryError`: the
    tick fails with that line, requests nothing and keeps its cursor.
    """
    registry.verify().require("promote approved candidates")
    state = json.loads(cursor) if cursor else {"after": "", "ids": []}
    approved = [
        r for r in registry.get_candidate_runs(status=APPROVED, include_dryrun=False)
        if r.approved_at is not None
    ]  # fmt: skip
    fresh = sorted(
        (r for r in approved
         if (stamp := r.approved_at.isoformat()) > state["after"]
         or (stamp == state["after"] and r.run_id not in state["ids"])),
        key=lambda r: (r.approved_at, r.run_id),
    )  # fmt: skip
    if not fresh:
        return [], json.dumps(state)
    latest = fresh[-1].approved_at.isoformat()
    same = [r.run_id for r in approved if r.approved_at.isoformat() == latest]
    return [r.run_id for r in fresh], json.dumps({"after": latest, "ids": same})


def build_sensors(
    layout: ArtifactLayout, evaluation: Evaluation, monitored: Sequence[object]
) -> list[dg.SensorDefinition]:
    @dg.sensor(job_name=PROMOTE_JOB, minimum_interval_seconds=60)
    def promotion_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        """Deploy each newly approved candidate to production, once; one trained on synthetic
        data is skipped with the reason logged."""
        registry = StateManager(layout.registry)
        ids, cursor = promotion_requests(registry, context.cursor)
        requests = []
        for run_id in ids:
            if refusal := production_refusal(registry.get_candidate_run(run_id)):
                context.log.info(f"not promoted: {refusal}")
                continue
            tags = {CANDIDATE_TAG: run_id}
            requests.append(dg.RunRequest(run_key=f"promote:{run_id}", tags=tags))
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    @dg.run_failure_sensor(monitored_jobs=list(monitored))  # type: ignore[arg-type]
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

    return [promotion_sensor, candidate_failure_sensor]
