"""Training assets (group ``training``): one LightGBM teacher per symbol × window.

A run may cover many windows (a backfill groups them by window, all symbols at once), so the
asset records each window's outcome as its own event: a materialization for a trained
teacher, an observation with the reason for a skipped one, and a failure record on disk for a
failed one. Skipped and failed windows stay unmaterialized, so "backfill missing" retrains
exactly those. Heavy data is read straight from DuckDB rather than through the IO manager,
back-adjusted for the listed splits and bonuses (``Training.warehouse``), so every stage after
ingestion, validation and stress tests included, reads the same adjusted bars.
"""

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import dagster as dg
import pandas as pd

from sensequant_assets.artifacts import ArtifactLayout, CandidateLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs.tags import CandidateScope, candidate_owner
from sensequant_assets.features import WARMUP_SESSIONS, LabelSpec
from sensequant_assets.quality.corporate_actions import AdjustedWarehouse, load_corporate_actions
from sensequant_assets.registry import StateManager
from sensequant_assets.registry.reservation import CandidateTakenError, reserve, reserve_new
from sensequant_assets.settings import Settings
from sensequant_assets.storage import Warehouse
from sensequant_assets.training import (
    TrainingWindow,
    check_future_data,
    diagnostics,
    span_key,
    window_data_range,
    window_spans,
)
from sensequant_assets.training.candidate import CandidateOutcome, build_candidate
from sensequant_assets.training.progress import ProgressTracker
from sensequant_assets.training.rewards import RewardConfig
from sensequant_assets.training.student import StudentConfig
from sensequant_assets.training.teacher import (
    TeacherConfig,
    TeacherRun,
    failure_record,
    train_teacher,
    write_record,
)
from sensequant_assets.universe import INDEX_SYMBOL, Universe

GROUP = "training"
BENCHMARK_TABLE = "nifty50_benchmark"


@dataclass
class Training:
    """What training assets share, built once per process from the settings."""

    settings: Settings
    universe: Universe
    calendar: TradingCalendar

    @cached_property
    def layout(self) -> ArtifactLayout:
        return ArtifactLayout.of(self.settings)

    @cached_property
    def warehouse(self) -> AdjustedWarehouse:
        """The curated bars as features and labels read them: back-adjusted."""
        return AdjustedWarehouse(
            Warehouse.from_settings(self.settings), load_corporate_actions(self.settings)
        )

    @cached_property
    def teacher_config(self) -> TeacherConfig:
        s = self.settings
        label = LabelSpec(
            horizon=s.label_horizon,
            mode=s.label_mode,
            reference=s.label_reference,
            threshold=s.label_threshold,
            vol_multiplier=s.label_vol_multiplier,
        )
        return TeacherConfig(label=label, min_samples=s.min_samples)

    @cached_property
    def student_config(self) -> StudentConfig:
        return StudentConfig(
            distill_alpha=self.settings.distill_alpha,
            embargo_sessions=self.settings.label_horizon,
        )

    def market_closes(
        self, first: dt.date, last: dt.date, read: pd.Series | None = None
    ) -> pd.Series | None:
        """Benchmark closes by date over ``[first, last]`` when labels are market-relative;
        sliced from ``read`` (closes already read over a wider span) when given."""
        if self.teacher_config.label.reference != "market":
            return None
        stored = read if read is not None else self.benchmark_closes(first, last)
        closes = stored.loc[pd.Timestamp(first) : pd.Timestamp(last)]
        if closes.empty:
            raise LookupError(
                f"market-relative labels need {INDEX_SYMBOL} closes from {first} to {last}: "
                "materialize nifty50_benchmark over those dates first, or set "
                "SENSEQUANT_LABEL_REFERENCE=absolute"
            )
        return closes

    def benchmark_closes(self, first: dt.date, last: dt.date) -> pd.Series:
        """Stored NIFTY 50 closes by date over ``[first, last]``; empty when none are stored."""
        rows = self.warehouse.bars(BENCHMARK_TABLE, INDEX_SYMBOL, first, last)
        if rows.empty:
            return pd.Series(dtype=float, index=pd.DatetimeIndex([], name="date"), name="close")
        return rows.set_index("date")["close"]

    @property
    def sentiment_enabled(self) -> bool:
        return self.settings.sentiment_headlines_file is not None

    def sentiment_frame(
        self, where: str = "true", params: list[object] | None = None
    ) -> pd.DataFrame | None:
        """Stored ``sentiment_snapshots`` rows, or None when sentiment is off."""
        if not self.sentiment_enabled:
            return None
        frame = self.warehouse.query("sentiment_snapshots", where, params or [])
        if frame.empty:
            return pd.DataFrame(
                {
                    "date": pd.Series(dtype="datetime64[ns]"),
                    "symbol": pd.Series(dtype=str),
                    "sentiment_score": pd.Series(dtype=float),
                }
            )
        return frame[["date", "symbol", "sentiment_score"]]

    def sentiment_of(self, symbol: str, first: dt.date, last: dt.date) -> pd.Series | None:
        """Daily scores of one symbol by date (an empty Series: no headline stored yet)."""
        frame = self.sentiment_frame("symbol = ? and date between ? and ?", [symbol, first, last])
        if frame is None:
            return None
        return frame.set_index("date")["sentiment_score"]

    def reserve_candidate(
        self, context: dg.AssetExecutionContext, candidate_id: str | None
    ) -> CandidateLayout:
        """The bundle of ``candidate_id`` (or of a fresh id), reserved for the run's owner: a
        run given an id another run holds fails here, before writing anything."""
        run = context.run
        owner = candidate_owner(run.tags, run.run_id, run.root_run_id)
        registry = StateManager(self.layout.registry)
        if candidate_id is None:
            return self.layout.candidate(reserve_new(registry, self.layout, owner))
        candidate = self.layout.candidate(candidate_id)
        try:
            reserve(registry, candidate_id, owner)
        except CandidateTakenError as exc:
            raise dg.Failure(str(exc)) from None
        return candidate

    def build_candidate(
        self, candidate: CandidateLayout, window_labels: list[str], bars: pd.DataFrame
    ) -> CandidateOutcome:
        """Distil the stored teachers of ``window_labels`` into a student under ``candidate``."""
        dates = pd.to_datetime(bars["date"])
        market = self.market_closes(dates.min().date(), dates.max().date())
        return build_candidate(
            candidate,
            self.layout.models / "teachers",
            window_labels,
            bars,
            self.teacher_config.label,
            self.student_config,
            self.reward_config,
            self.sentiment_frame(),
            market,
        )

    @cached_property
    def reward_config(self) -> RewardConfig:
        s = self.settings
        return RewardConfig(
            enabled=s.reward_loop_enabled,
            horizon_days=s.label_horizon,
            clip_min=s.reward_clip_min,
            clip_max=s.reward_clip_max,
            weighting_mode=s.reward_weighting_mode,
            weighting_scale=s.reward_weighting_scale,
            ab_testing_enabled=s.reward_ab_testing_enabled,
        )


