"""The drift checks of ``production_signals`` on a real student: its saved reference, bound by
the approval like the model; windows of the market it learnt from pass, a broken feed or a
model read wrongly fails at ERROR, a bundle from before drift references fails at WARN."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from sensequant_assets.artifacts import ArtifactLayout, drift_reference_in
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs.checks import NO_DRIFT_REFERENCE, drift_check_results
from sensequant_assets.features import LabelSpec, feature_columns
from sensequant_assets.integrity import ModelIntegrityError
from sensequant_assets.live.drift import DriftReference, window_drift
from sensequant_assets.live.production import SIGNALS_TABLE, deployed_model
from sensequant_assets.live.signals import DayScores, history_start, score_day
from sensequant_assets.registry import StateManager
from sensequant_assets.registry.lifecycle import PRODUCTION
from sensequant_assets.release.deployment import deploy_to_production
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.training.distillation import student_samples
from sensequant_assets.training.student import StudentConfig, StudentResult, train_student
from sensequant_assets.training.student_files import (
    load_drift_reference,
    load_student,
    save_student,
)
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.deployable import approved_candidate, release_audit

CALENDAR = TradingCalendar()
UNIVERSE = load_universe()
SYMBOLS = tuple(UNIVERSE.default_symbols[:50])  # 50 a day: 1,000 rows in a 20-session window
START, TRAIN_END, END = dt.date(2019, 1, 1), dt.date(2023, 6, 30), dt.date(2024, 6, 28)
LIVE_DAYS = [CALENDAR.sessions(dt.date(2024, m, 20), dt.date(2024, m, 28))[-1] for m in (2, 4, 6)]
DAY = LIVE_DAYS[-1]
MODEL = "live_candidate_20230701_100000"


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    source = SyntheticSource(UNIVERSE, CALENDAR, seed=3, signal_ic=0.05)
    frames = [source.fetch(s, START, END).assign(symbol=s) for s in SYMBOLS]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def trained(bars: pd.DataFrame) -> StudentResult:
    """A student of the years up to mid-2023 (the 2020 crash and 2022 selloff among them)."""
    samples = student_samples(
        bars[pd.to_datetime(bars["date"]) <= pd.Timestamp(TRAIN_END)],
        LabelSpec(reference="absolute"),
    )
    config = StudentConfig(lgbm_params={"num_iterations": 30})
    return train_student(samples, None, list(feature_columns()), config)


@pytest.fixture(scope="module")
def saved(trained: StudentResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_student(trained, tmp_path_factory.mktemp("student") / "student")


def _scored(saved: Path, bars: pd.DataFrame, day: dt.date, **metadata: Any) -> DayScores:
    """``day`` scored by the saved student from the history ``score_sessions`` reads for it."""
    booster, stored = load_student(saved)
    dates = pd.to_datetime(bars["date"])
    first, last = pd.Timestamp(history_start(CALENDAR, day)), pd.Timestamp(day)
    history = bars[(dates >= first) & (dates <= last)]
    return score_day(booster, {**stored, **metadata}, MODEL, history, day, SYMBOLS)


def _checks(reports: dict[dt.date, Any] | None) -> dict[str, dg.AssetCheckResult]:
    return {r.check_name: r for r in drift_check_results(SIGNALS_TABLE, reports, "m1")}


def test_windows_of_the_market_it_learnt_from_pass(saved: Path, bars: pd.DataFrame) -> None:
    reference = load_drift_reference(saved)
    assert reference is not None
    for day in LIVE_DAYS:
        scores = _scored(saved, bars, day)
        assert scores.window["date"].nunique() == 20 and len(scores.window) == 20 * len(SYMBOLS)
        reports = window_drift(reference, scores.window)
        assert reports["features"]["worst"] == "ok", (day, reports["features"]["warn"])
        assert reports["score"]["worst"] == "ok"
        checks = _checks({day: reports})
        assert checks["feature_drift"].passed and checks["score_drift"].passed
        assert checks["feature_drift"].metadata["rows_compared"].value == 1_000
    # the window's scores are the day's calls on its last session
    today = scores.window[pd.to_datetime(scores.window["date"]) == pd.Timestamp(DAY)]
    assert today["score"].tolist() == scores.signals.sort_values("symbol")["score"].tolist()


def test_a_volume_feed_switched_to_thousands_is_an_error_on_its_feature(
    saved: Path, bars: pd.DataFrame
) -> None:
    reference = load_drift_reference(saved)
    assert reference is not None
    since = pd.to_datetime(bars["date"]) >= pd.Timestamp(CALENDAR.offset(DAY, -10))
    switched = bars.assign(volume=bars["volume"].where(~since, bars["volume"] / 1_000))
    broken = window_drift(reference, _scored(saved, switched, DAY).window)
    assert broken["features"]["error"] == ["volume_z_20"] and broken["features"]["warn"] == []
    assert broken["score"]["worst"] == "ok"  # ranked within the day, the student barely notices

    earlier = window_drift(reference, _scored(saved, bars, LIVE_DAYS[0]).window)
    checks = _checks({LIVE_DAYS[0]: earlier, DAY: broken})  # a run of two sessions
    feature = checks["feature_drift"]
    assert not feature.passed and feature.severity == dg.AssetCheckSeverity.ERROR
    assert feature.description.startswith("ERROR over") and "volume_z_20 PSI" in feature.description
    assert feature.metadata["session"].value == DAY.isoformat()
    assert feature.metadata["sessions_error"].value == 1
    assert "| volume_z_20 | error |" in feature.metadata["flagged"].value
    assert feature.metadata["thresholds"].value["psi"] == [0.1, 0.25]
    assert checks["score_drift"].passed


def test_a_short_reference_reports_the_unit_change_as_a_provisional_warning(
    saved: Path, bars: pd.DataFrame
) -> None:
    """The same break against limits calibrated on 5 windows: a WARN, marked provisional, so
    it cannot demote the model (docs/evaluation.md, "Provisional limits")."""
    reference = load_drift_reference(saved)
    assert reference is not None and not reference.features["volume_z_20"].limits.provisional
    short = DriftReference(
        {n: replace(p, limits=replace(p.limits, windows=5)) for n, p in reference.features.items()},
        reference.score,
        reference.rows,
    )
    since = pd.to_datetime(bars["date"]) >= pd.Timestamp(CALENDAR.offset(DAY, -10))
    switched = bars.assign(volume=bars["volume"].where(~since, bars["volume"] / 1_000))
    broken = window_drift(short, _scored(saved, switched, DAY).window)
    assert broken["features"]["error"] == [] and broken["features"]["warn"] == ["volume_z_20"]
    feature = _checks({DAY: broken})["feature_drift"]
    assert not feature.passed and feature.severity == dg.AssetCheckSeverity.WARN
    assert "| volume_z_20 | warn (provisional) |" in feature.metadata["flagged"].value


def test_a_model_read_without_its_normalisation_is_a_score_error(
    saved: Path, bars: pd.DataFrame
) -> None:
    """Raw features into trees grown on per-day ranks: the calls change, the features do not."""
    reference = load_drift_reference(saved)
    assert reference is not None
    stored = load_student(saved)[1]
    unranked = {**stored["config"], "normalisation": "none"}
    reports = window_drift(reference, _scored(saved, bars, DAY, config=unranked).window)
    assert reports["features"]["worst"] == "ok" and reports["score"]["error"] == ["score"]
    checks = _checks({DAY: reports})
    score = checks["score_drift"]
    assert not score.passed and score.severity == dg.AssetCheckSeverity.ERROR
    assert checks["feature_drift"].passed


def test_a_small_universe_is_too_few_rows_to_judge(saved: Path, bars: pd.DataFrame) -> None:
    reference = load_drift_reference(saved)
    assert reference is not None
    six = bars[bars["symbol"].isin(SYMBOLS[:6])]
    reports = window_drift(reference, _scored(saved, six, DAY).window)
    check = _checks({DAY: reports})["feature_drift"]
    assert check.passed and check.metadata["worst"].value == "insufficient"
    assert check.description.startswith("too few rows to judge drift: 120 < 200")

    stale = bars[pd.to_datetime(bars["date"]) < pd.Timestamp(DAY)]  # no bar on the day: no rows
    nothing = _scored(saved, stale, DAY)
    assert nothing.signals.empty and nothing.window.empty
    check = _checks({DAY: window_drift(reference, nothing.window)})["score_drift"]
    assert check.passed and check.metadata["window"].value == "no rows"


def test_the_reference_is_bound_by_the_approval(trained: StudentResult, tmp_path: Path) -> None:
    layout = ArtifactLayout(tmp_path / "home")
    registry = StateManager(layout.registry)
    candidate = layout.candidate(MODEL)
    save_student(trained, candidate.student_dir)
    audit = layout.audit_dir(candidate)
    audit.mkdir(parents=True)
    (audit / "promotion_briefing.md").write_text(f"# {MODEL}\n")
    (audit / "promotion_briefing.json").write_text("{}\n")
    release_audit(layout, MODEL)
    registry.record_candidate_run(MODEL, audit_dir=audit, recommendation="approve", score=0.9)
    registry.approve_candidate_run(MODEL, approved_by="asha")

    reference_file = drift_reference_in(candidate.student_dir)
    approved = reference_file.read_bytes()
    widened = json.loads(approved)
    widened["features"]["volume_z_20"]["limits"]["psi"] = [9.0, 9.0]  # a quieter alarm
    reference_file.write_text(json.dumps(widened))
    with pytest.raises(ModelIntegrityError, match=r"student_drift_reference\.json has SHA-256"):
        deploy_to_production(layout, registry, MODEL, by="asha")

    reference_file.write_bytes(approved)
    deploy_to_production(layout, registry, MODEL, by="asha")
    model = deployed_model(layout, registry, PRODUCTION)
    assert model.drift_reference == trained.drift_reference
    deployed = drift_reference_in(layout.deployed_bundle(layout.production_dir, MODEL) / "student")
    deployed.write_text(json.dumps(widened))
    with pytest.raises(ModelIntegrityError, match=r"student_drift_reference\.json has SHA-256"):
        deployed_model(layout, registry, PRODUCTION)


def test_a_bundle_from_before_drift_references_fails_at_warn(tmp_path: Path) -> None:
    layout = ArtifactLayout(tmp_path / "home")
    registry = StateManager(layout.registry)
    approved_candidate(layout, registry, MODEL)  # a student saved without a reference
    deploy_to_production(layout, registry, MODEL, by="asha")
    assert deployed_model(layout, registry, PRODUCTION).drift_reference is None
    for check in _checks(None).values():
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert check.description == NO_DRIFT_REFERENCE


def test_a_reference_survives_json(trained: StudentResult) -> None:
    reference = trained.drift_reference
    assert DriftReference.from_json(reference.to_json()) == reference
    assert reference.features["volume_z_20"].limits.psi_warn == 0.1  # stable: fixed thresholds
    assert reference.features["realized_vol_20"].limits.psi_warn > 1.0  # swings with the market
