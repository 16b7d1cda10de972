"""The promotion briefing: what a reviewer reads before approving or rejecting a candidate.

Every number is copied from this run's stage outputs (``teacher_runs.json``,
``student_runs.json``, ``validation_summary.json``, ``stat_tests.json``, the stress summary,
``gate_decision.json``, ``data_quality.json``, ``manifest.yaml``); nothing is recomputed or
filled in. A phase that did not run leaves its section saying so, and a run that failed writes
a partial briefing naming the failed phase and its error, so the reviewer always gets a
document.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sensequant_assets.artifacts import ACCURACY_REPORT, MANIFEST_FILE
from sensequant_assets.evaluation.gate import GATE_VERSION
from sensequant_assets.evaluation.power import operating_characteristics
from sensequant_assets.release.quality_section import (
    quality_section,
    quality_warnings,
)
from sensequant_assets.release.registration import SYNTHETIC_SOURCE

PHASES = (
    "ingest",
    "teachers",
    "student",
    "validation",
    "statistical tests",
    "stress tests",
    "release audit",
    "briefing",
)
SHORT_HISTORY_SESSIONS = 250
SKILL_MEASURES = {
    "rank_ic": "Rank IC of P(up) - P(down) vs the forward return",
    "spread_net": "Top-minus-bottom fifth, net of costs, per holding period",
    "brier_skill": "Brier skill vs the training class frequencies",
}


@dataclass
class StageOutputs:
    """Whatever the stages produced; None where a stage did not run (or failed)."""

    release_id: str
    teacher_runs: dict[str, Any] | None = None
    student_runs: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    stat_tests: dict[str, Any] | None = None
    stress: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    data_quality: dict[str, Any] | None = None
    stress_requested: bool = False
    failed_phase: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    dagster_run_id: str | None = None


def build_briefing(outputs: StageOutputs) -> dict[str, Any]:
    """The briefing as JSON-ready data (``promotion_briefing.json``)."""
    gate = outputs.gate
    recommendation = gate["recommendation"] if gate else None
    status = "failed" if outputs.failed_phase else "ready-for-review"
    return {
        "release_id": outputs.release_id,
        "status": status,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "dagster_run_id": outputs.dagster_run_id,
        "failed_phase": outputs.failed_phase,
        "error": outputs.error,
        "recommendation": recommendation,
        "recommendation_reasons": gate["reasons"] if gate else [],
        "gate_characteristics": _characteristics(outputs.validation),
        "training_summary": _training(outputs),
        "validation_results": _validation(outputs.validation),
        "statistical_tests": _stat_tests(outputs.stat_tests),
        "stress_tests": _stress(outputs.stress, outputs.stress_requested),
        "data_quality": quality_section(outputs.data_quality),
        "risk_assessment": _risks(outputs),
        "artifacts": _artifacts(outputs.manifest),
        "next_steps": _next_steps(outputs.release_id, status, recommendation),
    }


def _characteristics(validation: dict[str, Any] | None) -> dict[str, Any]:
    """The gate's measured false-promotion bound and power at the nearest measured scale."""
    window = (validation or {}).get("out_of_sample") or {}
    n_symbols, sessions = len(window.get("symbols") or []), int(window.get("sessions") or 0)
    measured = operating_characteristics(n_symbols, sessions)
    return {"gate_version": GATE_VERSION, "requested_scale": {"n_symbols": n_symbols,
            "oos_sessions": sessions}, "measured": measured}  # fmt: skip


def _training(outputs: StageOutputs) -> dict[str, Any] | None:
    if outputs.student_runs is None and outputs.teacher_runs is None:
        return None
    student = outputs.student_runs or {}
    teachers = (outputs.teacher_runs or {}).get("summary") or student.get("teachers") or {}
    metrics = student.get("metrics") or {}
    lineage = (outputs.manifest or {}).get("lineage") or {}
    return {
        "data_source": lineage.get("data_source"),
        "data_sources": lineage.get("data_sources"),
        "symbols": student.get("symbols"),
        "date_range": student.get("date_range"),
        "label": student.get("label"),
        "teacher_runs": {
            key: teachers.get(key) for key in ("total", "completed", "skipped", "failed", "missing")
        },
        "teacher_skip_reasons": teachers.get("skip_reasons"),
        "teacher_mean_metrics": teachers.get("mean_metrics_completed"),
        "student_samples": student.get("sample_counts"),
        "student_holdout_metrics": {
            key: metrics.get(key)
            for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss")
        }
        if metrics
        else None,
        "distillation": student.get("distillation"),
        "reward_loop": student.get("rewards"),
        "hyperparameter_search": student.get("search"),
    }


