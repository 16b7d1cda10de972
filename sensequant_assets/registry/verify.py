"""Is the registry still what the registry wrote? Checked before every deploy and rollback.

Someone with write access to the SQLite file or the Postgres tables can drop the append-only
triggers and edit rows. Four checks catch that, each a line naming the first thing wrong:

- every trigger of the schema exists, with its original SQL (a dropped trigger is tampering,
  even if nothing was edited yet: it is not silently put back);
- the hash chains of ``status_changes`` and ``deployments`` recompute (:mod:`.chain`);
- every candidate's status is the last status its audit log records, and an approval's bound
  digests are the ones its audit-log row recorded (a raw ``UPDATE candidate_runs`` shows);
- the run production's latest deployment names is the one run marked ``deployed``.

What it cannot catch: a whole file rewritten consistently (every chain recomputed), or the file
replaced by an older copy of itself. Catching those needs the chain heads kept somewhere the
attacker cannot write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sensequant_assets.database import Tx
from sensequant_assets.registry.chain import CHAINED_TABLES, ChainCheck, check_chain
from sensequant_assets.registry.errors import TamperedRegistryError
from sensequant_assets.registry.lifecycle import APPROVED, DEPLOYED, PRODUCTION
from sensequant_assets.registry.schema import trigger_problems

_LAST_LOGGED = f"""
    SELECT r.run_id, r.status, r.approved_evidence, last.to_status AS logged,
        (SELECT a.evidence FROM status_changes a WHERE a.run_id = r.run_id
            AND a.to_status = '{APPROVED}'
            AND (a.from_status IS NULL OR a.from_status <> '{APPROVED}')
            ORDER BY a.id DESC LIMIT 1) AS logged_evidence
    FROM candidate_runs r
    LEFT JOIN status_changes last
        ON last.id = (SELECT max(s.id) FROM status_changes s WHERE s.run_id = r.run_id)
    ORDER BY r.seq"""


@dataclass(frozen=True)
class RegistryCheck:
    """What :func:`verify_registry` found: row counts, and every problem (none: intact)."""

    candidates: int
    chains: tuple[ChainCheck, ...]
    problems: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        counts = ", ".join(f"{check.rows} {check.table} rows" for check in self.chains)
        if self.intact:
            return f"registry intact: {self.candidates} candidates; chains verified: {counts}"
        more = len(self.problems) - 1
        return (
            f"registry changed outside sensequant: {self.problems[0]}"
            + (f" (and {more} more)" if more else "")
            + f"; verified before it: {counts}"
        )

    def require(self, action: str) -> None:
        """Raise :class:`TamperedRegistryError` (one line) unless the registry is intact."""
        if not self.intact:
            raise TamperedRegistryError(
                f"cannot {action}: {self.summary()}; nothing was changed (see `sensequant "
                "candidates verify`)"
            )


def _status_problems(tx: Tx) -> tuple[int, list[str]]:
    rows = tx.all(_LAST_LOGGED)
    problems = []
    for row in rows:
        run_id, status, logged = row["run_id"], row["status"], row["logged"]
        evidence, logged_evidence = row["approved_evidence"], row["logged_evidence"]
        if logged is None:
            problems.append(f"candidate {run_id} has no audit-log row")
        elif status != logged:
            problems.append(f"candidate {run_id} is {status} but its audit log last says {logged}")
        elif json.loads(evidence or "{}") != json.loads(logged_evidence or "{}"):
            problems.append(f"the digests {run_id}'s approval binds differ from its audit log")
    return len(rows), problems


def _deployment_problems(tx: Tx) -> list[str]:
    live = tx.scalar(
        "SELECT run_id FROM deployments WHERE stage = :stage ORDER BY id DESC LIMIT 1",
        stage=PRODUCTION,
    )
    marked = [row["run_id"] for row in tx.all(
        "SELECT run_id FROM candidate_runs WHERE status = :status", status=DEPLOYED
    )]  # fmt: skip
    expected = [] if live is None else [live]
    if marked == expected:
        return []
    named = live if live is not None else "nothing"
    marked_text = ", ".join(marked) or "no run"
    return [f"production's last deployment is {named} but {marked_text} is marked deployed"]


def verify_registry(tx: Tx) -> RegistryCheck:
    """Run every check on the registry open on ``conn`` (inside a transaction, for one view)."""
    problems = trigger_problems(tx)
    chains = tuple(check_chain(tx, table) for table in CHAINED_TABLES)
    problems += [check.problem for check in chains if check.problem]
    candidates, status_problems = _status_problems(tx)
    problems += status_problems + _deployment_problems(tx)
    return RegistryCheck(candidates, chains, tuple(problems))
