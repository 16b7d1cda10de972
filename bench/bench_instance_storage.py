"""What one backfill run costs on each instance storage: SQLite, stock Postgres, pooled Postgres.

Run from the repository root:

    .venv/bin/python bench/bench_instance_storage.py [--sessions N] [--repeat R]

Each configuration executes the same `ohlcv_daily` run (one symbol × N trading days from the
synthetic source, as one run of a Dagit backfill) R times on a fresh instance and reports the
median time per partition and per event. Postgres is a throwaway cluster on 127.0.0.1 (the
test suite's), so the figures include real connection set-up and authentication.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from sensequant_assets.defs import build_defs  # noqa: E402
from sensequant_assets.defs.jobs import OHLCV_JOB  # noqa: E402
from sensequant_assets.defs.partitions import one_symbol_range_tags  # noqa: E402
from sensequant_assets.settings import get_settings, load_settings  # noqa: E402
from sensequant_assets_tests.services import postgres_server  # noqa: E402

DEPLOYED = "deploy/dagster.yaml"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
START, END = dt.date(2023, 1, 2), dt.date(2025, 12, 31)
SYMBOLS = ("TCS", "INFY", "RELIANCE", "HDFCBANK", "ICICIBANK", "SBIN", "ITC", "LT")


def _stock_postgres_instance() -> dict:
    """deploy/dagster.yaml with dagster-postgres's own storages instead of the pooled ones."""
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    database = config["run_storage"]["config"]
    for name in ("run_storage", "event_log_storage", "schedule_storage"):
        del config[name]
    config["storage"] = {"postgres": database}
    return config


def _measure(
    label: str, instance_yaml: dict, env: dict[str, str], args: argparse.Namespace
) -> None:
    with tempfile.TemporaryDirectory(prefix="sensequant-bench-") as tmp:
        home = Path(tmp)
        (home / "dagster_home").mkdir()
        (home / "dagster_home" / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
        os.environ.update(env | {"SENSEQUANT_HOME": str(home),
                                 "DAGSTER_HOME": str(home / "dagster_home")})  # fmt: skip
        get_settings.cache_clear()
        defs = build_defs(load_settings())
        market_data = defs.resources["market_data"]
        sessions = market_data.calendar.sessions(START, END)[: args.sessions]
        job = defs.resolve_job_def(OHLCV_JOB)
        times, events = [], 0
        with dg.DagsterInstance.get() as instance:
            for symbol in SYMBOLS[: args.repeat]:
                tags = one_symbol_range_tags(symbol, sessions[0], sessions[-1])
                started = time.perf_counter()
                result = job.execute_in_process(instance=instance, tags=tags, run_config=QUIET)
                times.append(time.perf_counter() - started)
                events = len(instance.all_logs(result.run_id))
        median = statistics.median(times)
        per_partition, per_event = 1000 * median / len(sessions), 1000 * median / events
        print(f"  {label:<34} {median:6.1f} s/run  {per_partition:5.1f} ms/partition"
              f"  {per_event:5.1f} ms/event  ({events} events/run)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=739, help="trading days per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (≤ 8)")
    args = parser.parse_args()
    base = {"SENSEQUANT_HISTORY_START": START.isoformat()}
    print(f"one ohlcv_daily run = 1 symbol x {args.sessions} sessions; median of {args.repeat}")
    sqlite = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    _measure("SQLite (dagster.yaml)", sqlite, base, args)
    with postgres_server() as server:
        for label, config in (
            ("Postgres, dagster-postgres stock", _stock_postgres_instance()),
            (
                "Postgres, pooled (deploy/)",
                yaml.safe_load((ROOT / "deploy/dagster.yaml").read_text()),
            ),
        ):
            database = f"bench_{uuid.uuid4().hex[:12]}"
            server.create_database(database)
            _measure(label, config, base | server.env(database), args)


if __name__ == "__main__":
    main()
