"""Deploying an approved candidate to production, and rolling back.

``data/models/production/<candidate id>/`` holds an immutable copy of each deployed bundle (the
student, its manifest and briefing); ``data/models/production/CURRENT`` names the live one.
With staging configured, the bundle first goes to ``data/models/staging/`` the same way and must
pass a smoke test there (the student loads with its hash verified and scores a row into three
probabilities) before production is touched.
A deployment writes the new ``CURRENT`` beside the old one first, checks the candidate's
manifest is the one the approval bound and every file it lists, builds the bundle in a
temporary directory where every copied file is verified (:mod:`~sensequant_assets.release.bundle`)
and renames it into place, records the deployment in the registry and only then renames the new
``CURRENT`` over the old — so a reader sees either the old model or the new one, never half of
one, and the previous bundle stays on disk for ``rollback``. A bundle already on disk is reused
(or rolled back to) only if it verifies the same way. Every write that can fail for lack of
space happens before the registry is told: a full disk fails the deployment cleanly instead of
leaving the registry naming a model ``CURRENT`` does not (the fault drills found that window).
Each deployment and rollback runs whole under the deployment lock
(:mod:`~sensequant_assets.release.deploy_lock`), after checking the registry was not changed
outside sensequant (:mod:`~sensequant_assets.registry.verify`). The promotion sensor asks
:func:`promotion_requests` which approvals it has not handed out yet.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from sensequant_assets.artifacts import ArtifactLayout, BundleLayout, current_file
from sensequant_assets.atomic import staged_file
from sensequant_assets.registry import (
    APPROVED,
    PRODUCTION,
    STAGING,
    CandidateRun,
    Deployment,
    StateManager,
)
from sensequant_assets.registry.approval import refuse_production
from sensequant_assets.registry.trial import PROMOTE
from sensequant_assets.release.bundle import approved_files, install_bundle, verify_bundle
from sensequant_assets.release.deploy_lock import deployment_lock
from sensequant_assets.release.manifest import verify_artifacts
from sensequant_assets.training.student import predict_probabilities
from sensequant_assets.training.student_files import load_student, stored_normalisation


def current_production(layout: ArtifactLayout) -> str | None:
    return _current(layout.production_dir)


def current_staging(layout: ArtifactLayout) -> str | None:
    return _current(layout.staging_dir)


def deploy_to_staging(
    layout: ArtifactLayout, registry: StateManager, candidate_id: str, by: str
) -> Deployment:
    """Verify and copy to staging, smoke-test the staged student, record the deployment."""
    with (
        _exclusive(layout, registry, f"deploy {candidate_id} to staging"),
        _new_pointer(layout.staging_dir, candidate_id) as switch,
    ):
        smoke_test(_install(layout, registry, candidate_id, layout.staging_dir))
        deployment = registry.record_deployment(candidate_id, STAGING, by=by)
        switch()
    return deployment


def smoke_test(bundle: Path) -> None:
    """The bundle's student loads (hash verified) and turns a row into three probabilities,
    through the per-date feature normalisation its metadata says it was trained with."""
    booster, metadata = load_student(BundleLayout(bundle).student_dir)
    names = metadata["feature_names"]
    day = pd.DataFrame({"date": [pd.Timestamp(0)], **{name: [0.0] for name in names}})
    probabilities = predict_probabilities(booster, day, names, stored_normalisation(metadata))
    if probabilities.shape != (1, 3) or not np.isclose(probabilities.sum(), 1.0):
        raise ValueError(
            f"smoke test of {bundle.name}: expected 3 class probabilities summing to 1, got "
            f"{probabilities.tolist()}"
        )


class TrialNotPassed(RuntimeError):
    """Production through staging takes only a candidate whose staging trial said promote."""


def deploy_to_production(
    layout: ArtifactLayout,
    registry: StateManager,
    candidate_id: str,
    by: str,
    after_trial: bool = False,
) -> Deployment:
    """Verify, copy and switch to ``candidate_id``; the registry must hold it as approved, and
    not as trained on synthetic data or as a dry run, and with ``after_trial`` as having ended
    its staging trial in ``promote`` (each refused before anything is touched).

    Re-running it for the run the registry already has live only re-points ``CURRENT`` (after
    verifying the bundle), which repairs a crash between recording the deployment and switching
    the file.
    """
    refuse_production(registry.get_candidate_run(candidate_id))
    if after_trial and (outcome := registry.staging_outcome(candidate_id)) != PROMOTE:
        status = "has not ended" if outcome is None else f"ended in {outcome!r}"
        raise TrialNotPassed(
            f"{candidate_id} is not deployed to production: its staging trial {status} (see "
            "staging_trial in Dagit and staging_report.md beside its briefing)"
        )
    with _exclusive(layout, registry, f"deploy {candidate_id} to production"):
        run = registry.get_candidate_run(candidate_id)
        live = registry.current_deployment(PRODUCTION)
        if run.status == "deployed" and live is not None and live.run_id == candidate_id:
            _verified_bundle(layout, run, layout.production_dir)
            _point_current(layout.production_dir, candidate_id)
            return live
        with _new_pointer(layout.production_dir, candidate_id) as switch:
            _install(layout, registry, candidate_id, layout.production_dir)
            deployment = registry.record_deployment(candidate_id, PRODUCTION, by=by)
            switch()
        return deployment


def rollback_production(
    layout: ArtifactLayout, registry: StateManager, by: str, reason: str | None = None
) -> Deployment:
    """Re-deploy the previous production bundle (kept on disk, verified again) and record it,
    with ``reason`` in the audit notes.

    The bundle is checked and the new ``CURRENT`` written before the registry moves, so a
    missing or altered bundle or a full disk leaves both the registry and ``CURRENT`` as they
    were."""
    with _exclusive(layout, registry, "roll production back"):
        target = registry.rollback_target(PRODUCTION)
        if not layout.deployed_bundle(layout.production_dir, target).is_dir():
            raise FileNotFoundError(
                f"cannot roll back to {target}: its bundle is missing from {layout.production_dir}"
            )
        _verified_bundle(layout, registry.get_candidate_run(target), layout.production_dir)
        with _new_pointer(layout.production_dir, target) as switch:
            deployment = registry.rollback(PRODUCTION, by=by, to=target, reason=reason)
            switch()
        return deployment


@contextmanager
def _exclusive(layout: ArtifactLayout, registry: StateManager, action: str) -> Iterator[None]:
    """Hold the deployment lock and check the registry is intact, before ``action`` reads or
    writes anything: the whole check-copy-record-switch runs alone."""
    with deployment_lock(layout.deployment_lock, action):
        registry.verify().require(action)
        yield


def _install(
    layout: ArtifactLayout, registry: StateManager, candidate_id: str, stage_dir: Path
) -> Path:
    """Check the run is approved and its files are what the approval bound; copy them into
    ``stage_dir`` (or reuse a copy already there that verifies)."""
    run = registry.get_candidate_run(candidate_id)
    if run.status != APPROVED:
        raise ValueError(
            f"{candidate_id} is {run.status}, not approved: nothing copied to {stage_dir.name}"
        )
    target = layout.deployed_bundle(stage_dir, candidate_id)
    if target.exists():
        return _verified_bundle(layout, run, stage_dir)
    candidate = layout.candidate(candidate_id)
    audit = layout.audit_dir(candidate)
    subject = f"{candidate_id}: {audit} no longer holds what was approved"
    manifest, expected = approved_files(run, audit, subject)
    verify_artifacts(manifest, layout.home)
    install_bundle(candidate.student_dir, audit, target, expected, candidate_id)
    return target


def live_bundle(
    layout: ArtifactLayout, registry: StateManager, stage_dir: Path
) -> tuple[str, Path] | None:
    """``(candidate id, bundle)`` of the model live in ``stage_dir`` (production or staging),
    after checking the bundle holds exactly the files its approval bound; None when the stage
    has none. Raises :class:`ModelIntegrityError` when the files differ."""
    candidate_id = _current(stage_dir)
    if candidate_id is None:
        return None
    run = registry.get_candidate_run(candidate_id)
    return candidate_id, _verified_bundle(layout, run, stage_dir)


def _verified_bundle(layout: ArtifactLayout, run: CandidateRun, stage_dir: Path) -> Path:
    """The bundle of ``run`` already in ``stage_dir``, if it holds exactly what was approved."""
    bundle = layout.deployed_bundle(stage_dir, run.run_id)
    subject = f"{run.run_id}: {bundle} does not hold what was approved (left as it is)"
    _, expected = approved_files(run, bundle, subject)
    verify_bundle(bundle, expected, subject)
    return bundle


def _current(stage_dir: Path) -> str | None:
    path = current_file(stage_dir)
    return path.read_text().strip() if path.is_file() else None


@contextmanager
def _new_pointer(stage_dir: Path, candidate_id: str) -> Iterator[Callable[[], None]]:
    """Write ``CURRENT`` naming ``candidate_id`` under a temporary name; yield the switch.

    Writing is what a full disk makes fail, the switch is a rename that needs no new space: so
    callers write first, record, then switch. The temporary is removed whatever happens.
    """
    with staged_file(current_file(stage_dir), (candidate_id + "\n").encode()) as switch:
        yield switch


def _point_current(stage_dir: Path, candidate_id: str) -> None:
    with _new_pointer(stage_dir, candidate_id) as switch:
        switch()


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
