"""Registry drills: tamper with the registry or the files it approved, race deploys and rollbacks.

Shared by ``test_registry_drills.py`` (small scale, asserted) and ``bench/drill_registry.py``
(the figures of docs/reliability.md). Tampering is what someone with write access to
``SENSEQUANT_HOME`` (or to the Postgres registry) can do with a ``sqlite3`` or ``psql`` shell or
an editor; racing uses real processes calling ``deploy_to_production`` and
``rollback_production`` on one home and registry.
"""

from __future__ import annotations

import multiprocessing
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.defs.jobs import PROMOTE_JOB
from sensequant_assets.orchestration.runs import step_failure
from sensequant_assets.registry import (
    PRODUCTION,
    StateManager,
    TamperedRegistryError,
    postgres_schema,
)
from sensequant_assets.release.deployment import (
    current_production,
    deploy_to_production,
    rollback_production,
)
from sensequant_assets_tests.databases import lifted, shell
from sensequant_assets_tests.deployable import approved_candidate, release_audit, student

LIVE = "live_candidate_20261101_090000"
APPROVED_RUN = "live_candidate_20261108_090000"
REJECTED_RUN = "live_candidate_20261115_090000"
SILENT = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""Refused runs are expected here: their messages are returned, not logged."""


# --- tampering -------------------------------------------------------------------------------


def tamper_scenario(layout: ArtifactLayout) -> StateManager:
    """LIVE in production; APPROVED_RUN approved, not yet promoted; REJECTED_RUN approved and
    then rejected by a reviewer (its rejection row sits in the middle of the audit log)."""
    registry = StateManager(layout.registry)
    for run_id in (LIVE, REJECTED_RUN, APPROVED_RUN):
        approved_candidate(layout, registry, run_id)
    registry.reject_candidate_run(REJECTED_RUN, "ravi", "drawdown too deep")
    deploy_to_production(layout, registry, LIVE, by="sensor")
    return registry


_ERASE_REJECTION = (
    f"DELETE FROM status_changes WHERE run_id = '{REJECTED_RUN}' AND to_status = 'rejected'",
    f"UPDATE candidate_runs SET status = 'approved' WHERE run_id = '{REJECTED_RUN}'",
)


def _edit_status(layout: ArtifactLayout) -> None:
    shell(
        layout.registry,
        f"UPDATE candidate_runs SET status = 'approved' WHERE run_id = '{REJECTED_RUN}'",
    )


def _drop_trigger(layout: ArtifactLayout) -> None:
    shell(layout.registry, "DROP TRIGGER status_changes_no_update")


def _delete_log_row(layout: ArtifactLayout) -> None:
    """Erase the rejection: its audit-log row goes, the status goes back to approved."""
    lifted(layout.registry, *_ERASE_REJECTION, lift=("status_changes_no_delete",))


def _swap_model(layout: ArtifactLayout) -> None:
    """Another valid model under the approved one's name, re-hashed into a fresh manifest."""
    directory = layout.candidate(APPROVED_RUN).student_dir
    shutil.rmtree(directory)
    student(directory, seed=99)
    release_audit(layout, APPROVED_RUN)


def _edit_briefing(layout: ArtifactLayout) -> None:
    briefing = layout.audit_dir(layout.candidate(APPROVED_RUN)) / "promotion_briefing.md"
    briefing.write_text(briefing.read_text().replace("REJECT", "APPROVE"))


def _edit_manifest(layout: ArtifactLayout) -> None:
    manifest = layout.audit_dir(layout.candidate(APPROVED_RUN)) / "manifest.yaml"
    manifest.write_text(manifest.read_text() + "# reviewed: yes\n")


TAMPERS: dict[str, Callable[[ArtifactLayout], None]] = {
    "edit status": _edit_status,
    "drop trigger": _drop_trigger,
    "delete log row": _delete_log_row,
    "swap model file": _swap_model,
    "edit briefing": _edit_briefing,
    "edit manifest": _edit_manifest,
}


def _disable_trigger(layout: ArtifactLayout) -> None:
    """Erase the rejection with the no-delete trigger disabled, and leave it disabled."""
    shell(
        layout.registry,
        "ALTER TABLE status_changes DISABLE TRIGGER status_changes_no_delete",
        *_ERASE_REJECTION,
    )


def _replace_refusal_function(layout: ArtifactLayout) -> None:
    """Every refusal trigger left in place, their function swapped for one letting deletes by."""
    shell(
        layout.registry,
        f"CREATE OR REPLACE FUNCTION {postgres_schema.REFUSE}() RETURNS trigger"
        " LANGUAGE plpgsql AS $body$ BEGIN RETURN OLD; END $body$",
        *_ERASE_REJECTION,
    )


