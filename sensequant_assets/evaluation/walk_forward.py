"""Walk-forward, out-of-sample predictions of the student's whole training procedure.

One holdout says little: its score depends on what the market did in that stretch. Walk-forward
re-fits the student on the past only, predicts the next block of dates, moves on, and so yields
out-of-sample predictions for most of the history, one fold after another::

    dates:  |── min_train ──|─ fold 1 ─|─ fold 2 ─|─ fold 3 ─| …
    fold 2: |──── train (expanding, or the last train_sessions) ───|purge+embargo| test |

For the fold whose test block starts at date T:

* **purge** — a training sample must have ``label_end < T``: a label that reads a price of the
  test period would leak it;
* **embargo** — samples dated in the last ``embargo_sessions`` distinct dates before T are also
  dropped, because their features (rolling windows) overlap the test period's and their errors
  are serially correlated with it. Training never uses data after a test fold (the folds only
  move forward), so the embargo that k-fold schemes need *after* a test fold is this gap before
  the next one;
* **teachers** — a sample's distillation target only uses teachers whose own training data
  ended before T (``TeacherOutput.knowledge_end < T``, see ``training.candidate``); otherwise
  the teacher's fit to test-period prices would reach the student through the soft targets.
  Samples with no such teacher keep their hard label;
* **rewards** — with the reward loop on, the fold's training rows (whose forward returns are
  realised before T) are called out of fold, cross-fitted over purged time blocks inside the
  fold with teachers whose labels miss each block (``training.rewards.cross_fitted_rewards``),
  combined with the candidate's snapshot of earlier models' live rewards on those rows,
  decayed per retrain (``decayed_rewards``), and the fold's student is fit with those weights:
  the candidate's own procedure. A live reward on a row dated before T was earned by a model
  deployed before that row, so it knows nothing of the test block.

Baselines are predicted on the same rows: the majority class of the fold's training labels and
yesterday's direction, and the ranking scores of ``evaluation.baselines`` (past-return momentum
and a ridge fit on the fold's training rows), whose rank IC ``skill`` puts beside the student's.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from sensequant_assets.evaluation.baselines import SCORE_COLUMNS, BaselineScorer
from sensequant_assets.features.cross_section import normalised_matrix
from sensequant_assets.training.distillation import TeacherOutput, soft_targets
from sensequant_assets.training.rewards import (
    RewardConfig,
    cross_fitted_rewards,
    decayed_rewards,
    reward_weights,
)
from sensequant_assets.training.split import sample_dates
from sensequant_assets.training.student import (
    YESTERDAY_BAND_COLUMN,
    YESTERDAY_COLUMN,
    StudentConfig,
    distillation_targets,
    fit_booster,
    yesterday_direction,
)

OOS_COLUMNS = (
    "date",
    "symbol",
    "fold",
    "label",
    "forward_return",
    "predicted",
    "p_down",
    "p_neutral",
    "p_up",
    "majority_predicted",
    "yesterday_predicted",
    "base_down",
    "base_neutral",
    "base_up",
    *SCORE_COLUMNS,
)


@dataclass(frozen=True)
class WalkForwardConfig:
    """Fold layout. ``train_sessions`` is the rolling scheme's training length in dates."""

    n_folds: int = 5
    min_train_sessions: int = 120
    embargo_sessions: int = 7
    scheme: Literal["expanding", "rolling"] = "expanding"
    train_sessions: int | None = None

    def __post_init__(self) -> None:
        for name in ("n_folds", "min_train_sessions", "embargo_sessions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer ≥ 0, got {value!r}")
        if self.n_folds < 1:
            raise ValueError(f"n_folds must be ≥ 1, got {self.n_folds}")
        if self.scheme not in ("expanding", "rolling"):
            raise ValueError(f"scheme must be 'expanding' or 'rolling', got {self.scheme!r}")
        if self.scheme == "rolling" and (self.train_sessions is None or self.train_sessions < 1):
            raise ValueError("the rolling scheme needs train_sessions ≥ 1")

    def to_dict(self) -> dict[str, object]:
        return {
            "n_folds": self.n_folds,
            "min_train_sessions": self.min_train_sessions,
            "embargo_sessions": self.embargo_sessions,
            "scheme": self.scheme,
            "train_sessions": self.train_sessions,
        }


@dataclass(frozen=True)
class Fold:
    """Positions (into the samples) of one fold's training and test rows, in date order."""

    number: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    train_start: dt.date
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date
    purged: int
    embargoed: int

    def to_dict(self) -> dict[str, object]:
        return {
            "fold": self.number,
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
            "train_samples": len(self.train_idx),
            "test_samples": len(self.test_idx),
            "purged": self.purged,
            "embargoed": self.embargoed,
        }


