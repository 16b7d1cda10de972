"""Deploying approved candidates: verified, atomic, the previous one kept for rollback."""

import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import (
    current_production,
    deploy_to_production,
    rollback_production,
)
from sensequant_assets.release.manifest import (
    ArtifactMismatchError,
    build_manifest,
    write_manifest,
)

A, B = "live_candidate_20261101_090000", "live_candidate_20261108_090000"


def _candidate(layout: ArtifactLayout, registry: StateManager, run_id: str) -> None:
    candidate = layout.candidate(run_id)
    candidate.student_dir.mkdir(parents=True)
    (candidate.student_dir / "student_model.txt").write_text(f"tree for {run_id}\n")
    audit = layout.audit_dir(candidate)
    audit.mkdir(parents=True)
    (audit / "promotion_briefing.md").write_text(f"# {run_id}\n")
    manifest = build_manifest(
        release_id=run_id, home=layout.home, candidate_dir=candidate.root, audit_dir=audit,
        sections={}, lineage={}, configuration={},
    )  # fmt: skip
    write_manifest(audit, manifest)
    registry.record_candidate_run(run_id, recommendation="approve", score=0.99)
    registry.approve_candidate_run(run_id, approved_by="asha")


def test_deploy_switches_current_and_keeps_the_previous_bundle(tmp_path) -> None:
    layout = ArtifactLayout(tmp_path)
    registry = StateManager(layout.registry)
    _candidate(layout, registry, A)
    _candidate(layout, registry, B)
    deploy_to_production(layout, registry, A, by="sensor")
    assert current_production(layout) == A
    second = deploy_to_production(layout, registry, B, by="sensor")
    assert current_production(layout) == B and second.replaced_run_id == A
    assert (layout.production_dir / A / "student" / "student_model.txt").is_file()
    assert (layout.production_dir / B / "manifest.yaml").is_file()
    assert registry.get_candidate_run(A).status == "retired"

    back = rollback_production(layout, registry, by="asha")
    assert back.run_id == A and current_production(layout) == A
    assert registry.get_candidate_run(B).status == "retired"


def test_a_tampered_or_unapproved_candidate_is_refused(tmp_path) -> None:
    layout = ArtifactLayout(tmp_path)
    registry = StateManager(layout.registry)
    _candidate(layout, registry, A)
    model = layout.candidate(A).student_dir / "student_model.txt"
    model.write_text("something else\n")
    with pytest.raises(ArtifactMismatchError, match=r"student_model\.txt has SHA-256"):
        deploy_to_production(layout, registry, A, by="sensor")
    assert current_production(layout) is None and not (layout.production_dir / A).exists()
    assert registry.get_candidate_run(A).status == "approved"

    registry.record_candidate_run(B, recommendation="reject")
    with pytest.raises(ValueError, match="ready-for-review, not approved"):
        deploy_to_production(layout, registry, B, by="sensor")
