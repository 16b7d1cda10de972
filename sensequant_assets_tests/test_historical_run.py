"""`sensequant historical-run` end to end on a real (temporary) Dagster instance."""

import json
from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from sensequant_assets.orchestration.historical import HistoricalRequest, run_historical
from sensequant_assets.registry import StateManager
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.evidence import write_evidence
from sensequant_assets_tests.fault_drills import make_dagster_home
from sensequant_assets_tests.pilot import PILOT, PILOT_DATES, assert_pilot_outcome, candidate_id_of


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = make_dagster_home(tmp_path / "dagster_home")  # the repo's dagster.yaml
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.mark.slow
def test_pilot_runs_the_phases_in_order_and_writes_the_contract(
    dagster_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(PILOT) == EXIT_OK
    assert_pilot_outcome(capfd)


@pytest.mark.slow
def test_skip_fetch_without_stored_data_fails_clearly(
    dagster_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main([*PILOT, "--skip-fetch"]) == EXIT_FAILED
    out = capfd.readouterr().out
    assert "FAILED in phase ingest: --skip-fetch needs stored data" in out
    assert "RELIANCE lacks" in out and "NIFTY50 lacks" in out
    candidate_id = candidate_id_of(out)
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
