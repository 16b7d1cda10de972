"""Per-window LightGBM teacher: fit, evaluate honestly, persist atomically, reload verified.

A teacher is one symbol's model for one :class:`TrainingWindow`. Its validation metrics come
from a purged, time-ordered split, so they estimate how the model does on the following weeks,
and its class probabilities later become the student's soft targets.

Each teacher lives in its own directory holding ``metadata.json`` (a :class:`TeacherRun`) and,
for completed runs only, ``model.txt`` in LightGBM's own text format: readable, diffable and
version-tolerant, unlike a pickle, which would also execute code on load. The directory is
built as a hidden sibling, fsynced and renamed into place (``atomic.replace_dir``), so readers
see either the previous teacher or the new one, never a half-written mix; the directory always
reflects the latest attempt (completed, skipped or failed).

Classes are fixed to 0 down, 1 neutral, 2 up (:data:`CLASS_NAMES`). The model is fitted with
``lightgbm.train`` on those raw ids with ``objective="multiclass", num_class=3`` rather than
with ``LGBMClassifier``: the classifier label-encodes the classes it happens to see, so a
training block without, say, neutral samples would silently become a binary model whose
columns mean something else. With the native API the booster always has three outputs in
class order; a class absent from training simply keeps a near-zero probability.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.classification import probability_report
from sensequant_assets.features.labels import CLASS_NAMES, LabelSpec, make_labels
from sensequant_assets.features.technical import compute_features, feature_columns
from sensequant_assets.training.split import Split, purged_time_split
from sensequant_assets.training.teacher_record import TeacherRun, save_teacher, write_record
from sensequant_assets.training.windows import (
    SkipReason,
    TrainingWindow,
    WindowSkipped,
    check_future_data,
)

CLASS_IDS = tuple(sorted(CLASS_NAMES))

# Small-data defaults: a 180-day window gives ~90 training rows, so trees stay shallow, leaves
# may hold few samples, and row/column subsampling plus L2 shrinkage fight overfitting.
# ``deterministic`` + a fixed seed + one thread + ``force_col_wise`` (LightGBM otherwise picks
# row- or column-wise histograms by timing them) make the model file byte-for-byte repeatable;
# parallelism comes from running windows in separate processes instead.
DEFAULT_LGBM_PARAMS: Mapping[str, Any] = MappingProxyType(
    {
        "objective": "multiclass",
        "num_class": len(CLASS_NAMES),
        "num_leaves": 15,
        "learning_rate": 0.05,
        "n_estimators": 50,
        "min_child_samples": 5,
        "subsample": 0.8,
        "bagging_freq": 1,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "seed": 7,
        "deterministic": True,
        "force_col_wise": True,
        "n_jobs": 1,
        "verbose": -1,
    }
)


def _default_params() -> Mapping[str, Any]:
    return DEFAULT_LGBM_PARAMS


@dataclass(frozen=True)
class TeacherConfig:
    """How every teacher is trained; recorded in each run so results can be reproduced.

    ``lgbm_params`` are overrides merged onto :data:`DEFAULT_LGBM_PARAMS`, so changing one
    knob keeps determinism and the objective; use the default key names, not LightGBM
    aliases of them, or both spellings reach LightGBM. The objective must stay a 3-class
    softmax because the student relies on ``[down, neutral, up]`` probabilities.
    """

    label: LabelSpec = field(default_factory=LabelSpec)
    min_samples: int = 20
    validation_fraction: float = 0.25
    min_per_class: int = 2
    lgbm_params: Mapping[str, Any] = field(default_factory=_default_params)

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if self.min_samples < 1 or self.min_per_class < 1:
            raise ValueError(
                f"min_samples and min_per_class must be positive, got {self.min_samples} "
                f"and {self.min_per_class}"
            )
        merged = {**DEFAULT_LGBM_PARAMS, **self.lgbm_params}
        if merged["objective"] != "multiclass" or merged["num_class"] != len(CLASS_NAMES):
            raise ValueError(
                "teachers must use objective='multiclass' with num_class=3, got "
                f"objective={merged['objective']!r}, num_class={merged['num_class']!r}"
            )
        object.__setattr__(self, "lgbm_params", MappingProxyType(merged))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form for metadata."""
        return {
            "label": asdict(self.label),
            "min_samples": self.min_samples,
            "validation_fraction": self.validation_fraction,
            "min_per_class": self.min_per_class,
            "lgbm_params": dict(self.lgbm_params),
        }


