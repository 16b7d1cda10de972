"""The reward loop: score directional calls by their realised return, and reweight.

A call is rewarded by what it would have earned, not by whether the label matched: a correct
"up" on a +4 % move is worth more than a correct "up" on +0.1 %. Rewards feed back into
training as sample weights, so samples on which being right (or wrong) mattered most count
more. Whether that helps is an empirical question, hence :func:`ab_test`, which compares a
reward-weighted student with an unweighted one on identical held-out rows.

Where a training row's reward comes from (the story's loop, closed across retrains):

* **this retrain, cross-fitted** (:func:`cross_fitted_rewards`, age 0): the training rows are
  cut into ``cross_fit_blocks`` contiguous time blocks (``training.split.purged_block_splits``:
  purged and embargoed by the label horizon on both sides); each block is called by a student
  fit on the other blocks only, with soft targets only from teachers whose labelled span misses
  the block. No row's reward comes from a model that saw its label. (Calls of the student on
  its own training rows would: on a null panel they "win" far more often than on held-out
  rows, so weights built on them reward overfitting; docs/evaluation.md has the figures.)
* **earlier retrains, live** (``live.rewards``): the production model's calls, once their
  labels matured, appended to the reward history per symbol (``data/reward_history/``) with
  the model that made them. A model's calls are out of its sample by construction (made after
  it was trained), so they need no cross-fitting.

:func:`decayed_rewards` combines them: the reward of a row is the mean of the rewards it
earned from each of the last ``retrain_window`` retrains (this one included), weighted by
``decay ** age`` (age 0 = this retrain, 1 = the newest model with live rewards, ...). Rewards
are clipped to ``[clip_min, clip_max]`` before, so the combination stays in that range.

The functions here are pure, apart from the history file helpers; ``RewardConfig.enabled`` and
``ab_testing_enabled`` are switches for the pipeline that decides whether to call them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from sensequant_assets.atomic import append_durable
from sensequant_assets.features.labels import DOWN, NEUTRAL, UP
from sensequant_assets.training.split import assert_disjoint_horizons, purged_block_splits
from sensequant_assets.training.student import (
    StudentConfig,
    StudentResult,
    fit_booster,
    time_holdout_split,
    train_student,
)

WeightingMode = Literal["linear", "exponential", "none"]
WEIGHTING_MODES = ("linear", "exponential", "none")
MIN_LINEAR_WEIGHT = 1e-3
#: Where a reward came from: a production model's matured live call, a candidate's
#: cross-fitted (out-of-fold) call on a training row, or its final student's held-out call.
LIVE, CROSS_FIT, HOLDOUT = "live", "cross_fit", "holdout"
SOURCES = (LIVE, CROSS_FIT, HOLDOUT)
HISTORY_FIELDS = (
    "date", "symbol", "model_id", "source", "predicted", "realized_return", "reward",
)  # fmt: skip
#: One reward per call: re-recording the same call is a no-op (:func:`append_new_rewards`).
HISTORY_KEY = ("date", "symbol", "model_id", "source")
#: The story's target for the reward loop: "10%+ improvement in student model accuracy".
#: :func:`compare_arms` reports the relative improvement it measured against it; it is met
#: only when the measured improvement reaches it and McNemar's test rejects equal accuracy
#: at :data:`AB_SIGNIFICANCE`.
AB_TARGET_RELATIVE_IMPROVEMENT = 0.10
AB_SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class RewardConfig:
    """Reward shaping and weighting.

    ``horizon_days`` is the number of sessions over which ``realized_return`` is measured
    (it should match the label horizon). Rewards are clipped to ``[clip_min, clip_max]`` so
    one crash or gap cannot dominate the weights. ``decay`` (γ) and ``retrain_window`` set how
    earlier retrains' live rewards count (:func:`decayed_rewards`); ``cross_fit_blocks`` is
    the number of time blocks this retrain's rewards are cross-fitted over.
    """

    enabled: bool = False
    horizon_days: int = 7
    clip_min: float = -0.05
    clip_max: float = 0.05
    weighting_mode: WeightingMode = "linear"
    weighting_scale: float = 1.0
    ab_testing_enabled: bool = False
    decay: float = 0.95
    retrain_window: int = 10
    cross_fit_blocks: int = 5

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
        if not (math.isfinite(self.decay) and 0 < self.decay <= 1):
            raise ValueError(f"decay must lie in (0, 1], got {self.decay}")
        for name, least in (("retrain_window", 1), ("cross_fit_blocks", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer ≥ {least}, got {value!r}")

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
    """Append one JSON line per record (the fields of :data:`HISTORY_FIELDS`).

    The file is only ever appended to, in one write that is flushed and fsynced before
    returning, so history survives a crash right after the call. Every record is validated
    before anything is written, so a bad record never leaves a partial batch behind. Returns
    the number of lines written. For a history that may already hold some of the records
    (a day recorded again), use :func:`append_new_rewards`.
    """
    lines = [_history_line(record) for record in records]
    if not lines:
        return 0
    append_durable(Path(path), "".join(lines).encode("utf-8"))
    return len(lines)


def append_new_rewards(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> int:
    """Append the records whose :data:`HISTORY_KEY` the file does not hold yet; returns how
    many were written (0 when all were recorded before: re-running a day changes nothing).

    Reading the keys and appending happen under an exclusive ``flock`` on the file, so two
    runs recording the same day cannot both append it (a local file system: ``flock`` is not
    reliable over NFS). A line left torn by a crash is kept apart from the next batch by a
    newline and skipped by :func:`read_reward_history`.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            existing = handle.read()
            seen = {_line_key(line) for line in existing.decode("utf-8").splitlines()}
            lines = []
            for record in records:
                line = _history_line(record)
                key = _line_key(line)
                if key not in seen:
                    seen.add(key)
                    lines.append(line)
            if not lines:
                return 0
            data = "".join(lines).encode("utf-8")
            if existing and not existing.endswith(b"\n"):
                data = b"\n" + data
            append_durable(target, data)
            return len(lines)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_reward_history(
    paths: Iterable[str | os.PathLike[str]], sources: Sequence[str] | None = None
) -> pd.DataFrame:
    """The reward records of the history files that exist among ``paths``, one row per
    :data:`HISTORY_KEY` (the first recorded wins), optionally of ``sources`` only.

    Columns are :data:`HISTORY_FIELDS`, ``date`` as a timestamp. Files written before
    records named their model and source (a candidate's held-out rewards) read as
    ``source="holdout"`` with an empty ``model_id``. A line that does not parse (torn by a
    crash mid-append) is skipped with a warning.
    """
    entries: list[dict[str, Any]] = []
    for path in map(Path, paths):
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number} is not a JSON line; skipped", stacklevel=2)
                continue
            entry.setdefault("model_id", "")
            entry.setdefault("source", HOLDOUT)
            entries.append(entry)
    frame = pd.DataFrame(entries, columns=list(HISTORY_FIELDS))
    if sources is not None:
        frame = frame[frame["source"].isin(list(sources))]
    frame = frame.astype(
        {"symbol": str, "model_id": str, "source": str, "predicted": "int64",
         "realized_return": "float64", "reward": "float64"}
    )  # fmt: skip
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.drop_duplicates(list(HISTORY_KEY)).reset_index(drop=True)


