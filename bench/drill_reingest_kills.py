"""Drill: SIGKILL `sensequant ingest` at random points of repeated re-ingests of stored data.

Run from the repository root (about 8 minutes on two shared cores):

    .venv/bin/python bench/drill_reingest_kills.py [--kills 50] [--symbols 2] [--seed 0]

A quarter of synthetic bars for a few symbols is stored once. Then the same ingest runs again and
again, each time SIGKILLed (the whole process group) at a random moment: half the kills at a
uniform time over a whole re-ingest, half the moment DuckDB's write-ahead log appears, which is
the write itself. After every kill the warehouse is reopened (replaying any WAL) and compared
with the stored quarter: every (symbol, date) exactly once, every value unchanged. The synthetic
source is deterministic, so a complete re-ingest writes the same rows it replaces.

``--stock`` runs the same drill with Dagster's stock DuckDB client swapped back in (two
autocommit statements), to show what the drill catches without the transaction.

Prints figures only; nothing is asserted (test_ingest_never_shrinks.py asserts the invariant).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sensequant_assets.calendar import TradingCalendar  # noqa: E402
from sensequant_assets_tests.fault_drills import (  # noqa: E402
    Exactness,
    child_env,
    ingest_command,
    make_dagster_home,
    partition_keys,
    start_ingest,
    warehouse_counts,
)

QUARTER = (dt.date(2024, 1, 1), dt.date(2024, 3, 31))
SYMBOLS = ("HDFCBANK", "INFY", "ITC", "RELIANCE", "SBIN", "TCS")


def content_digest(duckdb_path: Path) -> str:
    """SHA-256 of every stored row in a total order: equal iff nothing changed."""
    with duckdb.connect(str(duckdb_path)) as con:
        rows = con.execute(
            "select symbol, date, open, high, low, close, volume, source "
            "from market.ohlcv_daily order by symbol, date"
        ).fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def kill_at(proc: subprocess.Popen[bytes], delay: float) -> bool:
    """SIGKILL after ``delay`` seconds; False when the ingest had already finished."""
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return True


def kill_on_write(proc: subprocess.Popen[bytes], wal: Path, timeout: float = 120.0) -> bool:
    """SIGKILL the moment the warehouse's WAL exists; False if the ingest finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wal.exists():
            _kill_group(proc)
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.0005)
    _kill_group(proc)
    return True


STOCK_INGEST = """
import sys
from dagster_duckdb.io_manager import DuckDbClient
from sensequant_assets.defs import duckdb_io
duckdb_io.TransactionalDuckDbClient = DuckDbClient
from sensequant_assets.cli import main
sys.exit(main(sys.argv[1:]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--symbols", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stock", action="store_true", help="Dagster's two-statement client")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    symbols = SYMBOLS[: args.symbols]
    requested = partition_keys(symbols, TradingCalendar().sessions(*QUARTER))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sensequant-reingest-kills-") as tmp:
        work = Path(tmp)
        home, dagster_home = work / "home", make_dagster_home(work / "dagster_home")
        home.mkdir()
        env = child_env(home, dagster_home)
        command = ingest_command(symbols, *QUARTER)
        if args.stock:
            command = [sys.executable, "-c", STOCK_INGEST, *command[1:]]
        warehouse = home / "data" / "sensequant.duckdb"
        wal = warehouse.with_name(warehouse.name + ".wal")
        for _ in range(2):  # the first stores the quarter, the second times a re-ingest
            t0 = time.perf_counter()
            done = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True)
            one_ingest = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(f"the ingest failed:\n{done.stdout[-2000:]}")
        golden = content_digest(warehouse)
        print(
            f"stored {len(requested)} partitions ({len(symbols)} symbols x Q1 2024); "
            f"a re-ingest takes {one_ingest:.1f} s; {args.kills} killed re-ingests follow"
        )
        landed = in_write = lost = duplicated = changed = 0
        for attempt in range(args.kills):
            proc = start_ingest(command, env, work / f"kill_{attempt}.log")
            if attempt % 2:
                killed = kill_on_write(proc, wal)
                in_write += killed
            else:
                killed = kill_at(proc, rng.uniform(0.2, one_ingest))
            landed += killed
            exact = Exactness.of(warehouse_counts(warehouse), requested)
            lost += exact.missing
            duplicated += exact.duplicated
            changed += content_digest(warehouse) != golden
            print(f"  kill {attempt + 1:>2}: {'killed' if killed else 'finished first'}, "
                  f"rows missing {exact.missing}, duplicated {exact.duplicated}")  # fmt: skip
        final = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True)
        exact = Exactness.of(warehouse_counts(warehouse), requested)
    print("\nsummary")
    print(f"  re-ingests            {args.kills} ({landed} killed mid-way, {in_write} of them "
          f"as the WAL appeared)")  # fmt: skip
    print(f"  rows lost             {lost} (summed over every check)")
    print(f"  rows duplicated       {duplicated}")
    print(f"  checks with changes   {changed} of {args.kills}")
    print(f"  final re-ingest       exit {final.returncode}, missing {exact.missing}, "
          f"duplicated {exact.duplicated}")  # fmt: skip
    print(f"  total                 {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
