"""The reward loop: score past directional calls by their realised return, and reweight.

A call is rewarded by what it would have earned, not by whether the label matched: a correct
"up" on a +4 % move is worth more than a correct "up" on +0.1 %. Rewards feed back into
training as sample weights, so samples on which being right (or wrong) mattered most count
more. Whether that helps is an empirical question, hence :func:`ab_test`, which compares a
reward-weighted student with an unweighted one on identical held-out rows.

The functions here are pure; ``RewardConfig.enabled`` and ``ab_testing_enabled`` are switches
for the pipeline that decides whether to call them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from sensequant_assets.atomic import append_durable
from sensequant_assets.features.labels import DOWN, NEUTRAL, UP
from sensequant_assets.training.student import (
    StudentConfig,
    time_holdout_split,
    train_student,
)

WeightingMode = Literal["linear", "exponential", "none"]
WEIGHTING_MODES = ("linear", "exponential", "none")
MIN_LINEAR_WEIGHT = 1e-3
HISTORY_FIELDS = ("date", "symbol", "predicted", "realized_return", "reward")


@dataclass(frozen=True)
class RewardConfig:
    """Reward shaping and weighting.

    ``horizon_days`` is the number of sessions over which ``realized_return`` is measured
    (it should match the label horizon). Rewards are clipped to ``[clip_min, clip_max]`` so
    one crash or gap cannot dominate the weights.
    """

    enabled: bool = False
    horizon_days: int = 7
    clip_min: float = -0.05
    clip_max: float = 0.05
    weighting_mode: WeightingMode = "linear"
    weighting_scale: float = 1.0
    ab_testing_enabled: bool = False

    def __post_init__(self) -> None:
        for name in ("enabled", "ab_testing_enabled"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if isinstance(self.horizon_days, bool) or not isinstance(self.horizon_days, int):
            raise ValueError(f"horizon_days must be an integer, got {self.horizon_days!r}")
        if self.horizon_days < 1:
            raise ValueError(f"horizon_days must be ≥ 1, got {self.horizon_days}")
        if not (math.isfinite(self.clip_min) and math.isfinite(self.clip_max)):
            raise ValueError("clip_min and clip_max must be finite")
        if not self.clip_min < 0 < self.clip_max:
            raise ValueError(
                f"need clip_min < 0 < clip_max, got clip_min={self.clip_min}, "
                f"clip_max={self.clip_max}"
            )
        if self.weighting_mode not in WEIGHTING_MODES:
            raise ValueError(
                f"weighting_mode must be one of {WEIGHTING_MODES}, got {self.weighting_mode!r}"
            )
        if not (math.isfinite(self.weighting_scale) and self.weighting_scale > 0):
            raise ValueError(f"weighting_scale must be finite and > 0, got {self.weighting_scale}")

    @property
    def reward_scale(self) -> float:
        """max(|clip_min|, clip_max): the largest possible |reward|, used to normalise it."""
        return max(-self.clip_min, self.clip_max)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def compute_rewards(
    predicted: Sequence[int] | np.ndarray,
    realized_return: Sequence[float] | np.ndarray,
    config: RewardConfig,
) -> np.ndarray:
    """Per call: +|r| if the direction was right, −|r| if wrong, 0 for neutral; then clipped.

    Right means up (2) with r > 0 or down (0) with r < 0; wrong is the opposite sign. Neutral
    (1) calls and r == 0 earn 0. Equivalently reward = sign(call)·r with up = +1, down = −1,
    neutral = 0, clipped to ``[clip_min, clip_max]``.
    """
    calls = np.asarray(predicted)
    r = np.asarray(realized_return, dtype=np.float64)
    if calls.ndim != 1 or calls.shape != r.shape:
        raise ValueError(
            f"predicted and realized_return must be 1-D of one length: {calls.shape}, {r.shape}"
        )
    if not np.isin(calls, (DOWN, NEUTRAL, UP)).all():
        raise ValueError(f"predicted must hold classes {DOWN}, {NEUTRAL}, {UP}")
    if not np.isfinite(r).all():
        raise ValueError(
            "realized_return must be finite (a call whose outcome is unknown has no reward)"
        )
    direction = np.select([calls == UP, calls == DOWN], [1.0, -1.0], 0.0)
    return np.clip(direction * r, config.clip_min, config.clip_max)


def reward_weights(rewards: Sequence[float] | np.ndarray, config: RewardConfig) -> np.ndarray:
    """Training weights from rewards, normalised to mean 1.

    With x = weighting_scale · reward / max(|clip_min|, clip_max) (so |x| ≤ scale):

    * ``linear``: w = max(1 + x, 1e-3), floored so a badly wrong call keeps a sliver of weight
      rather than a zero or negative one;
    * ``exponential``: w = exp(x), always positive and multiplicative in the reward;
    * ``none``: w = 1.

    Dividing by the mean keeps the total weight, and so LightGBM's regularisation and
    ``min_sum_hessian_in_leaf`` balance, the same as unweighted training.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"rewards must be 1-D, got shape {r.shape}")
    if not np.isfinite(r).all():
        raise ValueError("rewards must be finite")
    if not len(r):
        return r.copy()
    x = config.weighting_scale * r / config.reward_scale
    if config.weighting_mode == "linear":
        weights = np.maximum(1.0 + x, MIN_LINEAR_WEIGHT)
    elif config.weighting_mode == "exponential":
        weights = np.exp(x)
    else:
        weights = np.ones_like(r)
    return weights / weights.mean()