def history_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a reward frame (columns :data:`HISTORY_FIELDS`) as records to append."""
    return frame[list(HISTORY_FIELDS)].to_dict("records")


def retrain_ages(model_ids: Iterable[str], current: str, window: int) -> dict[str, int]:
    """Age of each earlier retrain whose rewards count: ``current`` is 0, the newest model id
    before it 1, and so on, up to ``window - 1``; ids are ``live_candidate_<timestamp>``, so
    their order is the order the retrains were trained in. Ids not before ``current`` (a later
    retrain, or ``current`` itself) are left out, as are those past the window."""
    older = sorted({m for m in model_ids if m and m < current}, reverse=True)
    return {model: age for age, model in enumerate(older[: window - 1], start=1)}


def decayed_rewards(
    keys: pd.DataFrame,
    own: Sequence[float] | np.ndarray,
    history: pd.DataFrame | None,
    model_id: str,
    config: RewardConfig,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Each row's reward over the last ``config.retrain_window`` retrains, decayed by γ.

    ``keys`` (``date, symbol``) names the rows; ``own`` is this retrain's (``model_id``'s)
    reward of each, age 0, weight 1. ``history`` holds earlier retrains' live rewards (source
    ``live``); a retrain of age a that rewarded a row adds its reward with weight γ^a
    (``config.decay``). A row's reward is the weighted mean::

        R = (r_0 + Σ_a γ^a · r_a) / (1 + Σ_a γ^a)        over the retrains a that rewarded it

    The mean, not the sum, keeps R within the clip range whatever the number of retrains, so
    the weighting reads it as it reads one reward; the decay sets how much an older model's
    verdict counts beside a newer one's. Returns R row for row and a summary (the retrains in
    the window, their age, weight and the rows each rewarded).
    """
    r0 = np.asarray(own, dtype=np.float64)
    if r0.shape != (len(keys),):
        raise ValueError(f"own must have shape ({len(keys)},), got {r0.shape}")
    numerator, denominator = r0.copy(), np.ones(len(r0))
    retrains = [{"model_id": model_id, "age": 0, "weight": 1.0, "rows": len(r0),
                 "source": CROSS_FIT}]  # fmt: skip
    live = history[history["source"] == LIVE] if history is not None else None
    ages = (
        retrain_ages(live["model_id"], model_id, config.retrain_window) if live is not None else {}
    )
    if ages:
        assert live is not None
        per_call = (
            live[live["model_id"].isin(list(ages))]
            .groupby(["model_id", "date", "symbol"], as_index=False)["reward"]
            .mean()
        )
        index = pd.MultiIndex.from_arrays(
            [pd.to_datetime(keys["date"]).to_numpy(), keys["symbol"].astype(str).to_numpy()]
        )
        for model, age in ages.items():
            rewards = per_call[per_call["model_id"] == model].set_index(["date", "symbol"])
            r = rewards["reward"].reindex(index).to_numpy(dtype=np.float64)
            hit = ~np.isnan(r)
            weight = config.decay**age
            numerator[hit] += weight * r[hit]
            denominator[hit] += weight
            retrains.append({"model_id": model, "age": age, "weight": weight,
                             "rows": int(hit.sum()), "source": LIVE})  # fmt: skip
    summary = {
        "decay": config.decay,
        "retrain_window": config.retrain_window,
        "retrains": retrains,
        "rows_with_live_rewards": int((denominator > 1).sum()),
    }
    return numerator / denominator, summary


