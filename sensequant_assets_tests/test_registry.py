"""The candidate registry against real databases, an SQLite file and Postgres (the tests taking
``registry`` or ``new_database`` run on both): lifecycle, audit log, deployments, races."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
import traceback
from contextlib import closing
from pathlib import Path

import pytest

from sensequant_assets.artifacts import EVIDENCE_FILES, ArtifactLayout
from sensequant_assets.registry import (
    APPROVED,
    DEPLOYED,
    FAILED,
    READY_FOR_REVIEW,
    REJECTED,
    RETIRED,
    RUNNING,
    SCHEMA_VERSION,
    STATUSES,
    AutoApprovalPolicy,
    CandidateRun,
    DeploymentConflictError,
    IllegalTransitionError,
    NothingToRollBackError,
    RegistryBusyError,
    RegistryError,
    StateManager,
    TamperedRegistryError,
    UnknownRunError,
)
from sensequant_assets.registry.access import LOCK_KEY
from sensequant_assets.registry.schema import MIGRATIONS
from sensequant_assets_tests.databases import DRIVER_ERRORS, execute, shell, write_locked
from sensequant_assets_tests.evidence import write_evidence

RUN = "live_candidate_20261124_101500"


AUDIT_ROOT = "SENSEQUANT_TEST_AUDIT_ROOT"


@pytest.fixture(autouse=True)
def audit_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the audit directories go (in the environment: spawned writers need it too)."""
    monkeypatch.setenv(AUDIT_ROOT, str(tmp_path / "audits"))


@pytest.fixture
def registry(new_database) -> StateManager:
    return StateManager(new_database("registry"))


def _audit(manager: StateManager, run_id: str) -> Path:
    """An audit directory with the files approving ``run_id`` binds."""
    return write_evidence(Path(os.environ[AUDIT_ROOT]) / f"audit_{run_id}")


def _record(manager: StateManager, run_id: str, **kwargs) -> CandidateRun:
    kwargs.setdefault("symbols", ["RELIANCE", "TCS"])
    kwargs.setdefault("audit_dir", _audit(manager, run_id))
    return manager.record_candidate_run(run_id, **kwargs)


def _approved(manager: StateManager, run_id: str) -> CandidateRun:
    _record(manager, run_id)
    return manager.approve_candidate_run(run_id, approved_by="alice")


# ---------------------------------------------------------------------------------------------
# recording and review


