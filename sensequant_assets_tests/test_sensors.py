"""Sensors: each approval promoted once; a failed candidate run recorded with a briefing.

Each test runs with the registry on SQLite and on Postgres."""

import datetime as dt
import json

import dagster as dg
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import CANDIDATE_JOB
from sensequant_assets.defs.tags import scope_tags
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import promotion_requests
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.evidence import write_evidence

pytestmark = pytest.mark.usefixtures("registry_env")


def test_each_approval_is_requested_once(tmp_path, new_database) -> None:
    registry = StateManager(new_database("registry"))
    for run_id in ("live_candidate_20261101_090000", "live_candidate_20261102_090000"):
        audit = write_evidence(tmp_path / f"audit_{run_id}")
        registry.record_candidate_run(run_id, recommendation="approve", audit_dir=audit)
    dry = write_evidence(tmp_path / "audit_dry")
    registry.record_candidate_run("live_candidate_20261103_090000", dryrun=True, audit_dir=dry)
    assert promotion_requests(registry, None)[0] == []

    registry.approve_candidate_run("live_candidate_20261101_090000", approved_by="asha")
    registry.approve_candidate_run("live_candidate_20261103_090000", approved_by="asha")
    first, cursor = promotion_requests(registry, None)
    assert first == ["live_candidate_20261101_090000"]  # the dry run is never promoted
    assert promotion_requests(registry, cursor)[0] == []

    registry.approve_candidate_run("live_candidate_20261102_090000", approved_by="ravi")
    second, cursor = promotion_requests(registry, cursor)
    assert second == ["live_candidate_20261102_090000"]
    assert promotion_requests(registry, cursor)[0] == []


def test_sensor_tick_requests_the_promote_job_with_the_candidate_tag() -> None:
    settings = load_settings()
    layout = ArtifactLayout.of(settings)
    registry = StateManager(layout.registry)
    audit = write_evidence(layout.audit_dir(layout.candidate("live_candidate_20261101_090000")))
    registry.record_candidate_run(
        "live_candidate_20261101_090000", recommendation="approve", audit_dir=audit
    )
    registry.approve_candidate_run("live_candidate_20261101_090000", approved_by="asha")
    sensor = build_defs(settings).resolve_sensor_def("promotion_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        result = sensor(dg.build_sensor_context(instance=instance))
        (request,) = result.run_requests
        assert request.run_key == "promote:live_candidate_20261101_090000"
        assert request.tags["sensequant/candidate"] == "live_candidate_20261101_090000"
        again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert again.run_requests == []


def test_a_failed_candidate_run_gets_a_partial_briefing_and_a_failed_entry() -> None:
    settings = load_settings()
    defs = build_defs(settings)
    candidate_id = "live_candidate_20261124_120000"
    tags = scope_tags(candidate_id, ["TCS"], dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(CANDIDATE_JOB).execute_in_process(
            instance=instance, tags=tags, raise_on_error=False
        )  # nothing is stored: student_model fails
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="candidate_failure_sensor",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        ).for_run_failure()
        defs.resolve_sensor_def("candidate_failure_sensor")(context)
    layout = ArtifactLayout.of(settings)
    audit = layout.audit_dir(layout.candidate(candidate_id))
    briefing = json.loads((audit / "promotion_briefing.json").read_text())
    assert briefing["failed_phase"] == "student" and "no stored OHLCV" in briefing["error"]
    run = StateManager(layout.registry).get_candidate_run(candidate_id)
    assert run.status == "failed" and "phase 'student' failed" in (run.error or "")
