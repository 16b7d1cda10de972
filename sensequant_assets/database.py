"""The databases the candidate registry and the Breeze call ledger live in: SQLite or Postgres.

Embedded, each is an SQLite file and a writer takes the file's lock with ``BEGIN IMMEDIATE``.
On a shared volume (Kubernetes ReadWriteMany) SQLite's locks are not safe across hosts, so a
deployment whose Dagster instance is Postgres keeps them in its Postgres database instead, in
the schema :data:`SCHEMA`. There a writer takes a transaction-scoped advisory lock, one key per
concern: the same one-writer-at-a-time rule, so the code above is the same for both.

Both engines run in autocommit mode and this module emits ``BEGIN``/``COMMIT`` itself: the
transaction boundaries are exactly the ones written, on either dialect. Engines use
``NullPool``: a connection never outlives the operation, so nothing is shared across a fork.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.pool import NullPool

SCHEMA = "sensequant"
"""The Postgres schema holding the registry and ledger tables (beside Dagster's own)."""

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
# lock_not_available (lock_timeout), query_canceled, serialization_failure, deadlock_detected
_PG_BUSY = frozenset({"55P03", "57014", "40001", "40P01"})

Location = str | os.PathLike[str] | sa.URL


def database_url(location: Location) -> sa.URL:
    """``location`` as a SQLAlchemy URL: a path is an SQLite file, text with ``://`` a URL."""
    if isinstance(location, sa.URL):
        url = location
    else:
        raw = os.fspath(location)
        if "://" not in raw:
            return sa.URL.create("sqlite", database=str(Path(raw).expanduser().absolute()))
        url = sa.make_url(raw)
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg2")
    if url.get_backend_name() != "sqlite":
        raise ValueError(f"unsupported database {shown(url)}: use an SQLite path or postgresql://")
    return url


def shown(url: sa.URL) -> str:
    """The URL as it may appear in a message or a log: the password masked."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)


def is_postgres(url: sa.URL) -> bool:
    return url.get_backend_name() == "postgresql"


@functools.lru_cache(maxsize=32)
def _engine(rendered: str) -> Engine:
    url = sa.make_url(rendered)
    if is_postgres(url):
        options = {"options": f"-c search_path={SCHEMA}", "connect_timeout": 10}
        return sa.create_engine(
            url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=options
        )
    return sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def engine(url: sa.URL) -> Engine:
    """The process's engine for ``url`` (one per URL; it holds no connection)."""
    return _engine(url.render_as_string(hide_password=False))


def is_busy(exc: BaseException) -> bool:
    """Did another writer hold the lock (SQLite busy/locked, a Postgres lock timeout)?"""
    orig = getattr(exc, "orig", exc)
    pgcode = getattr(orig, "pgcode", None)
    if pgcode is not None:
        return pgcode in _PG_BUSY
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    message = str(orig).lower()
    return "database is locked" in message or "database table is locked" in message


def reason(exc: BaseException) -> str:
    """The driver's own message, first line only (no SQL, parameters or server CONTEXT)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


class Tx:
    """One transaction's connection: text SQL with named parameters, rows as mappings."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"

    def all(self, sql: str, **params: Any) -> list[RowMapping]:
        return list(self.conn.execute(sa.text(sql), params).mappings())

    def one(self, sql: str, **params: Any) -> RowMapping | None:
        return self.conn.execute(sa.text(sql), params).mappings().first()

    def scalar(self, sql: str, **params: Any) -> Any:
        return self.conn.execute(sa.text(sql), params).scalar()

    def run(self, sql: str, **params: Any) -> None:
        self.conn.execute(sa.text(sql), params)

    def ddl(self, sql: str) -> None:
        """A statement with no parameters, sent as written (colons and all)."""
        self.conn.exec_driver_sql(sql)

    def insert(self, table: str, values: Mapping[str, Any]) -> None:
        names = ", ".join(values)
        marks = ", ".join(f":{name}" for name in values)
        self.run(f"INSERT INTO {table} ({names}) VALUES ({marks})", **values)


def _begin(tx: Tx, *, write: bool, lock_key: int, timeout: float) -> None:
    if not tx.postgres:
        tx.ddl(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        tx.ddl("PRAGMA foreign_keys = ON")
        tx.ddl("PRAGMA synchronous = FULL")
        tx.ddl("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
        return
    if not write:
        tx.ddl("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one view, like SQLite's
        return
    # READ COMMITTED: each statement after the lock sees every writer that committed before it.
    tx.ddl("BEGIN ISOLATION LEVEL READ COMMITTED")
    tx.ddl(f"SET LOCAL lock_timeout = {max(int(timeout * 1000), 1)}")
    tx.run("SELECT pg_advisory_xact_lock(:key)", key=lock_key)


@contextmanager
def transaction(url: sa.URL, *, write: bool, lock_key: int, timeout: float) -> Iterator[Tx]:
    """A transaction on ``url``: a writer holds the concern's one write lock (``lock_key``, the
    advisory lock on Postgres; SQLite's file lock) until it commits; a reader sees one
    snapshot and changes nothing."""
    with engine(url).connect() as conn:
        tx = Tx(conn)
        _begin(tx, write=write, lock_key=lock_key, timeout=timeout)
        try:
            yield tx
            tx.ddl("COMMIT" if write else "ROLLBACK")
        except BaseException:
            with suppress(sa.exc.DBAPIError):  # closing the connection rolls back anyway
                tx.ddl("ROLLBACK")
            raise


def create_schema(tx: Tx) -> None:
    """On Postgres, the schema the tables live in (call with the write lock held)."""
    if tx.postgres:
        tx.ddl(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
