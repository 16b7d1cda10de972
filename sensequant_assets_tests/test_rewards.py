import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.features.cross_section import normalised_matrix
from sensequant_assets.training.reward_ab import (
    AB_SIGNIFICANCE,
    AB_TARGET_RELATIVE_IMPROVEMENT,
    ab_summary,
    ab_test,
    ab_verdict,
)
from sensequant_assets.training.reward_history import (
    HISTORY_KEY,
    append_new_rewards,
    append_reward_history,
    read_reward_history,
)
from sensequant_assets.training.rewards import (
    MIN_LINEAR_WEIGHT,
    RewardConfig,
    compute_rewards,
    cross_fitted_rewards,
    decayed_rewards,
    retrain_ages,
    reward_metrics,
    reward_weights,
)
from sensequant_assets.training.student import (
    StudentConfig,
    rows_sha256,
    time_holdout_split,
    train_student,
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
    model = "live_candidate_20240501_100000"
    first = [
        {
            "date": dt.date(2024, 5, 2),
            "symbol": "INFY",
            "model_id": model,
            "source": "live",
            "predicted": UP,
            "realized_return": 0.012,
            "reward": 0.012,
        },
        {
            "date": pd.Timestamp("2024-05-02"),
            "symbol": "TCS",
            "model_id": model,
            "source": "holdout",
            "predicted": DOWN,
            "realized_return": 0.004,
            "reward": -0.004,
        },
    ]
    second = [
        {
            "date": "2024-05-03",
            "symbol": "INFY",
            "model_id": model,
            "source": "cross_fit",
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
        "model_id": model,
        "source": "holdout",
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
    with pytest.raises(ValueError, match="decay"):
        RewardConfig(decay=0.0)
    with pytest.raises(ValueError, match="retrain_window"):
        RewardConfig(retrain_window=0)
    with pytest.raises(ValueError, match="cross_fit_blocks"):
        RewardConfig(cross_fit_blocks=1)


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
    accuracy = report["baseline"]["accuracy"], report["reward_weighted"]["accuracy"]
    assert report["relative_improvement"] == pytest.approx(
        (accuracy[1] - accuracy[0]) / accuracy[0]
    )
    assert report["target"]["relative_improvement"] == 0.10
    assert f"McNemar p = {mcnemar['p_value']:.3f}" in report["verdict"]
    assert report["test_rewards"]["baseline"]["count"] == len(test_idx)

    unweighted = ab_test(
        panel, None, FEATURES, student_config, RewardConfig(weighting_mode="none"), rewards
    )
    assert unweighted["accuracy_difference"] == 0.0
    assert unweighted["mcnemar"]["p_value"] == 1.0


def _record(day: str, symbol: str, model: str, reward: float, source: str = "live") -> dict:
    call = UP if reward >= 0 else DOWN
    return {"date": day, "symbol": symbol, "model_id": model, "source": source,
            "predicted": call, "realized_return": reward, "reward": reward}  # fmt: skip


def test_recording_a_call_again_appends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "reward_history" / "INFY.jsonl"
    day = [_record("2024-05-02", "INFY", "live_candidate_20240401_100000", 0.01),
           _record("2024-05-03", "INFY", "live_candidate_20240401_100000", -0.02)]  # fmt: skip
    assert append_new_rewards(path, day) == 2
    before = path.read_bytes()
    assert append_new_rewards(path, day) == 0  # the same day re-run
    assert path.read_bytes() == before
    # same date and symbol, another model or another source: a different call
    other = [{**day[0], "model_id": "live_candidate_20240501_100000"},
             {**day[0], "source": "holdout"}, day[1]]  # fmt: skip
    assert append_new_rewards(path, other) == 2
    history = read_reward_history([path, tmp_path / "absent.jsonl"])
    assert len(history) == 4 and not history.duplicated(list(HISTORY_KEY)).any()
    assert history["date"].dtype == "datetime64[ns]"


def test_a_torn_line_is_skipped_and_never_glued_to_the_next_batch(tmp_path: Path) -> None:
    path = tmp_path / "TCS.jsonl"
    append_new_rewards(path, [_record("2024-05-02", "TCS", "live_candidate_20240401_100000", 0.01)])
    with open(path, "ab") as handle:
        handle.write(b'{"date": "2024-05-03", "sym')  # a crash mid-append
    later = _record("2024-05-06", "TCS", "live_candidate_20240401_100000", 0.02)
    assert append_new_rewards(path, [later]) == 1
    with pytest.warns(UserWarning, match="not a JSON line"):
        history = read_reward_history([path])
    assert [d.date().isoformat() for d in history["date"]] == ["2024-05-02", "2024-05-06"]


def test_older_retrains_count_decayed_and_only_within_the_window() -> None:
    current = "live_candidate_20240901_100000"
    history = pd.DataFrame([
        _record("2024-03-01", "INFY", "live_candidate_20240801_100000", 0.04),  # age 1
        _record("2024-03-01", "INFY", "live_candidate_20240701_100000", -0.02),  # age 2
        _record("2024-03-04", "INFY", "live_candidate_20240701_100000", 0.03),
        _record("2024-03-01", "INFY", "live_candidate_20240601_100000", 0.05),  # age 3: out
        _record("2024-03-01", "INFY", "live_candidate_20241001_100000", 0.05),  # newer: out
        _record("2024-03-01", "TCS", "live_candidate_20240801_100000", 0.05, "holdout"),
    ]).assign(date=lambda f: pd.to_datetime(f["date"]))  # fmt: skip
    keys = pd.DataFrame({"date": pd.to_datetime(["2024-03-01", "2024-03-04", "2024-03-05"]),
                         "symbol": ["INFY", "INFY", "INFY"]})  # fmt: skip
    own = np.array([0.01, -0.01, 0.02])
    config = RewardConfig(decay=0.9, retrain_window=3)
    combined, summary = decayed_rewards(keys, own, history, current, config)
    np.testing.assert_allclose(
        combined,
        [(0.01 + 0.9 * 0.04 + 0.81 * -0.02) / (1 + 0.9 + 0.81),
         (-0.01 + 0.81 * 0.03) / (1 + 0.81),
         0.02],
    )  # fmt: skip
    assert [(r["model_id"][-15:], r["age"], r["rows"]) for r in summary["retrains"]] == [
        ("20240901_100000", 0, 3), ("20240801_100000", 1, 1), ("20240701_100000", 2, 2),
    ]  # fmt: skip
    assert summary["rows_with_live_rewards"] == 2
    alone, _ = decayed_rewards(keys, own, history, current, RewardConfig(retrain_window=1))
    np.testing.assert_array_equal(alone, own)
    assert retrain_ages(history["model_id"], current, 10) == {
        "live_candidate_20240801_100000": 1,
        "live_candidate_20240701_100000": 2,
        "live_candidate_20240601_100000": 3,
    }


# A student that can fit noise: leaves of 20 rows, every feature, no random thresholds.
FLEXIBLE = {"num_leaves": 15, "max_depth": -1, "min_data_in_leaf": 20, "feature_fraction": 1.0,
            "extra_trees": False, "num_iterations": 100, "learning_rate": 0.1}  # fmt: skip


def test_on_a_null_panel_cross_fitted_calls_win_no_more_than_held_out_ones() -> None:
    """The in-sample rewards the loop used to weight by: a student that fits noise "wins" on
    its own training rows far more often than anywhere else. Out-of-fold calls do not."""
    panel = build_panel(0.0, n_symbols=10)
    student_config = StudentConfig(lgbm_params=FLEXIBLE)
    first = train_student(panel, None, FEATURES, student_config)
    x = normalised_matrix(panel, FEATURES, student_config.normalisation)
    labels = panel["label"].to_numpy()
    returns = panel["forward_return"].to_numpy()
    train = first.train_idx
    in_sample = compute_rewards(
        first.booster.predict(x[train]).argmax(axis=1), returns[train], CONFIG
    )
    crossfit = cross_fitted_rewards(
        x, panel, train, lambda first, last: np.eye(3)[labels], FEATURES, student_config, CONFIG
    )
    held_out = compute_rewards(first.test_predictions, returns[first.test_idx], CONFIG)
    rates = {name: reward_metrics(r)["win_rate"]
             for name, r in (("in_sample", in_sample), ("cross_fit", crossfit.rewards),
                             ("held_out", held_out))}  # fmt: skip
    assert rates["in_sample"] > 0.75  # measured 0.81: the overfitting the weights rewarded
    assert abs(rates["cross_fit"] - 0.5) < 0.03  # measured 0.507 on ~3,000 directional calls
    assert abs(rates["cross_fit"] - rates["held_out"]) < 0.05  # held out: 0.514
    np.testing.assert_array_equal(crossfit.rows, train)
    for number, fit in enumerate(crossfit.fit_rows, start=1):
        held = train[crossfit.block == number]
        assert not np.intersect1d(fit, held).size  # no caller saw a row it called
        spans = panel.iloc[fit][["date", "label_end"]]
        first_held, reach = panel["date"].iloc[held].min(), panel["label_end"].iloc[held].max()
        assert not ((spans["label_end"] >= first_held) & (spans["date"] <= reach)).any()


def test_the_ab_verdict_reports_what_was_measured() -> None:
    def report(baseline: float, weighted: float, p: float) -> dict:
        relative = (weighted - baseline) / baseline
        met = relative >= AB_TARGET_RELATIVE_IMPROVEMENT and p < AB_SIGNIFICANCE
        target = {"relative_improvement": 0.10, "significance": 0.05, "met": met}
        return {"baseline": {"accuracy": baseline}, "reward_weighted": {"accuracy": weighted},
                "relative_improvement": relative, "mcnemar": {"p_value": p}, "n_test": 500,
                "target": target}  # fmt: skip

    assert ab_verdict(report(0.40, 0.46, 0.001)).endswith("the story's +10% target is met")
    assert "(+15.0% relative) on 500 identical rows, McNemar p = 0.001" in ab_verdict(
        report(0.40, 0.46, 0.001)
    )
    shy = ab_verdict(report(0.40, 0.46, 0.30))
    assert shy.endswith("not significant at 0.05, so the target is not shown")
    assert ab_verdict(report(0.40, 0.41, 0.001)).endswith("target is not met")
    assert ab_summary(None)["verdict"].startswith("reward loop off")
    assert not ab_summary({"enabled": True})["ran"]
    assert "was not measured" in ab_summary({"enabled": True})["verdict"]