POSTGRES_TAMPERS: dict[str, Callable[[ArtifactLayout], None]] = {
    "disable trigger": _disable_trigger,
    "replace refusal function": _replace_refusal_function,
}
"""Tampering only Postgres allows: its triggers can be disabled, and share one function."""


def promote(defs: dg.Definitions) -> tuple[list[str], list[str]]:
    """One promotion-sensor tick, then ``promote_job`` for each run it requests, as the daemon
    would launch them: the candidates requested, and every refusal (tick or run) message."""
    sensor = defs.resolve_sensor_def("promotion_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        try:
            result = sensor(dg.build_sensor_context(instance=instance))
        except TamperedRegistryError as exc:
            return [], [f"sensor tick failed: {exc}"]
        requested, refusals = [], []
        for request in result.run_requests:
            requested.append(request.tags["sensequant/candidate"])
            run = defs.resolve_job_def(PROMOTE_JOB).execute_in_process(
                instance=instance, tags=request.tags, run_config=SILENT, raise_on_error=False
            )
            if not run.success:
                failure = next(e for e in run.all_events if e.is_step_failure)
                refusals.append(step_failure(failure)[1])
    return requested, refusals


# --- racing deploys and rollbacks -----------------------------------------------------------


def race_candidates(pairs: int) -> list[str]:
    """Candidate ids, one a minute: two deployed before the race, one more per pair."""
    return [f"live_candidate_20261101_{9 + i // 60:02d}{i % 60:02d}00" for i in range(pairs + 2)]


def race_setup(layout: ArtifactLayout, pairs: int) -> list[str]:
    """Approved candidates for ``pairs`` deploy/rollback pairs, the first two deployed."""
    registry = StateManager(layout.registry)
    ids = race_candidates(pairs)
    for run_id in ids:
        approved_candidate(layout, registry, run_id)
    for run_id in ids[:2]:
        deploy_to_production(layout, registry, run_id, by="setup")
    return ids[2:]


def _outcome(action: Callable[..., object], *args: object, **kwargs: object) -> str:
    try:
        action(*args, **kwargs)
    except Exception as exc:  # a drill records every refusal, whatever its kind
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def _racer(
    role: str, home: str, database: str | None, ids: list[str], barrier: Any, results: Any
) -> None:
    """One process: per pair, wait for the start, act at once (half the time after a jitter of
    up to 5 ms, so both orders happen), report, wait for the check."""
    layout = ArtifactLayout(Path(home), None if database is None else sa.make_url(database))
    registry = StateManager(layout.registry)
    rng = random.Random(role)
    for index, run_id in enumerate(ids):
        barrier.wait(timeout=300)
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0, 0.005))
        if role == "deploy":
            outcome = _outcome(deploy_to_production, layout, registry, run_id, by="racer")
        else:
            outcome = _outcome(rollback_production, layout, registry, by="racer")
        results.put((role, index, outcome))
        barrier.wait(timeout=300)


@dataclass
class RaceResult:
    """How ``pairs`` deploy/rollback pairs ended: after each, do registry and CURRENT agree?"""

    pairs: int
    agreed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    disagreements: list[str] = field(default_factory=list)


def _kind(outcome: str) -> str:
    return outcome.split(":", 1)[0]


def race(layout: ArtifactLayout, pairs: int) -> RaceResult:
    """Deploy one new candidate and roll production back, concurrently, ``pairs`` times, in two
    real processes; after each pair compare the registry's live run with ``CURRENT``."""
    ids = race_setup(layout, pairs)
    database = None if layout.database is None else layout.database.render_as_string(False)
    registry = StateManager(layout.registry)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    workers = [
        ctx.Process(
            target=_racer,
            args=(role, str(layout.home), database, ids, barrier, results),
        )
        for role in ("deploy", "rollback")
    ]
    for worker in workers:
        worker.start()
    result = RaceResult(pairs)
    try:
        for index in range(pairs):
            barrier.wait(timeout=300)
            barrier.wait(timeout=300)
            for _ in workers:
                role, _, outcome = results.get(timeout=60)
                result.outcomes[f"{role} {_kind(outcome)}"] += 1
            live = registry.current_deployment(PRODUCTION)
            pointer = current_production(layout)
            deployed = [r.run_id for r in registry.get_candidate_runs("deployed")]
            if live is not None and pointer == live.run_id and deployed == [live.run_id]:
                result.agreed += 1
            else:
                result.disagreements.append(
                    f"pair {index}: registry {live and live.run_id}, CURRENT {pointer}, "
                    f"deployed {deployed}"
                )
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    return result
