"""The candidate registry: one SQLite file holding every review decision and deployment.

A *candidate run* is one trained-and-evaluated model bundle. It enters the registry as
``running`` (training under way), ``ready-for-review`` (bundle and audit written) or ``failed``,
and from there only moves along :data:`TRANSITIONS`::

    running ─► ready-for-review ─► approved ─► deployed ◄─► retired
       │              │               │
       └──► failed ◄──┘   rejected ◄──┘ (also from ready-for-review)

Every status change, including creation, appends one row to the ``status_changes`` table in the
same transaction as the change; SQLite triggers refuse any UPDATE or DELETE of that table and of
``deployments``, so the history is append-only even for someone with a ``sqlite3`` shell. Both
tables are hash-chained (:mod:`.chain`), and every deployment and rollback first verifies the
file (:mod:`.verify`): one who drops the triggers to edit it is caught before anything deploys.

Concurrency: several processes (a Dagster sensor, a reviewer at the CLI) may write at once. The
database runs in WAL mode, each operation opens its own connection (nothing survives a fork),
each write runs inside ``BEGIN IMMEDIATE … COMMIT`` so the check ("is it ready for review?") and
the act ("approve it") cannot interleave with another writer, and a writer that finds the file
busy waits (``busy_timeout``) and then retries the whole operation until ``timeout`` runs out.
Only then does it raise :class:`RegistryBusyError`; SQLite's "database is locked" never reaches
the caller.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sensequant_assets.registry import chain
from sensequant_assets.registry.approval import ApprovalTerms, approval_columns
from sensequant_assets.registry.errors import (
    _VERBS,
    DeploymentConflictError,
    IllegalTransitionError,
    NothingToRollBackError,
    RegistryBusyError,
    RegistryError,
    TamperedRegistryError,
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
    STAGES,
    STATUSES,
    TRANSITIONS,
)
from sensequant_assets.registry.schema import SCHEMA_VERSION, migrate, schema_version
from sensequant_assets.registry.verify import RegistryCheck, verify_registry

__all__ = [
    "AutoApprovalPolicy",
    "CandidateRun",
    "Deployment",
    "DeploymentConflictError",
    "IllegalTransitionError",
    "NothingToRollBackError",
    "RegistryBusyError",
    "RegistryError",
    "StateManager",
    "StatusChange",
    "TamperedRegistryError",
    "UnknownRunError",
]

DEFAULT_TIMEOUT_SECONDS = 30.0

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# records


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


# --------------------------------------------------------------------------------------------
# argument checks and conversions


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _parse_stamp(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def _parse_date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _require_text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{name} must be a non-empty string, got {value!r}")
    return value.strip()


def _check_status(status: object) -> str:
    if status not in STATUSES:
        raise RegistryError(f"unknown status {status!r}; valid statuses: {', '.join(STATUSES)}")
    return str(status)


def _check_stage(stage: object) -> str:
    if stage not in STAGES:
        raise RegistryError(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}")
    return str(stage)


def _as_date(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError as exc:
            raise RegistryError(f"{name} must be an ISO date (YYYY-MM-DD), got {value!r}") from exc
    raise RegistryError(f"{name} must be a date or an ISO date string, got {value!r}")


def _as_path(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise RegistryError(f"{name} must be a path, got {value!r}")


def _as_symbols(symbols: object) -> list[str]:
    if isinstance(symbols, str | bytes) or not isinstance(symbols, Iterable):
        raise RegistryError(f"symbols must be a sequence of strings, got {symbols!r}")
    return [_require_text(symbol, "each symbol") for symbol in symbols]


def _as_score(score: object) -> float | None:
    if score is None:
        return None
    try:
        value = float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"score must be a number, got {score!r}") from exc
    if not math.isfinite(value):
        raise RegistryError(f"score must be finite, got {score!r}")
    return value


def _json_safe(value: Any, where: str = "metrics") -> Any:
    """Plain JSON values; numpy scalars/arrays unwrapped, non-finite floats become None."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item, where) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    for unwrap in ("item", "tolist"):  # numpy scalars, then arrays
        method = getattr(value, unwrap, None)
        if callable(method):
            try:
                return _json_safe(method(), where)
            except (TypeError, ValueError):
                continue
    raise RegistryError(f"{where}: {type(value).__name__} value {value!r} is not JSON-serialisable")


