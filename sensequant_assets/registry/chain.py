"""The hash chains of the registry's append-only tables (``status_changes``, ``deployments``).

Triggers stop an UPDATE or DELETE, but only while they exist: anyone who can write the file can
drop them. So each row also stores ``row_hash``, the SHA-256 of the previous row's hash and a
canonical serialization of its own fields, and a verifier recomputes the chain. An edited,
deleted or reordered row breaks it from that row on; deleting the newest rows leaves the
table's AUTOINCREMENT counter ahead of its last id. Someone who rewrites a whole chain
consistently is not caught by the chain alone (see :mod:`~sensequant_assets.registry.verify`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def _last(conn: sqlite3.Connection, table: str) -> tuple[int, str]:
    row = conn.execute(f"SELECT id, {HASH_COLUMN} FROM {table} ORDER BY id DESC LIMIT 1").fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), row[1] or GENESIS)


def append(conn: sqlite3.Connection, table: str, fields: Mapping[str, Any]) -> int:
    """Insert ``fields`` as the next row of ``table``, chained to the last one; its id.

    Called inside a write transaction (``BEGIN IMMEDIATE``), so no other writer can append in
    between reading the last row and inserting after it."""
    last_id, previous = _last(conn, table)
    values = {"id": last_id + 1, **fields}
    values[HASH_COLUMN] = row_digest(previous, table, values)
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values()))
    return last_id + 1


def _fields(row: sqlite3.Row) -> dict[str, Any]:
    return dict(zip(row.keys(), row, strict=True))


def _rows(conn: sqlite3.Connection, table: str) -> sqlite3.Cursor:
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(f"SELECT * FROM {table} ORDER BY id")


def backfill(conn: sqlite3.Connection) -> None:
    """Chain the rows an older schema wrote (the migration that adds ``row_hash``)."""
    for table in CHAINED_TABLES:
        previous = GENESIS
        for row in _rows(conn, table).fetchall():
            previous = row_digest(previous, table, _fields(row))
            conn.execute(f"UPDATE {table} SET {HASH_COLUMN} = ? WHERE id = ?", (previous, row[0]))


@dataclass(frozen=True)
class ChainCheck:
    """One table's chain: how many rows verified, and the first problem (``None``: intact)."""

    table: str
    rows: int
    problem: str | None = None


def check_chain(conn: sqlite3.Connection, table: str) -> ChainCheck:
    """Recompute ``table``'s chain; stop at the first row whose stored hash differs."""
    previous, count, last_id = GENESIS, 0, 0
    for row in _rows(conn, table):
        expected = row_digest(previous, table, _fields(row))
        if row[HASH_COLUMN] != expected:
            detail = "has no hash" if row[HASH_COLUMN] is None else "does not match its hash"
            return ChainCheck(
                table,
                count,
                f"{table} row {row['id']} {detail} (a row was edited, inserted, deleted or "
                "reordered at or before it)",
            )
        previous, count, last_id = expected, count + 1, int(row["id"])
    sequence = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    if sequence is not None and int(sequence[0]) > last_id:
        return ChainCheck(
            table,
            count,
            f"{table} ends at row {last_id} but row {sequence[0]} was written (its newest rows "
            "were deleted)",
        )
    return ChainCheck(table, count)