def teacher_window_keys(settings: Settings, calendar: TradingCalendar, today: dt.date) -> list[str]:
    """Window keys from the first session with a full feature warm-up up to today."""
    sessions = calendar.sessions(
        settings.history_start, settings.history_start + dt.timedelta(days=120)
    )
    first = sessions[min(WARMUP_SESSIONS, len(sessions) - 1)]
    if first > today:
        return []
    spans = window_spans(first, today, settings.window_days, settings.window_step_days)
    return [span_key(start, end) for start, end in spans]


def _window(partition_key: str) -> TrainingWindow:
    symbol, key = str(partition_key).split("|")
    return TrainingWindow.from_span_key(symbol, key)


class RunReads:
    """Warehouse reads shared by the windows of one teacher run.

    Opening the warehouse costs more than fitting a window (a connection and a table lookup per
    read: half of a 28-window run's time went there), so the bars of every symbol of the run
    and the benchmark are read once, over the span of all the run's windows, and sliced per
    window.
    """

    def __init__(self, training: Training, windows: list[TrainingWindow]):
        self._training = training
        self._spans: dict[str, tuple[dt.date, dt.date]] = {}
        horizon = training.teacher_config.label.horizon
        for window in windows:
            first, last = window_data_range(window, training.calendar, WARMUP_SESSIONS, horizon)
            low, high = self._spans.get(window.symbol, (first, last))
            self._spans[window.symbol] = (min(low, first), max(high, last))
        self._bars: dict[str, pd.DataFrame] = {}
        self.closes: pd.Series | None = None
        if self._spans and training.teacher_config.label.reference == "market":
            first = min(low for low, _ in self._spans.values())
            last = max(high for _, high in self._spans.values())
            self.closes = training.benchmark_closes(first, last)

    def bars(self, symbol: str, first: dt.date, last: dt.date) -> pd.DataFrame:
        if not self._bars:  # one query for every symbol of the run, over the widest span
            low = min(lo for lo, _ in self._spans.values())
            high = max(hi for _, hi in self._spans.values())
            symbols = list(self._spans)
            rows = self._training.warehouse.symbols_bars("ohlcv_daily", symbols, low, high)
            by_symbol = dict(iter(rows.groupby("symbol", sort=False))) if not rows.empty else {}
            self._bars = {
                name: by_symbol.get(name, rows.iloc[0:0]).reset_index(drop=True)
                for name in self._spans
            }
        stored = self._bars[symbol]
        if stored.empty:
            return stored
        inside = (stored["date"] >= pd.Timestamp(first)) & (stored["date"] <= pd.Timestamp(last))
        return stored.loc[inside].reset_index(drop=True)


