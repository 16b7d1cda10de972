import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
)

from sensequant_assets.artifacts import TEACHER_METADATA_FILE as METADATA_FILE
from sensequant_assets.artifacts import TEACHER_MODEL_FILE as MODEL_FILE
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.features.labels import DOWN, NEUTRAL, UP, LabelSpec
from sensequant_assets.features.technical import WARMUP_SESSIONS, feature_columns
from sensequant_assets.integrity import ModelIntegrityError
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.training import (
    INSUFFICIENT_FUTURE_DATA,
    TOO_FEW_SAMPLES,
    Split,
    TrainingWindow,
    assert_no_leakage,
    purged_time_split,
    window_data_range,
)
from sensequant_assets.training.teacher import (
    TeacherConfig,
    failure_record,
    fit_teacher_model,
    teacher_probabilities,
    train_teacher,
    window_samples,
)
from sensequant_assets.training.teacher_record import (
    TeacherRun,
    TeacherUnavailableError,
    load_run,
    load_teacher,
    write_record,
)
from sensequant_assets.universe import load_universe

SYMBOL = "ABB"
WINDOW = TrainingWindow(SYMBOL, dt.date(2023, 1, 2), dt.date(2023, 6, 30))
LATEST = dt.date(2023, 12, 29)
CONFIG = TeacherConfig()
NAMES = list(feature_columns())


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar()


@pytest.fixture(scope="module")
def bars(calendar: TradingCalendar) -> pd.DataFrame:
    source = SyntheticSource(load_universe(), calendar, seed=7, signal_ic=0.05)
    return source.fetch(SYMBOL, dt.date(2022, 7, 1), LATEST)


@pytest.fixture(scope="module")
def window_bars(bars: pd.DataFrame, calendar: TradingCalendar) -> pd.DataFrame:
    first, last = window_data_range(WINDOW, calendar, WARMUP_SESSIONS, CONFIG.label.horizon)
    dates = bars["date"].dt.date
    return bars[(dates >= first) & (dates <= last)].reset_index(drop=True)


@pytest.fixture(scope="module")
def completed(
    window_bars: pd.DataFrame, calendar: TradingCalendar, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TeacherRun, Path]:
    out_dir = tmp_path_factory.mktemp("teachers") / WINDOW.label
    run = train_teacher(WINDOW, window_bars, CONFIG, calendar, LATEST, out_dir)
    return run, out_dir


def recomputed_split(window_bars: pd.DataFrame) -> tuple[pd.DataFrame, Split]:
    samples, _ = window_samples(WINDOW, window_bars, CONFIG.label)
    split = purged_time_split(samples["date"], samples["label_end"], samples["label"])
    return samples, split


def test_completed_run_writes_a_verified_text_model(completed: tuple[TeacherRun, Path]) -> None:
    run, out_dir = completed
    assert run.status == "completed"
    assert sorted(p.name for p in out_dir.iterdir()) == [METADATA_FILE, MODEL_FILE]
    assert sorted(p.name for p in out_dir.parent.iterdir()) == [out_dir.name]
    model_bytes = (out_dir / MODEL_FILE).read_bytes()
    assert model_bytes.startswith(b"tree")
    assert run.sha256 == hashlib.sha256(model_bytes).hexdigest()
    stored = json.loads((out_dir / METADATA_FILE).read_text())
    assert stored == run.to_dict()
    assert stored["sha256"] == run.sha256 and stored["model_file"] == MODEL_FILE
    assert stored["config"] == CONFIG.to_dict()
    assert stored["features"] == NAMES
    assert set(stored["feature_importance"]) == set(NAMES)
    gains = list(stored["feature_importance"].values())
    assert gains == sorted(gains, reverse=True)
    assert dt.datetime.fromisoformat(stored["trained_at"]).utcoffset() == dt.timedelta(0)
    assert TeacherRun.from_dict(stored) == run


