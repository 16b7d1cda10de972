"""Deploying approved candidates: verified, atomic, the previous one kept for rollback.

An approval binds the manifest and briefing the reviewer read; a deployment refuses any bundle
(built now, or already on disk) whose files are not exactly those. Each test runs with the
registry on SQLite and on Postgres.
"""

import hashlib
import shutil
from pathlib import Path

import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.integrity import ModelIntegrityError
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import (
    current_production,
    current_staging,
    deploy_to_production,
    deploy_to_staging,
    rollback_production,
)
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.deployable import approved_candidate, release_audit, student

A, B = "live_candidate_20261101_090000", "live_candidate_20261108_090000"

pytestmark = pytest.mark.usefixtures("registry_env")


def _layout(root: Path) -> ArtifactLayout:
    """Artifacts under ``root``, the registry on the backend under test."""
    return ArtifactLayout(root, load_settings().state_database)


def _tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (CURRENT and bundles), hidden temporaries too."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _a_live_and_b_approved(tmp_path: Path) -> tuple[ArtifactLayout, StateManager, dict[str, str]]:
    """A deployed to production, B approved; returns the production tree before B."""
    layout = _layout(tmp_path)
    registry = StateManager(layout.registry)
    approved_candidate(layout, registry, A)
    approved_candidate(layout, registry, B)
    deploy_to_production(layout, registry, A, by="sensor")
    return layout, registry, _tree(layout.production_dir)


def _refused(
    layout: ArtifactLayout, registry: StateManager, before: dict[str, str], match: str
) -> None:
    """Deploying B fails with ``match``; production, CURRENT and the registry are unchanged."""
    with pytest.raises(ModelIntegrityError, match=match):
        deploy_to_production(layout, registry, B, by="sensor")
    assert _tree(layout.production_dir) == before and current_production(layout) == A
    assert registry.get_candidate_run(B).status == "approved"
    assert [d.run_id for d in registry.deployment_history()] == [A]


def test_deploy_switches_current_and_keeps_the_previous_bundle(tmp_path) -> None:
    layout = _layout(tmp_path)
    registry = StateManager(layout.registry)
    approved_candidate(layout, registry, A)
    approved_candidate(layout, registry, B)
    deploy_to_production(layout, registry, A, by="sensor")
    assert current_production(layout) == A
    second = deploy_to_production(layout, registry, B, by="sensor")
    assert current_production(layout) == B and second.replaced_run_id == A
    assert (layout.production_dir / A / "student" / "student_model.txt").is_file()
    assert (layout.production_dir / B / "manifest.yaml").is_file()
    assert registry.get_candidate_run(A).status == "retired"

    # a crash after recording but before switching CURRENT: re-running repairs the file
    (layout.production_dir / "CURRENT").write_text(A)
    assert deploy_to_production(layout, registry, B, by="sensor").run_id == B
    assert current_production(layout) == B

    back = rollback_production(layout, registry, by="asha")
    assert back.run_id == A and current_production(layout) == A
    assert registry.get_candidate_run(B).status == "retired"


def test_a_rollback_to_a_missing_bundle_changes_nothing(tmp_path) -> None:
    layout = _layout(tmp_path)
    registry = StateManager(layout.registry)
    approved_candidate(layout, registry, A)
    approved_candidate(layout, registry, B)
    deploy_to_production(layout, registry, A, by="sensor")
    deploy_to_production(layout, registry, B, by="sensor")
    history = [d.to_dict() for d in registry.deployment_history()]
    shutil.rmtree(layout.production_dir / A)  # deleted by hand

    with pytest.raises(FileNotFoundError, match=f"cannot roll back to {A}"):
        rollback_production(layout, registry, by="asha")
    assert [d.to_dict() for d in registry.deployment_history()] == history
    assert registry.get_candidate_run(B).status == "deployed" and current_production(layout) == B
    assert sorted(p.name for p in layout.production_dir.iterdir()) == ["CURRENT", B]


def test_a_tampered_or_unapproved_candidate_is_refused(tmp_path) -> None:
    layout = _layout(tmp_path)
    registry = StateManager(layout.registry)
    approved_candidate(layout, registry, A)
    model = layout.candidate(A).student_dir / "student_model.txt"
    model.write_text(model.read_text() + "tampered\n")
    with pytest.raises(ModelIntegrityError, match=r"student_model\.txt has SHA-256"):
        deploy_to_production(layout, registry, A, by="sensor")
    assert current_production(layout) is None and not (layout.production_dir / A).exists()
    assert registry.get_candidate_run(A).status == "approved"

    registry.record_candidate_run(B, recommendation="reject")
    with pytest.raises(ValueError, match="not approved: nothing copied to production"):
        deploy_to_production(layout, registry, B, by="sensor")


