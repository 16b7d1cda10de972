import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from sensequant_assets.artifacts import STUDENT_DRIFT_FILE
from sensequant_assets.artifacts import STUDENT_METADATA_FILE as METADATA_FILE
from sensequant_assets.artifacts import STUDENT_MODEL_FILE as MODEL_FILE
from sensequant_assets.features.cross_section import normalised_matrix
from sensequant_assets.integrity import ModelIntegrityError
from sensequant_assets.live.drift import column_profile
from sensequant_assets.training.student import (
    DEFAULT_LGBM_PARAMS,
    StudentConfig,
    distillation_targets,
    expand_soft_targets,
    predict_probabilities,
    rows_sha256,
    time_holdout_split,
    train_student,
    yesterday_direction,
)
from sensequant_assets.training.student_files import (
    load_drift_reference,
    load_student,
    save_student,
    stored_normalisation,
)
from sensequant_assets_tests.panels import FEATURES, SPEC, STRONG_IC, build_panel

NIFTY100 = 100
# Few boosting rounds where only the mechanics are under test.
QUICK = StudentConfig(lgbm_params={"num_iterations": 20})


def _toy_dates(n_dates: int = 20, symbols: int = 3, horizon: int = 2) -> pd.DataFrame:
    """``symbols`` rows per business day, shuffled, with label_end ``horizon`` sessions on."""
    days = pd.bdate_range("2024-01-01", periods=n_dates + horizon)
    frame = pd.DataFrame(
        {
            "date": np.repeat(days[:n_dates], symbols),
            "label_end": np.repeat(days[horizon:], symbols),
            "symbol": np.tile([f"S{k}" for k in range(symbols)], n_dates),
        }
    )
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_distillation_targets_blend_teacher_and_hard_label() -> None:
    labels = np.array([0, 1, 2, 2])
    teacher = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]])
    q = distillation_targets(labels, teacher, alpha=0.25)
    np.testing.assert_allclose(q, 0.25 * teacher + 0.75 * np.eye(3)[labels])
    np.testing.assert_allclose(q.sum(axis=1), 1.0)
    np.testing.assert_array_equal(distillation_targets(labels, teacher, 0.0), np.eye(3)[labels])
    np.testing.assert_array_equal(distillation_targets(labels, None, 0.7), np.eye(3)[labels])
    np.testing.assert_allclose(distillation_targets(labels, teacher, 1.0), teacher)
    with pytest.raises(ValueError, match="sum to 1"):
        distillation_targets(labels, teacher * 2, 0.5)
    with pytest.raises(ValueError, match="shape"):
        distillation_targets(labels, teacher[:3], 0.5)


def test_expansion_weights_sum_to_sample_weight_and_reproduce_q() -> None:
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(3), size=50)
    q[0] = [0.0, 0.4, 0.6]  # a zero class entry must not produce a row
    weights = rng.uniform(0.5, 2.0, size=50)
    weights[1] = 0.0  # nor may a zero-weight sample
    rows, classes, row_weights = expand_soft_targets(q, weights)

    assert (row_weights > 0).all()
    assert 1 not in rows
    assert not ((rows == 0) & (classes == 0)).any()
    assert len(rows) == 3 * 50 - 1 - 3
    np.testing.assert_allclose(np.bincount(rows, row_weights, minlength=50), weights)
    rebuilt = np.zeros_like(q)
    rebuilt[rows, classes] = row_weights / weights[rows]
    keep = weights > 0
    np.testing.assert_allclose(rebuilt[keep], q[keep])


def test_expanded_cross_entropy_equals_soft_target_cross_entropy() -> None:
    """The multiclass loss LightGBM minimises on the expansion is Σ w_i·CE(q_i, s_i)."""
    rng = np.random.default_rng(1)
    q = rng.dirichlet(np.ones(3), size=40)
    student = rng.dirichlet(np.ones(3), size=40)
    weights = rng.uniform(0.1, 3.0, size=40)
    rows, classes, row_weights = expand_soft_targets(q, weights)
    expanded_loss = np.sum(row_weights * -np.log(student[rows, classes]))
    soft_loss = np.sum(weights * -(q * np.log(student)).sum(axis=1))
    assert expanded_loss == pytest.approx(soft_loss, rel=1e-12)


