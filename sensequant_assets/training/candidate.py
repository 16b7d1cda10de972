"""Assemble a candidate: gather the teachers, distil them into the student, run the reward loop.

The student is distilled from the teachers' soft targets (``training.distillation``: which
teachers count for which rows, and why no test-period output can leak into the score).

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
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sensequant_assets.artifacts import CandidateLayout, ModelFiles, teacher_dir
from sensequant_assets.atomic import link_tree, write_atomic
from sensequant_assets.features import LabelSpec, feature_columns
from sensequant_assets.features.cross_section import normalised_matrix
from sensequant_assets.training.distillation import TeacherOutput, distillation_inputs, soft_targets
from sensequant_assets.training.reward_ab import compare_arms
from sensequant_assets.training.reward_history import (
    CROSS_FIT,
    HISTORY_FIELDS,
    HOLDOUT,
    LIVE,
    append_reward_history,
    history_records,
)
from sensequant_assets.training.rewards import (
    RewardConfig,
    compute_rewards,
    cross_fitted_rewards,
    decayed_rewards,
    retrain_ages,
    reward_metrics,
    reward_weights,
)
from sensequant_assets.training.student import (
    StudentConfig,
    StudentResult,
    distillation_targets,
    holdout_start,
    train_student,
)
from sensequant_assets.training.student_files import save_student
from sensequant_assets.training.teacher_record import TeacherRun, load_run

if TYPE_CHECKING:  # search.py reads the walk-forward's layout, which imports this module
    from sensequant_assets.training.search import HyperparameterSearch


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
    completed, teacher_summary = _link_teachers(layout, teacher_root, list(window_labels))
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
        **_bundle_summary(layout, samples, bars, label),
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


def _link_teachers(
    layout: CandidateLayout, teacher_root: Path, labels: list[str]
) -> tuple[list[TeacherRun], dict[str, Any]]:
    """Link every trained teacher of ``labels`` into the new bundle (durably) and write
    ``teacher_runs.json``; returns the trained runs and their summary. The bundle is created
    here, and only once there is a teacher to distil."""
    runs = collect_teacher_runs(teacher_root, labels)
    teacher_summary = summarize_teacher_runs(runs, expected=len(labels))
    completed = [r for r in runs if r.status == "completed"]
    if not completed:
        raise LookupError(
            f"no trained teacher among {len(labels)} window(s) "
            f"({teacher_summary}); materialize teacher_model first"
        )
    layout.root.mkdir(parents=True, exist_ok=False)
    for run in completed:  # teachers are replaced by renames, never rewritten: links are safe
        link_tree(teacher_dir(teacher_root, run.window_label), layout.teacher_dir(run.window_label))
    _write_json(
        layout.teacher_runs,
        {"summary": teacher_summary, "runs": [r.to_dict() for r in runs]},
        indent=None,  # a record per window, 21,522 at 18 years: 0.7 s to dump, 2.5 s indented
    )
    return completed, teacher_summary


def _bundle_summary(
    layout: CandidateLayout, samples: pd.DataFrame, bars: pd.DataFrame, label: LabelSpec
) -> dict[str, Any]:
    """Where the bundle's parts are, and what data it was trained on."""
    return {
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
    }


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


def _write_json(path: Path, payload: Mapping[str, Any], indent: int | None = 2) -> None:
    """``payload`` as JSON; ``indent=None`` for large files, which ``json`` then encodes in C
    (an indented dump runs its pure-Python encoder)."""
    write_atomic(path, json.dumps(payload, indent=indent, default=str).encode())
