"""The historical run: ingest → teachers → student → validation → tests → audit → briefing.

Each phase is a Dagster run on the configured instance (Dagit shows them; filter by the tag
``sensequant/historical_run=<candidate id>``): one ingest run per symbol plus the benchmark
(and, with a headlines file, one ``sentiment_snapshots`` run per symbol),
teacher runs of up to 8 neighbouring symbols over the windows the dates can label (several at
once, ``run_pool``), then ``candidate_job`` for the
student and every later stage, scoped to the run's symbols and dates by run tags. The
candidate id is reserved up front (for a token every phase's runs carry as
``sensequant/owner``, so no other run can take it), so a failure in any phase still gets a
partial briefing in ``release/audit_<id>/`` and a ``failed`` entry in the registry.

``--dryrun`` runs the same phases on a tiny synthetic sample (at most two symbols, at most the
last year of the range) in a home of its own under ``data/dryrun/``: production data, models
and the registry are never touched.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg
from pydantic import SecretStr

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import (
    BENCHMARK_JOB,
    CANDIDATE_JOB,
    OHLCV_JOB,
    SENTIMENT_JOB,
    STAGE_PHASES,
    TEACHER_JOB,
)
from sensequant_assets.defs.partitions import (
    date_range_tags,
    one_symbol_range_tags,
    teacher_blocks,
)
from sensequant_assets.defs.tags import DRYRUN_TAG, HISTORICAL_RUN_TAG, OWNER_TAG, scope_tags
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.features import WARMUP_SESSIONS
from sensequant_assets.orchestration.run_pool import RunPool, RunSpec, RunWorkerDied
from sensequant_assets.orchestration.run_progress import PhaseProgress, run_phase
from sensequant_assets.orchestration.runs import PROGRESS, QUIET, step_failure
from sensequant_assets.registry import StateManager
from sensequant_assets.registry.reservation import reserve_new
from sensequant_assets.release.stage import record_failed_candidate
from sensequant_assets.settings import EMBEDDED, Settings
from sensequant_assets.storage import Warehouse
from sensequant_assets.training import TrainingWindow, window_data_range
from sensequant_assets.training.resources import Training
from sensequant_assets.universe import INDEX_SYMBOL, load_universe

DRYRUN_SYMBOLS = 2
DRYRUN_DAYS = 365


class PhaseFailed(Exception):
    def __init__(self, phase: str, message: str):
        super().__init__(f"{phase}: {message}")
        self.phase = phase
        self.message = message


@dataclass(frozen=True)
class HistoricalRequest:
    symbols: tuple[str, ...]
    start: dt.date
    end: dt.date
    skip_fetch: bool = False
    dryrun: bool = False
    run_stress_tests: bool = False


@dataclass
class HistoricalOutcome:
    candidate_id: str
    settings: Settings
    succeeded: bool
    failed_phase: str | None = None
    error: str | None = None
    recommendation: str | None = None
    registry_status: str | None = None
    dagster_runs: list[str] = field(default_factory=list)


def prepare(request: HistoricalRequest, settings: Settings) -> tuple[HistoricalRequest, Settings]:
    """The request and settings the run uses: a dry run shrinks both and moves home."""
    overrides: dict[str, object] = {}
    if request.run_stress_tests:
        overrides["run_stress_tests"] = True
    if request.dryrun:
        start = max(request.start, request.end - dt.timedelta(days=DRYRUN_DAYS))
        request = HistoricalRequest(
            request.symbols[:DRYRUN_SYMBOLS], start, request.end, False, True,
            request.run_stress_tests,
        )  # fmt: skip
        overrides |= {
            "home": ArtifactLayout(settings.home).dryrun_home(dt.datetime.now()),
            "data_source": "synthetic",
            "history_start": min(settings.history_start, start),
            "warehouse_uri": None,  # Delta tables move into the dry run's home, like DuckDB's
            "registry_url": SecretStr(EMBEDDED),  # and so does the registry: never production's
        }
    if overrides:
        settings = settings.model_copy(update=overrides)
    return request, settings


PARTITIONS = "partitions"


@dataclass(frozen=True)
class _Run:
    """What every phase of one historical run shares."""

    request: HistoricalRequest
    settings: Settings
    candidate_id: str
    defs: dg.Definitions
    instance: dg.DagsterInstance
    tags: dict[str, str]
    say: Callable[[str], None]
    pool: RunPool
    progress: PhaseProgress

    def issue(self, phase: str, specs: list[RunSpec], unit: str) -> list[str]:
        """Issue the phase's runs (several at once when the pool allows); stop at a failure.

        Progress counts ``unit`` (each spec's ``units``)."""
        try:
            outcomes = run_phase(self.pool, specs, self.progress, phase, unit, True)
        except RunWorkerDied as died:
            raise PhaseFailed(phase, str(died)) from None
        for outcome in outcomes:
            if not outcome.success:
                raise PhaseFailed(
                    phase, f"{outcome.spec.label} failed (run {outcome.run_id}, see it in Dagit)"
                )
        return [outcome.run_id for outcome in outcomes]


def run_historical(
    request: HistoricalRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    say: Callable[[str], None] = print,
    progress: PhaseProgress | None = None,
) -> HistoricalOutcome:
    """Run every phase; never raises for a failed phase (the outcome says what failed).

    ``progress`` draws the phases' bars (default: live on a terminal, lines otherwise)."""
    layout = ArtifactLayout.of(settings)
    owner = f"historical-run {uuid.uuid4().hex}"
    candidate_id = reserve_new(StateManager(layout.registry), layout, owner)
    outcome = HistoricalOutcome(candidate_id, settings, succeeded=False)
    tags = {
        HISTORICAL_RUN_TAG: candidate_id,
        DRYRUN_TAG: str(request.dryrun).lower(),
        OWNER_TAG: owner,
    }
    defs = build_defs(settings)
    with RunPool(settings, defs, instance, settings.run_workers) as pool:
        shown = progress or PhaseProgress(say)
        run = _Run(request, settings, candidate_id, defs, instance, tags, say, pool, shown)
        _run_phases(run, outcome)
    if outcome.failed_phase is not None:
        _record_failure(outcome, say)
        return outcome
    record = StateManager(layout.registry).get_candidate_run(candidate_id)
    outcome.succeeded = True
    outcome.recommendation = record.recommendation
    outcome.registry_status = record.status
    return outcome


def _run_phases(run: _Run, outcome: HistoricalOutcome) -> None:
    request, settings, say = run.request, run.settings, run.say
    phases = [("ingest", _ingest), ("teachers", _teachers), ("candidate", _candidate)]
    say(
        f"historical run {run.candidate_id}: {len(request.symbols)} symbol(s) "
        f"{request.start}..{request.end}, source {settings.data_source}"
        + (" (dry run)" if request.dryrun else "")
    )
    try:
        for number, (name, phase) in enumerate(phases, start=1):
            say(f"[{number}/{len(phases)}] {name}")
            started = time.perf_counter()
            outcome.dagster_runs += phase(run)
            say(f"      {name} done in {time.perf_counter() - started:.1f} s")
    except PhaseFailed as failed:
        outcome.failed_phase, outcome.error = failed.phase, failed.message


def _ingest(run: _Run) -> list[str]:
    request, settings, say, tags = run.request, run.settings, run.say, run.tags
    calendar = TradingCalendar.from_file(settings.holiday_file)
    sessions = calendar.sessions(request.start, min(request.end, dt.date.today()))
    if not sessions:
        raise PhaseFailed("ingest", f"no NSE session between {request.start} and {request.end}")
    first, last = sessions[0], sessions[-1]
    # Sentiment is scored from the local headlines file, so --skip-fetch scores it too: the
    # student reads sentiment_snapshots, which must match the configured file.
    sentiment = [
        RunSpec(
            SENTIMENT_JOB,
            f"sentiment_snapshots {symbol}",
            {**tags, **one_symbol_range_tags(symbol, first, last)},
            units=len(sessions),
        )
        for symbol in request.symbols
        if settings.sentiment_headlines_file is not None
    ]
    if request.skip_fetch:
        _check_stored(request, settings, sessions, say)
        return run.issue("ingest", sentiment, PARTITIONS) if sentiment else []
    specs = [
        RunSpec(
            OHLCV_JOB,
            f"ohlcv_daily {symbol}",
            {**tags, **one_symbol_range_tags(symbol, first, last)},
            units=len(sessions),
        )
        for symbol in request.symbols
    ]
    benchmark = {**tags, **date_range_tags(first, last)}
    specs.append(RunSpec(BENCHMARK_JOB, "nifty50_benchmark", benchmark, units=len(sessions)))
    return run.issue("ingest", [*specs, *sentiment], PARTITIONS)


def _check_stored(
    request: HistoricalRequest,
    settings: Settings,
    sessions: Sequence[dt.date],
    say: Callable[[str], None],
) -> None:
    """--skip-fetch: every symbol and the benchmark must already cover every session."""
    warehouse = Warehouse.from_settings(settings)
    missing = []
    for table, symbol in [*(("ohlcv_daily", s) for s in request.symbols),
                          ("nifty50_benchmark", INDEX_SYMBOL)]:  # fmt: skip
        stored = warehouse.bars(table, symbol, sessions[0], sessions[-1])
        have = {d.date() for d in stored["date"]} if not stored.empty else set()
        gaps = [d for d in sessions if d not in have]
        if gaps:
            missing.append(
                f"{symbol} lacks {len(gaps)} of {len(sessions)} sessions (first {gaps[0]})"
            )
    if missing:
        raise PhaseFailed(
            "ingest",
            "--skip-fetch needs stored data for every session: "
            + "; ".join(missing)
            + ". Run without --skip-fetch (or `sensequant ingest`) first",
        )
    say(f"      --skip-fetch: stored data covers all {len(sessions)} sessions")


def _teachers(run: _Run) -> list[str]:
    request, settings, defs, say = run.request, run.settings, run.defs, run.say
    teacher = defs.resolve_assets_def("teacher_model")
    partitions = teacher.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    ordered = partitions.get_partitions_def_for_dimension("train_window").get_partition_keys()
    calendar = TradingCalendar.from_file(settings.holiday_file)
    windows = []
    for key in ordered:
        first, last = window_data_range(
            TrainingWindow.from_span_key(request.symbols[0], key),
            calendar,
            WARMUP_SESSIONS,
            settings.label_horizon,
        )
        if first >= request.start and last <= request.end:
            windows.append(key)
    if not windows:
        raise PhaseFailed(
            "teachers",
            f"no {settings.window_days}-day training window (plus {WARMUP_SESSIONS} warm-up and "
            f"{settings.label_horizon} label sessions) fits {request.start}..{request.end}",
        )
    say(f"      {len(request.symbols)} symbol(s) x {len(windows)} window(s)")
    symbols = partitions.get_partitions_def_for_dimension("symbol").get_partition_keys()
    blocks = teacher_blocks(symbols, ordered, {symbol: windows for symbol in request.symbols})
    # a live bar is the progress; the runs' own lines would tear it from the worker processes
    config = QUIET if run.progress.live else PROGRESS
    specs = [
        RunSpec(TEACHER_JOB, b.label, {**run.tags, **b.tags}, config, b.partitions) for b in blocks
    ]
    return run.issue("teachers", specs, "windows")


def _candidate(run: _Run) -> list[str]:
    request, say = run.request, run.say
    run.pool.close()  # the workers' memory is better spent on the student
    job = run.defs.resolve_job_def(CANDIDATE_JOB)
    scope = scope_tags(run.candidate_id, request.symbols, request.start, request.end)
    result = job.execute_in_process(
        instance=run.instance, tags={**run.tags, **scope}, run_config=PROGRESS, raise_on_error=False
    )
    for event in result.all_events:
        if event.is_step_success and event.step_key in STAGE_PHASES:
            say(f"      ✓ {STAGE_PHASES[event.step_key]}")
    if not result.success:
        step, message = step_failure(next(e for e in result.all_events if e.is_step_failure))
        raise PhaseFailed(STAGE_PHASES.get(step, "candidate"), message)
    return [result.run_id]


def _record_failure(outcome: HistoricalOutcome, say: Callable[[str], None]) -> None:
    """Partial briefing with what exists, and a failed registry entry."""
    settings = outcome.settings
    evaluation = Evaluation(
        Training(
            settings,
            load_universe(settings.scrip_master),
            TradingCalendar.from_file(settings.holiday_file),
        )
    )
    record_failed_candidate(
        evaluation, outcome.candidate_id, outcome.failed_phase or "unknown", outcome.error or ""
    )
    say(f"FAILED in phase {outcome.failed_phase}: {outcome.error}")