def test_fields_round_trip_and_schema_is_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "registry.sqlite"
    manager = StateManager(path)
    run = manager.record_candidate_run(
        RUN,
        candidate_dir=tmp_path / "data" / "models" / RUN,
        audit_dir=str(tmp_path / "release" / f"audit_{RUN}"),
        symbols=("RELIANCE", "TCS"),
        start_date=dt.date(2024, 1, 1),
        end_date="2024-12-31",
        recommendation="approve",
        score=0.97,
        metrics={"sharpe": 1.4, "trades": 120, "nested": {"hit_rate": 0.55}, "undefined": None},
        dagster_run_id="b5ff3992",
        recorded_by="sensor",
    )
    assert path.is_file()
    assert run.status == READY_FOR_REVIEW
    assert run.candidate_dir == tmp_path / "data" / "models" / RUN
    assert run.audit_dir == tmp_path / "release" / f"audit_{RUN}"
    assert run.symbols == ("RELIANCE", "TCS")
    assert (run.start_date, run.end_date) == (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert (run.recommendation, run.score, run.dagster_run_id) == ("approve", 0.97, "b5ff3992")
    assert run.metrics == {
        "sharpe": 1.4,
        "trades": 120,
        "nested": {"hit_rate": 0.55},
        "undefined": None,
    }
    assert run.recorded_by == "sensor" and run.dryrun is False
    assert run.created_at.tzinfo is not None and run.created_at == run.updated_at
    assert manager.get_candidate_run(RUN) == run

    data = json.loads(json.dumps(run.to_dict()))
    assert data["start_date"] == "2024-01-01" and data["end_date"] == "2024-12-31"
    assert data["symbols"] == ["RELIANCE", "TCS"]
    assert data["metrics"]["nested"] == {"hit_rate": 0.55}
    assert data["candidate_dir"] == str(tmp_path / "data" / "models" / RUN)

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    # Opening the same file again is idempotent and sees everything.
    assert StateManager(path).get_candidate_run(RUN) == run


def test_latest_and_listing_by_status(registry: StateManager) -> None:
    for name in ("a", "b", "c", "d"):
        _record(registry, name)
    _record(registry, "dry", dryrun=True)
    registry.approve_candidate_run("b", approved_by="alice")
    registry.reject_candidate_run("c", rejected_by="bob", reason="drawdown too deep")

    assert registry.get_latest_candidate_run().run_id == "d"  # dry runs skipped by default
    assert registry.get_latest_candidate_run(include_dryrun=True).run_id == "dry"
    assert registry.get_latest_candidate_run(APPROVED).run_id == "b"
    assert registry.get_latest_candidate_run(DEPLOYED) is None
    assert [run.run_id for run in registry.get_candidate_runs()] == ["dry", "d", "c", "b", "a"]
    assert [run.run_id for run in registry.get_candidate_runs(include_dryrun=False)] == [
        "d",
        "c",
        "b",
        "a",
    ]
    assert [run.run_id for run in registry.get_candidate_runs(READY_FOR_REVIEW)] == [
        "dry",
        "d",
        "a",
    ]
    assert [run.run_id for run in registry.get_candidate_runs(REJECTED)] == ["c"]
    with pytest.raises(ValueError, match=r"unknown status 'approve'.*ready-for-review"):
        registry.get_candidate_runs("approve")
    with pytest.raises(ValueError, match="valid statuses"):
        registry.get_latest_candidate_run("done")


def test_approve_and_reject_store_who_when_why(registry: StateManager) -> None:
    _record(registry, "a")
    _record(registry, "b")
    approved = registry.approve_candidate_run("a", approved_by="  alice ")
    assert approved.status == APPROVED and approved.approved_by == "alice"
    assert approved.approved_at is not None and approved.updated_at == approved.approved_at
    rejected = registry.reject_candidate_run("b", rejected_by="bob", reason="overfit")
    assert (rejected.status, rejected.rejected_by, rejected.rejection_reason) == (
        REJECTED,
        "bob",
        "overfit",
    )
    # An approved but not yet deployed run can still be rejected.
    assert registry.reject_candidate_run("a", "carol", "late finding").status == REJECTED

    _record(registry, "c")
    for bad in ("", "   ", None):
        with pytest.raises(ValueError, match="approved_by must be a non-empty"):
            registry.approve_candidate_run("c", approved_by=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reason must be a non-empty"):
        registry.reject_candidate_run("c", rejected_by="bob", reason=" ")
    with pytest.raises(ValueError, match="rejected_by must be a non-empty"):
        registry.reject_candidate_run("c", rejected_by="", reason="bad")
    assert registry.get_candidate_run("c").status == READY_FOR_REVIEW


def test_running_run_is_completed_by_recording_it_again(registry: StateManager) -> None:
    started = registry.record_candidate_run(RUN, RUNNING, symbols=["TCS"], dagster_run_id="d1")
    assert started.status == RUNNING and started.score is None
    done = registry.record_candidate_run(
        RUN, READY_FOR_REVIEW, recommendation="needs_review", score=0.5, metrics={"sharpe": 0.3}
    )
    assert done.status == READY_FOR_REVIEW
    assert (done.recommendation, done.score, done.metrics) == ("needs_review", 0.5, {"sharpe": 0.3})
    assert done.symbols == ("TCS",) and done.dagster_run_id == "d1"  # kept
    assert done.created_at == started.created_at and done.updated_at > started.updated_at

    with pytest.raises(IllegalTransitionError, match="it is ready-for-review"):
        registry.record_candidate_run(RUN, READY_FOR_REVIEW)
    with pytest.raises(IllegalTransitionError, match="use the dedicated method to approve"):
        registry.record_candidate_run(RUN, APPROVED)
    with pytest.raises(IllegalTransitionError, match="a new run starts as running"):
        registry.record_candidate_run("new", DEPLOYED)
    with pytest.raises(ValueError, match="unknown status"):
        registry.record_candidate_run("new", "done")
    assert [c.to_status for c in registry.audit_log(RUN)] == [RUNNING, READY_FOR_REVIEW]


def test_mark_failed(registry: StateManager) -> None:
    registry.record_candidate_run("training", RUNNING)
    failed = registry.mark_failed("training", error="OOM in teacher fit", by="sensor")
    assert (failed.status, failed.error) == (FAILED, "OOM in teacher fit")
    created = registry.mark_failed("never_seen", error="crashed before recording")
    assert created.status == FAILED and created.recorded_by == "system"
    assert registry.audit_log("never_seen")[0].from_status is None
    _approved(registry, "good")
    with pytest.raises(IllegalTransitionError, match="cannot mark failed good: it is approved"):
        registry.mark_failed("good", error="late")


# ---------------------------------------------------------------------------------------------
# illegal transitions


def test_illegal_transitions_have_clear_messages(registry: StateManager) -> None:
    _record(registry, RUN)
    registry.reject_candidate_run(RUN, rejected_by="bob", reason="too few trades")
    with pytest.raises(IllegalTransitionError) as info:
        registry.approve_candidate_run(RUN, approved_by="alice")
    assert str(info.value) == (
        f"cannot approve {RUN}: it is rejected (allowed from ready-for-review)"
    )
    assert (info.value.run_id, info.value.current, info.value.requested) == (
        RUN,
        REJECTED,
        APPROVED,
    )
    assert isinstance(info.value, RegistryError) and isinstance(info.value, ValueError)
    # The error survives a trip between processes.
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)

    with pytest.raises(UnknownRunError, match="live_candidate_19990101_000000"):
        registry.approve_candidate_run("live_candidate_19990101_000000", approved_by="alice")

    _approved(registry, "twice")
    with pytest.raises(IllegalTransitionError, match="cannot approve twice: it is approved"):
        registry.approve_candidate_run("twice", approved_by="alice")

    registry.record_deployment("twice", "production", by="ops")
    with pytest.raises(
        IllegalTransitionError,
        match="cannot reject twice: it is deployed \\(allowed from ready-for-review or approved\\)",
    ):
        registry.reject_candidate_run("twice", rejected_by="bob", reason="regret")

    _record(registry, "unreviewed")
    for stage in ("production", "staging"):
        with pytest.raises(IllegalTransitionError, match="it is ready-for-review"):
            registry.record_deployment("unreviewed", stage, by="ops")

    _record(registry, "dry", dryrun=True)
    registry.approve_candidate_run("dry", approved_by="alice")
    for stage in ("production", "staging"):
        with pytest.raises(IllegalTransitionError, match="dry run"):
            registry.record_deployment("dry", stage, by="ops")
    with pytest.raises(ValueError, match="unknown stage"):
        registry.record_deployment("twice", "prod", by="ops")
    with pytest.raises(UnknownRunError, match="ghost"):
        registry.record_deployment("ghost", "production", by="ops")

    # Nothing above changed anything it should not have.
    assert registry.get_candidate_run(RUN).status == REJECTED
    assert registry.get_candidate_run("twice").status == DEPLOYED
    assert registry.get_candidate_run("unreviewed").status == READY_FOR_REVIEW
    assert registry.get_candidate_run("dry").status == APPROVED
    assert [d.run_id for d in registry.deployment_history()] == ["twice"]


# ---------------------------------------------------------------------------------------------
# audit log


def test_audit_log_records_every_change_in_order(registry: StateManager) -> None:
    registry.record_candidate_run("a", RUNNING, recorded_by="sensor")
    registry.record_candidate_run(
        "a", READY_FOR_REVIEW, audit_dir=_audit(registry, "a"), recorded_by="sensor"
    )
    registry.approve_candidate_run("a", approved_by="alice")
    registry.record_deployment("a", "production", by="ops")
    _approved(registry, "b")
    registry.record_deployment("b", "production", by="ops")

    log = registry.audit_log("a")
    assert [(c.from_status, c.to_status, c.by) for c in log] == [
        (None, RUNNING, "sensor"),
        (RUNNING, READY_FOR_REVIEW, "sensor"),
        (READY_FOR_REVIEW, APPROVED, "alice"),
        (APPROVED, DEPLOYED, "ops"),
        (DEPLOYED, RETIRED, "ops"),
    ]
    assert [c.at for c in log] == sorted(c.at for c in log)
    assert all(c.at.utcoffset() == dt.timedelta(0) for c in log)
    assert "replaced in production by b" in log[-1].note
    everything = registry.audit_log()
    assert len(everything) == 5 + 3
    assert [c.change_id for c in everything] == sorted(c.change_id for c in everything)
    assert json.loads(json.dumps(log[0].to_dict()))["from_status"] is None
    with pytest.raises(UnknownRunError):
        registry.audit_log("ghost")


def test_audit_and_deployment_tables_are_append_only(registry: StateManager) -> None:
    _approved(registry, "a")
    registry.record_deployment("a", "production", by="ops")
    location = registry._url
    for sql in (
        "UPDATE status_changes SET changed_by = 'mallory'",
        "DELETE FROM status_changes",
        "UPDATE deployments SET run_id = 'x'",
        "DELETE FROM deployments",
        "DELETE FROM candidate_runs",
    ):
        with pytest.raises(DRIVER_ERRORS, match=r"append-only|cannot be deleted"):
            execute(location, sql)
    assert [c.by for c in registry.audit_log("a")] == ["system", "alice", "ops"]
    assert len(registry.deployment_history()) == 1


# ---------------------------------------------------------------------------------------------
# deployments


def test_promotion_retires_the_previous_run_and_rollback_restores_it(
    registry: StateManager,
) -> None:
    _approved(registry, "A")
    _approved(registry, "B")
    first = registry.record_deployment("A", "production", by="ops")
    assert (first.run_id, first.replaced_run_id, first.action) == ("A", None, "deploy")
    with pytest.raises(NothingToRollBackError, match="no run was deployed before it"):
        registry.rollback(by="ops")
    second = registry.record_deployment("B", "production", by="ops")
    assert second.replaced_run_id == "A"
    assert registry.get_candidate_run("A").status == RETIRED
    assert registry.get_candidate_run("B").status == DEPLOYED
    assert registry.current_deployment("production") == second
    assert [d.run_id for d in registry.deployment_history("production")] == ["B", "A"]

    back = registry.rollback("production", by="oncall")
    assert (back.run_id, back.action, back.replaced_run_id, back.deployed_by) == (
        "A",
        "rollback",
        "B",
        "oncall",
    )
    assert registry.get_candidate_run("A").status == DEPLOYED
    assert registry.get_candidate_run("B").status == RETIRED
    assert registry.current_deployment("production").run_id == "A"
    assert [d.run_id for d in registry.deployment_history()] == ["A", "B", "A"]
    # A was the first production run: there is nothing older to go back to.
    with pytest.raises(NothingToRollBackError, match="cannot roll back production"):
        registry.rollback(by="oncall")
    # A retired run can be promoted again by hand (the manual rollback path).
    registry.record_deployment("B", "production", by="ops")
    assert registry.get_candidate_run("A").status == RETIRED
    assert len(registry.get_candidate_runs(DEPLOYED)) == 1


def test_rollbacks_stack(registry: StateManager) -> None:
    for name in ("A", "B", "C"):
        _approved(registry, name)
        registry.record_deployment(name, "production", by="ops")
    assert registry.rollback(by="ops").run_id == "B"
    assert registry.rollback(by="ops").run_id == "A"
    assert [registry.get_candidate_run(n).status for n in "ABC"] == [DEPLOYED, RETIRED, RETIRED]


def test_rollback_with_nothing_deployed(registry: StateManager) -> None:
    with pytest.raises(NothingToRollBackError, match="nothing has ever been deployed"):
        registry.rollback(by="ops")
    assert registry.current_deployment("production") is None
    assert registry.deployment_history() == []
    with pytest.raises(ValueError, match="by must be a non-empty"):
        registry.rollback(by=" ")


def test_staging_keeps_status(registry: StateManager) -> None:
    _approved(registry, "A")
    staged = registry.record_deployment("A", "staging", by="ops")
    assert staged.stage == "staging"
    assert registry.get_candidate_run("A").status == APPROVED
    assert registry.current_deployment("staging") == staged
    assert registry.current_deployment("production") is None
    with pytest.raises(RegistryError, match="already live in staging"):
        registry.record_deployment("A", "staging", by="ops")
    registry.record_deployment("A", "production", by="ops")
    assert [d.stage for d in registry.deployment_history()] == ["production", "staging"]
    assert json.loads(json.dumps(staged.to_dict()))["stage"] == "staging"


# ---------------------------------------------------------------------------------------------
# auto-approval


def test_auto_approval(registry: StateManager) -> None:
    assert AutoApprovalPolicy() == AutoApprovalPolicy(enabled=False, threshold=0.95)
    _record(registry, "strong", recommendation="approve", score=0.97)
    _record(registry, "edge", recommendation="approve", score=0.95)
    _record(registry, "weak", recommendation="approve", score=0.90)
    _record(registry, "unsure", recommendation="needs_review", score=0.99)
    _record(registry, "unscored", recommendation="approve")
    _record(registry, "dry", recommendation="approve", score=0.99, dryrun=True)

    # Off by default: nothing changes.
    assert registry.apply_auto_approval("strong", AutoApprovalPolicy()).status == READY_FOR_REVIEW

    policy = AutoApprovalPolicy(enabled=True, threshold=0.95)
    strong = registry.apply_auto_approval("strong", policy)
    assert strong.status == APPROVED
    assert strong.approved_by == "auto-approval (threshold 0.95)"
    assert registry.audit_log("strong")[-1].by == "auto-approval (threshold 0.95)"
    assert registry.apply_auto_approval("edge", policy).status == APPROVED
    for name in ("weak", "unsure", "unscored", "dry"):
        assert registry.apply_auto_approval(name, policy).status == READY_FOR_REVIEW, name
        assert len(registry.audit_log(name)) == 1
    # Already approved: returned unchanged, not approved twice.
    assert registry.apply_auto_approval("strong", policy) == registry.get_candidate_run("strong")
    registry.reject_candidate_run("weak", "bob", "weak")
    assert registry.apply_auto_approval("weak", policy).status == REJECTED
    with pytest.raises(UnknownRunError):
        registry.apply_auto_approval("ghost", policy)
    with pytest.raises(ValueError, match="finite"):
        AutoApprovalPolicy(enabled=True, threshold=float("nan"))


# ---------------------------------------------------------------------------------------------
# persistence and concurrency


def test_second_manager_sees_the_first_ones_writes(new_database) -> None:
    location = new_database("registry")
    first, second = StateManager(location), StateManager(location)
    _approved(first, "A")
    assert second.get_candidate_run("A").status == APPROVED
    second.record_deployment("A", "production", by="ops")
    assert first.current_deployment("production").run_id == "A"
    assert len(first.audit_log()) == len(second.audit_log()) == 3
    with pytest.raises(RegistryError, match="file path"):
        StateManager(":memory:")


def test_a_busy_registry_waits_then_fails_cleanly(new_database) -> None:
    location = new_database("registry")
    impatient = StateManager(location, timeout=0.3)
    held, release = threading.Event(), threading.Event()

    def blocker() -> None:  # another writer holds the lock
        with write_locked(location, LOCK_KEY):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=blocker)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(RegistryBusyError, match="stayed busy") as info:
            impatient.record_candidate_run("a")
        assert "locked" not in str(info.value) and "\n" not in str(info.value)
        assert impatient.get_candidate_runs() == []  # readers are not blocked
        # A patient writer simply waits for the lock to be released.
        threading.Timer(0.2, release.set).start()
        assert StateManager(location).record_candidate_run("a").status == READY_FOR_REVIEW
    finally:
        release.set()
        thread.join()
    assert [run.run_id for run in impatient.get_candidate_runs()] == ["a"]


