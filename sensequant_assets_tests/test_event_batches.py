"""The instance storages' event batches: fewer transactions, the same events and statuses.

The embedded instance (the repo's dagster.yaml) and the production one (deploy/dagster.yaml)
store a ranged run's per-partition events in batches (``sensequant_assets.batched_sqlite``,
``sensequant_assets.pooled_postgres``). These tests pin what must not change: one planned and
one materialization event per partition (so a failed run's partitions show failed), the same
index rows as Dagster's stock storage, wiping, and the WAL files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from sensequant_assets.batched_sqlite import BatchedSqliteEventLogStorage
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import OHLCV_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.pooled_postgres import PooledPostgresEventLogStorage
from sensequant_assets.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
OHLCV = dg.AssetKey("ohlcv_daily")
SESSIONS = TradingCalendar().sessions(dt.date(2024, 1, 1), dt.date(2024, 2, 29))  # 41
PLANNED = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
MATERIALIZED = dg.DagsterEventType.ASSET_MATERIALIZATION


def _home(path: Path, config: str = "dagster.yaml", drop_event_log: bool = False) -> Path:
    path.mkdir(parents=True)
    instance_yaml = yaml.safe_load((REPO / config).read_text())
    if drop_event_log:
        del instance_yaml["event_log_storage"]  # Dagster's stock SqliteEventLogStorage
    (path / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
    return path


def _run(instance: dg.DagsterInstance, symbol: str, days: list[dt.date], **settings: object):
    defs = build_defs(load_settings(**settings))
    return defs.resolve_job_def(OHLCV_JOB).execute_in_process(
        instance=instance,
        tags=one_symbol_range_tags(symbol, days[0], days[-1]),
        raise_on_error=False,
    )


def _keys(symbol: str, days: list[dt.date]) -> list[str]:
    return [f"{day.isoformat()}|{symbol}" for day in days]


def _statuses(instance: dg.DagsterInstance, keys: list[str]) -> Counter:
    partitions_def = build_defs(load_settings()).resolve_assets_def(OHLCV).partitions_def
    status = instance.get_status_by_partition(OHLCV, keys, partitions_def) or {}
    return Counter(status.get(key) for key in keys)


def _batches(monkeypatch: pytest.MonkeyPatch, storage_class: type) -> list[Counter]:
    """Record the event types of every batch ``storage_class`` is handed."""
    seen: list[Counter] = []
    original = storage_class.store_event_batch

    def spy(self, events):
        seen.append(Counter(e.dagster_event_type for e in events))
        return original(self, events)

    monkeypatch.setattr(storage_class, "store_event_batch", spy)
    return seen


def _planned(instance: dg.DagsterInstance, run_id: str) -> list:
    records = instance.get_records_for_run(run_id, of_type=PLANNED, limit=10_000).records
    return [r.event_log_entry.dagster_event.event_specific_data for r in records]


def test_the_embedded_instance_batches_a_ranged_run_and_keeps_one_event_per_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    batches = _batches(monkeypatch, BatchedSqliteEventLogStorage)
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "dh"))) as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        result = _run(instance, "INFY", SESSIONS)
        assert result.success
        planned = _planned(instance, result.run_id)
        keys = _keys("INFY", SESSIONS)
        statuses = _statuses(instance, keys)
    # the storage turned Dagster's batches on, and the run's 41 planned events and 41
    # materializations arrived as one batch each
    assert len(batches) == 2
    assert batches[0][PLANNED] == len(SESSIONS)
    assert batches[1] == Counter({MATERIALIZED: len(SESSIONS)})
    # one planned event per partition, never one for the whole range: a failed run's
    # partitions are found through them (see the next test)
    assert sorted(p.partition for p in planned) == sorted(keys)
    assert all(p.partitions_subset is None for p in planned)
    assert statuses == Counter({dg.AssetPartitionStatus.MATERIALIZED: len(SESSIONS)})


def test_a_failed_ranged_run_shows_its_partitions_failed(tmp_path: Path) -> None:
    days = SESSIONS[:10]
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "dh"))) as instance:
        # no price passes an overnight-move bound this tight: the run fails after planning
        failed = _run(instance, "TCS", days, max_overnight_move=1e-9)
        assert not failed.success
        assert _statuses(instance, _keys("TCS", days)) == Counter(
            {dg.AssetPartitionStatus.FAILED: len(days)}
        )
        assert _run(instance, "TCS", days).success  # "missing and failed" re-runs them
        assert _statuses(instance, _keys("TCS", days)) == Counter(
            {dg.AssetPartitionStatus.MATERIALIZED: len(days)}
        )


def _index_rows(dagster_home: Path) -> dict[str, list[tuple]]:
    """What the cross-run index holds about the asset, without ids, run ids and times."""
    index = dagster_home / "history" / "runs" / "index.db"
    with contextlib.closing(sqlite3.connect(index)) as con:
        events = con.execute(
            "select dagster_event_type, partition, step_key, asset_key from event_logs "
            "where asset_key is not null order by dagster_event_type, partition"
        ).fetchall()
        tags = con.execute(  # values hold run ids and data versions, different per run
            "select asset_key, key, count(*) from asset_event_tags group by asset_key, key "
            "order by asset_key, key"
        ).fetchall()
        checks = con.execute(
            "select check_name, partition, execution_status from asset_check_executions "
            "order by check_name, partition"
        ).fetchall()
        keys = con.execute("select asset_key from asset_keys order by asset_key").fetchall()
    return {"events": events, "tags": tags, "checks": checks, "asset_keys": keys}


def test_batches_store_what_the_stock_storage_stores(tmp_path: Path) -> None:
    days = SESSIONS[:12]
    found = {}
    for name, stock in (("batched", False), ("stock", True)):
        home = _home(tmp_path / name, drop_event_log=stock)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage) != stock
            result = _run(instance, "ITC", days)
            assert result.success
            record = instance.get_latest_materialization_event(OHLCV)
            found[name] = {
                **_index_rows(home),
                "run": [
                    (e.dagster_event_type, e.dagster_event.partition if e.dagster_event else None)
                    for e in instance.all_logs(result.run_id)
                    if e.dagster_event_type in (PLANNED, MATERIALIZED)
                ],
                "latest": record.dagster_event.partition if record else None,
                "materialized": instance.get_materialized_partitions(OHLCV),
            }
    assert found["batched"] == found["stock"]
    assert len(found["batched"]["materialized"]) == len(days)


def test_wiping_the_asset_then_materializing_again(tmp_path: Path) -> None:
    days = SESSIONS[:5]
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "dh"))) as instance:
        assert _run(instance, "LT", days).success
        instance.wipe_assets([OHLCV])  # what `dagster asset wipe ohlcv_daily` calls
        assert instance.get_materialized_partitions(OHLCV) == set()
        assert _run(instance, "LT", days).success
        assert instance.get_materialized_partitions(OHLCV) == set(_keys("LT", days))


def test_the_embedded_event_logs_are_wal_files_in_the_default_place(tmp_path: Path) -> None:
    """No DAGSTER_HOME: the storage finds its files from the instance's own directory."""
    home = _home(tmp_path / "dh")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = _run(instance, "SBIN", SESSIONS[:2])
        assert result.success
        storage = instance.event_log_storage
        assert isinstance(storage, BatchedSqliteEventLogStorage)
        with storage.index_connection() as conn:
            assert conn.exec_driver_sql("pragma synchronous").scalar() == 2  # FULL, the default
    runs = home / "history" / "runs"
    for name in ("index.db", f"{result.run_id}.db"):
        with contextlib.closing(sqlite3.connect(runs / name)) as con:
            assert con.execute("pragma journal_mode").fetchone()[0] == "wal", name


