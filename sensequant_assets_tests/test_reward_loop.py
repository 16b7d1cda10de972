"""The reward loop of a candidate: out-of-fold rewards of this retrain, live rewards of earlier
ones decayed by γ per retrain, a snapshot of what was read in the bundle, and a walk-forward
that replays the same procedure."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.artifacts import CandidateLayout
from sensequant_assets.evaluation.calibration import CalibrationSetup, synthetic_universe
from sensequant_assets.evaluation.walk_forward import (
    WalkForwardConfig,
    walk_forward_folds,
    walk_forward_predictions,
)
from sensequant_assets.features import feature_columns
from sensequant_assets.training.candidate import CandidateOutcome, build_candidate
from sensequant_assets.training.distillation import TeacherOutput, soft_targets, student_samples
from sensequant_assets.training.reward_history import read_reward_history
from sensequant_assets.training.rewards import RewardConfig
from sensequant_assets.training.student import StudentConfig
from sensequant_assets_tests.teachers import write_teacher

SETUP = CalibrationSetup(n_symbols=3, start=dt.date(2023, 1, 1), end=dt.date(2023, 12, 31))
NAMES = list(feature_columns())
CURRENT = "live_candidate_20240101_000000"
EARLIER, NEWER = "live_candidate_20230601_000000", "live_candidate_20240601_000000"
STUDENT = StudentConfig(lgbm_params={"num_iterations": 40})
LOOP = RewardConfig(enabled=True, ab_testing_enabled=True, cross_fit_blocks=3)


@pytest.fixture(scope="module")
def universe() -> tuple[pd.DataFrame, pd.Series]:
    bars, benchmark = synthetic_universe(3, 0.05, SETUP)
    return bars, benchmark.set_index("date")["close"]


@pytest.fixture
def teachers(tmp_path: Path, universe: tuple[pd.DataFrame, pd.Series]) -> list[str]:
    symbols = sorted(universe[0]["symbol"].unique())
    labels = [f"{symbols[0]}_2023-03-01_to_2023-08-27", f"{symbols[1]}_2023-05-01_to_2023-10-27"]
    for seed, label in enumerate(labels):
        write_teacher(tmp_path / "teachers" / label, label, seed)
    return labels


def _history(samples: pd.DataFrame, model: str, n: int = 200) -> pd.DataFrame:
    """Live rewards of ``model`` on the first ``n`` sample rows: large, so weights move."""
    rows = samples.iloc[:n]
    reward = np.where(np.arange(n) % 2 == 0, 0.05, -0.05)
    return pd.DataFrame({"date": pd.to_datetime(rows["date"]).to_numpy(),
                         "symbol": rows["symbol"].to_numpy(), "model_id": model,
                         "source": "live", "predicted": 2, "realized_return": reward,
                         "reward": reward})  # fmt: skip


def _build(
    tmp_path: Path,
    name: str,
    universe: tuple[pd.DataFrame, pd.Series],
    teachers: list[str],
    history: pd.DataFrame | None,
    loop: RewardConfig = LOOP,
) -> CandidateOutcome:
    bars, market = universe
    layout = CandidateLayout(tmp_path / name / CURRENT)
    return build_candidate(layout, tmp_path / "teachers", teachers, bars, SETUP.label, STUDENT,
                           loop, market=market, reward_history=history)  # fmt: skip


def test_a_blocks_caller_never_reads_a_teacher_trained_on_the_block() -> None:
    labels = np.array([0, 1, 2, 2])
    spring = TeacherOutput("A_spring", np.array([0, 1]), np.full((2, 3), 1 / 3),
                           dt.date(2023, 6, 10), dt.date(2023, 3, 1))  # fmt: skip
    autumn = TeacherOutput("A_autumn", np.array([2, 3]), np.full((2, 3), 1 / 3),
                           dt.date(2023, 12, 10), dt.date(2023, 9, 1))  # fmt: skip
    every = soft_targets(labels, [spring, autumn])
    assert np.allclose(every, 1 / 3)
    # a block held out over July: both teachers' labels miss it, both stay
    july = soft_targets(
        labels, [spring, autumn], outside=(dt.date(2023, 7, 3), dt.date(2023, 7, 31))
    )
    assert np.allclose(july, 1 / 3)
    # a block over May: the spring teacher learnt its labels, its rows fall back to the label
    may = soft_targets(
        labels, [spring, autumn], outside=(dt.date(2023, 5, 2), dt.date(2023, 5, 31))
    )
    np.testing.assert_allclose(may[:2], np.eye(3)[[0, 1]])
    assert np.allclose(may[2:], 1 / 3)
    # a block over September, its labels reaching October: the autumn teacher goes
    fall = soft_targets(
        labels, [spring, autumn], outside=(dt.date(2023, 8, 1), dt.date(2023, 9, 12))
    )
    np.testing.assert_allclose(fall[2:], np.eye(3)[[2, 2]])


def test_live_rewards_of_earlier_retrains_weight_the_next_one(
    tmp_path: Path, universe: tuple[pd.DataFrame, pd.Series], teachers: list[str]
) -> None:
    bars, market = universe
    samples = student_samples(bars, SETUP.label, market=market)
    earlier = _history(samples, EARLIER)
    alone = _build(tmp_path, "alone", universe, teachers, None)
    weighted = _build(tmp_path, "weighted", universe, teachers, earlier)
    ignored = _build(tmp_path, "ignored", universe, teachers, _history(samples, NEWER))
    window = _build(tmp_path, "window", universe, teachers, earlier,
                    RewardConfig(enabled=True, cross_fit_blocks=3, retrain_window=1))  # fmt: skip

    def model(outcome: CandidateOutcome) -> str:
        return (outcome.layout.student_dir / "student_model.txt").read_text()

    history = weighted.summary["rewards"]["history"]
    assert [(r["model_id"], r["age"], r["weight"]) for r in history["retrains"]] == [
        (CURRENT, 0, 1.0), (EARLIER, 1, 0.95)
    ]  # fmt: skip
    assert history["retrains"][1]["rows"] == history["rows_with_live_rewards"] == 200
    assert model(weighted) != model(alone)  # the earlier model's verdicts moved the weights
    # a later retrain's rewards are not this one's past, and a window of 1 reads none
    assert model(ignored) == model(alone) and model(window) == model(alone)
    assert ignored.summary["rewards"]["history"]["rows_with_live_rewards"] == 0

    stored = read_reward_history(weighted.layout.reward_files())
    by_source = stored.groupby("source")["model_id"].agg(set).to_dict()
    assert by_source == {"live": {EARLIER}, "cross_fit": {CURRENT}, "holdout": {CURRENT}}
    counts = stored["source"].value_counts()
    rewards = weighted.summary["rewards"]
    assert counts["live"] == 200 and counts["cross_fit"] == rewards["train_rewards"]["count"]
    assert counts["holdout"] == rewards["test_rewards"]["count"]
    assert rewards["in_sample_train_rewards"]["count"] == rewards["train_rewards"]["count"]
    blocks = rewards["cross_fit"]["blocks"]
    assert len(blocks) == 3 and sum(b["held"] for b in blocks) == counts["cross_fit"]
    assert "McNemar p" in rewards["ab_test"]["verdict"]


def test_the_walk_forward_weights_its_folds_by_the_same_history(
    universe: tuple[pd.DataFrame, pd.Series],
) -> None:
    bars, market = universe
    samples = student_samples(bars, SETUP.label, market=market)
    config = WalkForwardConfig(n_folds=2, min_train_sessions=100, embargo_sessions=7)
    folds = walk_forward_folds(samples["date"], samples["label_end"], config)

    def run(history: pd.DataFrame | None) -> pd.DataFrame:
        return walk_forward_predictions(samples, NAMES, STUDENT, folds, (), LOOP, None,
                                        history, CURRENT)  # fmt: skip

    without = run(None)
    pd.testing.assert_frame_equal(run(_history(samples, NEWER)), without)
    assert not run(_history(samples, EARLIER)).equals(without)
