"""The registry's SQLite schema, and the migrations that bring an older file up to date.

``PRAGMA user_version`` holds the schema version. ``MIGRATIONS[n]`` takes a file from version
``n`` to ``n + 1`` (a new file runs them all), inside the opener's write transaction so two
processes opening an old file migrate it once. A Postgres registry is created at the current
version (:mod:`.postgres_schema`), under the same lock. A migration only adds: a file stays
readable by every later version. A step is an SQL statement or, where SQL cannot do it
(hashing), a function of the transaction.

Migrating only ever runs on an older file, so a trigger dropped from a current one is not put
back here: :func:`trigger_problems` reports it and the registry refuses to deploy (someone who
could drop it could also have edited what it protected).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

import sqlalchemy as sa

from sensequant_assets.database import Tx, create_schema, engine, is_postgres, shown
from sensequant_assets.registry import postgres_schema
from sensequant_assets.registry.chain import CHAINED_TABLES, HASH_COLUMN, backfill
from sensequant_assets.registry.dialects import schema_version
from sensequant_assets.registry.errors import RegistryError
from sensequant_assets.registry.lifecycle import DEPLOYED, RETIRED, STAGES, STATUSES

Step = str | Callable[[Tx], None]
T = TypeVar("T")


class Begin(Protocol):
    def __call__(self, *, write: bool) -> AbstractContextManager[Tx]: ...


def _in_list(values: Iterable[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


_STATUS_SQL = _in_list(STATUSES)
_STAGE_SQL = _in_list(STAGES)


def _append_only(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()}
            BEFORE {verb} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: rows cannot be {done}'); END"""
        for verb, done in (("UPDATE", "updated"), ("DELETE", "deleted"))
    ]


