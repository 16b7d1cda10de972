"""The ``sensequant`` command.

Every command that materializes data runs the same Dagster jobs Dagit runs, on the instance
named by ``DAGSTER_HOME`` (an ephemeral one when it is unset), so what a cron job did is
visible in Dagit afterwards. Exit codes: 0 success, 1 a run failed (or a file operation), 2
bad arguments, configuration or input files. A known failure prints one ``error:`` line on
stderr, never a traceback.

This module parses the arguments and holds ``ingest``, ``train`` and ``universe``; every other
subcommand is a module of its own here that adds its parser (``candidates``, ``historical``,
``prune``, ``signals``). The runs are launched through ``sensequant_assets.orchestration``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.cli import candidates, historical, prune, signals
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import BENCHMARK_JOB, OHLCV_JOB, TEACHER_JOB
from sensequant_assets.defs.partitions import (
    date_range_tags,
    one_symbol_range_tags,
    teacher_blocks,
)
from sensequant_assets.defs.tags import allow_tags
from sensequant_assets.inputs import check_inputs, read_input
from sensequant_assets.orchestration.run_pool import RunPool, RunSpec
from sensequant_assets.orchestration.run_progress import PhaseProgress, run_phase
from sensequant_assets.orchestration.runs import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    PROGRESS,
    QUIET,
    UsageError,
    cli_instance,
    parse_date,
)
from sensequant_assets.partition_history import extend_to
from sensequant_assets.settings import Settings, SettingsError, load_settings
from sensequant_assets.storage import Warehouse
from sensequant_assets.training import TrainingWindow, check_future_data
from sensequant_assets.universe import (
    INDEX_SYMBOL,
    UnknownSymbolError,
    load_universe,
    scrip_master_codes,
    universe_for,
)


def _sessions(settings: Settings, start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise UsageError(f"--end-date {end} is before --start-date {start}")
    calendar = TradingCalendar.from_file(settings.holiday_file)
    sessions = [d for d in calendar.sessions(start, end) if d <= dt.date.today()]
    if not sessions:
        raise UsageError(f"no NSE trading day between {start} and {end} (up to today)")
    return sessions


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    universe = universe_for(settings)
    symbols = universe.resolve(s for s in args.symbols.split(",") if s.strip())
    partition_symbols = set(settings.symbol_list or universe.default_symbols)
    outside = [s for s in symbols if s not in partition_symbols]
    if outside:
        raise UsageError(
            f"{', '.join(outside)} not in the partitioned universe; add them to SENSEQUANT_SYMBOLS"
        )
    sessions = _sessions(settings, args.start_date, args.end_date)
    settings = extend_to(settings, sessions[0])
    bounds = (sessions[0], sessions[-1])
    defs = build_defs(settings)
    instance = cli_instance()
    print(
        f"ingesting {len(symbols)} symbol(s), {len(sessions)} session(s) "
        f"{sessions[0]}..{sessions[-1]} from {settings.data_source}"
    )
    allow = allow_tags(args.allow_shrink, args.allow_missing_sessions)
    specs = [
        RunSpec(
            OHLCV_JOB,
            f"ohlcv_daily {symbol}",
            {**one_symbol_range_tags(symbol, *bounds), **allow},
            units=len(sessions),
        )
        for symbol in symbols
    ]
    if args.benchmark:
        specs.append(
            RunSpec(
                BENCHMARK_JOB,
                "nifty50_benchmark",
                {**date_range_tags(*bounds), **allow},
                units=len(sessions),
            )
        )
    ok = _issue(settings, defs, instance, specs, "ingest", "partitions")
    print(f"warehouse: {settings.warehouse_location}")
    return EXIT_OK if ok else EXIT_FAILED


def _issue(
    settings: Settings,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    specs: list[RunSpec],
    phase: str,
    unit: str,
) -> bool:
    """Issue every run (``SENSEQUANT_RUN_WORKERS`` at once), printing a line per run and the
    phase's progress."""
    with RunPool(settings, defs, instance, settings.run_workers) as pool:
        outcomes = run_phase(pool, specs, PhaseProgress(), phase, unit)
    return all(outcome.success for outcome in outcomes)