def _validation(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    classification = summary["classification"]
    return {
        "out_of_sample": summary["out_of_sample"],
        "student": {
            key: classification[key]
            for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro")
        },
        "baselines": {
            name: report["accuracy"] for name, report in summary["baselines_classification"].items()
        },
        "backtest": summary["backtest"],
        "baselines_backtest": summary["baselines_backtest"],
        "optimizer_best": {
            "trial": summary["optimizer"]["best_trial"],
            "n_trials": summary["optimizer"]["n_trials"],
        },
    }


def _stat_tests(tests: dict[str, Any] | None) -> dict[str, Any] | None:
    if tests is None:
        return None
    return {
        "strategy": tests["strategy"],
        "sessions": tests["sessions"],
        "paired_accuracy_tests": {
            name: {k: test[k] for k in ("student_accuracy", "baseline_accuracy", "p_value", "ci")}
            for name, test in tests["paired_accuracy_tests"].items()
        },
        "skill": {
            name: {k: tests["skill"][name][k] for k in ("mean", "p_value", "batches")}
            for name in SKILL_MEASURES
        }
        if "skill" in tests
        else None,
        "sharpe_ci": tests["bootstrap_ci"]["strategy_sharpe_annualized"],
        "vs_buy_and_hold": {
            k: v for k, v in tests["vs_buy_and_hold"].items() if k != "paired_return_test"
        },
        "vs_nifty50": tests["vs_nifty50"],
        "psr": tests["psr"],
        "dsr": tests["dsr"]["dsr"],
        "dsr_trials": tests["dsr"]["n_trials"],
        "dsr_selection": (tests["dsr"].get("selection") or {}).get("explanation"),
        "dsr_search_trials": len((tests["dsr"].get("selection") or {}).get("search_trials", [])),
        "active_sharpe": tests["dsr"].get("sharpe_annualized"),
        "books": tests.get("books"),
        "champion": tests.get("champion"),
        "optimizer_pbo": (tests.get("pbo") or {}).get("pbo"),
        "reward_ab_test": tests.get("reward_ab_test"),
    }


def _stress(stress: dict[str, Any] | None, requested: bool) -> dict[str, Any] | None:
    if not requested:
        return {"ran": False, "note": "not requested (--run-stress-tests)"}
    if stress is None:
        return {"ran": False, "note": "requested but did not complete"}
    return {
        "ran": True,
        "overall_score": stress.get("overall_score"),
        "passed": stress.get("passed"),
        "evaluated": stress.get("evaluated"),
        "skipped": stress.get("skipped"),
        "windows": [
            {
                "name": w["name"],
                "status": w["status"],
                "reason": w.get("reason"),
                "score": w.get("score"),
                "failure_mode": w.get("failure_mode"),
            }
            for w in stress.get("windows", [])
        ],
    }


def _risks(outputs: StageOutputs) -> dict[str, Any]:
    issues: list[str] = []
    warnings = list(outputs.warnings)
    if outputs.failed_phase:
        issues.append(f"phase '{outputs.failed_phase}' failed: {outputs.error}")
    if outputs.gate:
        issues += [r.removeprefix("FAIL ") for r in outputs.gate["reasons"] if r.startswith("FAIL")]
    teachers = ((outputs.teacher_runs or {}).get("summary")) or {}
    if teachers.get("skipped"):
        reasons = ", ".join(
            f"{code}: {n}" for code, n in (teachers.get("skip_reasons") or {}).items()
        )
        warnings.append(
            f"{teachers['skipped']} of {teachers.get('total')} teacher window(s) skipped "
            f"({reasons})"
        )
    if teachers.get("failed"):
        warnings.append(f"{teachers['failed']} teacher window(s) failed")
    trained = outputs.student_runs is not None
    warnings += quality_warnings(quality_section(outputs.data_quality), trained)
    lineage = (outputs.manifest or {}).get("lineage") or {}
    if SYNTHETIC_SOURCE in (lineage.get("data_sources") or []):
        warnings.append(
            "trained on synthetic data: the evidence says nothing about real markets, and the "
            "candidate can never be deployed to production"
        )
    if outputs.validation:
        sessions = outputs.validation["out_of_sample"]["sessions"]
        if sessions < SHORT_HISTORY_SESSIONS:
            warnings.append(
                f"short out-of-sample period: {sessions} sessions (under "
                f"{SHORT_HISTORY_SESSIONS}, about a year); statistics are weak"
            )
    review = [
        "read the gate's reasons and every FAIL above",
        "compare the student's out-of-sample hit rate with both baselines, per fold",
        f"check the equity curve and drawdown in {ACCURACY_REPORT}",
        "check that the manifest's code commit is clean (dirty: false) and expected",
    ]
    return {"outstanding_issues": issues, "warnings": warnings, "manual_review": review}


def _artifacts(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    if manifest is None:
        return None
    return {
        "candidate_dir": manifest["candidate_dir"],
        "audit_dir": manifest["audit_dir"],
        "manifest": f"{manifest['audit_dir']}/{MANIFEST_FILE}",
        "files": len(manifest["artifacts"]),
        "code": manifest["lineage"]["code"],
        "data_snapshot_sha256": manifest["lineage"]["data_snapshot_sha256"],
        "input_files": manifest["lineage"].get("input_files") or {},
    }


def _next_steps(release_id: str, status: str, recommendation: str | None) -> list[str]:
    if status == "failed":
        return [
            "fix the failed phase (see the error) and re-run `sensequant historical-run`",
            f"the registry records {release_id} as failed; nothing was promoted",
        ]
    steps = [f"review this briefing and `sensequant candidates show {release_id}`"]
    if recommendation == "approve":
        steps.append(f"approve: `sensequant candidates approve {release_id} --by <your name>`")
    else:
        steps.append(
            f"the gate recommends {recommendation}: approve only with a written reason, or "
            f"`sensequant candidates reject {release_id} --by <name> --reason <text>`"
        )
    steps.append("an approved candidate is promoted to production by the promotion sensor")
    return steps
