"""The production instance (deploy/dagster.yaml) on a real PostgreSQL server on 127.0.0.1.

The same commands as on the embedded SQLite instance, with the same assertions, plus what
SQLite cannot do: several processes writing runs and events at once.
"""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from sensequant_assets.cli import EXIT_OK, main
from sensequant_assets.pooled_postgres import (
    PooledPostgresEventLogStorage,
    PooledPostgresRunStorage,
    PooledPostgresScheduleStorage,
)
from sensequant_assets.settings import load_settings
from sensequant_assets.storage import Warehouse
from sensequant_assets_tests.pilot import PILOT, assert_pilot_outcome

BACKFILLS = (("RELIANCE", "TCS", "INFY"), ("HDFCBANK", "ICICIBANK", "SBIN"))
RANGE = ("2024-01-01", "2024-06-28")


def test_production_instance_file_selects_postgres_and_the_run_queue(
    postgres_dagster_home: Path,
) -> None:
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PooledPostgresRunStorage)
        assert isinstance(instance.event_log_storage, PooledPostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PooledPostgresScheduleStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        assert instance.event_log_storage.supports_global_concurrency_limits
        # the Breeze pool's limit comes from the file's default, with no manual step
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


@pytest.mark.slow
def test_pilot_on_postgres_meets_the_same_contract_as_on_sqlite(
    postgres_dagster_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(PILOT) == EXIT_OK
    assert_pilot_outcome(capfd)


def _ingest(symbols: tuple[str, ...], env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "sensequant_assets.cli", "ingest", "--symbols",
               ",".join(symbols), "--start-date", RANGE[0], "--end-date", RANGE[1]]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.slow
def test_two_concurrent_backfills_lose_and_duplicate_nothing(
    postgres_dagster_home: Path,
) -> None:
    """Two ingestion backfills started together share one Postgres instance and warehouse."""
    # Dagster creates its schema on first use, racily across processes; in production the
    # webserver or daemon has created it long before a backfill starts.
    dg.DagsterInstance.get().dispose()
    processes = [_ingest(symbols, dict(os.environ)) for symbols in BACKFILLS]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == EXIT_OK, output
        assert "database is locked" not in output

    symbols = [s for group in BACKFILLS for s in group]
    warehouse = Warehouse(load_settings().duckdb_path)
    rows = warehouse.symbols_bars("ohlcv_daily", symbols, *RANGE)
    assert not rows.duplicated(["symbol", "date"]).any()
    sessions = rows.groupby("symbol")["date"].nunique()
    assert set(sessions.index) == set(symbols) and sessions.nunique() == 1
    expected = {
        f"{day:%Y-%m-%d}|{symbol}"
        for symbol in symbols
        for day in rows.loc[rows["symbol"] == symbol, "date"]
    }

    key = dg.AssetKey("ohlcv_daily")
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="ohlcv_daily_job"))
        assert len(runs) == len(symbols)
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        assert instance.get_materialized_partitions(key) == expected
        records = instance.fetch_materializations(key, limit=len(expected) + 100).records
    materialized = pd.Series([r.partition_key for r in records])
    assert len(materialized) == len(expected) and not materialized.duplicated().any()
