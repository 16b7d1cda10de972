"""Bench-only: Dagster's stock SQLite event log storage with ``PRAGMA synchronous=NORMAL``.

Dagster 1.13 has no setting for per-connection pragmas: ``SqliteEventLogStorage._connect``
creates a new engine (``NullPool``) for every read and write, and ``_initdb`` sets only
``journal_mode=WAL`` (persistent in the file), when it creates a database. The only way to
measure ``synchronous=NORMAL`` is to override that private method, as this class does; it is
a measurement, not something the project configures (bench/bench_bookkeeping.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool


def _synchronous_normal(dbapi_connection: object, _record: object) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # type: ignore[attr-defined]


class SynchronousNormalSqliteEventLogStorage(SqliteEventLogStorage):
    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # SqliteEventLogStorage._connect, with the pragma before the transaction begins
        with self._db_lock:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            event.listen(engine, "connect", _synchronous_normal)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn
            engine.dispose()

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # the stock one returns its own class
        return cls(inst_data=inst_data, **config_value)
