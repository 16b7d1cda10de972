"""The registry's schema on Postgres: the same tables, checks and append-only rules as SQLite's.

A Postgres registry is created at the current :data:`~.schema.SCHEMA_VERSION` in one locked
transaction (no Postgres registry predates it); a later schema version adds its step here as
well as to the SQLite migrations. SQLite's ``RAISE(ABORT)`` triggers become row triggers
calling one plpgsql function with the message, plus statement triggers refusing ``TRUNCATE``
(which skips row triggers). What verification compares them with is in :func:`trigger_problems`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sensequant_assets.database import SCHEMA, Tx
from sensequant_assets.registry.chain import CHAINED_TABLES, HASH_COLUMN
from sensequant_assets.registry.dialects import VERSION_TABLE, counter
from sensequant_assets.registry.lifecycle import DEPLOYED, RETIRED, STAGES, STATUSES

REFUSE = "registry_refuse"
_REFUSE_BODY = """
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_ARGV[0], ERRCODE = 'integrity_constraint_violation';
END
"""
APPEND_ONLY = ("status_changes", "deployments", "candidate_reservations")


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


@dataclass(frozen=True)
class Trigger:
    """One refusal: ``event`` on ``table`` (row-level unless TRUNCATE), when ``when`` holds."""

    name: str
    table: str
    event: str
    message: str
    when: str | None = None

    def sql(self) -> str:
        """As ``pg_get_triggerdef`` prints it (less the table's schema), so a stored trigger
        compares equal to it."""
        level = "STATEMENT" if self.event == "TRUNCATE" else "ROW"
        when = f" WHEN ({self.when})" if self.when else ""
        message = self.message.replace("'", "''")
        return (
            f"CREATE TRIGGER {self.name} BEFORE {self.event} ON {self.table} FOR EACH {level}"
            f"{when} EXECUTE FUNCTION {REFUSE}('{message}')"
        )


def _append_only(table: str) -> list[Trigger]:
    updated = f"{table} is append-only: rows cannot be updated"
    deleted = f"{table} is append-only: rows cannot be deleted"
    return [
        Trigger(f"{table}_no_update", table, "UPDATE", updated),
        Trigger(f"{table}_no_delete", table, "DELETE", deleted),
        Trigger(f"{table}_no_truncate", table, "TRUNCATE", deleted),
    ]


TRIGGERS: tuple[Trigger, ...] = (
    Trigger("candidate_runs_no_delete", "candidate_runs", "DELETE",
            "candidate_runs rows cannot be deleted"),
    Trigger("candidate_runs_no_truncate", "candidate_runs", "TRUNCATE",
            "candidate_runs rows cannot be deleted"),
    Trigger("candidate_runs_fixed_id", "candidate_runs", "UPDATE OF run_id",
            "a candidate run id cannot change", "(new.run_id IS DISTINCT FROM old.run_id)"),
    Trigger("candidate_runs_fixed_evidence", "candidate_runs", "UPDATE OF approved_evidence",
            "the evidence an approval bound cannot change",
            "((old.approved_evidence IS NOT NULL) AND "
            "(new.approved_evidence IS DISTINCT FROM old.approved_evidence))"),
    Trigger("candidate_runs_synthetic_stays", "candidate_runs", "UPDATE OF synthetic",
            "a candidate trained on synthetic data stays synthetic",
            "((old.synthetic = 1) AND (new.synthetic = 0))"),
    Trigger("candidate_runs_synthetic_never_production", "candidate_runs",
            "UPDATE OF status, synthetic",
            "a synthetic-data candidate is never deployed to production",
            f"((new.synthetic = 1) AND (new.status = ANY (ARRAY['{DEPLOYED}'::text, "
            f"'{RETIRED}'::text])))"),
    *(trigger for table in APPEND_ONLY for trigger in _append_only(table)),
    *(Trigger(f"{table}_chained", table, "INSERT",
              f"{table} rows are appended by the registry, hashed",
              f"(new.{HASH_COLUMN} IS NULL)") for table in CHAINED_TABLES),
)  # fmt: skip

_TABLES: tuple[str, ...] = (
    # the highest id each chain ever wrote, and the id of a row inserted without one, as
    # SQLite's AUTOINCREMENT counter
    *(f"CREATE SEQUENCE {counter(table)} MINVALUE 0 START 0" for table in CHAINED_TABLES),
    f"""CREATE TABLE candidate_runs (
        seq              BIGSERIAL PRIMARY KEY,
        run_id           TEXT NOT NULL UNIQUE CHECK (length(trim(run_id)) > 0),
        status           TEXT NOT NULL CHECK (status IN ({_in_list(STATUSES)})),
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL,
        candidate_dir    TEXT,
        audit_dir        TEXT,
        symbols          TEXT NOT NULL DEFAULT '[]',
        start_date       TEXT,
        end_date         TEXT,
        recommendation   TEXT,
        score            DOUBLE PRECISION,
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
        approved_evidence TEXT,
        data_source      TEXT,
        synthetic        INTEGER NOT NULL DEFAULT 0 CHECK (synthetic IN (0, 1)),
        approved_os_user TEXT,
        approved_host    TEXT,
        gate_override_reason TEXT,
        CHECK (NOT (dryrun = 1 AND status IN ('{DEPLOYED}', '{RETIRED}')))
    )""",
    "CREATE INDEX candidate_runs_by_created ON candidate_runs (created_at, seq)",
    "CREATE INDEX candidate_runs_by_status ON candidate_runs (status, created_at, seq)",
    f"""CREATE UNIQUE INDEX candidate_runs_one_deployed
        ON candidate_runs (status) WHERE status = '{DEPLOYED}'""",
    f"""CREATE TABLE status_changes (
        id          BIGINT PRIMARY KEY DEFAULT nextval('{counter("status_changes")}'),
        run_id      TEXT NOT NULL REFERENCES candidate_runs (run_id),
        from_status TEXT CHECK (from_status IS NULL OR from_status IN ({_in_list(STATUSES)})),
        to_status   TEXT NOT NULL CHECK (to_status IN ({_in_list(STATUSES)})),
        changed_by  TEXT NOT NULL CHECK (length(trim(changed_by)) > 0),
        changed_at  TEXT NOT NULL,
        note        TEXT,
        evidence    TEXT,
        {HASH_COLUMN} TEXT
    )""",
    "CREATE INDEX status_changes_by_run ON status_changes (run_id, id)",
    f"""CREATE TABLE deployments (
        id              BIGINT PRIMARY KEY DEFAULT nextval('{counter("deployments")}'),
        run_id          TEXT NOT NULL REFERENCES candidate_runs (run_id),
        stage           TEXT NOT NULL CHECK (stage IN ({_in_list(STAGES)})),
        action          TEXT NOT NULL CHECK (action IN ('deploy', 'rollback')),
        deployed_by     TEXT NOT NULL CHECK (length(trim(deployed_by)) > 0),
        deployed_at     TEXT NOT NULL,
        replaced_run_id TEXT REFERENCES candidate_runs (run_id),
        rollback_to     BIGINT REFERENCES deployments (id),
        {HASH_COLUMN} TEXT
    )""",
    "CREATE INDEX deployments_by_stage ON deployments (stage, id)",
    """CREATE TABLE candidate_reservations (
        candidate_id TEXT PRIMARY KEY CHECK (length(trim(candidate_id)) > 0),
        owner        TEXT NOT NULL CHECK (length(trim(owner)) > 0),
        reserved_at  TEXT NOT NULL
    )""",
)


def create(tx: Tx, version: int) -> None:
    """Create every table, function and trigger at ``version`` (the current one)."""
    for statement in _TABLES:
        tx.ddl(statement)
    tx.ddl(
        f"CREATE FUNCTION {REFUSE}() RETURNS trigger LANGUAGE plpgsql AS $body${_REFUSE_BODY}$body$"
    )
    for trigger in TRIGGERS:
        tx.ddl(trigger.sql())
    tx.ddl(f"CREATE TABLE {VERSION_TABLE} (version INTEGER NOT NULL)")
    tx.run(f"INSERT INTO {VERSION_TABLE} (version) VALUES (:version)", version=version)


def _normalized(sql: str) -> str:
    return " ".join(sql.split())


def trigger_problems(tx: Tx) -> list[str]:
    """The schema's triggers that are missing, disabled or replaced; a replaced function or a
    dropped chain counter."""
    present = {
        row["tgname"]: row
        for row in tx.all(
            "SELECT t.tgname, t.tgenabled, pg_get_triggerdef(t.oid) AS sql FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal"
        )
    }
    problems = []
    body = tx.scalar(
        "SELECT prosrc FROM pg_proc WHERE proname = :name"
        " AND pronamespace = current_schema()::regnamespace",
        name=REFUSE,
    )
    if body is None:
        problems.append(f"function {REFUSE} is missing (dropped)")
    elif _normalized(body) != _normalized(_REFUSE_BODY):
        problems.append(f"function {REFUSE} was replaced by a different one")
    for table in CHAINED_TABLES:
        if not tx.scalar("SELECT to_regclass(:name) IS NOT NULL", name=counter(table)):
            problems.append(f"sequence {counter(table)} is missing (dropped)")
    for trigger in TRIGGERS:
        row = present.get(trigger.name)
        if row is None:
            problems.append(f"trigger {trigger.name} is missing (dropped)")
        elif _normalized(row["sql"]).replace(f" ON {SCHEMA}.", " ON ") != trigger.sql():
            problems.append(f"trigger {trigger.name} was replaced by a different one")
        elif row["tgenabled"] not in ("O", "A"):
            problems.append(f"trigger {trigger.name} is disabled")
    return problems
