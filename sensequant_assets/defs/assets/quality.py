"""The ``data_quality`` asset (group ``evaluation``): the candidate's data-quality summary.

It runs after ``student_model`` (whose bundle names the symbols, ranges and teacher windows) and
before ``release_audit``, so the manifest hashes ``data_quality.json`` with the other audit
files; the gate and the briefing read it from the audit dir. Like the release assets, it leaves
a reviewed candidate's files alone: rewriting one would break the digests its manifest holds.
"""

from typing import Any

import dagster as dg

from sensequant_assets.defs.assets.evaluation import GROUP, tagged_candidate
from sensequant_assets.defs.assets.release import unreviewed_registry
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.quality.audit import candidate_data_quality, write_data_quality


@dg.asset(deps=["student_model"], group_name=GROUP)
def data_quality(
    context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
) -> dg.MaterializeResult:
    """Per symbol, the failed WARN checks over the candidate's bars and the teacher windows they
    fall in, the unresolved splits, and sentiment coverage when sentiment is on.

    File: ``data_quality.json`` in the audit dir.
    """
    candidate = tagged_candidate(context, evaluation)
    unreviewed_registry(evaluation, candidate)
    training = evaluation.training
    report = candidate_data_quality(
        candidate, training.settings, training.calendar, training.warehouse.warehouse
    )
    path = write_data_quality(evaluation.audit_dir(candidate), report)
    for split in report["unresolved_splits"]:
        context.log.warning(
            f"{split['symbol']}: unresolved suspected split on {split['date']} "
            f"(ratio {split['ratio']:g})"
        )
    totals = report["totals"]
    metadata: dict[str, Any] = {
        "candidate": candidate.candidate_id,
        "path": dg.MetadataValue.path(str(path)),
        "calendar_gaps": totals["calendar_gaps"],
        "ohlc_inconsistencies": totals["ohlc_inconsistencies"],
        "corrections": totals["corrections"],
        "unresolved_splits": totals["unresolved_splits"],
    }
    if report["sentiment"] is not None:
        metadata["sentiment_coverage"] = report["sentiment"]["overall"]["coverage"]
    return dg.MaterializeResult(metadata=metadata)
