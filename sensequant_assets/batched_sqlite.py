"""Dagster's embedded SQLite event log storage, with open connections and one transaction per batch.

Dagster 1.13's ``SqliteEventLogStorage`` (``dagster/_core/storage/event_log/sqlite/
sqlite_event_log.py``) creates a new engine with ``NullPool`` for every read and write
(``_connect``): each event opens the run's shard and ``index.db``, commits and closes them, and
closing the last connection of a WAL database checkpoints it. It does not implement
``store_event_batch`` either, so ``DAGSTER_EVENT_BATCH_SIZE`` changes nothing on it (the base
class stores a batch one event at a time). With two events per partition (planned and
materialized) that was ~13 ms of bookkeeping per ``ohlcv_daily`` partition.

:class:`BatchedSqliteEventLogStorage` writes the same rows to the same files:

- a batch (``sensequant_assets.event_batches``) in one transaction per file: the run shard's
  events, then the index's events, their indexed tags and the asset's latest-event row;
- on one kept connection per file (``index.db`` and the last few run shards). The databases
  are in WAL mode already (Dagster sets ``journal_mode=WAL`` when it creates each file).
  ``synchronous`` sets the connections' ``PRAGMA synchronous``: ``FULL`` (SQLite's default,
  an fsync per commit) or ``NORMAL`` (SQLite's documented setting for WAL: a power cut or OS
  crash may lose the last transactions but never corrupts the file). With batches a run
  commits a few dozen times, and NORMAL measured no faster (docs/benchmarks.md).

Every partition still has its own planned and materialization event, so Dagit's partition
status (materialized, failed, in progress), "missing and failed" backfills, ``dagster asset
wipe`` and the sensors read what they read before. Select it in ``dagster.yaml``; without
``base_dir`` the files stay where the default storage keeps them
(``$DAGSTER_HOME/history/runs/``), so an existing instance keeps its history::

    event_log_storage:
      module: sensequant_assets.batched_sqlite
      class: BatchedSqliteEventLogStorage
      config:            # optional
        synchronous: FULL
"""

from __future__ import annotations

import os
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster._check as check
import sqlalchemy as db
from dagster import Enum, EnumValue, Field, StringSource
from dagster._core.events import ASSET_CHECK_EVENTS, BATCH_WRITABLE_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine

from sensequant_assets.event_batches import (
    asset_event_runs,
    enable_event_batches,
    last_of_each_kind,
)

if TYPE_CHECKING:
    from dagster._core.instance import DagsterInstance

SYNCHRONOUS = ("FULL", "NORMAL")  # SQLite's default, and the one WAL makes safe from corruption
# run shards whose connection a process keeps open besides index.db's (a run writes one)
OPEN_RUN_SHARDS = 4


