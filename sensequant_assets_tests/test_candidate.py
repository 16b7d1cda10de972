"""Candidate inputs: teacher outputs equal each teacher scored alone, and reuse is exact-only."""

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.artifacts import CandidateLayout
from sensequant_assets.evaluation.calibration import CalibrationSetup, synthetic_universe
from sensequant_assets.evaluation.validation import VALIDATION_MEMO, EvaluationConfig, validate
from sensequant_assets.evaluation.walk_forward import (
    WalkForwardConfig,
    walk_forward_folds,
    walk_forward_predictions,
)
from sensequant_assets.features import feature_columns
from sensequant_assets.training import distillation
from sensequant_assets.training.candidate import build_candidate
from sensequant_assets.training.distillation import (
    DISTILLATION_MEMO,
    InputMemo,
    content_digest,
    distillation_inputs,
    soft_targets,
    student_samples,
    teacher_outputs,
)
from sensequant_assets.training.rewards import RewardConfig
from sensequant_assets.training.student import StudentConfig, holdout_start, train_student
from sensequant_assets.training.teacher import teacher_probabilities
from sensequant_assets.training.teacher_record import load_teacher
from sensequant_assets.training.windows import TrainingWindow
from sensequant_assets_tests.teachers import write_teacher

SETUP = CalibrationSetup(n_symbols=3, start=dt.date(2023, 1, 1), end=dt.date(2023, 12, 31))
NAMES = list(feature_columns())


@pytest.fixture(scope="module")
def universe() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic_universe(3, 0.05, SETUP)


def _market(benchmark: pd.DataFrame) -> pd.Series:
    return benchmark.set_index("date")["close"]


@pytest.fixture
def teachers(tmp_path: Path, universe: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, Path]:
    symbols = sorted(universe[0]["symbol"].unique())
    labels = [
        f"{symbols[0]}_2023-03-01_to_2023-08-27",
        f"{symbols[0]}_2023-04-01_to_2023-09-27",
        f"{symbols[1]}_2023-05-01_to_2023-10-27",
        "NOSUCH_2023-03-01_to_2023-08-27",  # no sample: left out
    ]
    dirs = {label: tmp_path / label for label in labels}
    for seed, (label, directory) in enumerate(dirs.items()):
        write_teacher(directory, label, seed)
    return dirs