def _trainable(settings: Settings, symbols: Sequence[str], windows: Sequence[str]) -> list[str]:
    """Windows whose label horizon ends inside every symbol's stored data."""
    warehouse = Warehouse.from_settings(settings)
    latest = [warehouse.last_date("ohlcv_daily", s) for s in symbols]
    if any(day is None for day in latest):
        raise UsageError("some symbols have no stored bars: run `sensequant ingest` first")
    last = min(d for d in latest if d is not None)
    if (
        settings.label_reference == "market"
        and warehouse.last_date("nifty50_benchmark", INDEX_SYMBOL) is None
    ):
        raise UsageError(
            "market-relative labels need the NIFTY 50 benchmark: run `sensequant ingest` "
            "without --no-benchmark, or set SENSEQUANT_LABEL_REFERENCE=absolute"
        )
    calendar = TradingCalendar.from_file(settings.holiday_file)
    keep = []
    for key in windows:
        window = TrainingWindow.from_span_key(symbols[0], key)
        if check_future_data(window, calendar, settings.label_horizon, last) is None:
            keep.append(key)
    return keep


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    defs = build_defs(settings)
    teacher = defs.resolve_assets_def("teacher_model")
    partitions = teacher.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    windows = partitions.get_partitions_def_for_dimension("train_window").get_partition_keys()
    known = partitions.get_partitions_def_for_dimension("symbol").get_partition_keys()
    universe = universe_for(settings)
    symbols = universe.resolve(args.symbols.split(",")) if args.symbols else known
    outside = [s for s in symbols if s not in known]
    if outside:
        raise UsageError(
            f"{', '.join(outside)} not in the partitioned universe (SENSEQUANT_SYMBOLS)"
        )
    if args.windows:
        windows = _trainable(settings, symbols, windows)[-args.windows :]
    if not windows:
        raise UsageError("no training window fits the stored data; ingest more history first")
    instance = cli_instance()
    print(f"training teachers: {len(symbols)} symbol(s) x {len(windows)} window(s)")
    trained = set() if args.retrain else instance.get_materialized_partitions(teacher.key)
    todo = {}
    for symbol in symbols:
        todo[symbol] = [w for w in windows if f"{symbol}|{w}" not in trained]
        if not todo[symbol]:
            print(f"  teacher_model {symbol:<18} all {len(windows)} window(s) already trained")
    blocks = teacher_blocks(known, windows, todo)
    specs = [
        RunSpec(TEACHER_JOB, block.label, block.tags, PROGRESS, block.partitions)
        for block in blocks
    ]
    ok = _issue(settings, defs, instance, specs, "teachers", "windows")
    if not ok:
        print("some windows failed: fix the cause and re-run; trained windows are kept")
        return EXIT_FAILED
    student = defs.resolve_implicit_global_asset_job_def()
    result = student.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey("student_model")],
        run_config=QUIET,
        raise_on_error=False,
    )
    if not result.success:
        print("student_model FAILED")
        return EXIT_FAILED
    metadata = result.asset_materializations_for_node("student_model")[0].metadata
    print(
        f"student_model ok: candidate {metadata['candidate'].value}\n"
        f"  test accuracy {metadata['test_accuracy'].value:.3f} vs majority "
        f"{metadata['majority_baseline_accuracy'].value:.3f}, yesterday's direction "
        f"{metadata['yesterday_baseline_accuracy'].value:.3f}"
    )
    return EXIT_OK


def cmd_universe_codes(args: argparse.Namespace, settings: Settings) -> int:
    shipped = load_universe()
    codes = read_input("--master", Path(args.master), scrip_master_codes)
    symbols = shipped.default_symbols if not args.symbols else args.symbols.split(",")
    changed = 0
    for symbol in symbols:
        symbol = symbol.strip().upper()
        new = codes.get(symbol, "")
        old = shipped.isec_code(symbol) if symbol in shipped else ""
        flag = "" if new == old else "  <- differs" if new else "  <- not in master"
        changed += bool(flag)
        print(f"{symbol:<12} shipped {old or '-':<8} master {new or '-':<8}{flag}")
    print(
        f"{changed} of {len(symbols)} symbol(s) differ; use SENSEQUANT_SCRIP_MASTER={args.master}"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sensequant", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="materialize OHLCV (+ NIFTY 50) for symbols and dates")
    ingest.add_argument("--symbols", required=True, help="comma-separated NSE symbols")
    ingest.add_argument("--start-date", required=True, type=parse_date)
    ingest.add_argument("--end-date", required=True, type=parse_date)
    ingest.add_argument(
        "--no-benchmark", dest="benchmark", action="store_false", help="skip the NIFTY 50 benchmark"
    )
    ingest.add_argument(
        "--allow-shrink",
        action="store_true",
        help="let the runs delete stored sessions the source no longer returns",
    )
    ingest.add_argument(
        "--allow-missing-sessions",
        action="store_true",
        help="mark NSE sessions the source has no row for as done (recorded, not retried)",
    )
    ingest.set_defaults(handler=cmd_ingest)

    train = sub.add_parser(
        "train", help="train missing or failed teacher windows, then the student"
    )
    train.add_argument("--symbols", help="comma-separated symbols (default: all partitions)")
    train.add_argument(
        "--windows", type=int, help="only the latest N windows the stored data can label"
    )
    train.add_argument(
        "--retrain", action="store_true", help="retrain windows that are already trained"
    )
    train.set_defaults(handler=cmd_train)

    universe = sub.add_parser("universe", help="inspect the instrument universe")
    universe_sub = universe.add_subparsers(dest="universe_command", required=True)
    codes = universe_sub.add_parser(
        "codes", help="compare shipped ICICI codes with an NSEScripMaster.txt"
    )
    codes.add_argument("--master", required=True, help="path to NSEScripMaster.txt")
    codes.add_argument("--symbols", help="comma-separated symbols (default: the universe)")
    codes.set_defaults(handler=cmd_universe_codes)
    candidates.add_parser(sub)
    historical.add_parser(sub)
    prune.add_parser(sub)
    signals.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        settings = load_settings()
        check_inputs(settings)
        return int(args.handler(args, settings))
    except (SettingsError, UsageError, UnknownSymbolError, ValueError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _one_line(exc: BaseException) -> str:
    """``exc``'s message on one line: a multi-line one (``invalid configuration:`` and an
    indented line per variable) becomes ``head: first; second``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) < 2:
        return lines[0] if lines else type(exc).__name__
    head = lines[0] if lines[0].endswith(":") else f"{lines[0]}:"
    return f"{head} {'; '.join(lines[1:])}"
