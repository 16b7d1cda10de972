"""Deploying approved candidates: verified, atomic, the previous one kept for rollback."""

import hashlib
import json
import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import (
    current_production,
    current_staging,
    deploy_to_production,
    deploy_to_staging,
    rollback_production,
)
from sensequant_assets.release.manifest import (
    ArtifactMismatchError,
    build_manifest,
    write_manifest,
)

A, B = "live_candidate_20261101_090000", "live_candidate_20261108_090000"


def _student(directory: Path, seed: int) -> None:
    """A real (tiny) 3-class LightGBM student with the metadata ``load_student`` checks."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(90, 2)), np.arange(90) % 3
    data = lgb.Dataset(x, label=y, feature_name=["f1", "f2"])
    params = {"objective": "multiclass", "num_class": 3, "verbosity": -1, "min_data_in_leaf": 5}
    text = lgb.train(params, data, num_boost_round=3).model_to_string().encode()
    directory.mkdir(parents=True)
    (directory / "student_model.txt").write_bytes(text)
    metadata = {
        "model_file": "student_model.txt",
        "model_sha256": hashlib.sha256(text).hexdigest(),
        "feature_names": ["f1", "f2"],
    }
    (directory / "student_metadata.json").write_text(json.dumps(metadata))


def _candidate(layout: ArtifactLayout, registry: StateManager, run_id: str) -> None:
    candidate = layout.candidate(run_id)
    _student(candidate.student_dir, seed=len(run_id) + int(run_id[-6:]))
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

    # a crash after recording but before switching CURRENT: re-running repairs the file
    (layout.production_dir / "CURRENT").write_text(A)
    assert deploy_to_production(layout, registry, B, by="sensor").run_id == B
    assert current_production(layout) == B

    back = rollback_production(layout, registry, by="asha")
    assert back.run_id == A and current_production(layout) == A
    assert registry.get_candidate_run(B).status == "retired"


def test_a_rollback_to_a_missing_bundle_changes_nothing(tmp_path) -> None:
    layout = ArtifactLayout(tmp_path)
    registry = StateManager(layout.registry)
    _candidate(layout, registry, A)
    _candidate(layout, registry, B)
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
    layout = ArtifactLayout(tmp_path)
    registry = StateManager(layout.registry)
    _candidate(layout, registry, A)
    model = layout.candidate(A).student_dir / "student_model.txt"
    model.write_text(model.read_text() + "tampered\n")
    with pytest.raises(ArtifactMismatchError, match=r"student_model\.txt has SHA-256"):
        deploy_to_production(layout, registry, A, by="sensor")
    assert current_production(layout) is None and not (layout.production_dir / A).exists()
    assert registry.get_candidate_run(A).status == "approved"

    registry.record_candidate_run(B, recommendation="reject")
    with pytest.raises(ValueError, match="not approved: nothing copied to production"):
        deploy_to_production(layout, registry, B, by="sensor")


def test_staging_smoke_tests_the_bundle_before_production(tmp_path) -> None:
    layout = ArtifactLayout(tmp_path)
    registry = StateManager(layout.registry)
    _candidate(layout, registry, A)
    staged = deploy_to_staging(layout, registry, A, by="sensor")
    assert staged.stage == "staging" and current_staging(layout) == A
    assert (layout.staging_dir / A / "student" / "student_metadata.json").is_file()
    assert current_production(layout) is None  # staging alone does not touch production
    assert registry.get_candidate_run(A).status == "approved"
    deploy_to_production(layout, registry, A, by="sensor")
    assert current_production(layout) == A
