"""The quarterly retrain's bounded hyperparameter search over the student.

The story recommends "comprehensive retraining with hyperparameter tuning" each quarter. Tuning
is selection, so it is done where it cannot touch the evidence a reviewer reads, and every trial
is kept and counted:

* **Where trials are scored.** The candidate's evidence is the walk-forward's out-of-sample
  period (and the student's holdout, which lies inside it). The search only sees the rows the
  walk-forward's first fold trains on (``evaluation.walk_forward``: dated before its first test
  date, purged and embargoed against it), so no trial ever reads a label, price or teacher
  output of the out-of-sample period. Inside those rows the last third of the dates is the
  inner validation; the rows before it, purged (``label_end`` before the inner validation) and
  embargoed by the label horizon, are the inner training set (``walk_forward_folds`` with one
  fold: the same purge and embargo as every fold). Each trial fits the student's whole
  procedure there (distillation from the teachers whose knowledge ends before the inner
  validation, the reward loop when it is on: ``walk_forward_predictions``).
* **What decides.** The trial's mean daily sector-neutral rank IC of P(up) − P(down) on the
  inner validation (``skill.daily_rank_ic``, the figure the gate tests), over the days whose
  cross-section can be ranked; a day on which the trial's score does not vary (a booster that
  made no split) counts as IC 0. Ties, and a search where no day can be ranked (too few
  symbols), keep the earliest trial; trial 0 is always the configuration the settings give, so
  a search never replaces it without a measured reason.
* **What is kept.** Every trial's parameters, score and whether it was chosen
  (``search_trials.json`` in the bundle, hashed by the manifest), and the count joins the
  deflated Sharpe ratio's N (``evaluation.selection``).

The space (:data:`SEARCH_SPACE`) stays inside the regime docs/student.md measured: stumps on
one random feature each (``num_leaves``, ``max_depth`` and ``feature_fraction`` are not
searched, because anything that can fit noise does). It varies how much the teachers count,
the step size and length, the leaf minimum and the L2 penalty: 3⁵ = 243 points, of which
``trials − 1`` distinct ones are drawn with a fixed seed, so a search is reproducible from its
inputs and every quarter tries the same points.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.artifacts import CandidateLayout
from sensequant_assets.evaluation.skill import daily_rank_ic
from sensequant_assets.evaluation.walk_forward import (
    Fold,
    WalkForwardConfig,
    default_config,
    walk_forward_folds,
    walk_forward_predictions,
)
from sensequant_assets.training.distillation import TeacherOutput
from sensequant_assets.training.rewards import RewardConfig
from sensequant_assets.training.student import StudentConfig, holdout_start

SEARCH_SPACE: Mapping[str, tuple[float | int, ...]] = MappingProxyType(
    {
        "distill_alpha": (0.25, 0.5, 0.75),
        "learning_rate": (0.01, 0.02, 0.04),
        "num_iterations": (150, 300, 600),
        "min_data_in_leaf": (100, 300, 1000),
        "lambda_l2": (0.1, 1.0, 10.0),
    }
)
SEARCH_SEED = 20240101
INNER_VALIDATION_FRACTION = 1 / 3
CRITERION = "mean daily {}rank IC of P(up) - P(down) on the inner validation"


def trial_params(
    base: StudentConfig, n_trials: int, space: Mapping[str, Sequence[float | int]], seed: int
) -> list[dict[str, float | int]]:
    """``n_trials`` parameter sets: ``base``'s own values first, then distinct grid points
    drawn without replacement by a generator seeded with ``seed``."""
    if n_trials < 1:
        raise ValueError(f"a search needs at least 1 trial, got {n_trials}")
    first = {name: searched_value(base, name) for name in space}
    grid = [dict(zip(space, point, strict=True)) for point in itertools.product(*space.values())]
    others = [point for point in grid if point != first]
    if n_trials - 1 > len(others):
        raise ValueError(
            f"{n_trials} trials exceed the configured student and the {len(others)} other "
            "points of the space"
        )
    drawn = np.random.default_rng(seed).choice(len(others), n_trials - 1, replace=False)
    return [first, *(others[int(i)] for i in drawn)]


def searched_value(config: StudentConfig, name: str) -> float | int:
    """``config``'s value of one searched parameter."""
    return config.distill_alpha if name == "distill_alpha" else config.lgbm_params[name]


