"""A staging trial's outcome in the registry: recorded once, in the hash-chained audit log,
for an approved run only, and required by a production deployment through staging."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.registry import APPROVED, IllegalTransitionError, RegistryError, StateManager
from sensequant_assets.release.deployment import TrialNotPassed, deploy_to_production
from sensequant_assets_tests.deployable import approved_candidate
from sensequant_assets_tests.evidence import write_evidence

RUN = "live_candidate_20261124_101500"


@pytest.fixture
def registry(new_database, tmp_path: Path) -> StateManager:
    manager = StateManager(new_database("registry"))
    manager.record_candidate_run(RUN, audit_dir=write_evidence(tmp_path / "audit"))
    return manager


def test_an_outcome_is_recorded_once_and_leaves_the_run_approved(
    registry: StateManager,
) -> None:
    registry.approve_candidate_run(RUN, approved_by="alice")
    assert registry.staging_outcome(RUN) is None
    registry.record_staging_result(RUN, "stays", "rank IC worse by 0.2", by="staging trial")
    assert registry.staging_outcome(RUN) == "stays"
    assert registry.get_candidate_run(RUN).status == APPROVED
    note = registry.audit_log(RUN)[-1]
    assert (note.from_status, note.to_status, note.by) == (APPROVED, APPROVED, "staging trial")
    assert note.note == "staging trial: stays: rank IC worse by 0.2"
    assert registry.verify().intact  # the approval's bound digests still match its row
    with pytest.raises(RegistryError, match="already ended: stays"):
        registry.record_staging_result(RUN, "promote", "held up", by="staging trial")


def test_only_an_approved_run_is_on_trial_and_only_two_outcomes_exist(
    registry: StateManager,
) -> None:
    with pytest.raises(IllegalTransitionError, match="only an approved run is on trial"):
        registry.record_staging_result(RUN, "promote", "held up", by="staging trial")
    registry.approve_candidate_run(RUN, approved_by="alice")
    with pytest.raises(RegistryError, match="not 'waiting'"):
        registry.record_staging_result(RUN, "waiting", "1 of 2", by="staging trial")
    assert registry.staging_outcome(RUN) is None


def test_production_through_staging_needs_a_trial_that_said_promote(tmp_path: Path) -> None:
    layout = ArtifactLayout(tmp_path)
    registry = StateManager(layout.registry)
    approved_candidate(layout, registry, RUN)
    with pytest.raises(TrialNotPassed, match="its staging trial has not ended"):
        deploy_to_production(layout, registry, RUN, by="asha", after_trial=True)
    registry.record_staging_result(RUN, "stays", "drift ERROR", by="staging trial")
    with pytest.raises(TrialNotPassed, match="ended in 'stays'"):
        deploy_to_production(layout, registry, RUN, by="asha", after_trial=True)
    assert registry.current_deployment() is None
    assert deploy_to_production(layout, registry, RUN, by="asha").run_id == RUN
