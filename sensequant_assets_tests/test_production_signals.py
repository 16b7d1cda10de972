"""``production_signals``: the deployed student's calls per session, checked and stored.

A real home: bars from the files source in the warehouse (ingested by `sensequant ingest`), a
student trained on them, approved and deployed through the release path, then the asset run
on a temporary Dagster instance, by `sensequant signals --score` and by the sensor that chains
it after the daily update.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from sensequant_assets.artifacts import ArtifactLayout, BundleLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.cli import EXIT_FAILED, EXIT_OK, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import OHLCV_JOB, SIGNALS_JOB
from sensequant_assets.defs.partitions import one_day_all_symbols_tags
from sensequant_assets.features import LabelSpec, feature_columns
from sensequant_assets.live.production import SIGNALS_TABLE
from sensequant_assets.live.signals import score_day
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import deploy_to_production
from sensequant_assets.settings import load_settings
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.storage import Warehouse
from sensequant_assets.training.distillation import student_samples
from sensequant_assets.training.student import StudentConfig, train_student
from sensequant_assets.training.student_files import load_student, save_student
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.bar_files import write_csv
from sensequant_assets_tests.deployable import release_audit
from sensequant_assets_tests.fault_drills import make_dagster_home
from sensequant_assets_tests.live_drill import promised_walk_forward

CALENDAR = TradingCalendar()
SYMBOLS = ("INFY", "ITC", "LT", "RELIANCE", "SBIN", "TCS")
UNSTORED = "WIPRO"  # partitioned, never ingested
START, END = dt.date(2023, 6, 1), dt.date(2024, 6, 28)
DAY = CALENDAR.sessions(dt.date(2024, 6, 24), dt.date(2024, 6, 28))[-1]
MODEL = "live_candidate_20240629_100000"
TRAINED = dt.date(2024, 6, 1)  # the end of the walk-forward its approval bound


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactLayout:
    """Bars of six symbols stored through the files source; a student on them in production."""
    files = tmp_path / "bars"
    source = SyntheticSource(load_universe(), CALENDAR, seed=4, signal_ic=0.1)
    for symbol in SYMBOLS:
        bars = source.fetch(symbol, START, END)
        write_csv(files, symbol, bars.rename(columns=str.capitalize).assign(Date=bars["date"]))
    dagster_home = make_dagster_home(tmp_path / "dagster_home")  # the repo's dagster.yaml
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(files))
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", ",".join([*SYMBOLS, UNSTORED]))
    monkeypatch.setenv("SENSEQUANT_HISTORY_START", START.isoformat())
    monkeypatch.setenv("SENSEQUANT_LABEL_REFERENCE", "absolute")  # as the student was trained
    argv = ["ingest", "--symbols", ",".join(SYMBOLS), "--start-date", START.isoformat(),
            "--end-date", END.isoformat(), "--no-benchmark"]  # fmt: skip
    assert main(argv) == EXIT_OK
    settings = load_settings()
    layout = ArtifactLayout.of(settings)
    stored = Warehouse.from_settings(settings).symbols_bars("ohlcv_daily", list(SYMBOLS))
    samples = student_samples(stored, LabelSpec(reference="absolute"))
    result = train_student(
        samples, None, list(feature_columns()), StudentConfig(lgbm_params={"num_iterations": 20})
    )
    candidate = layout.candidate(MODEL)
    save_student(result, candidate.student_dir)
    audit = layout.audit_dir(candidate)
    audit.mkdir(parents=True)
    (audit / "promotion_briefing.md").write_text(f"# {MODEL}\n")
    (audit / "promotion_briefing.json").write_text("{}\n")
    # banks: one sector, so the band's sector-neutral rank IC is defined
    promised_walk_forward(audit, CALENDAR.sessions(dt.date(2024, 1, 1), TRAINED))
    release_audit(layout, MODEL)
    registry = StateManager(layout.registry)
    registry.record_candidate_run(
        MODEL, audit_dir=audit, recommendation="approve", score=0.9, data_source="files"
    )
    registry.approve_candidate_run(MODEL, approved_by="asha")
    deploy_to_production(layout, registry, MODEL, by="asha")
    return layout


def _evaluations(instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(SIGNALS_TABLE), "model_verified"), limit=1
    )
    run_id = records[0].run_id
    logs = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = [entry.dagster_event.event_specific_data for entry in logs]
    return {e.check_name: e for e in evaluations}


def _checks(instance: dg.DagsterInstance) -> dict[str, bool]:
    return {name: e.passed for name, e in _evaluations(instance).items()}


@pytest.mark.slow
def test_the_day_is_scored_by_the_deployed_model_and_stored(
    home: ArtifactLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["signals", "--date", DAY.isoformat(), "--score"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"{DAY}: 6 symbol(s) scored by {MODEL}" in out
    stored = Warehouse.from_settings(load_settings()).query(SIGNALS_TABLE, "date = ?", [DAY])
    assert sorted(stored["symbol"]) == sorted(SYMBOLS)
    # the same numbers as the verified student gives on the stored bars directly
    booster, metadata = load_student(BundleLayout(home.production_dir / MODEL).student_dir)
    bars = Warehouse.from_settings(load_settings()).symbols_bars("ohlcv_daily", list(SYMBOLS))
    direct = score_day(booster, metadata, MODEL, bars, DAY, SYMBOLS).signals
    pd.testing.assert_series_equal(
        stored.sort_values("symbol")["p_up"].reset_index(drop=True),
        direct.sort_values("symbol")["p_up"].reset_index(drop=True),
        rtol=1e-12,
    )
    with dg.DagsterInstance.get() as instance:
        evaluations = _evaluations(instance)
    checks = {name: e.passed for name, e in evaluations.items()}
    # WIPRO is partitioned but has no bars: coverage and bars fail, the model and freshness pass
    assert checks == {"model_verified": True, "universe_covered": False,
                      "features_fresh": True, "bars_present": False,
                      "feature_drift": True, "score_drift": True}  # fmt: skip
    # Six symbols over the 20-session window are 120 rows: too few to judge, and said so (the
    # verdicts themselves are test_live_drift_checks').
    for name in ("feature_drift", "score_drift"):
        drift = evaluations[name]
        assert drift.metadata["worst"].value == "insufficient"
        assert drift.metadata["rows_compared"].value == 6 * 20
        assert drift.description.startswith("too few rows to judge drift: 120 < 200")
    # the same run records the live scorecard the demotion sensor judges: nothing matured yet
    with dg.DagsterInstance.get() as instance:
        (record,) = instance.fetch_materializations(dg.AssetKey("live_scorecard"), 5).records
    scorecard = record.event_log_entry.asset_materialization
    assert scorecard is not None and scorecard.partition == DAY.isoformat()
    assert scorecard.metadata["model_id"].value == MODEL
    assert scorecard.metadata["matured_sessions"].value == 0
    assert main(["signals", "--date", DAY.isoformat()]) == EXIT_OK  # printed from storage
    assert "RELIANCE" in capsys.readouterr().out


@pytest.mark.slow
def test_a_tampered_model_scores_nothing(
    home: ArtifactLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    model_file = BundleLayout(home.production_dir / MODEL).student_dir / "student_model.txt"
    model_file.write_text(model_file.read_text().replace("num_class=3", "num_class=3 "))
    assert main(["signals", "--date", DAY.isoformat(), "--score"]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "FAILED" in out and "production model refused" in out
    with dg.DagsterInstance.get() as instance:
        assert _checks(instance) == {"model_verified": False}


def test_without_a_production_model_the_asset_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert main(["signals", "--date", DAY.isoformat(), "--score"]) == EXIT_FAILED
    assert "no model in production: approve a candidate" in capsys.readouterr().out


@pytest.mark.slow
def test_the_daily_update_chains_the_signals(home: ArtifactLayout) -> None:
    defs = build_defs(load_settings())
    sensor = defs.resolve_sensor_def("production_signals_sensor")
    with dg.DagsterInstance.get() as instance:
        daily = defs.resolve_job_def(OHLCV_JOB).execute_in_process(
            instance=instance, tags=one_day_all_symbols_tags(DAY, SYMBOLS), raise_on_error=False
        )
        single = next(r for r in instance.get_runs() if r.run_id != daily.run_id)  # an ingest
        answers = {}
        for run in (instance.get_run_by_id(daily.run_id), single):
            success = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
            event = success[0].dagster_event
            context = dg.build_run_status_sensor_context(
                sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
                dagster_event=event,
            )  # fmt: skip
            answers[run.run_id] = sensor(context)
    (request,) = answers[daily.run_id]  # nothing on trial in staging: production only
    assert request.job_name == SIGNALS_JOB and request.partition_key == DAY.isoformat()
    assert isinstance(answers[single.run_id], dg.SkipReason)
