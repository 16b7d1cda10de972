import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.training.rewards import (
    MIN_LINEAR_WEIGHT,
    RewardConfig,
    ab_test,
    append_reward_history,
    compute_rewards,
    reward_metrics,
    reward_weights,
)
from sensequant_assets.training.student import (
    StudentConfig,
    rows_sha256,
    time_holdout_split,
    yesterday_direction,
)
from sensequant_assets_tests.panels import FEATURES, STRONG_IC, build_panel

DOWN, NEUTRAL, UP = 0, 1, 2
CONFIG = RewardConfig()


def test_rewards_on_hand_cases() -> None:
    predicted = [UP, DOWN, UP, DOWN, NEUTRAL, NEUTRAL, UP, DOWN]
    realized = [0.03, -0.02, -0.01, 0.04, 0.03, -0.03, 0.0, 0.0]
    np.testing.assert_allclose(
        compute_rewards(predicted, realized, CONFIG),
        [0.03, 0.02, -0.01, -0.04, 0.0, 0.0, 0.0, 0.0],
    )


def test_rewards_are_clipped_at_both_ends() -> None:
    config = RewardConfig(clip_min=-0.02, clip_max=0.05)
    rewards = compute_rewards([UP, DOWN, UP, DOWN], [0.09, -0.07, -0.09, 0.01], config)
    np.testing.assert_allclose(rewards, [0.05, 0.05, -0.02, -0.01])


def test_rewards_reject_bad_inputs() -> None:
    with pytest.raises(ValueError, match="classes"):
        compute_rewards([3], [0.01], CONFIG)
    with pytest.raises(ValueError, match="finite"):
        compute_rewards([UP], [math.nan], CONFIG)
    with pytest.raises(ValueError, match="one length"):
        compute_rewards([UP, DOWN], [0.01], CONFIG)


def test_linear_weights() -> None:
    rewards = np.array([0.05, -0.025, 0.0, 0.025])
    raw = np.array([2.0, 0.5, 1.0, 1.5])  # 1 + r / 0.05
    np.testing.assert_allclose(reward_weights(rewards, CONFIG), raw / raw.mean())

    steep = RewardConfig(weighting_scale=2.0)
    raw = np.array([1.0 + 2.0, MIN_LINEAR_WEIGHT, 1.0])  # 1 − 2 is floored
    weights = reward_weights(np.array([0.05, -0.05, 0.0]), steep)
    np.testing.assert_allclose(weights, raw / raw.mean())
    assert weights.min() > 0


def test_exponential_and_none_weights() -> None:
    config = RewardConfig(clip_min=-0.02, clip_max=0.04, weighting_mode="exponential")
    rewards = np.array([0.04, -0.02, 0.0])
    raw = np.exp(rewards / 0.04)
    weights = reward_weights(rewards, config)
    np.testing.assert_allclose(weights, raw / raw.mean())
    assert weights.mean() == pytest.approx(1.0)

    flat = reward_weights(rewards, RewardConfig(weighting_mode="none"))
    np.testing.assert_array_equal(flat, np.ones(3))
    assert reward_weights(np.array([]), CONFIG).size == 0


def test_reward_metrics_on_hand_data() -> None:
    rewards = np.array([0.02, -0.01, 0.0, 0.03, -0.02, 0.0])
    metrics = reward_metrics(rewards)
    assert metrics["count"] == 6
    assert (metrics["positive"], metrics["negative"], metrics["neutral"]) == (2, 2, 2)
    assert metrics["win_rate"] == 0.5
    assert metrics["mean"] == pytest.approx(0.02 / 6)
    assert metrics["cumulative"] == pytest.approx(0.02)
    assert metrics["volatility"] == pytest.approx(np.std(rewards, ddof=1))

    none = reward_metrics(np.array([0.0, 0.0]))
    assert none["win_rate"] is None
    assert reward_metrics(np.array([0.01]))["volatility"] is None
    assert reward_metrics(np.array([]))["mean"] is None


def test_reward_history_is_appended_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "rewards" / "reward_history.jsonl"
    first = [
        {
            "date": dt.date(2024, 5, 2),
            "symbol": "INFY",
            "predicted": UP,
            "realized_return": 0.012,
            "reward": 0.012,
        },
        {
            "date": pd.Timestamp("2024-05-02"),
            "symbol": "TCS",
            "predicted": DOWN,
            "realized_return": 0.004,
            "reward": -0.004,
        },
    ]
    second = [
        {
            "date": "2024-05-03",
            "symbol": "INFY",
            "predicted": np.int64(NEUTRAL),
            "realized_return": np.float64(-0.02),
            "reward": 0.0,
        },
    ]
    assert append_reward_history(path, first) == 2
    assert append_reward_history(path, second) == 1
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["date"], r["symbol"]) for r in lines] == [
        ("2024-05-02", "INFY"),
        ("2024-05-02", "TCS"),
        ("2024-05-03", "INFY"),
    ]
    assert lines[1] == {
        "date": "2024-05-02",
        "symbol": "TCS",
        "predicted": DOWN,
        "realized_return": 0.004,
        "reward": -0.004,
    }

    bad = [second[0], {**second[0], "reward": math.nan}]
    with pytest.raises(ValueError, match="non-finite"):
        append_reward_history(path, bad)
    assert len(path.read_text().splitlines()) == 3


def test_config_validation() -> None:
    assert CONFIG.to_dict()["weighting_mode"] == "linear"
    with pytest.raises(ValueError, match="clip_min < 0 < clip_max"):
        RewardConfig(clip_min=0.01)
    with pytest.raises(ValueError, match="clip_min < 0 < clip_max"):
        RewardConfig(clip_max=-0.01)
    with pytest.raises(ValueError, match="weighting_scale"):
        RewardConfig(weighting_scale=0.0)
    with pytest.raises(ValueError, match="weighting_mode"):
        RewardConfig(weighting_mode="quadratic")  # type: ignore[arg-type]


def test_ab_test_scores_both_arms_on_identical_rows() -> None:
    panel = build_panel(STRONG_IC)
    student_config = StudentConfig(lgbm_params={"num_iterations": 40})
    calls = yesterday_direction(panel["log_return_1"])
    rewards = compute_rewards(calls, panel["forward_return"], CONFIG)
    _, test_idx = time_holdout_split(panel["date"], panel["label_end"], 0.2, 7)
    rewards[test_idx] = np.nan  # outcomes in the test period must not be needed

    report = ab_test(panel, None, FEATURES, student_config, CONFIG, rewards)
    hashes = report["test_rows_sha256"]
    assert hashes["baseline"] == hashes["reward_weighted"] == rows_sha256(panel, test_idx)
    assert report["n_test"] == len(test_idx)
    assert report["baseline"] != report["reward_weighted"]
    mcnemar = report["mcnemar"]
    difference = mcnemar["reward_weighted_only_correct"] - mcnemar["baseline_only_correct"]
    assert report["accuracy_difference"] == pytest.approx(difference / len(test_idx))
    assert 0.0 <= mcnemar["p_value"] <= 1.0
    assert report["train_weights"]["min"] > 0

    unweighted = ab_test(
        panel, None, FEATURES, student_config, RewardConfig(weighting_mode="none"), rewards
    )
    assert unweighted["accuracy_difference"] == 0.0
    assert unweighted["mcnemar"]["p_value"] == 1.0
