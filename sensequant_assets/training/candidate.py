"""Assemble a candidate: gather the teachers, distil them into the student, run the reward loop.

Soft targets: for a sample dated t the target is the mean class probability of every trained
teacher of that symbol whose window contains t (windows overlap when the step is shorter than
the window). Samples no teacher covers keep their hard label. Only training rows' targets are
ever used by ``train_student``, so test-period teacher outputs cannot leak into the score.

Reward loop (``training.rewards``): a first, unweighted student is fit. Every training row is
then called out of fold (``cross_fitted_rewards``: K purged, embargoed time blocks, each called
by a student fit on the others) and the call scored against its realised forward return. Those
rewards (age 0) are combined with the live rewards earlier production models earned on the
same rows, decayed by γ per retrain over the last ``retrain_window`` retrains
(``decayed_rewards``); the result becomes the sample weights of the refit, the candidate's
student. The first student is the A/B test's baseline arm. The candidate's reward history
(``reward_history/<SYMBOL>.jsonl``) holds, per symbol: the final student's held-out rewards
(``holdout``), the cross-fitted rewards (``cross_fit``) and the live rewards it read
(``live``, so ``model_validation`` replays the candidate's procedure on exactly that history).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import pandas as pd

from sensequant_assets.artifacts import CandidateLayout, ModelFiles, teacher_dir
from sensequant_assets.atomic import fsync_tree, write_atomic
from sensequant_assets.features import LabelSpec, compute_features_panel, feature_columns
from sensequant_assets.features.cross_section import normalised_matrix
from sensequant_assets.features.labels import make_labels
from sensequant_assets.training.rewards import (
    CROSS_FIT,
    HISTORY_FIELDS,
    HOLDOUT,
    LIVE,
    RewardConfig,
    append_reward_history,
    compare_arms,
    compute_rewards,
    cross_fitted_rewards,
    decayed_rewards,
    history_records,
    retrain_ages,
    reward_metrics,
    reward_weights,
)
from sensequant_assets.training.student import (
    StudentConfig,
    StudentResult,
    distillation_targets,
    holdout_start,
    save_student,
    train_student,
)
from sensequant_assets.training.teacher import (
    TeacherRun,
    load_run,
    load_teacher,
    matrix_probabilities,
)
from sensequant_assets.training.windows import TrainingWindow

if TYPE_CHECKING:  # search.py reads the walk-forward's layout, which imports this module
    from sensequant_assets.training.search import HyperparameterSearch

T = TypeVar("T")


def collect_teacher_runs(teacher_root: Path, labels: Iterable[str]) -> list[TeacherRun]:
    """The stored record of every requested window that has been attempted."""
    runs = []
    for label in labels:
        directory = teacher_dir(teacher_root, label)
        if ModelFiles.teacher(directory).metadata.is_file():
            runs.append(load_run(directory))
    return runs


def summarize_teacher_runs(runs: Iterable[TeacherRun], expected: int) -> dict[str, Any]:
    """Counts by status (windows never attempted are ``missing``) and mean completed metrics."""
    runs = list(runs)
    completed = [r for r in runs if r.status == "completed"]
    by_status = {s: sum(r.status == s for r in runs) for s in ("completed", "skipped", "failed")}
    reasons: dict[str, int] = {}
    for run in runs:
        if run.skip_reason:
            reasons[run.skip_reason["code"]] = reasons.get(run.skip_reason["code"], 0) + 1
    means = {
        key: float(np.mean([r.metrics[key] for r in completed])) if completed else None
        for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro")
    }
    return {
        "total": expected,
        **by_status,
        "missing": expected - len(runs),
        "skip_reasons": reasons,
        "mean_metrics_completed": means,
    }


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


@dataclass
class CandidateOutcome:
    layout: CandidateLayout
    result: StudentResult
    summary: dict[str, Any] = field(default_factory=dict)


def build_candidate(
    layout: CandidateLayout,
    teacher_root: Path,
    window_labels: Iterable[str],
    bars: pd.DataFrame,
    label: LabelSpec,
    student_config: StudentConfig,
    reward_config: RewardConfig,
    sentiment: pd.DataFrame | None = None,
    market: pd.Series | None = None,
    search: HyperparameterSearch | None = None,
    reward_history: pd.DataFrame | None = None,
) -> CandidateOutcome:
    """Write the whole training part of a candidate bundle under ``layout.root``.

    With ``search``, the student is trained with the configuration it chooses, and every trial
    is kept in ``search_trials.json``. ``reward_history``: earlier production models' live
    rewards (``read_reward_history``), read by the reward loop when it is on.
    """
    labels = list(window_labels)
    runs = collect_teacher_runs(teacher_root, labels)
    teacher_summary = summarize_teacher_runs(runs, expected=len(labels))
    completed = [r for r in runs if r.status == "completed"]
    if not completed:
        raise LookupError(
            f"no trained teacher among {len(labels)} window(s) "
            f"({teacher_summary}); materialize teacher_model first"
        )
    layout.root.mkdir(parents=True, exist_ok=False)
    for run in completed:
        shutil.copytree(
            teacher_dir(teacher_root, run.window_label), layout.teacher_dir(run.window_label)
        )
        fsync_tree(layout.teacher_dir(run.window_label))
    _write_json(
        layout.teacher_runs,
        {"summary": teacher_summary, "runs": [r.to_dict() for r in runs]},
    )

    samples, outputs = distillation_inputs(
        bars,
        label,
        sentiment,
        market,
        {r.window_label: layout.teacher_dir(r.window_label) for r in completed},
    )
    cutoff = holdout_start(samples, student_config)
    targets = soft_targets(samples["label"].to_numpy(), outputs, before=cutoff)
    names = list(feature_columns(with_sentiment=sentiment is not None))
    searched: dict[str, Any] = {}
    if search is not None:  # it changes neither the holdout nor which teachers count
        found = search.run(samples, outputs, names, student_config)
        _write_json(layout.search_trials, found.record)
        student_config, searched = found.config, {"search": found.summary}
    result = train_student(samples, targets, names, student_config)
    reward_summary: dict[str, Any] = {"enabled": reward_config.enabled}
    if reward_config.enabled:
        loop = _RewardLoop(samples, outputs, cutoff, names, student_config, reward_config)
        result, reward_summary = loop.run(result, targets, layout, reward_history)
    save_student(result, layout.student_dir)
    summary = {
        "candidate_id": layout.candidate_id,
        "student_dir": str(layout.student_dir.relative_to(layout.root)),
        "teacher_models_dir": str(layout.teacher_models.relative_to(layout.root)),
        "symbols": sorted(samples["symbol"].unique()),
        "date_range": [str(samples["date"].min().date()), str(samples["date"].max().date())],
        "data_range": [
            str(pd.Timestamp(bars["date"].min()).date()),
            str(pd.Timestamp(bars["date"].max()).date()),
        ],
        "label": asdict(label),
        "distillation": {"method": "sample expansion over soft targets",
                         "alpha": student_config.distill_alpha,
                         "rows_with_teacher_targets": int((targets.max(axis=1) < 1).sum()),
                         "teachers_cut_off": sum(o.knowledge_end >= cutoff for o in outputs),
                         "teacher_knowledge_before": str(cutoff)},
        "config": student_config.to_dict(),
        "sample_counts": result.sample_counts,
        "test_start": str(result.test_start),
        "metrics": result.metrics,
        "rewards": reward_summary,
        "teachers": teacher_summary,
        **searched,
    }  # fmt: skip
    _write_json(layout.student_runs, summary)
    return CandidateOutcome(layout, result, summary)


@dataclass(frozen=True)
class _RewardLoop:
    """The reward loop of one candidate (see the module docstring)."""

    samples: pd.DataFrame
    outputs: Sequence[TeacherOutput]
    cutoff: dt.date
    names: list[str]
    student_config: StudentConfig
    reward_config: RewardConfig

    def block_targets(self, first: dt.date, last: dt.date) -> np.ndarray:
        """Distillation targets for a fit that calls a block whose labels span first..last:
        teachers known before the holdout whose own labels miss that span."""
        labels = self.samples["label"].to_numpy()
        teachers = soft_targets(labels, self.outputs, before=self.cutoff, outside=(first, last))
        return distillation_targets(labels, teachers, self.student_config.distill_alpha)

    def run(
        self,
        first: StudentResult,
        targets: np.ndarray,
        layout: CandidateLayout,
        history: pd.DataFrame | None,
    ) -> tuple[StudentResult, dict[str, Any]]:
        samples, config = self.samples, self.reward_config
        train = first.train_idx
        x = normalised_matrix(samples, self.names, self.student_config.normalisation)
        returns = samples["forward_return"].to_numpy(dtype=np.float64)
        crossfit = cross_fitted_rewards(
            x, samples, train, self.block_targets, self.names, self.student_config, config
        )
        # what the first student's calls on its own training rows would have earned: the
        # in-sample rewards this loop no longer uses, kept to show how far they flatter
        in_sample_calls = first.booster.predict(x[train]).argmax(axis=1)
        in_sample = compute_rewards(in_sample_calls, returns[train], config)
        keys = samples.iloc[train][["date", "symbol"]]
        combined, decay = decayed_rewards(
            keys, crossfit.rewards, history, layout.candidate_id, config
        )
        rewards = np.full(len(samples), np.nan)
        rewards[train] = combined
        weights = np.ones(len(samples))
        weights[train] = reward_weights(combined, config)
        result = train_student(
            samples, targets, self.names, self.student_config, sample_weight=weights
        )
        test = samples.iloc[result.test_idx]
        test_rewards = compute_rewards(
            result.test_predictions, test["forward_return"].to_numpy(dtype=np.float64), config
        )
        summary: dict[str, Any] = {
            "enabled": True,
            "config": config.to_dict(),
            "cross_fit": crossfit.summary(),
            "train_rewards": reward_metrics(crossfit.rewards),
            "in_sample_train_rewards": reward_metrics(in_sample),
            "weighting_rewards": reward_metrics(combined),
            "history": decay,
            "test_rewards": reward_metrics(test_rewards),
        }
        if config.ab_testing_enabled:
            summary["ab_test"] = compare_arms(samples, first, result, weights, rewards, config)
        holdout = test.assign(
            source=HOLDOUT, predicted=result.test_predictions, reward=test_rewards
        )
        fitted = samples.iloc[train].assign(
            source=CROSS_FIT, predicted=crossfit.calls, reward=crossfit.rewards
        )
        own = pd.concat([holdout, fitted]).assign(model_id=layout.candidate_id)
        own["realized_return"] = own["forward_return"]
        frames = [own[list(HISTORY_FIELDS)]]
        live = self.live_used(history, layout.candidate_id)
        if len(live):
            frames.append(live[list(HISTORY_FIELDS)])
        for symbol, rows in pd.concat(frames, ignore_index=True).groupby("symbol"):
            append_reward_history(layout.reward_file(str(symbol)), history_records(rows))
        return result, summary

    def live_used(self, history: pd.DataFrame | None, model_id: str) -> pd.DataFrame:
        """The live rewards of the retrain window on this candidate's sample rows: what its
        weights (and its walk-forward) read."""
        if history is None or history.empty:
            return pd.DataFrame(columns=list(HISTORY_FIELDS))
        live = history[history["source"] == LIVE]
        ages = retrain_ages(live["model_id"], model_id, self.reward_config.retrain_window)
        keys = self.samples[["date", "symbol"]].assign(date=lambda f: pd.to_datetime(f["date"]))
        return live[live["model_id"].isin(list(ages))].merge(keys, on=["date", "symbol"])


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(payload, indent=2, default=str).encode())
