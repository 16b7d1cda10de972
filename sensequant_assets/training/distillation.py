"""Distillation's inputs: the student's samples and what the teachers say about them.

Soft targets: for a sample dated t the target is the mean class probability of every trained
teacher of that symbol whose window contains t (windows overlap when the step is shorter than
the window). Samples no teacher covers keep their hard label. Only training rows' targets are
ever used by ``train_student``, so test-period teacher outputs cannot leak into the score; a
teacher counts only if its knowledge ends before the fold (or block) it informs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import pandas as pd

from sensequant_assets.artifacts import ModelFiles
from sensequant_assets.features import LabelSpec, compute_features_panel, feature_columns
from sensequant_assets.features.labels import make_labels
from sensequant_assets.training.teacher import matrix_probabilities
from sensequant_assets.training.teacher_record import load_teacher
from sensequant_assets.training.windows import TrainingWindow

T = TypeVar("T")


def student_samples(
    bars: pd.DataFrame,
    label: LabelSpec,
    sentiment: pd.DataFrame | None = None,
    market: pd.Series | None = None,
) -> pd.DataFrame:
    """Causal features and labels for every symbol; rows with a feature or label missing go.

    ``market`` (benchmark closes by date) is needed for market-relative labels.
    """
    bars = bars.sort_values(["symbol", "date"]).reset_index(drop=True)
    features = compute_features_panel(bars, sentiment)
    labels = pd.concat(
        [make_labels(group, label, market) for _, group in bars.groupby("symbol", sort=False)]
    ).loc[bars.index]
    names = list(feature_columns(with_sentiment=sentiment is not None))
    frame = features.assign(
        label=labels["label"],
        label_end=labels["label_end"],
        forward_return=labels["forward_return"],
        last_return=labels["last_return"],
        last_band=labels["last_band"],
    )
    keep = frame[names].notna().all(axis=1) & frame["label"].notna()
    frame = frame[keep].copy()
    frame["label"] = frame["label"].astype("int64")
    return frame.sort_values(["date", "symbol"]).reset_index(drop=True)


@dataclass(frozen=True)
class TeacherOutput:
    """One teacher's class probabilities for the sample rows it covers.

    ``knowledge_end`` is the last date whose price the teacher's training could have read (the
    latest ``label_end`` of the samples in its window); an evaluation fold may only use the
    teacher if the fold starts after it. ``data_start`` is the first sample date it covers
    (None: unknown, treated as the beginning of time), so a cross-fitting block can drop the
    teachers whose labels overlap it.
    """

    window_label: str
    rows: np.ndarray
    probabilities: np.ndarray
    knowledge_end: dt.date
    data_start: dt.date | None = None


def teacher_outputs(samples: pd.DataFrame, teacher_dirs: Mapping[str, Path]) -> list[TeacherOutput]:
    """Each stored teacher's probabilities on the samples of its symbol inside its window.

    A candidate has thousands of teachers, so rows are found through a per-symbol index
    rather than a scan of every sample, the feature matrix is built once, and teachers are
    parsed and scored on one thread per core (LightGBM releases the GIL while parsing and
    predicting). Each result depends only on its teacher's model and rows, and results keep
    the order of ``teacher_dirs``, so the output is the same on any number of cores.
    """
    dates = samples["date"].to_numpy(dtype="datetime64[ns]")
    label_ends = samples["label_end"].to_numpy(dtype="datetime64[ns]")
    symbol_rows = {
        symbol: np.asarray(rows, dtype=np.int64)
        for symbol, rows in samples.groupby("symbol", sort=False).indices.items()
    }
    jobs = []
    for label, directory in teacher_dirs.items():
        window = TrainingWindow.from_label(label)
        rows = symbol_rows.get(window.symbol, np.empty(0, dtype=np.int64))
        day = dates[rows]
        rows = rows[
            (day >= np.datetime64(window.start, "ns")) & (day <= np.datetime64(window.end, "ns"))
        ]
        if rows.size:
            jobs.append((label, directory, rows))
    matrices: dict[tuple[str, ...], np.ndarray] = {}

    def matrix(names: tuple[str, ...]) -> np.ndarray:
        if names not in matrices:  # two threads may race to build it: same matrix, no harm
            matrices[names] = samples[list(names)].to_numpy(dtype=np.float64)
        return matrices[names]

    def score(label: str, directory: Path, rows: np.ndarray) -> TeacherOutput:
        booster, run = load_teacher(directory)
        names = tuple(run.features)
        ends = label_ends[rows]
        return TeacherOutput(
            window_label=label,
            rows=rows,
            probabilities=matrix_probabilities(booster, names, matrix(names)[rows]),
            knowledge_end=pd.Timestamp(ends[~np.isnat(ends)].max()).date(),
            data_start=pd.Timestamp(dates[rows].min()).date(),
        )

    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda job: score(*job), jobs))


def distillation_inputs(
    bars: pd.DataFrame,
    label: LabelSpec,
    sentiment: pd.DataFrame | None,
    market: pd.Series | None,
    teacher_dirs: Mapping[str, Path],
) -> tuple[pd.DataFrame, list[TeacherOutput]]:
    """:func:`student_samples` and :func:`teacher_outputs` of a candidate's inputs.

    ``student_model`` and ``model_validation`` both need them for the same candidate, and they
    are the heaviest part of either step; when both run in one process (a historical run), the
    second gets the first's result through :data:`DISTILLATION_MEMO`. The key covers the bars,
    sentiment, benchmark closes, label spec, every teacher's stored metadata (which pins the
    hash of its model) and the identity of its files (inode, size, modification time), so a
    model replaced or altered in between is loaded and verified again. The samples come back
    as a copy and the teacher outputs are read-only, so no caller can alter what another one
    gets.
    """
    teachers = [(w, str(d), _directory_identity(Path(d))) for w, d in teacher_dirs.items()]
    key = content_digest(bars, sentiment, market, label, teachers)

    def compute() -> tuple[pd.DataFrame, list[TeacherOutput]]:
        samples = student_samples(bars, label, sentiment, market)
        outputs = teacher_outputs(samples, teacher_dirs)
        for output in outputs:
            output.rows.setflags(write=False)
            output.probabilities.setflags(write=False)
        return samples, outputs

    samples, outputs = DISTILLATION_MEMO.get(key, compute)
    return samples.copy(), list(outputs)


def _directory_identity(directory: Path) -> tuple[bytes | None, list[tuple[str, int, int, int]]]:
    """A teacher directory's metadata bytes, and each file's (name, inode, size, mtime)."""
    metadata = ModelFiles.teacher(directory).metadata
    files = []
    if directory.is_dir():
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            stat = entry.stat()
            files.append((entry.name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return (metadata.read_bytes() if metadata.is_file() else None), files


class InputMemo(Generic[T]):
    """The latest result of one expensive, deterministic computation, by a digest of its inputs.

    Candidate stages that run in one process (a historical run) would otherwise recompute what
    an earlier stage computed from the same inputs. The result is handed back only for
    byte-identical inputs (:func:`content_digest`); one entry, since a process works on one
    candidate at a time. Callers must treat the result as read-only.
    """

    def __init__(self) -> None:
        self._key: str | None = None
        self._value: T | None = None

    def clear(self) -> None:
        self._key, self._value = None, None

    def get(self, key: str, compute: Callable[[], T]) -> T:
        if key != self._key or self._value is None:
            self.clear()  # free the old entry before computing
            self._value = compute()
            self._key = key
        return self._value


DISTILLATION_MEMO: InputMemo[tuple[pd.DataFrame, list[TeacherOutput]]] = InputMemo()


def content_digest(*parts: object) -> str:
    """SHA-256 of the exact contents of frames, series and plain values (by ``repr``).

    Frames contribute their column names, dtypes, index and every value's bytes, so two
    inputs share a digest only if every computation on them sees the same data.
    """
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, pd.Series):
            part = part.to_frame(name=repr(part.name))
        if isinstance(part, pd.DataFrame):
            digest.update(repr((list(part.columns), [str(t) for t in part.dtypes])).encode())
            for values in (part.index, *(part.iloc[:, i] for i in range(part.shape[1]))):
                array = np.asarray(values)
                if array.dtype == object:
                    digest.update("\x1f".join(map(repr, array)).encode())
                else:
                    digest.update(str(array.dtype).encode())
                    digest.update(np.ascontiguousarray(array).tobytes())
                digest.update(b"\x1e")
        else:
            digest.update(repr(part).encode())
        digest.update(b"\x1d")
    return digest.hexdigest()


def soft_targets(
    labels: np.ndarray,
    outputs: Sequence[TeacherOutput],
    before: dt.date | None = None,
    outside: tuple[dt.date, dt.date] | None = None,
) -> np.ndarray:
    """Mean probabilities of the teachers covering each sample; one-hot where none does.

    With ``before``, only teachers whose knowledge ends before that date count; with
    ``outside`` (first, last), only teachers whose labelled span (``data_start`` to
    ``knowledge_end``) misses those dates: a cross-fitting block's held-out labels must not
    reach the model that calls them through a teacher trained on them.
    """
    total = np.zeros((len(labels), 3))
    covered = np.zeros(len(labels))
    for output in outputs:
        if _teacher_usable(output, before, outside):
            total[output.rows] += output.probabilities
            covered[output.rows] += 1
    onehot = np.eye(3)[np.asarray(labels, dtype=np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / covered[:, None]
    return np.where(covered[:, None] > 0, mean, onehot)


def _teacher_usable(
    output: TeacherOutput, before: dt.date | None, outside: tuple[dt.date, dt.date] | None
) -> bool:
    if before is not None and output.knowledge_end >= before:
        return False
    if outside is None:
        return True
    first, last = outside
    starts_after = output.data_start is not None and output.data_start > last
    return output.knowledge_end < first or starts_after
