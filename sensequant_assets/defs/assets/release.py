"""Release assets (group ``release``): the audit manifest and the promotion briefing.

Both write into the candidate's audit directory; the briefing copies its numbers from the
stage outputs already on disk, so what a reviewer reads is what the stages computed. Neither
rewrites the files of a candidate whose review is decided: an approval binds them.
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg

from sensequant_assets.artifacts import (
    BRIEFING_JSON,
    BRIEFING_MD,
    DATA_QUALITY_JSON,
    MANIFEST_FILE,
    CandidateLayout,
)
from sensequant_assets.defs.evaluation import Evaluation
from sensequant_assets.defs.tags import DRYRUN_TAG
from sensequant_assets.evaluation.outputs import (
    GATE_JSON,
    STAT_TESTS_JSON,
    VALIDATION_JSON,
    write_json,
)
from sensequant_assets.evaluation.reports import write_report
from sensequant_assets.evaluation.stress.report import SUMMARY_FILE
from sensequant_assets.registry import AutoApprovalPolicy, StateManager
from sensequant_assets.release.briefing import StageOutputs, build_briefing, render_markdown
from sensequant_assets.release.lineage import (
    code_version,
    data_snapshot_hash,
    data_sources,
    input_files,
    public_configuration,
)
from sensequant_assets.release.manifest import (
    build_manifest,
    headline_sections,
    read_manifest,
    write_manifest,
)
from sensequant_assets.release.registration import (
    Provenance,
    ReviewedCandidateError,
    refuse_if_reviewed,
    register_candidate,
    register_failure,
    reviewed_status,
)

GROUP = "release"


def stage_outputs(
    evaluation: Evaluation, candidate: CandidateLayout, release_id: str | None = None
) -> StageOutputs:
    """Every stage output that exists on disk for ``candidate`` (None where absent)."""
    audit = evaluation.audit_dir(candidate)
    stress_dir = evaluation.training.layout.stress_dir(candidate)

    def load(path: Path) -> dict[str, Any] | None:
        return json.loads(path.read_text()) if path.is_file() else None

    manifest = read_manifest(audit) if (audit / MANIFEST_FILE).is_file() else None
    return StageOutputs(
        release_id=release_id or candidate.candidate_id,
        teacher_runs=load(candidate.teacher_runs),
        student_runs=load(candidate.student_runs),
        validation=load(audit / VALIDATION_JSON),
        stat_tests=load(audit / STAT_TESTS_JSON),
        stress=load(stress_dir / SUMMARY_FILE),
        gate=load(audit / GATE_JSON),
        manifest=manifest,
        data_quality=load(audit / DATA_QUALITY_JSON),
        stress_requested=evaluation.training.settings.run_stress_tests,
    )


def write_briefing(audit_dir: Path, outputs: StageOutputs) -> dict[str, Any]:
    """``promotion_briefing.json`` and ``.md`` into ``audit_dir``; returns the briefing."""
    briefing = build_briefing(outputs)
    write_json(audit_dir / BRIEFING_JSON, briefing)
    write_report(audit_dir / BRIEFING_MD, render_markdown(briefing))
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


def unreviewed_registry(evaluation: Evaluation, candidate: CandidateLayout) -> StateManager:
    """The registry, once it shows ``candidate``'s review is not decided (else a dg.Failure)."""
    registry = StateManager(evaluation.training.layout.registry)
    try:
        refuse_if_reviewed(registry, candidate.candidate_id)
    except ReviewedCandidateError as exc:
        raise dg.Failure(str(exc)) from None
    return registry


def build_release_assets() -> list[dg.AssetsDefinition]:
    # After data_quality too, so that the manifest hashes data_quality.json.
    @dg.asset(deps=["promotion_gate", "data_quality"], group_name=GROUP)
    def release_audit(
        context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
    ) -> dg.MaterializeResult:
        """``manifest.yaml``: what the candidate is, where it came from, every file's SHA-256."""
        candidate = evaluation.candidate(context)
        unreviewed_registry(evaluation, candidate)
        outputs = stage_outputs(evaluation, candidate)
        if outputs.student_runs is None or outputs.gate is None or outputs.stat_tests is None:
            raise dg.Failure(
                f"{candidate.candidate_id} lacks student, statistical-test or gate outputs: "
                "materialize student_model through promotion_gate first"
            )
        training = evaluation.training
        settings = training.settings
        bars, benchmark = evaluation.market_data(candidate)
        manifest = build_manifest(
            release_id=candidate.candidate_id,
            home=settings.home,
            candidate_dir=candidate.root,
            audit_dir=evaluation.audit_dir(candidate),
            sections=headline_sections(outputs, training.universe.snapshot),
            lineage={
                "code": code_version(),
                "data_snapshot_sha256": data_snapshot_hash(bars),
                "benchmark_snapshot_sha256": data_snapshot_hash(benchmark),
                "data_rows": len(bars),
                "data_source": settings.data_source,
                "data_sources": data_sources(bars, benchmark),
                "cost_model": evaluation.config.costs.to_dict(),
                "input_files": input_files(settings),
            },
            configuration=public_configuration(settings),
        )
        path = write_manifest(evaluation.audit_dir(candidate), manifest)
        return dg.MaterializeResult(
            metadata={
                "candidate": candidate.candidate_id,
                "manifest": dg.MetadataValue.path(str(path)),
                "artifacts_hashed": len(manifest["artifacts"]),
                "code_commit": str(manifest["lineage"]["code"].get("commit")),
                "dirty": str(manifest["lineage"]["code"].get("dirty")),
            }
        )

    @dg.asset(deps=[release_audit], group_name=GROUP)
    def promotion_briefing(
        context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
    ) -> dg.MaterializeResult:
        """``promotion_briefing.md/.json``: the reviewer's document, every number from this run."""
        candidate = evaluation.candidate(context)
        registry = unreviewed_registry(evaluation, candidate)
        outputs = stage_outputs(evaluation, candidate)
        outputs.dagster_run_id = context.run.run_id
        audit = evaluation.audit_dir(candidate)
        briefing = write_briefing(audit, outputs)
        settings = evaluation.training.settings
        policy = AutoApprovalPolicy(
            settings.candidate_auto_approve, settings.candidate_approval_threshold
        )
        provenance = Provenance.of(
            outputs.manifest, context.run.tags.get(DRYRUN_TAG, "").lower() == "true"
        )
        run, new = register_candidate(registry, briefing, candidate.root, audit, policy, provenance)
        context.log.info(
            f"registry: {run.run_id} {'recorded' if new else 'already recorded'} as {run.status}"
        )
        return dg.MaterializeResult(
            metadata={
                "candidate": candidate.candidate_id,
                "registry_status": run.status,
                "recommendation": briefing["recommendation"],
                "briefing": dg.MetadataValue.path(
                    str(evaluation.audit_dir(candidate) / BRIEFING_MD)
                ),
            }
        )

    return [release_audit, promotion_briefing]