@dataclass(frozen=True, eq=False)
class CrossFit:
    """Out-of-fold calls on a set of training rows: each row called by a student fit without it.

    ``rows`` are positions into the samples (as given, time order); ``calls`` (classes),
    ``rewards`` and ``block`` (1..K, the block a row was held out in) are row for row with
    them; ``fit_rows[k - 1]`` are the sample positions block k's caller was fit on, and
    ``blocks`` describes each block (its dates, held and fit rows, rows purged).
    """

    rows: np.ndarray
    calls: np.ndarray
    rewards: np.ndarray
    block: np.ndarray
    fit_rows: tuple[np.ndarray, ...]
    blocks: tuple[dict[str, Any], ...]

    def summary(self) -> dict[str, Any]:
        return {"method": "cross-fitted", "blocks": list(self.blocks)}


def cross_fitted_rewards(
    x: np.ndarray,
    samples: pd.DataFrame,
    rows: np.ndarray,
    targets_for: Callable[[dt.date, dt.date], np.ndarray],
    feature_names: Sequence[str],
    student_config: StudentConfig,
    reward_config: RewardConfig,
    num_threads: int = 0,
) -> CrossFit:
    """Rewards of out-of-fold calls on ``rows`` (positions into ``samples``, e.g. a student's
    training rows): the rewards of this retrain, honest about what each call knew.

    ``rows`` are cut into ``reward_config.cross_fit_blocks`` contiguous time blocks
    (:func:`~sensequant_assets.training.split.purged_block_splits`, embargoed by the student's
    ``embargo_sessions``, the label horizon). Each block is called by an unweighted student fit
    on the rows of the other blocks that survive the purge and embargo, checked by
    :func:`~sensequant_assets.training.split.assert_disjoint_horizons`.
    ``targets_for(first, last)`` gives the distillation targets (n × 3, row for row with
    ``samples``) such a fit may use when the held block's labels span ``first..last``: soft
    targets only from teachers whose labelled span misses it, or a teacher trained on the held
    labels would carry them into the model through its outputs on the other rows. ``x`` is the
    normalised feature matrix of every sample.
    """
    rows = np.asarray(rows, dtype=np.int64)
    dates = pd.to_datetime(samples["date"].iloc[rows]).reset_index(drop=True)
    ends = pd.to_datetime(samples["label_end"].iloc[rows]).reset_index(drop=True)
    splits = purged_block_splits(
        dates, ends, reward_config.cross_fit_blocks, student_config.embargo_sessions
    )
    calls = np.empty(len(rows), dtype=np.int64)
    block = np.empty(len(rows), dtype=np.int64)
    blocks, fits = [], []
    for number, split in enumerate(splits, start=1):
        assert_disjoint_horizons(dates, ends, split)
        fit, held = rows[split.train], rows[split.validation]
        first = dates.iloc[split.validation].min().date()
        reach = ends.iloc[split.validation].max().date()
        targets = np.asarray(targets_for(first, reach), dtype=np.float64)
        booster = fit_booster(
            x[fit], targets[fit], np.ones(len(fit)), feature_names, student_config
        )
        probabilities = booster.predict(x[held], num_threads=num_threads)
        calls[split.validation] = np.asarray(probabilities).argmax(axis=1)
        block[split.validation] = number
        fits.append(fit)
        last = dates.iloc[split.validation].max().date()
        blocks.append({"block": number, "first": str(first), "last": str(last),
                       "labels_reach": str(reach), "held": len(held), "fit": len(fit),
                       "purged_or_embargoed": split.purged})  # fmt: skip
    returns = samples["forward_return"].to_numpy(dtype=np.float64)[rows]
    return CrossFit(
        rows=rows,
        calls=calls,
        rewards=compute_rewards(calls, returns, reward_config),
        block=block,
        fit_rows=tuple(fits),
        blocks=tuple(blocks),
    )


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
    baseline_right = baseline.test_predictions == truth
    weighted_right = weighted.test_predictions == truth
    baseline_only = int((baseline_right & ~weighted_right).sum())
    weighted_only = int((weighted_right & ~baseline_right).sum())
    discordant = baseline_only + weighted_only
    p_value = float(binomtest(weighted_only, discordant, 0.5).pvalue) if discordant else 1.0
    accuracy = (baseline.metrics["accuracy"], weighted.metrics["accuracy"])
    relative = (accuracy[1] - accuracy[0]) / accuracy[0] if accuracy[0] > 0 else None
    met = relative is not None and relative >= AB_TARGET_RELATIVE_IMPROVEMENT
    met = met and p_value < AB_SIGNIFICANCE
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
        "mcnemar": {
            "baseline_only_correct": baseline_only,
            "reward_weighted_only_correct": weighted_only,
            "p_value": p_value,
        },
        "target": {
            "relative_improvement": AB_TARGET_RELATIVE_IMPROVEMENT,
            "significance": AB_SIGNIFICANCE,
            "met": bool(met),
        },
        "test_rewards": {
            "baseline": reward_metrics(
                compute_rewards(baseline.test_predictions, returns, reward_config)
            ),
            "reward_weighted": reward_metrics(
                compute_rewards(weighted.test_predictions, returns, reward_config)
            ),
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


def _history_line(record: Mapping[str, Any]) -> str:
    missing = [f for f in HISTORY_FIELDS if f not in record]
    if missing:
        raise ValueError(f"reward record lacks field(s) {missing}: {record!r}")
    predicted = int(record["predicted"])
    if predicted not in (DOWN, NEUTRAL, UP):
        raise ValueError(f"predicted must be {DOWN}, {NEUTRAL} or {UP}, got {predicted}")
    source = str(record["source"])
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    entry = {
        "date": _iso_date(record["date"]),
        "symbol": str(record["symbol"]),
        "model_id": str(record["model_id"]),
        "source": source,
        "predicted": predicted,
        "realized_return": float(record["realized_return"]),
        "reward": float(record["reward"]),
    }
    try:
        return json.dumps(entry, allow_nan=False) + "\n"
    except ValueError:
        raise ValueError(f"reward record has a non-finite number: {record!r}") from None


def _line_key(line: str) -> tuple[str, ...] | None:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    return tuple(str(entry.get(field, "")) for field in HISTORY_KEY)


def _iso_date(value: object) -> str:
    if isinstance(value, str):
        return dt.date.fromisoformat(value).isoformat()
    if isinstance(value, dt.date | np.datetime64):
        return pd.Timestamp(value).date().isoformat()
    raise ValueError(f"date must be a date or an ISO date string, got {value!r}")


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