def test_hard_targets_expand_to_the_original_samples() -> None:
    labels = np.array([2, 0, 1, 1, 0])
    weights = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    rows, classes, row_weights = expand_soft_targets(np.eye(3)[labels], weights)
    np.testing.assert_array_equal(rows, np.arange(5))
    np.testing.assert_array_equal(classes, labels)
    np.testing.assert_array_equal(row_weights, weights)


def test_alpha_zero_trains_the_hard_label_model() -> None:
    panel = build_panel(STRONG_IC)
    teacher = np.full((len(panel), 3), 1 / 3)
    config = StudentConfig(distill_alpha=0.0, lgbm_params={"num_iterations": 20})
    hard = train_student(panel, None, FEATURES, config)
    alpha_zero = train_student(panel, teacher, FEATURES, config)
    assert not alpha_zero.distilled
    assert alpha_zero.sample_counts["expanded_train_rows"] == hard.sample_counts["train"]
    assert alpha_zero.booster.model_to_string() == hard.booster.model_to_string()


def test_student_distils_soft_targets_from_a_teacher_end_to_end() -> None:
    panel = build_panel(STRONG_IC)
    train_idx, test_idx = time_holdout_split(panel["date"], panel["label_end"], 0.2, 7)
    x = panel[FEATURES].to_numpy()
    teacher = lgb.train(
        {"objective": "multiclass", "num_class": 3, "num_leaves": 4, "verbosity": -1, "seed": 1},
        lgb.Dataset(x[train_idx], label=panel["label"].to_numpy()[train_idx]),
        num_boost_round=10,
    )
    soft = teacher.predict(x)
    hard = train_student(panel, None, FEATURES, QUICK)
    result = train_student(panel, soft, FEATURES, QUICK)

    assert result.distilled
    np.testing.assert_array_equal(result.train_idx, train_idx)
    np.testing.assert_array_equal(result.test_idx, test_idx)
    assert result.sample_counts["expanded_train_rows"] == 3 * len(train_idx)
    assert result.test_probabilities.shape == (len(test_idx), 3)
    np.testing.assert_allclose(result.test_probabilities.sum(axis=1), 1.0)
    np.testing.assert_array_equal(result.test_predictions, result.test_probabilities.argmax(axis=1))
    assert not np.allclose(result.test_probabilities, hard.test_probabilities)
    metrics = result.metrics
    assert metrics["n_test"] == len(test_idx)
    assert np.sum(metrics["confusion_matrix"]) == len(test_idx)
    assert set(metrics["per_class"]) == {"down", "neutral", "up"}
    assert metrics["log_loss"] > 0
    assert set(metrics["beats_baselines"]) == {"majority_class", "yesterday_direction"}


def test_holdout_is_time_ordered_and_purges_labels_crossing_the_boundary() -> None:
    frame = _toy_dates(n_dates=20, horizon=2)
    train, test = time_holdout_split(frame["date"], frame["label_end"], 0.25, 0)
    dates, ends = frame["date"].to_numpy(), frame["label_end"].to_numpy()
    distinct = np.unique(dates)
    test_start = distinct[-5]

    np.testing.assert_array_equal(np.unique(dates[test]), distinct[-5:])
    assert len(test) == 5 * 3
    assert dates[train].max() < dates[test].min()
    assert (np.diff(dates[train]) >= np.timedelta64(0)).all()
    assert (np.diff(dates[test]) >= np.timedelta64(0)).all()
    # The two dates before the test period have labels reaching into it: purged.
    assert (ends[train] < test_start).all()
    np.testing.assert_array_equal(np.unique(dates[train]), distinct[:13])
    purged = np.setdiff1d(np.flatnonzero(dates < test_start), train)
    assert (ends[purged] >= test_start).all()
    assert len(purged) == 2 * 3


