"""Who tells the webhook what: an approval from the command, a failed run from the sensor, and
never a secret, against a receiver on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.cli import EXIT_OK, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import OHLCV_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.live.notify import Notifier
from sensequant_assets.registry import StateManager
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.deployable import release_audit, student
from sensequant_assets_tests.evidence import write_evidence
from sensequant_assets_tests.webhook import Receiver, receiving, texts

RUN = "live_candidate_20261124_101500"
SECRET = "pg-pass-4f9e1c"


def test_the_settings_know_every_secret_they_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSEQUANT_WEBHOOK_URL", "https://hooks.example/T1/B2/tok")
    monkeypatch.setenv("SENSEQUANT_REGISTRY_URL", f"postgresql://sq:{SECRET}@db.example/reg")
    secrets = load_settings().secret_values
    assert SECRET in secrets  # the password alone, not only inside the URL
    assert "https://hooks.example/T1/B2/tok" in secrets
    notifier = Notifier.of(load_settings())
    assert notifier.url == "https://hooks.example/T1/B2/tok"


def test_an_approval_is_announced(monkeypatch: pytest.MonkeyPatch) -> None:
    layout = ArtifactLayout.of(load_settings())
    registry = StateManager(layout.registry)
    candidate = layout.candidate(RUN)
    student(candidate.student_dir, seed=7)
    audit = write_evidence(layout.audit_dir(candidate))
    release_audit(layout, RUN)
    registry.record_candidate_run(RUN, audit_dir=audit, recommendation="approve", score=0.9)
    with receiving() as url:
        monkeypatch.setenv("SENSEQUANT_WEBHOOK_URL", url)
        assert main(["candidates", "approve", RUN, "--by", "asha"]) == EXIT_OK
    assert texts() == [f"[sensequant] Candidate approved: {RUN}"]
    assert "by: asha" in Receiver.bodies[0]["json"]["blocks"][0]["text"]["text"]


def test_a_failed_run_is_announced_without_the_secrets_its_error_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files source reads a directory whose name holds a secret (as a careless path or an
    error message might): the failure reaches the webhook with the secret masked."""
    files = tmp_path / f"bars-{SECRET}"
    files.mkdir()
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(files))
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", SECRET)
    settings = load_settings()
    defs = build_defs(settings)
    sensor = defs.resolve_sensor_def("run_failure_notifier")
    with dg.DagsterInstance.ephemeral() as instance, receiving() as url:
        monkeypatch.setenv("SENSEQUANT_WEBHOOK_URL", url)
        tags = one_symbol_range_tags("TCS", dt.date(2024, 1, 1), dt.date(2024, 1, 5))
        failed = defs.resolve_job_def(OHLCV_JOB).execute_in_process(
            instance=instance, tags=tags, raise_on_error=False
        )
        assert not failed.success
        run = instance.get_run_by_id(failed.run_id)
        event = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0]
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=event.dagster_event,
            dagster_instance=instance, dagster_run=run,
        ).for_run_failure()  # fmt: skip
        build_defs(load_settings()).resolve_sensor_def("run_failure_notifier")(context)
    assert texts() == [f"[sensequant] Run failed: {OHLCV_JOB} run {failed.run_id[:8]} failed"]
    raw = json.dumps(Receiver.bodies[0]["json"])
    assert SECRET not in raw and "***" in raw and "ohlcv_daily" in raw