def walk_forward_folds(
    dates: Sequence[object] | pd.Series, label_ends: Sequence[object] | pd.Series,
    config: WalkForwardConfig,
) -> list[Fold]:  # fmt: skip
    """Purged, embargoed forward folds over the distinct dates of ``dates``."""
    day, end = sample_dates(dates, label_ends)
    distinct = np.unique(day)
    first_test = config.min_train_sessions + config.embargo_sessions
    n_test_dates = len(distinct) - first_test
    if n_test_dates < config.n_folds:
        raise ValueError(
            f"{len(distinct)} distinct dates leave {max(n_test_dates, 0)} for testing after "
            f"{config.min_train_sessions} training and {config.embargo_sessions} embargo "
            f"sessions; {config.n_folds} fold(s) need at least one date each"
        )
    order = np.argsort(day, kind="stable")
    position = np.searchsorted(distinct, day)
    folds = []
    for number, block in enumerate(np.array_split(np.arange(first_test, len(distinct)),
                                                  config.n_folds), start=1):  # fmt: skip
        start, stop = int(block[0]), int(block[-1])
        cutoff = start - config.embargo_sessions
        earliest = 0
        if config.scheme == "rolling":
            earliest = max(0, cutoff - int(config.train_sessions or 0))
        before = (position >= earliest) & (position < start)
        not_embargoed = position < cutoff
        clean = end < distinct[start]
        train_mask = before & not_embargoed & clean
        test_mask = (position >= start) & (position <= stop)
        if not train_mask.any():
            raise ValueError(f"fold {number} has no training sample left after purging")
        train_dates = day[train_mask]
        folds.append(
            Fold(
                number=number,
                train_idx=order[train_mask[order]],
                test_idx=order[test_mask[order]],
                train_start=_date(train_dates.min()),
                train_end=_date(train_dates.max()),
                test_start=_date(distinct[start]),
                test_end=_date(distinct[stop]),
                purged=int((before & not_embargoed & ~clean).sum()),
                embargoed=int((before & ~not_embargoed).sum()),
            )
        )
    return folds


def walk_forward_predictions(
    samples: pd.DataFrame,
    feature_names: Sequence[str],
    student_config: StudentConfig,
    folds: Sequence[Fold],
    teachers: Sequence[TeacherOutput] = (),
    reward_config: RewardConfig | None = None,
    on_fold: Callable[[Fold, int], None] | None = None,
    reward_history: pd.DataFrame | None = None,
    model_id: str = "",
) -> pd.DataFrame:
    """Out-of-sample predictions of every fold, with the baselines' on the same rows.

    ``samples`` is the student's sample frame (``date, symbol, label, label_end,
    forward_return, last_return`` and the features). ``on_fold(fold, n_folds)``, when
    given, is called after each fold (progress reporting). With the reward loop on,
    ``reward_history`` (earlier models' live rewards) and ``model_id`` (the candidate's, whose
    retrain is age 0) weight each fold as the candidate was weighted. Returns
    :data:`OOS_COLUMNS`.

    Folds are independent fits, so they run side by side on the machine's cores when the
    student is single-threaded (the default). LightGBM keeps its thread count in one
    process-wide setting that every call resets, so then every call here asks for exactly
    one thread too, and each fold computes exactly what it would alone. Features are
    normalised within each date, so the whole frame is normalised once for every fold.
    """
    threads = int(student_config.lgbm_params.get("num_threads", 0))
    workers = min(len(folds), os.cpu_count() or 1) if threads == 1 else 1
    features = list(feature_names)
    fitter = _FoldFitter(
        samples, normalised_matrix(samples, features, student_config.normalisation), features,
        student_config, tuple(teachers), reward_config, reward_history, model_id, threads,
    )  # fmt: skip
    yesterday = yesterday_direction(
        samples[YESTERDAY_COLUMN].to_numpy(), samples[YESTERDAY_BAND_COLUMN].to_numpy()
    )
    baselines = BaselineScorer(samples, features)
    frames = []
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for fold, probabilities in zip(folds, pool.map(fitter.predict, folds), strict=True):
            frames.append(_fold_frame(samples, fold, probabilities, yesterday, baselines))
            if on_fold is not None:
                on_fold(fold, len(folds))
    return pd.concat(frames, ignore_index=True)[list(OOS_COLUMNS)]