def test_teacher_outputs_equal_each_teacher_scored_alone(
    universe: tuple[pd.DataFrame, pd.DataFrame],
    teachers: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bars, benchmark = universe
    samples = student_samples(bars, SETUP.label, market=_market(benchmark))
    expected = []
    for label, directory in teachers.items():
        window = TrainingWindow.from_label(label)
        mask = (
            (samples["symbol"] == window.symbol)
            & (samples["date"] >= pd.Timestamp(window.start))
            & (samples["date"] <= pd.Timestamp(window.end))
        ).to_numpy()
        if mask.any():
            booster, _ = load_teacher(directory)
            probabilities = teacher_probabilities(booster, samples.loc[mask, NAMES], NAMES)
            knowledge_end = pd.Timestamp(samples.loc[mask, "label_end"].max()).date()
            expected.append((label, np.flatnonzero(mask), probabilities, knowledge_end))
    assert len(expected) == 3
    for cores in (1, 3):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        outputs = teacher_outputs(samples, teachers)
        assert [o.window_label for o in outputs] == [e[0] for e in expected]
        for output, (_, rows, probabilities, knowledge_end) in zip(outputs, expected, strict=True):
            np.testing.assert_array_equal(output.rows, rows)
            np.testing.assert_array_equal(output.probabilities, probabilities)
            assert output.knowledge_end == knowledge_end


def test_distillation_inputs_are_reused_only_for_identical_inputs(
    universe: tuple[pd.DataFrame, pd.DataFrame],
    teachers: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bars, benchmark = universe
    calls = []

    def counted(samples: pd.DataFrame, dirs: dict[str, Path]) -> list[distillation.TeacherOutput]:
        calls.append(len(samples))
        return teacher_outputs(samples, dirs)

    monkeypatch.setattr(distillation, "teacher_outputs", counted)
    monkeypatch.setattr(distillation, "DISTILLATION_MEMO", InputMemo())
    first, outputs = distillation_inputs(bars, SETUP.label, None, _market(benchmark), teachers)
    first.loc[0, "label"] = 99  # a caller's change never reaches the next caller
    again, reused = distillation_inputs(
        bars.copy(), SETUP.label, None, _market(benchmark.copy()), dict(teachers)
    )
    assert len(calls) == 1 and reused == outputs and again.loc[0, "label"] != 99
    assert not reused[0].probabilities.flags.writeable

    changed = bars.copy()
    changed.loc[10, "close"] *= 1.01
    distillation_inputs(changed, SETUP.label, None, _market(benchmark), teachers)
    assert len(calls) == 2

    model = next(iter(teachers.values())) / "model.txt"  # rewritten with the same bytes
    text = model.read_bytes()
    model.unlink()
    model.write_bytes(text)
    os.utime(model, ns=(1, 1))
    distillation_inputs(changed, SETUP.label, None, _market(benchmark), teachers)
    assert len(calls) == 3


def test_folds_on_several_cores_predict_what_they_predict_alone(
    universe: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    bars, benchmark = universe
    samples = student_samples(bars, SETUP.label, market=_market(benchmark))
    config = WalkForwardConfig(n_folds=3, min_train_sessions=100, embargo_sessions=7)
    folds = walk_forward_folds(samples["date"], samples["label_end"], config)
    student = StudentConfig(lgbm_params={"num_iterations": 20})
    runs = []
    for cores in (1, 3):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        runs.append(walk_forward_predictions(samples, NAMES, student, folds))
    pd.testing.assert_frame_equal(runs[0], runs[1], check_exact=True)


def test_validation_replay_is_reused_only_for_identical_inputs(
    universe: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    bars, benchmark = universe
    samples = student_samples(bars, SETUP.label, market=_market(benchmark))
    folds = walk_forward_folds(samples["date"], samples["label_end"], SETUP.walk_forward)
    oos = walk_forward_predictions(samples, NAMES, StudentConfig(), folds)
    config = EvaluationConfig(n_boot=200)
    monkeypatch.setattr("sensequant_assets.evaluation.validation.VALIDATION_MEMO", InputMemo())
    first = validate(oos, bars, benchmark, config)
    assert validate(oos.copy(), bars.copy(), benchmark.copy(), config) is first
    flipped = oos.copy()
    flipped.loc[0, "predicted"] = (flipped.loc[0, "predicted"] + 1) % 3
    assert validate(flipped, bars, benchmark, config) is not first
    assert validate(oos, bars, benchmark, EvaluationConfig(n_boot=100)) is not first


def test_content_digest_sees_values_dtypes_and_order() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    assert content_digest(frame) == content_digest(frame.copy())
    assert content_digest(frame) != content_digest(frame.assign(a=[1.0, 2.5]))
    assert content_digest(frame) != content_digest(frame.astype({"a": "float32"}))
    assert content_digest(frame) != content_digest(frame.iloc[::-1])
    assert content_digest(frame) != content_digest(frame.assign(b=["x", "z"]))
    assert content_digest(None) != content_digest("None")
    assert isinstance(DISTILLATION_MEMO, InputMemo) and isinstance(VALIDATION_MEMO, InputMemo)


def test_the_final_students_targets_come_only_from_teachers_blind_to_its_holdout(
    universe: tuple[pd.DataFrame, pd.DataFrame], teachers: dict[str, Path], tmp_path: Path
) -> None:
    """A teacher that saw holdout labels would leak them through its soft targets."""
    bars, benchmark = universe
    config = StudentConfig()
    layout = CandidateLayout(tmp_path / "live_candidate_20240101_000000")
    outcome = build_candidate(
        layout, tmp_path, list(teachers), bars, SETUP.label, config, RewardConfig(),
        market=_market(benchmark),
    )  # fmt: skip
    samples, outputs = distillation_inputs(
        bars, SETUP.label, None, _market(benchmark), {k: v for k, v in teachers.items()}
    )
    cutoff = holdout_start(samples, config)
    assert outcome.result.test_start == cutoff
    seeing = [o.window_label for o in outputs if o.knowledge_end >= cutoff]
    assert seeing == [sorted(teachers)[2]]  # the May-October window reads holdout labels
    assert outcome.summary["distillation"]["teachers_cut_off"] == 1

    labels = samples["label"].to_numpy()
    blind = train_student(samples, soft_targets(labels, outputs, before=cutoff), NAMES, config)
    leaky = train_student(samples, soft_targets(labels, outputs), NAMES, config)
    saved = (layout.student_dir / "student_model.txt").read_text()
    assert saved == blind.booster.model_to_string()
    assert saved != leaky.booster.model_to_string()