def test_a_wiped_instance_gets_new_files_not_the_kept_connections(tmp_path: Path) -> None:
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "dh"))) as instance:
        assert _run(instance, "INFY", SESSIONS[:3]).success
        instance.event_log_storage.wipe()  # unlinks every run's file, empties the index
        second = _run(instance, "INFY", SESSIONS[3:6])
        assert second.success
        assert (tmp_path / "dh" / "history" / "runs" / f"{second.run_id}.db").exists()
        assert instance.get_materialized_partitions(OHLCV) == set(_keys("INFY", SESSIONS[3:6]))


def test_the_production_instance_batches_planned_events_too(
    postgres_dagster_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    stored: list[Counter] = []
    original = PooledPostgresEventLogStorage._store_asset_events

    def spy(self, events):
        stored.append(Counter(e.dagster_event_type for e in events))
        return original(self, events)

    monkeypatch.setattr(PooledPostgresEventLogStorage, "_store_asset_events", spy)
    days = SESSIONS[:20]
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledPostgresEventLogStorage)
        result = _run(instance, "TCS", days)
        assert result.success
        planned = _planned(instance, result.run_id)
        statuses = _statuses(instance, _keys("TCS", days))
        failed = _run(instance, "INFY", days, max_overnight_move=1e-9)
        assert not failed.success
        failed_statuses = _statuses(instance, _keys("INFY", days))
    # the 20 planned events of each run in one INSERT (materializations take dagster-postgres'
    # own batch)
    assert stored == [Counter({PLANNED: len(days)}), Counter({PLANNED: len(days)})]
    assert sorted(p.partition for p in planned) == sorted(_keys("TCS", days))
    assert statuses == Counter({dg.AssetPartitionStatus.MATERIALIZED: len(days)})
    assert failed_statuses == Counter({dg.AssetPartitionStatus.FAILED: len(days)})


