"""Backfill 3 years of daily OHLCV for all 102 symbols from the synthetic source.

Run from the repository root:

    .venv/bin/python bench/bench_backfill.py [--symbols N]

With ``BackfillPolicy.single_run()`` a Dagster backfill of the symbol × day asset becomes one run
per symbol covering all its days; this script issues exactly those runs (range-tagged, in
process, one after another) on an embedded SQLite instance, then times the same domain calls
without Dagster, so the orchestration overhead is visible. It does not include the backfill
daemon's run launching (one subprocess per run), which a UI backfill adds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from harness import bench_home, peak_memory_mib, report

from sensequant_assets.defs.jobs import OHLCV_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.sources.ingest import MarketData
from sensequant_assets.storage import connect

START, END = dt.date(2023, 1, 2), dt.date(2025, 12, 31)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=102, help="how many symbols (default all)")
    args = parser.parse_args()
    figures: dict[str, str] = {}
    with bench_home(SENSEQUANT_HISTORY_START=START.isoformat()) as bench:
        market_data: MarketData = bench.defs.resources["market_data"]
        symbols = market_data.universe.default_symbols[: args.symbols]
        sessions = market_data.calendar.sessions(START, END)

        started = time.perf_counter()
        for i, symbol in enumerate(symbols, start=1):
            bench.execute(OHLCV_JOB, one_symbol_range_tags(symbol, sessions[0], sessions[-1]))
            if i % 10 == 0 or i == len(symbols):
                elapsed = time.perf_counter() - started
                print(f"  {i}/{len(symbols)} symbols, {elapsed:.0f} s", flush=True)
        dagster_seconds = time.perf_counter() - started

        with connect(bench.settings.duckdb_path) as con:
            rows, dupes = con.execute(
                "select count(*), count(*) - count(distinct (symbol, date)) from market.ohlcv_daily"
            ).fetchone()
        events = bench.event_count()

        plain = MarketData(bench.settings, market_data.universe, market_data.calendar)
        started = time.perf_counter()
        for symbol in symbols:
            plain.ingestor("ohlcv_daily").run({symbol: sessions}, run_id="plain")
        plain_seconds = time.perf_counter() - started

    partitions = len(symbols) * len(sessions)
    figures.update(
        {
            "symbols x sessions": f"{len(symbols)} x {len(sessions)} ({START}..{END})",
            "partitions": f"{partitions:,}",
            "runs": str(len(bench.runs)),
            "wall time (Dagster, SQLite instance)": f"{dagster_seconds:.1f} s",
            "per run": f"{dagster_seconds / len(bench.runs):.2f} s",
            "events stored": f"{events:,} ({events / partitions:.2f} per partition)",
            "rows in DuckDB / duplicates": f"{rows:,} / {dupes}",
            "same domain calls without Dagster": f"{plain_seconds:.1f} s",
            "orchestration overhead": f"{dagster_seconds / plain_seconds:.1f}x",
            "peak memory (RSS)": f"{peak_memory_mib():.0f} MiB",
        }
    )
    report("backfill: ohlcv_daily, synthetic source", figures)


if __name__ == "__main__":
    main()
