"""The staging trial drill: champion B is live, challenger A is approved and staged.

With ``SENSEQUANT_PROMOTE_VIA_STAGING`` the promotion sensor stages A instead of deploying it;
A then scores the live sessions in shadow beside B. Each live session moves with the part of
A's ranking that B does not share (``held``) or against it (``broken``), so on the matured
rows A's rank IC is above or far below B's. On a temporary Dagster instance the trial records
its outcome once in the registry, writes the staging report beside the briefing and tells the
webhook; the sensor then promotes A (held) or leaves B live with A in staging (broken), and a
hand-launched production_model refuses a candidate whose trial did not say promote.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from sensequant_assets.artifacts import ArtifactLayout, AuditLayout
from sensequant_assets.cli import EXIT_OK, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.partitions import date_range_tags
from sensequant_assets.defs.tags import CANDIDATE_TAG
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import (
    current_production,
    current_staging,
    deploy_to_production,
)
from sensequant_assets.settings import get_settings, load_settings
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
from sensequant_assets_tests.webhook import receiving, texts

LIVE = CALENDAR.sessions(CALENDAR.offset(TRAINED, 1), dt.date(2024, 12, 31))[:14]
A, B = "live_candidate_20240330_100000", "live_candidate_20240329_100000"


def _trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sign: float) -> ArtifactLayout:
    """B in production, A approved; live moves of ``sign`` × (A's rank − B's rank).

    Both students keep their drift references. Trained on a few months of 10 symbols, their
    limits rest on fewer than 20 windows, so they are provisional (docs/evaluation.md, "Live
    drift"): the drift checks may WARN but cannot stop a trial, which is judged on its rank
    IC."""
    market = training_panel(end=LIVE[-1])
    base = market[market["date"] <= pd.Timestamp(TRAINED)]
    layout = ArtifactLayout.of(load_settings())
    other = training_panel(seed=3)  # B learnt another market: its ranks differ from A's
    train(other, layout.candidate(B).student_dir, 10)
    train(base, layout.candidate(A).student_dir, 40)
    models = {run_id: layout.candidate(run_id).student_dir for run_id in (A, B)}
    bars = extend(base[BAR_COLUMNS], models, LIVE,
                  lambda ranks: sign * 0.05 * (ranks[A] - ranks[B]),
                  continuation=market[market["date"] > pd.Timestamp(TRAINED)])  # fmt: skip
    files = tmp_path / "bars"
    write_files(bars, files)
    for name, value in drill_env(tmp_path, files).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SENSEQUANT_PROMOTE_VIA_STAGING", "true")
    get_settings.cache_clear()
    assert main(ingest_args(LIVE[-1])) == EXIT_OK
    layout = ArtifactLayout.of(load_settings())
    registry = StateManager(layout.registry)
    approve(layout, registry, B)
    deploy_to_production(layout, registry, B, by="asha")
    approve(layout, registry, A)
    return layout


def _tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None = None
) -> tuple[list[dg.RunRequest], str | None]:
    sensor = defs.resolve_sensor_def("promotion_sensor")
    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return list(result.run_requests or []), result.cursor


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> bool:
    job = defs.resolve_job_def(str(request.job_name))
    outcome = job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
    return outcome.success


def _stage_and_score(layout: ArtifactLayout, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stage A through the sensor, score the live sessions in both stages, judge the trial;
    return the webhook's messages."""
    with receiving() as url, dg.DagsterInstance.get() as instance:
        monkeypatch.setenv("SENSEQUANT_WEBHOOK_URL", url)
        defs = build_defs(load_settings())
        (stage,), cursor = _tick(defs, instance)
        assert (stage.job_name, stage.tags[CANDIDATE_TAG]) == ("stage_job", A)
        assert _run(defs, instance, stage)
        assert current_staging(layout) == A and current_production(layout) == B
        tags = date_range_tags(LIVE[0], LIVE[-1])
        for job in ("production_signals_job", "staging_signals_job"):
            scored = defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags)
            assert scored.success
        for request in _tick(defs, instance, cursor)[0]:
            assert _run(defs, instance, request)
        return texts()


@pytest.mark.slow
def test_a_challenger_that_holds_up_in_staging_is_promoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = _trial(tmp_path, monkeypatch, sign=+1.0)
    messages = _stage_and_score(layout, monkeypatch)
    registry = StateManager(layout.registry)
    assert registry.staging_outcome(A) == "promote"
    assert current_production(layout) == A
    assert registry.get_candidate_run(B).status == "retired"
    report = json.loads(AuditLayout(layout.audit_dir(layout.candidate(A))).staging_report_json
                        .read_text())  # fmt: skip
    assert report["outcome"] == "promote" and report["champion_id"] == B
    assert report["figures"]["gap"] > 0
    assert messages[:2] == [f"[sensequant] Staging trial started: {A}",
                            f"[sensequant] Staging trial finished: {A}"]  # fmt: skip
    assert messages[-1] == f"[sensequant] Model deployed to production: {A}"


@pytest.mark.slow
def test_a_challenger_that_breaks_in_staging_stays_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = _trial(tmp_path, monkeypatch, sign=-1.0)
    messages = _stage_and_score(layout, monkeypatch)
    registry = StateManager(layout.registry)
    assert registry.staging_outcome(A) == "stays"
    assert current_production(layout) == B and current_staging(layout) == A
    assert registry.get_candidate_run(A).status == "approved"
    trial_note = registry.audit_log(A)[-1]
    assert (trial_note.from_status, trial_note.to_status) == ("approved", "approved")
    assert "worse by more than" in (trial_note.note or "")
    assert "drift" not in (trial_note.note or "")  # its features are the market's: no break
    assert registry.verify().intact
    audit = AuditLayout(layout.audit_dir(layout.candidate(A)))
    assert "STAYS" in audit.staging_report_md.read_text()
    assert messages == [f"[sensequant] Staging trial started: {A}",
                        f"[sensequant] Staging trial finished: {A}"]  # fmt: skip
    with dg.DagsterInstance.get() as instance:
        defs = build_defs(load_settings())
        by_hand = dg.RunRequest(job_name="promote_job", tags={CANDIDATE_TAG: A})
        assert not _run(defs, instance, by_hand)
    assert current_production(layout) == B
