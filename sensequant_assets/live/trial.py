"""Running a staging trial: what ``staging_trial`` computes each session, and its report.

The staged model's shadow calls (``staging_signals``) and the champion's calls on the same
sessions (``production_signals``) are joined to the labels matured since, with the scorecard's
own measures (:mod:`~sensequant_assets.live.scorecard`), and judged by
:func:`~sensequant_assets.live.staging.staging_verdict`. Only sessions after the end of the
candidate's training data count: a session it was trained on says nothing about how it holds up
live. The report is written beside the briefing (``staging_report.md`` and ``.json``), so the
story's pre-deployment checklist ends in a file a reviewer can read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sensequant_assets.artifacts import AuditLayout
from sensequant_assets.atomic import write_atomic
from sensequant_assets.live.drift import worst_severity
from sensequant_assets.live.monitoring import matured_labels, model_calls
from sensequant_assets.live.production import SIGNALS_TABLE, STAGING_SIGNALS_TABLE
from sensequant_assets.live.scorecard import daily_measures, matured
from sensequant_assets.live.staging import StagingVerdict, staging_verdict
from sensequant_assets.registry import CandidateRun, StateManager
from sensequant_assets.training.resources import Training


@dataclass(frozen=True)
class Trial:
    """One evaluation of a staged model as of ``day``: the verdict and the daily figures it
    was judged on (rank IC per matured session, challenger and champion)."""

    model_id: str
    champion_id: str | None
    day: dt.date
    staged_sessions: list[dt.date]
    daily: pd.DataFrame
    verdict: StagingVerdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "champion_id": self.champion_id,
            "day": self.day.isoformat(),
            "staged_sessions": [d.isoformat() for d in self.staged_sessions],
            "daily_rank_ic": [
                {"date": day.date().isoformat(), **{k: _number(v) for k, v in row.items()}}
                for day, row in self.daily.iterrows()
            ],
            **self.verdict.to_dict(),
        }


def run_trial(
    training: Training,
    candidate: CandidateRun,
    champion_id: str | None,
    day: dt.date,
    drift: Mapping[dt.date, str],
    symbols: Sequence[str],
    sessions: int,
    cost_per_holding: float,
    sectors: Mapping[str, str] | None,
) -> Trial:
    """``candidate``'s trial as of ``day``: its staged calls after its training data ended,
    the champion's on the same sessions, and ``drift`` (the worst drift severity of each staged
    session, from the staging signals' checks)."""
    calls = _live_calls(model_calls(training, candidate.run_id, day, STAGING_SIGNALS_TABLE),
                        candidate)  # fmt: skip
    staged = sorted({d.date() for d in calls["date"]}) if len(calls) else []
    counts = calls.groupby("date")["symbol"].nunique() if len(calls) else pd.Series(dtype=int)
    challenger = champion = pd.Series(dtype=float)
    if staged:
        labels = matured_labels(training, symbols, staged[0], day)
        challenger = _daily_ic(calls, labels, cost_per_holding, sectors)
        if champion_id is not None:
            theirs = model_calls(training, champion_id, day, SIGNALS_TABLE)
            if len(theirs):
                theirs = theirs[theirs["date"].isin(calls["date"].unique())]
                champion = _daily_ic(theirs, labels, cost_per_holding, sectors)
    verdict = staging_verdict(
        challenger,
        None if champion_id is None else champion,
        staged_sessions=len(staged),
        worst_drift=worst_severity(drift.get(d, "ok") for d in staged),
        unscored_sessions=int((counts < len(symbols)).sum()),
        sessions=sessions,
    )
    daily = pd.DataFrame({"challenger": challenger}).join(champion.rename("champion"))
    return Trial(candidate.run_id, champion_id, day, staged, daily, verdict)


def conclude(registry: StateManager, candidate: CandidateRun, trial: Trial, by: str) -> bool:
    """Once the verdict is final (promote or stays): the report beside the briefing, then the
    outcome in the registry (once; it refuses a second). False while the trial is waiting."""
    verdict = trial.verdict
    if verdict.outcome == "waiting":
        return False
    if candidate.audit_dir is not None:
        write_report(candidate.audit_dir, trial)
    registry.record_staging_result(
        candidate.run_id, verdict.outcome, "; ".join(verdict.reasons), by=by
    )
    return True


def _daily_ic(
    calls: pd.DataFrame,
    labels: pd.DataFrame,
    cost_per_holding: float,
    sectors: Mapping[str, str] | None,
) -> pd.Series:
    """Each matured session's rank IC of ``calls`` (sector-neutral with ``sectors``)."""
    if calls.empty:
        return pd.Series(dtype=float)
    return daily_measures(matured(calls, labels), cost_per_holding, sectors)["rank_ic"]


def write_report(audit_dir: Path, trial: Trial) -> tuple[Path, Path]:
    """``staging_report.md`` and ``.json`` in the candidate's audit directory (atomically)."""
    audit = AuditLayout(audit_dir)
    data = json.dumps(trial.to_dict(), indent=2, sort_keys=True) + "\n"
    json_path = write_atomic(audit.staging_report_json, data.encode())
    md_path = write_atomic(audit.staging_report_md, _markdown(trial).encode())
    return md_path, json_path


def _live_calls(calls: pd.DataFrame, candidate: CandidateRun) -> pd.DataFrame:
    if calls.empty or candidate.end_date is None:
        return calls
    return calls[calls["date"] > pd.Timestamp(candidate.end_date)].reset_index(drop=True)


def _number(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _markdown(trial: Trial) -> str:
    verdict = trial.verdict
    staged = trial.staged_sessions
    span = f"{staged[0]} … {staged[-1]}" if staged else "none yet"
    lines = [
        f"# Staging trial of {trial.model_id}",
        "",
        f"- **Outcome:** {verdict.outcome.upper()} (as of {trial.day})",
        f"- **Champion:** {trial.champion_id or 'none (nothing in production)'}",
        f"- **Staged sessions:** {len(staged)} ({span})",
        *(f"- {reason}" for reason in verdict.reasons),
        "",
        "| matured session | challenger rank IC | champion rank IC |",
        "|---|---|---|",
    ]
    for day, row in trial.daily.iterrows():
        champion = row.get("champion")
        lines.append(
            f"| {day.date()} | {row['challenger']:+.4f} | "
            + ("n/a" if champion is None or pd.isna(champion) else f"{champion:+.4f}")
            + " |"
        )
    return "\n".join(lines) + "\n"
