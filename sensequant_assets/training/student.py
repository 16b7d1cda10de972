"""One LightGBM student for all symbols, distilled from the per-(symbol, window) teachers.

Distillation target. For sample i with hard label y_i ∈ {0 down, 1 neutral, 2 up} and teacher
class probabilities p_i (a row of ``teacher_probabilities``), the student is fit to::

    q_i = α·p_i + (1 − α)·onehot(y_i),      α = StudentConfig.distill_alpha ∈ [0, 1]

α = 0 is plain hard-label training; α = 1 trusts the teachers alone. With no teacher output at
all (``soft_targets=None``) q_i = onehot(y_i), the no-teacher baseline.

Sample expansion. LightGBM's multiclass objective only takes one integer label per row, so
soft targets are fed as weights: every sample is replicated once per class c, with label c and
weight w_i·q_ic (w_i the caller's sample weight, default 1), and rows of weight 0 are dropped.
The weighted multiclass log-loss of the expanded set is::

    Σ_i Σ_c w_i·q_ic·(−log s_ic) = Σ_i w_i·CE(q_i, s_i)

where s_i is the student's softmax output: exactly the weighted cross-entropy against the
soft target. The replicas of a sample share its feature row, so they always land in the same
leaf, and their summed gradient and hessian for the class-k tree, w_i·(s_ik − q_ik) and
w_i·h(s_ik), are those of a soft-label softmax: the trees grown are the soft-label trees.
Bagging is refused because it would keep or drop replicas independently and break that
equality. ``min_data_in_leaf`` counts replicas, so the defaults also bound leaves by
``min_sum_hessian_in_leaf``, which expansion leaves unchanged. (LightGBM's histogram bin
edges are built from unweighted rows and may shift slightly; nothing else differs.)

What the student reads. Features are ranked within each date (``StudentConfig.normalisation``,
``features.cross_section``) in training and in every prediction alike (``normalised_matrix``,
:func:`predict_probabilities`); the metadata names the normalisation, so a loaded student
predicts as it was trained. Raw levels swing with the whole market and let trees fit those few
episodes; the day's ordering of stocks is what carries over to the next fold. The booster is
deliberately weak (stumps on one random feature at a random threshold, many small steps): a
signal of rank IC 0.03-0.05 moves class probabilities by a few points, and anything that can
fit noise does. docs/student.md has the measurements.

Evaluation holds out the most recent stretch of dates across all symbols (see
:func:`time_holdout_split`) and reports metrics on it next to two naive baselines computed on
the same rows, so "the student works" is a claim measured against doing nothing clever.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from sensequant_assets.classification import classification_report, log_loss
from sensequant_assets.features.cross_section import (
    NORMALISATIONS,
    Normalisation,
    normalised_matrix,
)
from sensequant_assets.features.labels import CLASS_NAMES, DOWN, NEUTRAL, UP
from sensequant_assets.live.drift import DriftReference
from sensequant_assets.training.split import sample_dates

CLASSES = (DOWN, NEUTRAL, UP)
N_CLASSES = len(CLASSES)
SAMPLE_COLUMNS = ("date", "symbol", "label", "label_end", "forward_return")
YESTERDAY_COLUMN = "last_return"
YESTERDAY_BAND_COLUMN = "last_band"


DEFAULT_LGBM_PARAMS: Mapping[str, Any] = MappingProxyType(
    {
        "objective": "multiclass",
        "num_class": N_CLASSES,
        "learning_rate": 0.02,
        "num_iterations": 300,
        # Stumps, each on one feature (0.07 × 14-16 features rounds to 1) at a random
        # threshold: an additive model of many small, decorrelated steps.
        "num_leaves": 2,
        "max_depth": 1,
        "feature_fraction": 0.07,
        "extra_trees": True,
        "min_data_in_leaf": 300,
        "min_sum_hessian_in_leaf": 10.0,
        "lambda_l2": 1.0,
        "seed": 7,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbosity": -1,
    }
)
# Parameters whose other values would make the model something other than a 3-class softmax
# over unbagged, expanded rows.
_FIXED_PARAMS: Mapping[str, Any] = MappingProxyType({"objective": "multiclass", "num_class": 3})
_FORBIDDEN_PARAMS = ("bagging_fraction", "bagging_freq", "subsample", "subsample_freq")


@dataclass(frozen=True)
class StudentConfig:
    """How the student is trained and evaluated.

    ``lgbm_params`` are overrides merged over :data:`DEFAULT_LGBM_PARAMS` (the merged mapping
    is what is stored); ``num_iterations`` there is the number of boosting rounds.
    ``embargo_sessions`` defaults to the 7-session label horizon. ``normalisation`` is how
    features are normalised within each date before the booster reads them ("none": raw).
    """

    distill_alpha: float = 0.5
    lgbm_params: Mapping[str, Any] = field(default_factory=dict)
    test_fraction: float = 0.2
    embargo_sessions: int = 7
    normalisation: Normalisation = "rank"

    def __post_init__(self) -> None:
        if not 0.0 <= self.distill_alpha <= 1.0:
            raise ValueError(f"distill_alpha must lie in [0, 1], got {self.distill_alpha!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {self.test_fraction!r}")
        if isinstance(self.embargo_sessions, bool) or not isinstance(self.embargo_sessions, int):
            raise ValueError(f"embargo_sessions must be an integer, got {self.embargo_sessions!r}")
        if self.embargo_sessions < 0:
            raise ValueError(f"embargo_sessions must be ≥ 0, got {self.embargo_sessions}")
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(
                f"normalisation must be one of {NORMALISATIONS}, got {self.normalisation!r}"
            )
        params = {**DEFAULT_LGBM_PARAMS, **self.lgbm_params}
        for key, value in _FIXED_PARAMS.items():
            if params[key] != value:
                raise ValueError(f"lgbm_params[{key!r}] must be {value!r}, got {params[key]!r}")
        bagging = [k for k in _FORBIDDEN_PARAMS if k in params]
        if bagging:
            raise ValueError(f"bagging breaks soft-target sample expansion; remove {bagging}")
        object.__setattr__(self, "lgbm_params", MappingProxyType(params))

    def to_dict(self) -> dict[str, Any]:
        return {
            "distill_alpha": self.distill_alpha,
            "lgbm_params": dict(self.lgbm_params),
            "test_fraction": self.test_fraction,
            "embargo_sessions": self.embargo_sessions,
            "normalisation": self.normalisation,
        }


@dataclass(frozen=True, eq=False)
class StudentResult:
    """A trained student and its held-out evaluation.

    Index arrays are positions into the ``samples`` frame given to :func:`train_student`;
    ``test_predictions``/``test_probabilities`` are row for row with ``test_idx``.
    ``drift_reference`` is the training rows' law, what live rows are later compared with.
    """

    booster: lgb.Booster
    config: StudentConfig
    feature_names: tuple[str, ...]
    train_idx: np.ndarray
    test_idx: np.ndarray
    test_predictions: np.ndarray
    test_probabilities: np.ndarray
    metrics: dict[str, Any]
    sample_counts: dict[str, int]
    test_start: dt.date
    test_rows_sha256: str
    distilled: bool
    drift_reference: DriftReference


def distillation_targets(
    labels: np.ndarray, soft_targets: np.ndarray | pd.DataFrame | None, alpha: float
) -> np.ndarray:
    """q = α·p_teacher + (1 − α)·onehot(y), shape (n, 3); onehot(y) when there is no teacher."""
    y = np.asarray(labels, dtype=np.int64)
    if len(y) and (y.min() < 0 or y.max() >= N_CLASSES):
        raise ValueError(f"labels must be classes {list(CLASSES)}")
    onehot = np.eye(N_CLASSES)[y]
    if soft_targets is None:
        return onehot
    p = _check_soft_targets(soft_targets, len(y))
    return alpha * p + (1.0 - alpha) * onehot


def expand_soft_targets(
    targets: np.ndarray, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample expansion: ``(rows, classes, weights)`` with one entry per (sample, class).

    Entry k says "repeat sample ``rows[k]`` with label ``classes[k]`` and weight
    ``weights[k]`` = w_i·q_ic". Zero-weight entries are dropped, so one-hot targets give back
    the original samples in order. Per sample the weights sum to w_i and, divided by w_i,
    reproduce q_i.
    """
    q = np.asarray(targets, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != N_CLASSES:
        raise ValueError(f"targets must have shape (n, {N_CLASSES}), got {q.shape}")
    w = _check_weights(sample_weight, len(q))
    expanded = w[:, None] * q
    rows, classes = np.nonzero(expanded > 0)
    return rows, classes, expanded[rows, classes]


def time_holdout_split(
    dates: pd.Series, label_ends: pd.Series, test_fraction: float, embargo_sessions: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, test_idx)``: positions, each in time order, of an out-of-time holdout.

    The distinct dates of all symbols are sorted; the last ``ceil(test_fraction × n_dates)``
    of them form the test period, and every sample dated in it is a test sample (one date is
    never split between the sets, and nothing is shuffled). A training sample must end its
    label before the first test date (``label_end`` < test start: a label that reads a
    test-period price is purged) and must not lie within the last ``embargo_sessions``
    distinct dates before the test start (an embargo that also keeps samples whose features
    overlap the test period's out of training, whatever their ``label_end``).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    if embargo_sessions < 0:
        raise ValueError(f"embargo_sessions must be ≥ 0, got {embargo_sessions}")
    day, end = sample_dates(dates, label_ends)
    distinct = np.unique(day)
    n_test = max(1, math.ceil(test_fraction * len(distinct)))
    first_train_excluded = len(distinct) - n_test - embargo_sessions
    if first_train_excluded <= 0:
        raise ValueError(
            f"{len(distinct)} distinct dates leave none for training after holding out "
            f"{n_test} and embargoing {embargo_sessions}"
        )
    test_start = distinct[-n_test]
    train_cutoff = distinct[first_train_excluded]
    train_mask = (day < train_cutoff) & (end < test_start)
    test_mask = day >= test_start
    if not train_mask.any():
        raise ValueError("purging leaves no training samples")
    order = np.argsort(day, kind="stable")
    return order[train_mask[order]], order[test_mask[order]]


def holdout_start(samples: pd.DataFrame, config: StudentConfig) -> dt.date:
    """First date of the holdout ``train_student`` will score: the cut-off for teachers.

    A teacher whose knowledge reaches this date has seen labels of the holdout; its soft
    targets on training rows would carry them into the model scored there.
    """
    _, test_idx = time_holdout_split(
        samples["date"], samples["label_end"], config.test_fraction, config.embargo_sessions
    )
    return pd.Timestamp(samples["date"].iloc[test_idx].min()).date()


def train_student(
    samples: pd.DataFrame,
    soft_targets: np.ndarray | pd.DataFrame | None,
    feature_names: Sequence[str],
    config: StudentConfig,
    sample_weight: np.ndarray | None = None,
) -> StudentResult:
    """Train on the purged past of ``samples``, evaluate on its held-out most recent dates.

    ``samples`` holds ``date, symbol, label, label_end, forward_return``, the features and
    ``last_return`` (the label's measure over the last session, for the yesterday's-direction
    baseline; see ``make_labels``);
    every row must be labelled. ``soft_targets`` and ``sample_weight`` are row for row with
    ``samples``; only their training rows are used, so test-period teacher outputs or weights
    can never shape the model that is scored on that period. That is not enough on its own:
    a teacher trained on holdout labels leaks them through its outputs on training rows, so
    callers build ``soft_targets`` from teachers whose knowledge ends before
    :func:`holdout_start`.
    """
    features = list(feature_names)
    _check_samples(samples, features)
    labels = samples["label"].to_numpy(dtype=np.int64)
    targets = distillation_targets(labels, soft_targets, config.distill_alpha)
    weights = _check_weights(sample_weight, len(samples))

    train_idx, test_idx = time_holdout_split(
        samples["date"], samples["label_end"], config.test_fraction, config.embargo_sessions
    )
    x = normalised_matrix(samples, features, config.normalisation)
    booster = fit_booster(x[train_idx], targets[train_idx], weights[train_idx], features, config)
    probabilities = booster.predict(x[test_idx])
    predictions = probabilities.argmax(axis=1)
    fitted = booster.predict(x[train_idx])
    reference = DriftReference.of(
        samples.iloc[train_idx], features, fitted[:, UP] - fitted[:, DOWN]
    )
    metrics = _metrics(samples, labels, train_idx, test_idx, predictions, probabilities)
    test_dates = pd.to_datetime(samples["date"].iloc[test_idx])
    before_test = int((pd.to_datetime(samples["date"]) < test_dates.min()).sum())
    return StudentResult(
        booster=booster,
        config=config,
        feature_names=tuple(features),
        train_idx=train_idx,
        test_idx=test_idx,
        test_predictions=predictions,
        test_probabilities=probabilities,
        metrics=metrics,
        sample_counts={
            "total": len(samples),
            "train": len(train_idx),
            "test": len(test_idx),
            "purged_or_embargoed": before_test - len(train_idx),
            "expanded_train_rows": int(
                np.count_nonzero(weights[train_idx, None] * targets[train_idx])
            ),
        },
        test_start=test_dates.min().date(),
        test_rows_sha256=rows_sha256(samples, test_idx),
        distilled=soft_targets is not None and config.distill_alpha > 0,
        drift_reference=reference,
    )


def fit_booster(
    x: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    feature_names: Sequence[str],
    config: StudentConfig,
) -> lgb.Booster:
    """Fit the student's booster to targets ``q`` (n × 3) by sample expansion.

    Every row given is a training row: callers choose them (a holdout or a walk-forward fold).
    """
    rows, classes, row_weights = expand_soft_targets(targets, weights)
    if not len(rows):
        raise ValueError("every training sample has weight 0")
    params = dict(config.lgbm_params)
    rounds = int(params.pop("num_iterations"))
    dataset = lgb.Dataset(
        x[rows],
        label=classes,
        weight=row_weights,
        feature_name=list(feature_names),
        params={"verbosity": params.get("verbosity", -1)},
    )
    return lgb.train(params, dataset, num_boost_round=rounds)


def predict_probabilities(
    booster: lgb.Booster,
    frame: pd.DataFrame,
    feature_names: Sequence[str],
    normalisation: Normalisation,
    num_threads: int = 0,
) -> np.ndarray:
    """Class probabilities (n × 3, down/neutral/up) for the rows of ``frame``: ``date`` and
    the features of every symbol scored on each date (the cross-section ranked within). A
    row's inputs depend only on its own date's rows, so today's universe scored alone gets
    what it would inside the training frame. A stored student takes its metadata's
    ``feature_names`` and ``student_files.stored_normalisation``."""
    x = normalised_matrix(frame, feature_names, normalisation)
    return np.asarray(booster.predict(x, num_threads=num_threads))


def rows_sha256(samples: pd.DataFrame, idx: np.ndarray) -> str:
    """SHA-256 of the ``date|symbol`` keys of the rows at ``idx``, in that order.

    Two evaluations with the same hash were scored on exactly the same samples.
    """
    digest = hashlib.sha256()
    dates = pd.to_datetime(samples["date"].iloc[idx]).dt.strftime("%Y-%m-%d")
    for date, symbol in zip(dates, samples["symbol"].iloc[idx], strict=True):
        digest.update(f"{date}|{symbol}\n".encode())
    return digest.hexdigest()


def yesterday_direction(
    last_return: np.ndarray | pd.Series, band: np.ndarray | pd.Series | float = 0.0
) -> np.ndarray:
    """Predict the last session's class: up (2) above ``band``, down (0) below −``band``.

    Fed the label's own measure (``last_return``: with market-relative labels, whether the
    stock beat the market yesterday) and the label's neutral band scaled to one session
    (``last_band``), so the baseline predicts what the label scores, neutral included: without
    the band it never says neutral and scores far below any honest model. A move inside the
    band, or an unknown (NaN) one, predicts neutral (1).
    """
    r = np.asarray(last_return, dtype=np.float64)
    b = np.asarray(band, dtype=np.float64)
    return np.select([r > b, r < -b], [UP, DOWN], NEUTRAL)


def _check_samples(samples: pd.DataFrame, features: list[str]) -> None:
    needed = (*SAMPLE_COLUMNS, YESTERDAY_COLUMN, YESTERDAY_BAND_COLUMN, *features)
    missing = [c for c in needed if c not in samples]
    if missing:
        raise ValueError(f"samples lack column(s) {sorted(set(missing))}")
    if not features:
        raise ValueError("feature_names is empty")
    if len(set(features)) != len(features):
        raise ValueError("feature_names has duplicates")
    if samples["label"].isna().any():
        raise ValueError("every sample needs a label; drop unlabelled rows first")


def _check_soft_targets(soft_targets: np.ndarray | pd.DataFrame, n: int) -> np.ndarray:
    p = np.asarray(soft_targets, dtype=np.float64)
    if p.shape != (n, N_CLASSES):
        raise ValueError(f"soft_targets must have shape ({n}, {N_CLASSES}), got {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("soft_targets must be finite and non-negative")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("every soft_targets row must sum to 1")
    return p


def _check_weights(sample_weight: np.ndarray | None, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must be finite and non-negative")
    return w


def _metrics(
    samples: pd.DataFrame,
    labels: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
) -> dict[str, Any]:
    """Held-out metrics plus the two naive baselines, all on the same test rows."""
    truth = labels[test_idx]
    report = classification_report(truth, predictions)
    accuracy = report["accuracy"]
    train_counts = np.bincount(labels[train_idx], minlength=N_CLASSES)
    majority = int(train_counts.argmax())
    majority_accuracy = float(np.mean(truth == majority))
    yesterday = yesterday_direction(
        samples[YESTERDAY_COLUMN].to_numpy()[test_idx],
        samples[YESTERDAY_BAND_COLUMN].to_numpy()[test_idx],
    )
    yesterday_accuracy = float(np.mean(truth == yesterday))
    return {
        "n_test": len(test_idx),
        **{k: v for k, v in report.items() if k != "samples"},
        "log_loss": log_loss(truth, probabilities),
        "baselines": {
            "majority_class": {
                "class": CLASS_NAMES[majority],
                "accuracy": majority_accuracy,
            },
            "yesterday_direction": {"accuracy": yesterday_accuracy},
        },
        "beats_baselines": {
            "majority_class": accuracy > majority_accuracy,
            "yesterday_direction": accuracy > yesterday_accuracy,
        },
    }