def test_reloaded_model_predicts_identically(
    completed: tuple[TeacherRun, Path], window_bars: pd.DataFrame
) -> None:
    run, out_dir = completed
    booster, loaded = load_teacher(out_dir)
    assert loaded == run
    samples, split = recomputed_split(window_bars)
    train = samples.iloc[split.train]
    fresh = fit_teacher_model(train[NAMES], train["label"], CONFIG)
    reloaded = teacher_probabilities(booster, samples, NAMES)
    assert np.array_equal(reloaded, teacher_probabilities(fresh, samples, NAMES))
    assert reloaded.shape == (len(samples), 3)
    np.testing.assert_allclose(reloaded.sum(axis=1), 1.0)


def test_metrics_are_sklearn_on_the_validation_predictions(
    completed: tuple[TeacherRun, Path], window_bars: pd.DataFrame
) -> None:
    run, out_dir = completed
    booster, _ = load_teacher(out_dir)
    samples, split = recomputed_split(window_bars)
    validation = samples.iloc[split.validation]
    probabilities = teacher_probabilities(booster, validation, NAMES)
    y_true, y_pred = validation["label"].to_numpy(), probabilities.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1, 2], average="macro", zero_division=0
    )
    metrics = run.metrics
    assert metrics is not None
    assert metrics["accuracy"] == accuracy_score(y_true, y_pred)
    assert metrics["precision_macro"] == precision
    assert metrics["recall_macro"] == recall
    assert metrics["f1_macro"] == f1
    assert metrics["log_loss"] == log_loss(y_true, probabilities, labels=[0, 1, 2])
    matrix = confusion_matrix(y_true, y_pred, labels=[0, 1, 2])
    assert metrics["confusion_matrix"] == matrix.tolist()
    assert metrics["accuracy"] == np.trace(matrix) / matrix.sum()
    per_p, per_r, per_f, support = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1, 2], zero_division=0
    )
    for i, name in enumerate(("down", "neutral", "up")):
        assert metrics["per_class"][name] == {
            "precision": per_p[i],
            "recall": per_r[i],
            "f1": per_f[i],
            "support": support[i],
        }


def test_counts_balance_and_split_are_consistent_and_leak_free(
    completed: tuple[TeacherRun, Path], window_bars: pd.DataFrame
) -> None:
    run, _ = completed
    counts = run.counts
    assert counts["rows_loaded"] == len(window_bars)
    assert counts["rows_loaded"] >= counts["after_warmup"] >= counts["labelled"] > 0
    assert counts["labelled"] == counts["train"] + counts["validation"] + counts["purged"]
    assert counts["purged"] > 0
    assert sum(run.class_balance["train"].values()) == counts["train"]
    assert sum(run.class_balance["validation"].values()) == counts["validation"]

    samples, split = recomputed_split(window_bars)
    assert_no_leakage(samples["date"], samples["label_end"], split)
    assert (len(split.train), len(split.validation), split.purged) == (
        counts["train"],
        counts["validation"],
        counts["purged"],
    )
    assert run.split_boundary == split.boundary
    dates = samples["date"].dt.date
    assert dates.min() >= WINDOW.start and dates.max() <= WINDOW.end
    assert (samples["label_end"].iloc[split.train].dt.date < split.boundary).all()


def test_window_near_latest_data_is_skipped_without_a_model(
    window_bars: pd.DataFrame, calendar: TradingCalendar, tmp_path: Path
) -> None:
    out_dir = tmp_path / WINDOW.label
    latest = WINDOW.end + dt.timedelta(days=3)
    run = train_teacher(WINDOW, window_bars, CONFIG, calendar, latest, out_dir)
    assert run.status == "skipped"
    assert run.skip_reason is not None
    assert run.skip_reason["code"] == INSUFFICIENT_FUTURE_DATA
    assert run.skip_reason["message"].startswith(WINDOW.label)
    assert [p.name for p in out_dir.iterdir()] == [METADATA_FILE]
    assert load_run(out_dir) == run and run.sha256 is None and run.metrics is None
    with pytest.raises(TeacherUnavailableError):
        load_teacher(out_dir)


