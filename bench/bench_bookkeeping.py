"""Dagster's bookkeeping per `ohlcv_daily` partition, lever by lever, beside the bare data work.

Run from the repository root:

    .venv/bin/python bench/bench_bookkeeping.py [--sessions 1000] [--no-postgres] [--only a,f]

One `ohlcv_daily` run = 1 symbol × N trading days (the last N sessions up to 2025-12-31, with
``SENSEQUANT_HISTORY_START=2008-01-01`` so ``--sessions 4440`` is the deep-history case), as a
Dagit backfill issues it under ``BackfillPolicy.single_run()``. One after another, each in a
fresh process, it times:

- the bare data work: the same domain calls without Dagster (fetch, archive, validate, the
  check results, and the warehouse write as one DuckDB transaction like the IO manager's);
- the run on each instance configuration ("lever"): the embedded SQLite instance as it was
  before issue 16, each lever alone and combined, and the Postgres instance (a private cluster
  on 127.0.0.1, ``sensequant_assets_tests.services``) stock, pooled and with the levers.

Each configuration gets a fresh SENSEQUANT_HOME and instance, and one untimed 2-partition run
first (imports, database files). The figures are the run's wall time and CPU time per
partition; bookkeeping is that minus the bare work per partition (measured in the same
process just before), the ratio is run ÷ bare. Two-worker levers run two runs of 1 symbol ×
N/2 days at once in two spawned processes (as ``SENSEQUANT_RUN_WORKERS=2`` does) and are
compared with the bare work of that shape. On a loaded machine, wall times move by ±30% from
run to run; CPU times much less.

Every configuration is then checked through the instance: every partition of the timed run
must be reported materialized (``get_status_by_partition``), and a run that fails over 20
partitions (an overnight-move bound no price passes) must leave those 20 reported failed, so
a lever that drops or merges events shows as a short count.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
from dagster._serdes import serialize_value  # noqa: E402
from dagster_duckdb_pandas import DuckDBPandasTypeHandler  # noqa: E402

from sensequant_assets.defs import build_defs  # noqa: E402
from sensequant_assets.defs.checks import check_results  # noqa: E402
from sensequant_assets.defs.duckdb_io import TransactionalDuckDBPandasIOManager  # noqa: E402
from sensequant_assets.defs.jobs import OHLCV_JOB  # noqa: E402
from sensequant_assets.defs.partitions import one_symbol_range_tags  # noqa: E402
from sensequant_assets.defs.resources import MarketData  # noqa: E402
from sensequant_assets.settings import Settings, get_settings, load_settings  # noqa: E402
from sensequant_assets.sources.ingest import PriceChecks  # noqa: E402
from sensequant_assets.storage import WAREHOUSE_SCHEMA  # noqa: E402

HISTORY_START = dt.date(2008, 1, 1)
LAST_DAY = dt.date(2025, 12, 31)
SYMBOLS = ("INFY", "TCS")  # the timed runs; two-worker levers use both
WARMUP_SYMBOL, FAILING_SYMBOL = "ITC", "LT"
FAILING_PARTITIONS = 20
OHLCV = dg.AssetKey("ohlcv_daily")
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
BATCH = "DAGSTER_EVENT_BATCH_SIZE"
SUBSET = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
LEVER_ENV = (BATCH, SUBSET)


@dataclass(frozen=True)
class Lever:
    key: str
    label: str
    instance: str  # sqlite-stock | sqlite-stock-normal | sqlite | sqlite-normal | pg-stock | pg
    env: Mapping[str, str] = field(default_factory=dict)
    workers: int = 1
    # the stock DuckDB type handler, which copies the frame's schema into every partition
    schema_per_partition: bool = False


LEVERS = (
    Lever("a", "stock SQLite (before issue 16)", "sqlite-stock", schema_per_partition=True),
    Lever("b", "  + DAGSTER_EVENT_BATCH_SIZE=1000", "sqlite-stock", {BATCH: "1000"}, 1, True),
    Lever("c", "  + one planned event per run (subset)", "sqlite-stock", {SUBSET: "1"}, 1, True),
    Lever("d", "  + synchronous=NORMAL (WAL is on already)", "sqlite-stock-normal", {}, 1, True),
    Lever("e", "  + two workers", "sqlite-stock", {}, 2, True),
    Lever("f", "batched SQLite + lean events (now)", "sqlite"),
    Lever("f2", "  + synchronous=NORMAL", "sqlite-normal"),
    Lever("f3", "  the same with the schema in every event", "sqlite", schema_per_partition=True),
    Lever("g", "  + one planned event per run (subset)", "sqlite", {SUBSET: "1"}),
    Lever("h", "  + two workers", "sqlite", workers=2),
    Lever("i", "stock dagster-postgres (before issue 16)", "pg-stock", schema_per_partition=True),
    Lever("j", "  + DAGSTER_EVENT_BATCH_SIZE=1000", "pg-stock", {BATCH: "1000"}, 1, True),
    Lever("k", "pooled Postgres, no batches", "pg", {BATCH: "0"}, 1, True),
    Lever("l2", "pooled + batches", "pg", schema_per_partition=True),
    Lever("l", "pooled + batches + lean events (now)", "pg"),
    Lever("m", "  + one planned event per run (subset)", "pg", {SUBSET: "1"}),
    Lever("n", "  + two workers", "pg", workers=2),
)


class _SchemaPerPartitionIOManager(TransactionalDuckDBPandasIOManager):
    """The project's IO manager with the stock type handler (the write is the same)."""

    @staticmethod
    def type_handlers() -> list:
        return [DuckDBPandasTypeHandler()]


