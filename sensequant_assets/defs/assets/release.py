"""Release assets (group ``release``): the audit manifest and the promotion briefing.

Both write into the candidate's audit directory; the briefing copies its numbers from the
stage outputs already on disk (:func:`~sensequant_assets.release.stage.stage_outputs`), so what
a reviewer reads is what the stages computed. Neither rewrites the files of a candidate whose
review is decided: an approval binds them.
"""

from typing import Any

import dagster as dg
import pandas as pd

from sensequant_assets.artifacts import CandidateLayout
from sensequant_assets.defs.assets.evaluation import missing_inputs_fail, tagged_candidate
from sensequant_assets.defs.tags import DRYRUN_TAG
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.live.notify import Delivery, Notifier
from sensequant_assets.registry import AutoApprovalPolicy, CandidateRun, StateManager
from sensequant_assets.registry.lifecycle import APPROVED
from sensequant_assets.release.lineage import (
    code_version,
    data_snapshot_hash,
    data_sources,
    input_files,
    public_configuration,
)
from sensequant_assets.release.manifest import build_manifest, headline_sections, write_manifest
from sensequant_assets.release.registration import (
    Provenance,
    ReviewedCandidateError,
    refuse_if_reviewed,
    register_candidate,
)
from sensequant_assets.release.stage import stage_outputs, write_briefing

GROUP = "release"


def unreviewed_registry(evaluation: Evaluation, candidate: CandidateLayout) -> StateManager:
    """The registry, once it shows ``candidate``'s review is not decided (else a dg.Failure)."""
    registry = StateManager(evaluation.training.layout.registry)
    try:
        refuse_if_reviewed(registry, candidate.candidate_id)
    except ReviewedCandidateError as exc:
        raise dg.Failure(str(exc)) from None
    return registry


# After data_quality too, so that the manifest hashes data_quality.json.
@dg.asset(deps=["promotion_gate", "data_quality"], group_name=GROUP)
def release_audit(
    context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
) -> dg.MaterializeResult:
    """``manifest.yaml``: what the candidate is, where it came from, every file's SHA-256."""
    candidate = tagged_candidate(context, evaluation)
    unreviewed_registry(evaluation, candidate)
    outputs = stage_outputs(evaluation, candidate)
    if outputs.student_runs is None or outputs.gate is None or outputs.stat_tests is None:
        raise dg.Failure(
            f"{candidate.candidate_id} lacks student, statistical-test or gate outputs: "
            "materialize student_model through promotion_gate first"
        )
    training = evaluation.training
    settings = training.settings
    with missing_inputs_fail():
        bars, benchmark = evaluation.market_data(candidate)
    manifest = build_manifest(
        release_id=candidate.candidate_id,
        home=settings.home,
        candidate_dir=candidate.root,
        audit_dir=evaluation.audit_dir(candidate),
        sections=headline_sections(outputs, training.universe.snapshot),
        lineage=_lineage(evaluation, bars, benchmark),
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
    candidate = tagged_candidate(context, evaluation)
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
    delivery = Delivery("skipped", "already recorded")
    if new:
        delivery = _notify(evaluation, candidate, run, briefing["recommendation"])
        context.log.info(f"notification: {delivery.status} {delivery.detail}")
    return dg.MaterializeResult(
        metadata={
            "candidate": candidate.candidate_id,
            "notification": delivery.status,
            "registry_status": run.status,
            "recommendation": briefing["recommendation"],
            "briefing": dg.MetadataValue.path(str(evaluation.audit(candidate).briefing_md)),
        }
    )


def _lineage(evaluation: Evaluation, bars: pd.DataFrame, benchmark: pd.DataFrame) -> dict[str, Any]:
    """Where the candidate came from: the code, the data it read (hashed) and its inputs."""
    settings = evaluation.training.settings
    return {
        "code": code_version(),
        "data_snapshot_sha256": data_snapshot_hash(bars),
        "benchmark_snapshot_sha256": data_snapshot_hash(benchmark),
        "data_rows": len(bars),
        "data_source": settings.data_source,
        "data_sources": data_sources(bars, benchmark),
        "cost_model": evaluation.config.costs.to_dict(),
        "input_files": input_files(settings),
    }


def _notify(
    evaluation: Evaluation, candidate: CandidateLayout, run: CandidateRun, recommendation: str
) -> Delivery:
    """Tell the reviewer a candidate is ready (or was approved by the policy)."""
    return Notifier.of(evaluation.training.settings)(
        "approved" if run.status == APPROVED else "candidate_ready",
        run.run_id,
        {"recommendation": recommendation, "status": run.status,
         "briefing": str(evaluation.audit(candidate).briefing_md)},
    )  # fmt: skip


def build_release_assets() -> list[dg.AssetsDefinition]:
    """The manifest, then the briefing and its registration for review."""
    return [release_audit, promotion_briefing]