def with_params(base: StudentConfig, params: Mapping[str, float | int]) -> StudentConfig:
    """``base`` with a trial's parameters (``distill_alpha`` and LightGBM overrides)."""
    lgbm = {name: value for name, value in params.items() if name != "distill_alpha"}
    return replace(
        base,
        distill_alpha=float(params.get("distill_alpha", base.distill_alpha)),
        lgbm_params={**base.lgbm_params, **lgbm},
    )


@dataclass(frozen=True)
class SearchOutcome:
    """The chosen configuration, every trial (``record``: ``search_trials.json``) and the
    summary ``student_runs.json`` carries for the briefing and the manifest."""

    config: StudentConfig
    record: dict[str, Any]

    @property
    def summary(self) -> dict[str, Any]:
        chosen = self.record["trials"][self.record["chosen"]]
        return {
            "space": self.record["space"],
            "trials": len(self.record["trials"]),
            "criterion": self.record["criterion"],
            "chosen": {k: chosen[k] for k in ("trial", "params", "score", "days")},
            "baseline_score": self.record["trials"][0]["score"],
            "inner_validation": self.record["inner_validation"],
        }


@dataclass(frozen=True)
class HyperparameterSearch:
    """A bounded search: ``trials`` points of ``space``, scored on the inner validation.

    ``sectors`` (symbol → sector) makes the rank IC sector-neutral, like the gate's;
    ``reward_config`` is the candidate's, so each trial fits what the candidate would.
    """

    trials: int
    sectors: Mapping[str, str] | None = field(default=None, repr=False)
    reward_config: RewardConfig | None = None
    space: Mapping[str, tuple[float | int, ...]] = field(default_factory=lambda: SEARCH_SPACE)
    seed: int = SEARCH_SEED

    def run(
        self,
        samples: pd.DataFrame,
        teachers: Sequence[TeacherOutput],
        feature_names: Sequence[str],
        base: StudentConfig,
    ) -> SearchOutcome:
        """Score every trial on the inner validation and choose the best."""
        rows = inner_split(samples, base)
        outputs = _restricted(teachers, rows.region, len(samples))
        frame = samples.iloc[rows.region].reset_index(drop=True)
        params = trial_params(base, self.trials, self.space, self.seed)

        def score(trial: Mapping[str, float | int]) -> pd.Series:
            oos = walk_forward_predictions(
                frame, feature_names, with_params(base, trial), [rows.inner], outputs,
                self.reward_config,
            )  # fmt: skip
            # the days the cross-section can be ranked on; a score that does not vary over the
            # day's symbols (a booster that made no split) ranks nothing: IC 0 that day
            days = daily_rank_ic(oos, oos["forward_return"], self.sectors).index
            return daily_rank_ic(oos, sectors=self.sectors).reindex(days, fill_value=0.0)

        # side by side only when each fit is single-threaded, as the walk-forward's folds
        single = int(base.lgbm_params.get("num_threads", 0)) == 1
        workers = min(len(params), os.cpu_count() or 1) if single else 1
        with ThreadPoolExecutor(workers) as pool:
            daily = list(pool.map(score, params))
        means = [float(ic.mean()) if len(ic) else None for ic in daily]
        measured = [(m, -i) for i, m in enumerate(means) if m is not None]
        chosen = -max(measured)[1] if measured else 0
        trials = [
            {"trial": i, "params": p, "score": m, "days": len(ic), "chosen": i == chosen}
            for i, (p, m, ic) in enumerate(zip(params, means, daily, strict=True))
        ]
        record = {
            "space": {name: list(values) for name, values in self.space.items()},
            "seed": self.seed,
            "criterion": CRITERION.format("sector-neutral " if self.sectors else ""),
            "inner_validation": rows.summary(frame),
            "trials": trials,
            "chosen": chosen,
        }
        return SearchOutcome(with_params(base, params[chosen]), record)


