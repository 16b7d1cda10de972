"""Tiny but real approved candidates (a 3-class LightGBM student, a manifest, a briefing) that
deployment accepts, for tests and drills that need many of them quickly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.registry import StateManager
from sensequant_assets.release.manifest import build_manifest, write_manifest


def student(directory: Path, seed: int) -> None:
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


def release_audit(layout: ArtifactLayout, run_id: str) -> None:
    """``manifest.yaml`` hashing the bundle as it is now (what re-materializing did)."""
    candidate = layout.candidate(run_id)
    manifest = build_manifest(
        release_id=run_id, home=layout.home, candidate_dir=candidate.root,
        audit_dir=layout.audit_dir(candidate), sections={}, lineage={}, configuration={},
    )  # fmt: skip
    write_manifest(layout.audit_dir(candidate), manifest)


def approved_candidate(layout: ArtifactLayout, registry: StateManager, run_id: str) -> None:
    """Student, manifest and briefing of ``run_id`` on disk; recorded and approved."""
    candidate = layout.candidate(run_id)
    student(candidate.student_dir, seed=len(run_id) + int(run_id[-6:]))
    audit = layout.audit_dir(candidate)
    audit.mkdir(parents=True)
    release_audit(layout, run_id)
    (audit / "promotion_briefing.md").write_text(f"# {run_id}\n\nRecommendation: REJECT\n")
    (audit / "promotion_briefing.json").write_text('{"recommendation": "reject"}\n')
    registry.record_candidate_run(run_id, audit_dir=audit, recommendation="approve", score=0.99)
    registry.approve_candidate_run(run_id, approved_by="asha")
