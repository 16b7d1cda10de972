"""The promotion gate: all rules reported; skill failures reject, robustness ones need review."""

import copy

import pytest

from sensequant_assets.evaluation.gate import GateThresholds, decide

EVIDENCE = {
    "sessions": 400,
    "paired_accuracy_tests": {
        "majority_class": {"p_value": 0.01, "student_accuracy": 0.41, "baseline_accuracy": 0.34},
        "yesterday_direction": {
            "p_value": 0.002,
            "student_accuracy": 0.41,
            "baseline_accuracy": 0.36,
        },
    },
    "dsr": {"dsr": 0.99, "n_trials": 2},
    "pbo": {"pbo": 0.1},
}


def _with(path: tuple[str, ...], value: object) -> dict:
    evidence = copy.deepcopy(EVIDENCE)
    node = evidence
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return evidence


def test_all_rules_pass_approves_and_lists_every_rule() -> None:
    decision = decide(EVIDENCE)
    assert decision.recommendation == "approve"
    assert [r.name for r in decision.rules] == [
        "beats_majority",
        "beats_yesterday",
        "deflated_sharpe",
        "out_of_sample_sessions",
        "overfitting",
    ]
    assert all(reason.startswith("PASS") for reason in decision.reasons)
    assert decision.to_dict()["thresholds"]["min_dsr"] == 0.95


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        (("paired_accuracy_tests", "majority_class", "p_value"), 0.2, "beats_majority"),
        (("paired_accuracy_tests", "yesterday_direction", "p_value"), 0.051, "beats_yesterday"),
        (("dsr", "dsr"), 0.94, "deflated_sharpe"),
        (("dsr", "dsr"), None, "deflated_sharpe"),
    ],
)
def test_a_failed_skill_rule_rejects(path: tuple[str, ...], value: object, rule: str) -> None:
    decision = decide(_with(path, value))
    assert decision.recommendation == "reject"
    failed = [r.name for r in decision.rules if not r.passed]
    assert failed == [rule]
    assert any(reason.startswith(f"FAIL {rule}") for reason in decision.reasons)


def test_too_short_a_history_for_the_overlap_robust_test_rejects_saying_so() -> None:
    evidence = _with(("paired_accuracy_tests", "majority_class", "p_value"), None)
    evidence["paired_accuracy_tests"]["majority_class"] |= {"batches": 3, "batch_days": 28}
    decision = decide(evidence)
    assert decision.recommendation == "reject"
    reason = next(r for r in decision.reasons if r.startswith("FAIL beats_majority"))
    assert "too little out-of-sample history to test, 3 non-overlapping batch(es) of 28" in reason


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        (("pbo", "pbo"), 0.6, "overfitting"),
        (("pbo",), None, "overfitting"),
        (("sessions",), 30, "out_of_sample_sessions"),
    ],
)
def test_a_failed_robustness_rule_needs_review(
    path: tuple[str, ...], value: object, rule: str
) -> None:
    decision = decide(_with(path, value))
    assert decision.recommendation == "needs_review"
    assert [r.name for r in decision.rules if not r.passed] == [rule]


def test_stress_resilience_counts_only_when_stress_tests_ran() -> None:
    assert decide(EVIDENCE, {"overall_score": 62.0}).recommendation == "approve"
    weak = decide(EVIDENCE, {"overall_score": 41.5})
    assert weak.recommendation == "needs_review"
    assert "FAIL stress_resilience: resilience 41.5000 (need ≥ 50.0)" in weak.reasons
    nothing = decide(EVIDENCE, {"overall_score": None})
    assert nothing.recommendation == "needs_review"
    assert "no stress window overlaps the data" in nothing.reasons[-1]


def test_thresholds_are_configurable_and_validated() -> None:
    strict = GateThresholds(significance=0.001)
    assert decide(EVIDENCE, thresholds=strict).recommendation == "reject"
    with pytest.raises(ValueError, match="significance"):
        GateThresholds(significance=0.0)
    with pytest.raises(ValueError, match="min_oos_sessions"):
        GateThresholds(min_oos_sessions=0)
