"""Registry drills: six kinds of tampering caught before anything deploys; deploys and
rollbacks racing in real processes leave the registry and ``CURRENT`` agreeing.

Each test prints one ``DRILL`` line (``pytest -s``); docs/reliability.md has the figures, the
bench ``bench/drill_registry.py`` the bigger scale. The mechanics are in ``registry_drills.py``.
The registry's tests run on SQLite and on Postgres; Postgres has tampering of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.cli import EXIT_FAILED, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.assets.promotion import DEPLOY_POOL
from sensequant_assets.registry import StateManager, TamperedRegistryError
from sensequant_assets.registry.reservation import reserve
from sensequant_assets.release import deploy_lock
from sensequant_assets.release.deployment import (
    current_production,
    deploy_to_production,
    rollback_production,
)
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.databases import DRIVER_ERRORS, execute, shell
from sensequant_assets_tests.fault_drills import tree_hashes
from sensequant_assets_tests.registry_drills import (
    APPROVED_RUN,
    LIVE,
    POSTGRES_TAMPERS,
    REJECTED_RUN,
    TAMPERS,
    promote,
    race,
    tamper_scenario,
)

# What each refusal names: registry tampering fails the sensor tick, file tampering the run.
EXPECTED = {
    "edit status": f"candidate {REJECTED_RUN} is approved but its audit log last says rejected",
    "drop trigger": "trigger status_changes_no_update is missing (dropped)",
    "delete log row": "status_changes row",
    "swap model file": r"manifest.yaml has SHA-256",
    "edit briefing": "promotion_briefing.md has SHA-256",
    "edit manifest": "manifest.yaml has SHA-256",
    "disable trigger": "trigger status_changes_no_delete is disabled",
    "replace refusal function": "function registry_refuse was replaced by a different one",
}
IN_REGISTRY = ("edit status", "drop trigger", "delete log row", *POSTGRES_TAMPERS)
ON_POSTGRES = pytest.mark.parametrize("registry_backend", ["postgres"], indirect=True)


@pytest.mark.usefixtures("registry_env")
@pytest.mark.parametrize("kind", list(TAMPERS))
def test_tampering_is_caught_before_anything_deploys(kind: str) -> None:
    """The real promotion path (sensor tick, then ``promote_job`` for each request) deploys
    nothing after each kind of tampering; production, ``CURRENT`` and deployments unchanged."""
    _caught_before_anything_deploys(kind, TAMPERS[kind])


@ON_POSTGRES
@pytest.mark.usefixtures("registry_env")
@pytest.mark.parametrize("kind", list(POSTGRES_TAMPERS))
def test_postgres_only_tampering_is_caught_before_anything_deploys(kind: str) -> None:
    """A trigger disabled, or the function every refusal calls replaced: caught the same way."""
    _caught_before_anything_deploys(kind, POSTGRES_TAMPERS[kind])


@ON_POSTGRES
@pytest.mark.usefixtures("registry_env")
@pytest.mark.parametrize("table", ["status_changes", "deployments", "candidate_reservations",
                                   "candidate_runs"])  # fmt: skip
def test_a_truncate_is_refused_and_changes_nothing(table: str) -> None:
    """TRUNCATE skips row triggers; a statement trigger refuses it, on each table (CASCADE
    reaching the append-only tables from ``candidate_runs``)."""
    layout = ArtifactLayout.of(load_settings())
    registry = tamper_scenario(layout)
    reserve(registry, "live_candidate_20261122_090000", "asha")
    before = execute(layout.registry, f"SELECT count(*) FROM {table}")
    with pytest.raises(DRIVER_ERRORS, match="rows cannot be deleted"):
        shell(layout.registry, f"TRUNCATE {table} CASCADE")
    assert execute(layout.registry, f"SELECT count(*) FROM {table}") == before != [(0,)]
    assert registry.verify().intact
    assert promote(build_defs(load_settings())) == ([APPROVED_RUN], [])
    assert current_production(layout) == APPROVED_RUN


def _caught_before_anything_deploys(kind: str, tamper: Callable[[ArtifactLayout], None]) -> None:
    layout = ArtifactLayout.of(load_settings())
    registry = tamper_scenario(layout)
    production = tree_hashes(layout.production_dir)
    tamper(layout)

    requested, refusals = promote(build_defs(load_settings()))
    assert refusals and all(EXPECTED[kind] in message for message in refusals), refusals
    if kind in IN_REGISTRY:
        assert requested == [] and refusals[0].startswith("sensor tick failed: cannot promote")
        for attempt in (
            lambda: deploy_to_production(layout, registry, APPROVED_RUN, by="asha"),
            lambda: rollback_production(layout, registry, by="asha"),
        ):
            with pytest.raises(TamperedRegistryError, match="changed outside sensequant"):
                attempt()
    else:
        assert requested == [APPROVED_RUN] and len(refusals) == 1
    assert tree_hashes(layout.production_dir) == production
    assert current_production(layout) == LIVE
    assert [d.run_id for d in registry.deployment_history()] == [LIVE]
    print(f"\nDRILL tamper {kind!r}: refused before deploying: {refusals[0][:150]}")


@pytest.mark.usefixtures("registry_env")
def test_deploys_and_rollbacks_racing_in_two_processes_agree_with_current() -> None:
    layout = ArtifactLayout.of(load_settings())
    result = race(layout, pairs=8)
    assert result.disagreements == [] and result.agreed == 8
    assert set(result.outcomes) <= {"deploy ok", "rollback ok", "rollback NothingToRollBackError"}
    assert result.outcomes["deploy ok"] == 8
    assert StateManager(layout.registry).verify().intact
    print(f"\nDRILL race: 8 pairs, registry and CURRENT agree {result.agreed}/8; {result.outcomes}")


@pytest.mark.usefixtures("registry_env")
def test_a_rollback_while_a_deployment_runs_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = ArtifactLayout.of(load_settings())
    tamper_scenario(layout)
    monkeypatch.setattr(deploy_lock, "DEFAULT_WAIT_SECONDS", 0.2)
    with deploy_lock.deployment_lock(layout.deployment_lock, f"deploy {APPROVED_RUN}"):
        assert main(["candidates", "rollback", "--by", "asha"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "cannot roll production back: pid" in err and f"(deploy {APPROVED_RUN}) has held" in err
    assert current_production(layout) == LIVE


def test_production_model_runs_in_a_pool_of_one() -> None:
    assert build_defs(load_settings()).resolve_assets_def("production_model").op.pool == DEPLOY_POOL
