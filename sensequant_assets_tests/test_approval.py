"""Deliberate approvals: the OS user and host are recorded, the gate is overridden only with a
reason, and a candidate trained on synthetic data never reaches production."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.cli import EXIT_OK, EXIT_USAGE, main
from sensequant_assets.defs import build_defs
from sensequant_assets.registry import AutoApprovalPolicy, StateManager
from sensequant_assets.registry.approval import (
    ApprovalRefusedError,
    ApprovalTerms,
    ProductionRefusedError,
)
from sensequant_assets.release.deployment import (
    current_production,
    current_staging,
    deploy_to_production,
    deploy_to_staging,
)
from sensequant_assets.release.registration import Provenance
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.databases import DRIVER_ERRORS, execute
from sensequant_assets_tests.deployable import release_audit, student
from sensequant_assets_tests.evidence import write_evidence

RUN = "live_candidate_20261124_101500"

pytestmark = pytest.mark.usefixtures("registry_env")  # each test on SQLite and on Postgres


def _layout() -> tuple[ArtifactLayout, StateManager]:
    layout = ArtifactLayout.of(load_settings())
    return layout, StateManager(layout.registry)


def _briefed(layout: ArtifactLayout, registry: StateManager, run_id: str = RUN, **fields) -> None:
    """A deployable candidate (real student, manifest, briefing) recorded as ready for review."""
    candidate = layout.candidate(run_id)
    student(candidate.student_dir, seed=7)
    audit = write_evidence(layout.audit_dir(candidate))
    release_audit(layout, run_id)
    registry.record_candidate_run(run_id, audit_dir=audit, **fields)


def _one_line_error(capfd: pytest.CaptureFixture[str]) -> str:
    err = capfd.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_approving_against_the_gate_needs_an_override_and_a_reason(
    capfd: pytest.CaptureFixture[str],
) -> None:
    layout, registry = _layout()
    _briefed(layout, registry, recommendation="reject", score=0.2)
    approve = ["candidates", "approve", RUN, "--by", "asha"]

    assert main(approve) == EXIT_USAGE
    err = _one_line_error(capfd)
    assert "the promotion gate recommended reject" in err and "--override-gate --reason" in err
    assert main([*approve, "--override-gate"]) == EXIT_USAGE
    assert "--override-gate needs --reason" in _one_line_error(capfd)
    assert main([*approve, "--reason", "looks fine"]) == EXIT_USAGE
    assert "--reason goes with --override-gate" in _one_line_error(capfd)
    with pytest.raises(ApprovalRefusedError, match="recommended reject"):
        registry.approve_candidate_run(RUN, approved_by="asha")
    assert registry.get_candidate_run(RUN).status == "ready-for-review"

    reason = "DSR misses by 0.01 on a short history; accepted for a two-week trial"
    assert main([*approve, "--override-gate", "--reason", reason]) == EXIT_OK
    out = capfd.readouterr().out
    assert "overriding the gate's reject" in out
    run = registry.get_candidate_run(RUN)
    assert run.status == "approved" and run.gate_override_reason == reason
    assert run.approved_os_user == getpass.getuser()
    assert run.approved_host == socket.gethostname()
    note = registry.audit_log(RUN)[-1].note or ""
    assert reason in note and f"os user {getpass.getuser()} on {socket.gethostname()}" in note

    assert main(["candidates", "show", RUN]) == EXIT_OK
    shown = capfd.readouterr().out
    assert f'"approved_os_user": "{getpass.getuser()}"' in shown
    assert f'"approved_host": "{socket.gethostname()}"' in shown
    assert f"ready-for-review -> approved  by asha  (os user {getpass.getuser()}" in shown
    assert reason in shown


def test_an_override_needs_something_to_override(capfd: pytest.CaptureFixture[str]) -> None:
    layout, registry = _layout()
    _briefed(layout, registry, recommendation="approve", score=0.99)
    approve = ["candidates", "approve", RUN, "--by", "asha"]
    assert main([*approve, "--override-gate", "--reason", "why not"]) == EXIT_USAGE
    assert "nothing to override" in _one_line_error(capfd)
    assert main(approve) == EXIT_OK
    run = registry.get_candidate_run(RUN)
    assert run.gate_override_reason is None and run.approved_os_user == getpass.getuser()


def test_needs_review_is_not_a_recommendation_to_approve() -> None:
    layout, registry = _layout()
    _briefed(layout, registry, recommendation="needs_review")
    with pytest.raises(ApprovalRefusedError, match="recommended needs_review"):
        registry.approve_candidate_run(RUN, approved_by="asha")
    terms = ApprovalTerms(override_reason="PBO is thin evidence here; reviewed the folds")
    assert registry.approve_candidate_run(RUN, "asha", terms=terms).status == "approved"


def test_provenance_is_synthetic_unless_every_source_is_real() -> None:
    def lineage(source: str | None, stored: list[str]) -> dict:
        return {"lineage": {"data_source": source, "data_sources": stored}}

    assert not Provenance.of(lineage("files", ["files"]), dryrun=False).synthetic
    assert not Provenance.of(lineage("breeze", ["breeze"]), dryrun=False).synthetic
    mixed = Provenance.of(lineage("files", ["files", "synthetic"]), dryrun=False)
    assert mixed.synthetic and mixed.data_source == "files,synthetic"
    assert Provenance.of(lineage("synthetic", ["files"]), dryrun=False).synthetic
    assert Provenance.of(None, dryrun=False).synthetic  # unknown is not known to be real
    assert Provenance.of(lineage("files", ["files"]), dryrun=True).dryrun


def test_a_synthetic_candidate_is_approved_only_by_setting_and_never_reaches_production(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    layout, registry = _layout()
    _briefed(layout, registry, recommendation="approve", score=0.99, data_source="synthetic",
             synthetic=True)  # fmt: skip
    assert main(["candidates", "list"]) == EXIT_OK
    assert "(synthetic)" in capfd.readouterr().out
    approve = ["candidates", "approve", RUN, "--by", "asha"]
    assert main(approve) == EXIT_USAGE
    err = _one_line_error(capfd)
    assert "trained on synthetic data" in err and "SENSEQUANT_ALLOW_SYNTHETIC_PROMOTION" in err
    on = AutoApprovalPolicy(enabled=True, threshold=0.5)
    assert registry.apply_auto_approval(RUN, on).status == "ready-for-review"

    monkeypatch.setenv("SENSEQUANT_ALLOW_SYNTHETIC_PROMOTION", "true")
    assert main(approve) == EXIT_OK
    assert "never deployed to production" in capfd.readouterr().out
    run = registry.get_candidate_run(RUN)
    assert run.status == "approved" and run.synthetic and run.data_source == "synthetic"

    with pytest.raises(ProductionRefusedError, match="trained on synthetic data"):
        deploy_to_production(layout, registry, RUN, by="sensor")
    assert current_production(layout) is None and not layout.production_dir.exists()
    assert registry.get_candidate_run(RUN).status == "approved"
    deploy_to_staging(layout, registry, RUN, by="asha")  # a demo may stage it
    assert current_staging(layout) == RUN

    settings = load_settings()
    sensor = build_defs(settings).resolve_sensor_def("promotion_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        tick = sensor(dg.build_sensor_context(instance=instance))
    assert tick.run_requests == [] and tick.cursor  # skipped, and not offered again

    with pytest.raises(DRIVER_ERRORS, match="never deployed to production"):
        execute(layout.registry, "UPDATE candidate_runs SET status = 'deployed' WHERE run_id = ?",
                params=(RUN,))  # fmt: skip
    with pytest.raises(DRIVER_ERRORS, match="stays synthetic"):
        execute(layout.registry, "UPDATE candidate_runs SET synthetic = 0 WHERE run_id = ?",
                params=(RUN,))  # fmt: skip


def test_a_real_data_candidate_still_deploys(tmp_path: Path) -> None:
    layout, registry = _layout()
    _briefed(layout, registry, recommendation="approve", score=0.99, data_source="files")
    registry.approve_candidate_run(RUN, approved_by="asha")
    assert deploy_to_production(layout, registry, RUN, by="sensor").run_id == RUN
    assert current_production(layout) == RUN
