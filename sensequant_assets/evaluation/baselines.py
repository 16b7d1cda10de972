"""Simple scores the student must beat on its own out-of-sample rows.

A hit rate above the majority class says little about whether the student ranks stocks as well
as what its features plainly carry. These baselines score the same rows with no boosting at
all, so the rank IC of each can be put next to the student's (``skill.skill_tests``):

* **momentum_h** (h = 5, 10, 20): the day's cross-sectional rank of the feature
  ``log_return_h``, the stock's own past h-session return. Nothing is fit.
* **ridge**: a linear model of the forward (excess) return on all the student's features,
  each standardised within its day (``features.cross_section``), fit by ridge regression on
  the fold's training rows only and applied to its test rows. The target is the training
  rows' forward return minus its day's mean, so the fit explains the cross-section, the only
  part the rank IC scores.

Every score is row for row with the rows asked for and is higher for "more likely to beat the
others". Training rows' forward returns are realised before the fold's test start (the fold
purges them), so no baseline reads the test period's outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sensequant_assets.features.cross_section import cross_sectional_rank, normalised_matrix

MOMENTUM_HORIZONS = (5, 10, 20)
BASELINE_NAMES: tuple[str, ...] = (*(f"momentum_{h}" for h in MOMENTUM_HORIZONS), "ridge")
SCORE_COLUMNS: tuple[str, ...] = tuple(f"score_{name}" for name in BASELINE_NAMES)
# Penalty per training row on standardised features. Heavy on purpose: the target is an
# overlapping 7-session return, mostly noise, and the trend features are collinear (SMA and
# EMA gaps, MACD and its signal), so a light penalty fits noise; a heavy one leans towards
# each feature's own covariance with the return. Mean rank IC at a planted IC of about 0.04
# (5 seeds, 50 symbols): 0.017 at 0.01, 0.034 at 1, 0.038 at 100 (docs/student.md).
RIDGE_PENALTY = 10.0


def momentum_scores(samples: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per row, the day's rank of ``log_return_h`` in [−0.5, 0.5], one array per horizon."""
    columns = [f"log_return_{h}" for h in MOMENTUM_HORIZONS]
    ranks = cross_sectional_rank(samples, columns).to_numpy(dtype=np.float64)
    return {f"momentum_{h}": ranks[:, k] for k, h in enumerate(MOMENTUM_HORIZONS)}


def ridge_coefficients(x: np.ndarray, y: np.ndarray, penalty: float = RIDGE_PENALTY) -> np.ndarray:
    """argmin_b ‖y − x·b‖² + penalty·n·‖b‖² (no intercept: x and y are centred per day)."""
    gram = x.T @ x + penalty * len(x) * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ y)


def ridge_scores(
    standardised: np.ndarray,
    samples: pd.DataFrame,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
) -> np.ndarray:
    """The ridge baseline fit on ``train_idx`` rows and scored on ``test_idx`` rows.

    ``standardised`` is the per-day z-scored feature matrix of ``samples``, row for row; only
    the training rows' forward returns enter the fit.
    """
    train = samples.iloc[train_idx]
    returns = train["forward_return"].to_numpy(dtype=np.float64)
    day_mean = train.groupby("date")["forward_return"].transform("mean").to_numpy()
    beta = ridge_coefficients(standardised[train_idx], returns - day_mean)
    return standardised[test_idx] @ beta


class BaselineScorer:
    """Scores every baseline on a fold's test rows, from the fold's training rows only.

    The per-day normalisations are computed once for the whole frame: each row's value
    depends on its own date's rows alone, so sharing them across folds leaks nothing.
    """

    def __init__(self, samples: pd.DataFrame, feature_names: Sequence[str]) -> None:
        self._samples = samples
        self._momentum = momentum_scores(samples)
        self._standardised = normalised_matrix(samples, feature_names, "zscore")

    def scores(self, train_idx: np.ndarray, test_idx: np.ndarray) -> dict[str, np.ndarray]:
        """``score_<baseline>`` → its scores on ``test_idx``, in :data:`SCORE_COLUMNS` order."""
        values = {f"score_{name}": score[test_idx] for name, score in self._momentum.items()}
        values["score_ridge"] = ridge_scores(self._standardised, self._samples, train_idx, test_idx)
        return {column: values[column] for column in SCORE_COLUMNS}
