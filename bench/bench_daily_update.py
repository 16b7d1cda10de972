"""One trading day for every symbol (daily update + all checks) as one Dagster run.

Run from the repository root:

    .venv/bin/python bench/bench_daily_update.py

Seeds the warehouse with the previous 20 sessions (so the split guardrail has a previous close
to compare with), then times the range-tagged run the 18:00 IST schedule emits: one day × 102
symbols, plus the NIFTY 50 benchmark run for the same day.
"""

from __future__ import annotations

import datetime as dt
import time

from harness import bench_home, peak_memory_mib, report

from sensequant_assets.defs.jobs import BENCHMARK_JOB, OHLCV_JOB
from sensequant_assets.defs.partitions import one_day_all_symbols_tags
from sensequant_assets.sources.ingest import MarketData

DAY = dt.date(2025, 12, 31)


def main() -> None:
    with bench_home(SENSEQUANT_HISTORY_START="2025-11-01") as bench:
        market_data: MarketData = bench.defs.resources["market_data"]
        symbols = market_data.universe.default_symbols
        history = market_data.calendar.sessions(dt.date(2025, 11, 1), DAY)[-21:-1]
        for day in history:
            bench.execute(OHLCV_JOB, one_day_all_symbols_tags(day, symbols))
        seeded = len(bench.runs)

        started = time.perf_counter()
        result = bench.execute(OHLCV_JOB, one_day_all_symbols_tags(DAY, symbols))
        ohlcv_seconds = time.perf_counter() - started
        started = time.perf_counter()
        bench.execute(BENCHMARK_JOB, {"dagster/partition": DAY.isoformat()})
        benchmark_seconds = time.perf_counter() - started
        checks = result.get_asset_check_evaluations()
        events = bench.event_count(bench.runs[seeded : seeded + 1])

    report(
        "daily update: one session x all symbols",
        {
            "day": str(DAY),
            "runs for the day (ohlcv_daily)": "1",
            "partitions": str(len(symbols)),
            "checks evaluated / passed": f"{len(checks)} / {sum(c.passed for c in checks)}",
            "wall time ohlcv_daily run": f"{ohlcv_seconds:.1f} s",
            "wall time nifty50_benchmark run": f"{benchmark_seconds:.1f} s",
            "events stored (ohlcv run)": str(events),
            "peak memory (RSS)": f"{peak_memory_mib():.0f} MiB",
        },
    )


if __name__ == "__main__":
    main()
