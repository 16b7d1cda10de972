"""A candidate run's lifecycle: its statuses, the legal moves between them, the stages.

See :mod:`sensequant_assets.registry.manager` for the diagram; the registry's schema
(:mod:`sensequant_assets.registry.schema`) enforces the same statuses and stages.
"""

from __future__ import annotations

from collections.abc import Mapping

RUNNING = "running"
READY_FOR_REVIEW = "ready-for-review"
APPROVED = "approved"
REJECTED = "rejected"
FAILED = "failed"
DEPLOYED = "deployed"
RETIRED = "retired"

STATUSES: tuple[str, ...] = (
    RUNNING,
    READY_FOR_REVIEW,
    APPROVED,
    REJECTED,
    FAILED,
    DEPLOYED,
    RETIRED,
)
"""Every status a candidate run can have, in lifecycle order."""

TRANSITIONS: Mapping[str, frozenset[str]] = {
    RUNNING: frozenset({READY_FOR_REVIEW, FAILED}),
    READY_FOR_REVIEW: frozenset({APPROVED, REJECTED, FAILED}),
    APPROVED: frozenset({DEPLOYED, REJECTED}),
    REJECTED: frozenset(),
    FAILED: frozenset(),
    DEPLOYED: frozenset({RETIRED}),
    RETIRED: frozenset({DEPLOYED}),
}
"""Legal status changes: ``TRANSITIONS[current]`` is the set of statuses it may move to."""

INITIAL_STATUSES: tuple[str, ...] = (RUNNING, READY_FOR_REVIEW, FAILED)
"""Statuses a run may be recorded in (and the only ones ``record_candidate_run`` sets)."""

STAGING = "staging"
PRODUCTION = "production"
STAGES: tuple[str, ...] = (STAGING, PRODUCTION)

REVIEWED: frozenset[str] = frozenset({APPROVED, REJECTED, DEPLOYED, RETIRED})
"""Statuses of a run whose review is decided: its release audit and briefing are the evidence of
that decision and are never rewritten (a ``failed`` run was never reviewed)."""
