"""Walk-forward folds: forward-only, purged, embargoed; teachers only from the fold's past."""

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.evaluation.walk_forward import (
    OOS_COLUMNS,
    WalkForwardConfig,
    default_config,
    walk_forward_folds,
    walk_forward_predictions,
)
from sensequant_assets.features import feature_columns
from sensequant_assets.training.distillation import TeacherOutput, soft_targets
from sensequant_assets.training.rewards import RewardConfig
from sensequant_assets.training.student import StudentConfig

HORIZON = 7


def _panel(n_dates: int = 300, symbols: tuple[str, ...] = ("AAA", "BBB", "CCC")) -> pd.DataFrame:
    """A sample frame: label_end is the date HORIZON sessions later (the last ones lack it)."""
    dates = pd.bdate_range("2023-01-02", periods=n_dates + HORIZON)
    rng = np.random.default_rng(5)
    rows = []
    for symbol in symbols:
        for i in range(n_dates):
            rows.append({"date": dates[i], "symbol": symbol, "label_end": dates[i + HORIZON]})
    frame = pd.DataFrame(rows)
    for name in feature_columns():
        frame[name] = rng.normal(size=len(frame))
    frame["label"] = rng.integers(0, 3, size=len(frame))
    frame["forward_return"] = rng.normal(0, 0.02, size=len(frame))
    frame["last_return"] = rng.normal(0, 0.02, size=len(frame))
    frame["last_band"] = 0.01
    return frame.sort_values(["date", "symbol"]).reset_index(drop=True)


CONFIG = WalkForwardConfig(n_folds=4, min_train_sessions=100, embargo_sessions=HORIZON)


def test_folds_move_forward_and_never_train_on_the_test_period() -> None:
    samples = _panel()
    folds = walk_forward_folds(samples["date"], samples["label_end"], CONFIG)
    distinct = np.sort(samples["date"].unique())
    tested = np.concatenate([f.test_idx for f in folds])
    # every date from min_train + embargo on is tested exactly once, in fold order
    assert len(tested) == len(set(tested.tolist()))
    assert set(samples["date"].iloc[tested]) == set(distinct[107:])
    for fold, following in itertools.pairwise(folds):
        assert fold.test_end < following.test_start
    for fold in folds:
        train = samples.iloc[fold.train_idx]
        test_start = pd.Timestamp(fold.test_start)
        assert (train["label_end"] < test_start).all()  # purge
        cutoff = pd.Timestamp(
            distinct[np.searchsorted(distinct, test_start.to_datetime64()) - HORIZON]
        )
        assert (train["date"] < cutoff).all()  # embargo
        assert fold.purged == 0 and fold.embargoed == 3 * HORIZON  # label_end = date + 7 here
        assert fold.train_start == dt.date(2023, 1, 2)
    # expanding: each fold trains on more than the last
    sizes = [len(f.train_idx) for f in folds]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_purge_drops_labels_that_reach_into_the_test_block() -> None:
    samples = _panel()
    # A longer label reaching 20 sessions ahead on one symbol must be purged.
    longer = samples["symbol"] == "AAA"
    dates = pd.bdate_range("2023-01-02", periods=400)
    position = dates.get_indexer(samples.loc[longer, "date"])
    samples.loc[longer, "label_end"] = dates[position + 20]
    folds = walk_forward_folds(samples["date"], samples["label_end"], CONFIG)
    for fold in folds:
        assert (samples["label_end"].iloc[fold.train_idx] < pd.Timestamp(fold.test_start)).all()
        assert fold.purged == 20 - HORIZON


def test_rolling_scheme_limits_the_training_span() -> None:
    samples = _panel()
    config = WalkForwardConfig(
        n_folds=3, min_train_sessions=100, embargo_sessions=HORIZON, scheme="rolling",
        train_sessions=60,
    )  # fmt: skip
    for fold in walk_forward_folds(samples["date"], samples["label_end"], config):
        assert samples["date"].iloc[fold.train_idx].nunique() <= 60


def test_too_short_a_history_is_a_clear_error() -> None:
    samples = _panel(n_dates=110)
    with pytest.raises(ValueError, match=r"110 distinct dates leave 3 for testing"):
        walk_forward_folds(samples["date"], samples["label_end"], CONFIG)
    with pytest.raises(ValueError, match="rolling scheme needs train_sessions"):
        WalkForwardConfig(scheme="rolling")


def test_default_config_fits_short_and_long_histories() -> None:
    pilot = default_config(190, HORIZON)
    assert pilot.n_folds >= 2 and pilot.min_train_sessions == 95
    three_years = default_config(700, HORIZON)
    # a year trains the first fold; the rest of a long history is out of sample
    assert three_years.n_folds == 5 and three_years.min_train_sessions == 250
    assert default_config(4300, HORIZON).min_train_sessions == 250


def test_teachers_that_saw_the_test_period_are_not_used() -> None:
    labels = np.array([0, 1, 2, 2])
    early = TeacherOutput("A_early", np.array([0, 1]), np.full((2, 3), 1 / 3), dt.date(2024, 1, 31))
    late = TeacherOutput("A_late", np.array([1, 2]), np.full((2, 3), 1 / 3), dt.date(2024, 3, 31))
    every = soft_targets(labels, [early, late])
    assert np.allclose(every[:3], 1 / 3) and np.allclose(every[3], [0, 0, 1])
    before = soft_targets(labels, [early, late], before=dt.date(2024, 2, 15))
    assert np.allclose(before[:2], 1 / 3)
    assert np.allclose(before[2:], np.eye(3)[[2, 2]])  # only the late teacher covered row 2


def test_predictions_cover_each_test_row_once_with_baselines() -> None:
    samples = _panel()
    folds = walk_forward_folds(samples["date"], samples["label_end"], CONFIG)
    seen = []
    oos = walk_forward_predictions(
        samples,
        feature_columns(),
        StudentConfig(lgbm_params={"num_iterations": 5, "min_data_in_leaf": 20}),
        folds,
        reward_config=RewardConfig(enabled=True, horizon_days=HORIZON),
        on_fold=lambda fold, total: seen.append((fold.number, total)),
    )
    assert list(oos.columns) == list(OOS_COLUMNS)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert len(oos) == sum(len(f.test_idx) for f in folds)
    assert not oos.duplicated(["date", "symbol"]).any()
    assert np.allclose(oos[["p_down", "p_neutral", "p_up"]].sum(axis=1), 1.0)
    assert set(oos["predicted"]) <= {0, 1, 2}
    first = folds[0]
    expected_majority = np.bincount(samples["label"].iloc[first.train_idx], minlength=3).argmax()
    assert (oos.loc[oos["fold"] == 1, "majority_predicted"] == expected_majority).all()
    last = samples["last_return"].iloc[np.concatenate([f.test_idx for f in folds])].to_numpy()
    expected = np.where(last > 0.01, 2, np.where(last < -0.01, 0, 1))
    assert (oos["yesterday_predicted"].to_numpy() == expected).all()
    assert set(expected) == {0, 1, 2}
