"""Candidate ids reserved atomically, each by the one run that owns it.

Two runs given the same candidate id (two schedules on one tick, two commands started in the
same second) would write one bundle, and the loser's failure handler would mark the winner
failed. So a run reserves its id before writing anything: one row in ``candidate_reservations``
whose primary key is the id, inserted in a write transaction, recording the owner (a Dagster
run id, or the token a ``historical-run`` command carries on all its runs). The table is
append-only: a reservation is never handed over. A failure handler acts only on an id its
own run holds.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.database import Tx
from sensequant_assets.registry.errors import RegistryError
from sensequant_assets.registry.manager import StateManager

TABLE = "candidate_reservations"


class CandidateTakenError(RegistryError):
    """The candidate id is reserved by another run."""


@dataclass(frozen=True)
class Reservation:
    candidate_id: str
    owner: str
    reserved_at: dt.datetime


def _holder(tx: Tx, candidate_id: str) -> Reservation | None:
    row = tx.one(f"SELECT * FROM {TABLE} WHERE candidate_id = :id", id=candidate_id)
    if row is None:
        return None
    at = dt.datetime.fromisoformat(row["reserved_at"])
    return Reservation(row["candidate_id"], row["owner"], at)


def try_reserve(manager: StateManager, candidate_id: str, owner: str) -> Reservation:
    """Reserve ``candidate_id`` for ``owner`` unless someone holds it; who holds it now."""
    if not candidate_id.strip() or not owner.strip():
        raise RegistryError("a reservation needs a candidate id and an owner")

    def op(tx: Tx) -> Reservation:
        tx.run(
            f"INSERT INTO {TABLE} (candidate_id, owner, reserved_at) VALUES (:id, :owner, :at)"
            " ON CONFLICT (candidate_id) DO NOTHING",
            id=candidate_id,
            owner=owner,
            at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        )
        return _holder(tx, candidate_id)  # type: ignore[return-value]

    return manager._write(op)


def reserve(manager: StateManager, candidate_id: str, owner: str) -> Reservation:
    """Reserve ``candidate_id`` for ``owner`` (again, if it already holds it); raises
    :class:`CandidateTakenError` if another run holds it."""
    held = try_reserve(manager, candidate_id, owner)
    if held.owner != owner:
        raise CandidateTakenError(
            f"candidate id {candidate_id} is reserved by run {held.owner} (since "
            f"{held.reserved_at:%Y-%m-%d %H:%M:%S} UTC); launch with another sensequant/candidate "
            "tag, or none to get a fresh id"
        )
    return held


def reserve_new(manager: StateManager, layout: ArtifactLayout, owner: str) -> str:
    """A fresh ``live_candidate_<now>`` id reserved for ``owner``: a second already reserved
    (or with files on disk) is skipped by waiting for the next one."""
    while True:
        candidate_id = layout.new_candidate_id()
        if try_reserve(manager, candidate_id, owner).owner == owner:
            return candidate_id
        time.sleep(1.001 - dt.datetime.now().microsecond / 1e6)


def holder(manager: StateManager, candidate_id: str) -> Reservation | None:
    """Who holds ``candidate_id``, or ``None`` if it was never reserved."""
    return manager._read(lambda tx: _holder(tx, candidate_id))
