"""A staging trial's outcome as the registry keeps it: a note in the audit log.

The verdict (``live.staging``) is recorded once, as an ``approved → approved`` audit row whose
note starts with :data:`TRIAL_NOTE`, so it sits in the hash chain beside the approval it
follows: a production deployment through staging reads it back, and an edit shows in
``candidates verify``. No status changes, because a run that stays in staging is still the
approved run a person can reject or a later trial can replace.
"""

from __future__ import annotations

from sensequant_assets.database import Tx
from sensequant_assets.registry.lifecycle import APPROVED

PROMOTE, STAYS = "promote", "stays"
TRIAL_OUTCOMES: tuple[str, ...] = (PROMOTE, STAYS)
TRIAL_NOTE = "staging trial: "


def staging_outcome(tx: Tx, run_id: str) -> str | None:
    """The outcome of ``run_id``'s ended staging trial, or ``None``."""
    note = tx.scalar(
        "SELECT note FROM status_changes WHERE run_id = :run_id AND from_status = :approved "
        "AND to_status = :approved AND note LIKE :prefix ORDER BY id DESC LIMIT 1",
        run_id=run_id,
        approved=APPROVED,
        prefix=f"{TRIAL_NOTE}%",
    )
    if note is None:
        return None
    return str(note).removeprefix(TRIAL_NOTE).split(":", 1)[0]
