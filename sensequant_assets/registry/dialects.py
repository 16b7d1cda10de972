"""Where SQLite and Postgres registries differ below the SQL both accept: the schema version
and the counter of the highest row a hash chain ever wrote.

SQLite keeps the version in ``PRAGMA user_version`` and the counter in ``sqlite_sequence``
(AUTOINCREMENT advances it on every insert); Postgres keeps the version in a one-row table and
the counter in a sequence per chained table, advanced by :func:`note_written`.
"""

from __future__ import annotations

from sensequant_assets.database import Tx

VERSION_TABLE = "registry_schema"


def counter(table: str) -> str:
    """The Postgres sequence holding ``table``'s highest written id."""
    return f"{table}_written"


def schema_version(tx: Tx) -> int:
    if not tx.postgres:
        return int(tx.scalar("PRAGMA user_version"))
    if not tx.scalar("SELECT to_regclass(:name) IS NOT NULL", name=VERSION_TABLE):
        return 0
    return int(tx.scalar(f"SELECT version FROM {VERSION_TABLE}") or 0)


def note_written(tx: Tx, table: str, row_id: int) -> None:
    """Record that ``table`` reached ``row_id`` (on SQLite, AUTOINCREMENT already did)."""
    if tx.postgres:
        tx.run("SELECT setval(:sequence, :id)", sequence=counter(table), id=row_id)


def high_water(tx: Tx, table: str) -> int | None:
    """The highest id ``table`` ever held (``None``: no row yet, or the counter is gone)."""
    if not tx.postgres:
        return tx.scalar("SELECT seq FROM sqlite_sequence WHERE name = :table", table=table)
    if not tx.scalar("SELECT to_regclass(:name) IS NOT NULL", name=counter(table)):
        return None
    row = tx.one(f"SELECT last_value, is_called FROM {counter(table)}")
    return int(row["last_value"]) if row is not None and row["is_called"] else None
