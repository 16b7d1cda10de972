"""Entering a briefed candidate, or a failed run, into the candidate registry.

Once a candidate's review is decided (approved, rejected, deployed, retired) its manifest and
briefing are the evidence of that decision: nothing here, and no release asset, rewrites them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensequant_assets.registry import (
    FAILED,
    READY_FOR_REVIEW,
    REVIEWED,
    AutoApprovalPolicy,
    CandidateRun,
    RegistryError,
    StateManager,
    UnknownRunError,
)

SYNTHETIC_SOURCE = "synthetic"
UNKNOWN_SOURCE = "unknown"


@dataclass(frozen=True)
class Provenance:
    """Where a candidate's training data came from, as the registry records it.

    ``synthetic`` unless the data is known to be real: the manifest's lineage names the
    configured source and (``data_sources``) the sources of the stored bars the candidate used,
    and a synthetic or unknown one anywhere makes it synthetic. ``dryrun`` is the run's tag.
    """

    data_source: str
    synthetic: bool
    dryrun: bool = False

    @classmethod
    def of(cls, manifest: Mapping[str, Any] | None, dryrun: bool) -> Provenance:
        lineage = (manifest or {}).get("lineage") or {}
        sources = {lineage.get("data_source") or UNKNOWN_SOURCE, *lineage.get("data_sources", [])}
        synthetic = bool(sources & {SYNTHETIC_SOURCE, UNKNOWN_SOURCE})
        return cls(",".join(sorted(sources)), synthetic, dryrun)


class ReviewedCandidateError(RegistryError):
    """The candidate's review is decided, so its release audit and briefing are not rewritten."""


def reviewed_status(manager: StateManager, release_id: str) -> str | None:
    """The registry status of ``release_id`` if its review is decided, else ``None``."""
    try:
        status = manager.get_candidate_run(release_id).status
    except UnknownRunError:
        return None
    return status if status in REVIEWED else None


def refuse_if_reviewed(manager: StateManager, release_id: str) -> None:
    """Raise :class:`ReviewedCandidateError` if ``release_id``'s review is decided."""
    if (status := reviewed_status(manager, release_id)) is not None:
        raise ReviewedCandidateError(
            f"{release_id} is {status}: its manifest and briefing are the evidence of that "
            "decision and are left as they are; train a new candidate instead"
        )


def register_candidate(
    manager: StateManager,
    briefing: dict[str, Any],
    candidate_dir: Path,
    audit_dir: Path,
    policy: AutoApprovalPolicy,
    provenance: Provenance,
) -> tuple[CandidateRun, bool]:
    """Record the briefed candidate as ready for review (with its ``provenance``), then apply
    auto-approval.

    Returns the run and whether it was newly recorded: a candidate already in the registry
    (the briefing re-materialized) keeps its status and its reviewer's decision.
    """
    release_id = briefing["release_id"]
    try:
        return manager.get_candidate_run(release_id), False
    except UnknownRunError:
        pass
    training = briefing["training_summary"] or {}
    dates = training.get("date_range") or [None, None]
    tests = briefing["statistical_tests"] or {}
    validation = briefing["validation_results"] or {}
    manager.record_candidate_run(
        release_id,
        READY_FOR_REVIEW,
        candidate_dir=candidate_dir,
        audit_dir=audit_dir,
        symbols=training.get("symbols") or [],
        start_date=dates[0],
        end_date=dates[1],
        recommendation=briefing["recommendation"],
        score=tests.get("dsr"),
        metrics={
            "oos_accuracy": (validation.get("student") or {}).get("accuracy"),
            "baseline_accuracy": validation.get("baselines"),
            "dsr": tests.get("dsr"),
            "dsr_trials": tests.get("dsr_trials"),
            "search_trials": tests.get("dsr_search_trials"),
            "rank_ic": ((tests.get("skill") or {}).get("rank_ic") or {}).get("mean"),
            "psr": tests.get("psr"),
        },
        dagster_run_id=briefing["dagster_run_id"],
        dryrun=provenance.dryrun,
        data_source=provenance.data_source,
        synthetic=provenance.synthetic,
    )
    return manager.apply_auto_approval(release_id, policy), True


def register_failure(
    manager: StateManager, release_id: str, phase: str, error: str
) -> CandidateRun:
    """Record the run as ``failed`` with the phase and error (creating it if never recorded)."""
    try:
        current = manager.get_candidate_run(release_id)
    except UnknownRunError:
        current = None
    if current is not None and current.status == FAILED:
        return current
    return manager.mark_failed(release_id, f"phase '{phase}' failed: {error}")
