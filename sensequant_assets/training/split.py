"""Purged, time-ordered train/validation split for one training window.

Labels look ``h`` sessions ahead, so a training sample dated just before the validation block
has a label computed from prices inside it. Keeping such samples would leak validation data
into training and inflate every validation metric; they are purged instead. The validation
block is always the most recent stretch of time, mirroring how the model is used.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sensequant_assets.training.windows import (
    TOO_FEW_SAMPLES,
    VALIDATION_TOO_SMALL,
    SkipReason,
    WindowSkipped,
)

DateLike = Sequence[dt.date] | pd.Series | np.ndarray


class LeakageError(ValueError):
    """A split lets training labels see validation-period prices."""


@dataclass(frozen=True, eq=False)
class Split:
    """Positions (into the arrays given to :func:`purged_time_split`) of each block.

    Both index arrays are read-only and in time order. ``purged`` counts the training samples
    dropped because their label horizon reached ``boundary``, the first validation date.
    """

    train: np.ndarray
    validation: np.ndarray
    purged: int
    boundary: dt.date


def _to_datetimes(values: DateLike, name: str) -> np.ndarray:
    series = (
        values.reset_index(drop=True)
        if isinstance(values, pd.Series)
        else pd.Series(list(values), dtype=object)
    )
    try:
        return pd.to_datetime(series).to_numpy(dtype="datetime64[ns]")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold dates: {exc}") from None


def sample_dates(dates: DateLike, label_ends: DateLike) -> tuple[np.ndarray, np.ndarray]:
    """Sample dates and label ends as ``datetime64[ns]`` arrays, position for position.

    Every sample needs both: a missing ``label_end`` could not be purged, so it is refused.
    """
    day, end = _to_datetimes(dates, "dates"), _to_datetimes(label_ends, "label_ends")
    if len(day) != len(end):
        raise ValueError(f"dates and label_ends differ in length: {len(day)}, {len(end)}")
    if np.isnat(day).any() or np.isnat(end).any():
        raise ValueError("every sample needs a date and a label_end")
    return day, end


def _to_labels(values: Sequence[int] | pd.Series | np.ndarray) -> pd.Series:
    series = (
        values.reset_index(drop=True)
        if isinstance(values, pd.Series)
        else pd.Series(list(values), dtype=object)
    )
    try:
        return series.astype("Int64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"labels must be integers or missing: {exc}") from None


def _as_date(value: np.datetime64) -> dt.date:
    return pd.Timestamp(value).date()


def _read_only(indices: np.ndarray) -> np.ndarray:
    indices = np.asarray(indices, dtype=np.int64).copy()
    indices.setflags(write=False)
    return indices


def purged_time_split(
    dates: DateLike,
    label_ends: DateLike,
    labels: Sequence[int] | pd.Series | np.ndarray,
    *,
    validation_fraction: float = 0.25,
    min_per_class: int = 2,
    min_samples: int = 20,
) -> Split:
    """Split labelled samples into an earlier training block and a later validation block.

    Samples with a missing label are ignored. Validation starts as the last
    ``validation_fraction`` of the labelled samples and grows backwards, one date at a time,
    until it holds ``min_per_class`` samples of every class seen in the window: a validation
    set missing a class cannot tell whether the model ever predicts it. Growing stops, and
    the window is skipped, once the purged training block would be empty or single-class.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if min_per_class < 1:
        raise ValueError(f"min_per_class must be positive, got {min_per_class}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be positive, got {min_samples}")
    ordered = _Ordered.of(dates, label_ends, labels, min_samples)
    ordered.require_classes(min_per_class)
    return ordered.grow_validation(validation_fraction, min_per_class)