def train_window(
    training: Training,
    window: TrainingWindow,
    latest: dt.date | None = None,
    reads: RunReads | None = None,
) -> TeacherRun:
    """Train one window from the warehouse; ``latest`` (the symbol's last stored day) and
    ``reads`` (bars and closes read once for a whole run) spare a run of many windows the
    repeated lookups."""
    config = training.teacher_config
    first, last = window_data_range(
        window, training.calendar, WARMUP_SESSIONS, config.label.horizon
    )
    if reads is not None:
        bars = reads.bars(window.symbol, first, last)
    else:
        bars = training.warehouse.bars("ohlcv_daily", window.symbol, first, last)
    if latest is None:
        latest = training.warehouse.last_date("ohlcv_daily", window.symbol)
    # A window past the last stored day is a skip (decided in train_teacher); missing history
    # inside the stored range is a data problem, so it fails loudly.
    if latest is None or (bars.empty and latest >= window.end):
        raise LookupError(
            f"no stored OHLCV for {window.symbol} between {first} and {last}: materialize "
            f"ohlcv_daily for {window.symbol} over those dates first"
        )
    # A window whose labels would look past the stored data is skipped before any label is
    # made, so it needs no benchmark closes (none may be stored that late yet).
    beyond = check_future_data(window, training.calendar, config.label.horizon, latest)
    return train_teacher(
        window,
        bars,
        config,
        training.calendar,
        latest,
        training.layout.teacher_dir(window.label),
        training.sentiment_of(window.symbol, first, last),
        None
        if beyond is not None
        else training.market_closes(first, last, reads.closes if reads is not None else None),
    )


def _teacher_metadata(run: TeacherRun) -> dict[str, Any]:
    metrics = run.metrics
    return {
        "window": run.window_label,
        "accuracy": metrics["accuracy"],
        "f1_macro": metrics["f1_macro"],
        "precision_macro": metrics["precision_macro"],
        "recall_macro": metrics["recall_macro"],
        "train_samples": run.counts["train"],
        "validation_samples": run.counts["validation"],
        "purged_samples": run.counts["purged"],
        "model_sha256": run.sha256,
    }


def teacher_check_results(runs: Sequence[TeacherRun]) -> list[dg.AssetCheckResult]:
    """Report the run's windows against the four teacher rules in ``training.diagnostics``."""
    verdicts = (
        ("sample_minimum", diagnostics.short_windows(runs), "skipped for too few samples"),
        (
            "class_balance",
            diagnostics.unbalanced_windows(runs),
            f"with a class under {diagnostics.MIN_CLASS_SHARE:.0%} of training samples",
        ),
        ("finite_features", diagnostics.nonfinite_windows(runs), "trained on NaN or inf"),
        ("no_leakage", diagnostics.leaky_windows(runs), "whose labels reach into validation"),
    )
    errors = {"finite_features", "no_leakage"}
    return [
        dg.AssetCheckResult(
            check_name=name,
            passed=not bad,
            severity=dg.AssetCheckSeverity.ERROR if name in errors else dg.AssetCheckSeverity.WARN,
            metadata={"windows_checked": len(runs), "violations": len(bad), "windows": bad[:50]},
            description=f"{len(bad)} window(s) {what}" if bad else None,
        )
        for name, bad, what in verdicts
    ]


TEACHER_CHECKS = [
    dg.AssetCheckSpec(
        "sample_minimum",
        asset="teacher_model",
        description="Windows skipped for fewer labelled samples than SENSEQUANT_MIN_SAMPLES.",
    ),
    dg.AssetCheckSpec(
        "class_balance",
        asset="teacher_model",
        description=(
            f"Every class holds at least {diagnostics.MIN_CLASS_SHARE:.0%} of a teacher's "
            "train set."
        ),
    ),
    dg.AssetCheckSpec(
        "finite_features", asset="teacher_model", description="No NaN or inf feature reached a fit."
    ),
    dg.AssetCheckSpec(
        "no_leakage",
        asset="teacher_model",
        description="No training sample's label horizon reaches into its validation period.",
    ),
]