def test_holdout_purges_by_label_end_and_embargoes_by_date() -> None:
    frame = _toy_dates(n_dates=20, horizon=1)
    far = frame.index[frame["date"] == frame["date"].min()][0]
    frame.loc[far, "label_end"] = pd.Timestamp("2030-01-01")
    train, _ = time_holdout_split(frame["date"], frame["label_end"], 0.25, 0)
    assert far not in train
    assert len(train) == 14 * 3 - 1

    embargoed, _ = time_holdout_split(frame["date"], frame["label_end"], 0.25, 4)
    distinct = np.unique(frame["date"])
    np.testing.assert_array_equal(np.unique(frame["date"].to_numpy()[embargoed]), distinct[:11])
    with pytest.raises(ValueError, match="none for training"):
        time_holdout_split(frame["date"], frame["label_end"], 0.5, 10)


def test_yesterday_direction_baseline_uses_the_labels_neutral_band() -> None:
    last = np.array([0.01, -0.02, 0.0, np.nan, 0.004, -0.004, 0.006])
    np.testing.assert_array_equal(yesterday_direction(last), [2, 0, 1, 1, 2, 0, 2])
    np.testing.assert_array_equal(yesterday_direction(last, 0.005), [2, 0, 1, 1, 1, 1, 2])


def test_the_yesterday_baseline_predicts_neutral_as_often_as_the_band_says() -> None:
    """Without the band it never said neutral: its hit rate sat near 1/3 by construction."""
    panel = build_panel(0.0)
    calls = yesterday_direction(panel["last_return"], panel["last_band"])
    shares = np.bincount(calls, minlength=3) / len(calls)
    assert shares[1] > 0.2 and shares[0] > 0.15 and shares[2] > 0.15


def test_student_beats_both_baselines_only_when_there_is_signal() -> None:
    panel = build_panel(STRONG_IC, NIFTY100)
    signal = train_student(panel, None, FEATURES, StudentConfig()).metrics
    assert signal["beats_baselines"] == {"majority_class": True, "yesterday_direction": True}
    assert signal["accuracy"] > signal["baselines"]["yesterday_direction"]["accuracy"] + 0.02

    noise = train_student(build_panel(0.0, NIFTY100), None, FEATURES, StudentConfig()).metrics
    assert noise["accuracy"] <= noise["baselines"]["majority_class"]["accuracy"] + 0.02


def test_classes_are_reasonably_balanced() -> None:
    shares = np.bincount(build_panel(STRONG_IC)["label"], minlength=3) / len(build_panel(STRONG_IC))
    assert shares.min() > 0.25


def test_save_load_round_trip(tmp_path: Path) -> None:
    panel = build_panel(STRONG_IC)
    result = train_student(panel, None, FEATURES, QUICK)
    out = tmp_path / "models" / "student"
    save_student(result, out)
    assert sorted(p.name for p in out.iterdir()) == [STUDENT_DRIFT_FILE, METADATA_FILE, MODEL_FILE]
    assert (out / MODEL_FILE).read_text().startswith("tree")

    # The drift reference: the raw features of the training rows and the score on them.
    reference = load_drift_reference(out)
    assert reference == result.drift_reference and reference.rows == len(result.train_idx)
    assert list(reference.features) == FEATURES
    train = panel.iloc[result.train_idx]
    assert reference.features[FEATURES[0]].edges == column_profile(train[FEATURES[0]]).edges
    fitted = result.booster.predict(normalised_matrix(train, FEATURES, "rank"))
    assert reference.score.edges == column_profile(fitted[:, 2] - fitted[:, 0]).edges
    (out / STUDENT_DRIFT_FILE).unlink()  # a student saved before drift references existed
    assert load_drift_reference(out) is None

    booster, metadata = load_student(out)
    test = panel.iloc[result.test_idx]
    normalisation = stored_normalisation(metadata)
    assert normalisation == "rank"
    np.testing.assert_allclose(
        predict_probabilities(booster, test, metadata["feature_names"], normalisation),
        result.test_probabilities,
    )
    assert metadata["feature_names"] == FEATURES
    assert metadata["config"]["lgbm_params"]["num_iterations"] == 20
    assert metadata["metrics"] == json.loads(json.dumps(result.metrics))
    assert metadata["samples"]["train"] == len(result.train_idx)
    assert metadata["test_rows_sha256"] == rows_sha256(panel, result.test_idx)

    again = train_student(panel, None, FEATURES, StudentConfig(lgbm_params={"num_iterations": 5}))
    save_student(again, out)
    assert load_student(out)[1]["config"]["lgbm_params"]["num_iterations"] == 5
    assert [p.name for p in out.parent.iterdir()] == ["student"]


