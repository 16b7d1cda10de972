"""The reward loop: score directional calls by their realised return, and reweight.

A call is rewarded by what it would have earned, not by whether the label matched: a correct
"up" on a +4 % move is worth more than a correct "up" on +0.1 %. Rewards feed back into
training as sample weights, so samples on which being right (or wrong) mattered most count
more. Whether that helps is an empirical question, hence ``training.reward_ab``, which
compares a reward-weighted student with an unweighted one on identical held-out rows.

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
  it was trained), so they need no cross-fitting. ``training.reward_history`` reads and
  appends those files.

:func:`decayed_rewards` combines them: the reward of a row is the mean of the rewards it
earned from each of the last ``retrain_window`` retrains (this one included), weighted by
``decay ** age`` (age 0 = this retrain, 1 = the newest model with live rewards, ...). Rewards
are clipped to ``[clip_min, clip_max]`` before, so the combination stays in that range.

The functions here are pure; ``RewardConfig.enabled`` and
``ab_testing_enabled`` are switches for the pipeline that decides whether to call them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from sensequant_assets.features.labels import DOWN, NEUTRAL, UP
from sensequant_assets.training.reward_history import CROSS_FIT, LIVE
from sensequant_assets.training.split import assert_disjoint_horizons, purged_block_splits
from sensequant_assets.training.student import StudentConfig, fit_booster

WeightingMode = Literal["linear", "exponential", "none"]
WEIGHTING_MODES = ("linear", "exponential", "none")
MIN_LINEAR_WEIGHT = 1e-3


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
