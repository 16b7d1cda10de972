"""The hash chains of the registry's append-only tables (``status_changes``, ``deployments``).

Triggers stop an UPDATE or DELETE, but only while they exist: anyone who can write the file can
drop them. So each row also stores ``row_hash``, the SHA-256 of the previous row's hash and a
canonical serialization of its own fields, and a verifier recomputes the chain. An edited,
deleted or reordered row breaks it from that row on; deleting the newest rows leaves the
table's counter of written ids (:func:`~.dialects.high_water`) ahead of its last id. Someone
who rewrites a whole chain consistently is not caught by the chain alone (see
:mod:`~sensequant_assets.registry.verify`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping

from sensequant_assets.database import Tx
from sensequant_assets.registry.dialects import high_water, note_written

CHAINED_TABLES: tuple[str, ...] = ("status_changes", "deployments")
GENESIS = "0" * 64
"""The "previous hash" of a table's first row."""
HASH_COLUMN = "row_hash"


def canonical(table: str, fields: Mapping[str, Any]) -> str:
    """The row as sorted compact JSON, ``row_hash`` and NULL columns left out: a column added
    by a later schema (NULL in older rows) changes no existing hash, and is covered once set."""
    values = {k: v for k, v in fields.items() if k != HASH_COLUMN and v is not None}
    return json.dumps({"table": table, **values}, sort_keys=True, separators=(",", ":"))


def row_digest(previous: str, table: str, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256((previous + canonical(table, fields)).encode()).hexdigest()


def _last(tx: Tx, table: str) -> tuple[int, str]:
    row = tx.one(f"SELECT id, {HASH_COLUMN} FROM {table} ORDER BY id DESC LIMIT 1")
    return (0, GENESIS) if row is None else (int(row["id"]), row[HASH_COLUMN] or GENESIS)


def append(tx: Tx, table: str, fields: Mapping[str, Any]) -> int:
    """Insert ``fields`` as the next row of ``table``, chained to the last one; its id.

    Called inside a write transaction (the registry's write lock), so no other writer can
    append in between reading the last row and inserting after it."""
    last_id, previous = _last(tx, table)
    values = {"id": last_id + 1, **fields}
    values[HASH_COLUMN] = row_digest(previous, table, values)
    tx.insert(table, values)
    note_written(tx, table, last_id + 1)
    return last_id + 1


def _rows(tx: Tx, table: str) -> list[RowMapping]:
    return tx.all(f"SELECT * FROM {table} ORDER BY id")


def backfill(tx: Tx) -> None:
    """Chain the rows an older schema wrote (the migration that adds ``row_hash``)."""
    for table in CHAINED_TABLES:
        previous = GENESIS
        for row in _rows(tx, table):
            previous = row_digest(previous, table, row)
            tx.run(
                f"UPDATE {table} SET {HASH_COLUMN} = :hash WHERE id = :id",
                hash=previous,
                id=row["id"],
            )


@dataclass(frozen=True)
class ChainCheck:
    """One table's chain: how many rows verified, and the first problem (``None``: intact)."""

    table: str
    rows: int
    problem: str | None = None


def check_chain(tx: Tx, table: str) -> ChainCheck:
    """Recompute ``table``'s chain; stop at the first row whose stored hash differs."""
    previous, count, last_id = GENESIS, 0, 0
    for row in _rows(tx, table):
        expected = row_digest(previous, table, row)
        if row[HASH_COLUMN] != expected:
            detail = "has no hash" if row[HASH_COLUMN] is None else "does not match its hash"
            return ChainCheck(
                table,
                count,
                f"{table} row {row['id']} {detail} (a row was edited, inserted, deleted or "
                "reordered at or before it)",
            )
        previous, count, last_id = expected, count + 1, int(row["id"])
    written = high_water(tx, table)
    if written is not None and written > last_id:
        return ChainCheck(
            table,
            count,
            f"{table} ends at row {last_id} but row {written} was written (its newest rows "
            "were deleted)",
        )
    return ChainCheck(table, count)
