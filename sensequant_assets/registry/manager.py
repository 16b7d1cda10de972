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

The database is an SQLite file (embedded) or the deployment's Postgres database
(:mod:`sensequant_assets.database`); the code is the same on both. Concurrency: several
processes (a Dagster sensor, a reviewer at the CLI) may write at once. Each operation opens its
own connection (nothing survives a fork), each write holds the registry's one write lock
(SQLite's ``BEGIN IMMEDIATE``, a Postgres advisory lock) until it commits, so the check ("is it
ready for review?") and the act ("approve it") cannot interleave with another writer, and a
writer that finds it held waits and then retries the whole operation until ``timeout`` runs
out. Only then does it raise :class:`RegistryBusyError`; "database is locked" or a lock
timeout never reaches the caller.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.database import (
    Location,
    Tx,
    database_url,
    is_busy,
    is_postgres,
    reason,
    shown,
    transaction,
)
from sensequant_assets.registry import chain
from sensequant_assets.registry.approval import ApprovalTerms, approval_columns
from sensequant_assets.registry.arguments import (
    _as_date,
    _as_metrics,
    _as_path,
    _as_score,
    _as_symbols,
    _check_stage,
    _check_status,
    _now,
    _require_text,
    _stamp,
)
from sensequant_assets.registry.dialects import schema_version
from sensequant_assets.registry.errors import (
    _VERBS,
    DeploymentConflictError,
    IllegalTransitionError,
    NothingToRollBackError,
    RegistryBusyError,
    RegistryError,
    UnknownRunError,
    _either,
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
    TRANSITIONS,
)
from sensequant_assets.registry.records import (
    AutoApprovalPolicy,
    CandidateRun,
    Deployment,
    StatusChange,
    _change_from_row,
    _deployment_from_row,
    _run_from_row,
)
from sensequant_assets.registry.schema import empty_registry, ensure_schema
from sensequant_assets.registry.trial import TRIAL_NOTE, TRIAL_OUTCOMES
from sensequant_assets.registry.trial import staging_outcome as _staging_outcome
from sensequant_assets.registry.verify import RegistryCheck, verify_registry

DEFAULT_TIMEOUT_SECONDS = 30.0
LOCK_KEY = 0x5E45_4E47
"""The Postgres advisory lock every registry writer holds (the call ledger's is another)."""

T = TypeVar("T")
Op = Callable[[Tx], T]


def _configured_registry() -> Location:
    """The settings' registry. The settings (pydantic) are imported on this first use only:
    importing the registry stays light, and reads the environment of the call, not the import."""
    from sensequant_assets.settings import load_settings

    return ArtifactLayout.of(load_settings()).registry


class StateManager:
    """Transactional access to the candidate registry at ``location``: an SQLite file path, or
    a ``postgresql://`` URL (:func:`~sensequant_assets.database.database_url`); without one,
    the registry the settings configure (``SENSEQUANT_HOME``, ``SENSEQUANT_REGISTRY_URL``).

    Cheap to construct and safe to share between threads or pass to other processes: it keeps
    no connection, only the location. The file, its parent directories and the schema are
    created on first use, unless ``read_only``: then nothing is created, a registry not created
    yet reads as an empty one, and every write raises :class:`RegistryError`.
    """

    def __init__(
        self,
        location: Location | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        read_only: bool = False,
    ):
        if location is None:
            location = _configured_registry()
        raw = location if isinstance(location, sa.URL) else os.fspath(location)
        if not raw or raw == ":memory:" or (isinstance(raw, str) and raw.startswith("file:")):
            raise RegistryError(f"the registry needs a file path or a database URL, got {raw!r}")
        if timeout <= 0:
            raise RegistryError(f"timeout must be positive, got {timeout!r}")
        try:
            self._url = database_url(location)
        except (ValueError, sa.exc.ArgumentError) as exc:
            raise RegistryError(
                f"the registry needs a file path or a database URL: {exc}"
            ) from None
        self._timeout = float(timeout)
        self._read_only = read_only
        self._absent = False
        if read_only:
            self._absent = self._retrying(self._not_created)
            return
        if not is_postgres(self._url):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._retrying(lambda: ensure_schema(self._url, self._locked))

    @property
    def path(self) -> Path:
        """The SQLite file (:class:`RegistryError` for a Postgres registry)."""
        if is_postgres(self._url):
            raise RegistryError(f"the registry {self.where} is a Postgres database, not a file")
        return Path(str(self._url.database))

    @property
    def where(self) -> str:
        """The registry as a message may name it: the file, or the URL without its password."""
        return shown(self._url)

    def __repr__(self) -> str:
        return f"StateManager({self.where!r})"

    # -- connections and transactions --------------------------------------------------------

    def _locked(self, *, write: bool) -> AbstractContextManager[Tx]:
        return transaction(self._url, write=write, lock_key=LOCK_KEY, timeout=self._timeout)

    def _not_created(self) -> bool:
        """Is there no registry yet (no file, or an empty database)?"""
        if not is_postgres(self._url) and not self.path.is_file():
            return True
        with self._locked(write=False) as tx:
            if schema_version(tx) == 0:
                return True
        ensure_schema(self._url, self._locked)  # an older file is migrated, a newer refused
        return False

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` again while another writer holds the lock, up to the timeout."""
        deadline = time.monotonic() + self._timeout
        delay = 0.005
        while True:
            try:
                return attempt()
            except sa.exc.DBAPIError as exc:
                if not is_busy(exc):
                    raise RegistryError(f"registry {self.where}: {reason(exc)}") from exc
                if time.monotonic() >= deadline:
                    raise RegistryBusyError(
                        f"the registry {self.where} stayed busy for more than "
                        f"{self._timeout:g} s (another process holds a write transaction); "
                        "nothing was changed, try again"
                    ) from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.25)

    def _transaction(self, op: Op[T], *, write: bool) -> T:
        def attempt() -> T:
            with self._locked(write=write) as tx:
                return op(tx)

        return self._retrying(attempt)

    def _write(self, op: Op[T]) -> T:
        if self._read_only:
            raise RegistryError(f"the registry {self.where} was opened read-only")
        return self._transaction(op, write=True)

    def _read(self, op: Op[T]) -> T:
        if self._absent:
            return empty_registry(op)
        return self._transaction(op, write=False)

    # -- helpers used inside a transaction --------------------------------------------------

    @staticmethod
    def _fetch(tx: Tx, run_id: str) -> RowMapping | None:
        return tx.one("SELECT * FROM candidate_runs WHERE run_id = :run_id", run_id=run_id)

    def _require(self, tx: Tx, run_id: str, action: str) -> RowMapping:
        row = self._fetch(tx, run_id)
        if row is None:
            raise UnknownRunError(run_id, action)
        return row

    @staticmethod
    def _audit(
        tx: Tx,
        run_id: str,
        from_status: str | None,
        to_status: str,
        by: str,
        at: str,
        note: str | None = None,
        evidence: Mapping[str, str] | None = None,
    ) -> None:
        row = {"run_id": run_id, "from_status": from_status, "to_status": to_status}
        chain.append(tx, "status_changes", {
            **row, "changed_by": by, "changed_at": at, "note": note,
            "evidence": json.dumps(evidence) if evidence else None,
        })  # fmt: skip

    def _transition(
        self,
        tx: Tx,
        row: RowMapping,
        to_status: str,
        by: str,
        *,
        at: str,
        note: str | None = None,
        columns: Mapping[str, Any] | None = None,
        evidence: Mapping[str, str] | None = None,
    ) -> CandidateRun:
        """Move ``row`` to ``to_status`` (checked), set ``columns`` and append the audit row
        (recording ``evidence``, the digests an approval binds)."""
        run_id, current = row["run_id"], row["status"]
        if to_status not in TRANSITIONS[current]:
            raise IllegalTransitionError(run_id, current, to_status)
        values = {**(columns or {}), "status": to_status, "updated_at": at}
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        tx.run(
            f"UPDATE candidate_runs SET {assignments} WHERE run_id = :run_id AND status = :current",
            **values,
            run_id=run_id,
            current=current,
        )
        self._audit(tx, run_id, current, to_status, by, at, note, evidence)
        return _run_from_row(self._fetch(tx, run_id))  # type: ignore[arg-type]

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
        run_id = _require_text(run_id, "run_id")
        status = _check_status(status)
        by = _require_text(recorded_by, "recorded_by")
        fields: dict[str, Any] = {
            "candidate_dir": _as_path(candidate_dir, "candidate_dir"),
            "audit_dir": _as_path(audit_dir, "audit_dir"),
            "start_date": _as_date(start_date, "start_date"),
            "end_date": _as_date(end_date, "end_date"),
            "recommendation": (
                None if recommendation is None else _require_text(recommendation, "recommendation")
            ),
            "score": _as_score(score),
            "dagster_run_id": dagster_run_id,
            "data_source": data_source,
        }
        symbol_list = _as_symbols(symbols)
        metric_values = _as_metrics(metrics)
        if (
            fields["start_date"]
            and fields["end_date"]
            and fields["start_date"] > fields["end_date"]
        ):
            raise RegistryError(f"start_date {start_date} is after end_date {end_date}")

        def op(tx: Tx) -> CandidateRun:
            now = _stamp(_now())
            row = self._fetch(tx, run_id)
            if row is None:
                if status not in INITIAL_STATUSES:
                    raise IllegalTransitionError(
                        run_id,
                        None,
                        status,
                        f"a new run starts as {_either(INITIAL_STATUSES)}",
                        action=f"record {status} run",
                    )
                values = {
                    "run_id": run_id,
                    "status": status,
                    "created_at": now,
                    "updated_at": now,
                    **fields,
                    "symbols": json.dumps(symbol_list),
                    "metrics": json.dumps(metric_values or {}),
                    "dryrun": int(bool(dryrun)),
                    "synthetic": int(bool(synthetic)),
                    "recorded_by": by,
                }
                tx.insert("candidate_runs", values)
                self._audit(tx, run_id, None, status, by, now, "recorded")
                return _run_from_row(self._fetch(tx, run_id))  # type: ignore[arg-type]
            if status not in INITIAL_STATUSES:
                raise IllegalTransitionError(
                    run_id,
                    row["status"],
                    status,
                    f"record_candidate_run only sets {_either(INITIAL_STATUSES)}; use the "
                    f"dedicated method to {_VERBS[status]} a run",
                )
            updates = {name: value for name, value in fields.items() if value is not None}
            if symbol_list:
                updates["symbols"] = json.dumps(symbol_list)
            if metric_values is not None:
                updates["metrics"] = json.dumps(metric_values)
            if dryrun:
                updates["dryrun"] = 1
            if synthetic:
                updates["synthetic"] = 1
            return self._transition(tx, row, status, by, at=now, note="recorded", columns=updates)

        return self._write(op)

    def mark_failed(self, run_id: str, error: str, by: str = "system") -> CandidateRun:
        """Record that a run failed (creating it in ``failed`` if it was never recorded)."""
        run_id = _require_text(run_id, "run_id")
        error = _require_text(error, "error")
        by = _require_text(by, "by")

        def op(tx: Tx) -> CandidateRun:
            now = _stamp(_now())
            row = self._fetch(tx, run_id)
            if row is None:
                tx.insert("candidate_runs", {
                    "run_id": run_id, "status": FAILED, "created_at": now, "updated_at": now,
                    "recorded_by": by, "error": error,
                })  # fmt: skip
                self._audit(tx, run_id, None, FAILED, by, now, error)
                return _run_from_row(self._fetch(tx, run_id))  # type: ignore[arg-type]
            return self._transition(
                tx, row, FAILED, by, at=now, note=error, columns={"error": error}
            )

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
        return self._transition(
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
            lambda tx: self._approve(tx, self._require(tx, run_id, "approve"), by, None, terms)
        )

    def reject_candidate_run(self, run_id: str, rejected_by: str, reason: str) -> CandidateRun:
        """Reject a ``ready-for-review`` or ``approved`` (not yet deployed) run."""
        by = _require_text(rejected_by, "rejected_by")
        reason = _require_text(reason, "reason")

        def op(tx: Tx) -> CandidateRun:
            row = self._require(tx, run_id, "reject")
            now = _stamp(_now())
            columns = {"rejected_by": by, "rejected_at": now, "rejection_reason": reason}
            return self._transition(tx, row, REJECTED, by, at=now, note=reason, columns=columns)

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
            row = self._require(tx, run_id, "auto-approve")
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
            row = self._require(tx, run_id, "record the staging trial of")
            if row["status"] != APPROVED:
                raise IllegalTransitionError(
                    run_id, row["status"], APPROVED, "only an approved run is on trial",
                    action="record the staging trial of",
                )  # fmt: skip
            if (earlier := _staging_outcome(tx, run_id)) is not None:
                raise RegistryError(f"{run_id}'s staging trial already ended: {earlier}")
            note = f"{TRIAL_NOTE}{outcome}: {_require_text(reasons, 'reasons')}"
            self._audit(tx, run_id, APPROVED, APPROVED, by, _stamp(_now()), note)

        self._write(op)

    def staging_outcome(self, run_id: str) -> str | None:
        """``promote`` or ``stays`` once ``run_id``'s staging trial ended, else ``None``."""
        return self._read(lambda tx: _staging_outcome(tx, run_id))

    # -- deployment ------------------------------------------------------------------------

    @staticmethod
    def _current_row(tx: Tx, stage: str) -> RowMapping | None:
        return tx.one(
            "SELECT * FROM deployments WHERE stage = :stage ORDER BY id DESC LIMIT 1", stage=stage
        )

    def _deploy(
        self,
        tx: Tx,
        row: RowMapping,
        stage: str,
        by: str,
        *,
        action: str,
        rollback_to: int | None,
        reason: str | None = None,
    ) -> Deployment:
        """Make ``row`` the live run of ``stage``; checks eligibility, writes history + audit."""
        run_id, verb = row["run_id"], f"deploy to {stage}"
        if row["dryrun"]:
            raise IllegalTransitionError(
                run_id, row["status"], DEPLOYED, "it is a dry run (never deployed)", action=verb
            )
        current = self._current_row(tx, stage)
        now = _stamp(_now())
        why = f": {reason}" if reason else ""
        if stage == PRODUCTION:
            if DEPLOYED not in TRANSITIONS[row["status"]]:
                raise IllegalTransitionError(run_id, row["status"], DEPLOYED, action=verb)
            if current is not None:
                live = self._require(tx, current["run_id"], "retire")
                note = f"replaced in production by {run_id} ({action})" + why
                self._transition(tx, live, RETIRED, by, at=now, note=note)
            note = (
                f"{action} to production"
                + (f", replacing {current['run_id']}" if current is not None else "")
                + why
            )
            self._transition(tx, row, DEPLOYED, by, at=now, note=note)
        else:
            if row["status"] != APPROVED:
                raise IllegalTransitionError(
                    run_id,
                    row["status"],
                    DEPLOYED,
                    f"it is {row['status']} (staging takes approved runs only)",
                    action=verb,
                )
            if current is not None and current["run_id"] == run_id:
                raise RegistryError(f"cannot {verb} {run_id}: it is already live in staging")
        replaced = None if current is None else current["run_id"]
        new_id = chain.append(tx, "deployments", {
            "run_id": run_id, "stage": stage, "action": action, "deployed_by": by,
            "deployed_at": now, "replaced_run_id": replaced, "rollback_to": rollback_to,
        })  # fmt: skip
        new = tx.one("SELECT * FROM deployments WHERE id = :id", id=new_id)
        return _deployment_from_row(new)  # type: ignore[arg-type]

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
            row = self._require(tx, run_id, f"deploy to {stage}")
            current = self._current_row(tx, stage)
            return self._deploy(
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
            target = self._rollback_row(tx, stage)
            if to is not None and target["run_id"] != to:
                raise DeploymentConflictError(
                    f"cannot roll {stage} back to {to}: {stage} changed meanwhile (a rollback "
                    f"now restores {target['run_id']}); nothing was changed, check and retry"
                )
            row = self._require(tx, target["run_id"], f"roll {stage} back to")
            return self._deploy(
                tx, row, stage, by, action="rollback", rollback_to=target["rollback_to"],
                reason=reason,
            )  # fmt: skip

        return self._write(op)

    def rollback_target(self, stage: str = PRODUCTION) -> str:
        """The run a ``rollback`` of ``stage`` would restore, without recording anything: a
        caller checks the bundle is still on disk before the registry moves."""
        stage = _check_stage(stage)
        return self._read(lambda tx: str(self._rollback_row(tx, stage)["run_id"]))

    def _rollback_row(self, tx: Tx, stage: str) -> RowMapping:
        current = self._current_row(tx, stage)
        if current is None:
            raise NothingToRollBackError(
                f"cannot roll back {stage}: nothing has ever been deployed there"
            )
        if current["rollback_to"] is None:
            raise NothingToRollBackError(
                f"cannot roll back {stage}: {current['run_id']} is live and no run was "
                "deployed before it to go back to"
            )
        return tx.one(  # type: ignore[return-value]
            "SELECT * FROM deployments WHERE id = :id", id=current["rollback_to"]
        )

    def current_deployment(self, stage: str = PRODUCTION) -> Deployment | None:
        """The latest deployment of ``stage`` (the live run), or ``None``."""
        stage = _check_stage(stage)

        def op(tx: Tx) -> Deployment | None:
            row = self._current_row(tx, stage)
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
        return self._read(lambda tx: _run_from_row(self._require(tx, run_id, "find")))

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
                self._require(tx, run_id, "read the audit log of")
                rows = tx.all(
                    "SELECT * FROM status_changes WHERE run_id = :run_id ORDER BY id", run_id=run_id
                )
            return [_change_from_row(row) for row in rows]

        return self._read(op)
