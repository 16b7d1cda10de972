"""The candidate registry: review decisions, deployments and their audit log in one SQLite file.

``StateManager`` is the only way in; see :mod:`sensequant_assets.registry.state`. What an
approval binds is in ``evidence``, the statuses in ``lifecycle``, the tables in ``schema``.
"""

from sensequant_assets.registry.evidence import evidence_digests
from sensequant_assets.registry.lifecycle import (
    APPROVED,
    DEPLOYED,
    FAILED,
    INITIAL_STATUSES,
    PRODUCTION,
    READY_FOR_REVIEW,
    REJECTED,
    RETIRED,
    REVIEWED,
    RUNNING,
    STAGES,
    STAGING,
    STATUSES,
    TRANSITIONS,
)
from sensequant_assets.registry.schema import SCHEMA_VERSION
from sensequant_assets.registry.state import (
    AutoApprovalPolicy,
    CandidateRun,
    Deployment,
    IllegalTransitionError,
    NothingToRollBackError,
    RegistryBusyError,
    RegistryError,
    StateManager,
    StatusChange,
    UnknownRunError,
)

__all__ = [
    "APPROVED",
    "DEPLOYED",
    "FAILED",
    "INITIAL_STATUSES",
    "PRODUCTION",
    "READY_FOR_REVIEW",
    "REJECTED",
    "RETIRED",
    "REVIEWED",
    "RUNNING",
    "SCHEMA_VERSION",
    "STAGES",
    "STAGING",
    "STATUSES",
    "TRANSITIONS",
    "AutoApprovalPolicy",
    "CandidateRun",
    "Deployment",
    "IllegalTransitionError",
    "NothingToRollBackError",
    "RegistryBusyError",
    "RegistryError",
    "StateManager",
    "StatusChange",
    "UnknownRunError",
    "evidence_digests",
]
