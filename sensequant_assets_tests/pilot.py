"""The pilot historical run (`make run`'s): its command line and what it must leave behind.

Shared by ``test_historical_run.py`` (the embedded SQLite instance) and
``test_postgres_instance.py`` (the production instance on PostgreSQL), which assert the same.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import dagster as dg
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.cli import EXIT_OK, EXIT_USAGE, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import PROMOTE_JOB
from sensequant_assets.orchestration.run_progress import PROGRESS_TAG
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import (
    current_production,
    current_staging,
    deploy_to_staging,
)
from sensequant_assets.settings import load_settings

PILOT = ["historical-run", "--symbols", "RELIANCE,TCS", "--start-date", "2024-01-01",
         "--end-date", "2024-12-31"]  # fmt: skip
PILOT_DATES = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))

CONTRACT = (
    "manifest.yaml",
    "promotion_briefing.md",
    "promotion_briefing.json",
    "validation_summary.json",
    "validation_summary.md",
    "stat_tests.json",
    "gate_decision.json",
    "reports/accuracy_report.html",
    "reports/optimization_report.html",
)


def candidate_id_of(out: str) -> str:
    """The candidate id in the run's printed summary (its `run id` line)."""
    line = next(line for line in out.splitlines() if line.strip().startswith("run id"))
    return line.split()[2]


def assert_pilot_outcome(capfd: pytest.CaptureFixture[str]) -> None:
    """What the pilot must leave behind on any instance: phases, artifacts, runs, promotion."""
    out = capfd.readouterr().out
    order = [
        "[1/3] ingest",
        "[2/3] teachers",
        "[3/3] candidate",
        *(f"✓ {stage}" for stage in ("student", "validation", "statistical tests",
                                      "promotion gate", "release audit", "briefing")),
    ]  # fmt: skip
    positions = [out.index(step) for step in order]
    assert positions == sorted(positions)
    candidate_id = candidate_id_of(out)
    layout = ArtifactLayout.of(load_settings())  # the registry in Postgres on that instance
    candidate = layout.candidate(candidate_id)
    for name in ("teacher_runs.json", "student_runs.json", "student/student_model.txt"):
        assert (candidate.root / name).is_file(), name
    assert len(list(candidate.teacher_models.iterdir())) == 8  # 2 symbols x 4 windows of 2024
    audit = layout.audit_dir(candidate)
    for name in CONTRACT:
        assert (audit / name).is_file(), name
    # No signal in the default data, and two symbols are no cross-section to rank: it says so.
    briefing = (audit / "promotion_briefing.md").read_text()
    assert "**Recommendation:** reject" in briefing
    assert "FAIL rank_ic: no session had the 5 or more symbols a cross-sectional rank IC" in (
        briefing
    )
    assert "not measurable, no day has 5 symbols" in briefing
    assert "- Data source: synthetic" in briefing and "trained on synthetic data" in briefing
    teacher_runs = json.loads(candidate.teacher_runs.read_text())["summary"]
    assert teacher_runs["total"] == teacher_runs["completed"] == 8
    assert StateManager(layout.registry).get_candidate_run(candidate_id).status == (
        "ready-for-review"
    )
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(
            filters=dg.RunsFilter(tags={"sensequant/historical_run": candidate_id})
        )
    assert len(runs) == 6 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    # progress per phase in the log, and on every run the phases issued (the candidate's is one)
    assert re.search(r"ingest ([\d,]+)/\1 partitions", out) and "teachers 8/8 windows" in out
    progress = sorted(r.tags[PROGRESS_TAG] for r in runs if PROGRESS_TAG in r.tags)
    assert len(progress) == 5 and progress[0].startswith("ingest 0/")

    assert main([*PILOT, "--skip-fetch"]) == EXIT_OK
    again = capfd.readouterr().out
    assert "--skip-fetch: stored data covers all" in again and "ohlcv_daily RELIANCE" not in again

    # Trained on the synthetic source: approving it takes the demo setting (and, against the
    # gate, a reason); the promotion sensor skips it and production refuses it; staging takes it.
    registry = StateManager(layout.registry)
    record = registry.get_candidate_run(candidate_id)
    assert record.synthetic and record.data_source == "synthetic"
    approve = ["candidates", "approve", candidate_id, "--by", "asha"]
    if record.recommendation != "approve":
        approve += ["--override-gate", "--reason", "pilot demo on synthetic data"]
    assert main(approve) == EXIT_USAGE
    assert "trained on synthetic data" in capfd.readouterr().err
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SENSEQUANT_ALLOW_SYNTHETIC_PROMOTION", "true")
        assert main(approve) == EXIT_OK
    defs = build_defs(load_settings())
    sensor = defs.resolve_sensor_def("promotion_sensor")
    with dg.DagsterInstance.get() as instance:
        assert sensor(dg.build_sensor_context(instance=instance)).run_requests == []
        promote = defs.resolve_job_def(PROMOTE_JOB)
        tags = {"sensequant/candidate": candidate_id}
        refused = promote.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
        assert not refused.success
    deploy_to_staging(layout, registry, candidate_id, by="asha")
    assert current_staging(layout) == candidate_id and current_production(layout) is None
    assert registry.get_candidate_run(candidate_id).status == "approved"
    assert (layout.staging_dir / candidate_id / "student" / "student_model.txt").is_file()