@dataclass(frozen=True, eq=False)
class SearchRows:
    """What a search may read: ``region`` (positions into the samples: the walk-forward's first
    fold's training rows) and its one ``inner`` fold (positions into those rows)."""

    region: np.ndarray
    inner: Fold
    out_of_sample_from: dt.date

    def summary(self, rows: pd.DataFrame) -> dict[str, Any]:
        inner = self.inner
        return {
            "train": [inner.train_start.isoformat(), inner.train_end.isoformat()],
            "validation": [inner.test_start.isoformat(), inner.test_end.isoformat()],
            "train_samples": len(inner.train_idx),
            "validation_samples": len(inner.test_idx),
            "purged": inner.purged,
            "embargoed": inner.embargoed,
            "last_label_end": str(pd.Timestamp(rows["label_end"].max()).date()),
            "out_of_sample_from": self.out_of_sample_from.isoformat(),
        }


def inner_split(samples: pd.DataFrame, config: StudentConfig) -> SearchRows:
    """The rows a search may read and its inner fold.

    The rows are the walk-forward's first fold's training rows, which every later fold
    contains and no out-of-sample date reaches; the inner fold holds out their last
    :data:`INNER_VALIDATION_FRACTION` of dates after a purge and an embargo of
    ``config.embargo_sessions``. The student's holdout must not start earlier (it does only
    on histories of under ~85 dates, too short to search).
    """
    embargo = config.embargo_sessions
    outer = default_config(int(samples["date"].nunique()), embargo)
    first = walk_forward_folds(samples["date"], samples["label_end"], outer)[0]
    holdout = holdout_start(samples, config)
    region = np.sort(first.train_idx)
    rows = samples.iloc[region]
    n_dates = int(rows["date"].nunique())
    n_validation = max(1, math.ceil(INNER_VALIDATION_FRACTION * n_dates))
    n_train = n_dates - n_validation - embargo
    if holdout < first.test_start:
        raise ValueError(
            f"the student's holdout starts {holdout}, before the walk-forward's first test date "
            f"{first.test_start}: {samples['date'].nunique()} dates are too few for a search"
        )
    if n_train < 1:
        raise ValueError(
            f"the {n_dates} dates before the out-of-sample period from {first.test_start} are "
            f"too few for a search: {n_validation} to validate on and a {embargo}-session "
            "embargo leave none to train on"
        )
    inner_config = WalkForwardConfig(
        n_folds=1, min_train_sessions=n_train, embargo_sessions=embargo
    )
    (inner,) = walk_forward_folds(rows["date"], rows["label_end"], inner_config)
    return SearchRows(region, inner, first.test_start)


def _restricted(
    teachers: Sequence[TeacherOutput], region: np.ndarray, n_samples: int
) -> list[TeacherOutput]:
    """The teachers' outputs on the search's rows, renumbered to positions among them."""
    position = np.full(n_samples, -1, dtype=np.int64)
    position[region] = np.arange(len(region))
    restricted = []
    for output in teachers:
        keep = position[output.rows] >= 0
        if keep.any():
            restricted.append(
                TeacherOutput(
                    output.window_label,
                    position[output.rows[keep]],
                    output.probabilities[keep],
                    output.knowledge_end,
                )
            )
    return restricted


def searched_config(student_runs: Mapping[str, Any], base: StudentConfig) -> StudentConfig:
    """The configuration a candidate was trained with: ``base`` with its search's chosen
    parameters, or ``base`` itself when no search ran."""
    search = student_runs.get("search")
    return base if search is None else with_params(base, search["chosen"]["params"])


def search_trial_ids(candidate: CandidateLayout) -> tuple[str, ...]:
    """One id per trial of the candidate's search (none when no search ran)."""
    path = candidate.search_trials
    if not path.is_file():
        return ()
    return tuple(f"search trial {t['trial']}" for t in json.loads(path.read_text())["trials"])