def test_tiny_window_is_skipped_for_too_few_samples(
    bars: pd.DataFrame, calendar: TradingCalendar, tmp_path: Path
) -> None:
    window = TrainingWindow(SYMBOL, dt.date(2023, 3, 1), dt.date(2023, 3, 14))
    out_dir = tmp_path / window.label
    run = train_teacher(window, bars, CONFIG, calendar, LATEST, out_dir)
    assert run.status == "skipped"
    assert run.skip_reason is not None
    assert run.skip_reason["code"] == TOO_FEW_SAMPLES
    assert run.skip_reason["message"].startswith(f"{window.label}: only ")
    assert 0 < run.counts["labelled"] < CONFIG.min_samples
    assert run.counts["train"] is None
    assert [p.name for p in out_dir.iterdir()] == [METADATA_FILE]


def test_training_is_deterministic(
    completed: tuple[TeacherRun, Path],
    window_bars: pd.DataFrame,
    calendar: TradingCalendar,
    tmp_path: Path,
) -> None:
    run, out_dir = completed
    again_dir = tmp_path / WINDOW.label
    again = train_teacher(WINDOW, window_bars, CONFIG, calendar, LATEST, again_dir)
    assert again.sha256 == run.sha256
    assert (again_dir / MODEL_FILE).read_bytes() == (out_dir / MODEL_FILE).read_bytes()
    assert again.metrics == run.metrics