def test_tampered_model_is_rejected(tmp_path: Path) -> None:
    result = train_student(build_panel(STRONG_IC), None, FEATURES, QUICK)
    out = save_student(result, tmp_path / "student")
    model = out / MODEL_FILE
    model.write_bytes(model.read_bytes() + b"\n")
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_student(out)


def test_config_validation() -> None:
    assert StudentConfig().lgbm_params == DEFAULT_LGBM_PARAMS
    assert StudentConfig().embargo_sessions == SPEC.horizon
    assert StudentConfig(lgbm_params={"num_leaves": 3}).to_dict()["lgbm_params"]["num_leaves"] == 3
    with pytest.raises(ValueError, match="bagging"):
        StudentConfig(lgbm_params={"bagging_fraction": 0.5})
    with pytest.raises(ValueError, match="objective"):
        StudentConfig(lgbm_params={"objective": "binary"})
    with pytest.raises(ValueError, match="distill_alpha"):
        StudentConfig(distill_alpha=1.5)
    with pytest.raises(ValueError, match="test_fraction"):
        StudentConfig(test_fraction=1.0)


def test_train_student_rejects_unlabelled_rows() -> None:
    panel = build_panel(STRONG_IC).head(500).astype({"label": "Int64"})
    panel.loc[3, "label"] = pd.NA
    with pytest.raises(ValueError, match="label"):
        train_student(panel, None, FEATURES, QUICK)


def test_a_stored_student_scores_one_day_as_it_scored_that_day_in_its_holdout(
    tmp_path: Path,
) -> None:
    """Live scoring sees one day's universe: the per-date normalisation gives those rows the
    values they had inside the whole training frame, so the probabilities match exactly."""
    panel = build_panel(STRONG_IC)
    result = train_student(panel, None, FEATURES, QUICK)
    booster, metadata = load_student(save_student(result, tmp_path / "student"))
    test_dates = panel["date"].iloc[result.test_idx].to_numpy()
    day = test_dates[len(test_dates) // 2]
    rows = np.flatnonzero(test_dates == day)
    today = panel.iloc[result.test_idx[rows]]
    live = predict_probabilities(booster, today, FEATURES, stored_normalisation(metadata))
    np.testing.assert_array_equal(live, result.test_probabilities[rows])
    # the normalisation is really applied: raw features would score differently
    raw = booster.predict(today[FEATURES].to_numpy())
    assert not np.allclose(raw, live)


def test_the_students_inputs_read_only_their_own_dates_cross_section() -> None:
    """Causal: a row's normalised features ignore every other date, past or future."""
    panel = build_panel(0.0)
    first = panel["date"] == panel["date"].iloc[len(panel) // 2]
    before = normalised_matrix(panel, FEATURES, "rank")[first.to_numpy()]
    others = panel.copy()
    others.loc[~first, FEATURES] = -others.loc[~first, FEATURES]
    np.testing.assert_array_equal(
        normalised_matrix(others, FEATURES, "rank")[first.to_numpy()], before
    )
    np.testing.assert_array_equal(normalised_matrix(panel[first], FEATURES, "rank"), before)
    assert StudentConfig().normalisation == "rank"
    assert stored_normalisation({"config": {}}) == stored_normalisation({}) == "none"
    with pytest.raises(ValueError, match="normalisation"):
        StudentConfig(normalisation="minmax")  # type: ignore[arg-type]