def build_training_assets(
    teacher_partitions: dg.MultiPartitionsDefinition,
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=teacher_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        output_required=False,
        deps=[
            "ohlcv_daily",
            # every window reads the index over its own dates; no finer mapping exists from
            # symbol × window to trading days
            dg.AssetDep("nifty50_benchmark", partition_mapping=dg.AllPartitionMapping()),
        ],
        check_specs=TEACHER_CHECKS,
        group_name=GROUP,
        kinds={"lightgbm"},
    )
    def teacher_model(
        context: dg.AssetExecutionContext, training: dg.ResourceParam[Training]
    ) -> Iterator[dg.AssetCheckResult]:
        """LightGBM teacher per symbol × window, stored in LightGBM's text format.

        Files: ``data/models/teachers/<SYMBOL_start_to_end>/`` (model.txt, metadata.json).
        """
        keys = context.partition_keys
        tracker = ProgressTracker(
            len(keys),
            training.layout.progress_dir / f"teacher_model_{context.run.run_id}.json",
            context.log.info,
        )
        runs: list[TeacherRun] = []
        failed: list[TeacherRun] = []
        latest: dict[str, dt.date | None] = {}
        reads = RunReads(training, [_window(key) for key in keys])
        for key in keys:
            window = _window(key)
            if window.symbol not in latest:
                latest[window.symbol] = training.warehouse.last_date("ohlcv_daily", window.symbol)
            try:
                run = train_window(training, window, latest[window.symbol], reads)
            except Exception as exc:
                record = failure_record(window, exc)
                write_record(record, training.layout.teacher_dir(window.label))
                failed.append(record)
                context.log.error(f"{window.label} failed: {type(exc).__name__}: {exc}")
                tracker.update("failed", window.label)
                continue
            runs.append(run)
            if run.status == "completed":
                context.log_event(
                    dg.AssetMaterialization(
                        "teacher_model", partition=key, metadata=_teacher_metadata(run)
                    )
                )
            else:
                reason = run.skip_reason or {}
                context.log_event(
                    dg.AssetObservation(
                        "teacher_model",
                        partition=key,
                        metadata={
                            "status": "skipped",
                            "reason_code": reason.get("code", ""),
                            "reason": reason.get("message", ""),
                        },
                    )
                )
            tracker.update(run.status, window.label)
        yield from teacher_check_results(runs)
        if failed:
            listed = "; ".join(f"{r.window_label}: {r.error['message']}" for r in failed[:5])  # type: ignore[index]
            raise dg.Failure(
                description=f"{len(failed)} of {len(keys)} window(s) failed ({listed}); trained "
                "and skipped windows are recorded, re-run the failed ones",
                metadata={"failed_windows": [r.window_label for r in failed]},
            )

    @dg.asset(deps=[teacher_model], group_name=GROUP, kinds={"lightgbm"})
    def student_model(
        context: dg.AssetExecutionContext, training: dg.ResourceParam[Training]
    ) -> dg.MaterializeResult:
        """One student over every symbol, distilled from the trained teachers.

        Writes a new candidate bundle ``data/models/live_candidate_<ts>/`` (teacher copies,
        ``teacher_runs.json``, ``student/``, ``student_runs.json``, reward history). The id
        (the run's tag, else a fresh one) is reserved for this run before anything is read.
        """
        scope = CandidateScope.from_tags(context.run.tags)
        candidate = training.reserve_candidate(context, scope.candidate_id)
        partitioned = teacher_model.partitions_def.get_partitions_def_for_dimension(
            "symbol"
        ).get_partition_keys()
        symbols = list(scope.symbols or partitioned)
        windows = [_window(k) for k in teacher_model.partitions_def.get_partition_keys()]
        labels = [
            w.label
            for w in windows
            if w.symbol in symbols
            and (scope.start is None or w.start >= scope.start)
            and (scope.end is None or w.end <= scope.end)
        ]
        bars = training.warehouse.symbols_bars("ohlcv_daily", symbols, scope.start, scope.end)
        if bars.empty:
            raise dg.Failure(
                f"no stored OHLCV for {', '.join(symbols[:5])} between {scope.start or 'the start'}"
                f" and {scope.end or 'the end'}: materialize ohlcv_daily and teacher_model first"
            )
        context.log.info(f"building {candidate.candidate_id} from {len(labels)} window(s)")
        outcome = training.build_candidate(candidate, labels, bars)
        metrics = outcome.result.metrics
        teachers = outcome.summary["teachers"]
        return dg.MaterializeResult(
            metadata={
                "candidate": str(candidate.root),
                "teachers_completed": teachers["completed"],
                "teachers_skipped": teachers["skipped"],
                "teachers_failed": teachers["failed"],
                "teachers_missing": teachers["missing"],
                "test_accuracy": metrics["accuracy"],
                "test_f1_macro": metrics["f1_macro"],
                "majority_baseline_accuracy": metrics["baselines"]["majority_class"]["accuracy"],
                "yesterday_baseline_accuracy": metrics["baselines"]["yesterday_direction"][
                    "accuracy"
                ],
                "test_start": str(outcome.result.test_start),
                "reward_loop": training.reward_config.enabled,
            }
        )

    return [teacher_model, student_model]