def test_staging_smoke_tests_the_bundle_before_production(tmp_path) -> None:
    layout = _layout(tmp_path)
    registry = StateManager(layout.registry)
    approved_candidate(layout, registry, A)
    staged = deploy_to_staging(layout, registry, A, by="sensor")
    assert staged.stage == "staging" and current_staging(layout) == A
    assert (layout.staging_dir / A / "student" / "student_metadata.json").is_file()
    assert current_production(layout) is None  # staging alone does not touch production
    assert registry.get_candidate_run(A).status == "approved"
    deploy_to_production(layout, registry, A, by="sensor")
    assert current_production(layout) == A


def test_a_model_swapped_while_it_is_copied_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source verifies, then its model changes before the copy reads it: the copy is what
    gets checked, so the swap is caught."""
    layout, registry, before = _a_live_and_b_approved(tmp_path)
    model = layout.candidate(B).student_dir / "student_model.txt"
    other = tmp_path / "other"
    student(other, seed=99)
    copytree = shutil.copytree

    def swap_then_copy(source, destination, *args, **kwargs):
        model.write_bytes((other / "student_model.txt").read_bytes())
        return copytree(source, destination, *args, **kwargs)

    monkeypatch.setattr(shutil, "copytree", swap_then_copy)
    _refused(layout, registry, before, r"student/student_model\.txt has SHA-256 \w+, approved")
    assert not [p for p in layout.production_dir.iterdir() if p.name.startswith(".")]


def test_a_model_swapped_and_rehashed_into_the_manifest_after_approval_is_refused(
    tmp_path: Path,
) -> None:
    layout, registry, before = _a_live_and_b_approved(tmp_path)
    student_dir = layout.candidate(B).student_dir
    shutil.rmtree(student_dir)
    student(student_dir, seed=99)  # a different, valid model with matching metadata
    release_audit(layout, B)  # the manifest re-hashed consistently: it verifies on its own
    _refused(layout, registry, before, r"manifest\.yaml has SHA-256 \w+, the approval recorded")


def test_a_briefing_edited_after_approval_is_refused(tmp_path: Path) -> None:
    layout, registry, before = _a_live_and_b_approved(tmp_path)
    briefing = layout.audit_dir(layout.candidate(B)) / "promotion_briefing.md"
    briefing.write_text(briefing.read_text().replace("REJECT", "APPROVE"))
    _refused(layout, registry, before, r"promotion_briefing\.md has SHA-256 \w+, approved")


def test_an_extra_or_missing_file_in_the_bundle_is_refused(tmp_path: Path) -> None:
    layout, registry, before = _a_live_and_b_approved(tmp_path)
    extra = layout.candidate(B).student_dir / "override.txt"
    extra.write_text("predict UP\n")
    _refused(layout, registry, before, r"student/override\.txt is not part of the approved bundle")
    extra.unlink()
    (layout.audit_dir(layout.candidate(B)) / "promotion_briefing.json").unlink()
    _refused(layout, registry, before, r"promotion_briefing\.json is missing")


def test_a_tampered_bundle_already_in_production_is_refused_not_reused(tmp_path: Path) -> None:
    layout, registry, _ = _a_live_and_b_approved(tmp_path)
    planted = layout.production_dir / B
    shutil.copytree(layout.production_dir / A, planted)  # A's files under B's name
    before = _tree(layout.production_dir)
    _refused(layout, registry, before, rf"{B}: .*production/{B} does not hold what was approved")

    # An intact bundle already there is reused as it is.
    shutil.rmtree(planted)
    deploy_to_staging(layout, registry, B, by="sensor")
    shutil.copytree(layout.staging_dir / B, planted)
    assert deploy_to_production(layout, registry, B, by="sensor").run_id == B
    assert current_production(layout) == B

    # A rollback verifies the bundle it goes back to; so does a staging redeploy.
    model = layout.production_dir / A / "student" / "student_model.txt"
    model.write_bytes(model.read_bytes() + b"\n")
    before = _tree(layout.production_dir)
    history = [d.to_dict() for d in registry.deployment_history()]
    with pytest.raises(ModelIntegrityError, match=rf"production/{A} does not hold what was"):
        rollback_production(layout, registry, by="asha")
    assert _tree(layout.production_dir) == before and current_production(layout) == B
    assert [d.to_dict() for d in registry.deployment_history()] == history
