"""Dagster jobs run in process on a test's instance, and what they stored.

``run_job`` runs any job and hands back its result (failures included); ``ingest``,
``ingest_benchmark`` and ``train`` run the market-data and teacher jobs over the span the
training and candidate tests use (2024-01-01 to 2025-04-04), asserting the ingests succeed.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pandas as pd

from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import BENCHMARK_JOB, OHLCV_JOB, TEACHER_JOB
from sensequant_assets.defs.partitions import date_range_tags, one_symbol_range_tags
from sensequant_assets.settings import Settings

JAN = (dt.date(2024, 1, 1), dt.date(2024, 1, 31))
FIRST = "2024-03-13_to_2024-09-08"  # first window after the 49-session warm-up from 2024-01-01


def run_job(
    settings: Settings, instance: dg.DagsterInstance, job: str, tags: dict[str, str]
) -> dg.ExecuteInProcessResult:
    defs = build_defs(settings)
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=tags, raise_on_error=False
    )


def stored(settings: Settings, table: str = "ohlcv_daily") -> pd.DataFrame:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return con.execute(f"select * from market.{table} order by symbol, date").df()


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def ingest(settings: Settings, instance: dg.DagsterInstance, symbol: str) -> None:
    job = build_defs(settings).resolve_job_def(OHLCV_JOB)
    tags = one_symbol_range_tags(symbol, dt.date(2024, 1, 1), dt.date(2025, 4, 4))
    assert job.execute_in_process(instance=instance, tags=tags).success


def ingest_benchmark(settings: Settings, instance: dg.DagsterInstance) -> None:
    job = build_defs(settings).resolve_job_def(BENCHMARK_JOB)
    tags = date_range_tags(dt.date(2024, 1, 1), dt.date(2025, 4, 4))
    assert job.execute_in_process(instance=instance, tags=tags).success


def train(
    settings: Settings, instance: dg.DagsterInstance, first: str, last: str
) -> dg.ExecuteInProcessResult:
    job = build_defs(settings).resolve_job_def(TEACHER_JOB)
    tags = {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }
    return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
