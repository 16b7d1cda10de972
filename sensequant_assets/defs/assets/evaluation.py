"""Evaluation assets (group ``evaluation``): the evidence a promotion decision rests on.

Each asset judges the candidate that the latest ``student_model`` materialization wrote (its
path is in that event's metadata), so every file lands next to the right bundle under
``release/audit_live_candidate_<ts>/``. ``model_validation`` stores its walk-forward
predictions; the later stages replay those exact predictions rather than re-fitting.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from sensequant_assets.artifacts import ACCURACY_REPORT, CandidateLayout
from sensequant_assets.defs.tags import CandidateScope
from sensequant_assets.evaluation.backtest import next_session_returns
from sensequant_assets.evaluation.books import book_calls
from sensequant_assets.evaluation.gate import decide
from sensequant_assets.evaluation.outputs import write_json, write_oos, write_validation
from sensequant_assets.evaluation.passive_books import benchmark_next_returns
from sensequant_assets.evaluation.resources import Evaluation, MissingInputError
from sensequant_assets.evaluation.stat_tests import statistical_tests
from sensequant_assets.evaluation.stress.replay import run_stress_tests
from sensequant_assets.evaluation.stress.report import write_stress_report
from sensequant_assets.evaluation.stress.windows import load_stress_windows
from sensequant_assets.evaluation.validation import validate_candidate
from sensequant_assets.evaluation.walk_forward import Fold
from sensequant_assets.training.reward_ab import ab_summary

GROUP = "evaluation"


def tagged_candidate(context: dg.AssetExecutionContext, evaluation: Evaluation) -> CandidateLayout:
    """The run's tagged candidate, else the latest ``student_model`` materialization's."""
    scope = CandidateScope.from_tags(context.run.tags)
    if scope.candidate_id:
        path = evaluation.training.layout.candidate(scope.candidate_id).root
    else:
        event = context.instance.get_latest_materialization_event(dg.AssetKey("student_model"))
        if event is None or event.asset_materialization is None:
            raise dg.Failure("no student_model materialization: train a candidate first")
        path = Path(str(event.asset_materialization.metadata["candidate"].value))
    candidate = CandidateLayout(path)
    if not candidate.student_runs.is_file():
        raise dg.Failure(f"candidate bundle {path} is missing or incomplete")
    return candidate


@contextmanager
def missing_inputs_fail() -> Iterator[None]:
    """A :class:`MissingInputError` (no upstream output, no stored bars) fails the step with
    its message."""
    try:
        yield
    except MissingInputError as exc:
        raise dg.Failure(str(exc)) from None


def _fold_progress(context: dg.AssetExecutionContext) -> Callable[[Fold, int], None]:
    def progress(fold: Fold, total: int) -> None:
        context.log.info(
            f"walk-forward fold {fold.number}/{total}: tested {fold.test_start}..{fold.test_end} "
            f"on {len(fold.test_idx):,} samples, trained on {len(fold.train_idx):,}"
        )

    return progress


@dg.asset(deps=["student_model", "nifty50_benchmark"], group_name=GROUP)
def model_validation(
    context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
) -> dg.MaterializeResult:
    """Walk-forward out-of-sample predictions, backtests, baselines and the rule optimizer.

    Files: ``validation_summary.json/.md``, ``reports/accuracy_report.html``,
    ``reports/optimization_report.html`` and ``oos_predictions.parquet`` in the audit dir.
    """
    training = evaluation.training
    candidate = tagged_candidate(context, evaluation)
    with missing_inputs_fail():
        bars, benchmark = evaluation.market_data(candidate)
    validation = validate_candidate(
        candidate,
        bars,
        benchmark,
        training.teacher_config.label,
        training.candidate_student_config(candidate),
        training.reward_config,
        evaluation.config,
        training.settings.walk_forward_folds,
        training.sentiment_frame(),
        _fold_progress(context),
    )
    audit = evaluation.audit_dir(candidate)
    summary = validation.summary
    write_oos(validation.oos, audit)
    written = write_validation(validation, audit)
    strategy = summary["backtest"][evaluation.config.strategy]
    baselines = summary["baselines_classification"]
    return dg.MaterializeResult(
        metadata={
            "candidate": candidate.candidate_id,
            "audit_dir": str(audit),
            "oos_sessions": summary["out_of_sample"]["sessions"],
            "oos_accuracy": summary["classification"]["accuracy"],
            "majority_accuracy": baselines["majority_class"]["accuracy"],
            "yesterday_accuracy": baselines["yesterday_direction"]["accuracy"],
            f"{evaluation.config.strategy}_sharpe": strategy["sharpe"],
            "accuracy_report": dg.MetadataValue.path(str(written[ACCURACY_REPORT])),
        }
    )


@dg.asset(deps=[model_validation], group_name=GROUP)
def stat_tests(
    context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
) -> dg.MaterializeResult:
    """Paired tests, bootstrap intervals, Sharpe/Sortino, alpha/beta/IR, PSR, DSR and PBO,
    and the reward loop's A/B result (copied from ``student_runs.json``, not gated).

    File: ``stat_tests.json`` in the audit dir (conventions stated inside).
    """
    candidate = tagged_candidate(context, evaluation)
    with missing_inputs_fail():
        validation = evaluation.replay(candidate)
    tests = statistical_tests(
        validation,
        evaluation.selection(candidate, validation),
        evaluation.champion(candidate, validation),
    )
    student_runs = json.loads(candidate.student_runs.read_text())
    tests["reward_ab_test"] = ab_summary(student_runs.get("rewards"))
    path = write_json(evaluation.audit(candidate).stat_tests, tests)
    paired = tests["paired_accuracy_tests"]
    return dg.MaterializeResult(
        metadata={
            "candidate": candidate.candidate_id,
            "path": dg.MetadataValue.path(str(path)),
            "rank_ic": tests["skill"]["rank_ic"]["mean"],
            "p_rank_ic": tests["skill"]["rank_ic"]["p_value"],
            "dsr": tests["dsr"]["dsr"],
            "dsr_trials": tests["dsr"]["n_trials"],
            "p_vs_champion": (tests["champion"] or {}).get("p_value"),
            "p_vs_majority": paired["majority_class"]["p_value"],
            "reward_ab_test": tests["reward_ab_test"]["verdict"],
        }
    )


@dg.asset(deps=[model_validation], group_name=GROUP)
def stress_tests(
    context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
) -> dg.MaterializeResult:
    """Replay of the student through the stress windows (``SENSEQUANT_RUN_STRESS_TESTS``).

    Files: ``release/stress_tests_<candidate>/`` (summary JSON, report, PNGs).
    """
    candidate = tagged_candidate(context, evaluation)
    oos = pd.read_parquet(evaluation.audit(candidate).oos_predictions)
    oos = oos.assign(predicted=book_calls(oos))  # replay the calls the books trade
    with missing_inputs_fail():
        bars, benchmark = evaluation.market_data(candidate)
    config = evaluation.config
    result = run_stress_tests(
        oos,
        next_session_returns(bars[["date", "symbol", "close"]]),
        benchmark_next_returns(benchmark[["date", "close"]]),
        load_stress_windows(evaluation.training.settings.stress_windows_file),
        config.costs,
        config.risk_free_annual,
        holding_sessions=config.holding_sessions,
        mode=config.strategy,
    )
    stress_files = evaluation.training.layout.stress(candidate)
    write_stress_report(result, stress_files.root)
    for window in result.windows:
        if window["status"] == "skipped":
            context.log.info(f"stress window {window['name']} skipped: {window['reason']}")
    return dg.MaterializeResult(
        metadata={
            "candidate": candidate.candidate_id,
            "summary": dg.MetadataValue.path(str(stress_files.summary)),
            "evaluated": result.evaluated,
            "skipped": result.skipped,
            "resilience": result.overall_score,
        }
    )


def _promotion_gate(stress_enabled: bool) -> dg.AssetsDefinition:
    """The gate; it reads the stress summary only where ``stress_tests`` is in the graph."""
    gate_deps: list[Any] = [stat_tests, *([stress_tests] if stress_enabled else [])]

    @dg.asset(deps=[*gate_deps, "data_quality"], group_name=GROUP)
    def promotion_gate(
        context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
    ) -> dg.MaterializeResult:
        """approve / reject / needs_review with every rule's value and threshold.

        File: ``gate_decision.json`` in the audit dir.
        """
        candidate = tagged_candidate(context, evaluation)
        audit = evaluation.audit(candidate)
        tests = json.loads(audit.stat_tests.read_text())
        stress = None
        if stress_enabled:
            stress_file = evaluation.training.layout.stress(candidate).summary
            stress = json.loads(stress_file.read_text())
        quality_file = audit.data_quality
        quality = json.loads(quality_file.read_text()) if quality_file.is_file() else None
        decision = decide(tests, stress, evaluation.thresholds, quality)
        write_json(audit.gate, decision.to_dict())
        for reason in decision.reasons:
            context.log.info(reason)
        return dg.MaterializeResult(
            metadata={
                "candidate": candidate.candidate_id,
                "recommendation": decision.recommendation,
                "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
            }
        )

    return promotion_gate


def build_evaluation_assets(stress_enabled: bool) -> list[dg.AssetsDefinition]:
    """The evidence stages; ``stress_tests`` joins them when ``SENSEQUANT_RUN_STRESS_TESTS``."""
    optional = [stress_tests] if stress_enabled else []
    return [model_validation, stat_tests, *optional, _promotion_gate(stress_enabled)]
