"""The candidate registry: review decisions, deployments and their audit log in one database.

``StateManager`` is the only way in; see :mod:`sensequant_assets.registry.manager`. Its
locked, retried transactions are in ``access``, one status change with its audit row in
``transitions`` and a deployment or rollback in ``deployments``. What an approval binds is in
``evidence``, the statuses in ``lifecycle``, the tables in ``schema``, the hash chains in
``chain`` and the tamper checks run before every deployment in ``verify``; the errors in
``errors``, the records it returns in ``records`` and the checks of its arguments in
``arguments``. Import the names below from here: this ``__all__`` is the registry's one list.
"""

from sensequant_assets.registry.errors import (
    DeploymentConflictError,
    IllegalTransitionError,
    NothingToRollBackError,
    RegistryBusyError,
    RegistryError,
    TamperedRegistryError,
    UnknownRunError,
)
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
from sensequant_assets.registry.manager import StateManager
from sensequant_assets.registry.records import (
    AutoApprovalPolicy,
    CandidateRun,
    Deployment,
    StatusChange,
)
from sensequant_assets.registry.schema import SCHEMA_VERSION
from sensequant_assets.registry.verify import RegistryCheck

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
    "DeploymentConflictError",
    "IllegalTransitionError",
    "NothingToRollBackError",
    "RegistryBusyError",
    "RegistryCheck",
    "RegistryError",
    "StateManager",
    "StatusChange",
    "TamperedRegistryError",
    "UnknownRunError",
    "evidence_digests",
]
