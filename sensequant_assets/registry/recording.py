"""Recording a candidate run: one checked ``StateManager.record_candidate_run`` call.

Every argument is checked before the registry is touched, so a bad one never leaves a row
behind; the row is then inserted (a new run) or moved along a legal transition with the
fields the call passed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping

from sensequant_assets.database import Tx
from sensequant_assets.registry.arguments import (
    _as_date,
    _as_metrics,
    _as_path,
    _as_score,
    _as_symbols,
    _check_status,
    _require_text,
)
from sensequant_assets.registry.errors import (
    _VERBS,
    IllegalTransitionError,
    RegistryError,
    _either,
)
from sensequant_assets.registry.lifecycle import INITIAL_STATUSES
from sensequant_assets.registry.records import (
    CandidateRun,
    _run_from_row,
)
from sensequant_assets.registry.transitions import (
    append_change,
    fetch_run,
    transition,
)


@dataclass(frozen=True)
class RunRecord:
    """One checked ``record_candidate_run`` call: a new row, or the fields that replace an
    existing run's (those passed; ``None`` and empty ``symbols`` keep the stored ones)."""

    run_id: str
    status: str
    by: str
    fields: dict[str, Any]
    symbols: list[str]
    metrics: dict[str, Any] | None
    dryrun: bool
    synthetic: bool

    @classmethod
    def checked(
        cls,
        run_id: str,
        status: str,
        recorded_by: str,
        *,
        candidate_dir: str | os.PathLike[str] | None,
        audit_dir: str | os.PathLike[str] | None,
        symbols: Sequence[str],
        start_date: dt.date | str | None,
        end_date: dt.date | str | None,
        recommendation: str | None,
        score: float | None,
        metrics: Mapping[str, Any] | None,
        dagster_run_id: str | None,
        dryrun: bool,
        data_source: str | None,
        synthetic: bool,
    ) -> RunRecord:
        run_id = _require_text(run_id, "run_id")
        status = _check_status(status)
        by = _require_text(recorded_by, "recorded_by")
        fields: dict[str, Any] = {
            "candidate_dir": _as_path(candidate_dir, "candidate_dir"),
            "audit_dir": _as_path(audit_dir, "audit_dir"),
            "start_date": _as_date(start_date, "start_date"),
            "end_date": _as_date(end_date, "end_date"),
            "recommendation": (
                None if recommendation is None else _require_text(recommendation, "recommendation")
            ),
            "score": _as_score(score),
            "dagster_run_id": dagster_run_id,
            "data_source": data_source,
        }
        symbol_list, metric_values = _as_symbols(symbols), _as_metrics(metrics)
        first, last = fields["start_date"], fields["end_date"]
        if first and last and first > last:
            raise RegistryError(f"start_date {start_date} is after end_date {end_date}")
        return cls(
            run_id=run_id,
            status=status,
            by=by,
            fields=fields,
            symbols=symbol_list,
            metrics=metric_values,
            dryrun=bool(dryrun),
            synthetic=bool(synthetic),
        )

    def insert(self, tx: Tx, now: str) -> CandidateRun:
        if self.status not in INITIAL_STATUSES:
            raise IllegalTransitionError(
                self.run_id,
                None,
                self.status,
                f"a new run starts as {_either(INITIAL_STATUSES)}",
                action=f"record {self.status} run",
            )
        values = {
            "run_id": self.run_id,
            "status": self.status,
            "created_at": now,
            "updated_at": now,
            **self.fields,
            "symbols": json.dumps(self.symbols),
            "metrics": json.dumps(self.metrics or {}),
            "dryrun": int(self.dryrun),
            "synthetic": int(self.synthetic),
            "recorded_by": self.by,
        }
        tx.insert("candidate_runs", values)
        append_change(tx, self.run_id, None, self.status, self.by, now, "recorded")
        return _run_from_row(fetch_run(tx, self.run_id))  # type: ignore[arg-type]

    def update(self, tx: Tx, row: RowMapping, now: str) -> CandidateRun:
        if self.status not in INITIAL_STATUSES:
            raise IllegalTransitionError(
                self.run_id,
                row["status"],
                self.status,
                f"record_candidate_run only sets {_either(INITIAL_STATUSES)}; use the "
                f"dedicated method to {_VERBS[self.status]} a run",
            )
        updates = {name: value for name, value in self.fields.items() if value is not None}
        if self.symbols:
            updates["symbols"] = json.dumps(self.symbols)
        if self.metrics is not None:
            updates["metrics"] = json.dumps(self.metrics)
        if self.dryrun:
            updates["dryrun"] = 1
        if self.synthetic:
            updates["synthetic"] = 1
        return transition(tx, row, self.status, self.by, at=now, note="recorded", columns=updates)
