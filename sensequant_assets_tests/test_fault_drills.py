"""Fault drills: real faults injected into real runs; what survives, what is lost, what doubles.

1. a ``sensequant ingest`` backfill SIGKILLed mid-run, then re-run (synthetic source; and with
   Breeze, where the killed run keeps the ``breeze_api`` pool slot);
2. a Breeze server that fails intermittently for a whole backfill, then a healthy re-run;
3. a model file corrupted between review and promotion;
4. a full disk (the kernel's file-size limit) while the release step and the promotion write.

Each test prints one ``DRILL`` line of figures (``pytest -s``); docs/reliability.md has them.
The mechanics live in ``fault_drills.py``, shared with ``bench/drill_faults.py``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import signal
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.artifacts import STUDENT_MODEL_FILE as MODEL_FILE
from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.cli import EXIT_FAILED, EXIT_OK, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import CANDIDATE_JOB, PROMOTE_JOB, STAGE_JOB
from sensequant_assets.defs.tags import CANDIDATE_TAG
from sensequant_assets.integrity import ModelIntegrityError
from sensequant_assets.orchestration.runs import QUIET, step_failure
from sensequant_assets.registry import PRODUCTION, StateManager, UnknownRunError
from sensequant_assets.release.deployment import current_production, current_staging
from sensequant_assets.release.manifest import read_manifest, verify_artifacts
from sensequant_assets.settings import get_settings, load_settings
from sensequant_assets.training.student_files import load_student
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.fake_breeze import API_ENDPOINTS, FakeBreeze
from sensequant_assets_tests.fault_drills import (
    BREEZE_POOL,
    OHLCV,
    RELEASE,
    Candidates,
    DiskFullWorker,
    Exactness,
    approve_for_drill,
    breeze_env,
    build_candidates,
    can_mount_tmpfs,
    child_env,
    export_bars,
    failed_run_errors,
    files_env,
    flip_bytes,
    ingest_command,
    kill_mid_run,
    ledger_calls,
    leftovers,
    make_dagster_home,
    pages_kib,
    partition_keys,
    registry_integrity,
    run_monitoring_pass,
    run_symbol,
    start_ingest,
    stuck_partitions,
    tmpfs,
    tree_hashes,
    warehouse_counts,
)

STARTED, FAILURE = dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.FAILURE
KEY, SECRET, TOKEN = "drill-key-4242", "drill-secret-4343", "44556677"


def _sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    return TradingCalendar().sessions(start, end)


def _rerun(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=env["SENSEQUANT_HOME"], capture_output=True, text=True, timeout=300
    )


# --- drill 1: kill a backfill mid-way, re-run it -------------------------------------------

KILL_SYMBOLS = ("INFY", "ITC", "LT", "TCS")
KILL_DATES = (dt.date(2024, 1, 1), dt.date(2024, 3, 28))


@pytest.mark.slow
def test_a_killed_backfill_reruns_to_every_partition_exactly_once(
    tmp_path: Path, isolated_env: Path
) -> None:
    """SIGKILL `sensequant ingest` inside its second run, then run the same command again."""
    home, dagster_home = isolated_env, make_dagster_home(tmp_path / "dagster_home")
    env = child_env(home, dagster_home)
    duckdb_path = load_settings().duckdb_path
    requested = partition_keys(KILL_SYMBOLS, _sessions(*KILL_DATES))
    command = ingest_command(KILL_SYMBOLS, *KILL_DATES)

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        proc = start_ingest(command, env, tmp_path / "killed.log")
        # Killed once its step has started: a run's materializations are stored as one batch
        # (sensequant_assets.batched_sqlite), so after the first there is none left to record.
        killed = kill_mid_run(proc, instance, after=dg.DagsterEventType.STEP_START)
        run = instance.get_run_by_id(killed)
        recorded = instance.get_materialized_partitions(OHLCV)
        stuck = stuck_partitions(instance)
        runs_before = {r.run_id for r in instance.get_runs()}
    assert proc.returncode == -signal.SIGKILL and run is not None
    symbol = run_symbol(run)
    # Nobody is left to record the end of the run: it stays STARTED, and the partitions it had
    # not yet recorded as materialized stay "in progress".
    assert run.status == STARTED
    own = {k for k in requested if k.endswith(f"|{symbol}")}
    assert set(stuck) | (recorded & own) == own and not set(stuck) & recorded
    assert set(stuck.values()) == {killed}
    # What is stored is whole: the killed run's rows are in the warehouse entirely or not at all.
    at_kill = warehouse_counts(duckdb_path)
    in_warehouse = sum(1 for key in own if at_kill[key])
    assert in_warehouse in (0, len(own)) and Exactness.of(at_kill, requested).duplicated == 0
    orphans = sum(1 for key in stuck if at_kill[key])

    # The default launcher has no worker health check: only a run-time limit ends the dead run
    # (the repo's is 3 hours; 1 s here stands for "the limit has passed").
    assert run_monitoring_pass(dagster_home, killed) == STARTED
    assert run_monitoring_pass(dagster_home, killed, max_runtime_seconds=1) == FAILURE

    again = _rerun(command, env)
    assert again.returncode == EXIT_OK, again.stdout + again.stderr
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        materialized = instance.get_materialized_partitions(OHLCV)
        rerun_ids = [r.run_id for r in instance.get_runs() if r.run_id not in runs_before]
        redone = sum(
            len(instance.get_records_for_run(r, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                                             limit=10_000).records)
            for r in rerun_ids
        )  # fmt: skip
    assert requested <= materialized
    assert Exactness.of(warehouse_counts(duckdb_path), requested) == Exactness(0, 0, 0)
    # `sensequant ingest` re-does every partition (idempotently), not only the missing ones.
    assert len(rerun_ids) == len(KILL_SYMBOLS) and redone == len(requested)
    print(
        f"\nDRILL 1 kill: {len(requested)} partitions in {len(KILL_SYMBOLS)} runs; killed run "
        f"{symbol} left {run.status.value} with {len(own) - len(stuck)} of {len(own)} partitions "
        f"recorded, {len(stuck)} stuck in progress, {orphans} of them with rows stored; "
        f"{len(recorded)} recorded in all before the kill; "
        f"re-run {len(rerun_ids)} runs re-materialized {redone}; missing 0, duplicated 0"
    )


@pytest.mark.slow
def test_a_killed_breeze_run_keeps_the_pool_slot_until_freed(
    tmp_path: Path, isolated_env: Path
) -> None:
    """With Breeze the killed run also holds the `breeze_api` pool slot; re-runs would wait on
    it forever (bench/drill_faults.py measures that). Ending the run and freeing its slot is the
    operator's fix; the re-run then costs no call for the symbol already stored."""
    symbols, dates = ("INFY", "TCS"), KILL_DATES
    home, dagster_home = isolated_env, make_dagster_home(tmp_path / "dagster_home")
    requested = partition_keys(symbols, _sessions(*dates))
    command = ingest_command(symbols, *dates)
    with FakeBreeze(api_key=KEY, api_secret=SECRET, session_token=TOKEN) as fake:
        env = child_env(home, dagster_home, **breeze_env(fake.base_url, KEY, SECRET, TOKEN, 1))
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            proc = start_ingest(command, env, tmp_path / "killed.log")
            killed = kill_mid_run(proc, instance, after=dg.DagsterEventType.STEP_START)
            holders = instance.event_log_storage.get_concurrency_info(BREEZE_POOL).claimed_slots
            assert [slot.run_id for slot in holders] == [killed]

            assert run_monitoring_pass(dagster_home, killed, max_runtime_seconds=1) == FAILURE
            # What the daemon does free_slots_after_run_end_seconds after a run ended, and what
            # Dagit's "free concurrency slots" does at once.
            instance.event_log_storage.free_concurrency_slots_for_run(killed)
            assert not instance.event_log_storage.get_concurrency_info(BREEZE_POOL).claimed_slots
        before = Counter(c.stock_code for c in fake.history_calls())
        again = _rerun(command, env)
        assert again.returncode == EXIT_OK, again.stdout + again.stderr
        rerun_calls = Counter(c.stock_code for c in fake.history_calls()) - before
    assert Exactness.of(warehouse_counts(load_settings().duckdb_path), requested) == Exactness(
        0, 0, 0
    )
    universe = load_universe()
    assert rerun_calls[universe.isec_code(symbols[0])] == 0  # stored before the kill
    print(
        f"\nDRILL 1b kill with Breeze: slot held by the killed run until freed; re-run calls "
        f"{dict(rerun_calls)}; {len(requested)} partitions, missing 0, duplicated 0"
    )


