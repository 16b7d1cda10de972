"""The staging trial's verdict: wait for sessions and matured labels, then promote a
challenger that holds up and keep one that is broken, drifting or missing symbols."""

from __future__ import annotations

import pandas as pd

from sensequant_assets.live.staging import IC_TOLERANCE, staging_verdict

DAYS = pd.bdate_range("2024-06-03", periods=4)


def ic(*values: float) -> pd.Series:
    return pd.Series(values, index=DAYS[: len(values)])


def test_it_waits_for_the_sessions_then_for_a_matured_label() -> None:
    early = staging_verdict(ic(0.03), ic(0.03), staged_sessions=1, worst_drift="ok")
    assert early.outcome == "waiting" and "1 of 2 staging session(s)" in early.reasons[0]
    unmatured = staging_verdict(ic(), ic(), staged_sessions=3, worst_drift="ok")
    assert unmatured.outcome == "waiting" and "labels mature" in unmatured.reasons[0]


def test_a_challenger_as_good_as_the_champion_is_promoted() -> None:
    verdict = staging_verdict(ic(0.02, 0.05), ic(0.04, 0.06), staged_sessions=2, worst_drift="warn")
    assert verdict.outcome == "promote"
    assert abs(verdict.figures["gap"] + 0.015) < 1e-12  # 0.035 against 0.05
    first = staging_verdict(ic(0.01), None, staged_sessions=2, worst_drift="ok")
    assert first.outcome == "promote" and "no champion" in first.reasons[0]


def test_a_broken_drifting_or_incomplete_challenger_stays() -> None:
    broken = staging_verdict(ic(-0.08, -0.05), ic(0.03, 0.02), staged_sessions=2, worst_drift="ok")
    assert broken.outcome == "stays"
    assert f"worse by more than {IC_TOLERANCE:g}" in broken.reasons[0]
    drifting = staging_verdict(ic(0.03), ic(0.03), staged_sessions=2, worst_drift="error")
    assert drifting.outcome == "stays" and "drift" in drifting.reasons[0]
    gaps = staging_verdict(ic(0.03), ic(0.03), 2, "ok", unscored_sessions=1)
    assert gaps.outcome == "stays" and "unscored" in gaps.reasons[0]


def test_only_sessions_both_models_scored_are_compared() -> None:
    champion = pd.Series([0.03], index=DAYS[1:2])
    verdict = staging_verdict(ic(-0.5, 0.03), champion, staged_sessions=2, worst_drift="ok")
    assert verdict.outcome == "promote" and verdict.figures["matured_sessions"] == 1
