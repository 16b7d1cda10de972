"""A teacher window's record and files: ``metadata.json`` (a :class:`TeacherRun`) and, for a
trained window, its LightGBM model.

A directory always tells the truth about the latest attempt: a trained window holds its model
and a record naming the model's SHA-256; a skipped or failed one holds only its record. Both
are replaced whole (``atomic.replace_dir``), and a model is loaded only after its bytes match
the recorded hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb

from sensequant_assets.artifacts import TEACHER_MODEL_FILE as MODEL_FILE
from sensequant_assets.artifacts import ModelFiles
from sensequant_assets.atomic import replace_dir
from sensequant_assets.features.labels import CLASS_NAMES
from sensequant_assets.integrity import ModelIntegrityError

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


class TeacherUnavailableError(LookupError):
    """The teacher directory records a skipped or failed run, so there is no model to load."""


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
        """The record's JSON form, for serialising at once: nested dicts and lists are the
        run's own, not copies (``asdict``'s deep copy cost a millisecond a window)."""
        record = {f.name: getattr(self, f.name) for f in fields(self)}
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


def save_teacher(run: TeacherRun, booster: lgb.Booster, out_dir: Path) -> None:
    """Replace ``out_dir`` with the trained model and a record naming its SHA-256."""
    run.model_file = MODEL_FILE
    with replace_dir(Path(out_dir)) as staging:
        files = ModelFiles.teacher(staging)
        booster.save_model(files.model)
        run.sha256 = _sha256(files.model.read_bytes())
        _write_json(files.metadata, run.to_dict())


def write_record(run: TeacherRun, out_dir: Path) -> None:
    """Replace ``out_dir`` with a directory holding only ``metadata.json`` for ``run``.

    Used for skipped and failed runs: dropping any earlier model keeps the directory a truthful
    picture of the latest attempt.
    """
    if run.status == "completed":
        raise ValueError("completed runs are written by save_teacher together with their model")
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


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _write_json(path: Path, record: Mapping[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2, allow_nan=False)
        handle.write("\n")
