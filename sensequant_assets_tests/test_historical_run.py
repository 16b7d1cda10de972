"""`sensequant historical-run` end to end on a real (temporary) Dagster instance."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import PROMOTE_JOB
from sensequant_assets.historical import HistoricalRequest, run_historical
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import (
    current_production,
    current_staging,
    deploy_to_staging,
)
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.evidence import write_evidence

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


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _candidate_id(out: str) -> str:
    line = next(line for line in out.splitlines() if line.strip().startswith("run id"))
    return line.split()[2]


@pytest.mark.slow
def test_pilot_runs_the_phases_in_order_and_writes_the_contract(
    dagster_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(PILOT) == EXIT_OK
    assert_pilot_outcome(capfd)


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
    candidate_id = _candidate_id(out)
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


@pytest.mark.slow
def test_skip_fetch_without_stored_data_fails_clearly(
    dagster_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main([*PILOT, "--skip-fetch"]) == EXIT_FAILED
    out = capfd.readouterr().out
    assert "FAILED in phase ingest: --skip-fetch needs stored data" in out
    assert "RELIANCE lacks" in out and "NIFTY50 lacks" in out
    candidate_id = _candidate_id(out)
    layout = ArtifactLayout(load_settings().home)
    briefing = json.loads(
        (layout.audit_dir(layout.candidate(candidate_id)) / "promotion_briefing.json").read_text()
    )
    assert briefing["status"] == "failed" and briefing["failed_phase"] == "ingest"
    run = StateManager(layout.registry).get_candidate_run(candidate_id)
    assert run.status == "failed" and "--skip-fetch" in (run.error or "")


@pytest.mark.slow
def test_dryrun_leaves_production_state_untouched(
    dagster_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    layout = ArtifactLayout(settings.home)
    production = StateManager(layout.registry)
    audit = write_evidence(layout.audit_dir(layout.candidate("live_candidate_20240101_000000")))
    production.record_candidate_run(
        "live_candidate_20240101_000000", recommendation="approve", audit_dir=audit
    )
    production.approve_candidate_run("live_candidate_20240101_000000", approved_by="asha")
    before = [r.to_dict() for r in production.get_candidate_runs()]

    assert main([*PILOT, "--symbols", "RELIANCE,TCS,INFY", "--dryrun"]) == EXIT_OK
    out = capfd.readouterr().out
    assert "(dry run)" in out and "nothing was registered for production" in out
    assert [r.to_dict() for r in production.get_candidate_runs()] == before
    assert not layout.models.exists() and not settings.duckdb_path.exists()
    dry_homes = list((settings.home / "data" / "dryrun").iterdir())
    assert len(dry_homes) == 1
    dry = ArtifactLayout(dry_homes[0])
    (run,) = StateManager(dry.registry).get_candidate_runs()
    assert list(run.symbols) == ["RELIANCE", "TCS"]  # the tiny sample: two symbols at most


def test_bad_arguments_exit_2(dagster_home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main([*PILOT, "--benchmark", "SENSEX"]) == EXIT_USAGE
    assert "only NIFTY50" in capfd.readouterr().err
    assert main([*PILOT[:-1], "2023-12-31"]) == EXIT_USAGE
    assert main([*PILOT, "--symbols", "RELIANCEE"]) == EXIT_USAGE
    assert "RELIANCE" in capfd.readouterr().err  # the close match is suggested


@pytest.mark.slow
def test_a_failed_phase_leaves_a_partial_briefing_and_a_failed_registry_entry(
    dagster_home: Path,
) -> None:
    settings = load_settings()
    request = HistoricalRequest(("RELIANCE", "TCS"), *PILOT_DATES)
    teachers = ArtifactLayout(settings.home).models / "teachers"

    def corrupt_teachers_before_the_student(line: str) -> None:
        if line.startswith("[3/3] candidate"):
            for model in teachers.glob("*/model.txt"):
                model.write_text(model.read_text() + "tampered\n")

    with dg.DagsterInstance.get() as instance:
        outcome = run_historical(request, settings, instance, corrupt_teachers_before_the_student)
    assert not outcome.succeeded and outcome.failed_phase == "student"
    layout = ArtifactLayout(settings.home)
    audit = layout.audit_dir(layout.candidate(outcome.candidate_id))
    markdown = (audit / "promotion_briefing.md").read_text()
    assert "**Failed phase:** student" in markdown and "SHA-256" in markdown
    assert "## Validation results\n\n_Not reached in this run._" in markdown
    run = StateManager(layout.registry).get_candidate_run(outcome.candidate_id)
    assert run.status == "failed" and "phase 'student' failed" in (run.error or "")
