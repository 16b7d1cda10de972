"""Evaluation assets (group ``evaluation``): the evidence a promotion decision rests on.

Each asset judges the candidate that the latest ``student_model`` materialization wrote (its
path is in that event's metadata), so every file lands next to the right bundle under
``release/audit_live_candidate_<ts>/``. ``model_validation`` stores its walk-forward
predictions; the later stages replay those exact predictions rather than re-fitting.
"""

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from sensequant_assets.artifacts import DATA_QUALITY_JSON, CandidateLayout
from sensequant_assets.defs.tags import CandidateScope
from sensequant_assets.defs.training import BENCHMARK_TABLE, Training
from sensequant_assets.evaluation.backtest import (
    CostModel,
    benchmark_next_returns,
    next_session_returns,
)
from sensequant_assets.evaluation.books import book_calls
from sensequant_assets.evaluation.champion import compare_with_champion
from sensequant_assets.evaluation.gate import GateThresholds, decide
from sensequant_assets.evaluation.outputs import (
    ACCURACY_REPORT,
    GATE_JSON,
    OOS_PREDICTIONS,
    STAT_TESTS_JSON,
    write_json,
    write_oos,
    write_validation,
)
from sensequant_assets.evaluation.selection import Selection, overlapping_candidates
from sensequant_assets.evaluation.stat_tests import run_selection, statistical_tests
from sensequant_assets.evaluation.stress.replay import run_stress_tests
from sensequant_assets.evaluation.stress.report import SUMMARY_FILE, write_stress_report
from sensequant_assets.evaluation.stress.windows import load_stress_windows
from sensequant_assets.evaluation.validation import (
    EvaluationConfig,
    Validation,
    validate,
    validate_candidate,
)
from sensequant_assets.evaluation.walk_forward import Fold
from sensequant_assets.registry import StateManager
from sensequant_assets.registry.lifecycle import PRODUCTION
from sensequant_assets.universe import INDEX_SYMBOL

GROUP = "evaluation"


@dataclass
class Evaluation:
    """What evaluation assets share: the training resource plus the evaluation settings."""

    training: Training

    @cached_property
    def config(self) -> EvaluationConfig:
        s = self.training.settings
        return EvaluationConfig(
            costs=CostModel(s.cost_round_trip_bp, s.slippage_bp, s.short_cost_bp_annual),
            risk_free_annual=s.risk_free_rate,
            strategy=s.evaluation_strategy,
            holding_sessions=s.label_horizon,
        )

    @cached_property
    def thresholds(self) -> GateThresholds:
        s = self.training.settings
        return GateThresholds(
            significance=s.gate_significance,
            min_dsr=s.gate_min_dsr,
            min_resilience=s.gate_min_resilience,
            min_oos_sessions=s.gate_min_oos_sessions,
        )

    def candidate(self, context: dg.AssetExecutionContext) -> CandidateLayout:
        """The run's tagged candidate, else the latest ``student_model`` materialization's."""
        scope = CandidateScope.from_tags(context.run.tags)
        if scope.candidate_id:
            path = self.training.layout.candidate(scope.candidate_id).root
        else:
            event = context.instance.get_latest_materialization_event(dg.AssetKey("student_model"))
            if event is None or event.asset_materialization is None:
                raise dg.Failure("no student_model materialization: train a candidate first")
            path = Path(str(event.asset_materialization.metadata["candidate"].value))
        if not (path / "student_runs.json").is_file():
            raise dg.Failure(f"candidate bundle {path} is missing or incomplete")
        return CandidateLayout(path)

    def audit_dir(self, candidate: CandidateLayout) -> Path:
        return self.training.layout.audit_dir(candidate)

    def market_data(self, candidate: CandidateLayout) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The candidate's bars (its symbols over its data range), and the NIFTY 50's."""
        runs = json.loads(candidate.student_runs.read_text())
        symbols, (first, last) = runs["symbols"], runs["data_range"]
        warehouse = self.training.warehouse
        bars = warehouse.symbols_bars("ohlcv_daily", symbols, first, last)
        benchmark = warehouse.symbols_bars(BENCHMARK_TABLE, [INDEX_SYMBOL], first, last)
        if bars.empty or benchmark.empty:
            raise dg.Failure(
                "validation needs the candidate's OHLCV and the NIFTY 50 benchmark in the "
                "warehouse: materialize ohlcv_daily and nifty50_benchmark"
            )
        return bars, benchmark

    def selection(self, candidate: CandidateLayout, validation: Validation) -> Selection:
        """The run's books plus earlier registry candidates on overlapping dates."""
        registry = StateManager(self.training.layout.registry, read_only=True)
        runs = registry.get_candidate_runs(include_dryrun=True)
        window = validation.summary["out_of_sample"]
        mine = next((r for r in runs if r.run_id == candidate.candidate_id), None)
        earlier = [r for r in runs if mine is None or r.created_at < mine.created_at]
        overlapping = overlapping_candidates(
            earlier,
            dt.date.fromisoformat(window["start"]),
            dt.date.fromisoformat(window["end"]),
            exclude=candidate.candidate_id,
        )
        return run_selection(validation, overlapping)

    def champion(self, candidate: CandidateLayout, validation: Validation) -> dict[str, Any] | None:
        """The paired comparison with the production model, or None when there is none."""
        registry = StateManager(self.training.layout.registry, read_only=True)
        live = registry.current_deployment(PRODUCTION)
        if live is None or live.run_id == candidate.candidate_id:
            return None
        audit_dir = registry.get_candidate_run(live.run_id).audit_dir
        return compare_with_champion(
            validation.oos,
            None if audit_dir is None else Path(audit_dir) / OOS_PREDICTIONS,
            live.run_id,
            self.config.holding_sessions,
        )

    def replay(self, candidate: CandidateLayout) -> Validation:
        """Recompute the validation from the stored walk-forward predictions (deterministic)."""
        path = self.audit_dir(candidate) / OOS_PREDICTIONS
        if not path.is_file():
            raise dg.Failure(f"{path} is missing: materialize model_validation first")
        bars, benchmark = self.market_data(candidate)
        return validate(pd.read_parquet(path), bars, benchmark, self.config)


