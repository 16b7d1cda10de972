"""Breeze calls for the full universe: 102 symbols × 3 years of daily bars.

Run from the repository root (takes a little over a minute, most of it deliberate throttling):

    .venv/bin/python bench/bench_breeze_calls.py   (about 3 minutes)

It starts the fake Breeze server on 127.0.0.1 (100 calls/minute, 5,000/day, 1,000 candles per
reply enforced), then fetches every default symbol through ``BreezeSource`` with the real
breeze-connect SDK and a real ``CallLedger`` at 100 calls/minute. The target (DESIGN.md) is at
most one call per 1,000 candles per symbol and never more than 100 calls in any minute. With
103 calls (102 symbols plus the session call) the last three wait for the first ones to age out
of the window, so about 60 s of the wall time is the ledger honouring the limit.

A second part drives the same server through Dagster: the one-day update of every symbol (one
run), then the same run again, which must cost no Breeze call because the rows are already in
the warehouse. Prints figures only.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from harness import bench_home

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs.jobs import OHLCV_JOB
from sensequant_assets.defs.partitions import one_day_all_symbols_tags
from sensequant_assets.sources.breeze import BreezeSource
from sensequant_assets.sources.rate_limit import CallLedger
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.fake_breeze import FakeBreeze

START, END = dt.date(2023, 1, 2), dt.date(2025, 12, 31)
RERUN_DAY = dt.date(2025, 12, 31)


def main() -> None:
    universe = load_universe()
    symbols = universe.default_symbols
    calendar = TradingCalendar()
    sessions = len(calendar.sessions(START, END))
    with tempfile.TemporaryDirectory() as tmp, FakeBreeze() as fake:
        ledger = CallLedger(Path(tmp) / "breeze_calls.sqlite", per_minute=100, per_day=5000)
        source = BreezeSource(
            api_key=fake.api_key,
            api_secret=fake.api_secret,
            session_token=fake.session_token,
            universe=universe,
            calendar=calendar,
            ledger=ledger,
            sdk_home=Path(tmp) / "sdk",
            base_url=fake.base_url,
        )
        started = time.perf_counter()
        rows = sum(len(source.fetch(symbol, START, END)) for symbol in symbols)
        wall = time.perf_counter() - started
        refused = [c for c in fake.calls if c.fault]
        stats = ledger.stats()

    print(f"range                         {START}..{END} ({sessions} NSE sessions)")
    print(f"symbols                       {len(symbols)}")
    print(f"rows fetched                  {rows}")
    print(f"history calls made            {source.calls_made}")
    print(f"calls per symbol              {source.calls_made / len(symbols):.2f}")
    print(f"peak calls in any 60 s (srv)  {fake.peak_calls_per_minute()}  (session + history)")
    print(f"peak calls in any 60 s (ledg) {stats.peak_minute_today}")
    print(f"max candles per reply         {fake.max_candles_per_reply()}")
    print(f"calls refused by the server   {len(refused)}")
    print(f"wall time                     {wall:.1f} s")
    rerun_through_dagster()


def rerun_through_dagster() -> None:
    """One day × all symbols as a Dagster run against the fake server, twice."""
    with FakeBreeze() as fake:
        env = {
            "SENSEQUANT_DATA_SOURCE": "breeze",
            "SENSEQUANT_HISTORY_START": "2025-12-01",
            "BREEZE_API_KEY": fake.api_key,
            "BREEZE_API_SECRET": fake.api_secret,
            "BREEZE_SESSION_TOKEN": fake.session_token,
            "BREEZE_BASE_URL": fake.base_url,
        }
        with bench_home(**env) as bench:
            symbols = bench.defs.resources["market_data"].universe.default_symbols
            tags = one_day_all_symbols_tags(RERUN_DAY, symbols)
            bench.execute(OHLCV_JOB, tags)
            first = len(fake.history_calls())
            bench.execute(OHLCV_JOB, tags)
            second = len(fake.history_calls()) - first
    print(f"\nDagster one-day update {RERUN_DAY}, {len(symbols)} symbols, one run each time")
    print(f"history calls, first run      {first}")
    print(f"history calls, re-run         {second}")
    print(f"peak calls in any 60 s (srv)  {fake.peak_calls_per_minute()}")


if __name__ == "__main__":
    main()