def test_retraining_replaces_the_directory(
    window_bars: pd.DataFrame, calendar: TradingCalendar, tmp_path: Path
) -> None:
    root = tmp_path / "teachers"
    out_dir = root / WINDOW.label
    out_dir.mkdir(parents=True)
    (out_dir / "stale.bin").write_bytes(b"old")
    train_teacher(WINDOW, window_bars, CONFIG, calendar, LATEST, out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == [METADATA_FILE, MODEL_FILE]
    train_teacher(WINDOW, window_bars, CONFIG, calendar, WINDOW.end, out_dir)
    assert [p.name for p in out_dir.iterdir()] == [METADATA_FILE]
    assert [p.name for p in root.iterdir()] == [WINDOW.label]


def test_corrupted_model_is_rejected(completed: tuple[TeacherRun, Path], tmp_path: Path) -> None:
    _, out_dir = completed
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (MODEL_FILE, METADATA_FILE):
        (copy / name).write_bytes((out_dir / name).read_bytes())
    model = copy / MODEL_FILE
    text = model.read_text()
    model.write_text(text.replace("learning_rate: 0.05", "learning_rate: 0.06", 1) + " ")
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_teacher(copy)
    model.unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        load_teacher(copy)


def test_unexpected_errors_propagate_and_leave_no_directory(
    window_bars: pd.DataFrame, calendar: TradingCalendar, tmp_path: Path
) -> None:
    root = tmp_path / "teachers"
    out_dir = root / WINDOW.label
    with pytest.raises(ValueError, match="volume"):
        train_teacher(WINDOW, window_bars.drop(columns="volume"), CONFIG, calendar, LATEST, out_dir)
    assert not root.exists() or list(root.iterdir()) == []


def test_failure_record_carries_type_message_and_traceback(
    completed: tuple[TeacherRun, Path], tmp_path: Path
) -> None:
    def explode() -> None:
        raise RuntimeError("disk on fire")

    try:
        explode()
    except RuntimeError as exc:
        run = failure_record(WINDOW, exc, CONFIG)
    assert run.status == "failed"
    assert run.error is not None
    assert run.error["type"] == "RuntimeError"
    assert run.error["message"] == "disk on fire"
    assert "explode" in run.error["traceback"]
    assert "RuntimeError: disk on fire" in run.error["traceback"]
    assert run.model_file is None and run.config == CONFIG.to_dict()

    out_dir = tmp_path / WINDOW.label
    _, good = completed
    out_dir.mkdir()
    (out_dir / MODEL_FILE).write_bytes((good / MODEL_FILE).read_bytes())
    write_record(run, out_dir)
    assert [p.name for p in out_dir.iterdir()] == [METADATA_FILE]
    assert load_run(out_dir) == run
    with pytest.raises(TeacherUnavailableError, match="failed"):
        load_teacher(out_dir)
    integrity = failure_record(WINDOW, ModelIntegrityError("bad"))
    assert integrity.error is not None
    assert integrity.error["type"] == "sensequant_assets.integrity.ModelIntegrityError"


def test_probabilities_keep_three_columns_when_training_lacks_a_class(
    window_bars: pd.DataFrame,
) -> None:
    samples, _ = window_samples(WINDOW, window_bars, CONFIG.label)
    train = samples[samples["label"] != NEUTRAL]
    assert set(train["label"]) == {DOWN, UP}
    booster = fit_teacher_model(train[NAMES], train["label"], CONFIG)
    probabilities = teacher_probabilities(booster, samples, NAMES)
    assert probabilities.shape == (len(samples), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities[:, NEUTRAL].max() < 1e-6
    assert set(probabilities.argmax(axis=1)) == {DOWN, UP}
    assert teacher_probabilities(booster, samples.iloc[:0], NAMES).shape == (0, 3)
    with pytest.raises(ValueError, match="differ"):
        teacher_probabilities(booster, samples, NAMES[::-1])


def crafted_bars(calendar: TradingCalendar) -> pd.DataFrame:
    """Rises and pauses, then one final slide: every 'down' label sits at the window's end."""
    sessions = calendar.sessions(dt.date(2022, 9, 1), dt.date(2023, 4, 30))
    window_start = next(i for i, day in enumerate(sessions) if day >= dt.date(2023, 1, 2))
    steps = []
    for i in range(len(sessions)):
        if i >= len(sessions) - 25:
            steps.append(-0.006)
        else:
            steps.append(0.005 if ((i - window_start) // 8) % 2 == 0 else 0.0)
    close = 100.0 * np.exp(np.cumsum(steps))
    volume = 1_000_000 + 1000 * (np.arange(len(sessions)) % 7)
    return pd.DataFrame(
        {
            "date": pd.to_datetime(sessions),
            "open": close,
            "high": close * 1.004,
            "low": close * 0.996,
            "close": close,
            "volume": volume,
        }
    )


def test_window_whose_training_block_lacks_a_class_still_completes(
    calendar: TradingCalendar, tmp_path: Path
) -> None:
    bars = crafted_bars(calendar)
    window = TrainingWindow("CRAFTED", dt.date(2023, 1, 2), dt.date(2023, 4, 10))
    config = TeacherConfig(label=LabelSpec(horizon=5, threshold=0.01))
    out_dir = tmp_path / window.label
    run = train_teacher(window, bars, config, calendar, dt.date(2023, 4, 28), out_dir)
    assert run.status == "completed", run.skip_reason
    assert run.class_balance["train"]["down"] == 0
    assert run.class_balance["validation"]["down"] >= config.min_per_class
    booster, _ = load_teacher(out_dir)
    samples, _ = window_samples(window, bars, config.label)
    probabilities = teacher_probabilities(booster, samples, NAMES)
    assert probabilities.shape == (len(samples), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert run.metrics is not None and run.metrics["per_class"]["down"]["recall"] == 0.0


def test_config_rejects_a_non_three_class_objective_and_serialises() -> None:
    with pytest.raises(ValueError, match="multiclass"):
        TeacherConfig(lgbm_params={"objective": "binary"})
    tuned = TeacherConfig(lgbm_params={"n_estimators": 120})
    assert tuned.lgbm_params["n_estimators"] == 120
    assert tuned.lgbm_params["deterministic"] is True
    assert json.loads(json.dumps(tuned.to_dict()))["label"]["horizon"] == 7
    with pytest.raises(TypeError):
        tuned.lgbm_params["seed"] = 1  # type: ignore[index]
