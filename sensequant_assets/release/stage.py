"""The stage outputs a briefing is built from, the briefing's two files, and a failed run's record.

Dagster-free: the ``release_audit`` and ``promotion_briefing`` assets, the candidate failure
sensor and the historical run all read a candidate's stage outputs from disk through
:func:`stage_outputs`, so what a reviewer reads is what the stages computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sensequant_assets.artifacts import AuditLayout, CandidateLayout
from sensequant_assets.evaluation.outputs import write_json
from sensequant_assets.evaluation.reports import write_report
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.registry import StateManager
from sensequant_assets.release.briefing import StageOutputs, build_briefing
from sensequant_assets.release.briefing_markdown import render_markdown
from sensequant_assets.release.manifest import read_manifest
from sensequant_assets.release.registration import register_failure, reviewed_status


def stage_outputs(
    evaluation: Evaluation, candidate: CandidateLayout, release_id: str | None = None
) -> StageOutputs:
    """Every stage output that exists on disk for ``candidate`` (None where absent)."""
    audit = evaluation.audit(candidate)
    stress = evaluation.training.layout.stress(candidate)

    def load(path: Path) -> dict[str, Any] | None:
        return json.loads(path.read_text()) if path.is_file() else None

    manifest = read_manifest(audit.root) if audit.manifest.is_file() else None
    return StageOutputs(
        release_id=release_id or candidate.candidate_id,
        teacher_runs=load(candidate.teacher_runs),
        student_runs=load(candidate.student_runs),
        validation=load(audit.validation_json),
        stat_tests=load(audit.stat_tests),
        stress=load(stress.summary),
        gate=load(audit.gate),
        manifest=manifest,
        data_quality=load(audit.data_quality),
        stress_requested=evaluation.training.settings.run_stress_tests,
    )


def write_briefing(audit_dir: Path, outputs: StageOutputs) -> dict[str, Any]:
    """``promotion_briefing.json`` and ``.md`` into ``audit_dir``; returns the briefing."""
    briefing = build_briefing(outputs)
    audit = AuditLayout(audit_dir)
    write_json(audit.briefing_json, briefing)
    write_report(audit.briefing_md, render_markdown(briefing))
    return briefing


def record_failed_candidate(
    evaluation: Evaluation,
    candidate_id: str,
    phase: str,
    error: str,
    dagster_run_id: str | None = None,
) -> bool:
    """A partial briefing from whatever stages finished, and a ``failed`` registry entry.

    False, and nothing written, for a candidate whose review is decided (a later run for it
    failed, e.g. a refused re-materialization): its briefing is what was reviewed.
    """
    layout = evaluation.training.layout
    registry = StateManager(layout.registry)
    if reviewed_status(registry, candidate_id) is not None:
        return False
    candidate = layout.candidate(candidate_id)
    outputs = stage_outputs(evaluation, candidate)
    outputs.failed_phase, outputs.error, outputs.dagster_run_id = phase, error, dagster_run_id
    write_briefing(layout.audit_dir(candidate), outputs)
    register_failure(registry, candidate_id, phase, error)
    return True