def window_samples(
    window: TrainingWindow,
    bars: pd.DataFrame,
    label: LabelSpec,
    sentiment: pd.Series | None = None,
    market: pd.Series | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The window's trainable samples and how many rows survived each stage.

    Features and labels are computed on all of ``bars`` (warm-up before the window and the
    label horizon after it included), then cut to sessions inside ``[window.start,
    window.end]`` whose features are all defined and whose label is known. Returned columns:
    ``date``, the features, ``label`` (int64) and ``label_end``, in date order.
    """
    if "symbol" in bars.columns and (bars["symbol"] != window.symbol).any():
        raise ValueError(f"{window.label}: bars hold symbols other than {window.symbol}")
    ordered = bars
    if not bars["date"].is_monotonic_increasing:
        ordered = bars.sort_values("date", kind="stable")
    ordered = ordered.reset_index(drop=True)
    features = compute_features(ordered, sentiment)
    labels = make_labels(ordered, label, market)
    # Row selection on numpy masks and one positional take of the feature frame, which holds
    # ``date`` then exactly ``feature_columns(...)``: boolean .loc, column lists and assign
    # on these small frames cost more than computing the features did.
    defined = ~np.isnan(features.iloc[:, 1:].to_numpy(dtype=np.float64)).any(axis=1)
    dates = pd.to_datetime(ordered["date"], cache=False).array
    inside = (dates >= pd.Timestamp(window.start)) & (dates <= pd.Timestamp(window.end))
    known = labels["label"].notna().to_numpy()
    rows = np.flatnonzero(defined & inside & known)
    samples = features.take(rows).reset_index(drop=True)
    samples["label"] = labels["label"].take(rows).to_numpy(dtype=np.int64)
    samples["label_end"] = labels["label_end"].take(rows).array
    counts = {
        "rows_loaded": len(bars),
        "after_warmup": int(defined.sum()),
        "labelled": len(samples),
    }
    return samples, counts


def fit_teacher_model(
    features: pd.DataFrame, labels: np.ndarray | pd.Series, config: TeacherConfig
) -> lgb.Booster:
    """A 3-class booster on raw class ids 0/1/2, whatever subset of them ``labels`` holds.

    The training booster itself is returned (``keep_training_booster``): by default LightGBM
    serialises it to text and parses it back, a sixth of a window's time, and the text it saves
    and the predictions are the same either way (the tests compare them exactly).
    """
    params = dict(config.lgbm_params)
    y = np.asarray(labels, dtype=np.int64)
    if len(y) and not np.isin(y, CLASS_IDS).all():
        raise ValueError(f"labels must be class ids {CLASS_IDS}, got {sorted(set(y.tolist()))}")
    data = lgb.Dataset(
        features.to_numpy(dtype=np.float64),
        label=y,
        feature_name=[str(c) for c in features.columns],
    )
    return lgb.train(params, data, keep_training_booster=True)


def teacher_probabilities(
    booster: lgb.Booster, features: pd.DataFrame, feature_names: list[str] | tuple[str, ...]
) -> np.ndarray:
    """``n × 3`` probabilities in class order [down, neutral, up]; rows sum to 1.

    Columns are selected by name and checked against the booster's own feature list, because
    LightGBM reads numpy input by position and a reordered frame would be silently misread.
    """
    names = list(feature_names)
    _require_model_features(booster, names)
    missing = [name for name in names if name not in features.columns]
    if missing:
        raise ValueError(f"features lack column(s) {missing}")
    return matrix_probabilities(booster, names, features[names].to_numpy(dtype=np.float64))


def matrix_probabilities(
    booster: lgb.Booster, feature_names: Sequence[str], matrix: np.ndarray
) -> np.ndarray:
    """:func:`teacher_probabilities` of a feature matrix whose columns are ``feature_names``."""
    _require_model_features(booster, list(feature_names))
    if len(matrix) == 0:
        return np.empty((0, len(CLASS_NAMES)))
    # One thread: a teacher scores ~100 rows, for which starting an OpenMP team costs more than
    # the prediction; rows are scored independently, so the result is the same.
    probabilities = np.asarray(booster.predict(matrix, num_threads=1))
    if probabilities.shape != (len(matrix), len(CLASS_NAMES)):
        raise ValueError(
            f"model returned probabilities of shape {probabilities.shape}, expected "
            f"({len(matrix)}, {len(CLASS_NAMES)})"
        )
    return probabilities


def _require_model_features(booster: lgb.Booster, names: list[str]) -> None:
    if booster.feature_name() != names:
        raise ValueError(
            f"feature_names {names} differ from the model's features {booster.feature_name()}"
        )


def train_teacher(
    window: TrainingWindow,
    bars: pd.DataFrame,
    config: TeacherConfig,
    calendar: TradingCalendar,
    latest_data_day: dt.date,
    out_dir: Path,
    sentiment: pd.Series | None = None,
    market: pd.Series | None = None,
) -> TeacherRun:
    """Train, evaluate and persist one window's teacher into ``out_dir``; return its record.

    ``bars`` are the symbol's daily bars over the window's data range (see
    ``window_data_range``); ``sentiment`` (daily score by date), when given, adds the sentiment
    features; ``market`` (benchmark closes by date) serves market-relative labels. Windows that
    cannot be trained honestly are recorded as skipped.
    Any other exception propagates, with ``out_dir`` untouched, so the orchestrator fails that
    window and a re-run retrains it; callers persist it with :func:`failure_record` and
    :func:`write_record` first if they want it on disk.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    run = TeacherRun(
        window_label=window.label,
        symbol=window.symbol,
        start=window.start,
        end=window.end,
        status="completed",
        config=config.to_dict(),
    )
    run.counts["rows_loaded"] = len(bars)

    def finish_skipped(reason: SkipReason) -> TeacherRun:
        run.status = "skipped"
        run.skip_reason = {"code": reason.code, "message": reason.message}
        _stamp(run, started)
        write_record(run, out_dir)
        return run

    future = check_future_data(window, calendar, config.label.horizon, latest_data_day)
    if future is not None:
        return finish_skipped(future)

    samples, counts = window_samples(window, bars, config.label, sentiment, market)
    run.counts.update(counts)
    names = list(feature_columns(with_sentiment=sentiment is not None))
    run.features = names
    run.class_balance["labelled"] = _balance(samples["label"])
    try:
        split = purged_time_split(
            samples["date"],
            samples["label_end"],
            samples["label"],
            validation_fraction=config.validation_fraction,
            min_per_class=config.min_per_class,
            min_samples=config.min_samples,
        )
    except WindowSkipped as skipped:
        reason = skipped.reason
        return finish_skipped(SkipReason(reason.code, f"{window.label}: {reason.message}"))

    train, validation = samples.iloc[split.train], samples.iloc[split.validation]
    _record_split(run, split, train, validation)
    booster = _fit_and_score(run, train, validation, names, config)
    _stamp(run, started)
    save_teacher(run, booster, out_dir)
    return run


def _fit_and_score(
    run: TeacherRun,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    names: list[str],
    config: TeacherConfig,
) -> lgb.Booster:
    """Fit the window's teacher on its purged training rows and record, in ``run``, its
    metrics on the validation rows and its features' gain importance."""
    train_features = train[names]
    matrix = train_features.to_numpy(dtype=float)
    run.counts["nonfinite_features"] = int((~np.isfinite(matrix)).any(axis=1).sum())
    booster = fit_teacher_model(train_features, train["label"], config)
    probabilities = teacher_probabilities(booster, validation[names], names)
    run.metrics = probability_report(validation["label"].to_numpy(), probabilities)
    gains = booster.feature_importance(importance_type="gain")
    run.feature_importance = {
        name: float(gain)
        for name, gain in sorted(zip(names, gains, strict=True), key=lambda p: (-p[1], p[0]))
    }
    return booster


def failure_record(
    window: TrainingWindow, exc: BaseException, config: TeacherConfig | None = None
) -> TeacherRun:
    """A ``failed`` record carrying the exception's type, message and full traceback."""
    kind = type(exc)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    run = TeacherRun(
        window_label=window.label,
        symbol=window.symbol,
        start=window.start,
        end=window.end,
        status="failed",
        error={
            "type": f"{module}{kind.__qualname__}",
            "message": str(exc),
            "traceback": "".join(traceback.format_exception(exc)),
        },
        config=None if config is None else config.to_dict(),
    )
    run.trained_at = _utc_now()
    return run


def _balance(labels: pd.Series) -> dict[str, int]:
    counts = np.bincount(labels.to_numpy(dtype=np.int64), minlength=len(CLASS_NAMES))
    return {name: int(counts[c]) for c, name in CLASS_NAMES.items()}


def _record_split(
    run: TeacherRun, split: Split, train: pd.DataFrame, validation: pd.DataFrame
) -> None:
    run.counts.update(train=len(train), validation=len(validation), purged=split.purged)
    run.class_balance["train"] = _balance(train["label"])
    run.class_balance["validation"] = _balance(validation["label"])
    run.split_boundary = split.boundary
    run.train_last_label_end = pd.Timestamp(train["label_end"].max()).date()


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _stamp(run: TeacherRun, started: float) -> None:
    run.trained_at = _utc_now()
    run.duration_seconds = round(time.perf_counter() - started, 3)
