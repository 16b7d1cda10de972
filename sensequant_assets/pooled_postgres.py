"""Dagster's Postgres instance storages, keeping one open connection per process.

The stock storages use SQLAlchemy's ``NullPool``: every event opens a new Postgres connection
(a forked backend plus SCRAM authentication, 6-12 ms here) and closes it. A symbol × day
backfill writes two events per partition, so a full NIFTY 100 backfill paid ~38 ms per event
on Postgres, three times the embedded SQLite instance. These subclasses hold a small pool per
process, the same arrangement Dagster applies to the webserver (``optimize_for_webserver``),
and add a liveness check so a connection dropped by the server or a proxy is replaced rather
than failing a run. deploy/dagster.yaml selects them; credentials and config are unchanged.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any

import sqlalchemy.pool as db_pool
from dagster._serdes import ConfigurableClassData
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
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
    pass


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    pass
