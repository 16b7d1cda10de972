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
import hashlib
import json
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from sensequant_assets.artifacts import TEACHER_METADATA_FILE as METADATA_FILE  # noqa: F401
from sensequant_assets.artifacts import TEACHER_MODEL_FILE as MODEL_FILE
from sensequant_assets.artifacts import ModelFiles
from sensequant_assets.atomic import replace_dir
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.classification import probability_report
from sensequant_assets.features.labels import CLASS_NAMES, LabelSpec, make_labels
from sensequant_assets.features.technical import compute_features, feature_columns
from sensequant_assets.integrity import ModelIntegrityError
from sensequant_assets.training.split import Split, purged_time_split
from sensequant_assets.training.windows import (
    SkipReason,
    TrainingWindow,
    WindowSkipped,
    check_future_data,
)

CLASS_IDS = tuple(sorted(CLASS_NAMES))
Status = Literal["completed", "skipped", "failed"]
STATUSES: frozenset[str] = frozenset({"completed", "skipped", "failed"})
COUNT_KEYS = (
    "rows_loaded",
    "after_warmup",
    "labelled",
    "train",
    "validation",
    "purged",
    "nonfinite_features",
)

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


class TeacherUnavailableError(LookupError):
    """The teacher directory records a skipped or failed run, so there is no model to load."""


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


DATE_FIELDS = ("start", "end", "split_boundary", "train_last_label_end")


def _empty_counts() -> dict[str, int | None]:
    return dict.fromkeys(COUNT_KEYS)


@dataclass
class TeacherRun:
    """The record of one training attempt, stored as ``metadata.json``.

    Counts of stages that were never reached are ``None``. ``metrics`` and the model fields
    are only set for completed runs; ``split_boundary`` is the first validation date and
    ``train_last_label_end`` the last day any training label looks at (it must be earlier).
    """

    window_label: str
    symbol: str
    start: dt.date
    end: dt.date
    status: Status
    skip_reason: dict[str, str] | None = None
    error: dict[str, str] | None = None
    counts: dict[str, int | None] = field(default_factory=_empty_counts)
    class_balance: dict[str, dict[str, int]] = field(default_factory=dict)
    split_boundary: dt.date | None = None
    train_last_label_end: dt.date | None = None
    metrics: dict[str, Any] | None = None
    feature_importance: dict[str, float] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    model_file: str | None = None
    sha256: str | None = None
    trained_at: str = ""
    duration_seconds: float = 0.0
    config: dict[str, Any] | None = None
    lightgbm_version: str = lgb.__version__

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, got {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        for key in DATE_FIELDS:
            value = record[key]
            record[key] = None if value is None else value.isoformat()
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> TeacherRun:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(record) - known)
        if unknown:
            raise ValueError(f"unknown TeacherRun field(s) {unknown}")
        values = dict(record)
        for key in DATE_FIELDS:
            if values.get(key) is not None:
                values[key] = dt.date.fromisoformat(values[key])
        return cls(**values)


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
    """A 3-class booster on raw class ids 0/1/2, whatever subset of them ``labels`` holds."""
    params = dict(config.lgbm_params)
    y = np.asarray(labels, dtype=np.int64)
    if len(y) and not np.isin(y, CLASS_IDS).all():
        raise ValueError(f"labels must be class ids {CLASS_IDS}, got {sorted(set(y.tolist()))}")
    data = lgb.Dataset(
        features.to_numpy(dtype=np.float64),
        label=y,
        feature_name=[str(c) for c in features.columns],
    )
    return lgb.train(params, data)


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
    run.model_file = MODEL_FILE
    with replace_dir(out_dir) as staging:
        files = ModelFiles.teacher(staging)
        booster.save_model(files.model)
        run.sha256 = _sha256(files.model.read_bytes())
        _stamp(run, started)
        _write_json(files.metadata, run.to_dict())
    return run


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


def write_record(run: TeacherRun, out_dir: Path) -> None:
    """Replace ``out_dir`` with a directory holding only ``metadata.json`` for ``run``.

    Used for skipped and failed runs: dropping any earlier model keeps the directory a truthful
    picture of the latest attempt.
    """
    if run.status == "completed":
        raise ValueError("completed runs are written by train_teacher together with their model")
    with replace_dir(Path(out_dir)) as staging:
        _write_json(ModelFiles.teacher(staging).metadata, run.to_dict())


def load_run(out_dir: Path) -> TeacherRun:
    """The :class:`TeacherRun` recorded in ``out_dir``."""
    return TeacherRun.from_dict(json.loads(ModelFiles.teacher(out_dir).metadata.read_text()))


def load_teacher(out_dir: Path) -> tuple[lgb.Booster, TeacherRun]:
    """The verified booster and its record.

    The model bytes are hashed and parsed from the same read, so the file cannot change
    between the check and the load.
    """
    out_dir = Path(out_dir)
    run = load_run(out_dir)
    if run.status != "completed":
        raise TeacherUnavailableError(f"{run.window_label}: teacher is {run.status}, no model")
    if not run.model_file or not run.sha256:
        raise ModelIntegrityError(f"{run.window_label}: metadata names no model file or hash")
    path = ModelFiles.teacher(out_dir).named(run.model_file)
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise ModelIntegrityError(f"{run.window_label}: model file {path} is missing") from None
    actual = _sha256(payload)
    if actual != run.sha256:
        raise ModelIntegrityError(
            f"{run.window_label}: {path} has SHA-256 {actual}, metadata records {run.sha256}"
        )
    booster = lgb.Booster(model_str=payload.decode("utf-8"))
    if booster.num_model_per_iteration() != len(CLASS_NAMES):
        raise ModelIntegrityError(
            f"{run.window_label}: model has {booster.num_model_per_iteration()} classes, "
            f"expected {len(CLASS_NAMES)}"
        )
    if booster.feature_name() != run.features:
        raise ModelIntegrityError(
            f"{run.window_label}: model features {booster.feature_name()} differ from the "
            f"recorded {run.features}"
        )
    return booster, run


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


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _write_json(path: Path, record: Mapping[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2, allow_nan=False)
        handle.write("\n")
