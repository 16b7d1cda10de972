"""Dagster's Postgres instance storages, keeping one open connection per process.

The stock storages use SQLAlchemy's ``NullPool``: every event opens a new Postgres connection
(a forked backend plus SCRAM authentication, 6-12 ms here) and closes it. A symbol × day
backfill writes two events per partition, so a full NIFTY 100 backfill paid ~38 ms per event
on Postgres, three times the embedded SQLite instance. These subclasses hold a small pool per
process, the same arrangement Dagster applies to the webserver (``optimize_for_webserver``),
and add a liveness check so a connection dropped by the server or a proxy is replaced rather
than failing a run. deploy/dagster.yaml selects them; credentials and config are unchanged.

The event log storage also stores Dagster's event batches (``sensequant_assets.event_batches``
turns them on) in one transaction each: dagster-postgres 0.29 writes a batch of
materializations as one INSERT but stores a run's planned events (one per partition of a
ranged run) one by one; here both are one INSERT plus the index rows, in one transaction.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy.pool as db_pool
from dagster._core.events import BATCH_WRITABLE_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

from sensequant_assets.event_batches import (
    asset_event_runs,
    enable_event_batches,
    last_of_each_kind,
)

POOL_SIZE = 2
MAX_OVERFLOW = 8
POOL_RECYCLE_SECONDS = 1800


def _pooled(storage: Any) -> None:
    """Swap the storage's NullPool engine for a small pool, safe across ``fork``."""
    storage._engine.dispose()
    storage._engine = create_pg_engine(
        storage.postgres_url,
        storage._token_provider,
        isolation_level="AUTOCOMMIT",
        poolclass=db_pool.QueuePool,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_recycle=POOL_RECYCLE_SECONDS,
        pool_pre_ping=True,
    )
    # a forked child (multiprocess executor) must not reuse the parent's sockets
    engine = weakref.ref(storage._engine)
    os.register_at_fork(after_in_child=lambda: (e := engine()) and e.dispose(close=False))


def _kwargs(inst_data: ConfigurableClassData | None, config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "inst_data": inst_data,
        "postgres_url": pg_url_from_config(config),
        "should_autocreate_tables": config.get("should_autocreate_tables", True),
        "token_provider": get_token_provider_from_config(config),
    }


class _Pooled:
    """Mixin: build the stock storage, then give it a pool; config is the stock schema."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _pooled(self)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> Any:
        return cls(**_kwargs(inst_data, config_value))


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    pass


class PooledPostgresEventLogStorage(_Pooled, PostgresEventLogStorage):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        enable_event_batches()
        super().__init__(*args, **kwargs)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        kinds = {event.get_dagster_event().event_type for event in events}
        if kinds in (
            {DagsterEventType.ASSET_MATERIALIZATION},
            {DagsterEventType.ASSET_OBSERVATION},
        ):
            super().store_event_batch(events)  # dagster-postgres' own single INSERT
            return
        if not kinds <= BATCH_WRITABLE_EVENTS:
            super().store_event_batch(events)  # raises, as dagster-postgres does
            return
        # as dagster-postgres does: an asset failure event is not stored from a batch
        events = [e for e in events if not e.get_dagster_event().is_asset_failed_to_materialize]
        for is_asset, start, end in asset_event_runs(events):
            if is_asset:
                self._store_asset_events(events[start:end])
            else:
                for event in events[start:end]:
                    self.store_event(event)

    def _store_asset_events(self, events: Sequence[EventLogEntry]) -> None:
        """``store_event`` for consecutive asset events: the rows, their indexed tags and the
        assets' latest-event rows, in one transaction (all or nothing)."""
        insert = self.prepare_insert_event_batch(events).returning(SqlEventLogStorageTable.c.id)
        with self.index_transaction() as conn:
            ids = [int(row[0]) for row in conn.execute(insert).fetchall()]
            self._store_asset_event_tags(conn, events, ids)
            for position in last_of_each_kind(events):
                self._store_asset_event(conn, events[position], ids[position])


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    pass
