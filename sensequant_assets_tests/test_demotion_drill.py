"""The demotion drill: model A goes live over model B, then the market turns against A's calls.

Bars come from the files source. After the training period, each session's bars are made to
move against A's calls of the session before (a stock A ranks high falls next day), so its
live rank IC turns negative while its walk-forward promised a positive one. The signals and
the scorecard are materialized on a temporary Dagster instance, and the demotion sensor rolls
production back to B, records who and why in the registry and tells the webhook; a pinned A
is left in place.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from sensequant_assets.artifacts import ArtifactLayout, BundleLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.cli import EXIT_OK, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.partitions import date_range_tags
from sensequant_assets.features import LabelSpec, feature_columns
from sensequant_assets.live.signals import score_day
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import current_production, deploy_to_production
from sensequant_assets.settings import load_settings
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.training.candidate import student_samples
from sensequant_assets.training.student import (
    StudentConfig,
    load_student,
    save_student,
    train_student,
)
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.bar_files import write_csv
from sensequant_assets_tests.deployable import release_audit
from sensequant_assets_tests.webhook import Receiver, receiving, texts

CALENDAR = TradingCalendar()
SYMBOLS = ("AXISBANK", "HDFCBANK", "ICICIBANK", "KOTAKBANK", "SBIN",
           "BRITANNIA", "HINDUNILVR", "ITC", "NESTLEIND", "TATACONSUM")  # fmt: skip
START, TRAINED = dt.date(2023, 1, 2), dt.date(2024, 3, 28)
LIVE = CALENDAR.sessions(CALENDAR.offset(TRAINED, 1), dt.date(2024, 12, 31))[:45]
A, B = "live_candidate_20240330_100000", "live_candidate_20240329_100000"
LABEL = LabelSpec(reference="absolute")


def _student(bars: pd.DataFrame, directory: Path, rounds: int) -> None:
    samples = student_samples(bars, LABEL)
    config = StudentConfig(lgbm_params={"num_iterations": rounds})
    save_student(train_student(samples, None, list(feature_columns()), config), directory)


def _promised_walk_forward(audit: Path, sessions: list[dt.date]) -> None:
    """A's out-of-sample rows as its validation wrote them: a score that ranked well."""
    rng = np.random.default_rng(5)
    rows = []
    for day in sessions:
        future = rng.normal(0, 0.02, len(SYMBOLS))
        score = future + rng.normal(0, 0.05, len(SYMBOLS))  # a daily rank IC near 0.35
        for symbol, ret, s in zip(SYMBOLS, future, score, strict=True):
            p_up = 0.4 + s
            rows.append((pd.Timestamp(day), symbol, int(ret > 0) * 2, ret, 2 if s > 0 else 0,
                         0.6 - p_up, 0.4, p_up))  # fmt: skip
    columns = ["date", "symbol", "label", "forward_return", "predicted", "p_down", "p_neutral",
               "p_up"]  # fmt: skip
    pd.DataFrame(rows, columns=columns).to_parquet(audit / "oos_predictions.parquet")


