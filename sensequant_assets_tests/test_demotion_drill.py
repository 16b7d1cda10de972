"""The demotion drill: model A goes live over model B, then the market turns against A's calls.

Bars come from the files source. After the training period, each session's bars are made to
move against A's calls of the session before (a stock A ranks high falls next day), so its
live rank IC turns negative while its walk-forward promised a positive one. The signals job
materializes the calls and the scorecard on a temporary Dagster instance, and the demotion
sensor rolls production back to B, records who and why in the registry and tells the webhook;
a pinned A is left in place.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.artifacts import ArtifactLayout, BundleLayout
from sensequant_assets.cli import EXIT_OK, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.partitions import date_range_tags
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import current_production, deploy_to_production
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.live_drill import (
    BAR_COLUMNS,
    CALENDAR,
    TRAINED,
    approve,
    drill_env,
    extend,
    ingest_args,
    train,
    training_panel,
    write_files,
)
from sensequant_assets_tests.webhook import Receiver, receiving, texts

LIVE = CALENDAR.sessions(CALENDAR.offset(TRAINED, 1), dt.date(2024, 12, 31))[:45]
A, B = "live_candidate_20240330_100000", "live_candidate_20240329_100000"


@pytest.fixture
def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactLayout:
    """B then A deployed; each live session moves against A's calls of the session before (a
    stock A ranks high falls next day)."""
    base = training_panel()
    layout = ArtifactLayout.of(load_settings())
    for run_id, rounds in ((B, 10), (A, 20)):
        train(base, layout.candidate(run_id).student_dir, rounds)
    bars = extend(base[BAR_COLUMNS], {A: layout.candidate(A).student_dir}, LIVE,
                  lambda ranks: -0.03 * (ranks[A] - 0.5))  # fmt: skip
    files = tmp_path / "bars"
    write_files(bars, files)
    for name, value in drill_env(tmp_path, files).items():
        monkeypatch.setenv(name, value)
    assert main(ingest_args(LIVE[-1])) == EXIT_OK
    layout = ArtifactLayout.of(load_settings())
    registry = StateManager(layout.registry)
    for run_id in (B, A):
        approve(layout, registry, run_id)
        deploy_to_production(layout, registry, run_id, by="asha")
    return layout


def _judge(layout: ArtifactLayout) -> dg.SensorResult:
    defs = build_defs(load_settings())
    with dg.DagsterInstance.get() as instance:
        signals = defs.resolve_job_def("production_signals_job")
        assert signals.execute_in_process(
            instance=instance, tags=date_range_tags(LIVE[0], LIVE[-1])
        ).success  # the calls of every live session, then the scorecard as of the last
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
