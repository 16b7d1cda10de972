"""The promotion gate: all rules reported; skill failures reject, robustness ones need review."""

import copy

import pytest

from sensequant_assets.evaluation.gate import GateThresholds, decide

EVIDENCE = {
    "sessions": 400,
    "skill": {
        "rank_ic": {"mean": 0.031, "days": 400, "batch_days": 28, "batches": 14, "p_value": 0.001}
    },
    "dsr": {
        "dsr": 0.99,
        "n_trials": 3,
        "book": "long_flat",
        "sharpe_annualized": 1.1,
        "selection": {"explanation": "1 book(s) evaluated in this run + 2 earlier candidate(s)"},
    },
    "champion": None,
    # diagnostics the gate must not read
    "paired_accuracy_tests": {"majority_class": {"p_value": 0.9}},
    "pbo": {"pbo": 0.9},
}
CHAMPION = {
    "champion": "live_candidate_20261101T000000Z",
    "shared_rows": 20_000,
    "shared_sessions": 200,
    "candidate_rank_ic": 0.04,
    "champion_rank_ic": 0.02,
    "test": {"batches": 7, "batch_days": 28},
    "p_value": 0.004,
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
        "rank_ic",
        "deflated_sharpe",
        "out_of_sample_sessions",
    ]
    assert all(reason.startswith("PASS") for reason in decision.reasons)
    assert (
        "mean daily rank IC 0.0310 over 400 sessions, one-sided p = 0.0010 (need ≤ 0.01)"
        in decision.reasons[0]
    )
    assert "N = 3: 1 book(s) evaluated in this run + 2 earlier" in decision.reasons[1]
    assert decision.to_dict()["thresholds"] == {
        "significance": 0.01,
        "min_dsr": 0.5,
        "min_resilience": 50.0,
        "min_oos_sessions": 60,
    }


def test_hit_rates_and_pbo_are_diagnostics_the_gate_does_not_read() -> None:
    evidence = copy.deepcopy(EVIDENCE)
    del evidence["paired_accuracy_tests"], evidence["pbo"]
    assert decide(evidence).recommendation == "approve"


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        (("skill", "rank_ic", "p_value"), 0.011, "rank_ic"),
        (("dsr", "dsr"), 0.49, "deflated_sharpe"),
        (("dsr", "dsr"), None, "deflated_sharpe"),
    ],
)
def test_a_failed_skill_rule_rejects(path: tuple[str, ...], value: object, rule: str) -> None:
    decision = decide(_with(path, value))
    assert decision.recommendation == "reject"
    failed = [r.name for r in decision.rules if not r.passed]
    assert failed == [rule]
    assert any(reason.startswith(f"FAIL {rule}") for reason in decision.reasons)


def test_earlier_candidates_on_the_same_dates_tighten_the_rank_ic_test() -> None:
    evidence = _with(("dsr", "selection", "earlier_candidates"), ["c1", "c2"])
    evidence["skill"]["rank_ic"]["p_value"] = 0.006  # passes alone, not as the third look
    decision = decide(evidence)
    assert decision.recommendation == "reject"
    rule = decision.rules[0]
    assert rule.name == "rank_ic" and rule.threshold == pytest.approx(0.01 / 3)
    assert "need ≤ 0.01/3 = 0.0033, 2 earlier candidate(s) tested on overlapping dates" in (
        rule.detail
    )
    evidence["skill"]["rank_ic"]["p_value"] = 0.003
    assert decide(evidence).recommendation == "approve"


def test_too_short_a_history_for_the_overlap_robust_test_rejects_saying_so() -> None:
    evidence = _with(("skill", "rank_ic"), {"mean": 0.05, "days": 90, "batch_days": 28,
                                            "batches": 3, "p_value": None})  # fmt: skip
    decision = decide(evidence)
    assert decision.recommendation == "reject"
    reason = next(r for r in decision.reasons if r.startswith("FAIL rank_ic"))
    assert "too little out-of-sample history to test: 3 non-overlapping batch(es) of 28" in reason


