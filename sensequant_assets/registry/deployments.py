"""A deployment or a rollback as the registry records it, inside one transaction.

Production takes a run along ``approved``/``retired`` → ``deployed`` and retires the run live
before it; staging changes no status. Either way the step appends one hash-chained row to
``deployments``, whose ``rollback_to`` names the row a rollback goes back to, so rollbacks
stack. :class:`~sensequant_assets.registry.StateManager` verifies the registry and checks its
arguments before it calls these.
"""

from __future__ import annotations

from sqlalchemy.engine import RowMapping

from sensequant_assets.database import Tx
from sensequant_assets.registry import chain
from sensequant_assets.registry.arguments import _now, _stamp
from sensequant_assets.registry.errors import (
    IllegalTransitionError,
    NothingToRollBackError,
    RegistryError,
)
from sensequant_assets.registry.lifecycle import (
    APPROVED,
    DEPLOYED,
    PRODUCTION,
    RETIRED,
    TRANSITIONS,
)
from sensequant_assets.registry.records import Deployment, _deployment_from_row
from sensequant_assets.registry.transitions import require_run, transition


def current_row(tx: Tx, stage: str) -> RowMapping | None:
    return tx.one(
        "SELECT * FROM deployments WHERE stage = :stage ORDER BY id DESC LIMIT 1", stage=stage
    )


def deploy(
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
    current = current_row(tx, stage)
    now = _stamp(_now())
    why = f": {reason}" if reason else ""
    if stage == PRODUCTION:
        if DEPLOYED not in TRANSITIONS[row["status"]]:
            raise IllegalTransitionError(run_id, row["status"], DEPLOYED, action=verb)
        if current is not None:
            live = require_run(tx, current["run_id"], "retire")
            note = f"replaced in production by {run_id} ({action})" + why
            transition(tx, live, RETIRED, by, at=now, note=note)
        note = (
            f"{action} to production"
            + (f", replacing {current['run_id']}" if current is not None else "")
            + why
        )
        transition(tx, row, DEPLOYED, by, at=now, note=note)
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


def rollback_row(tx: Tx, stage: str) -> RowMapping:
    """The deployment a rollback of ``stage`` restores (:class:`NothingToRollBackError` if
    there is none)."""
    current = current_row(tx, stage)
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
