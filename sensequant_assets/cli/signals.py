"""`sensequant signals --date D [--score]`: the production model's calls for one session."""

from __future__ import annotations

import argparse

from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import SIGNALS_JOB
from sensequant_assets.live.production import SIGNALS_TABLE
from sensequant_assets.live.signals import format_calls
from sensequant_assets.orchestration.run_pool import RunSpec, execute
from sensequant_assets.orchestration.runs import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    cli_instance,
    parse_date,
)
from sensequant_assets.settings import Settings
from sensequant_assets.storage import Warehouse

PARTITION_TAG = "dagster/partition"


def cmd_signals(args: argparse.Namespace, settings: Settings) -> int:
    day = args.date
    if args.score:
        defs = build_defs(settings)
        partitions = defs.get_assets_def(SIGNALS_TABLE).partitions_def
        if partitions is None or day.isoformat() not in partitions.get_partition_keys():
            raise UsageError(f"{day} is not an NSE trading-day partition")
        spec = RunSpec(SIGNALS_JOB, f"{SIGNALS_TABLE} {day}", {PARTITION_TAG: day.isoformat()})
        outcome = execute(defs, cli_instance(), spec)
        for line in outcome.lines:
            print(line)
        if not outcome.success:
            return EXIT_FAILED
    stored = Warehouse.from_settings(settings).query(SIGNALS_TABLE, "date = ?", [day])
    if stored.empty:
        print(
            f"no signals stored for {day}: materialize {SIGNALS_TABLE} for {day} in Dagit, or "
            f"run `sensequant signals --date {day} --score`"
        )
        return EXIT_FAILED
    models = ", ".join(sorted(stored["model_id"].unique()))
    calls = stored["call"].value_counts()
    print(
        f"{day}: {len(stored)} symbol(s) scored by {models} "
        f"({calls.get(1, 0)} long, {calls.get(0, 0)} neutral, {calls.get(-1, 0)} short)"
    )
    for line in format_calls(stored):
        print(f"  {line}")
    return EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    signals = sub.add_parser("signals", help="print the production model's calls for a session")
    signals.add_argument("--date", required=True, type=parse_date, help="the session (YYYY-MM-DD)")
    signals.add_argument(
        "--score", action="store_true", help="score the session now (materialize the partition)"
    )
    signals.set_defaults(handler=cmd_signals)