# Version 1: runs, their audit log and deployments. Never edited: later versions migrate it.
_V1: tuple[str, ...] = (
    f"""CREATE TABLE IF NOT EXISTS candidate_runs (
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id           TEXT NOT NULL UNIQUE CHECK (length(trim(run_id)) > 0),
        status           TEXT NOT NULL CHECK (status IN ({_STATUS_SQL})),
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL,
        candidate_dir    TEXT,
        audit_dir        TEXT,
        symbols          TEXT NOT NULL DEFAULT '[]',
        start_date       TEXT,
        end_date         TEXT,
        recommendation   TEXT,
        score            REAL,
        metrics          TEXT NOT NULL DEFAULT '{{}}',
        dagster_run_id   TEXT,
        dryrun           INTEGER NOT NULL DEFAULT 0 CHECK (dryrun IN (0, 1)),
        recorded_by      TEXT NOT NULL,
        approved_by      TEXT,
        approved_at      TEXT,
        rejected_by      TEXT,
        rejected_at      TEXT,
        rejection_reason TEXT,
        error            TEXT,
        CHECK (NOT (dryrun = 1 AND status IN ('{DEPLOYED}', '{RETIRED}')))
    )""",
    """CREATE INDEX IF NOT EXISTS candidate_runs_by_created
        ON candidate_runs (created_at, seq)""",
    """CREATE INDEX IF NOT EXISTS candidate_runs_by_status
        ON candidate_runs (status, created_at, seq)""",
    # At most one run is live in production at any time.
    f"""CREATE UNIQUE INDEX IF NOT EXISTS candidate_runs_one_deployed
        ON candidate_runs (status) WHERE status = '{DEPLOYED}'""",
    """CREATE TRIGGER IF NOT EXISTS candidate_runs_no_delete
        BEFORE DELETE ON candidate_runs
        BEGIN SELECT RAISE(ABORT, 'candidate_runs rows cannot be deleted'); END""",
    """CREATE TRIGGER IF NOT EXISTS candidate_runs_fixed_id
        BEFORE UPDATE OF run_id ON candidate_runs WHEN NEW.run_id IS NOT OLD.run_id
        BEGIN SELECT RAISE(ABORT, 'a candidate run id cannot change'); END""",
    f"""CREATE TABLE IF NOT EXISTS status_changes (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id      TEXT NOT NULL REFERENCES candidate_runs (run_id),
        from_status TEXT CHECK (from_status IS NULL OR from_status IN ({_STATUS_SQL})),
        to_status   TEXT NOT NULL CHECK (to_status IN ({_STATUS_SQL})),
        changed_by  TEXT NOT NULL CHECK (length(trim(changed_by)) > 0),
        changed_at  TEXT NOT NULL,
        note        TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS status_changes_by_run ON status_changes (run_id, id)",
    *_append_only("status_changes"),
    f"""CREATE TABLE IF NOT EXISTS deployments (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id          TEXT NOT NULL REFERENCES candidate_runs (run_id),
        stage           TEXT NOT NULL CHECK (stage IN ({_STAGE_SQL})),
        action          TEXT NOT NULL CHECK (action IN ('deploy', 'rollback')),
        deployed_by     TEXT NOT NULL CHECK (length(trim(deployed_by)) > 0),
        deployed_at     TEXT NOT NULL,
        replaced_run_id TEXT REFERENCES candidate_runs (run_id),
        -- the deployment a rollback of this one restores (NULL: nothing to roll back to)
        rollback_to     INTEGER REFERENCES deployments (id)
    )""",
    "CREATE INDEX IF NOT EXISTS deployments_by_stage ON deployments (stage, id)",
    *_append_only("deployments"),
)

# Version 2: an approval binds the SHA-256 of the manifest and briefing it approved
# (``approved_evidence`` on the run, ``evidence`` on the audit-log row); once set, never changed.
_V2: tuple[str, ...] = (
    "ALTER TABLE candidate_runs ADD COLUMN approved_evidence TEXT",
    "ALTER TABLE status_changes ADD COLUMN evidence TEXT",
    """CREATE TRIGGER IF NOT EXISTS candidate_runs_fixed_evidence
        BEFORE UPDATE OF approved_evidence ON candidate_runs
        WHEN OLD.approved_evidence IS NOT NULL
            AND NEW.approved_evidence IS NOT OLD.approved_evidence
        BEGIN SELECT RAISE(ABORT, 'the evidence an approval bound cannot change'); END""",
)


def _chain_existing_rows(tx: Tx) -> None:
    """Hash the rows already there: lift the no-update triggers for it, then restore them."""
    for table in CHAINED_TABLES:
        tx.ddl(f"DROP TRIGGER {table}_no_update")
    backfill(tx)
    for table in CHAINED_TABLES:
        for statement in _append_only(table):
            tx.ddl(statement)


# Version 3: the audit log and the deployments are hash-chained (``registry.chain``); a row
# inserted without its hash (by hand, not by the registry) is refused.
_V3: tuple[Step, ...] = (
    *(f"ALTER TABLE {table} ADD COLUMN {HASH_COLUMN} TEXT" for table in CHAINED_TABLES),
    _chain_existing_rows,
    *(
        f"""CREATE TRIGGER IF NOT EXISTS {table}_chained
            BEFORE INSERT ON {table} WHEN NEW.{HASH_COLUMN} IS NULL
            BEGIN SELECT RAISE(ABORT, '{table} rows are appended by the registry, hashed'); END"""
        for table in CHAINED_TABLES
    ),
)

# Version 4: deliberate approvals and owned candidate ids. A run records where its training
# data came from (``data_source``; ``synthetic`` once it is not known to be real data, never
# cleared) and never goes to production if synthetic; an approval records the OS user and
# host, and the reason for approving against the gate; a candidate id is reserved once, by
# one owner (``registry.reservation``).
_V4: tuple[Step, ...] = (
    "ALTER TABLE candidate_runs ADD COLUMN data_source TEXT",
    """ALTER TABLE candidate_runs ADD COLUMN synthetic INTEGER NOT NULL DEFAULT 0
        CHECK (synthetic IN (0, 1))""",
    "ALTER TABLE candidate_runs ADD COLUMN approved_os_user TEXT",
    "ALTER TABLE candidate_runs ADD COLUMN approved_host TEXT",
    "ALTER TABLE candidate_runs ADD COLUMN gate_override_reason TEXT",
    """CREATE TRIGGER IF NOT EXISTS candidate_runs_synthetic_stays
        BEFORE UPDATE OF synthetic ON candidate_runs WHEN OLD.synthetic = 1 AND NEW.synthetic = 0
        BEGIN SELECT RAISE(ABORT, 'a candidate trained on synthetic data stays synthetic'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS candidate_runs_synthetic_never_production
        BEFORE UPDATE OF status, synthetic ON candidate_runs
        WHEN NEW.synthetic = 1 AND NEW.status IN ('{DEPLOYED}', '{RETIRED}')
        BEGIN SELECT RAISE(ABORT, 'a synthetic-data candidate is never deployed to production');
        END""",
    """CREATE TABLE IF NOT EXISTS candidate_reservations (
        candidate_id TEXT PRIMARY KEY CHECK (length(trim(candidate_id)) > 0),
        owner        TEXT NOT NULL CHECK (length(trim(owner)) > 0),
        reserved_at  TEXT NOT NULL
    )""",
    *_append_only("candidate_reservations"),
)

MIGRATIONS: tuple[tuple[Step, ...], ...] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION = len(MIGRATIONS)

_TRIGGER_NAME = re.compile(r"CREATE TRIGGER IF NOT EXISTS (\w+)")


def _normalized(sql: str) -> str:
    return " ".join(sql.replace("IF NOT EXISTS ", "").split())


def expected_triggers() -> dict[str, str]:
    """Every trigger the current schema defines, by name: its SQL as SQLite stores it."""
    return {
        match.group(1): _normalized(step)
        for migration in MIGRATIONS
        for step in migration
        if isinstance(step, str) and (match := _TRIGGER_NAME.search(step))
    }


def trigger_problems(tx: Tx) -> list[str]:
    """The schema's triggers that are missing or were replaced by different ones."""
    if tx.postgres:
        return postgres_schema.trigger_problems(tx)
    present = {
        row["name"]: _normalized(row["sql"] or "")
        for row in tx.all("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
    }
    problems = []
    for name, sql in expected_triggers().items():
        if name not in present:
            problems.append(f"trigger {name} is missing (dropped)")
        elif present[name] != sql:
            problems.append(f"trigger {name} was replaced by a different one")
    return problems


def migrate(tx: Tx) -> None:
    """Create or migrate the schema of the registry open on ``tx`` (holding the write lock) to
    :data:`SCHEMA_VERSION`. The caller refuses a registry newer than that first."""
    version = schema_version(tx)  # another process may have migrated it meanwhile
    if version >= SCHEMA_VERSION:
        return
    if tx.postgres:
        if version:
            raise RegistryError(f"no migration from Postgres registry schema {version}")
        create_schema(tx)
        postgres_schema.create(tx, SCHEMA_VERSION)
        return
    for migration in MIGRATIONS[version:]:
        for step in migration:
            if callable(step):
                step(tx)
            else:
                tx.ddl(step)
    tx.ddl(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _use_wal(url: sa.URL) -> None:
    """Persistent in the file, and only settable outside a transaction; a filesystem without
    WAL support keeps the old mode, which is slower under contention but just as safe."""
    with engine(url).connect() as conn:
        if str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower() != "wal":
            conn.exec_driver_sql("PRAGMA journal_mode = WAL")


def ensure_schema(url: sa.URL, begin: Begin) -> None:
    """Bring the registry at ``url`` to the current schema (creating it), in transactions from
    ``begin``; refuse one newer than this code."""
    with begin(write=False) as tx:
        version = schema_version(tx)
    if version > SCHEMA_VERSION:
        raise RegistryError(
            f"the registry {shown(url)} has schema version {version}, newer than this code "
            f"understands ({SCHEMA_VERSION}); upgrade sensequant_assets"
        )
    if version == SCHEMA_VERSION:
        return
    if not is_postgres(url):
        _use_wal(url)
    with begin(write=True) as tx:
        migrate(tx)


def empty_registry(op: Callable[[Tx], T]) -> T:
    """``op`` run on an empty registry in memory: what reading one not created yet shows."""
    memory = sa.create_engine("sqlite://", isolation_level="AUTOCOMMIT")
    try:
        with memory.connect() as conn:
            tx = Tx(conn)
            tx.ddl("BEGIN")
            migrate(tx)
            return op(tx)
    finally:
        memory.dispose()