def _schema_per_partition(defs: dg.Definitions, settings: Settings) -> dg.Definitions:
    """``defs`` with that IO manager: the same assets, jobs and other resources."""
    resources = dict(defs.resources or {})
    resources["warehouse_io_manager"] = _SchemaPerPartitionIOManager(
        database=str(settings.duckdb_path), schema=WAREHOUSE_SCHEMA
    )
    return dg.Definitions(
        assets=defs.assets, jobs=defs.jobs, resources=resources, executor=defs.executor
    )


def _instance_yaml(kind: str, dagster_home: Path) -> dict:
    if kind.startswith("pg"):
        config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
        if kind == "pg-stock":
            database = config["run_storage"]["config"]
            for name in ("run_storage", "event_log_storage", "schedule_storage"):
                del config[name]
            config["storage"] = {"postgres": database}
        return config
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    if kind in ("sqlite-stock", "sqlite-stock-normal"):
        config.pop("event_log_storage", None)
    if kind == "sqlite-normal":
        config["event_log_storage"]["config"] = {"synchronous": "NORMAL"}
    if kind == "sqlite-stock-normal":
        config["event_log_storage"] = {
            "module": "sqlite_pragmas",
            "class": "SynchronousNormalSqliteEventLogStorage",
            "config": {"base_dir": str(dagster_home / "history" / "runs")},
        }
    return config


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` set, the levers' variables unset unless named; restored afterwards."""
    saved = dict(os.environ)
    for name in LEVER_ENV:
        os.environ.pop(name, None)
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def _settings(home: Path, **overrides: object) -> Settings:
    os.environ["SENSEQUANT_HOME"] = str(home)
    os.environ["SENSEQUANT_HISTORY_START"] = HISTORY_START.isoformat()
    get_settings.cache_clear()
    return load_settings(**overrides)


# --- the bare data work -------------------------------------------------------------------


def _write_slice(path: Path, frame: pd.DataFrame) -> None:
    """The IO manager's write: delete the run's slice and insert its rows, one transaction."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = f"{WAREHOUSE_SCHEMA}.ohlcv_daily"
    with duckdb.connect(str(path)) as con:
        con.begin()
        con.execute(f"create schema if not exists {WAREHOUSE_SCHEMA}")
        con.execute(f"create table if not exists {table} as select * from frame limit 0")
        symbols = sorted(set(frame["symbol"]))
        con.execute(
            f"delete from {table} where symbol in ({','.join('?' * len(symbols))}) "
            "and date between ? and ?",
            [*symbols, frame["date"].min(), frame["date"].max()],
        )
        con.execute(f"insert into {table} select * from frame")
        con.commit()


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # seconds of CPU in the processes that ran the work (not the Postgres server)


@contextmanager
def _timed(into: list[Timing]) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into.append(Timing(time.perf_counter() - wall, time.process_time() - cpu))


def bare_work(symbols: tuple[str, ...], sessions: list[dt.date]) -> Timing:
    """The domain calls of one ohlcv_daily run per symbol, without Dagster, on a fresh home."""
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp, _environment({}):
        settings = _settings(Path(tmp))
        defs = build_defs(settings)
        market_data: MarketData = defs.resources["market_data"]
        plain = MarketData(settings, market_data.universe, market_data.calendar)
        timing: list[Timing] = []
        with _timed(timing):
            for symbol in symbols:
                result = plain.ingestor("ohlcv_daily").run(
                    {symbol: sessions},
                    uuid.uuid4().hex,
                    checks=PriceChecks.from_settings(settings),
                )
                assert not result.failures, result.failure_message()
                check_results("ohlcv_daily", result.findings)
                _write_slice(settings.duckdb_path, result.frame)
        return timing[0]


# --- one lever ----------------------------------------------------------------------------


@dataclass
class Measured:
    lever: Lever
    timing: Timing
    partitions: int
    events: int
    materialized: int
    failed_shown: int
    event_bytes: int  # one materialization event, serialized as the storage stores it
    journal_mode: str = ""


_worker: tuple[dg.Definitions, dg.DagsterInstance] | None = None


def _start_worker(settings: Settings, ref: object) -> None:
    global _worker
    _worker = (build_defs(settings), dg.DagsterInstance.from_ref(ref))


def _worker_run(tags: dict[str, str]) -> tuple[str, float]:
    """Run in a worker process: the run's id and the CPU seconds it took there."""
    assert _worker is not None
    defs, instance = _worker
    job = defs.resolve_job_def(OHLCV_JOB)
    cpu = time.process_time()
    run_id = job.execute_in_process(instance=instance, tags=tags, run_config=QUIET).run_id
    return run_id, time.process_time() - cpu


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, tags: dict[str, str]) -> str:
    result = defs.resolve_job_def(OHLCV_JOB).execute_in_process(
        instance=instance, tags=tags, run_config=QUIET, raise_on_error=False
    )
    return result.run_id


def _keys(symbol: str, sessions: list[dt.date]) -> list[str]:
    return [f"{day.isoformat()}|{symbol}" for day in sessions]


def _journal_mode(dagster_home: Path) -> str:
    index = dagster_home / "history" / "runs" / "index.db"
    if not index.exists():
        return ""
    with contextlib.closing(sqlite3.connect(index)) as con:
        return str(con.execute("pragma journal_mode").fetchone()[0])


def _timed_runs(
    lever: Lever,
    settings: Settings,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    tags: list[dict[str, str]],
    warm: list[dict[str, str]],
) -> tuple[list[str], Timing]:
    if lever.workers == 1:
        timing: list[Timing] = []
        with _timed(timing):
            run_ids = [_run(defs, instance, t) for t in tags]
        return run_ids, timing[0]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        lever.workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(settings, instance.get_ref()),
    ) as pool:
        list(pool.map(_worker_run, warm))  # both workers up, definitions loaded
        started = time.perf_counter()
        done = list(pool.map(_worker_run, tags))
        wall = time.perf_counter() - started
    return [run_id for run_id, _ in done], Timing(wall, sum(cpu for _, cpu in done))


def measure(lever: Lever, sessions: list[dt.date], postgres: object | None) -> Measured:
    env: dict[str, str] = dict(lever.env)
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-lever-")))
        dagster_home = home / "dagster_home"
        dagster_home.mkdir()
        if lever.instance.startswith("pg"):
            database = f"bench_{uuid.uuid4().hex[:12]}"
            postgres.create_database(database)  # type: ignore[union-attr]
            env |= postgres.env(database)  # type: ignore[union-attr]
        env["DAGSTER_HOME"] = str(dagster_home)
        config = _instance_yaml(lever.instance, dagster_home)
        (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
        stack.enter_context(_environment(env))
        settings = _settings(home)
        defs = build_defs(settings)
        if lever.schema_per_partition:
            defs = _schema_per_partition(defs, settings)
        partitions_def = defs.resolve_assets_def("ohlcv_daily").partitions_def
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(dagster_home)))
        _run(defs, instance, one_symbol_range_tags(WARMUP_SYMBOL, sessions[0], sessions[1]))

        if lever.workers == 1:
            timed = [(SYMBOLS[0], sessions)]
        else:
            half = len(sessions) // 2
            timed = [(SYMBOLS[0], sessions[:half]), (SYMBOLS[1], sessions[half:])]
        tags = [one_symbol_range_tags(s, days[0], days[-1]) for s, days in timed]
        warm = [one_symbol_range_tags(WARMUP_SYMBOL, sessions[i], sessions[i]) for i in (2, 3)]
        run_ids, timing = _timed_runs(lever, settings, defs, instance, tags, warm)

        keys = [k for s, days in timed for k in _keys(s, days)]
        status = instance.get_status_by_partition(OHLCV, keys, partitions_def) or {}
        materialized = sum(1 for k in keys if status.get(k) == dg.AssetPartitionStatus.MATERIALIZED)
        events = sum(len(instance.all_logs(r)) for r in run_ids)
        materialization = instance.get_records_for_run(
            run_ids[0], of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1
        ).records[0]
        event_bytes = len(serialize_value(materialization.event_log_entry))

        failing_defs = build_defs(_settings(home, max_overnight_move=1e-9))
        failing_days = sessions[-FAILING_PARTITIONS:]
        failing_tags = one_symbol_range_tags(FAILING_SYMBOL, failing_days[0], failing_days[-1])
        failed_run = _run(failing_defs, instance, failing_tags)
        run = instance.get_run_by_id(failed_run)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE, run
        failing_keys = _keys(FAILING_SYMBOL, failing_days)
        status = instance.get_status_by_partition(OHLCV, failing_keys, partitions_def) or {}
        failed = sum(1 for k in failing_keys if status.get(k) == dg.AssetPartitionStatus.FAILED)
        journal = _journal_mode(dagster_home) if lever.instance.startswith("sqlite") else ""
    return Measured(lever, timing, len(keys), events, materialized, failed, event_bytes, journal)


def _lever(
    lever: Lever, sessions: list[dt.date], postgres: object | None
) -> tuple[dict[int, Timing], Measured]:
    """In a fresh process: the bare work of the lever's shape (after one warm-up), the lever."""
    half = len(sessions) // 2
    shapes = {1: ((SYMBOLS[0],), sessions), 2: (SYMBOLS, sessions[:half])}
    bare_work(*shapes[1])  # imports, the first DuckDB file
    bares = {workers: bare_work(*shapes[workers]) for workers in sorted({1, lever.workers})}
    return bares, measure(lever, sessions, postgres)


def _median(timings: list[Timing]) -> Timing:
    return Timing(
        statistics.median(t.wall for t in timings), statistics.median(t.cpu for t in timings)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000, help="trading days per run")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the levers (medians)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite levers only")
    parser.add_argument("--only", default="", help="lever keys to run, in this order (a,f2,f)")
    args = parser.parse_args()
    chosen = [k.strip() for k in args.only.split(",") if k.strip()]
    by_key = {lv.key: lv for lv in LEVERS}
    levers = [by_key[k] for k in chosen] if chosen else list(LEVERS)  # in the order given
    if args.no_postgres:
        levers = [lv for lv in levers if not lv.instance.startswith("pg")]

    with tempfile.TemporaryDirectory() as tmp, _environment({}):
        calendar = build_defs(_settings(Path(tmp))).resources["market_data"].calendar
    sessions = list(calendar.sessions(HISTORY_START, LAST_DAY))[-args.sessions :]
    n, half = len(sessions), len(sessions) // 2

    # per lever: (bare work of its shape, the lever's run), one pair per pass
    found: dict[str, list[tuple[Timing, Measured]]] = {lv.key: [] for lv in levers}
    with ExitStack() as stack:
        postgres = None
        if any(lv.instance.startswith("pg") for lv in levers):
            from sensequant_assets_tests.services import postgres_server

            postgres = stack.enter_context(postgres_server())
        for done in range(args.repeat):
            for lever in levers:
                print(f"  [{lever.key}] {lever.label.strip()} ({done + 1}) ...", flush=True)
                # A fresh process per lever: a run in a process that ran others before took
                # up to a third more CPU, which would favour whichever lever came first.
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(1, mp_context=context) as pool:
                    bares, measured = pool.submit(_lever, lever, sessions, postgres).result()
                found[lever.key].append((bares[lever.workers], measured))
                print(f"      {measured.timing.wall:.1f} s", flush=True)

    bares = {w: _median([b for p in found.values() for b, m in p if m.lever.workers == w])
             for w in {lv.workers for lv in levers}}  # fmt: skip
    print(
        f"\nbookkeeping per ohlcv_daily partition: 1 symbol x {n} sessions "
        f"({sessions[0]}..{sessions[-1]}) in one run; two-worker levers: 2 runs x {half}"
    )
    for workers, bare in sorted(bares.items()):
        print(
            f"  bare data work (no Dagster), {workers} symbol(s) x {n // workers} sessions: "
            f"{1000 * bare.wall / n:.2f} ms/partition wall, {1000 * bare.cpu / n:.2f} cpu "
            "(median over the levers' processes)"
        )
    print(
        f"  bookkeeping = (run - bare) / partitions; ratio = run / bare; medians of {args.repeat} "
        "pass(es), [min-max] of the wall figure; cpu: this process and the run workers, not the "
        "Postgres server\n"
    )
    print(
        f"  {'':3} {'lever':<44} {'ms/part':>8} {'bookkeeping':>22} {'ratio':>6} "
        f"{'cpu bk':>9} {'cpu ratio':>9} {'events':>7} {'bytes':>6} {'materialized':>13} "
        f"{'failed shown':>12}"
    )
    for lever in levers:
        pairs, b = found[lever.key], bares[lever.workers]
        keeping = [1000 * (m.timing.wall - b.wall) / m.partitions for _, m in pairs]
        cpu_keeping = [1000 * (m.timing.cpu - b.cpu) / m.partitions for _, m in pairs]
        per = statistics.median(1000 * m.timing.wall / m.partitions for _, m in pairs)
        ratio = statistics.median(m.timing.wall / b.wall for _, m in pairs)
        cpu_ratio = statistics.median(m.timing.cpu / b.cpu for _, m in pairs)
        m = pairs[-1][1]
        materialized = min(x.materialized for _, x in pairs)
        failed = min(x.failed_shown for _, x in pairs)
        spread = f"[{min(keeping):.2f}-{max(keeping):.2f}]" if len(pairs) > 1 else ""
        note = f"  journal={m.journal_mode}" if m.journal_mode else ""
        print(
            f"  {lever.key:3} {lever.label:<44} {per:8.2f} "
            f"{statistics.median(keeping):7.2f} ms {spread:>12} {ratio:5.1f}x "
            f"{statistics.median(cpu_keeping):6.2f} ms {cpu_ratio:8.1f}x {m.events:7d} "
            f"{m.event_bytes:6d} "
            f"{materialized:>6}/{m.partitions:<6} {failed:>5}/{FAILING_PARTITIONS:<6}" + note
        )


if __name__ == "__main__":
    main()
