"""The promotion gate: a pure function from this run's evidence to a recommendation.

``approve`` ("approve for staging") needs every rule below to hold. A rule that measures skill
failing means the evidence says the student is no better than doing nothing clever, so the
recommendation is ``reject``; a rule that measures robustness failing, or evidence that is too
thin to judge, means a human must look: ``needs_review``. The reasons always list every rule
with its measured value and threshold, passed or not.

Skill (failing → reject):
  * ``beats_majority`` / ``beats_yesterday``: the one-sided p-value of the student's daily hit
    rate against each naive baseline is ≤ ``significance`` (the batch-means t test, whose size
    holds under overlapping labels; with fewer than five batches of 4h sessions there is no
    p-value, and the rule fails for too little history);
  * ``deflated_sharpe``: DSR of the gated strategy ≥ ``min_dsr`` (selection across every
    strategy tried in the run is priced in).
Robustness (failing → needs_review):
  * ``out_of_sample_sessions`` ≥ ``min_oos_sessions``;
  * ``overfitting``: PBO ≤ ``max_pbo``;
  * ``stress_resilience`` ≥ ``min_resilience`` when stress tests ran.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from sensequant_assets.evaluation.block_test import MIN_BATCHES

Recommendation = Literal["approve", "reject", "needs_review"]
# Bumped whenever a rule, a threshold or a test the rules read changes: calibration results
# (bench/bench_calibration.py) measured under another version no longer describe this gate.
GATE_VERSION = 2


@dataclass(frozen=True)
class GateThresholds:
    significance: float = 0.05
    min_dsr: float = 0.95
    max_pbo: float = 0.5
    min_resilience: float = 50.0
    min_oos_sessions: int = 60

    def __post_init__(self) -> None:
        if not 0 < self.significance < 1:
            raise ValueError(f"significance must lie in (0, 1), got {self.significance}")
        if not 0 <= self.min_dsr <= 1 or not 0 <= self.max_pbo <= 1:
            raise ValueError("min_dsr and max_pbo must lie in [0, 1]")
        if not 0 <= self.min_resilience <= 100:
            raise ValueError(f"min_resilience must lie in [0, 100], got {self.min_resilience}")
        if self.min_oos_sessions < 1:
            raise ValueError(f"min_oos_sessions must be ≥ 1, got {self.min_oos_sessions}")


@dataclass(frozen=True)
class Rule:
    name: str
    kind: Literal["skill", "robustness"]
    passed: bool
    value: float | None
    threshold: float
    detail: str


@dataclass(frozen=True)
class GateDecision:
    recommendation: Recommendation
    reasons: list[str]
    rules: list[Rule]
    thresholds: GateThresholds

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommendation": self.recommendation,
            "reasons": self.reasons,
            "rules": [asdict(rule) for rule in self.rules],
            "thresholds": asdict(self.thresholds),
        }


def decide(
    stat_tests: dict[str, Any],
    stress: dict[str, Any] | None = None,
    thresholds: GateThresholds | None = None,
) -> GateDecision:
    """Judge ``stat_tests.json`` (and ``stress_summary.json`` when stress tests ran)."""
    t = thresholds or GateThresholds()
    rules: list[Rule] = []
    paired = stat_tests["paired_accuracy_tests"]
    for name, label in (("majority_class", "majority"), ("yesterday_direction", "yesterday")):
        test = paired[name]
        p = test["p_value"]
        detail = (
            f"hit rate {test['student_accuracy']:.4f} vs {name.replace('_', ' ')} "
            f"{test['baseline_accuracy']:.4f}, one-sided p = {_fmt(p)} (need ≤ {t.significance})"
        )
        if p is None:
            detail += (
                f": too little out-of-sample history to test, {test.get('batches')} "
                f"non-overlapping batch(es) of {test.get('batch_days')} sessions, "
                f"need {MIN_BATCHES}"
            )
        rules.append(
            Rule(f"beats_{label}", "skill", p is not None and p <= t.significance, p,
                 t.significance, detail)
        )  # fmt: skip
    dsr = stat_tests["dsr"].get("dsr")
    rules.append(
        Rule(
            "deflated_sharpe",
            "skill",
            dsr is not None and dsr >= t.min_dsr,
            dsr,
            t.min_dsr,
            f"DSR {_fmt(dsr)} over {stat_tests['dsr'].get('n_trials')} strategies tried "
            f"(need ≥ {t.min_dsr})",
        )
    )
    sessions = stat_tests["sessions"]
    rules.append(
        Rule(
            "out_of_sample_sessions",
            "robustness",
            sessions >= t.min_oos_sessions,
            float(sessions),
            float(t.min_oos_sessions),
            f"{sessions} out-of-sample sessions (need ≥ {t.min_oos_sessions})",
        )
    )
    pbo = (stat_tests.get("pbo") or {}).get("pbo")
    rules.append(
        Rule(
            "overfitting",
            "robustness",
            pbo is not None and pbo <= t.max_pbo,
            pbo,
            t.max_pbo,
            f"PBO {_fmt(pbo)} (need ≤ {t.max_pbo})"
            if pbo is not None
            else "PBO could not be computed: too few sessions for CSCV",
        )
    )
    if stress is not None:
        score = stress.get("overall_score")
        rules.append(
            Rule(
                "stress_resilience",
                "robustness",
                score is not None and score >= t.min_resilience,
                score,
                t.min_resilience,
                f"resilience {_fmt(score)} (need ≥ {t.min_resilience})"
                if score is not None
                else "no stress window overlaps the data",
            )
        )
    failed = [r for r in rules if not r.passed]
    if any(r.kind == "skill" for r in failed):
        recommendation: Recommendation = "reject"
    elif failed:
        recommendation = "needs_review"
    else:
        recommendation = "approve"
    reasons = [f"{'PASS' if r.passed else 'FAIL'} {r.name}: {r.detail}" for r in rules]
    return GateDecision(recommendation, reasons, rules, t)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