def _writer(path: str, worker: int, count: int, start, results) -> None:
    """Record ``count`` runs and approve every other one (runs in a spawned process)."""
    try:
        start.wait(60)
        manager = StateManager(path)  # concurrent schema creation on a fresh file, too
        for index in range(count):
            run_id = f"w{worker}_{index:03d}"
            manager.record_candidate_run(
                run_id,
                symbols=["RELIANCE"],
                score=index / count,
                audit_dir=_audit(manager, run_id),
                recorded_by=f"worker-{worker}",
            )
            if index % 2 == 0:
                manager.approve_candidate_run(run_id, approved_by=f"worker-{worker}")
        results.put((worker, None))
    except BaseException:
        results.put((worker, traceback.format_exc()))


def _racer(path: str, worker: int, run_ids: list[str], start, results) -> None:
    """Try to approve every run; exactly one process may win each (runs in a spawned process)."""
    try:
        manager = StateManager(path)
        start.wait(60)
        won = []
        for run_id in run_ids:
            try:
                manager.approve_candidate_run(run_id, approved_by=f"worker-{worker}")
                won.append(run_id)
            except IllegalTransitionError:
                pass
        results.put((worker, won))
    except BaseException:
        results.put((worker, traceback.format_exc()))


def _run_processes(target, args_for_worker, workers: int) -> dict[int, object]:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    processes = [
        ctx.Process(target=target, args=(*args_for_worker(w), start, results))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    start.set()
    outcome = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return outcome


def test_concurrent_writer_processes(new_database, registry_backend: str) -> None:
    path = str(new_database("shared"))
    outcome = _run_processes(_writer, lambda worker: (path, worker, 50), workers=2)
    assert outcome == {0: None, 1: None}, outcome

    registry = StateManager(path)
    runs = registry.get_candidate_runs()
    assert len(runs) == 100 and len({run.run_id for run in runs}) == 100
    for run in runs:
        index = int(run.run_id.split("_")[1])
        assert run.status == (APPROVED if index % 2 == 0 else READY_FOR_REVIEW), run.run_id
        assert run.recorded_by == f"worker-{run.run_id[1]}"
    assert len(registry.get_candidate_runs(APPROVED)) == 50
    log = registry.audit_log()
    assert len(log) == 100 + 50
    assert sum(change.to_status == APPROVED for change in log) == 50
    assert registry.verify().intact
    if registry_backend == "sqlite":
        assert execute(path, "PRAGMA integrity_check") == [("ok",)]


def test_racing_approvals_have_exactly_one_winner(new_database) -> None:
    path = str(new_database("registry"))
    registry = StateManager(path)
    run_ids = [f"run_{index:02d}" for index in range(20)]
    for run_id in run_ids:
        _record(registry, run_id)
    outcome = _run_processes(_racer, lambda worker: (path, worker, run_ids), workers=3)
    assert all(isinstance(won, list) for won in outcome.values()), outcome
    winners = sorted(run_id for won in outcome.values() for run_id in won)
    assert winners == run_ids  # every run approved once, by exactly one process
    for run_id in run_ids:
        approvals = [c for c in registry.audit_log(run_id) if c.to_status == APPROVED]
        assert len(approvals) == 1
        assert registry.get_candidate_run(run_id).approved_by == approvals[0].by
    assert set(STATUSES) >= {run.status for run in registry.get_candidate_runs()}


# ---------------------------------------------------------------------------------------------
# what an approval binds, and the schema migration that added it


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_approval_binds_the_sha256_of_the_manifest_and_briefing(registry: StateManager) -> None:
    audit = _record(registry, RUN).audit_dir
    approved = registry.approve_candidate_run(RUN, approved_by="alice")
    digests = {name: _sha256(audit / name) for name in EVIDENCE_FILES}
    assert approved.approved_evidence == digests and len(digests) == 3
    assert registry.audit_log(RUN)[-1].evidence == digests
    assert registry.audit_log(RUN)[0].evidence == {}  # only an approval binds anything
    assert json.loads(json.dumps(approved.to_dict()))["approved_evidence"] == digests

    # Editing the briefing afterwards changes nothing the registry holds, and nobody can
    # rewrite the stored digests, even with a sqlite3 shell.
    (audit / "promotion_briefing.md").write_text("Recommendation: APPROVE\n")
    assert registry.get_candidate_run(RUN).approved_evidence == digests
    with pytest.raises(DRIVER_ERRORS, match="evidence an approval bound"):
        execute(registry._url, "UPDATE candidate_runs SET approved_evidence = '{}'")
    with pytest.raises(DRIVER_ERRORS, match="append-only"):
        execute(registry._url, "UPDATE status_changes SET evidence = NULL")


def test_approval_refuses_a_candidate_without_its_manifest_or_briefing(
    registry: StateManager,
) -> None:
    audit = _record(registry, RUN, recommendation="approve", score=0.99).audit_dir
    (audit / "promotion_briefing.json").unlink()
    with pytest.raises(RegistryError) as info:
        registry.approve_candidate_run(RUN, approved_by="alice")
    assert str(info.value) == (
        f"cannot approve {RUN}: promotion_briefing.json missing from {audit}: materialize "
        "release_audit and promotion_briefing first"
    )
    with pytest.raises(RegistryError, match=r"promotion_briefing\.json missing"):
        registry.apply_auto_approval(RUN, AutoApprovalPolicy(enabled=True, threshold=0.5))
    registry.record_candidate_run("unaudited", RUNNING)
    registry.record_candidate_run("unaudited", READY_FOR_REVIEW)
    with pytest.raises(RegistryError, match="cannot approve unaudited: the registry records no"):
        registry.approve_candidate_run("unaudited", approved_by="alice")
    for run_id in (RUN, "unaudited"):
        assert registry.get_candidate_run(run_id).status == READY_FOR_REVIEW
        assert all(c.to_status != APPROVED for c in registry.audit_log(run_id))


def test_a_schema_1_registry_opens_and_is_migrated(tmp_path: Path) -> None:
    """A file written before approvals bound evidence keeps its history and gains the columns;
    its old approvals bind nothing (so deployment refuses them), new ones bind their files."""
    path = tmp_path / "registry.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in MIGRATIONS[0]:  # exactly what schema version 1 created
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        for run_id, status in (("old", APPROVED), (RUN, READY_FOR_REVIEW)):
            conn.execute(
                "INSERT INTO candidate_runs (run_id, status, created_at, updated_at, audit_dir,"
                " recorded_by) VALUES (?, ?, '2026-11-01T09:00:00+00:00',"
                " '2026-11-01T09:00:00+00:00', ?, 'system')",
                (run_id, status, str(write_evidence(tmp_path / f"audit_{run_id}"))),
            )
            conn.execute(
                "INSERT INTO status_changes (run_id, from_status, to_status, changed_by,"
                " changed_at) VALUES (?, NULL, ?, 'system', '2026-11-01T09:00:00+00:00')",
                (run_id, status),
            )

    registry = StateManager(path)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    old = registry.get_candidate_run("old")
    assert old.status == APPROVED and old.approved_evidence == {}
    assert [c.evidence for c in registry.audit_log("old")] == [{}]
    approved = registry.approve_candidate_run(RUN, approved_by="alice")
    assert approved.approved_evidence["manifest.yaml"] == _sha256(
        tmp_path / f"audit_{RUN}" / "manifest.yaml"
    )
    assert StateManager(path).get_candidate_run(RUN) == approved  # opening again: no-op


# ---------------------------------------------------------------------------------------------
# tamper evidence: hash chains, triggers, statuses against the audit log


def _raw(manager: StateManager, *statements: str) -> None:
    """What someone with a sqlite3 or psql shell can do to the registry."""
    shell(manager._url, *statements)


def _a_history(manager: StateManager) -> None:
    for name in ("A", "B", "C"):
        _approved(manager, name)
    manager.record_deployment("A", "production", by="ops")
    manager.record_deployment("B", "production", by="ops")
    manager.reject_candidate_run("C", "bob", "drawdown")


def test_an_untouched_registry_verifies_with_its_counts(registry: StateManager) -> None:
    _a_history(registry)
    registry.rollback(by="ops")
    check = registry.verify()
    assert check.intact and check.candidates == 3
    assert [(c.table, c.rows) for c in check.chains] == [("status_changes", 12), ("deployments", 3)]
    assert check.summary() == (
        "registry intact: 3 candidates; chains verified: 12 status_changes rows, 3 deployments rows"
    )


@pytest.mark.parametrize(
    ("statements", "problem"),
    [
        (["DROP TRIGGER deployments_no_delete"], "trigger deployments_no_delete is missing"),
        (
            ["REPLACE TRIGGER status_changes_no_update"],
            "trigger status_changes_no_update was replaced by a different one",
        ),
        (["UPDATE candidate_runs SET status = 'approved' WHERE run_id = 'C'"],
         "candidate C is approved but its audit log last says rejected"),
        (["DROP TRIGGER candidate_runs_fixed_evidence",
          "UPDATE candidate_runs SET approved_evidence = '{}' WHERE run_id = 'C'"],
         "trigger candidate_runs_fixed_evidence is missing"),
        (["DROP TRIGGER status_changes_no_update",
          "UPDATE status_changes SET changed_by = 'mallory' WHERE id = 2",
          "UPDATE status_changes SET row_hash = 'x' WHERE id = 9"],
         "status_changes row 2 does not match its hash"),
        (["DROP TRIGGER deployments_no_delete", "DELETE FROM deployments WHERE id = 2"],
         "deployments ends at row 1 but row 2 was written"),
        (["DROP TRIGGER status_changes_no_delete", "DELETE FROM status_changes WHERE id = 3"],
         "status_changes row 4 does not match its hash"),
    ],
)  # fmt: skip
def test_edits_made_outside_the_registry_are_named_and_refuse_deployment(
    registry: StateManager, statements: list[str], problem: str
) -> None:
    _a_history(registry)
    _raw(registry, *statements)
    check = registry.verify()
    assert any(problem in found for found in check.problems), check.problems
    history = registry.deployment_history()
    _approved(registry, "D")
    with pytest.raises(TamperedRegistryError, match="cannot deploy D to production: registry"):
        registry.record_deployment("D", "production", by="ops")
    with pytest.raises(TamperedRegistryError, match="cannot roll production back: registry"):
        registry.rollback(by="ops")
    assert registry.deployment_history() == history


def test_a_row_appended_by_hand_is_refused_or_breaks_the_chain(registry: StateManager) -> None:
    _a_history(registry)
    insert = (
        "INSERT INTO status_changes (run_id, from_status, to_status, changed_by, changed_at{})"
        " VALUES ('C', 'rejected', 'approved', 'mallory', '2026-11-24T00:00:00+00:00'{})"
    )
    with pytest.raises(DRIVER_ERRORS, match="appended by the registry, hashed"):
        _raw(registry, insert.format("", ""))
    _raw(registry, insert.format(", row_hash", ", 'forged'"))
    # row 11 (Postgres: 12, as the refused insert drew 11 from the id sequence)
    ((forged,),) = execute(registry._url, "SELECT id FROM status_changes WHERE row_hash = 'forged'")
    assert f"status_changes row {forged} does not match its hash" in registry.verify().problems[0]


def test_a_deployment_record_deleted_with_its_statuses_is_caught(registry: StateManager) -> None:
    """Undo B's deployment consistently in candidate_runs: the deployed run no longer matches
    production's last deployment (and the audit log)."""
    _a_history(registry)
    _raw(registry, "UPDATE candidate_runs SET status = 'approved' WHERE run_id = 'B'")
    problems = registry.verify().problems
    assert "candidate B is approved but its audit log last says deployed" in problems[0]
    assert "production's last deployment is B but no run is marked deployed" in problems[1]


def test_a_rollback_whose_target_moved_records_nothing(registry: StateManager) -> None:
    for name in ("A", "B", "C"):
        _approved(registry, name)
        registry.record_deployment(name, "production", by="ops")
    with pytest.raises(DeploymentConflictError, match="cannot roll production back to A: prod"):
        registry.rollback(by="ops", to="A")  # the target is B
    assert registry.current_deployment().run_id == "C"
    assert registry.rollback(by="ops", to="B").run_id == "B"


def test_a_schema_2_registry_gets_its_existing_rows_chained(tmp_path: Path) -> None:
    """Migration hashes the rows already there; a row edited afterwards is caught."""
    path = tmp_path / "registry.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in (*MIGRATIONS[0], *MIGRATIONS[1]):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
        for run_id, status in (("old", DEPLOYED), ("new", READY_FOR_REVIEW)):
            conn.execute(
                "INSERT INTO candidate_runs (run_id, status, created_at, updated_at,"
                " recorded_by) VALUES (?, ?, '2026-11-01T09:00:00+00:00',"
                " '2026-11-01T09:00:00+00:00', 'system')",
                (run_id, status),
            )
            conn.execute(
                "INSERT INTO status_changes (run_id, from_status, to_status, changed_by,"
                " changed_at) VALUES (?, NULL, ?, 'system', '2026-11-01T09:00:00+00:00')",
                (run_id, status),
            )
        conn.execute(
            "INSERT INTO deployments (run_id, stage, action, deployed_by, deployed_at)"
            " VALUES ('old', 'production', 'deploy', 'ops', '2026-11-01T09:00:00+00:00')"
        )
    registry = StateManager(path)
    check = registry.verify()
    assert check.intact, check.problems
    assert [c.rows for c in check.chains] == [2, 1]
    _raw(
        registry,
        "DROP TRIGGER deployments_no_update",
        "UPDATE deployments SET deployed_by = 'mallory'",
    )
    assert registry.verify().problems == (
        "trigger deployments_no_update is missing (dropped)",
        "deployments row 1 does not match its hash (a row was edited, inserted, deleted or "
        "reordered at or before it)",
    )


def test_an_unreachable_postgres_registry_is_one_line_without_its_password() -> None:
    from sensequant_assets_tests.services import free_port

    url = f"postgresql://reg:s3cret-pw@127.0.0.1:{free_port()}/registry"
    with pytest.raises(RegistryError) as info:
        StateManager(url, timeout=0.5)
    message = str(info.value)
    assert "127.0.0.1" in message and "***" in message
    assert "s3cret-pw" not in message and "\n" not in message


# ---------------------------------------------------------------------------------------------
# the seed's API: StateManager() opens the configured registry


def test_no_argument_opens_the_configured_registry_from_a_fresh_shell(tmp_path: Path) -> None:
    home = tmp_path / "home"
    manager = StateManager(ArtifactLayout(home).registry_file)
    _record(manager, "live_candidate_20261124_101500")
    _record(manager, "live_candidate_20261125_101500")
    manager.approve_candidate_run("live_candidate_20261125_101500", approved_by="alice")
    script = (
        "import sys\n"
        "from sensequant_assets.registry import StateManager\n"
        "heavy = [m for m in ('sensequant_assets.settings', 'pandas') if m in sys.modules]\n"
        "latest = StateManager().get_latest_candidate_run()\n"
        "ready = StateManager().get_candidate_runs(status='ready-for-review')\n"
        "print(heavy, latest.run_id, [run.run_id for run in ready])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENSEQUANT_", "DAGSTER_PG"))}
    shell = subprocess.run(
        [sys.executable, "-c", script],
        cwd=home,
        env={**env, "SENSEQUANT_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split("\n")[0] == (
        "[] live_candidate_20261125_101500 ['live_candidate_20261124_101500']"
    )


def test_no_argument_follows_the_environment_of_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SENSEQUANT_REGISTRY_URL", "DAGSTER_PG_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SENSEQUANT_HOME", str(tmp_path / "a"))
    assert StateManager(read_only=True).get_latest_candidate_run() is None
    assert not (tmp_path / "a").exists()  # read-only: an empty home stays empty
    monkeypatch.setenv("SENSEQUANT_HOME", str(tmp_path / "b"))
    assert StateManager().path == ArtifactLayout(tmp_path / "b").registry_file
