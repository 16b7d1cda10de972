"""A saved student: its model, metadata and drift reference on disk, and reading them back.

The model is LightGBM's text format, never a pickle, so loading it cannot execute code; its
SHA-256 is checked before LightGBM parses a byte, so a truncated or altered file is an error,
not a different model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightgbm as lgb

from sensequant_assets.artifacts import STUDENT_MODEL_FILE as MODEL_FILE
from sensequant_assets.artifacts import ModelFiles, drift_reference_in
from sensequant_assets.atomic import replace_dir
from sensequant_assets.features.cross_section import (
    Normalisation,
)
from sensequant_assets.features.labels import CLASS_NAMES
from sensequant_assets.integrity import ModelIntegrityError
from sensequant_assets.live.drift import DriftReference
from sensequant_assets.training.student import StudentResult

METADATA_VERSION = 1


def stored_normalisation(metadata: Mapping[str, Any]) -> Normalisation:
    """The normalisation a saved student was trained with; students saved before features
    were normalised (their metadata names none) read raw features."""
    return metadata.get("config", {}).get("normalisation", "none")


def save_student(result: StudentResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``student_model.txt``, ``student_metadata.json`` and the drift reference
    (``student_drift_reference.json``) into ``out_dir``, atomically.

    The files are written in a temporary sibling directory that is fsynced and then replaces
    ``out_dir`` by rename (``atomic.replace_dir``), so a reader never sees a model without its
    metadata and reference, or a half-written file.
    The model is LightGBM's text format (no pickle: loading it cannot execute code).
    """
    target = Path(out_dir)
    model_bytes = result.booster.model_to_string().encode()
    metadata = {
        "format_version": METADATA_VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "lightgbm_version": lgb.__version__,
        "model_file": MODEL_FILE,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "config": result.config.to_dict(),
        "distilled": result.distilled,
        "feature_names": list(result.feature_names),
        "class_names": {str(k): v for k, v in CLASS_NAMES.items()},
        "metrics": result.metrics,
        "samples": result.sample_counts,
        "test_start": result.test_start.isoformat(),
        "test_rows_sha256": result.test_rows_sha256,
    }
    with replace_dir(target) as staging:
        files = ModelFiles.student(staging)
        files.model.write_bytes(model_bytes)
        files.metadata.write_bytes(json.dumps(metadata, indent=2, sort_keys=True).encode())
        drift_reference_in(staging).write_bytes(result.drift_reference.to_json())
    return target


def load_student(out_dir: str | os.PathLike[str]) -> tuple[lgb.Booster, dict[str, Any]]:
    """The booster and metadata saved by :func:`save_student`, after checking the model hash.

    The hash is verified before LightGBM parses anything, so a truncated or tampered model
    raises :class:`ModelIntegrityError` instead of silently predicting something else.
    """
    files = ModelFiles.student(Path(out_dir))
    metadata = json.loads(files.metadata.read_text())
    model_bytes = files.named(metadata.get("model_file", MODEL_FILE)).read_bytes()
    actual = hashlib.sha256(model_bytes).hexdigest()
    if actual != metadata.get("model_sha256"):
        raise ModelIntegrityError(
            f"{files.model} has SHA-256 {actual}, but the metadata records "
            f"{metadata.get('model_sha256')}"
        )
    booster = lgb.Booster(model_str=model_bytes.decode())
    if booster.feature_name() != metadata["feature_names"]:
        raise ModelIntegrityError("the model's feature names differ from the metadata's")
    return booster, metadata


def load_drift_reference(out_dir: str | os.PathLike[str]) -> DriftReference | None:
    """The drift reference saved with the student, or None for a student saved before drift
    references existed. Its integrity is the bundle's: the approved manifest hashes it."""
    path = drift_reference_in(Path(out_dir))
    return DriftReference.from_json(path.read_bytes()) if path.is_file() else None