def event_log_directory(instance_root: str) -> str:
    """Where Dagster's default SQLite storage keeps an instance's event logs."""
    return os.path.join(instance_root, "history", "runs", "")


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with kept connections and a ``store_event_batch``.

    ``base_dir`` may be left out: the storage then takes the instance's own event-log
    directory when Dagster registers the instance, before any event is read or written.
    """

    def __init__(
        self,
        base_dir: str | None = None,
        inst_data: ConfigurableClassData | None = None,
        synchronous: str = "FULL",
    ):
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS}, not {synchronous!r}")
        enable_event_batches()
        self._synchronous = synchronous
        self._pending_inst_data = inst_data
        self._engines: OrderedDict[str, tuple[Engine, tuple[int, int] | None]] = OrderedDict()
        me = weakref.ref(self)
        # a forked child must not use the parent's SQLite connections
        os.register_at_fork(after_in_child=lambda: (s := me()) and s._forget_engines(close=False))
        if base_dir is None:
            # SqliteEventLogStorage.__init__ runs in register_instance, once the directory is
            # known; dispose() may come first
            self._obs = None
            self._inst_data = inst_data
            return
        super().__init__(base_dir, inst_data=inst_data)

    @property
    def _deferred(self) -> bool:
        return not hasattr(self, "_base_dir")

    def register_instance(self, instance: DagsterInstance) -> None:
        if self._deferred:
            super().__init__(
                event_log_directory(instance.root_directory), inst_data=self._pending_inst_data
            )
        super().register_instance(instance)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": Field(StringSource, is_required=False),
            "synchronous": Field(
                Enum("SqliteSynchronous", [EnumValue(v) for v in SYNCHRONOUS]),
                default_value="FULL",
                is_required=False,
            ),
        }

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        return cls(
            base_dir=config_value.get("base_dir"),
            inst_data=inst_data,
            synchronous=config_value.get("synchronous", "FULL"),
        )

    # --- connections: one kept open per database file ----------------------------------------

    def _forget_engines(self, close: bool) -> None:
        for engine, _ in self._engines.values():
            engine.dispose(close=close)
        self._engines = OrderedDict()

    def _new_engine(self, shard: str, pooled: bool) -> Engine:
        if not pooled:
            return db.create_engine(
                self.conn_string_for_shard(shard),
                poolclass=db.pool.NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
        engine = db.create_engine(
            self.conn_string_for_shard(shard),
            poolclass=db.pool.QueuePool,
            pool_size=1,
            max_overflow=0,  # one connection per file: every use holds self._db_lock
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        pragma = f"PRAGMA synchronous={self._synchronous}"
        db.event.listen(engine, "connect", lambda dbapi, _record: dbapi.execute(pragma))
        return engine

    def _engine(self, shard: str) -> Engine:
        """The kept engine of ``shard``'s file, created (with its tables) on first use.

        A file deleted or replaced since (``wipe``, another process) gets a new engine, so a
        kept connection never writes into an unlinked file.
        """
        check.str_param(shard, "shard")
        path = self.path_for_shard(shard)
        identity = _file_identity(path)
        kept = self._engines.get(shard)
        if kept is not None and identity is not None and kept[1] == identity:
            self._engines.move_to_end(shard)
            return kept[0]
        if kept is not None:
            self._engines.pop(shard)[0].dispose()
        if shard not in self._initialized_dbs or identity is None:
            setup = self._new_engine(shard, pooled=False)  # _initdb holds two connections
            try:
                self._initdb(setup)
            finally:
                setup.dispose()
            self._initialized_dbs.add(shard)
        engine = self._new_engine(shard, pooled=True)
        self._engines[shard] = (engine, _file_identity(path))
        runs = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in runs[: max(0, len(runs) - OPEN_RUN_SHARDS)]:
            self._engines.pop(name)[0].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """As ``SqliteEventLogStorage._connect``: one transaction under the storage's lock, on
        the kept connection instead of a new engine per call."""
        with self._db_lock, self._engine(shard).connect() as conn, conn.begin():
            yield conn

    def wipe(self) -> None:
        with self._db_lock:
            self._forget_engines(close=True)
        super().wipe()

    def dispose(self) -> None:
        if not self._deferred:
            with self._db_lock:
                self._forget_engines(close=True)
        super().dispose()

    # --- batches -------------------------------------------------------------------------------

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not events:
            return
        run_ids = {event.run_id for event in events}
        if len(run_ids) != 1 or not all(
            event.is_dagster_event and event.dagster_event_type in BATCH_WRITABLE_EVENTS
            for event in events
        ):
            super().store_event_batch(events)  # one by one, as the stock storage does
            return
        rows = [self._event_to_row(event) for event in events]  # serialized once, for both files
        # If this fails nothing is stored, and Dagster stores the batch again one by one. Like
        # the stock store_event, the run shard and the index are two transactions.
        with self.run_connection(run_ids.pop()) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        for is_asset, start, end in asset_event_runs(events):
            if is_asset:
                self._index_asset_events(events[start:end], rows[start:end])
            else:
                for event, row in zip(events[start:end], rows[start:end], strict=True):
                    self._index_check_event(event, row)

    def _index_asset_events(self, events: Sequence[EventLogEntry], rows: Sequence[dict]) -> None:
        """The index rows ``store_event`` writes for asset events, in one transaction."""
        table = SqlEventLogStorageTable
        insert = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        with self.index_connection() as conn:
            ids = [int(row[0]) for row in conn.execute(insert, list(rows))]
            self._store_asset_event_tags(conn, events, ids)
            for position in last_of_each_kind(events):
                self._store_asset_event(conn, events[position], ids[position])

    def _index_check_event(self, event: EventLogEntry, row: dict) -> None:
        """An asset check's planned event, indexed as ``SqliteEventLogStorage.store_event`` does."""
        if event.dagster_event_type not in ASSET_CHECK_EVENTS:
            return
        with self.index_connection() as conn:
            event_id = conn.execute(SqlEventLogStorageTable.insert(), row).inserted_primary_key[0]
        self.store_asset_check_event(event, event_id)
