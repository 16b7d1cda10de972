"""The registry's records: a candidate run, a deployment, an audit-log row, and the policy
that may approve without a human; each built from its database row."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import RowMapping

from sensequant_assets.registry.errors import RegistryError


def _parse_stamp(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def _parse_date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class CandidateRun:
    """One candidate run as stored in the registry."""

    run_id: str
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    candidate_dir: Path | None = None
    audit_dir: Path | None = None
    symbols: tuple[str, ...] = ()
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    recommendation: str | None = None
    score: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict, hash=False)
    dagster_run_id: str | None = None
    dryrun: bool = False
    recorded_by: str = "system"
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    rejected_by: str | None = None
    rejected_at: dt.datetime | None = None
    rejection_reason: str | None = None
    error: str | None = None
    approved_evidence: Mapping[str, str] = field(default_factory=dict, hash=False)
    """SHA-256 of the manifest and briefing the approval bound, by file name (empty until then)."""
    data_source: str | None = None
    synthetic: bool = False
    approved_os_user: str | None = None
    approved_host: str | None = None
    gate_override_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy: ISO dates and timestamps, plain lists and dicts."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "candidate_dir": None if self.candidate_dir is None else str(self.candidate_dir),
            "audit_dir": None if self.audit_dir is None else str(self.audit_dir),
            "symbols": list(self.symbols),
            "start_date": _iso(self.start_date),
            "end_date": _iso(self.end_date),
            "recommendation": self.recommendation,
            "score": self.score,
            "metrics": json.loads(json.dumps(self.metrics)),
            "dagster_run_id": self.dagster_run_id,
            "dryrun": self.dryrun,
            "recorded_by": self.recorded_by,
            "approved_by": self.approved_by,
            "approved_at": _iso(self.approved_at),
            "rejected_by": self.rejected_by,
            "rejected_at": _iso(self.rejected_at),
            "rejection_reason": self.rejection_reason,
            "error": self.error,
            "approved_evidence": dict(self.approved_evidence),
            "data_source": self.data_source,
            "synthetic": self.synthetic,
            "approved_os_user": self.approved_os_user,
            "approved_host": self.approved_host,
            "gate_override_reason": self.gate_override_reason,
        }


@dataclass(frozen=True)
class Deployment:
    """One row of the deployment history of a stage.

    ``action`` is ``"deploy"`` for :meth:`StateManager.record_deployment` and ``"rollback"`` for
    :meth:`StateManager.rollback`; ``replaced_run_id`` is the run that was live in the stage
    just before (retired by this deployment in production), ``None`` for the first one.
    """

    deployment_id: int
    run_id: str
    stage: str
    action: str
    deployed_by: str
    deployed_at: dt.datetime
    replaced_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "run_id": self.run_id,
            "stage": self.stage,
            "action": self.action,
            "deployed_by": self.deployed_by,
            "deployed_at": _iso(self.deployed_at),
            "replaced_run_id": self.replaced_run_id,
        }


@dataclass(frozen=True)
class StatusChange:
    """One row of the append-only audit log (``from_status`` is ``None`` on creation)."""

    change_id: int
    run_id: str
    from_status: str | None
    to_status: str
    by: str
    at: dt.datetime
    note: str | None = None
    evidence: Mapping[str, str] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "change_id": self.change_id,
            "run_id": self.run_id,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "by": self.by,
            "at": _iso(self.at),
            "note": self.note,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class AutoApprovalPolicy:
    """Whether ready-for-review candidates may be approved without a human.

    Built by the caller from the seed settings ``CANDIDATE_AUTO_APPROVE`` (``enabled``) and
    ``CANDIDATE_APPROVAL_THRESHOLD`` (``threshold``, compared with the run's ``score``, where the
    caller records the promotion gate's deflated Sharpe ratio). Off by default.
    """

    enabled: bool = False
    threshold: float = 0.95

    def __post_init__(self) -> None:
        if not isinstance(self.threshold, int | float) or not math.isfinite(self.threshold):
            raise RegistryError(
                f"auto-approval threshold must be a finite number, got {self.threshold!r}"
            )

    @property
    def approver(self) -> str:
        return f"auto-approval (threshold {self.threshold:g})"


def _run_from_row(row: RowMapping) -> CandidateRun:
    return CandidateRun(
        run_id=row["run_id"],
        status=row["status"],
        created_at=_parse_stamp(row["created_at"]),  # type: ignore[arg-type]
        updated_at=_parse_stamp(row["updated_at"]),  # type: ignore[arg-type]
        candidate_dir=None if row["candidate_dir"] is None else Path(row["candidate_dir"]),
        audit_dir=None if row["audit_dir"] is None else Path(row["audit_dir"]),
        symbols=tuple(json.loads(row["symbols"])),
        start_date=_parse_date(row["start_date"]),
        end_date=_parse_date(row["end_date"]),
        recommendation=row["recommendation"],
        score=row["score"],
        metrics=json.loads(row["metrics"]),
        dagster_run_id=row["dagster_run_id"],
        dryrun=bool(row["dryrun"]),
        recorded_by=row["recorded_by"],
        approved_by=row["approved_by"],
        approved_at=_parse_stamp(row["approved_at"]),
        rejected_by=row["rejected_by"],
        rejected_at=_parse_stamp(row["rejected_at"]),
        rejection_reason=row["rejection_reason"],
        error=row["error"],
        approved_evidence=json.loads(row["approved_evidence"] or "{}"),
        data_source=row["data_source"],
        synthetic=bool(row["synthetic"]),
        approved_os_user=row["approved_os_user"],
        approved_host=row["approved_host"],
        gate_override_reason=row["gate_override_reason"],
    )


def _deployment_from_row(row: RowMapping) -> Deployment:
    return Deployment(
        deployment_id=row["id"],
        run_id=row["run_id"],
        stage=row["stage"],
        action=row["action"],
        deployed_by=row["deployed_by"],
        deployed_at=_parse_stamp(row["deployed_at"]),  # type: ignore[arg-type]
        replaced_run_id=row["replaced_run_id"],
    )


def _change_from_row(row: RowMapping) -> StatusChange:
    return StatusChange(
        change_id=row["id"],
        run_id=row["run_id"],
        from_status=row["from_status"],
        to_status=row["to_status"],
        by=row["changed_by"],
        at=_parse_stamp(row["changed_at"]),  # type: ignore[arg-type]
        note=row["note"],
        evidence=json.loads(row["evidence"] or "{}"),
    )
