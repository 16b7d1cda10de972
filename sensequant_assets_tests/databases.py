"""Reaching a registry or ledger database from outside sensequant, on either backend: what an
operator with a shell (``sqlite3``, ``psql``) can do, and another writer holding the lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import psycopg2

from sensequant_assets.database import SCHEMA, Location, database_url, is_postgres
from sensequant_assets.registry import postgres_schema
from sensequant_assets.registry.schema import expected_triggers

DRIVER_ERRORS = (sqlite3.DatabaseError, psycopg2.Error)
"""What a shell's refused statement raises, on either backend."""


@contextmanager
def raw_connection(location: Location) -> Iterator[Any]:
    """A DB-API connection in autocommit mode, tables in scope (the registry's own code not
    involved): SQL written here is what an operator's shell would send."""
    url = database_url(location)
    if not is_postgres(url):
        with closing(sqlite3.connect(str(url.database), isolation_level=None)) as conn:
            yield conn
        return
    conn = psycopg2.connect(
        url.render_as_string(hide_password=False).replace("+psycopg2", ""),
        options=f"-c search_path={SCHEMA}",
    )
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def execute(location: Location, *statements: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run ``statements`` one by one (``?`` placeholders on both backends); the last one's rows."""
    rows: list[Any] = []
    with raw_connection(location) as conn:
        cursor = conn.cursor()
        for statement in statements:
            postgres = isinstance(conn, psycopg2.extensions.connection)
            cursor.execute(statement.replace("?", "%s") if postgres else statement, params)
            rows = cursor.fetchall() if cursor.description else []
    return rows


@contextmanager
def write_locked(location: Location, lock_key: int) -> Iterator[None]:
    """Hold the write lock of ``location``'s concern, as another process mid-write would."""
    url = database_url(location)
    with raw_connection(location) as conn:
        if is_postgres(url):
            conn.autocommit = False
            conn.cursor().execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        else:
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.rollback() if is_postgres(url) else conn.execute("ROLLBACK")


_TABLES = ("candidate_reservations", "candidate_runs", "status_changes", "deployments")


def _table_of(trigger: str) -> str:
    return next(table for table in _TABLES if trigger.startswith(f"{table}_"))


def shell(location: Location, *statements: str) -> None:
    """Run what an operator's shell would, in SQLite's words: on Postgres ``DROP TRIGGER t``
    names its table, and ``REPLACE TRIGGER t`` (either backend) swaps the trigger for one that
    refuses nothing."""
    postgres = is_postgres(database_url(location))
    translated: list[str] = []
    for statement in statements:
        verb, _, name = statement.partition(" TRIGGER ")
        if verb not in ("DROP", "REPLACE") or " " in name:
            translated.append(statement)
            continue
        table = _table_of(name)
        translated.append(f"DROP TRIGGER {name} ON {table}" if postgres else f"DROP TRIGGER {name}")
        if verb == "REPLACE":
            body = (
                "FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()"
                if postgres
                else "BEGIN SELECT 1; END"
            )
            translated.append(f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} {body}")
    execute(location, *translated)


def lifted(location: Location, *statements: str, lift: tuple[str, ...]) -> None:
    """Run ``statements`` with the triggers ``lift`` dropped, then put those triggers back the
    way the schema wrote them (a careful attacker leaves no missing trigger behind)."""
    if is_postgres(database_url(location)):
        by_name = {trigger.name: trigger.sql() for trigger in postgres_schema.TRIGGERS}
    else:
        by_name = expected_triggers()
    shell(location, *(f"DROP TRIGGER {trigger}" for trigger in lift), *statements)
    execute(location, *(by_name[trigger] for trigger in lift))
