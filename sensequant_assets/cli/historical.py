"""``sensequant historical-run``: the whole pipeline for some symbols and dates, as Dagster runs."""

from __future__ import annotations

import argparse
import datetime as dt

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.orchestration.historical import HistoricalRequest, prepare, run_historical
from sensequant_assets.orchestration.runs import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    cli_instance,
    parse_date,
)
from sensequant_assets.partition_history import extend_to
from sensequant_assets.settings import Settings
from sensequant_assets.universe import INDEX_SYMBOL, universe_for


def cmd_historical_run(args: argparse.Namespace, settings: Settings) -> int:
    if args.benchmark.strip().upper() != INDEX_SYMBOL:
        raise UsageError(
            f"--benchmark {args.benchmark}: only {INDEX_SYMBOL} is available (the "
            "nifty50_benchmark asset)"
        )
    if args.end_date < args.start_date:
        raise UsageError(f"--end-date {args.end_date} is before --start-date {args.start_date}")
    if args.start_date > dt.date.today():
        raise UsageError(f"--start-date {args.start_date} is in the future")
    universe = universe_for(settings)
    symbols = tuple(universe.resolve(s for s in args.symbols.split(",") if s.strip()))
    if not symbols:
        raise UsageError("--symbols is empty")
    request = HistoricalRequest(
        symbols, args.start_date, args.end_date, args.skip_fetch, args.dryrun,
        args.run_stress_tests,
    )  # fmt: skip
    request, settings = prepare(request, settings)
    partitioned = set(settings.symbol_list or universe.default_symbols)
    outside = [s for s in request.symbols if s not in partitioned]
    if outside:
        raise UsageError(
            f"{', '.join(outside)} not in the partitioned universe; add them to SENSEQUANT_SYMBOLS"
        )
    settings = extend_to(settings, request.start)
    outcome = run_historical(request, settings, cli_instance())
    layout = ArtifactLayout.of(settings)
    candidate = layout.candidate(outcome.candidate_id)
    audit = layout.audit(candidate)
    print("\nsummary")
    print(f"  run id          {outcome.candidate_id}" + ("  (dry run)" if request.dryrun else ""))
    print(f"  status          {'succeeded' if outcome.succeeded else 'FAILED'}")
    if outcome.failed_phase:
        print(f"  failed phase    {outcome.failed_phase}: {outcome.error}")
    else:
        print(f"  recommendation  {outcome.recommendation}")
        print(f"  registry        {outcome.registry_status}")
        print(f"  candidate       {candidate.root}")
        print(f"  manifest        {audit.manifest}")
    print(f"  briefing        {audit.briefing_md}")
    print(f"  dagster runs    {len(outcome.dagster_runs)} (tag sensequant/historical_run)")
    print("next steps")
    if outcome.failed_phase:
        print("  fix the cause above and run the same command again")
    elif request.dryrun:
        print(f"  dry run only: nothing was registered for production (home {settings.home})")
    else:
        print(f"  read the briefing, then `sensequant candidates approve {outcome.candidate_id} "
              "--by <name>` or `reject ... --reason <text>`")  # fmt: skip
    return EXIT_OK if outcome.succeeded else EXIT_FAILED


def add_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "historical-run",
        help="ingest, train, validate, test, audit and brief a candidate for symbols and dates",
    )
    run.add_argument("--symbols", required=True, help="comma-separated NSE symbols")
    run.add_argument("--start-date", required=True, type=parse_date)
    run.add_argument("--end-date", required=True, type=parse_date)
    run.add_argument("--skip-fetch", action="store_true", help="use stored data, fetch nothing")
    run.add_argument(
        "--dryrun",
        action="store_true",
        help="tiny synthetic sample in a separate home; production state untouched",
    )
    run.add_argument("--run-stress-tests", action="store_true", help="add the stress tests")
    run.add_argument("--benchmark", default=INDEX_SYMBOL, help="benchmark index (NIFTY50)")
    run.set_defaults(handler=cmd_historical_run)
