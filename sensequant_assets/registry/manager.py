"""The candidate registry: one database holding every review decision and deployment.

A *candidate run* is one trained-and-evaluated model bundle. It enters the registry as
``running`` (training under way), ``ready-for-review`` (bundle and audit written) or ``failed``,
and from there only moves along :data:`TRANSITIONS`::

    running ─► ready-for-review ─► approved ─► deployed ◄─► retired
       │              │               │
       └──► failed ◄──┘   rejected ◄──┘ (also from ready-for-review)

Every status change, including creation, appends one row to the ``status_changes`` table in the
same transaction as the change; triggers refuse any UPDATE or DELETE of that table and of
``deployments``, so the history is append-only even for someone with a ``sqlite3`` or ``psql``
shell. Both tables are hash-chained (:mod:`.chain`), and every deployment and rollback first
verifies the registry (:mod:`.verify`): one who drops the triggers to edit it is caught before
anything deploys.

The operations are here; what they share lives beside them: :mod:`.access` (where the registry
is, one write lock, retried while busy: several processes may write at once), :mod:`.transitions`
(one status change and its audit row) and :mod:`.deployments` (a deployment or rollback).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import RowMapping

from sensequant_assets.database import Tx
from sensequant_assets.registry.access import RegistryAccess
from sensequant_assets.registry.approval import ApprovalTerms, approval_columns
from sensequant_assets.registry.arguments import (
    _check_stage,
    _check_status,
    _now,
    _require_text,
    _stamp,
)
from sensequant_assets.registry.deployments import current_row, deploy, rollback_row
from sensequant_assets.registry.errors import (
    DeploymentConflictError,
    IllegalTransitionError,
    RegistryError,
)
from sensequant_assets.registry.evidence import evidence_digests
from sensequant_assets.registry.lifecycle import (
    APPROVED,
    FAILED,
    PRODUCTION,
    READY_FOR_REVIEW,
    REJECTED,
    TRANSITIONS,
)
from sensequant_assets.registry.recording import RunRecord
from sensequant_assets.registry.records import (
    AutoApprovalPolicy,
    CandidateRun,
    Deployment,
    StatusChange,
    _change_from_row,
    _deployment_from_row,
    _run_from_row,
)
from sensequant_assets.registry.transitions import (
    append_change,
    fetch_run,
    require_run,
    transition,
)
from sensequant_assets.registry.trial import TRIAL_NOTE, TRIAL_OUTCOMES
from sensequant_assets.registry.trial import staging_outcome as _staging_outcome
from sensequant_assets.registry.verify import RegistryCheck, verify_registry


class StateManager(RegistryAccess):
    """Transactional access to the candidate registry at ``location``: an SQLite file path, or
    a ``postgresql://`` URL (:func:`~sensequant_assets.database.database_url`); without one,
    the registry the settings configure (``SENSEQUANT_HOME``, ``SENSEQUANT_REGISTRY_URL``).

    Cheap to construct and safe to share between threads or pass to other processes: it keeps
    no connection, only the location. The file, its parent directories and the schema are
    created on first use, unless ``read_only``: then nothing is created, a registry not created
    yet reads as an empty one, and every write raises :class:`RegistryError`.
    """

    def __repr__(self) -> str:
        return f"StateManager({self.where!r})"

    # -- recording -------------------------------------------------------------------------

    def record_candidate_run(
        self,
        run_id: str,
        status: str = READY_FOR_REVIEW,
        *,
        candidate_dir: str | os.PathLike[str] | None = None,
        audit_dir: str | os.PathLike[str] | None = None,
        symbols: Sequence[str] = (),
        start_date: dt.date | str | None = None,
        end_date: dt.date | str | None = None,
        recommendation: str | None = None,
        score: float | None = None,
        metrics: Mapping[str, Any] | None = None,
        dagster_run_id: str | None = None,
        dryrun: bool = False,
        recorded_by: str = "system",
        data_source: str | None = None,
        synthetic: bool = False,
    ) -> CandidateRun:
        """Register a new run, or move an existing one along a legal transition.

        A new run starts in ``running``, ``ready-for-review`` or ``failed``. For an existing
        ``run_id`` the call is a status change (e.g. ``running`` → ``ready-for-review`` once the
        bundle is written): the fields passed (not ``None``, non-empty ``symbols``) replace the
        stored ones, the others are kept. A dry run stays a dry run, and a run trained on
        synthetic data (``synthetic``, from ``data_source``) stays synthetic.
        """
        record = RunRecord.checked(
            run_id, status, recorded_by, candidate_dir=candidate_dir, audit_dir=audit_dir,
            symbols=symbols, start_date=start_date, end_date=end_date,
            recommendation=recommendation, score=score, metrics=metrics,
            dagster_run_id=dagster_run_id, dryrun=dryrun, data_source=data_source,
            synthetic=synthetic,
        )  # fmt: skip

        def op(tx: Tx) -> CandidateRun:
            now = _stamp(_now())
            row = fetch_run(tx, record.run_id)
            return record.insert(tx, now) if row is None else record.update(tx, row, now)

        return self._write(op)

    def mark_failed(self, run_id: str, error: str, by: str = "system") -> CandidateRun:
        """Record that a run failed (creating it in ``failed`` if it was never recorded)."""
        run_id = _require_text(run_id, "run_id")
        error = _require_text(error, "error")
        by = _require_text(by, "by")

        def op(tx: Tx) -> CandidateRun:
            now = _stamp(_now())
            row = fetch_run(tx, run_id)
            if row is None:
                tx.insert("candidate_runs", {
                    "run_id": run_id, "status": FAILED, "created_at": now, "updated_at": now,
                    "recorded_by": by, "error": error,
                })  # fmt: skip
                append_change(tx, run_id, None, FAILED, by, now, error)
                return _run_from_row(fetch_run(tx, run_id))  # type: ignore[arg-type]
            return transition(tx, row, FAILED, by, at=now, note=error, columns={"error": error})

        return self._write(op)

    # -- review ----------------------------------------------------------------------------

    def _approve(
        self,
        tx: Tx,
        row: RowMapping,
        by: str,
        note: str | None,
        terms: ApprovalTerms | None = None,
    ) -> CandidateRun:
        """Approve ``row`` on ``terms`` (:mod:`~sensequant_assets.registry.approval`), binding
        the digests of the evidence files in its audit directory."""
        run_id = row["run_id"]
        if APPROVED not in TRANSITIONS[row["status"]]:
            raise IllegalTransitionError(run_id, row["status"], APPROVED)
        deliberate, terms_note = approval_columns(row, terms or ApprovalTerms())
        note = "; ".join(filter(None, [note, terms_note]))
        if row["audit_dir"] is None:
            raise RegistryError(f"cannot approve {run_id}: the registry records no audit directory")
        try:
            evidence = evidence_digests(Path(row["audit_dir"]))
        except FileNotFoundError as exc:
            raise RegistryError(f"cannot approve {run_id}: {exc}") from None
        now = _stamp(_now())
        columns = {
            "approved_by": by,
            "approved_at": now,
            "approved_evidence": json.dumps(evidence),
            **deliberate,
        }
        return transition(
            tx, row, APPROVED, by, at=now, note=note, columns=columns, evidence=evidence
        )

    def approve_candidate_run(
        self, run_id: str, approved_by: str, *, terms: ApprovalTerms | None = None
    ) -> CandidateRun:
        """Approve a ``ready-for-review`` run: what it binds is in
        :mod:`~sensequant_assets.registry.evidence` (its files must all exist), what it needs
        beyond a name (``terms``, default: none) in :mod:`~sensequant_assets.registry.approval`."""
        by = _require_text(approved_by, "approved_by")
        return self._write(
            lambda tx: self._approve(tx, require_run(tx, run_id, "approve"), by, None, terms)
        )

    def reject_candidate_run(self, run_id: str, rejected_by: str, reason: str) -> CandidateRun:
        """Reject a ``ready-for-review`` or ``approved`` (not yet deployed) run."""
        by = _require_text(rejected_by, "rejected_by")
        reason = _require_text(reason, "reason")

        def op(tx: Tx) -> CandidateRun:
            row = require_run(tx, run_id, "reject")
            now = _stamp(_now())
            columns = {"rejected_by": by, "rejected_at": now, "rejection_reason": reason}
            return transition(tx, row, REJECTED, by, at=now, note=reason, columns=columns)

        return self._write(op)

    def apply_auto_approval(self, run_id: str, policy: AutoApprovalPolicy) -> CandidateRun:
        """Approve the run without a human if ``policy`` allows it; else return it unchanged.

        It must be enabled, the run ``ready-for-review``, not a dry run nor trained on synthetic
        data, its recommendation ``"approve"`` and its score at least the threshold. Check and
        approval are one transaction, so a reviewer acting at the same moment cannot be overridden.
        """
        if not isinstance(policy, AutoApprovalPolicy):
            raise RegistryError(f"policy must be an AutoApprovalPolicy, got {policy!r}")
        if not policy.enabled:
            return self.get_candidate_run(run_id)

        def op(tx: Tx) -> CandidateRun:
            row = require_run(tx, run_id, "auto-approve")
            score = row["score"]
            eligible = (
                row["status"] == READY_FOR_REVIEW
                and not row["dryrun"]
                and not row["synthetic"]
                and row["recommendation"] == "approve"
                and score is not None
                and score >= policy.threshold
            )
            if not eligible:
                return _run_from_row(row)
            note = f"recommendation approve, score {score:g} >= threshold {policy.threshold:g}"
            return self._approve(tx, row, policy.approver, note)

        return self._write(op)

    # -- staging trial ---------------------------------------------------------------------

    def record_staging_result(self, run_id: str, outcome: str, reasons: str, by: str) -> None:
        """Record a staging trial's outcome (``promote`` or ``stays``) with its reasons, as an
        audit-log row that leaves the status ``approved``: the hash chain then holds the
        verdict a production deployment depends on. A run's trial has one outcome."""
        if outcome not in TRIAL_OUTCOMES:
            raise RegistryError(f"a staging trial ends in {TRIAL_OUTCOMES}, not {outcome!r}")
        by = _require_text(by, "by")

        def op(tx: Tx) -> None:
            row = require_run(tx, run_id, "record the staging trial of")
            if row["status"] != APPROVED:
                raise IllegalTransitionError(
                    run_id, row["status"], APPROVED, "only an approved run is on trial",
                    action="record the staging trial of",
                )  # fmt: skip
            if (earlier := _staging_outcome(tx, run_id)) is not None:
                raise RegistryError(f"{run_id}'s staging trial already ended: {earlier}")
            note = f"{TRIAL_NOTE}{outcome}: {_require_text(reasons, 'reasons')}"
            append_change(tx, run_id, APPROVED, APPROVED, by, _stamp(_now()), note)

        self._write(op)

    def staging_outcome(self, run_id: str) -> str | None:
        """``promote`` or ``stays`` once ``run_id``'s staging trial ended, else ``None``."""
        return self._read(lambda tx: _staging_outcome(tx, run_id))

    # -- deployment ------------------------------------------------------------------------

    def record_deployment(self, run_id: str, stage: str, by: str) -> Deployment:
        """Record that ``run_id`` went live in ``stage``.

        Production takes an ``approved`` run (or a ``retired`` one: a manual rollback), marks it
        ``deployed`` and retires the run live before it, all in one transaction. Staging takes
        an ``approved`` run and changes no status. Dry runs are never deployed. A registry
        changed outside sensequant (:mod:`.verify`) raises :class:`TamperedRegistryError`.
        """
        stage = _check_stage(stage)
        by = _require_text(by, "by")

        def op(tx: Tx) -> Deployment:
            verify_registry(tx).require(f"deploy {run_id} to {stage}")
            row = require_run(tx, run_id, f"deploy to {stage}")
            current = current_row(tx, stage)
            return deploy(
                tx,
                row,
                stage,
                by,
                action="deploy",
                rollback_to=None if current is None else current["id"],
            )

        return self._write(op)

    def rollback(
        self,
        stage: str = PRODUCTION,
        *,
        by: str,
        to: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Put back the run that was live in ``stage`` before the current one.

        Rollbacks stack: after A, B, C a rollback restores B and a second one restores A. In
        production the current run becomes ``retired`` and the restored one ``deployed``. With
        ``to`` (the target a caller checked) it raises :class:`DeploymentConflictError`,
        recording nothing, if the target is another run by the time the transaction runs.
        ``reason`` (why, with the figures: an automatic demotion's) goes into both runs' audit
        notes.
        """
        stage = _check_stage(stage)
        by = _require_text(by, "by")

        def op(tx: Tx) -> Deployment:
            verify_registry(tx).require(f"roll {stage} back")
            target = rollback_row(tx, stage)
            if to is not None and target["run_id"] != to:
                raise DeploymentConflictError(
                    f"cannot roll {stage} back to {to}: {stage} changed meanwhile (a rollback "
                    f"now restores {target['run_id']}); nothing was changed, check and retry"
                )
            row = require_run(tx, target["run_id"], f"roll {stage} back to")
            return deploy(
                tx, row, stage, by, action="rollback", rollback_to=target["rollback_to"],
                reason=reason,
            )  # fmt: skip

        return self._write(op)

    def rollback_target(self, stage: str = PRODUCTION) -> str:
        """The run a ``rollback`` of ``stage`` would restore, without recording anything: a
        caller checks the bundle is still on disk before the registry moves."""
        stage = _check_stage(stage)
        return self._read(lambda tx: str(rollback_row(tx, stage)["run_id"]))

    def current_deployment(self, stage: str = PRODUCTION) -> Deployment | None:
        """The latest deployment of ``stage`` (the live run), or ``None``."""
        stage = _check_stage(stage)

        def op(tx: Tx) -> Deployment | None:
            row = current_row(tx, stage)
            return None if row is None else _deployment_from_row(row)

        return self._read(op)

    def deployment_history(self, stage: str | None = None) -> list[Deployment]:
        """Every deployment (of ``stage``, or of all stages), newest first."""
        if stage is not None:
            stage = _check_stage(stage)

        def op(tx: Tx) -> list[Deployment]:
            if stage is None:
                rows = tx.all("SELECT * FROM deployments ORDER BY id DESC")
            else:
                rows = tx.all(
                    "SELECT * FROM deployments WHERE stage = :stage ORDER BY id DESC", stage=stage
                )
            return [_deployment_from_row(row) for row in rows]

        return self._read(op)

    # -- queries ---------------------------------------------------------------------------

    def verify(self) -> RegistryCheck:
        """Check the file is what the registry wrote (see :mod:`.verify`); changes nothing."""
        return self._read(verify_registry)

    def get_candidate_run(self, run_id: str) -> CandidateRun:
        """The run with this id (:class:`UnknownRunError` if there is none)."""
        return self._read(lambda tx: _run_from_row(require_run(tx, run_id, "find")))

    def get_candidate_runs(
        self, status: str | None = None, include_dryrun: bool = True
    ) -> list[CandidateRun]:
        """Runs (with ``status`` if given), newest first."""
        return self._select(status, include_dryrun, limit=None)

    def get_latest_candidate_run(
        self, status: str | None = None, include_dryrun: bool = False
    ) -> CandidateRun | None:
        """The most recently created run (with ``status`` if given), or ``None``."""
        runs = self._select(status, include_dryrun, limit=1)
        return runs[0] if runs else None

    def _select(
        self, status: str | None, include_dryrun: bool, limit: int | None
    ) -> list[CandidateRun]:
        clauses, params = [], {}
        if status is not None:
            clauses.append("status = :status")
            params["status"] = _check_status(status)
        if not include_dryrun:
            clauses.append("dryrun = 0")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = "" if limit is None else f" LIMIT {int(limit)}"
        sql = f"SELECT * FROM candidate_runs{where} ORDER BY created_at DESC, seq DESC{tail}"
        return self._read(lambda tx: [_run_from_row(row) for row in tx.all(sql, **params)])

    def audit_log(self, run_id: str | None = None) -> list[StatusChange]:
        """Status changes (of ``run_id``, or of every run), oldest first."""

        def op(tx: Tx) -> list[StatusChange]:
            if run_id is None:
                rows = tx.all("SELECT * FROM status_changes ORDER BY id")
            else:
                require_run(tx, run_id, "read the audit log of")
                rows = tx.all(
                    "SELECT * FROM status_changes WHERE run_id = :run_id ORDER BY id", run_id=run_id
                )
            return [_change_from_row(row) for row in rows]

        return self._read(op)
