"""The demotion rule: K sessions below the band or K sessions of ERROR drift, and a pin."""

from __future__ import annotations

import pandas as pd
import pytest

from sensequant_assets.live.demotion import decide_demotion
from sensequant_assets.live.scorecard import scorecard, walk_forward_bands

DAYS = pd.bdate_range("2024-01-01", periods=120)
WALK_FORWARD = pd.DataFrame(
    {"rank_ic": 0.03, "hit_rate": 0.4, "spread_net": 0.001}, index=DAYS[:100]
)
BANDS = walk_forward_bands(WALK_FORWARD, window=5)


def card_with_bad_days(bad: int) -> dict:
    live = WALK_FORWARD.reindex(DAYS[: 100 + bad]).fillna(
        {"rank_ic": -0.1, "hit_rate": 0.4, "spread_net": 0.001}
    )
    return scorecard(live, BANDS)


def test_k_sessions_below_the_band_demote_and_fewer_do_not() -> None:
    assert not decide_demotion("m", card_with_bad_days(4), [], sessions=5).demote
    decision = decide_demotion("m", card_with_bad_days(5), ["ok"] * 5, sessions=5)
    assert decision.demote
    (reason,) = decision.reasons
    assert "below the walk-forward band" in reason and "for 5 consecutive sessions" in reason
    assert decision.figures["sessions_below_band"] == 5


def test_persistent_error_drift_demotes_and_a_broken_run_of_it_does_not() -> None:
    card = card_with_bad_days(0)
    assert decide_demotion("m", card, ["error"] * 5, sessions=5).demote
    assert not decide_demotion("m", card, ["error", "error", "warn", "error", "error"]).demote
    assert not decide_demotion("m", card, ["error"] * 4, sessions=5).demote


def test_a_pinned_model_stays_and_the_decision_says_why() -> None:
    decision = decide_demotion("m", card_with_bad_days(8), ["error"] * 5, pinned=True)
    assert not decision.demote and decision.pinned
    assert len(decision.reasons) == 2 and all(
        r.startswith("pinned by a person") for r in decision.reasons
    )
    with pytest.raises(ValueError, match="≥ 1 session"):
        decide_demotion("m", card_with_bad_days(0), [], sessions=0)
