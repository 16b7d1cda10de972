"""Where the registry is, and how one operation on it runs: locked, committed, retried while
another writer holds the lock.

The database is an SQLite file (embedded) or the deployment's Postgres database
(:mod:`sensequant_assets.database`); the code is the same on both. Concurrency: several
processes (a Dagster sensor, a reviewer at the CLI) may write at once. Each operation opens its
own connection (nothing survives a fork), each write holds the registry's one write lock
(SQLite's ``BEGIN IMMEDIATE``, a Postgres advisory lock) until it commits, so the check ("is it
ready for review?") and the act ("approve it") cannot interleave with another writer, and a
writer that finds it held waits and then retries the whole operation until ``timeout`` runs
out. Only then does it raise :class:`RegistryBusyError`; "database is locked" or a lock
timeout never reaches the caller. :class:`~sensequant_assets.registry.manager.StateManager`
builds every operation on :class:`RegistryAccess`; what happens inside one is its own.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.database import (
    Location,
    Tx,
    database_url,
    is_busy,
    is_postgres,
    reason,
    shown,
    transaction,
)
from sensequant_assets.registry.dialects import schema_version
from sensequant_assets.registry.errors import RegistryBusyError, RegistryError
from sensequant_assets.registry.schema import empty_registry, ensure_schema

DEFAULT_TIMEOUT_SECONDS = 30.0
LOCK_KEY = 0x5E45_4E47
"""The Postgres advisory lock every registry writer holds (the call ledger's is another)."""

T = TypeVar("T")
Op = Callable[[Tx], T]


def _configured_registry() -> Location:
    """The settings' registry. The settings (pydantic) are imported on this first use only:
    importing the registry stays light, and reads the environment of the call, not the import."""
    from sensequant_assets.settings import load_settings

    return ArtifactLayout.of(load_settings()).registry


class RegistryAccess:
    """The registry at ``location`` (see :class:`~sensequant_assets.registry.StateManager`)
    and its transactions: ``_write`` and ``_read`` run one operation each, as a whole."""

    def __init__(
        self,
        location: Location | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        read_only: bool = False,
    ):
        if location is None:
            location = _configured_registry()
        raw = location if isinstance(location, sa.URL) else os.fspath(location)
        if not raw or raw == ":memory:" or (isinstance(raw, str) and raw.startswith("file:")):
            raise RegistryError(f"the registry needs a file path or a database URL, got {raw!r}")
        if timeout <= 0:
            raise RegistryError(f"timeout must be positive, got {timeout!r}")
        try:
            self._url = database_url(location)
        except (ValueError, sa.exc.ArgumentError) as exc:
            raise RegistryError(
                f"the registry needs a file path or a database URL: {exc}"
            ) from None
        self._timeout = float(timeout)
        self._read_only = read_only
        self._absent = False
        if read_only:
            self._absent = self._retrying(self._not_created)
            return
        if not is_postgres(self._url):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._retrying(lambda: ensure_schema(self._url, self._locked))

    @property
    def path(self) -> Path:
        """The SQLite file (:class:`RegistryError` for a Postgres registry)."""
        if is_postgres(self._url):
            raise RegistryError(f"the registry {self.where} is a Postgres database, not a file")
        return Path(str(self._url.database))

    @property
    def where(self) -> str:
        """The registry as a message may name it: the file, or the URL without its password."""
        return shown(self._url)

    def _locked(self, *, write: bool) -> AbstractContextManager[Tx]:
        return transaction(self._url, write=write, lock_key=LOCK_KEY, timeout=self._timeout)

    def _not_created(self) -> bool:
        """Is there no registry yet (no file, or an empty database)?"""
        if not is_postgres(self._url) and not self.path.is_file():
            return True
        with self._locked(write=False) as tx:
            if schema_version(tx) == 0:
                return True
        ensure_schema(self._url, self._locked)  # an older file is migrated, a newer refused
        return False

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` again while another writer holds the lock, up to the timeout."""
        deadline = time.monotonic() + self._timeout
        delay = 0.005
        while True:
            try:
                return attempt()
            except sa.exc.DBAPIError as exc:
                if not is_busy(exc):
                    raise RegistryError(f"registry {self.where}: {reason(exc)}") from exc
                if time.monotonic() >= deadline:
                    raise RegistryBusyError(
                        f"the registry {self.where} stayed busy for more than "
                        f"{self._timeout:g} s (another process holds a write transaction); "
                        "nothing was changed, try again"
                    ) from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.25)

    def _transaction(self, op: Op[T], *, write: bool) -> T:
        def attempt() -> T:
            with self._locked(write=write) as tx:
                return op(tx)

        return self._retrying(attempt)

    def _write(self, op: Op[T]) -> T:
        if self._read_only:
            raise RegistryError(f"the registry {self.where} was opened read-only")
        return self._transaction(op, write=True)

    def _read(self, op: Op[T]) -> T:
        if self._absent:
            return empty_registry(op)
        return self._transaction(op, write=False)
