"""Deploying an approved candidate to production, and rolling back.

``data/models/production/<candidate id>/`` holds an immutable copy of each deployed bundle (the
student, its manifest and briefing); ``data/models/production/CURRENT`` names the live one.
With staging configured, the bundle first goes to ``data/models/staging/`` the same way and must
pass a smoke test there (the student loads with its hash verified and scores a row into three
probabilities) before production is touched.
A deployment writes the new ``CURRENT`` beside the old one first, verifies every SHA-256 of the
candidate's manifest, copies into a temporary directory that is renamed into place, records the
deployment in the registry and only then renames the new ``CURRENT`` over the old — so a reader
sees either the old model or the new one, never half of one, and the previous bundle stays on
disk for ``rollback``. Every write that can fail for lack of space happens before the registry
is told: a full disk fails the deployment cleanly instead of leaving the registry naming a
model ``CURRENT`` does not (the fault drills found that window).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.registry import PRODUCTION, STAGING, Deployment, StateManager
from sensequant_assets.release.manifest import MANIFEST_FILE, read_manifest, verify_artifacts
from sensequant_assets.training.student import load_student

CURRENT_FILE = "CURRENT"
BRIEFING_FILES = ("promotion_briefing.md", "promotion_briefing.json")


def current_production(layout: ArtifactLayout) -> str | None:
    return _current(layout.production_dir)


def current_staging(layout: ArtifactLayout) -> str | None:
    return _current(layout.staging_dir)


def deploy_to_staging(
    layout: ArtifactLayout, registry: StateManager, candidate_id: str, by: str
) -> Deployment:
    """Verify and copy to staging, smoke-test the staged student, record the deployment."""
    with _new_pointer(layout.staging_dir, candidate_id) as switch:
        smoke_test(_install(layout, registry, candidate_id, layout.staging_dir))
        deployment = registry.record_deployment(candidate_id, STAGING, by=by)
        switch()
    return deployment


def smoke_test(bundle: Path) -> None:
    """The bundle's student loads (hash verified) and turns a row into three probabilities."""
    booster, metadata = load_student(bundle / "student")
    row = np.zeros((1, len(metadata["feature_names"])))
    probabilities = np.asarray(booster.predict(row))
    if probabilities.shape != (1, 3) or not np.isclose(probabilities.sum(), 1.0):
        raise ValueError(
            f"smoke test of {bundle.name}: expected 3 class probabilities summing to 1, got "
            f"{probabilities.tolist()}"
        )


def deploy_to_production(
    layout: ArtifactLayout, registry: StateManager, candidate_id: str, by: str
) -> Deployment:
    """Verify, copy and switch to ``candidate_id``; the registry must hold it as approved.

    Re-running it for the run the registry already has live only re-points ``CURRENT``, which
    repairs a crash between recording the deployment and switching the file.
    """
    run = registry.get_candidate_run(candidate_id)
    live = registry.current_deployment(PRODUCTION)
    if run.status == "deployed" and live is not None and live.run_id == candidate_id:
        _point_current(layout.production_dir, candidate_id)
        return live
    with _new_pointer(layout.production_dir, candidate_id) as switch:
        _install(layout, registry, candidate_id, layout.production_dir)
        deployment = registry.record_deployment(candidate_id, PRODUCTION, by=by)
        switch()
    return deployment


def rollback_production(layout: ArtifactLayout, registry: StateManager, by: str) -> Deployment:
    """Re-deploy the previous production bundle (kept on disk) and record it.

    The bundle is checked and the new ``CURRENT`` written before the registry moves, so a
    missing bundle or a full disk leaves both the registry and ``CURRENT`` as they were."""
    target = registry.rollback_target(PRODUCTION)
    if not (layout.production_dir / target).is_dir():
        raise FileNotFoundError(
            f"cannot roll back to {target}: its bundle is missing from {layout.production_dir}"
        )
    with _new_pointer(layout.production_dir, target) as switch:
        deployment = registry.rollback(PRODUCTION, by=by)
        if deployment.run_id != target:
            raise RuntimeError(
                f"production changed during the rollback: the registry restored "
                f"{deployment.run_id}, not {target}; CURRENT was left as it was"
            )
        switch()
    return deployment


def _install(
    layout: ArtifactLayout, registry: StateManager, candidate_id: str, stage_dir: Path
) -> Path:
    """Check the run is approved and its files match the manifest; copy it into ``stage_dir``."""
    run = registry.get_candidate_run(candidate_id)
    if run.status != "approved":
        raise ValueError(
            f"{candidate_id} is {run.status}, not approved: nothing copied to {stage_dir.name}"
        )
    candidate = layout.candidate(candidate_id)
    audit = layout.audit_dir(candidate)
    verify_artifacts(read_manifest(audit), layout.home)
    target = stage_dir / candidate_id
    if not target.exists():
        _copy_bundle(candidate.student_dir, audit, target)
    return target


def _copy_bundle(student_dir: Path, audit_dir: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(student_dir, staging / "student")
        for name in (MANIFEST_FILE, *BRIEFING_FILES):
            if (audit_dir / name).is_file():
                shutil.copy2(audit_dir / name, staging / name)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _current(stage_dir: Path) -> str | None:
    path = stage_dir / CURRENT_FILE
    return path.read_text().strip() if path.is_file() else None


@contextmanager
def _new_pointer(stage_dir: Path, candidate_id: str) -> Iterator[Callable[[], None]]:
    """Write ``CURRENT`` naming ``candidate_id`` under a temporary name; yield the switch.

    Writing is what a full disk makes fail, the switch is a rename that needs no new space: so
    callers write first, record, then switch. The temporary is removed whatever happens.
    """
    stage_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{CURRENT_FILE}.", dir=stage_dir)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(candidate_id + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; readers of CURRENT may be other users
        yield lambda: os.replace(tmp, stage_dir / CURRENT_FILE)
    finally:
        tmp.unlink(missing_ok=True)


def _point_current(stage_dir: Path, candidate_id: str) -> None:
    with _new_pointer(stage_dir, candidate_id) as switch:
        switch()
