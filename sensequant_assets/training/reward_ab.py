"""The reward loop's A/B test: a reward-weighted student against an unweighted one.

Both arms are fitted on the same training rows and scored on the same held-out rows
(:func:`compare_arms` refuses otherwise), and the comparison is set against the story's
target of a 10 % relative accuracy improvement. The briefing's brief (:func:`ab_summary`)
never claims an improvement that was not measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from sensequant_assets.training.rewards import (
    RewardConfig,
    compute_rewards,
    reward_metrics,
    reward_weights,
)
from sensequant_assets.training.student import (
    StudentConfig,
    StudentResult,
    time_holdout_split,
    train_student,
)

#: The story's target for the reward loop: "10%+ improvement in student model accuracy".
#: :func:`compare_arms` reports the relative improvement it measured against it; it is met
#: only when the measured improvement reaches it and McNemar's test rejects equal accuracy
#: at :data:`AB_SIGNIFICANCE`.
AB_TARGET_RELATIVE_IMPROVEMENT = 0.10


AB_SIGNIFICANCE = 0.05


def ab_test(
    samples: pd.DataFrame,
    soft_targets: np.ndarray | pd.DataFrame | None,
    feature_names: Sequence[str],
    student_config: StudentConfig,
    reward_config: RewardConfig,
    rewards_for_train: Sequence[float] | np.ndarray,
) -> dict[str, Any]:
    """Baseline (unweighted) vs reward-weighted student on the same train and test rows.

    ``rewards_for_train`` is row for row with ``samples``; only the training rows' rewards are
    used (turned into mean-1 weights over those rows), so test rows may hold NaN. Both arms
    share the holdout of :func:`time_holdout_split`; :func:`compare_arms` scores them.
    """
    rewards = np.asarray(rewards_for_train, dtype=np.float64)
    if rewards.shape != (len(samples),):
        raise ValueError(
            f"rewards_for_train must have shape ({len(samples)},), got {rewards.shape}"
        )
    train_idx, _ = time_holdout_split(
        samples["date"],
        samples["label_end"],
        student_config.test_fraction,
        student_config.embargo_sessions,
    )
    weights = np.ones(len(samples))
    weights[train_idx] = reward_weights(rewards[train_idx], reward_config)

    baseline = train_student(samples, soft_targets, feature_names, student_config)
    weighted = train_student(
        samples, soft_targets, feature_names, student_config, sample_weight=weights
    )
    if not np.array_equal(baseline.train_idx, train_idx):
        raise RuntimeError("the A/B arms were trained on rows other than the holdout's")
    return compare_arms(samples, baseline, weighted, weights, rewards, reward_config)


def compare_arms(
    samples: pd.DataFrame,
    baseline: StudentResult,
    weighted: StudentResult,
    weights: np.ndarray,
    rewards: np.ndarray,
    reward_config: RewardConfig,
) -> dict[str, Any]:
    """The A/B report of an unweighted and a reward-weighted student of the same samples.

    Refuses to compare them unless they were trained and evaluated on identical rows. The
    paired comparison is McNemar's exact test: over test rows where exactly one arm is right,
    the number won by the weighted arm is Binomial(n_discordant, ½) if both arms are equally
    accurate; ``p_value`` is the two-sided ``scipy.stats.binomtest`` p-value (1.0 with no
    discordant rows). It treats rows as independent, which overlapping horizons and a shared
    market factor violate, so read it as optimistic.

    ``target`` sets the measured relative accuracy improvement (weighted − baseline) /
    baseline beside the story's :data:`AB_TARGET_RELATIVE_IMPROVEMENT`: ``met`` only when the
    measurement reaches it *and* the test rejects equal accuracy at :data:`AB_SIGNIFICANCE`.
    ``test_rewards`` is what each arm's held-out calls earned, the loop's own currency.
    """
    if not (
        np.array_equal(baseline.train_idx, weighted.train_idx)
        and np.array_equal(baseline.test_idx, weighted.test_idx)
        and baseline.test_rows_sha256 == weighted.test_rows_sha256
    ):
        raise RuntimeError("the A/B arms were trained or evaluated on different rows")
    train_idx, test_idx = baseline.train_idx, baseline.test_idx
    truth = samples["label"].to_numpy(dtype=np.int64)[test_idx]
    returns = samples["forward_return"].to_numpy(dtype=np.float64)[test_idx]
    mcnemar = _mcnemar(baseline.test_predictions == truth, weighted.test_predictions == truth)
    accuracy = (baseline.metrics["accuracy"], weighted.metrics["accuracy"])
    relative = (accuracy[1] - accuracy[0]) / accuracy[0] if accuracy[0] > 0 else None
    met = relative is not None and relative >= AB_TARGET_RELATIVE_IMPROVEMENT
    met = met and mcnemar["p_value"] < AB_SIGNIFICANCE

    def earned(calls: np.ndarray) -> dict[str, Any]:
        return reward_metrics(compute_rewards(calls, returns, reward_config))

    report: dict[str, Any] = {
        "baseline": baseline.metrics,
        "reward_weighted": weighted.metrics,
        "test_rows_sha256": {
            "baseline": baseline.test_rows_sha256,
            "reward_weighted": weighted.test_rows_sha256,
        },
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "accuracy_difference": accuracy[1] - accuracy[0],
        "relative_improvement": relative,
        "mcnemar": mcnemar,
        "target": {
            "relative_improvement": AB_TARGET_RELATIVE_IMPROVEMENT,
            "significance": AB_SIGNIFICANCE,
            "met": bool(met),
        },
        "test_rewards": {
            "baseline": earned(baseline.test_predictions),
            "reward_weighted": earned(weighted.test_predictions),
        },
        "train_rewards": reward_metrics(rewards[train_idx]),
        "train_weights": {
            "min": float(weights[train_idx].min()),
            "max": float(weights[train_idx].max()),
        },
        "reward_config": reward_config.to_dict(),
    }
    report["verdict"] = ab_verdict(report)
    return report


def _mcnemar(baseline_right: np.ndarray, weighted_right: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test over the rows exactly one arm got right (p = 1 with none)."""
    baseline_only = int((baseline_right & ~weighted_right).sum())
    weighted_only = int((weighted_right & ~baseline_right).sum())
    discordant = baseline_only + weighted_only
    p_value = float(binomtest(weighted_only, discordant, 0.5).pvalue) if discordant else 1.0
    return {
        "baseline_only_correct": baseline_only,
        "reward_weighted_only_correct": weighted_only,
        "p_value": p_value,
    }


