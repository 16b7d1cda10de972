"""Training assets (group ``training``): one LightGBM teacher per symbol × window.

A run may cover many windows (a backfill groups them by window, all symbols at once), so the
asset records each window's outcome as its own event: a materialization for a trained
teacher, an observation with the reason for a skipped one, and a failure record on disk for a
failed one. Skipped and failed windows stay unmaterialized, so "backfill missing" retrains
exactly those. Each window is trained by
:func:`~sensequant_assets.training.runner.train_window` over the
:class:`~sensequant_assets.training.resources.Training` resource.
"""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import dagster as dg

from sensequant_assets.artifacts import CandidateLayout
from sensequant_assets.defs.checks import TEACHER_CHECKS, teacher_check_results
from sensequant_assets.defs.tags import CandidateScope, candidate_owner, search_requested
from sensequant_assets.registry.reservation import CandidateTakenError
from sensequant_assets.training import TrainingWindow
from sensequant_assets.training.candidate import CandidateOutcome
from sensequant_assets.training.progress import ProgressTracker
from sensequant_assets.training.resources import Training
from sensequant_assets.training.runner import RunReads, train_window
from sensequant_assets.training.teacher import failure_record
from sensequant_assets.training.teacher_record import TeacherRun, write_record

GROUP = "training"
NO_PARTITION_MAPPING = dg.SpecificPartitionsPartitionMapping([])


def _window(partition_key: str) -> TrainingWindow:
    symbol, key = str(partition_key).split("|")
    return TrainingWindow.from_span_key(symbol, key)


def reserve_candidate(
    context: dg.AssetExecutionContext, training: Training, candidate_id: str | None
) -> CandidateLayout:
    """The bundle of ``candidate_id`` (or of a fresh id), reserved for the run's owner: a
    run given an id another run holds fails here, before writing anything."""
    run = context.run
    owner = candidate_owner(run.tags, run.run_id, run.root_run_id)
    try:
        return training.reserve_candidate(owner, candidate_id)
    except CandidateTakenError as exc:
        raise dg.Failure(str(exc)) from None


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


