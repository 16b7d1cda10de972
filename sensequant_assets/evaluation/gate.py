"""The promotion gate: a pure function from this run's evidence to a recommendation.

``approve`` ("approve for staging") needs every rule below to hold. A rule that measures skill
failing means the evidence says the student is no better than doing nothing clever, so the
recommendation is ``reject``; a rule that measures robustness failing, or evidence that is too
thin to judge, means a human must look: ``needs_review``. The reasons always list every rule
with its measured value and threshold, passed or not.

Skill (failing → reject):
  * ``rank_ic``: the one-sided p-value of the student's mean daily sector-neutral rank IC (its
    score against the realised forward excess return across the day's symbols, both demeaned
    within each sector: ``skill``) is ≤ ``significance``. The
    test is the batch-means t test, whose size holds under overlapping labels; with fewer
    than five batches of 4h sessions (or fewer than five symbols a day, where a cross-section
    has no ranks worth the name) there is no p-value and the rule fails for too little data.
  * ``deflated_sharpe``: DSR ≥ ``min_dsr`` for the gated book's daily return against the
    market, net of costs, deflated for every configuration it was selected from (the run's
    books, a hyperparameter search's trials and earlier candidates on overlapping dates).

Why these defaults (``significance`` 0.01, ``min_dsr`` 0.5). The gate's false promotions
must stay below 5% as a 95% upper bound, so the gate as a whole must reject far more than a
single 5% test does. The rank-IC test is the one with power, and the net book adds little
protection on top of it: on null universes where the IC happens to test significant, the
book's net Sharpe is positive four times in five. So the size budget goes to the rank-IC
test (1%, divided among the candidates tried on the same dates), and the book must show its
edge surviving costs and selection in point estimate (DSR ≥ 0.5: a net Sharpe above SR₀, the
best that N skill-less tries would show). A DSR of 0.95 on the net book is reported, not
required: even the planted signal's own causal observable at IC 0.05 reaches it in only about
half of the universes over two years out of sample, after NSE delivery costs; the live
scorecard after staging is where that evidence accumulates.
  * ``beats_champion`` (only when a model is in production and the two share enough
    out-of-sample rows): the paired rank-IC test's p-value ≤ ``significance``.
Robustness (failing → needs_review):
  * ``out_of_sample_sessions`` ≥ ``min_oos_sessions``;
  * ``beats_champion`` when the candidate and the champion share too few rows to compare;
  * ``stress_resilience`` ≥ ``min_resilience`` when stress tests ran;
  * ``data_quality`` when its summary (``data_quality.json``) is given: no suspected split
    left unresolved in the data the candidate trained on, and sentiment coverage of at least
    80% when sentiment was used (below that the features were mostly "no headline").

The hit rate against naive baselines, PBO and the other figures of ``stat_tests.json`` are
diagnostics for the reviewer: a three-class hit rate barely moves with a real cross-sectional
edge, and PBO is only meaningful over a set the candidate was selected from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from sensequant_assets.evaluation.block_test import MIN_BATCHES
from sensequant_assets.evaluation.skill import MIN_SYMBOLS

Recommendation = Literal["approve", "reject", "needs_review"]
# Bumped whenever a rule, a threshold or a test the rules read changes: calibration results
# (bench/bench_calibration.py) measured under another version no longer describe this gate.
GATE_VERSION = 5


@dataclass(frozen=True)
class GateThresholds:
    significance: float = 0.01
    min_dsr: float = 0.5
    min_resilience: float = 50.0
    min_oos_sessions: int = 60

    def __post_init__(self) -> None:
        if not 0 < self.significance < 1:
            raise ValueError(f"significance must lie in (0, 1), got {self.significance}")
        if not 0 <= self.min_dsr <= 1:
            raise ValueError(f"min_dsr must lie in [0, 1], got {self.min_dsr}")
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
    data_quality: dict[str, Any] | None = None,
) -> GateDecision:
    """Judge ``stat_tests.json`` (with ``stress_summary.json`` when stress tests ran and
    ``data_quality.json`` when the candidate's data-quality summary exists)."""
    t = thresholds or GateThresholds()
    rules = [_rank_ic(stat_tests, t), _deflated_sharpe(stat_tests, t)]
    champion = stat_tests.get("champion")
    if champion is not None:
        rules.append(_beats_champion(champion, t))
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
    if data_quality is not None:
        rules.append(_data_quality(data_quality))
    failed = [r for r in rules if not r.passed]
    if any(r.kind == "skill" for r in failed):
        recommendation: Recommendation = "reject"
    elif failed:
        recommendation = "needs_review"
    else:
        recommendation = "approve"
    reasons = [f"{'PASS' if r.passed else 'FAIL'} {r.name}: {r.detail}" for r in rules]
    return GateDecision(recommendation, reasons, rules, t)


def _rank_ic(stat_tests: dict[str, Any], t: GateThresholds) -> Rule:
    test = stat_tests["skill"]["rank_ic"]
    p = test["p_value"]
    earlier = len((stat_tests["dsr"].get("selection") or {}).get("earlier_candidates", []))
    alpha = t.significance / (1 + earlier)
    need = (
        f"need ≤ {t.significance}"
        if not earlier
        else f"need ≤ {t.significance}/{1 + earlier} = {alpha:.4f}, {earlier} earlier "
        "candidate(s) tested on overlapping dates"
    )
    if test["days"] == 0:
        detail = (
            f"no session had the {MIN_SYMBOLS} or more symbols a cross-sectional rank IC "
            "needs: the student's ranking cannot be judged on this universe"
        )
    elif p is None:
        detail = (
            f"mean daily rank IC {_fmt(test['mean'])} over {test['days']} sessions, but too "
            f"little out-of-sample history to test: {test['batches']} non-overlapping "
            f"batch(es) of {test['batch_days']} sessions, need {MIN_BATCHES}"
        )
    else:
        detail = (
            f"mean daily rank IC {_fmt(test['mean'])} over {test['days']} sessions, one-sided "
            f"p = {_fmt(p)} ({need})"
        )
    return Rule("rank_ic", "skill", p is not None and p <= alpha, p, alpha, detail)


def _deflated_sharpe(stat_tests: dict[str, Any], t: GateThresholds) -> Rule:
    dsr = stat_tests["dsr"]
    value = dsr.get("dsr")
    selection = dsr.get("selection") or {}
    sharpe = dsr.get("sharpe_annualized")
    detail = (
        f"DSR {_fmt(value)} of the {dsr.get('book', 'gated')} book against the market "
        f"(annualised active Sharpe {_fmt(sharpe)}), deflated for N = {dsr.get('n_trials')}: "
        f"{selection.get('explanation', 'configurations tried')} (need ≥ {t.min_dsr})"
    )
    return Rule("deflated_sharpe", "skill", value is not None and value >= t.min_dsr, value,
                t.min_dsr, detail)  # fmt: skip


def _data_quality(report: dict[str, Any]) -> Rule:
    problems = [
        f"suspected split {s['symbol']} {s['date']} (ratio {s['ratio']:g}) not resolved: add "
        f"{s['corporate_action']} to SENSEQUANT_CORPORATE_ACTIONS_FILE if the exchange confirms"
        for s in report.get("unresolved_splits") or []
    ]
    sentiment = report.get("sentiment")
    if sentiment and sentiment["overall"]["coverage_below_80"]:
        problems.append(sentiment["summary"])
    return Rule(
        "data_quality",
        "robustness",
        not problems,
        float(len(problems)),
        0.0,
        "; ".join(problems)
        if problems
        else "no unresolved split; sentiment coverage ≥ 80% or unused",
    )


def _beats_champion(champion: dict[str, Any], t: GateThresholds) -> Rule:
    p = champion["p_value"]
    if p is None:
        test = champion["test"]
        return Rule(
            "beats_champion",
            "robustness",
            False,
            None,
            t.significance,
            f"the candidate and champion {champion['champion']} share "
            f"{champion['shared_sessions']} out-of-sample sessions ({test['batches']} batch(es) "
            f"of {test['batch_days']}, need {MIN_BATCHES}): too few to compare, a person must",
        )
    return Rule(
        "beats_champion",
        "skill",
        p <= t.significance,
        p,
        t.significance,
        f"rank IC {_fmt(champion['candidate_rank_ic'])} vs champion {champion['champion']}'s "
        f"{_fmt(champion['champion_rank_ic'])} on {champion['shared_sessions']} shared "
        f"sessions, one-sided p = {_fmt(p)} (need ≤ {t.significance})",
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
