"""One status change inside a registry transaction: the run's row moved along
:data:`~sensequant_assets.registry.lifecycle.TRANSITIONS` and its audit-log row appended.

Every operation of :class:`~sensequant_assets.registry.StateManager` that changes a status goes
through :func:`transition` (or, for a run's first row, :func:`append_change`), so the check of
the move, the update and the hash-chained ``status_changes`` row cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import RowMapping

from sensequant_assets.database import Tx
from sensequant_assets.registry import chain
from sensequant_assets.registry.errors import IllegalTransitionError, UnknownRunError
from sensequant_assets.registry.lifecycle import TRANSITIONS
from sensequant_assets.registry.records import CandidateRun, _run_from_row


def fetch_run(tx: Tx, run_id: str) -> RowMapping | None:
    return tx.one("SELECT * FROM candidate_runs WHERE run_id = :run_id", run_id=run_id)


def require_run(tx: Tx, run_id: str, action: str) -> RowMapping:
    row = fetch_run(tx, run_id)
    if row is None:
        raise UnknownRunError(run_id, action)
    return row


def append_change(
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


def transition(
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
    append_change(tx, run_id, current, to_status, by, at, note, evidence)
    return _run_from_row(fetch_run(tx, run_id))  # type: ignore[arg-type]