def _fold_progress(context: dg.AssetExecutionContext) -> Callable[[Fold, int], None]:
    def progress(fold: Fold, total: int) -> None:
        context.log.info(
            f"walk-forward fold {fold.number}/{total}: tested {fold.test_start}..{fold.test_end} "
            f"on {len(fold.test_idx):,} samples, trained on {len(fold.train_idx):,}"
        )

    return progress


def build_evaluation_assets(stress_enabled: bool) -> list[dg.AssetsDefinition]:
    @dg.asset(deps=["student_model", "nifty50_benchmark"], group_name=GROUP)
    def model_validation(
        context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
    ) -> dg.MaterializeResult:
        """Walk-forward out-of-sample predictions, backtests, baselines and the rule optimizer.

        Files: ``validation_summary.json/.md``, ``reports/accuracy_report.html``,
        ``reports/optimization_report.html`` and ``oos_predictions.parquet`` in the audit dir.
        """
        training = evaluation.training
        candidate = evaluation.candidate(context)
        bars, benchmark = evaluation.market_data(candidate)
        validation = validate_candidate(
            candidate,
            bars,
            benchmark,
            training.teacher_config.label,
            training.student_config,
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
        """Paired tests, bootstrap intervals, Sharpe/Sortino, alpha/beta/IR, PSR, DSR and PBO.

        File: ``stat_tests.json`` in the audit dir (conventions stated inside).
        """
        candidate = evaluation.candidate(context)
        validation = evaluation.replay(candidate)
        tests = statistical_tests(
            validation,
            evaluation.selection(candidate, validation),
            evaluation.champion(candidate, validation),
        )
        path = write_json(evaluation.audit_dir(candidate) / STAT_TESTS_JSON, tests)
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
            }
        )

    gate_deps: list[Any] = [stat_tests]
    assets: list[dg.AssetsDefinition] = [model_validation, stat_tests]
    if stress_enabled:

        @dg.asset(deps=[model_validation], group_name=GROUP)
        def stress_tests(
            context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
        ) -> dg.MaterializeResult:
            """Replay of the student through the stress windows (``SENSEQUANT_RUN_STRESS_TESTS``).

            Files: ``release/stress_tests_<candidate>/`` (summary JSON, report, PNGs).
            """
            candidate = evaluation.candidate(context)
            oos = pd.read_parquet(evaluation.audit_dir(candidate) / OOS_PREDICTIONS)
            oos = oos.assign(predicted=book_calls(oos))  # replay the calls the books trade
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
            out_dir = evaluation.training.layout.stress_dir(candidate)
            write_stress_report(result, out_dir)
            for window in result.windows:
                if window["status"] == "skipped":
                    context.log.info(f"stress window {window['name']} skipped: {window['reason']}")
            return dg.MaterializeResult(
                metadata={
                    "candidate": candidate.candidate_id,
                    "summary": dg.MetadataValue.path(str(out_dir / SUMMARY_FILE)),
                    "evaluated": result.evaluated,
                    "skipped": result.skipped,
                    "resilience": result.overall_score,
                }
            )

        gate_deps.append(stress_tests)
        assets.append(stress_tests)

    @dg.asset(deps=[*gate_deps, "data_quality"], group_name=GROUP)
    def promotion_gate(
        context: dg.AssetExecutionContext, evaluation: dg.ResourceParam[Evaluation]
    ) -> dg.MaterializeResult:
        """approve / reject / needs_review with every rule's value and threshold.

        File: ``gate_decision.json`` in the audit dir.
        """
        candidate = evaluation.candidate(context)
        audit = evaluation.audit_dir(candidate)
        tests = json.loads((audit / STAT_TESTS_JSON).read_text())
        stress = None
        if stress_enabled:
            stress_file = evaluation.training.layout.stress_dir(candidate) / SUMMARY_FILE
            stress = json.loads(stress_file.read_text())
        quality_file = audit / DATA_QUALITY_JSON
        quality = json.loads(quality_file.read_text()) if quality_file.is_file() else None
        decision = decide(tests, stress, evaluation.thresholds, quality)
        write_json(audit / GATE_JSON, decision.to_dict())
        for reason in decision.reasons:
            context.log.info(reason)
        return dg.MaterializeResult(
            metadata={
                "candidate": candidate.candidate_id,
                "recommendation": decision.recommendation,
                "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
            }
        )

    assets.append(promotion_gate)
    return assets