def test_the_repo_instance_files_name_the_batching_storages() -> None:
    embedded = yaml.safe_load((REPO / "dagster.yaml").read_text())["event_log_storage"]
    assert embedded["module"] == "sensequant_assets.batched_sqlite"
    assert embedded["class"] == "BatchedSqliteEventLogStorage"
    deployed = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    assert deployed["event_log_storage"]["class"] == "PooledPostgresEventLogStorage"


def test_an_explicit_batch_size_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")  # batches off, as on the stock storage
    batches = _batches(monkeypatch, BatchedSqliteEventLogStorage)
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "dh"))) as instance:
        assert _run(instance, "ITC", SESSIONS[:4]).success
        assert len(instance.get_materialized_partitions(OHLCV)) == 4
    assert batches == []


def test_the_deferred_storage_copies_into_a_new_home(tmp_path: Path) -> None:
    """A copied DAGSTER_HOME (backups, the fault drills) reads its own files, not the old ones."""
    first = _home(tmp_path / "first")
    with dg.DagsterInstance.from_config(str(first)) as instance:
        assert _run(instance, "ITC", SESSIONS[:2]).success
    second = tmp_path / "second"
    shutil.copytree(first, second)
    with dg.DagsterInstance.from_config(str(second)) as instance:
        assert instance.event_log_storage._base_dir == str(second / "history" / "runs")
        assert instance.get_materialized_partitions(OHLCV) == set(_keys("ITC", SESSIONS[:2]))


def test_partition_events_carry_no_column_schema_the_asset_declares_it(tmp_path: Path) -> None:
    """The table schema is the same for every partition: declared once on the asset, not
    serialized into each partition's materialization (a fifth of the bookkeeping)."""
    settings = load_settings()
    defs = build_defs(settings)
    with dg.DagsterInstance.from_config(str(_home(tmp_path / "dh"))) as instance:
        result = _run(instance, "INFY", SESSIONS[:3])
        assert result.success
    materializations = result.asset_materializations_for_node("ohlcv_daily")
    assert len(materializations) == 3
    assert all("dataframe_columns" not in m.metadata for m in materializations)
    assert materializations[0].metadata["dagster/row_count"].value == 3
    declared = defs.resolve_assets_def(OHLCV).specs_by_key[OHLCV].metadata["dagster/column_schema"]
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        stored = con.execute("select * from market.ohlcv_daily").df()
    assert [c.name for c in declared.columns] == list(stored.columns)
    assert [c.type for c in declared.columns] == [str(t) for t in stored.dtypes]