@dataclass(frozen=True, eq=False)
class _FoldFitter:
    """One fold's student, fitted as the candidate's was: the same distillation (teachers
    known before the fold's test start) and, with the reward loop on, the same weights."""

    samples: pd.DataFrame
    x: np.ndarray
    features: list[str]
    config: StudentConfig
    teachers: tuple[TeacherOutput, ...]
    reward_config: RewardConfig | None
    reward_history: pd.DataFrame | None
    model_id: str
    threads: int

    @property
    def labels(self) -> np.ndarray:
        return self.samples["label"].to_numpy(dtype=np.int64)

    def targets(self, fold: Fold, outside: tuple[dt.date, dt.date] | None = None) -> np.ndarray:
        labels = self.labels
        teacher_targets = None
        if self.teachers:
            teacher_targets = soft_targets(labels, self.teachers, fold.test_start, outside)
        return distillation_targets(labels, teacher_targets, self.config.distill_alpha)

    def weights(self, fold: Fold) -> np.ndarray:
        train, config = fold.train_idx, self.reward_config
        if config is None or not config.enabled:
            return np.ones(len(train))
        crossfit = cross_fitted_rewards(
            self.x, self.samples, train, lambda first, last: self.targets(fold, (first, last)),
            self.features, self.config, config, self.threads,
        )  # fmt: skip
        keys = self.samples.iloc[train][["date", "symbol"]]
        combined, _ = decayed_rewards(
            keys, crossfit.rewards, self.reward_history, self.model_id, config
        )
        return reward_weights(combined, config)

    def predict(self, fold: Fold) -> np.ndarray:
        train = fold.train_idx
        booster = fit_booster(
            self.x[train], self.targets(fold)[train], self.weights(fold), self.features,
            self.config,
        )  # fmt: skip
        return np.asarray(booster.predict(self.x[fold.test_idx], num_threads=self.threads))


def _fold_frame(
    samples: pd.DataFrame,
    fold: Fold,
    probabilities: np.ndarray,
    yesterday: np.ndarray,
    baselines: BaselineScorer,
) -> pd.DataFrame:
    """A fold's test rows: the student's probabilities and call, and the baselines' (the
    majority class and class shares of the fold's own training rows)."""
    labels = samples["label"].to_numpy(dtype=np.int64)
    counts = np.bincount(labels[fold.train_idx], minlength=3)
    base = counts / counts.sum()
    test = samples.iloc[fold.test_idx]
    return pd.DataFrame(
        {
            "date": test["date"].to_numpy(),
            "symbol": test["symbol"].to_numpy(),
            "fold": fold.number,
            "label": labels[fold.test_idx],
            "forward_return": test["forward_return"].to_numpy(dtype=np.float64),
            "predicted": probabilities.argmax(axis=1),
            "p_down": probabilities[:, 0],
            "p_neutral": probabilities[:, 1],
            "p_up": probabilities[:, 2],
            "majority_predicted": int(counts.argmax()),
            "yesterday_predicted": yesterday[fold.test_idx],
            "base_down": base[0],
            "base_neutral": base[1],
            "base_up": base[2],
            **baselines.scores(fold.train_idx, fold.test_idx),
        }
    )


FIRST_TRAIN_SESSIONS = 250


def default_config(n_dates: int, embargo_sessions: int) -> WalkForwardConfig:
    """Folds sized to the history: the first fold trains on half of the dates, at most
    :data:`FIRST_TRAIN_SESSIONS`, and at most 5 folds test the rest.

    A short history (a one-year pilot has ~190 labelled dates) still gets several folds of at
    least ~20 sessions each. A long one trains its first fold on a year and tests everything
    after it: the power of the gate's tests grows with the out-of-sample length (at NIFTY 100
    × 3 years, ~420 sessions instead of ~340), while a year of 100 symbols is already tens of
    thousands of training rows for a model this small, and later folds train on more.
    """
    min_train = max(60, min(n_dates // 2, FIRST_TRAIN_SESSIONS))
    available = n_dates - min_train - embargo_sessions
    n_folds = max(1, min(5, available // 20)) if available > 0 else 1
    return WalkForwardConfig(
        n_folds=n_folds,
        min_train_sessions=min_train,
        embargo_sessions=embargo_sessions,
    )


def _date(value: np.datetime64) -> dt.date:
    return pd.Timestamp(value).date()


def candidate_walk_forward(
    samples: pd.DataFrame,
    feature_names: Sequence[str],
    teachers: Sequence[TeacherOutput],
    student_config: StudentConfig,
    reward_config: RewardConfig | None,
    max_folds: int,
    on_fold: Callable[[Fold, int], None] | None = None,
    reward_history: pd.DataFrame | None = None,
    model_id: str = "",
) -> tuple[pd.DataFrame, list[Fold], WalkForwardConfig]:
    """Walk-forward of a candidate's whole procedure (distillation and reward loop included).

    Folds follow :func:`default_config`, capped at ``max_folds``, with the student's embargo.
    """
    config = default_config(int(samples["date"].nunique()), student_config.embargo_sessions)
    if config.n_folds > max_folds:
        config = replace(config, n_folds=max_folds)
    folds = walk_forward_folds(samples["date"], samples["label_end"], config)
    oos = walk_forward_predictions(
        samples, feature_names, student_config, folds, teachers, reward_config, on_fold,
        reward_history, model_id,
    )  # fmt: skip
    return oos, folds, config
