"""Lineage hashes, secret-free configuration, the partial briefing of a failed run, and release
files that stay as they were once a candidate is reviewed."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import CANDIDATE_JOB
from sensequant_assets.defs.tags import scope_tags
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.registry import StateManager
from sensequant_assets.release.briefing import StageOutputs, build_briefing
from sensequant_assets.release.briefing_markdown import render_markdown
from sensequant_assets.release.lineage import code_version, data_snapshot_hash, public_configuration
from sensequant_assets.release.manifest import headline_sections
from sensequant_assets.release.stage import record_failed_candidate
from sensequant_assets.settings import load_settings
from sensequant_assets.training.resources import Training
from sensequant_assets.training.search import SearchOutcome
from sensequant_assets.training.student import StudentConfig
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.evidence import write_evidence

BARS = pd.DataFrame(
    {
        "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
        "symbol": ["TCS", "TCS", "INFY"],
        "open": [1.0, 2.0, 3.0],
        "high": [1.0, 2.0, 3.0],
        "low": [1.0, 2.0, 3.0],
        "close": [1.0, 2.0, 3.0],
        "volume": [10, 20, 30],
    }
)


def test_snapshot_hash_ignores_row_order_and_sees_any_value_change() -> None:
    base = data_snapshot_hash(BARS)
    assert data_snapshot_hash(BARS.iloc[::-1]) == base
    changed = BARS.copy()
    changed.loc[1, "close"] = 2.5
    assert data_snapshot_hash(changed) != base
    with pytest.raises(ValueError, match="volume"):
        data_snapshot_hash(BARS.drop(columns="volume"))


def test_configuration_leaves_secrets_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREEZE_API_KEY", "key-123")
    monkeypatch.setenv("BREEZE_SESSION_TOKEN", "token-456")
    config = public_configuration(load_settings())
    text = json.dumps(config)
    assert "key-123" not in text and "token-456" not in text
    assert "breeze_api_key" not in config and "breeze_session_token" not in config
    assert config["label_horizon"] == 7


def test_code_version_outside_a_checkout_says_why(tmp_path: Path) -> None:
    inside = code_version()
    assert len(inside["commit"]) == 40 and isinstance(inside["dirty"], bool)
    outside = code_version(tmp_path)
    assert outside["commit"] is None and "no git checkout" in outside["reason"]


def test_a_failed_run_gets_a_partial_briefing_naming_the_phase() -> None:
    outputs = StageOutputs(
        release_id="live_candidate_20261124_101500",
        student_runs={"symbols": ["TCS"], "date_range": ["2024-01-01", "2024-12-31"]},
        failed_phase="validation",
        error="ValueError: no NIFTY 50 benchmark bars",
    )
    briefing = build_briefing(outputs)
    assert briefing["status"] == "failed" and briefing["recommendation"] is None
    assert briefing["validation_results"] is None and briefing["statistical_tests"] is None
    assert briefing["risk_assessment"]["outstanding_issues"] == [
        "phase 'validation' failed: ValueError: no NIFTY 50 benchmark bars"
    ]
    markdown = render_markdown(briefing)
    assert "**Failed phase:** validation: ValueError: no NIFTY 50 benchmark bars" in markdown
    assert "## Validation results\n\n_Not reached in this run._" in markdown
    assert "re-run `sensequant historical-run`" in markdown
    json.dumps(briefing, allow_nan=False)


@pytest.mark.parametrize(("sources", "warned"), [(["synthetic"], True), (["files"], False)])
def test_the_briefing_says_what_the_evidence_was_built_on(sources: list[str], warned: bool) -> None:
    outputs = StageOutputs(
        release_id="live_candidate_20261124_101500",
        student_runs={
            "symbols": ["TCS"],
            "date_range": ["2024-01-01", "2024-12-31"],
            "sample_counts": {"total": 380, "train": 300, "test": 60, "purged_or_embargoed": 20},
        },
        manifest={
            "candidate_dir": "data/models/live_candidate_20261124_101500",
            "audit_dir": "release/audit_live_candidate_20261124_101500",
            "artifacts": [],
            "lineage": {
                "data_source": sources[0],
                "data_sources": sources,
                "code": {"commit": None},
                "data_snapshot_sha256": "0" * 64,
            },
        },
    )
    briefing = build_briefing(outputs)
    assert briefing["training_summary"]["data_sources"] == sources
    markdown = render_markdown(briefing)
    assert f"- Data source: {sources[0]} (stored bars from: {sources[0]})" in markdown
    assert "- Student samples: 380 in all: 300 training, 60 held out, 20 purged" in markdown
    assert "{" not in markdown
    warning = "trained on synthetic data"
    assert any(warning in w for w in briefing["risk_assessment"]["warnings"]) is warned


def test_the_release_assets_refuse_to_rewrite_a_reviewed_candidate() -> None:
    """Re-materializing the audit or the briefing of an approved candidate fails naming it and
    its status, and every file the approval bound stays byte for byte as it was."""
    settings = load_settings()
    layout = ArtifactLayout(settings.home)
    candidate_id = "live_candidate_20261124_101500"
    candidate = layout.candidate(candidate_id)
    candidate.root.mkdir(parents=True)
    candidate.student_runs.write_text(json.dumps({"symbols": ["TCS"]}))
    audit = write_evidence(layout.audit_dir(candidate))
    registry = StateManager(layout.registry)
    registry.record_candidate_run(candidate_id, audit_dir=audit, candidate_dir=candidate.root)
    registry.approve_candidate_run(candidate_id, approved_by="asha")
    before = {path.name: path.read_bytes() for path in audit.iterdir()}

    defs = build_defs(settings)
    tags = scope_tags(candidate_id, ["TCS"], dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    with dg.DagsterInstance.ephemeral() as instance:
        for asset in ("release_audit", "promotion_briefing"):
            result = defs.resolve_job_def(CANDIDATE_JOB).execute_in_process(
                instance=instance,
                tags=tags,
                asset_selection=[dg.AssetKey(asset)],
                raise_on_error=False,
            )
            assert not result.success
            message = result.failure_data_for_node(asset).error.message
            assert f"{candidate_id} is approved: its manifest and briefing are the evidence" in (
                message
            ), message
    # The failure sensor's partial briefing is not written over it either.
    evaluation = Evaluation(
        Training(
            settings,
            load_universe(settings.scrip_master),
            TradingCalendar.from_file(settings.holiday_file),
        )
    )
    assert not record_failed_candidate(evaluation, candidate_id, "release", "refused")
    assert {path.name: path.read_bytes() for path in audit.iterdir()} == before
    assert registry.get_candidate_run(candidate_id).status == "approved"


def test_skipped_teachers_are_counted_by_reason_in_words() -> None:
    outputs = StageOutputs(
        release_id="live_candidate_20261124_101500",
        teacher_runs={
            "summary": {
                "total": 12,
                "skipped": 3,
                "failed": 0,
                "skip_reasons": {"too_few_rows": 2, "single_class": 1},
            }
        },
    )
    warnings = build_briefing(outputs)["risk_assessment"]["warnings"]
    assert "3 of 12 teacher window(s) skipped (too_few_rows: 2, single_class: 1)" in warnings
    assert not [w for w in warnings if "{" in w]


def test_the_briefing_and_the_manifest_show_the_search_space_trials_and_choice() -> None:
    record = {
        "space": {"distill_alpha": [0.25, 0.5], "num_iterations": [150, 300]},
        "seed": 1,
        "criterion": "mean daily sector-neutral rank IC of P(up) - P(down) on the inner validation",
        "inner_validation": {
            "train": ["2022-03-15", "2022-11-03"],
            "validation": ["2022-11-16", "2023-03-15"],
            "last_label_end": "2023-03-24",
            "out_of_sample_from": "2023-03-27",
        },
        "trials": [
            {
                "trial": i,
                "params": {"distill_alpha": a, "num_iterations": n},
                "score": s,
                "days": 84,
                "chosen": i == 2,
            }
            for i, (a, n, s) in enumerate([(0.5, 300, 0.01), (0.25, 300, 0.0), (0.5, 150, 0.02)])
        ],
        "chosen": 2,
    }
    student_runs = {
        "symbols": ["TCS"],
        "date_range": ["2022-01-01", "2024-12-31"],
        "search": SearchOutcome(StudentConfig(), record).summary,
    }
    outputs = StageOutputs(release_id="live_candidate_20250401_100002", student_runs=student_runs)
    briefing = build_briefing(outputs)
    assert briefing["training_summary"]["hyperparameter_search"]["trials"] == 3
    markdown = render_markdown(briefing)
    assert (
        "- Hyperparameter search: 3 trial(s) over distill_alpha (0.25, 0.5); num_iterations "
        "(150, 300); each counts in the DSR's N\n"
        "  - chosen: trial 2 (distill_alpha 0.5, num_iterations 150); mean daily "
        "sector-neutral rank IC of P(up) - P(down) on the inner validation: 0.0200 over 84 "
        "day(s), 0.0100 for trial 0 (the configured student)\n"
        "  - inner validation 2022-11-16 to 2023-03-15, trained on 2022-03-15 to 2022-11-03; "
        "every label ends by 2023-03-24, before the out-of-sample period from 2023-03-27"
    ) in markdown
    assert "{" not in markdown
    manifest = headline_sections(outputs, "universe-snapshot")["training"]
    assert manifest["hyperparameter_search"]["chosen"]["params"] == record["trials"][2]["params"]
    assert manifest["hyperparameter_search"]["space"] == record["space"]

    plain = StageOutputs(release_id="live_candidate_20250405_100000", student_runs={"symbols": []})
    assert "- Hyperparameter search: none (the configured student)" in render_markdown(
        build_briefing(plain)
    )
    assert headline_sections(plain, "s")["training"]["hyperparameter_search"] is None