def _as_metrics(metrics: object) -> dict[str, Any] | None:
    if metrics is None:
        return None
    if not isinstance(metrics, Mapping):
        raise RegistryError(f"metrics must be a mapping, got {type(metrics).__name__}")
    return _json_safe(metrics)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    message = str(exc).lower()
    return "locked" in message or "busy" in message


# --------------------------------------------------------------------------------------------
# row conversion


def _run_from_row(row: sqlite3.Row) -> CandidateRun:
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


def _deployment_from_row(row: sqlite3.Row) -> Deployment:
    return Deployment(
        deployment_id=row["id"],
        run_id=row["run_id"],
        stage=row["stage"],
        action=row["action"],
        deployed_by=row["deployed_by"],
        deployed_at=_parse_stamp(row["deployed_at"]),  # type: ignore[arg-type]
        replaced_run_id=row["replaced_run_id"],
    )


def _change_from_row(row: sqlite3.Row) -> StatusChange:
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


# --------------------------------------------------------------------------------------------
# the manager


class StateManager:
    """Transactional access to the candidate registry stored at ``path`` (an SQLite file).

    Cheap to construct and safe to share between threads or pass to other processes: it keeps
    no connection, only the path. The file, its parent directories and the schema are created
    on first use.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT_SECONDS):
        raw = os.fspath(path)
        if not raw or raw == ":memory:" or raw.startswith("file:"):
            raise RegistryError(f"the registry needs a file path, got {raw!r}")
        if timeout <= 0:
            raise RegistryError(f"timeout must be positive, got {timeout!r}")
        self._path = Path(raw).expanduser().absolute()
        self._timeout = float(timeout)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._retrying(self._ensure_schema)

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"StateManager({str(self._path)!r})"

    # -- connections and transactions --------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise
            raise RegistryError(f"cannot open the registry {self._path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` again while SQLite reports the file busy, up to the timeout."""
        deadline = time.monotonic() + self._timeout
        delay = 0.005
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise RegistryError(f"registry {self._path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise RegistryBusyError(
                        f"the registry {self._path} stayed busy for more than "
                        f"{self._timeout:g} s (another process holds a write transaction); "
                        "nothing was changed, try again"
                    ) from exc
            except sqlite3.DatabaseError as exc:  # e.g. "file is not a database", a CHECK
                raise RegistryError(f"registry {self._path}: {exc}") from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.25)

    def _transaction(self, op: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        def attempt() -> T:
            with closing(self._connect()) as conn:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
                try:
                    result = op(conn)
                    conn.execute("COMMIT" if write else "ROLLBACK")
                except BaseException:
                    if conn.in_transaction:
                        # If even this fails, closing the connection rolls back.
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                return result

        return self._retrying(attempt)

    def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        return self._transaction(op, write=True)

    def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        return self._transaction(op, write=False)

    def _ensure_schema(self) -> None:
        with closing(self._connect()) as conn:
            version = schema_version(conn)
            if version > SCHEMA_VERSION:
                raise RegistryError(
                    f"the registry {self._path} has schema version {version}, newer than this "
                    f"code understands ({SCHEMA_VERSION}); upgrade sensequant_assets"
                )
            migrate(conn)

    # -- helpers used inside a transaction --------------------------------------------------

    @staticmethod
    def _fetch(conn: sqlite3.Connection, run_id: str) -> sqlite3.Row | None:
        return conn.execute("SELECT * FROM candidate_runs WHERE run_id = ?", (run_id,)).fetchone()

    def _require(self, conn: sqlite3.Connection, run_id: str, action: str) -> sqlite3.Row:
        row = self._fetch(conn, run_id)
        if row is None:
            raise UnknownRunError(run_id, action)
        return row

    @staticmethod
    def _audit(
        conn: sqlite3.Connection,
        run_id: str,
        from_status: str | None,
        to_status: str,
        by: str,
        at: str,
        note: str | None = None,
        evidence: Mapping[str, str] | None = None,
    ) -> None:
        row = {"run_id": run_id, "from_status": from_status, "to_status": to_status}
        chain.append(conn, "status_changes", {
            **row, "changed_by": by, "changed_at": at, "note": note,
            "evidence": json.dumps(evidence) if evidence else None,
        })  # fmt: skip

    def _transition(
        self,
        conn: sqlite3.Connection,
        row: sqlite3.Row,
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
        assignments = ", ".join(f"{name} = ?" for name in values)
        conn.execute(
            f"UPDATE candidate_runs SET {assignments} WHERE run_id = ? AND status = ?",
            (*values.values(), run_id, current),
        )
        self._audit(conn, run_id, current, to_status, by, at, note, evidence)
        return _run_from_row(self._fetch(conn, run_id))  # type: ignore[arg-type]

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

        def op(conn: sqlite3.Connection) -> CandidateRun:
            now = _stamp(_now())
            row = self._fetch(conn, run_id)
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
                names = ", ".join(values)
                marks = ", ".join("?" for _ in values)
                conn.execute(
                    f"INSERT INTO candidate_runs ({names}) VALUES ({marks})", tuple(values.values())
                )
                self._audit(conn, run_id, None, status, by, now, "recorded")
                return _run_from_row(self._fetch(conn, run_id))  # type: ignore[arg-type]
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
            return self._transition(conn, row, status, by, at=now, note="recorded", columns=updates)

        return self._write(op)

    def mark_failed(self, run_id: str, error: str, by: str = "system") -> CandidateRun:
        """Record that a run failed (creating it in ``failed`` if it was never recorded)."""
        run_id = _require_text(run_id, "run_id")
        error = _require_text(error, "error")
        by = _require_text(by, "by")

        def op(conn: sqlite3.Connection) -> CandidateRun:
            now = _stamp(_now())
            row = self._fetch(conn, run_id)
            if row is None:
                conn.execute(
                    "INSERT INTO candidate_runs (run_id, status, created_at, updated_at,"
                    " recorded_by, error) VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, FAILED, now, now, by, error),
                )
                self._audit(conn, run_id, None, FAILED, by, now, error)
                return _run_from_row(self._fetch(conn, run_id))  # type: ignore[arg-type]
            return self._transition(
                conn, row, FAILED, by, at=now, note=error, columns={"error": error}
            )

        return self._write(op)

    # -- review ----------------------------------------------------------------------------

    def _approve(
        self,
        conn: sqlite3.Connection,
        row: sqlite3.Row,
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
            conn, row, APPROVED, by, at=now, note=note, columns=columns, evidence=evidence
        )

    def approve_candidate_run(
        self, run_id: str, approved_by: str, *, terms: ApprovalTerms | None = None
    ) -> CandidateRun:
        """Approve a ``ready-for-review`` run: what it binds is in
        :mod:`~sensequant_assets.registry.evidence` (its files must all exist), what it needs
        beyond a name (``terms``, default: none) in :mod:`~sensequant_assets.registry.approval`."""
        by = _require_text(approved_by, "approved_by")
        return self._write(
            lambda conn: self._approve(
                conn, self._require(conn, run_id, "approve"), by, None, terms
            )
        )

    def reject_candidate_run(self, run_id: str, rejected_by: str, reason: str) -> CandidateRun:
        """Reject a ``ready-for-review`` or ``approved`` (not yet deployed) run."""
        by = _require_text(rejected_by, "rejected_by")
        reason = _require_text(reason, "reason")

        def op(conn: sqlite3.Connection) -> CandidateRun:
            row = self._require(conn, run_id, "reject")
            now = _stamp(_now())
            columns = {"rejected_by": by, "rejected_at": now, "rejection_reason": reason}
            return self._transition(conn, row, REJECTED, by, at=now, note=reason, columns=columns)

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

        def op(conn: sqlite3.Connection) -> CandidateRun:
            row = self._require(conn, run_id, "auto-approve")
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
            return self._approve(conn, row, policy.approver, note)

        return self._write(op)

    # -- deployment ------------------------------------------------------------------------

    @staticmethod
    def _current_row(conn: sqlite3.Connection, stage: str) -> sqlite3.Row | None:
        return conn.execute(
            "SELECT * FROM deployments WHERE stage = ? ORDER BY id DESC LIMIT 1", (stage,)
        ).fetchone()

    def _deploy(
        self,
        conn: sqlite3.Connection,
        row: sqlite3.Row,
        stage: str,
        by: str,
        *,
        action: str,
        rollback_to: int | None,
    ) -> Deployment:
        """Make ``row`` the live run of ``stage``; checks eligibility, writes history + audit."""
        run_id, verb = row["run_id"], f"deploy to {stage}"
        if row["dryrun"]:
            raise IllegalTransitionError(
                run_id, row["status"], DEPLOYED, "it is a dry run (never deployed)", action=verb
            )
        current = self._current_row(conn, stage)
        now = _stamp(_now())
        if stage == PRODUCTION:
            if DEPLOYED not in TRANSITIONS[row["status"]]:
                raise IllegalTransitionError(run_id, row["status"], DEPLOYED, action=verb)
            if current is not None:
                live = self._require(conn, current["run_id"], "retire")
                note = f"replaced in production by {run_id} ({action})"
                self._transition(conn, live, RETIRED, by, at=now, note=note)
            note = f"{action} to production" + (
                f", replacing {current['run_id']}" if current is not None else ""
            )
            self._transition(conn, row, DEPLOYED, by, at=now, note=note)
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
        new_id = chain.append(conn, "deployments", {
            "run_id": run_id, "stage": stage, "action": action, "deployed_by": by,
            "deployed_at": now, "replaced_run_id": replaced, "rollback_to": rollback_to,
        })  # fmt: skip
        new = conn.execute("SELECT * FROM deployments WHERE id = ?", (new_id,))
        return _deployment_from_row(new.fetchone())

    def record_deployment(self, run_id: str, stage: str, by: str) -> Deployment:
        """Record that ``run_id`` went live in ``stage``.

        Production takes an ``approved`` run (or a ``retired`` one: a manual rollback), marks it
        ``deployed`` and retires the run live before it, all in one transaction. Staging takes
        an ``approved`` run and changes no status. Dry runs are never deployed. A registry
        changed outside sensequant (:mod:`.verify`) raises :class:`TamperedRegistryError`.
        """
        stage = _check_stage(stage)
        by = _require_text(by, "by")

        def op(conn: sqlite3.Connection) -> Deployment:
            verify_registry(conn).require(f"deploy {run_id} to {stage}")
            row = self._require(conn, run_id, f"deploy to {stage}")
            current = self._current_row(conn, stage)
            return self._deploy(
                conn,
                row,
                stage,
                by,
                action="deploy",
                rollback_to=None if current is None else current["id"],
            )

        return self._write(op)

    def rollback(self, stage: str = PRODUCTION, *, by: str, to: str | None = None) -> Deployment:
        """Put back the run that was live in ``stage`` before the current one.

        Rollbacks stack: after A, B, C a rollback restores B and a second one restores A. In
        production the current run becomes ``retired`` and the restored one ``deployed``. With
        ``to`` (the target a caller checked) it raises :class:`DeploymentConflictError`,
        recording nothing, if the target is another run by the time the transaction runs.
        """
        stage = _check_stage(stage)
        by = _require_text(by, "by")

        def op(conn: sqlite3.Connection) -> Deployment:
            verify_registry(conn).require(f"roll {stage} back")
            target = self._rollback_row(conn, stage)
            if to is not None and target["run_id"] != to:
                raise DeploymentConflictError(
                    f"cannot roll {stage} back to {to}: {stage} changed meanwhile (a rollback "
                    f"now restores {target['run_id']}); nothing was changed, check and retry"
                )
            row = self._require(conn, target["run_id"], f"roll {stage} back to")
            return self._deploy(
                conn, row, stage, by, action="rollback", rollback_to=target["rollback_to"]
            )

        return self._write(op)

    def rollback_target(self, stage: str = PRODUCTION) -> str:
        """The run a ``rollback`` of ``stage`` would restore, without recording anything: a
        caller checks the bundle is still on disk before the registry moves."""
        stage = _check_stage(stage)
        return self._read(lambda conn: str(self._rollback_row(conn, stage)["run_id"]))

    def _rollback_row(self, conn: sqlite3.Connection, stage: str) -> sqlite3.Row:
        current = self._current_row(conn, stage)
        if current is None:
            raise NothingToRollBackError(
                f"cannot roll back {stage}: nothing has ever been deployed there"
            )
        if current["rollback_to"] is None:
            raise NothingToRollBackError(
                f"cannot roll back {stage}: {current['run_id']} is live and no run was "
                "deployed before it to go back to"
            )
        return conn.execute(
            "SELECT * FROM deployments WHERE id = ?", (current["rollback_to"],)
        ).fetchone()

    def current_deployment(self, stage: str = PRODUCTION) -> Deployment | None:
        """The latest deployment of ``stage`` (the live run), or ``None``."""
        stage = _check_stage(stage)

        def op(conn: sqlite3.Connection) -> Deployment | None:
            row = self._current_row(conn, stage)
            return None if row is None else _deployment_from_row(row)

        return self._read(op)

    def deployment_history(self, stage: str | None = None) -> list[Deployment]:
        """Every deployment (of ``stage``, or of all stages), newest first."""
        if stage is not None:
            stage = _check_stage(stage)

        def op(conn: sqlite3.Connection) -> list[Deployment]:
            if stage is None:
                rows = conn.execute("SELECT * FROM deployments ORDER BY id DESC")
            else:
                rows = conn.execute(
                    "SELECT * FROM deployments WHERE stage = ? ORDER BY id DESC", (stage,)
                )
            return [_deployment_from_row(row) for row in rows]

        return self._read(op)

    # -- queries ---------------------------------------------------------------------------

    def verify(self) -> RegistryCheck:
        """Check the file is what the registry wrote (see :mod:`.verify`); changes nothing."""
        return self._read(verify_registry)

    def get_candidate_run(self, run_id: str) -> CandidateRun:
        """The run with this id (:class:`UnknownRunError` if there is none)."""
        return self._read(lambda conn: _run_from_row(self._require(conn, run_id, "find")))

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
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(_check_status(status))
        if not include_dryrun:
            clauses.append("dryrun = 0")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = "" if limit is None else f" LIMIT {int(limit)}"
        sql = f"SELECT * FROM candidate_runs{where} ORDER BY created_at DESC, seq DESC{tail}"
        return self._read(lambda conn: [_run_from_row(row) for row in conn.execute(sql, params)])

    def audit_log(self, run_id: str | None = None) -> list[StatusChange]:
        """Status changes (of ``run_id``, or of every run), oldest first."""

        def op(conn: sqlite3.Connection) -> list[StatusChange]:
            if run_id is None:
                rows = conn.execute("SELECT * FROM status_changes ORDER BY id")
            else:
                self._require(conn, run_id, "read the audit log of")
                rows = conn.execute(
                    "SELECT * FROM status_changes WHERE run_id = ? ORDER BY id", (run_id,)
                )
            return [_change_from_row(row) for row in rows]

        return self._read(op)