# --- drill 2: an intermittently failing Breeze server ---------------------------------------

FLAKY_SYMBOLS = ("HDFCBANK", "INFY", "ITC", "LT", "TCS")
FLAKY_DATES = (dt.date(2024, 1, 1), dt.date(2024, 2, 29))
# Served, served, failed, served, failed, failed, ... over the history requests: with one retry
# (two attempts) a symbol whose first attempt fails recovers, one that draws "FF" fails.
FLAKY_PATTERN = "..F.FF"
FLAKY_FAULTS = ("html_502", "error_500", "drop_connection")
RETRIES = 1


@pytest.mark.slow
def test_a_flaky_breeze_backfill_ends_whole_or_failed_by_name_within_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sensequant ingest` (one run per symbol) against a server that fails every few requests
    with a 502 page, a 500 payload or a dropped connection; then the same command, healed."""
    monkeypatch.setenv("DAGSTER_HOME", str(make_dagster_home(tmp_path / "dagster_home")))
    sessions = _sessions(*FLAKY_DATES)
    requested = partition_keys(FLAKY_SYMBOLS, sessions)
    universe = load_universe()
    code_of = {symbol: universe.isec_code(symbol) for symbol in FLAKY_SYMBOLS}
    args = ingest_command(FLAKY_SYMBOLS, *FLAKY_DATES)[1:]
    with FakeBreeze(
        api_key=KEY, api_secret=SECRET, session_token=TOKEN,
        fail_pattern=FLAKY_PATTERN, fail_with=FLAKY_FAULTS,
    ) as fake:  # fmt: skip
        for name, value in breeze_env(fake.base_url, KEY, SECRET, TOKEN, RETRIES).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        settings = load_settings()
        assert main(args) == EXIT_FAILED
        first_calls = fake.history_calls()
        injected = fake.injected_faults()
        with dg.DagsterInstance.get() as instance:
            materialized = instance.get_materialized_partitions(OHLCV)
            errors = failed_run_errors(instance)
        counts = warehouse_counts(settings.duckdb_path)

        # Every partition ends materialized or in a failed run that names its symbol; the
        # warehouse holds exactly the materialized ones, once each.
        failed = set(errors)
        assert failed and failed < set(FLAKY_SYMBOLS)
        for symbol, message in errors.items():
            assert f"NSE symbol {symbol}" in message
            assert f"failed after {RETRIES + 1} attempt(s)" in message
        stored = {k for k in requested if k.split("|")[1] not in failed}
        assert materialized == stored
        assert Exactness.of(counts, stored) == Exactness(0, 0, 0)
        assert not any(k.split("|")[1] in failed for k in counts)
        calls_by_code = Counter(c.stock_code for c in first_calls)
        faulted_codes = Counter(c.stock_code for c in injected)
        recovered = [s for s in FLAKY_SYMBOLS if faulted_codes[code_of[s]] and s not in failed]
        assert recovered, "the pattern must also exercise a successful retry"

        # The budget: each symbol at most one call per 1,000 candles times the attempts, the
        # minute limit never approached, and the ledger granted exactly the calls received.
        attempts = RETRIES + 1
        assert all(
            calls_by_code[code_of[s]] <= attempts * math.ceil(len(sessions) / 1000)
            for s in FLAKY_SYMBOLS
        )
        assert fake.peak_calls_per_minute() <= 100
        ledger = ledger_calls(settings.data_dir)
        received = [c for c in fake.calls if c.endpoint in API_ENDPOINTS]
        assert sum(ledger.values()) == len(received)
        assert all(ledger[f"breeze:{s}"] == calls_by_code[code_of[s]] for s in FLAKY_SYMBOLS)

        # Healed, the same backfill completes and spends calls only on what is missing.
        fake.fail_pattern = ""
        assert main(args) == EXIT_OK
        rerun_calls = Counter(c.stock_code for c in fake.history_calls()[len(first_calls) :])
        with dg.DagsterInstance.get() as instance:
            assert requested <= instance.get_materialized_partitions(OHLCV)
    assert Exactness.of(warehouse_counts(settings.duckdb_path), requested) == Exactness(0, 0, 0)
    assert rerun_calls == Counter({code_of[s]: 1 for s in failed})
    print(
        f"\nDRILL 2 flaky Breeze: {len(requested)} partitions, {len(FLAKY_SYMBOLS)} runs; "
        f"{len(injected)} faults in {len(first_calls)} history calls "
        f"({dict(Counter(c.fault for c in injected))}); recovered by retry {recovered}; "
        f"failed runs {sorted(failed)} ({len(requested) - len(stored)} partitions); "
        f"lost 0, duplicated 0; peak {fake.peak_calls_per_minute()}/min; re-run calls "
        f"{sum(rerun_calls.values())} (0 for stored symbols)"
    )


# --- drills 3 and 4: a corrupt model file, a full disk --------------------------------------


@pytest.fixture(scope="module")
def candidates_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Candidates]:
    """Two real candidates, built once for the module in a clean environment."""
    home = tmp_path_factory.mktemp("candidates") / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("SENSEQUANT_", "BREEZE_")) or name == "DAGSTER_HOME":
                patch.delenv(name)
        patch.setenv("SENSEQUANT_HOME", str(home))
        for name, value in export_bars(home).items():
            patch.setenv(name, value)
        patch.chdir(home)
        get_settings.cache_clear()
        try:
            candidates = build_candidates(home)
        finally:
            get_settings.cache_clear()
    return home, candidates


@pytest.fixture
def candidates(
    candidates_home: tuple[Path, Candidates], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Candidates:
    """This test's own copy of the candidates' home (the test's SENSEQUANT_HOME), reading its
    exported market data files."""
    source, built = candidates_home
    shutil.copytree(source, isolated_env, dirs_exist_ok=True)
    for name, value in files_env(isolated_env).items():
        monkeypatch.setenv(name, value)
    return built


def _execute(job: str, tags: dict[str, str], assets: tuple[str, ...] | None = None) -> str | None:
    """Run ``job`` in-process on a throw-away instance; the failure message, None on success."""
    definition = build_defs(load_settings()).resolve_job_def(job)
    with dg.DagsterInstance.ephemeral() as instance:
        result = definition.execute_in_process(
            instance=instance, tags=tags, run_config=QUIET, raise_on_error=False,
            asset_selection=[dg.AssetKey(k) for k in assets] if assets else None,
        )  # fmt: skip
    if result.success:
        return None
    return step_failure(next(e for e in result.all_events if e.is_step_failure))[1]


@contextmanager
def _registry_open(path: Path) -> Iterator[None]:
    """The registry held open, as a running daemon holds it: its WAL index exists, so a reader
    under a file-size limit needs no new space (the release steps read it before writing)."""
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("SELECT count(*) FROM candidate_runs").fetchone()
        yield


def _approve(*candidate_ids: str) -> None:
    for candidate_id in candidate_ids:
        approve_for_drill(load_settings().home, candidate_id)


@pytest.mark.slow
def test_a_corrupt_model_file_is_refused_and_production_is_untouched(
    candidates: Candidates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes flipped in an approved candidate's model after review: promotion (direct and via
    staging) must refuse it by hash, leaving the live model and the registry as they were."""
    live, bad = candidates.released, candidates.unreleased
    layout = ArtifactLayout(load_settings().home)
    assert _execute(CANDIDATE_JOB, candidates.scope(bad), RELEASE) is None
    _approve(live, bad)
    assert _execute(PROMOTE_JOB, {CANDIDATE_TAG: live}) is None
    production = tree_hashes(layout.production_dir)

    model = layout.candidate(bad).student_dir / MODEL_FILE
    flip_bytes(model)
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_student(model.parent)
    refusals = [_execute(PROMOTE_JOB, {CANDIDATE_TAG: bad})]
    monkeypatch.setenv("SENSEQUANT_PROMOTE_VIA_STAGING", "true")
    get_settings.cache_clear()
    refusals.append(_execute(STAGE_JOB, {CANDIDATE_TAG: bad}))
    for message in refusals:
        assert message is not None and f"release {bad} does not match its manifest" in message
        assert f"{model.parent.name}/{MODEL_FILE} has SHA-256" in message

    registry = StateManager(layout.registry)
    assert tree_hashes(layout.production_dir) == production
    assert current_production(layout) == live and current_staging(layout) is None
    assert [(d.run_id, d.stage) for d in registry.deployment_history()] == [(live, PRODUCTION)]
    assert registry.get_candidate_run(bad).status == "approved"
    assert not leftovers(layout.production_dir, layout.staging_dir)
    # The operator's way out: reject it (or restore the file and launch production_model).
    assert main(["candidates", "reject", bad, "--by", "drill", "--reason", "corrupt"]) == EXIT_OK
    print(
        f"\nDRILL 3 corrupt model: 3 bytes flipped in {MODEL_FILE}; load refused; promotions "
        f"refused {sum(m is not None for m in refusals)} of {len(refusals)} (direct, via "
        f"staging); production files changed 0 of {len(production)}; deployments recorded 0"
    )


# Limits below the artifact each case targets and, for the copy into production, above the
# 32 KiB shared-memory file SQLite needs to open the (WAL-mode) registry at all.
SMALL_LIMIT = 4 * 1024
REGISTRY_LIMIT = 16 * 1024
COPY_LIMIT = 64 * 1024
EFBIG = "File too large"


@pytest.mark.slow
def test_a_full_disk_leaves_no_half_written_artifact_and_no_registry_entry(
    candidates: Candidates, isolated_env: Path
) -> None:
    """The release step and the promotion, each run once under a file-size limit that stops
    one write that matters, then again with room: every fault must leave the old state."""
    live, new = candidates.released, candidates.unreleased
    layout = ArtifactLayout(isolated_env)
    audit = layout.audit_dir(layout.candidate(new))
    registry = StateManager(layout.registry)
    scope = candidates.scope(new)

    def unregistered() -> bool:
        try:
            registry.get_candidate_run(new)
        except UnknownRunError:
            return True
        return False

    faults: dict[str, str] = {}

    def failed_in(fault: dict[str, str], step: str, writer: str, error: str) -> bool:
        """The step failed where ``writer`` wrote, with ``error``; the fault is recorded."""
        faults[writer] = fault["error"]
        return (
            not fault["success"]
            and fault["step"] == step
            and error in fault["error"]
            and f"in {writer}\n" in fault["stack"]
        )

    with DiskFullWorker(isolated_env) as worker:
        # The manifest: nothing under its name, no temporary left, nothing registered.
        with _registry_open(layout.registry):
            fault = worker.run(CANDIDATE_JOB, scope, ["release_audit"], SMALL_LIMIT)
        assert failed_in(fault, "release_audit", "write_manifest", EFBIG), fault
        assert not (audit / "manifest.yaml").exists() and not leftovers(audit)
        assert unregistered()
        assert worker.run(CANDIDATE_JOB, scope, ["release_audit"])["success"]
        assert (audit / "manifest.yaml").stat().st_size > SMALL_LIMIT
        verify_artifacts(read_manifest(audit), isolated_env)

        # The briefing: the same.
        with _registry_open(layout.registry):
            fault = worker.run(CANDIDATE_JOB, scope, ["promotion_briefing"], SMALL_LIMIT)
        assert failed_in(fault, "promotion_briefing", "write_briefing", EFBIG), fault
        assert not list(audit.glob("promotion_briefing*")) and not leftovers(audit)
        assert unregistered()

        # Room for the briefing but not for opening the registry (SQLite needs a 32 KiB
        # shared-memory file for the WAL-mode registry): the step reads the candidate's status
        # before writing, so it fails with no briefing, the registry unchanged and intact;
        # re-running the step with room registers the candidate.
        fault = worker.run(CANDIDATE_JOB, scope, ["promotion_briefing"], REGISTRY_LIMIT)
        # SQLite's error is raised inside SQLAlchemy's statement execution, the registry's
        # first statement of the transaction (database._begin's PRAGMAs).
        assert failed_in(fault, "promotion_briefing", "do_execute", "disk I/O error"), fault
        assert not list(audit.glob("promotion_briefing*"))
        assert unregistered() and registry_integrity(layout.registry) == "ok"
        assert not leftovers(audit)
        assert worker.run(CANDIDATE_JOB, scope, ["promotion_briefing"])["success"]
        assert registry.get_candidate_run(new).status == "ready-for-review"

        # The copy into production: no bundle under its name, CURRENT and the registry as before.
        _approve(live, new)
        assert worker.run(PROMOTE_JOB, {CANDIDATE_TAG: live})["success"]
        production = tree_hashes(layout.production_dir)
        bundle = layout.candidate(new).student_dir / MODEL_FILE
        assert bundle.stat().st_size > COPY_LIMIT
        fault = worker.run(PROMOTE_JOB, {CANDIDATE_TAG: new}, fsize_limit=COPY_LIMIT)
        assert failed_in(fault, "production_model", "install_bundle", EFBIG), fault
        assert tree_hashes(layout.production_dir) == production
        assert current_production(layout) == live and not leftovers(layout.production_dir)
        assert [d.run_id for d in registry.deployment_history()] == [live]
        assert registry.get_candidate_run(new).status == "approved"
        assert worker.run(PROMOTE_JOB, {CANDIDATE_TAG: new})["success"]
    assert current_production(layout) == new
    assert (layout.production_dir / new / "student" / MODEL_FILE).read_bytes() == (
        bundle.read_bytes()
    )
    shown = "; ".join(f"{writer}: {error.splitlines()[0][:60]}" for writer, error in faults.items())
    print(
        f"\nDRILL 4 disk full: {len(faults)} faults ({shown}); half-written artifacts under a "
        "final name 0, temporaries left 0, registry entries or deployments recorded 0; every "
        "step succeeded when re-run with room"
    )


@pytest.mark.slow
def test_a_full_production_file_system_fails_the_promotion_before_the_registry_is_told(
    candidates: Candidates, isolated_env: Path, tmp_path: Path
) -> None:
    """Production on a tmpfs of each size around what the bundle needs (ENOSPC, a real file
    system filling up): the promotion completes, or fails leaving the registry, CURRENT and
    production as they were. The drill found a size where the registry recorded the deployment
    but CURRENT could not be written; `_new_pointer` now writes it before the registry is told."""
    if not can_mount_tmpfs(tmp_path / "probe"):
        pytest.skip("mounting a tmpfs needs root with CAP_SYS_ADMIN")
    new = candidates.unreleased
    layout = ArtifactLayout(isolated_env)
    assert _execute(CANDIDATE_JOB, candidates.scope(new), RELEASE) is None
    _approve(new)
    audit = layout.audit_dir(layout.candidate(new))
    copied = [*layout.candidate(new).student_dir.iterdir(), audit / "manifest.yaml",
              *audit.glob("promotion_briefing.*")]  # fmt: skip
    need = pages_kib(copied)
    approved = tmp_path / "approved"
    shutil.copytree(isolated_env, approved)
    outcomes = {}
    for kib in range(need - 4, need + 8, 4):
        shutil.rmtree(isolated_env)
        shutil.copytree(approved, isolated_env)
        layout.production_dir.mkdir(parents=True)
        with tmpfs(layout.production_dir, kib):
            error = _execute(PROMOTE_JOB, {CANDIDATE_TAG: new})
            status = StateManager(layout.registry).get_candidate_run(new).status
            live, files = current_production(layout), tree_hashes(layout.production_dir)
        outcomes[kib] = "deployed" if error is None else "refused"
        if error is None:
            assert status == "deployed" and live == new
            assert {f"{new}/student/{p.name}" for p in copied[:2]} <= set(files)
        else:
            assert "No space left on device" in error
            assert status == "approved" and live is None and files == {}, (kib, files)
    assert set(outcomes.values()) == {"deployed", "refused"}, outcomes
    print(f"\nDRILL 4b tmpfs: bundle {need} KiB; production of N KiB -> {outcomes}")