def reward_metrics(rewards: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Summary of a run of rewards; win rate counts directional (non-zero) rewards only.

    ``volatility`` is the sample std (ddof=1), None below two rewards; ``mean`` is None for
    no rewards and ``win_rate`` is None when there was no directional call with an outcome.
    """
    r = np.asarray(rewards, dtype=np.float64)
    positive, negative = int((r > 0).sum()), int((r < 0).sum())
    directional = positive + negative
    return {
        "count": len(r),
        "mean": float(r.mean()) if len(r) else None,
        "cumulative": float(r.sum()),
        "volatility": float(r.std(ddof=1)) if len(r) > 1 else None,
        "positive": positive,
        "negative": negative,
        "neutral": len(r) - directional,
        "win_rate": positive / directional if directional else None,
    }


def append_reward_history(
    path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]
) -> int:
    """Append one JSON line per record (``date, symbol, predicted, realized_return, reward``).

    The file is only ever appended to, in one write that is flushed and fsynced before
    returning, so history survives a crash right after the call. Every record is validated
    before anything is written, so a bad record never leaves a partial batch behind. Returns
    the number of lines written.
    """
    lines = [_history_line(record) for record in records]
    if not lines:
        return 0
    append_durable(Path(path), "".join(lines).encode("utf-8"))
    return len(lines)


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
    share the holdout of :func:`time_holdout_split`, and the function refuses to compare them
    unless their test rows are identical.

    The paired comparison is McNemar's exact test: over test rows where exactly one arm is
    right, the number won by the weighted arm is Binomial(n_discordant, ½) if both arms are
    equally accurate; ``p_value`` is the two-sided ``scipy.stats.binomtest`` p-value (1.0 with
    no discordant rows). It treats rows as independent, which overlapping horizons and a
    shared market factor violate, so read it as optimistic.
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
    if not (
        np.array_equal(baseline.train_idx, weighted.train_idx)
        and np.array_equal(baseline.train_idx, train_idx)
        and np.array_equal(baseline.test_idx, weighted.test_idx)
        and baseline.test_rows_sha256 == weighted.test_rows_sha256
    ):
        raise RuntimeError("the A/B arms were trained or evaluated on different rows")

    truth = samples["label"].to_numpy(dtype=np.int64)[baseline.test_idx]
    baseline_right = baseline.test_predictions == truth
    weighted_right = weighted.test_predictions == truth
    baseline_only = int((baseline_right & ~weighted_right).sum())
    weighted_only = int((weighted_right & ~baseline_right).sum())
    discordant = baseline_only + weighted_only
    p_value = binomtest(weighted_only, discordant, 0.5).pvalue if discordant else 1.0
    return {
        "baseline": baseline.metrics,
        "reward_weighted": weighted.metrics,
        "test_rows_sha256": {
            "baseline": baseline.test_rows_sha256,
            "reward_weighted": weighted.test_rows_sha256,
        },
        "n_train": len(train_idx),
        "n_test": len(baseline.test_idx),
        "accuracy_difference": weighted.metrics["accuracy"] - baseline.metrics["accuracy"],
        "mcnemar": {
            "baseline_only_correct": baseline_only,
            "reward_weighted_only_correct": weighted_only,
            "p_value": float(p_value),
        },
        "train_rewards": reward_metrics(rewards[train_idx]),
        "train_weights": {
            "min": float(weights[train_idx].min()),
            "max": float(weights[train_idx].max()),
        },
        "reward_config": reward_config.to_dict(),
    }


def _history_line(record: Mapping[str, Any]) -> str:
    missing = [f for f in HISTORY_FIELDS if f not in record]
    if missing:
        raise ValueError(f"reward record lacks field(s) {missing}: {record!r}")
    predicted = int(record["predicted"])
    if predicted not in (DOWN, NEUTRAL, UP):
        raise ValueError(f"predicted must be {DOWN}, {NEUTRAL} or {UP}, got {predicted}")
    entry = {
        "date": _iso_date(record["date"]),
        "symbol": str(record["symbol"]),
        "predicted": predicted,
        "realized_return": float(record["realized_return"]),
        "reward": float(record["reward"]),
    }
    try:
        return json.dumps(entry, allow_nan=False) + "\n"
    except ValueError:
        raise ValueError(f"reward record has a non-finite number: {record!r}") from None


def _iso_date(value: object) -> str:
    if isinstance(value, str):
        return dt.date.fromisoformat(value).isoformat()
    if isinstance(value, dt.date | np.datetime64):
        return pd.Timestamp(value).date().isoformat()
    raise ValueError(f"date must be a date or an ISO date string, got {value!r}")