@dataclass(frozen=True)
class _Ordered:
    """The labelled samples in date order: their positions, dates, label ends and labels."""

    order: np.ndarray
    day: np.ndarray
    end: np.ndarray
    label: np.ndarray

    @classmethod
    def of(
        cls,
        dates: DateLike,
        label_ends: DateLike,
        labels: Sequence[int] | pd.Series | np.ndarray,
        min_samples: int,
    ) -> _Ordered:
        day = _to_datetimes(dates, "dates")
        horizon_end = _to_datetimes(label_ends, "label_ends")
        label = _to_labels(labels)
        if not len(day) == len(horizon_end) == len(label):
            raise ValueError(
                f"dates, label_ends and labels differ in length: "
                f"{len(day)}, {len(horizon_end)}, {len(label)}"
            )
        if np.isnat(day).any():
            raise ValueError("dates may not be missing")
        labelled = np.flatnonzero(label.notna().to_numpy())
        if len(labelled) < min_samples:
            raise WindowSkipped(
                SkipReason(
                    TOO_FEW_SAMPLES,
                    f"only {len(labelled)} labelled samples; at least {min_samples} are needed",
                )
            )
        if np.isnat(horizon_end[labelled]).any():
            raise ValueError("every labelled sample needs a label_end")
        if (horizon_end[labelled] < day[labelled]).any():
            raise ValueError("label_end may not precede its sample's date")
        order = labelled[np.argsort(day[labelled], kind="stable")]
        values = label.to_numpy(dtype=np.int64, na_value=-1)[order]
        return cls(order, day[order], horizon_end[order], values)

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.label)

    def require_classes(self, min_per_class: int) -> None:
        """Skip the window when some class has too few samples for any validation block."""
        classes, totals = np.unique(self.label, return_counts=True)
        rare = [(int(c), int(t)) for c, t in zip(classes, totals, strict=True) if t < min_per_class]
        if rare:
            detail = ", ".join(f"class {c} appears {t} time(s)" for c, t in rare)
            raise WindowSkipped(
                SkipReason(
                    VALIDATION_TOO_SMALL,
                    f"validation needs at least {min_per_class} samples of every class in the "
                    f"window, but {detail} in all {len(self.order)} labelled samples",
                )
            )

    def date_boundary(self, start: int) -> int:
        """``start`` moved back to the first sample of its date: equal dates never straddle."""
        while start > 0 and self.day[start - 1] == self.day[start]:
            start -= 1
        return start

    def grow_validation(self, validation_fraction: float, min_per_class: int) -> Split:
        """Start validation at the last ``validation_fraction`` and move its start back a date
        at a time until it holds ``min_per_class`` of every class (or training would not)."""
        n = len(self.order)
        start = self.date_boundary(n - max(1, math.ceil(validation_fraction * n)))
        while start > 0:
            boundary = self.day[start]
            keep = self.end[:start] < boundary
            train_classes = np.unique(self.label[:start][keep])
            held = self.label[start:]
            short = [(int(c), int((held == c).sum())) for c in self.classes
                     if (held == c).sum() < min_per_class]  # fmt: skip
            if len(train_classes) < 2:
                raise WindowSkipped(
                    SkipReason(
                        VALIDATION_TOO_SMALL,
                        self._one_class_message(
                            boundary, keep, train_classes, short, start, min_per_class
                        ),
                    )
                )
            if not short:
                return Split(
                    train=_read_only(self.order[:start][keep]),
                    validation=_read_only(self.order[start:]),
                    purged=int((~keep).sum()),
                    boundary=_as_date(boundary),
                )
            start = self.date_boundary(start - 1)
        raise WindowSkipped(
            SkipReason(
                VALIDATION_TOO_SMALL,
                f"validation would have to start at the earliest date {_as_date(self.day[0])}, "
                "leaving no samples to train on",
            )
        )

    def _one_class_message(
        self,
        boundary: np.datetime64,
        keep: np.ndarray,
        train_classes: np.ndarray,
        short: list[tuple[int, int]],
        start: int,
        min_per_class: int,
    ) -> str:
        n = len(self.order)
        message = (
            f"the purged training block before {_as_date(boundary)} keeps "
            f"{int(keep.sum())} sample(s) of {len(train_classes)} class(es), and training "
            "needs at least 2 classes"
        )
        if not short:
            return message
        detail = ", ".join(f"class {c} has only {k}" for c, k in short)
        return (
            f"validation cannot hold {min_per_class} samples of every class "
            f"while training keeps 2 classes: from {_as_date(boundary)} ({n - start} of {n} "
            f"samples) {detail}, yet {message}"
        )


def assert_no_leakage(dates: DateLike, label_ends: DateLike, split: Split) -> None:
    """Raise :class:`LeakageError` if ``split`` lets any training label see validation prices.

    Recomputes everything from the raw dates rather than trusting ``split.boundary``, so it
    also catches splits built by hand or mangled after the fact.
    """
    day = _to_datetimes(dates, "dates")
    horizon_end = _to_datetimes(label_ends, "label_ends")
    if len(day) != len(horizon_end):
        raise ValueError(f"dates and label_ends differ in length: {len(day)}, {len(horizon_end)}")
    train = np.asarray(split.train, dtype=np.int64)
    validation = np.asarray(split.validation, dtype=np.int64)
    for name, indices in (("train", train), ("validation", validation)):
        if len(indices) and (indices.min() < 0 or indices.max() >= len(day)):
            raise LeakageError(f"{name} indices fall outside the {len(day)} samples")
    if len(validation) == 0:
        raise LeakageError("split has no validation samples, so leakage cannot be ruled out")
    overlap = np.intersect1d(train, validation)
    if len(overlap):
        raise LeakageError(
            f"{len(overlap)} sample(s) are in both train and validation, e.g. positions "
            f"{overlap[:5].tolist()}"
        )
    first_validation = day[validation].min()
    if np.isnat(horizon_end[train]).any():
        raise LeakageError("training samples without a label_end cannot be checked for leakage")
    leaky = train[(horizon_end[train] >= first_validation) | (day[train] >= first_validation)]
    if len(leaky):
        examples = ", ".join(
            f"{_as_date(day[i])}→{_as_date(horizon_end[i])}" for i in leaky[:3].tolist()
        )
        raise LeakageError(
            f"{len(leaky)} training sample(s) have labels reaching the first validation date "
            f"{_as_date(first_validation)} (date→label_end: {examples})"
        )


