"""Deliberate approvals: who approved from where, why a gate's advice was overridden, and
which candidates never reach production.

A name typed after ``--by`` is only a claim, so every approval also records the OS account and
host it was made from. Approving what the promotion gate did not recommend needs a stated
reason, stored in the approval's audit-log row. A candidate trained on synthetic data (or a
dry run) is never deployed to production: a reviewer may approve a synthetic one for a staging
demo only when ``SENSEQUANT_ALLOW_SYNTHETIC_PROMOTION`` allows it.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import RowMapping

from sensequant_assets.registry.errors import RegistryError

if TYPE_CHECKING:
    from sensequant_assets.registry.records import CandidateRun

ALLOW_SYNTHETIC_SETTING = "SENSEQUANT_ALLOW_SYNTHETIC_PROMOTION"
GATE_APPROVES = "approve"


class ApprovalRefusedError(RegistryError):
    """The approval lacks what this candidate needs (an override reason, the synthetic setting)."""


class ProductionRefusedError(RegistryError):
    """The candidate may never be deployed to production (synthetic data, a dry run)."""


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"uid {os.getuid()}"


@dataclass(frozen=True)
class Approver:
    """The OS account and host an approval was made from."""

    os_user: str
    host: str

    @classmethod
    def of_this_process(cls) -> Approver:
        return cls(_os_user(), socket.gethostname() or "unknown host")


@dataclass(frozen=True)
class ApprovalTerms:
    """What a reviewer asserts beyond their name.

    ``override_reason`` (``--override-gate --reason``) is required to approve a candidate the
    gate did not recommend; ``allow_synthetic`` is the setting that lets a synthetic-data
    candidate be approved at all (for staging only).
    """

    override_reason: str | None = None
    allow_synthetic: bool = False
    approver: Approver = field(default_factory=Approver.of_this_process)

    def __post_init__(self) -> None:
        if self.override_reason is not None and not self.override_reason.strip():
            raise ApprovalRefusedError("--override-gate needs a non-empty --reason TEXT")


def approval_columns(row: RowMapping, terms: ApprovalTerms) -> tuple[dict[str, Any], str]:
    """The run columns and audit-log note of approving ``row`` on ``terms``.

    Raises :class:`ApprovalRefusedError` (one line saying why and what to do) for a synthetic
    candidate without the setting, or a candidate the gate did not recommend without a reason.
    """
    run_id, recommendation = row["run_id"], row["recommendation"]
    if row["synthetic"] and not terms.allow_synthetic:
        raise ApprovalRefusedError(
            f"cannot approve {run_id}: it was trained on synthetic data "
            f"({row['data_source'] or 'unknown source'}); set {ALLOW_SYNTHETIC_SETTING}=true to "
            "approve it for a staging demo (it never goes to production)"
        )
    against_gate = recommendation is not None and recommendation != GATE_APPROVES
    if against_gate and terms.override_reason is None:
        raise ApprovalRefusedError(
            f"cannot approve {run_id}: the promotion gate recommended {recommendation}; to "
            "approve against it, add --override-gate --reason TEXT"
        )
    if terms.override_reason is not None and not against_gate:
        raise ApprovalRefusedError(
            f"cannot approve {run_id} with --override-gate: the gate recommended "
            f"{recommendation or 'nothing'}, there is nothing to override"
        )
    who = terms.approver
    note = f"os user {who.os_user} on {who.host}"
    if against_gate:
        note += f"; overriding the gate's {recommendation}: {terms.override_reason}"
    if row["synthetic"]:
        note += f"; synthetic data, allowed by {ALLOW_SYNTHETIC_SETTING} for staging only"
    columns = {
        "approved_os_user": who.os_user,
        "approved_host": who.host,
        "gate_override_reason": terms.override_reason if against_gate else None,
    }
    return columns, note


def production_refusal(run: CandidateRun) -> str:
    """Why ``run`` may never be deployed to production; empty if it may."""
    if run.dryrun:
        return f"{run.run_id} is a dry run: dry runs are never deployed"
    if run.synthetic:
        return (
            f"{run.run_id} was trained on synthetic data ({run.data_source or 'unknown source'}):"
            " it may be staged for a demo but never deployed to production"
        )
    return ""


def refuse_production(run: CandidateRun) -> None:
    """Raise :class:`ProductionRefusedError` if ``run`` may never go to production."""
    if reason := production_refusal(run):
        raise ProductionRefusedError(f"cannot deploy to production: {reason}")
