"""``live_rewards``: the production model's matured calls earn the story's reward, once each.

A real home: synthetic bars and the NIFTY 50 through the files source, market-relative labels
(the default), a student trained on the first part and deployed through the release path, its
calls on the live sessions stored by ``production_signals``, then ``live_rewards`` run on a
temporary Dagster instance and chained by the sensor after the daily update.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.cli import EXIT_OK, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import OHLCV_JOB, REWARDS_JOB, SIGNALS_JOB
from sensequant_assets.defs.partitions import date_range_tags, one_day_all_symbols_tags
from sensequant_assets.features import feature_columns
from sensequant_assets.live.rewards import CATCH_UP_SESSIONS, live_rewards
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import deploy_to_production
from sensequant_assets.settings import load_settings
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.training.distillation import student_samples
from sensequant_assets.training.resources import Training
from sensequant_assets.training.reward_history import read_reward_history
from sensequant_assets.training.rewards import RewardConfig, decayed_rewards
from sensequant_assets.training.student import StudentConfig, train_student
from sensequant_assets.training.student_files import save_student
from sensequant_assets.universe import INDEX_SYMBOL, load_universe
from sensequant_assets_tests.fault_drills import make_dagster_home
from sensequant_assets_tests.live_drill import CALENDAR, TRAINED, approve
from sensequant_assets_tests.live_drill import SYMBOLS as DRILL_SYMBOLS
from sensequant_assets_tests.live_drill import write_files as write_bar_files

MODEL = "live_candidate_20240330_100000"
LIVE = CALENDAR.sessions(CALENDAR.offset(TRAINED, 1), dt.date(2024, 12, 31))[:30]
HORIZON = 7
SYMBOLS = DRILL_SYMBOLS[:6]
START = dt.date(2023, 9, 1)  # features from November, a holdout from February 2024


def test_matured_out_of_sample_calls_earn_sign_times_return_clipped() -> None:
    days = pd.to_datetime(["2024-04-01", "2024-04-02", "2024-04-03"])
    calls = pd.DataFrame({"date": np.repeat(days, 2), "symbol": ["A", "B"] * 3,
                          "model_id": MODEL, "call": [1, -1, 0, 1, -1, 1]})  # fmt: skip
    returns = [0.02, 0.09, -0.01, -0.03]
    labels = pd.DataFrame({"date": days[[0, 0, 1, 1]], "symbol": ["A", "B", "A", "B"],
                           "label": [2, 2, 0, 0], "forward_return": returns})  # fmt: skip
    config = RewardConfig()  # clipped to ±0.05
    rows, refused = live_rewards(calls, labels, config, {MODEL: dt.date(2024, 4, 1)})
    assert refused == 0 and len(rows) == 4  # 2024-04-03's labels have not matured
    assert rows["reward"].tolist() == pytest.approx([0.02, -0.05, 0.0, -0.03])
    assert rows["predicted"].tolist() == [2, 0, 1, 2]
    assert set(rows["source"]) == {"live"} and set(rows["model_id"]) == {MODEL}
    # calls dated before the model's holdout were scored on rows it trained on: refused
    rows, refused = live_rewards(calls, labels, config, {MODEL: dt.date(2024, 4, 2)})
    assert refused == 2 and rows["date"].min() == days[1]
    rows, refused = live_rewards(calls, labels, config, {})  # no student to vouch for it
    assert refused == 4 and rows.empty


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactLayout:
    """Bars to 30 sessions after training, the benchmark, and a student in production."""
    source = SyntheticSource(load_universe(), CALENDAR, seed=9)
    bars = pd.concat(
        [source.fetch(s, START, LIVE[-1]).assign(symbol=s) for s in (*SYMBOLS, INDEX_SYMBOL)]
    ).assign(date=lambda f: pd.to_datetime(f["date"]))
    files = tmp_path / "bars"
    write_bar_files(bars, files)
    dagster_home = make_dagster_home(tmp_path / "dagster_home")  # the repo's dagster.yaml
    for name, value in {
        "DAGSTER_HOME": str(dagster_home), "SENSEQUANT_DATA_SOURCE": "files",
        "SENSEQUANT_FILES_DIR": str(files), "SENSEQUANT_SYMBOLS": ",".join(SYMBOLS),
        "SENSEQUANT_HISTORY_START": START.isoformat(), "REWARD_LOOP_ENABLED": "true",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    argv = ["ingest", "--symbols", ",".join(SYMBOLS), "--start-date", START.isoformat(),
            "--end-date", LIVE[-1].isoformat()]  # fmt: skip
    assert main(argv) == EXIT_OK
    training = _training()
    stored = training.warehouse.symbols_bars("ohlcv_daily", list(SYMBOLS), START, TRAINED)
    market = training.market_closes(START, TRAINED)
    samples = student_samples(stored, training.teacher_config.label, market=market)
    config = StudentConfig(lgbm_params={"num_iterations": 20})
    layout = training.layout
    save_student(train_student(samples, None, list(feature_columns()), config),
                 layout.candidate(MODEL).student_dir)  # fmt: skip
    registry = StateManager(layout.registry)
    approve(layout, registry, MODEL)
    deploy_to_production(layout, registry, MODEL, by="asha")
    return layout


def _training() -> Training:
    from sensequant_assets.universe import universe_for

    settings = load_settings()
    return Training(settings, universe_for(settings), CALENDAR)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["date", "symbol"]).reset_index(drop=True)


def _reward(instance: dg.DagsterInstance, defs: dg.Definitions, **run: object) -> dict:
    job = defs.resolve_job_def(REWARDS_JOB)
    result = job.execute_in_process(instance=instance, **run)  # type: ignore[arg-type]
    assert result.success
    metadata = result.asset_materializations_for_node("live_rewards")[0].metadata
    return {key: value.value for key, value in metadata.items()}


@pytest.mark.slow
def test_matured_live_calls_are_rewarded_once_with_the_labels_convention(
    home: ArtifactLayout,
) -> None:
    defs = build_defs(load_settings())
    training = _training()
    with dg.DagsterInstance.get() as instance:
        signals = defs.resolve_job_def(SIGNALS_JOB).execute_in_process(
            instance=instance, tags=date_range_tags(LIVE[0], LIVE[-1])
        )
        assert signals.success
        last = _reward(instance, defs, partition_key=LIVE[-1].isoformat())
        files = {p.name: p.read_bytes() for p in home.reward_history_dir.iterdir()}
        # the last run looks back 20 sessions besides its own maturing ones: LIVE[2..22]
        matured = CATCH_UP_SESSIONS + 1
        assert last["written"] == last["matured"] == len(SYMBOLS) * matured
        assert _reward(instance, defs, partition_key=LIVE[-1].isoformat())["written"] == 0
        assert {p.name: p.read_bytes() for p in home.reward_history_dir.iterdir()} == files
        # a backfill of every live session catches up the first two, duplicates nothing
        backfill = _reward(instance, defs, tags=date_range_tags(LIVE[0], LIVE[-1]))
        assert backfill["written"] == len(SYMBOLS) * 2

    history = training.reward_history(SYMBOLS)
    assert len(history) == len(SYMBOLS) * (len(LIVE) - HORIZON)
    assert not history.duplicated(["date", "symbol", "model_id", "source"]).any()
    assert set(history["model_id"]) == {MODEL} and set(history["source"]) == {"live"}
    assert history["date"].min() == pd.Timestamp(LIVE[0])
    assert history["date"].max() == pd.Timestamp(LIVE[-1 - HORIZON])
    # the realised return is the label's: 7 sessions, in excess of the NIFTY 50
    bars = training.warehouse.symbols_bars("ohlcv_daily", list(SYMBOLS))
    market = training.market_closes(START, LIVE[-1])
    samples = student_samples(bars, training.teacher_config.label, market=market)
    joined = history.merge(samples[["date", "symbol", "forward_return"]], on=["date", "symbol"])
    assert len(joined) == len(history)
    np.testing.assert_allclose(joined["realized_return"], joined["forward_return"])
    calls = training.warehouse.query("production_signals", "true", [])
    calls = calls.assign(date=pd.to_datetime(calls["date"]))
    joined = joined.merge(calls[["date", "symbol", "call"]], on=["date", "symbol"])
    expected = np.clip(joined["call"] * joined["forward_return"], -0.05, 0.05)
    np.testing.assert_allclose(joined["reward"], expected)
    # what the next retrain reads: the live rewards on its rows, its own retrain at age 0
    keys = samples[["date", "symbol"]]
    _, summary = decayed_rewards(keys, np.zeros(len(keys)), history,
                                 "live_candidate_20250101_100000", RewardConfig())  # fmt: skip
    assert summary["retrains"][1] == {"model_id": MODEL, "age": 1, "weight": 0.95,
                                      "rows": len(history), "source": "live"}  # fmt: skip
    on_disk = read_reward_history(sorted(home.reward_history_dir.iterdir()))
    pd.testing.assert_frame_equal(_sorted(on_disk), _sorted(history))

    # a production_signals backfill over days the student trained on earns no reward
    trained_on = dt.date(2023, 12, 1)
    with dg.DagsterInstance.get() as instance:
        scored = defs.resolve_job_def(SIGNALS_JOB).execute_in_process(
            instance=instance, partition_key=trained_on.isoformat()
        )
        assert scored.success
        day = CALENDAR.offset(trained_on, HORIZON)
        report = _reward(instance, defs, partition_key=day.isoformat())
        assert report["refused_in_sample"] == len(SYMBOLS) and report["written"] == 0
        assert len(training.reward_history(SYMBOLS)) == len(history)
        # the daily update chains the day's rewards after it, with the reward loop on
        daily = defs.resolve_job_def(OHLCV_JOB).execute_in_process(
            instance=instance, tags=one_day_all_symbols_tags(LIVE[-1], SYMBOLS)
        )
        run = instance.get_run_by_id(daily.run_id)
        event = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)[0]
        sensor = defs.resolve_sensor_def("production_signals_sensor")
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
            dagster_event=event.dagster_event,
        )  # fmt: skip
        requests = sensor(context)
    assert {(r.job_name, r.partition_key) for r in requests} == {
        (SIGNALS_JOB, LIVE[-1].isoformat()), (REWARDS_JOB, LIVE[-1].isoformat())
    }  # fmt: skip