def purged_block_splits(
    dates: DateLike, label_ends: DateLike, n_blocks: int, embargo_sessions: int
) -> list[Split]:
    """Cross-fitting folds: ``n_blocks`` contiguous time blocks, each held out in turn.

    The distinct dates are cut into ``n_blocks`` runs of consecutive dates (nothing is
    shuffled, one date is never split). For the block held out, spanning dates ``b0..b1``
    whose labels reach ``e`` (its latest ``label_end``), the other samples are kept for
    fitting only if their label horizon cannot overlap the held labels:

    * before the block: ``label_end < b0`` (purge), and not among the last
      ``embargo_sessions`` distinct dates before ``b0`` (the embargo of
      :func:`~sensequant_assets.training.student.time_holdout_split`);
    * after the block: dated after ``e`` (purge: their label windows start after every held
      label ended), and not among the first ``embargo_sessions`` distinct dates after ``b1``
      (embargo: their features' rolling windows read the held block's prices).

    Returns one :class:`Split` per block: ``validation`` the held block, ``train`` the rows a
    model may be fit on to call it, ``purged`` the rows dropped by purge or embargo,
    ``boundary`` ``b0``. Positions index ``dates``; both arrays are in time order.
    """
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 2:
        raise ValueError(f"n_blocks must be an integer ≥ 2, got {n_blocks!r}")
    if embargo_sessions < 0:
        raise ValueError(f"embargo_sessions must be ≥ 0, got {embargo_sessions}")
    day, end = sample_dates(dates, label_ends)
    if (end < day).any():
        raise ValueError("label_end may not precede its sample's date")
    distinct = np.unique(day)
    if len(distinct) < n_blocks:
        raise ValueError(f"{len(distinct)} distinct dates cannot make {n_blocks} blocks")
    position = np.searchsorted(distinct, day)
    order = np.argsort(day, kind="stable")
    splits = []
    for block in np.array_split(np.arange(len(distinct)), n_blocks):
        start, stop = int(block[0]), int(block[-1])
        held = (position >= start) & (position <= stop)
        reach = end[held].max()
        before = (position < start - embargo_sessions) & (end < distinct[start])
        after = (position > stop + embargo_sessions) & (day > reach)
        fit = before | after
        if not fit.any():
            raise ValueError(
                f"the block {_as_date(distinct[start])}..{_as_date(distinct[stop])} leaves no "
                f"sample to fit on after purging and a {embargo_sessions}-session embargo"
            )
        splits.append(
            Split(
                train=_read_only(order[fit[order]]),
                validation=_read_only(order[held[order]]),
                purged=int((~held & ~fit).sum()),
                boundary=_as_date(distinct[start]),
            )
        )
    return splits


def assert_disjoint_horizons(dates: DateLike, label_ends: DateLike, split: Split) -> None:
    """Raise :class:`LeakageError` unless every training sample's span (its date to its
    ``label_end``) misses the held samples' span (their first date to their last
    ``label_end``), on either side: no training label reads a held-out price, and no held-out
    label reads a price a training label read.

    Unlike :func:`assert_no_leakage`, training may lie after the held block too (cross-fitting).
    """
    day, end = sample_dates(dates, label_ends)
    train = np.asarray(split.train, dtype=np.int64)
    held = np.asarray(split.validation, dtype=np.int64)
    if len(held) == 0:
        raise LeakageError("split has no held-out samples, so leakage cannot be ruled out")
    overlap = np.intersect1d(train, held)
    if len(overlap):
        raise LeakageError(f"{len(overlap)} sample(s) are both fit on and held out")
    first, reach = day[held].min(), end[held].max()
    leaky = train[(end[train] >= first) & (day[train] <= reach)]
    if len(leaky):
        examples = ", ".join(f"{_as_date(day[i])}→{_as_date(end[i])}" for i in leaky[:3].tolist())
        raise LeakageError(
            f"{len(leaky)} training sample(s) span the held-out block "
            f"{_as_date(first)}..{_as_date(reach)} (date→label_end: {examples})"
        )