def _teacher_model_asset(teacher_partitions: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=teacher_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        output_required=False,
        deps=[
            # A window reads its symbol's bars over its own dates, which no built-in mapping
            # from symbol × static window keys onto day × symbol expresses; the dependency
            # stays asset-level. Left to Dagster, the mapping was the identity: it matched no
            # key (as this one) but listed every ohlcv_daily key at each run's start to find
            # that out, 4-7 s a run at 18 years × 102 symbols. Mapping each window to its
            # symbol's days cost more (31 s a run): Dagster lists the days once per window.
            dg.AssetDep("ohlcv_daily", partition_mapping=NO_PARTITION_MAPPING),
            # every window reads the index over its own dates
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
            len(keys), training.layout.teacher_progress(context.run.run_id), context.log.info
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
            context.log_event(_teacher_event(key, run))
            tracker.update(run.status, window.label)
        yield from teacher_check_results(runs)
        if failed:
            raise _failed_windows(failed, len(keys))

    return teacher_model


def _teacher_event(key: str, run: TeacherRun) -> dg.AssetMaterialization | dg.AssetObservation:
    """A trained window is a materialization of its partition; a skipped one only an
    observation, so Dagit keeps showing it as not materialized."""
    if run.status == "completed":
        return dg.AssetMaterialization(
            "teacher_model", partition=key, metadata=_teacher_metadata(run)
        )
    reason = run.skip_reason or {}
    return dg.AssetObservation(
        "teacher_model",
        partition=key,
        metadata={
            "status": "skipped",
            "reason_code": reason.get("code", ""),
            "reason": reason.get("message", ""),
        },
    )


def _failed_windows(failed: list[TeacherRun], total: int) -> dg.Failure:
    listed = "; ".join(f"{r.window_label}: {(r.error or {}).get('message')}" for r in failed[:5])
    return dg.Failure(
        description=f"{len(failed)} of {total} window(s) failed ({listed}); trained "
        "and skipped windows are recorded, re-run the failed ones",
        metadata={"failed_windows": [r.window_label for r in failed]},
    )


def _student_model_asset(
    teacher_model: dg.AssetsDefinition, partitions: dg.MultiPartitionsDefinition
) -> dg.AssetsDefinition:

    @dg.asset(deps=[teacher_model], group_name=GROUP, kinds={"lightgbm"})
    def student_model(
        context: dg.AssetExecutionContext, training: dg.ResourceParam[Training]
    ) -> dg.MaterializeResult:
        """One student over every symbol, distilled from the trained teachers.

        Writes a new candidate bundle ``data/models/live_candidate_<ts>/`` (teacher copies,
        ``teacher_runs.json``, ``student/``, ``student_runs.json``, reward history, and
        ``search_trials.json`` when the run is tagged ``sensequant/search=true``). The id
        (the run's tag, else a fresh one) is reserved for this run before anything is read.
        """
        scope = CandidateScope.from_tags(context.run.tags)
        search = training.hyperparameter_search() if search_requested(context.run.tags) else None
        candidate = reserve_candidate(context, training, scope.candidate_id)
        symbols, labels = _scoped_windows(partitions, scope)
        bars = training.warehouse.symbols_bars("ohlcv_daily", symbols, scope.start, scope.end)
        if bars.empty:
            raise dg.Failure(
                f"no stored OHLCV for {', '.join(symbols[:5])} between {scope.start or 'the start'}"
                f" and {scope.end or 'the end'}: materialize ohlcv_daily and teacher_model first"
            )
        context.log.info(
            f"building {candidate.candidate_id} from {len(labels)} window(s)"
            + (f", with a {search.trials}-trial hyperparameter search" if search else "")
        )
        outcome = training.build_candidate(candidate, labels, bars, search)
        return dg.MaterializeResult(
            metadata={
                "candidate": str(candidate.root),
                "reward_loop": training.reward_config.enabled,
                **_student_metadata(outcome),
            }
        )

    return student_model


def _scoped_windows(
    partitions: dg.MultiPartitionsDefinition, scope: CandidateScope
) -> tuple[list[str], list[str]]:
    """The run's symbols (its scope's, else every partitioned one) and the labels of their
    windows that lie inside the scope's dates."""
    partitioned = partitions.get_partitions_def_for_dimension("symbol").get_partition_keys()
    symbols = list(scope.symbols or partitioned)
    windows = [_window(k) for k in partitions.get_partition_keys()]
    labels = [
        w.label
        for w in windows
        if w.symbol in symbols
        and (scope.start is None or w.start >= scope.start)
        and (scope.end is None or w.end <= scope.end)
    ]
    return symbols, labels


def _student_metadata(outcome: CandidateOutcome) -> dict[str, Any]:
    metrics = outcome.result.metrics
    baselines = metrics["baselines"]
    teachers = outcome.summary["teachers"]
    searched = outcome.summary.get("search")
    chosen = {"search_chosen": dg.MetadataValue.json(searched["chosen"])} if searched else {}
    return {
        "teachers_completed": teachers["completed"],
        "teachers_skipped": teachers["skipped"],
        "teachers_failed": teachers["failed"],
        "teachers_missing": teachers["missing"],
        "test_accuracy": metrics["accuracy"],
        "test_f1_macro": metrics["f1_macro"],
        "majority_baseline_accuracy": baselines["majority_class"]["accuracy"],
        "yesterday_baseline_accuracy": baselines["yesterday_direction"]["accuracy"],
        "test_start": str(outcome.result.test_start),
        "search_trials": searched["trials"] if searched else 0,
        **chosen,
    }


def build_training_assets(
    teacher_partitions: dg.MultiPartitionsDefinition,
) -> list[dg.AssetsDefinition]:
    """The teachers (symbol × window) and the student distilled from them."""
    teacher_model = _teacher_model_asset(teacher_partitions)
    return [teacher_model, _student_model_asset(teacher_model, teacher_partitions)]
