"""Health rules over a run's teacher records; the Dagster checks only report what these find.

Each rule returns the offending windows with a short reason, so the same verdict can back an
asset check, a log line or a briefing without re-deriving it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sensequant_assets.training.teacher_record import TeacherRun
from sensequant_assets.training.windows import TOO_FEW_SAMPLES, VALIDATION_TOO_SMALL

#: A class holding less than this share of a teacher's training set makes its soft labels
#: for that class little more than noise.
MIN_CLASS_SHARE = 0.05


def short_windows(runs: Sequence[TeacherRun]) -> list[str]:
    """Windows skipped because they had too few (validation) samples."""
    return [
        f"{r.window_label}: {r.skip_reason['message']}"
        for r in runs
        if r.skip_reason and r.skip_reason["code"] in (TOO_FEW_SAMPLES, VALIDATION_TOO_SMALL)
    ]


def unbalanced_windows(runs: Sequence[TeacherRun], min_share: float = MIN_CLASS_SHARE) -> list[str]:
    """Trained windows whose rarest class is under ``min_share`` of the training samples."""
    found = []
    for run in runs:
        if run.status != "completed":
            continue
        train = run.class_balance["train"]
        total = sum(train.values())
        if total and min(train.values()) / total < min_share:
            found.append(f"{run.window_label} {train}")
    return found


def nonfinite_windows(runs: Sequence[TeacherRun]) -> list[str]:
    """Trained windows whose training matrix held NaN or inf."""
    return [
        r.window_label
        for r in runs
        if r.status == "completed" and r.counts.get("nonfinite_features")
    ]


def leaky_windows(runs: Sequence[TeacherRun]) -> list[str]:
    """Trained windows where a training label looks at or past the first validation day."""
    return [
        r.window_label
        for r in runs
        if r.status == "completed"
        and (
            r.train_last_label_end is None
            or r.split_boundary is None
            or r.train_last_label_end >= r.split_boundary
        )
    ]
