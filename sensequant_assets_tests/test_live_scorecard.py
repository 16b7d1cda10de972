"""The live scorecard: the gate's measures on matured calls, rolling, against the band the
walk-forward implies, and how long a measure has sat below it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.features.labels import DOWN, NEUTRAL, UP
from sensequant_assets.live.scorecard import (
    daily_measures,
    matured,
    scorecard,
    walk_forward_bands,
)

SYMBOLS = [f"S{k}" for k in range(10)]


def day_rows(day: str, returns: list[float], calls: list[int]) -> pd.DataFrame:
    score = np.asarray(returns) * 10
    return pd.DataFrame(
        {
            "date": pd.Timestamp(day),
            "symbol": SYMBOLS,
            "p_down": 0.4 - score,
            "p_neutral": 0.2,
            "p_up": 0.4 + score,
            "call": calls,
            "forward_return": returns,
            "label": [UP if r > 0.01 else DOWN if r < -0.01 else NEUTRAL for r in returns],
        }
    )


def test_a_perfect_day_scores_one_and_costs_come_off_the_spread() -> None:
    returns = [-0.03, -0.02, -0.015, -0.005, 0.0, 0.004, 0.008, 0.015, 0.02, 0.04]
    rows = day_rows("2024-06-03", returns, [-1, -1, -1, 0, 0, 0, 0, 1, 1, 1])
    daily = daily_measures(rows, cost_per_holding=0.0024)
    assert daily.loc["2024-06-03", "rank_ic"] == pytest.approx(1.0)
    assert daily.loc["2024-06-03", "hit_rate"] == 1.0
    # top fifth of 10: 0.02 and 0.04; bottom fifth: -0.03 and -0.02
    assert daily.loc["2024-06-03", "spread_net"] == pytest.approx(0.03 + 0.025 - 0.0024)


def test_only_matured_calls_are_judged() -> None:
    signals = day_rows("2024-06-03", [0.01] * 10, [1] * 10).drop(
        columns=["forward_return", "label"]
    )
    labels = pd.DataFrame(
        {"date": pd.Timestamp("2024-06-03"), "symbol": SYMBOLS[:6],
         "label": [UP, UP, DOWN, np.nan, np.nan, NEUTRAL],
         "forward_return": [0.02, 0.03, -0.02, np.nan, np.nan, 0.0]}
    )  # fmt: skip
    rows = matured(signals, labels)
    assert sorted(rows["symbol"]) == ["S0", "S1", "S2", "S5"]
    assert rows["label"].dtype == np.int64


def test_the_band_is_the_walk_forwards_range_for_the_window() -> None:
    rng = np.random.default_rng(4)
    days = pd.bdate_range("2022-01-03", periods=600)
    daily = pd.DataFrame(
        {"rank_ic": rng.normal(0.03, 0.1, 600), "hit_rate": rng.normal(0.38, 0.05, 600),
         "spread_net": rng.normal(0.002, 0.02, 600)}, index=days
    )  # fmt: skip
    bands = walk_forward_bands(daily, window=20)
    ic = bands["rank_ic"]
    assert ic.low < 0.03 < ic.high and ic.sessions == 581
    # iid days: the rolling mean's 90% range is about ±1.645 · 0.1 / √20
    assert ic.high - ic.low == pytest.approx(2 * 1.645 * 0.1 / np.sqrt(20), rel=0.2)
    with pytest.raises(LookupError, match="fewer than the 20-session window"):
        walk_forward_bands(daily.iloc[:10], window=20)


def test_sessions_below_the_band_are_counted_back_from_the_latest() -> None:
    days = pd.bdate_range("2024-01-01", periods=110)
    walk_forward = pd.DataFrame({"rank_ic": 0.03, "hit_rate": 0.4, "spread_net": 0.001},
                                index=days[:100])  # fmt: skip
    bands = walk_forward_bands(walk_forward, window=5)
    live = walk_forward.reindex(days).fillna(
        {"rank_ic": -0.2, "hit_rate": 0.4, "spread_net": 0.001}
    )
    report = scorecard(live, bands)
    ic = report["measures"]["rank_ic"]
    assert ic["sessions_below_band"] == 10 and ic["position"] == "below band"
    assert report["measures"]["hit_rate"]["sessions_below_band"] == 0
    assert report["measures"]["hit_rate"]["position"] == "inside band"
    assert len(ic["history"]) == 106 and report["matured_sessions"] == 110
    short = scorecard(live.iloc[:3], bands)["measures"]["rank_ic"]
    assert short["rolling"] is None and short["position"].startswith("not enough")