def test_a_universe_too_small_for_a_cross_section_rejects_saying_so() -> None:
    evidence = _with(("skill", "rank_ic"), {"mean": None, "days": 0, "batch_days": 28,
                                            "batches": 0, "p_value": None})  # fmt: skip
    reason = next(r for r in decide(evidence).reasons if r.startswith("FAIL rank_ic"))
    assert "no session had the 5 or more symbols a cross-sectional rank IC needs" in reason


def test_a_champion_must_be_beaten_on_shared_rows() -> None:
    beaten = decide(_with(("champion",), CHAMPION))
    assert beaten.recommendation == "approve"
    assert [r.name for r in beaten.rules][2] == "beats_champion"
    assert (
        "rank IC 0.0400 vs champion live_candidate_20261101T000000Z's 0.0200" in (beaten.reasons[2])
    )
    not_beaten = decide(_with(("champion",), {**CHAMPION, "p_value": 0.4}))
    assert not_beaten.recommendation == "reject"
    assert [r.name for r in not_beaten.rules if not r.passed] == ["beats_champion"]


def test_too_few_rows_shared_with_the_champion_needs_a_person() -> None:
    thin = {**CHAMPION, "shared_sessions": 40, "test": {"batches": 1, "batch_days": 28},
            "p_value": None}  # fmt: skip
    decision = decide(_with(("champion",), thin))
    assert decision.recommendation == "needs_review"
    rule = next(r for r in decision.rules if r.name == "beats_champion")
    assert rule.kind == "robustness" and not rule.passed
    assert "share 40 out-of-sample sessions (1 batch(es) of 28, need 5)" in rule.detail


def test_too_few_sessions_needs_review() -> None:
    decision = decide(_with(("sessions",), 30))
    assert decision.recommendation == "needs_review"
    assert [r.name for r in decision.rules if not r.passed] == ["out_of_sample_sessions"]


def test_stress_resilience_counts_only_when_stress_tests_ran() -> None:
    assert decide(EVIDENCE, {"overall_score": 62.0}).recommendation == "approve"
    weak = decide(EVIDENCE, {"overall_score": 41.5})
    assert weak.recommendation == "needs_review"
    assert "FAIL stress_resilience: resilience 41.5000 (need ≥ 50.0)" in weak.reasons
    nothing = decide(EVIDENCE, {"overall_score": None})
    assert nothing.recommendation == "needs_review"
    assert "no stress window overlaps the data" in nothing.reasons[-1]


def test_thresholds_are_configurable_and_validated() -> None:
    strict = GateThresholds(significance=0.0005)
    assert decide(EVIDENCE, thresholds=strict).recommendation == "reject"
    with pytest.raises(ValueError, match="significance"):
        GateThresholds(significance=0.0)
    with pytest.raises(ValueError, match="min_oos_sessions"):
        GateThresholds(min_oos_sessions=0)
    with pytest.raises(ValueError, match="min_dsr"):
        GateThresholds(min_dsr=1.5)


def test_an_unresolved_split_or_thin_sentiment_needs_a_person() -> None:
    clean = {"unresolved_splits": [], "sentiment": None}
    assert decide(EVIDENCE, data_quality=clean).recommendation == "approve"
    split = {"symbol": "TCS", "date": "2024-02-14", "ratio": 2.0,
             "corporate_action": "TCS,2024-02-14,split,2"}  # fmt: skip
    decision = decide(EVIDENCE, data_quality={"unresolved_splits": [split], "sentiment": None})
    assert decision.recommendation == "needs_review"
    assert (
        "suspected split TCS 2024-02-14 (ratio 2) not resolved: add TCS,2024-02-14,split,2"
        in (decision.reasons[-1])
    )
    sentiment = {"overall": {"coverage_below_80": True}, "summary": "Sentiment coverage: 62%"}
    thin = {"unresolved_splits": [], "sentiment": sentiment}
    assert decide(EVIDENCE, data_quality=thin).recommendation == "needs_review"
    rejected = decide(_with(("skill", "rank_ic", "p_value"), 0.5), data_quality=thin)
    assert rejected.recommendation == "reject"  # a skill failure still rejects
