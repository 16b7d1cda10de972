"""Assemble a candidate: gather the teachers, distil them into the student, run the reward loop.

Soft targets: for a sample dated t the target is the mean class probability of every trained
teacher of that symbol whose window contains t (windows overlap when the step is shorter than
the window). Samples no teacher covers keep their hard label. Only training rows' targets are
ever used by ``train_student``, so test-period teacher outputs cannot leak into the score.

Reward loop: a first student is fit; its calls on the training rows are scored against the
realised forward returns (``compute_rewards``), the rewards become sample weights, and the
student is refit with them. The candidate's reward history holds the realised rewards of the
final student's calls on the held-out rows, one JSON line per call, per symbol.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.artifacts import CandidateLayout
from sensequant_assets.features import LabelSpec, compute_features_panel, feature_columns
from sensequant_assets.features.labels import make_labels
from sensequant_assets.training.rewards import (
    RewardConfig,
    ab_test,
    append_reward_history,
    compute_rewards,
    reward_metrics,
    reward_weights,
)
from sensequant_assets.training.student import (
    StudentConfig,
    StudentResult,
    save_student,
    train_student,
)
from sensequant_assets.training.teacher import (
    METADATA_FILE,
    TeacherRun,
    load_run,
    load_teacher,
    teacher_probabilities,
)
from sensequant_assets.training.windows import TrainingWindow


def collect_teacher_runs(teacher_root: Path, labels: Iterable[str]) -> list[TeacherRun]:
    """The stored record of every requested window that has been attempted."""
    runs = []
    for label in labels:
        if (teacher_root / label / METADATA_FILE).is_file():
            runs.append(load_run(teacher_root / label))
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
    teacher if the fold starts after it.
    """

    window_label: str
    rows: np.ndarray
    probabilities: np.ndarray
    knowledge_end: dt.date


def teacher_outputs(samples: pd.DataFrame, teacher_dirs: Mapping[str, Path]) -> list[TeacherOutput]:
    """Each stored teacher's probabilities on the samples of its symbol inside its window."""
    outputs = []
    for label, directory in teacher_dirs.items():
        window = TrainingWindow.from_label(label)
        mask = (
            (samples["symbol"] == window.symbol)
            & (samples["date"] >= pd.Timestamp(window.start))
            & (samples["date"] <= pd.Timestamp(window.end))
        ).to_numpy()
        if not mask.any():
            continue
        booster, run = load_teacher(directory)
        outputs.append(
            TeacherOutput(
                window_label=label,
                rows=np.flatnonzero(mask),
                probabilities=teacher_probabilities(
                    booster, samples.loc[mask, run.features], run.features
                ),
                knowledge_end=pd.Timestamp(samples.loc[mask, "label_end"].max()).date(),
            )
        )
    return outputs


def soft_targets(
    labels: np.ndarray, outputs: Sequence[TeacherOutput], before: dt.date | None = None
) -> np.ndarray:
    """Mean probabilities of the teachers covering each sample; one-hot where none does.

    With ``before``, only teachers whose knowledge ends before that date count.
    """
    total = np.zeros((len(labels), 3))
    covered = np.zeros(len(labels))
    for output in outputs:
        if before is None or output.knowledge_end < before:
            total[output.rows] += output.probabilities
            covered[output.rows] += 1
    onehot = np.eye(3)[np.asarray(labels, dtype=np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / covered[:, None]
    return np.where(covered[:, None] > 0, mean, onehot)


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
) -> CandidateOutcome:
    """Write the whole training part of a candidate bundle under ``layout.root``."""
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
        shutil.copytree(teacher_root / run.window_label, layout.teacher_dir(run.window_label))
    _write_json(
        layout.teacher_runs,
        {"summary": teacher_summary, "runs": [r.to_dict() for r in runs]},
    )

    samples = student_samples(bars, label, sentiment, market)
    outputs = teacher_outputs(
        samples, {r.window_label: layout.teacher_dir(r.window_label) for r in completed}
    )
    targets = soft_targets(samples["label"].to_numpy(), outputs)
    names = list(feature_columns(with_sentiment=sentiment is not None))
    result = train_student(samples, targets, names, student_config)
    reward_summary: dict[str, Any] = {"enabled": reward_config.enabled}
    if reward_config.enabled:
        result, reward_summary = _reward_loop(
            samples, targets, names, result, student_config, reward_config, layout
        )
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
                         "rows_with_teacher_targets": int((targets.max(axis=1) < 1).sum())},
        "config": student_config.to_dict(),
        "sample_counts": result.sample_counts,
        "test_start": str(result.test_start),
        "metrics": result.metrics,
        "rewards": reward_summary,
        "teachers": teacher_summary,
    }  # fmt: skip
    _write_json(layout.student_runs, summary)
    return CandidateOutcome(layout, result, summary)


def _reward_loop(
    samples: pd.DataFrame,
    targets: np.ndarray,
    names: list[str],
    first: StudentResult,
    student_config: StudentConfig,
    reward_config: RewardConfig,
    layout: CandidateLayout,
) -> tuple[StudentResult, dict[str, Any]]:
    x = samples[names].to_numpy(dtype=np.float64)
    calls = first.booster.predict(x).argmax(axis=1)
    returns = samples["forward_return"].to_numpy(dtype=np.float64)
    rewards = compute_rewards(calls, returns, reward_config)
    weights = np.ones(len(samples))
    weights[first.train_idx] = reward_weights(rewards[first.train_idx], reward_config)
    result = train_student(samples, targets, names, student_config, sample_weight=weights)
    summary: dict[str, Any] = {
        "enabled": True,
        "config": reward_config.to_dict(),
        "train_rewards": reward_metrics(rewards[first.train_idx]),
    }
    test = samples.iloc[result.test_idx]
    test_rewards = compute_rewards(
        result.test_predictions, test["forward_return"].to_numpy(dtype=np.float64), reward_config
    )
    summary["test_rewards"] = reward_metrics(test_rewards)
    history = test.assign(predicted=result.test_predictions, reward=test_rewards)
    for symbol, rows in history.groupby("symbol"):
        append_reward_history(
            layout.reward_history / f"{symbol}.jsonl",
            [
                {
                    "date": row.date,
                    "symbol": symbol,
                    "predicted": int(row.predicted),
                    "realized_return": float(row.forward_return),
                    "reward": float(row.reward),
                }
                for row in rows.itertuples()
            ],
        )
    if reward_config.ab_testing_enabled:
        summary["ab_test"] = ab_test(
            samples, targets, names, student_config, reward_config, rewards
        )
    return result, summary


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)