def _against_a(bars: pd.DataFrame, booster, metadata) -> pd.DataFrame:
    """Extend ``bars`` over the live sessions, each day's move opposite to A's last calls."""
    frames = [bars]
    last = bars[bars["date"] == bars["date"].max()].set_index("symbol")["close"]
    history = bars
    for day in LIVE:
        previous = CALENDAR.offset(day, -1)
        calls = score_day(booster, metadata, A, history, previous, SYMBOLS).signals
        ranks = calls.set_index("symbol")["score"].rank(pct=True).reindex(list(SYMBOLS))
        close = last * np.exp(-0.03 * (ranks - 0.5))
        new = pd.DataFrame({"date": pd.Timestamp(day), "symbol": list(SYMBOLS),
                            "open": close.to_numpy(), "high": close.to_numpy() * 1.01,
                            "low": close.to_numpy() * 0.99, "close": close.to_numpy(),
                            "volume": 100_000})  # fmt: skip
        history = pd.concat([history, new], ignore_index=True)
        frames.append(new)
        last = close
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactLayout:
    source = SyntheticSource(load_universe(), CALENDAR, seed=9)
    base = pd.concat(
        [source.fetch(s, START, TRAINED).assign(symbol=s) for s in SYMBOLS], ignore_index=True
    )
    base["date"] = pd.to_datetime(base["date"])
    layout = ArtifactLayout.of(load_settings())
    for run_id, rounds in ((B, 10), (A, 20)):
        _student(base, layout.candidate(run_id).student_dir, rounds)
    booster, metadata = load_student(layout.candidate(A).student_dir)
    bars = _against_a(base[["date", "symbol", "open", "high", "low", "close", "volume"]],
                      booster, metadata)  # fmt: skip
    files = tmp_path / "bars"
    for symbol, rows in bars.groupby("symbol"):
        frame = rows.drop(columns="symbol").rename(columns=str.capitalize)
        write_csv(files, symbol, frame.assign(Date=frame["Date"].dt.date.astype(str)))
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    for name, value in {
        "DAGSTER_HOME": str(dagster_home), "SENSEQUANT_DATA_SOURCE": "files",
        "SENSEQUANT_FILES_DIR": str(files), "SENSEQUANT_SYMBOLS": ",".join(SYMBOLS),
        "SENSEQUANT_HISTORY_START": START.isoformat(), "SENSEQUANT_LABEL_REFERENCE": "absolute",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    argv = ["ingest", "--symbols", ",".join(SYMBOLS), "--start-date", START.isoformat(),
            "--end-date", LIVE[-1].isoformat(), "--no-benchmark"]  # fmt: skip
    assert main(argv) == EXIT_OK
    layout = ArtifactLayout.of(load_settings())
    registry = StateManager(layout.registry)
    for run_id in (B, A):
        audit = layout.audit_dir(layout.candidate(run_id))
        audit.mkdir(parents=True)
        _promised_walk_forward(audit, CALENDAR.sessions(dt.date(2023, 9, 1), TRAINED))
        (audit / "promotion_briefing.md").write_text(f"# {run_id}\n")
        (audit / "promotion_briefing.json").write_text("{}\n")
        release_audit(layout, run_id)
        registry.record_candidate_run(
            run_id, audit_dir=audit, recommendation="approve", score=0.9, data_source="files"
        )
        registry.approve_candidate_run(run_id, approved_by="asha")
        deploy_to_production(layout, registry, run_id, by="asha")
    return layout


def _judge(layout: ArtifactLayout) -> dg.SensorResult:
    defs = build_defs(load_settings())
    with dg.DagsterInstance.get() as instance:
        signals = defs.resolve_job_def("production_signals_job")
        assert signals.execute_in_process(
            instance=instance, tags=date_range_tags(LIVE[0], LIVE[-1])
        ).success
        scorecard = dg.materialize(
            [defs.get_assets_def("live_scorecard")],
            instance=instance,
            partition_key=LIVE[-1].isoformat(),
            resources={"evaluation": defs.resources["evaluation"]},
            selection=["live_scorecard"],
        )
        assert scorecard.success
        sensor = defs.resolve_sensor_def("demotion_sensor")
        return sensor(dg.build_sensor_context(instance=instance))


@pytest.mark.slow
def test_calls_that_go_wrong_for_k_sessions_demote_the_model(
    drill: ArtifactLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert current_production(drill) == A
    with receiving() as url:
        monkeypatch.setenv("SENSEQUANT_WEBHOOK_URL", url)
        result = _judge(drill)
    assert current_production(drill) == B
    assert result.skip_reason is not None
    assert result.skip_reason.skip_message == f"demoted {A} to {B}"
    changes = StateManager(drill.registry).audit_log(A)
    retired = changes[-1]
    assert retired.to_status == "retired" and retired.by == "demotion sensor"
    assert "below the walk-forward band" in (retired.note or "")
    assert texts() == [f"[sensequant] Production model demoted: {A}"]
    assert B in Receiver.bodies[0]["json"]["blocks"][0]["text"]["text"]
    assert (BundleLayout(drill.production_dir / B).student_dir).is_dir()


@pytest.mark.slow
def test_a_pinned_model_stays(drill: ArtifactLayout, capsys: pytest.CaptureFixture[str]) -> None:
    pin = ["candidates", "pin", A, "--by", "asha", "--reason", "earnings season, known noise"]
    assert main(pin) == EXIT_OK
    result = _judge(drill)
    assert current_production(drill) == A
    assert result.skip_reason is not None
    assert "pinned by a person: not demoted although" in str(result.skip_reason.skip_message)
