"""student_model → evaluation → release_audit → promotion_briefing, as one Dagster run."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import CANDIDATE_JOB
from sensequant_assets.integrity import ModelIntegrityError
from sensequant_assets.registry import StateManager
from sensequant_assets.release.manifest import read_manifest, verify_artifacts
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.jobs import FIRST, ingest, ingest_benchmark, train


@pytest.mark.slow
def test_candidate_job_writes_the_evidence_and_a_gate_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", "INFY,RELIANCE,TCS")
    monkeypatch.setenv("SENSEQUANT_RUN_STRESS_TESTS", "true")
    monkeypatch.setenv("BREEZE_API_SECRET", "very-secret-value")  # must never reach an artifact
    settings = load_settings()
    defs = build_defs(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        for symbol in ("INFY", "RELIANCE", "TCS"):
            ingest(settings, instance, symbol)
        ingest_benchmark(settings, instance)
        assert train(settings, instance, f"INFY|{FIRST}", f"TCS|{FIRST}").success
        result = defs.resolve_job_def(CANDIDATE_JOB).execute_in_process(instance=instance)
    assert result.success
    student = result.asset_materializations_for_node("student_model")[0].metadata
    candidate = Path(student["candidate"].value)
    audit = settings.home / "release" / f"audit_{candidate.name}"
    for name in (
        "validation_summary.json",
        "validation_summary.md",
        "stat_tests.json",
        "gate_decision.json",
        "oos_predictions.parquet",
        "reports/accuracy_report.html",
        "reports/optimization_report.html",
    ):
        assert (audit / name).is_file(), name

    summary = json.loads((audit / "validation_summary.json").read_text())
    oos = pd.read_parquet(audit / "oos_predictions.parquet")
    assert summary["out_of_sample"]["samples"] == len(oos)
    assert summary["teachers_used"] == 3 and summary["walk_forward"]["n_folds"] >= 2
    validation = result.asset_materializations_for_node("model_validation")[0].metadata
    assert validation["oos_accuracy"].value == summary["classification"]["accuracy"]

    tests = json.loads((audit / "stat_tests.json").read_text())
    assert tests["conventions"]["periods_per_year"] == 252
    assert tests["sessions"] == summary["out_of_sample"]["backtest_sessions"]

    stress = json.loads(
        (
            settings.home / "release" / f"stress_tests_{candidate.name}" / "stress_summary.json"
        ).read_text()
    )
    # 2024-25 data overlaps none of the listed windows: all skipped with a reason, none failed
    assert stress["evaluated"] == 0 and stress["skipped"] == len(stress["windows"])
    assert all(w["reason"] for w in stress["windows"])

    gate = json.loads((audit / "gate_decision.json").read_text())
    assert gate["recommendation"] in {"approve", "reject", "needs_review"}
    assert any(r["name"] == "stress_resilience" and not r["passed"] for r in gate["rules"])
    assert gate["recommendation"] != "approve"
    metadata = result.asset_materializations_for_node("promotion_gate")[0].metadata
    assert metadata["recommendation"].value == gate["recommendation"]

    # release audit: lineage, hashes of every artifact, no secret
    manifest = read_manifest(audit)
    assert manifest["release_id"] == candidate.name and manifest["status"] == "ready-for-review"
    assert manifest["training"]["symbols"] == ["INFY", "RELIANCE", "TCS"]
    assert len(manifest["training"]["teacher_windows"]["completed"]) == 3
    assert len(manifest["lineage"]["data_snapshot_sha256"]) == 64
    assert f"{manifest['candidate_dir']}/student/student_model.txt" in manifest["artifacts"]
    assert verify_artifacts(manifest, settings.home) == len(manifest["artifacts"])
    for path in [audit / "manifest.yaml", *audit.rglob("*.json"), *candidate.rglob("*.json")]:
        assert "very-secret-value" not in path.read_text(), path
    model = candidate / "student" / "student_model.txt"
    model.write_text(model.read_text() + "\n")
    with pytest.raises(ModelIntegrityError, match=r"student_model\.txt has SHA-256"):
        verify_artifacts(manifest, settings.home)

    # the briefing copies the stage outputs' numbers
    briefing = json.loads((audit / "promotion_briefing.json").read_text())
    assert briefing["recommendation"] == gate["recommendation"]
    assert (
        briefing["validation_results"]["student"]["accuracy"]
        == (summary["classification"]["accuracy"])
    )
    paired = briefing["statistical_tests"]["paired_accuracy_tests"]["majority_class"]
    assert paired["p_value"] == tests["paired_accuracy_tests"]["majority_class"]["p_value"]
    assert briefing["statistical_tests"]["dsr"] == tests["dsr"]["dsr"]
    teachers = json.loads((candidate / "teacher_runs.json").read_text())["summary"]
    assert briefing["training_summary"]["teacher_runs"]["completed"] == teachers["completed"]
    assert briefing["stress_tests"]["ran"] and briefing["stress_tests"]["evaluated"] == 0
    markdown = (audit / "promotion_briefing.md").read_text()
    assert f"{summary['classification']['accuracy']:.4f}" in markdown
    assert "## Risk assessment" in markdown and "## Next steps" in markdown

    # the registry holds the candidate, ready for a human (auto-approval is off by default)
    registry = StateManager(settings.home / "data" / "registry" / "candidates.sqlite")
    run = registry.get_candidate_run(candidate.name)
    assert run.status == "ready-for-review" and run.recommendation == gate["recommendation"]
    assert run.score == tests["dsr"]["dsr"] and list(run.symbols) == ["INFY", "RELIANCE", "TCS"]
    registration = result.asset_materializations_for_node("promotion_briefing")[0].metadata
    assert registration["registry_status"].value == "ready-for-review"
