"""RunPool: a command's runs spread over worker processes, on the instance Dagit reads."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from sensequant_assets.cli import EXIT_FAILED, EXIT_OK, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import OHLCV_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.orchestration.run_pool import (
    MIN_RUNS_PER_WORKER,
    RunOutcome,
    RunPool,
    RunSpec,
    RunWorkerDied,
)
from sensequant_assets.settings import load_settings
from sensequant_assets.storage import Warehouse
from sensequant_assets_tests.services import process_states

SYMBOLS = ["RELIANCE", "TCS", "INFY", "ITC", "SBIN", "HDFCBANK", "ICICIBANK", "LT"]
JAN = ("2024-01-01", "2024-01-31")


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SENSEQUANT_RUN_WORKERS", "2")
    return home


def _step_pids(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    """Processes that executed the run's steps, from the in-process executor's engine events."""
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    return {
        int(event.dagster_event.engine_event_data.metadata["pid"].value)
        for event in events
        if event.dagster_event and "pid" in event.dagster_event.engine_event_data.metadata
    }


def _specs(symbols: list[str]) -> list[RunSpec]:
    first, last = (pd.Timestamp(day).date() for day in JAN)
    return [
        RunSpec(OHLCV_JOB, f"ohlcv_daily {s}", one_symbol_range_tags(s, first, last))
        for s in symbols
    ]


@pytest.mark.slow
def test_ingest_spreads_runs_over_two_workers_and_stores_each_partition_once(
    dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ingest", "--symbols", ",".join(SYMBOLS), "--start-date", JAN[0], "--end-date", JAN[1]]
    assert main(argv) == EXIT_OK, capsys.readouterr().out
    out = capsys.readouterr().out
    assert all(f"ohlcv_daily {s}" in out for s in SYMBOLS)

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == len(SYMBOLS) + 1 and all(r.is_success for r in runs)
        pids = set().union(*(_step_pids(instance, r.run_id) for r in runs))
        materialized = instance.get_materialized_partitions(dg.AssetKey("ohlcv_daily"))
    # every run went to a worker: two of them, neither the command's own process
    assert len(pids) == 2 and os.getpid() not in pids
    rows = Warehouse(load_settings().duckdb_path).symbols_bars("ohlcv_daily", SYMBOLS, None, None)
    assert not rows.duplicated(["symbol", "date"]).any()
    assert len(rows) == len(materialized) == len(SYMBOLS) * rows["date"].nunique()


@pytest.mark.slow
def test_no_run_starts_after_a_failure_when_asked_to_stop(
    dagster_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    settings = load_settings()
    seen: list[RunOutcome] = []
    with dg.DagsterInstance.get() as instance:
        with RunPool(settings, build_defs(settings), instance, 2) as pool:
            outcomes = pool.run(_specs(SYMBOLS), seen.append, stop_on_failure=True)
        issued = len(instance.get_runs())
    assert outcomes and not any(o.success for o in outcomes)
    assert {o.run_id for o in seen} == {o.run_id for o in outcomes}
    # the first failure and at most the one run already under way in the other worker
    assert len(outcomes) == issued <= 2 < len(SYMBOLS)
    assert any(o.spec.label.split()[-1] in " ".join(o.lines) for o in outcomes)


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_reported_as_such(dagster_home: Path) -> None:
    settings = load_settings()

    def kill_the_workers(_: RunOutcome) -> None:
        for worker in multiprocessing.active_children():
            os.kill(worker.pid, signal.SIGKILL)

    with (
        dg.DagsterInstance.get() as instance,
        RunPool(settings, build_defs(settings), instance, 2) as pool,
        pytest.raises(RunWorkerDied, match="a run worker process died"),
    ):
        pool.run(_specs(SYMBOLS), kill_the_workers)
    # the pool starts new workers for the next list
    outcomes = pool.run(_specs(SYMBOLS), lambda _: None)
    assert len(outcomes) == len(SYMBOLS) and all(o.success for o in outcomes)


def test_short_lists_and_ephemeral_instances_run_in_this_process(dagster_home: Path) -> None:
    settings = load_settings()
    defs = build_defs(settings)
    with dg.DagsterInstance.ephemeral() as ephemeral:
        assert RunPool(settings, defs, ephemeral, 4).workers == 1
    short = _specs(SYMBOLS[: MIN_RUNS_PER_WORKER * 2 - 1])
    with dg.DagsterInstance.get() as instance:
        with RunPool(settings, defs, instance, 2) as pool:
            outcomes = pool.run(short, lambda _: None)
        pids = set().union(*(_step_pids(instance, o.run_id) for o in outcomes))
    assert [o.spec for o in outcomes] == short and all(o.success for o in outcomes)
    assert pids == {os.getpid()}


def test_run_workers_setting_is_validated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENSEQUANT_RUN_WORKERS", "0")
    assert main(["ingest", "--symbols", "TCS", "--start-date", JAN[0], "--end-date", JAN[1]]) == 2
    assert "SENSEQUANT_RUN_WORKERS" in capsys.readouterr().err


def test_failed_ingest_runs_make_the_command_fail(
    dagster_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(tmp_path))
    argv = ["ingest", "--symbols", "TCS", "--start-date", JAN[0], "--end-date", JAN[1]]
    assert main([*argv, "--no-benchmark"]) == EXIT_FAILED


def _children(pid: int) -> set[int]:
    return {child for child, (parent, _) in process_states().items() if parent == pid}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_workers_die_with_a_killed_command(dagster_home: Path) -> None:
    command = [sys.executable, "-m", "sensequant_assets.cli", "ingest", "--symbols",
               ",".join(SYMBOLS), "--start-date", JAN[0], "--end-date", "2024-06-28"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    try:
        for line in process.stdout:  # the first finished run: both workers are up
            if "ohlcv_daily" in line and " ok " in line:
                break
        workers = {pid for pid in _children(process.pid) if _is_pool_worker(pid)}
        assert len(workers) == 2
        os.kill(process.pid, signal.SIGKILL)  # the command only, not its process group
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while workers & _alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not workers & _alive()
    finally:
        process.kill()


def _is_pool_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive() -> set[int]:
    """Live (not zombie) processes."""
    return {pid for pid, (_, state) in process_states().items() if state != "Z"}
