"""Candidate ids are reserved once, by one run; a failed run never touches another's candidate."""

from __future__ import annotations

import datetime as dt
import threading

import dagster as dg
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import CANDIDATE_JOB
from sensequant_assets.defs.tags import scope_tags
from sensequant_assets.registry import StateManager
from sensequant_assets.registry.reservation import (
    CandidateTakenError,
    holder,
    reserve,
    reserve_new,
    try_reserve,
)
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.databases import DRIVER_ERRORS, execute
from sensequant_assets_tests.evidence import write_evidence

ID = "live_candidate_20260801_100000"

pytestmark = pytest.mark.usefixtures("registry_env")  # each test on SQLite and on Postgres


def _race(attempt, workers: int = 2) -> list[object]:
    """Run ``attempt(worker)`` in ``workers`` threads released at once; results or errors."""
    barrier = threading.Barrier(workers)
    outcomes: list[object] = [None] * workers

    def run(worker: int) -> None:
        barrier.wait()
        try:
            outcomes[worker] = attempt(worker)
        except Exception as exc:  # the loser's error is part of the outcome
            outcomes[worker] = exc

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_concurrent_reservations_of_one_id_have_one_winner(new_database) -> None:
    for round_ in range(10):
        path = new_database(f"registry_{round_}")
        registry = StateManager(path)
        outcomes = _race(lambda worker, path=path: reserve(StateManager(path), ID, f"run-{worker}"))
        won = [o for o in outcomes if not isinstance(o, Exception)]
        lost = [o for o in outcomes if isinstance(o, CandidateTakenError)]
        assert len(won) == len(lost) == 1, outcomes
        winner = won[0].owner  # type: ignore[attr-defined]
        assert f"{ID} is reserved by run {winner}" in str(lost[0])
        assert holder(registry, ID).owner == winner  # type: ignore[union-attr]
        assert reserve(registry, ID, winner).owner == winner  # the owner may reserve it again


def test_concurrent_fresh_reservations_get_distinct_ids() -> None:
    layout = ArtifactLayout.of(load_settings())
    registry = StateManager(layout.registry)
    ids = _race(lambda worker: reserve_new(StateManager(layout.registry), layout, f"run-{worker}"))
    assert all(isinstance(i, str) for i in ids) and len(set(ids)) == 2, ids
    assert [holder(registry, i).owner for i in ids] == ["run-0", "run-1"]  # type: ignore[union-attr,arg-type]


def test_a_reservation_is_never_handed_over() -> None:
    location = ArtifactLayout.of(load_settings()).registry
    registry = StateManager(location)
    assert try_reserve(registry, ID, "run-a").owner == "run-a"
    assert try_reserve(registry, ID, "run-b").owner == "run-a"
    for statement in (
        "UPDATE candidate_reservations SET owner = 'run-b'",
        "DELETE FROM candidate_reservations",
    ):
        with pytest.raises(DRIVER_ERRORS, match="append-only"):
            execute(location, statement)


def test_the_losing_runs_failure_leaves_the_winners_candidate_untouched() -> None:
    """The winner reserved the id and its candidate awaits review; a second run launched with
    the same id fails at the start, and its failure sensor changes nothing of the winner's."""
    settings = load_settings()
    layout = ArtifactLayout.of(settings)
    registry = StateManager(layout.registry)
    reserve(registry, ID, "winner-run")
    audit = write_evidence(layout.audit_dir(layout.candidate(ID)))
    registry.record_candidate_run(ID, audit_dir=audit, recommendation="approve")
    briefing = {p.name: p.read_bytes() for p in audit.iterdir()}
    log = [c.to_dict() for c in registry.audit_log(ID)]

    defs = build_defs(settings)
    tags = scope_tags(ID, ["TCS"], dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(CANDIDATE_JOB).execute_in_process(
            instance=instance, tags=tags, raise_on_error=False
        )
        assert not result.success
        message = result.failure_data_for_node("student_model").error.message
        assert f"{ID} is reserved by run winner-run" in message, message
        context = dg.build_run_status_sensor_context(
            sensor_name="candidate_failure_sensor",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        ).for_run_failure()
        defs.resolve_sensor_def("candidate_failure_sensor")(context)

    run = registry.get_candidate_run(ID)
    assert run.status == "ready-for-review" and run.error is None
    assert {p.name: p.read_bytes() for p in audit.iterdir()} == briefing
    assert [c.to_dict() for c in registry.audit_log(ID)] == log
