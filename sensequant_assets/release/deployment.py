"""Deploying an approved candidate to production, and rolling back.

``data/models/production/<candidate id>/`` holds an immutable copy of each deployed bundle (the
student, its manifest and briefing); ``data/models/production/CURRENT`` names the live one.
A deployment verifies every SHA-256 of the candidate's manifest first, copies into a temporary
directory that is renamed into place, then switches ``CURRENT`` atomically and records the
deployment in the registry — so a reader sees either the old model or the new one, never half
of one, and the previous bundle stays on disk for ``rollback``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.registry import PRODUCTION, Deployment, StateManager
from sensequant_assets.release.manifest import MANIFEST_FILE, read_manifest, verify_artifacts

CURRENT_FILE = "CURRENT"
BRIEFING_FILES = ("promotion_briefing.md", "promotion_briefing.json")


def current_production(layout: ArtifactLayout) -> str | None:
    path = layout.production_dir / CURRENT_FILE
    return path.read_text().strip() if path.is_file() else None


def deploy_to_production(
    layout: ArtifactLayout, registry: StateManager, candidate_id: str, by: str
) -> Deployment:
    """Verify, copy and switch to ``candidate_id``; the registry must hold it as approved."""
    run = registry.get_candidate_run(candidate_id)
    if run.status != "approved":
        raise ValueError(f"{candidate_id} is {run.status}, not approved: nothing deployed")
    candidate = layout.candidate(candidate_id)
    audit = layout.audit_dir(candidate)
    verify_artifacts(read_manifest(audit), layout.home)
    target = layout.production_dir / candidate_id
    if not target.exists():
        _copy_bundle(candidate.student_dir, audit, target)
    deployment = registry.record_deployment(candidate_id, PRODUCTION, by=by)
    _point_current(layout, candidate_id)
    return deployment


def rollback_production(layout: ArtifactLayout, registry: StateManager, by: str) -> Deployment:
    """Re-deploy the previous production bundle (kept on disk) and record it."""
    deployment = registry.rollback(PRODUCTION, by=by)
    if not (layout.production_dir / deployment.run_id).is_dir():
        raise FileNotFoundError(
            f"the registry rolled back to {deployment.run_id}, but its bundle is missing from "
            f"{layout.production_dir}"
        )
    _point_current(layout, deployment.run_id)
    return deployment


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


def _point_current(layout: ArtifactLayout, candidate_id: str) -> None:
    path = layout.production_dir / CURRENT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(candidate_id + "\n")
    os.replace(tmp, path)