def ab_verdict(report: Mapping[str, Any]) -> str:
    """One sentence saying what the A/B test measured, against the story's target."""
    accuracy = (report["baseline"]["accuracy"], report["reward_weighted"]["accuracy"])
    relative, p = report["relative_improvement"], report["mcnemar"]["p_value"]
    target = report["target"]
    goal = f"the story's +{100 * target['relative_improvement']:.0f}% target"
    measured = (
        f"reward weighting moved held-out accuracy from {accuracy[0]:.4f} to {accuracy[1]:.4f}"
        + (f" ({100 * relative:+.1f}% relative)" if relative is not None else "")
        + f" on {report['n_test']} identical rows, McNemar p = {p:.3f}"
    )
    if target["met"]:
        return f"{measured}: {goal} is met"
    if relative is not None and relative >= target["relative_improvement"]:
        return (
            f"{measured}: as large as {goal} but not significant at "
            f"{target['significance']:g}, so the target is not shown"
        )
    return f"{measured}: {goal} is not met"


def ab_summary(rewards: Mapping[str, Any] | None) -> dict[str, Any]:
    """The A/B result a candidate's reward summary (``student_runs.json`` → ``rewards``)
    holds, in brief, for ``stat_tests.json`` and the briefing; it says so when the loop was off
    or the test did not run, and never fills in an improvement that was not measured."""
    enabled = bool((rewards or {}).get("enabled"))
    ab = (rewards or {}).get("ab_test") if enabled else None
    brief: dict[str, Any] = {
        "reward_loop": enabled,
        "ran": ab is not None,
        "target_relative_improvement": AB_TARGET_RELATIVE_IMPROVEMENT,
    }
    if not enabled:
        verdict = "reward loop off: no weighting to compare, no improvement claimed"
        return {**brief, "verdict": verdict}
    if ab is None:
        verdict = (
            "A/B test not run (REWARD_AB_TESTING_ENABLED=false): whether the reward "
            "weighting helps was not measured"
        )
        return {**brief, "verdict": verdict}
    accuracy = {"baseline": ab["baseline"]["accuracy"],
                "reward_weighted": ab["reward_weighted"]["accuracy"]}  # fmt: skip
    return {
        **brief,
        "n_test": ab["n_test"],
        "accuracy": accuracy,
        "relative_improvement": ab.get("relative_improvement"),
        "p_value": ab["mcnemar"]["p_value"],
        "target_met": bool((ab.get("target") or {}).get("met")),
        "verdict": ab.get("verdict")
        or "measured before verdicts were recorded: read the accuracies and the p-value",
    }
