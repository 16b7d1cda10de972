"""Teacher training for every symbol × window of 3 years, and the student fit.

Run from the repository root (about 10 minutes for all 102 symbols):

    .venv/bin/python bench/bench_training.py [--symbols N] [--instance sqlite|postgres]

The warehouse is seeded with the synthetic source through plain domain calls (the backfill
has its own benchmark). Then the same work is timed twice, one process, one thing at a time:
as Dagster runs in the blocks ``historical-run`` and ``sensequant train`` issue
(``teacher_blocks``: neighbouring symbols × all windows) and as the same domain calls the
asset bodies make; the ratio is the orchestration overhead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import pandas as pd
from harness import bench_home, peak_memory_mib, report

from sensequant_assets.defs.jobs import TEACHER_JOB
from sensequant_assets.defs.partitions import teacher_blocks
from sensequant_assets.sources.ingest import MarketData
from sensequant_assets.storage import WAREHOUSE_SCHEMA, connect
from sensequant_assets.training import TrainingWindow
from sensequant_assets.training.distillation import DISTILLATION_MEMO
from sensequant_assets.training.resources import Training
from sensequant_assets.training.runner import RunReads, train_window
from sensequant_assets.universe import INDEX_SYMBOL

START, END = dt.date(2023, 1, 2), dt.date(2025, 12, 31)


def seed_warehouse(market_data: MarketData, symbols: list[str]) -> int:
    """Store the symbols' bars and the NIFTY 50 (market-relative labels need it)."""
    sessions = market_data.calendar.sessions(START, END)
    tables = {"ohlcv_daily": symbols, "nifty50_benchmark": [INDEX_SYMBOL]}
    rows = 0
    for table, names in tables.items():
        ingestor = market_data.ingestor(table)
        frames = [ingestor.run({name: sessions}, run_id="seed").frame for name in names]
        bars = pd.concat(frames, ignore_index=True)
        with connect(market_data.settings.duckdb_path) as con:
            con.execute(f"create schema if not exists {WAREHOUSE_SCHEMA}")
            con.register("bars", bars)
            con.execute(f"create or replace table {WAREHOUSE_SCHEMA}.{table} as select * from bars")
        rows += len(bars) if table == "ohlcv_daily" else 0
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=102)
    parser.add_argument("--instance", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    figures: dict[str, str] = {"instance": args.instance}
    with bench_home(
        args.instance,
        SENSEQUANT_HISTORY_START=START.isoformat(),
        SENSEQUANT_DATA_SOURCE="synthetic",
    ) as bench:
        market_data: MarketData = bench.defs.resources["market_data"]
        training: Training = bench.defs.resources["training"]
        symbols = market_data.universe.default_symbols[: args.symbols]
        rows = seed_warehouse(market_data, symbols)
        teacher = bench.defs.resolve_assets_def("teacher_model")
        windows = teacher.partitions_def.get_partitions_def_for_dimension(
            "train_window"
        ).get_partition_keys()
        ordered = sorted(symbols)
        blocks = teacher_blocks(ordered, windows, {symbol: windows for symbol in ordered})

        started = time.perf_counter()
        for i, block in enumerate(blocks, start=1):
            bench.execute(TEACHER_JOB, block.tags)
            print(f"  dagster: {i}/{len(blocks)} runs ({block.label})", flush=True)
        dagster_teachers = time.perf_counter() - started
        trained = len(bench.instance.get_materialized_partitions(teacher.key))

        started = time.perf_counter()
        bench.execute_assets(["student_model"])
        dagster_student = time.perf_counter() - started

        # The same domain calls as the asset body of each run: one read per run, then a fit per
        # window (RunReads; each symbol's last stored day looked up once).
        started = time.perf_counter()
        statuses: dict[str, int] = {}
        for block in blocks:
            run_windows = [
                TrainingWindow.from_span_key(symbol, key)
                for symbol in block.symbols
                for key in block.windows
            ]
            reads = RunReads(training, run_windows)
            latest = {s: training.warehouse.last_date("ohlcv_daily", s) for s in block.symbols}
            for window in run_windows:
                run = train_window(training, window, latest[window.symbol], reads)
                statuses[run.status] = statuses.get(run.status, 0) + 1
        plain_teachers = time.perf_counter() - started

        labels = [f"{s}_{k}" for k in windows for s in ordered]
        bars = training.warehouse.query("ohlcv_daily", "true", [])
        DISTILLATION_MEMO.clear()  # the plain call must not reuse what the Dagster run computed
        started = time.perf_counter()
        training.build_candidate(
            training.layout.new_candidate(dt.datetime(2000, 1, 1)), labels, bars
        )
        plain_student = time.perf_counter() - started

    partitions = len(symbols) * len(windows)
    figures.update(
        {
            "symbols x windows": f"{len(symbols)} x {len(windows)} = {partitions:,}",
            "bars in the warehouse": f"{rows:,} ({START}..{END})",
            "teachers trained / skipped": f"{trained:,} / {statuses.get('skipped', 0):,}",
            f"teachers, Dagster ({len(blocks)} runs, one at a time)": f"{dagster_teachers:.1f} s",
            "teachers, plain domain calls": f"{plain_teachers:.1f} s",
            "teacher overhead ratio": f"{dagster_teachers / plain_teachers:.2f}x",
            "student, Dagster": f"{dagster_student:.1f} s",
            "student, plain domain call": f"{plain_student:.1f} s",
            "student overhead ratio": f"{dagster_student / plain_student:.2f}x",
            "peak memory (RSS)": f"{peak_memory_mib():.0f} MiB",
        }
    )
    report("training: teacher_model + student_model, synthetic source", figures)


if __name__ == "__main__":
    main()
