"""What the evaluation stages share: the training resource plus the evaluation settings.

Dagster-free: the evaluation, data-quality, release and promotion assets receive
:class:`Evaluation` as a resource (``dg.ResourceParam[Evaluation]``) and find the run's
candidate themselves (from its tags or the latest ``student_model`` materialization); the
historical run and the gate's power simulation build it directly. A stage whose upstream output
or warehouse data is absent gets a :class:`MissingInputError` naming what to materialize first.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from sensequant_assets.artifacts import AuditLayout, CandidateLayout
from sensequant_assets.evaluation.champion import compare_with_champion
from sensequant_assets.evaluation.costs import CostModel
from sensequant_assets.evaluation.gate import GateThresholds
from sensequant_assets.evaluation.selection import (
    Selection,
    overlapping_candidates,
    searched_trials,
)
from sensequant_assets.evaluation.stat_tests import run_selection
from sensequant_assets.evaluation.validation import EvaluationConfig, Validation, validate
from sensequant_assets.registry import StateManager
from sensequant_assets.registry.lifecycle import PRODUCTION
from sensequant_assets.training.resources import BENCHMARK_TABLE, Training
from sensequant_assets.training.search import search_trial_ids
from sensequant_assets.universe import INDEX_SYMBOL


class MissingInputError(LookupError):
    """An upstream stage's output, or the warehouse data a stage reads, is not there."""


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
            sectors=self.training.universe.sectors,
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

    def audit_dir(self, candidate: CandidateLayout) -> Path:
        return self.training.layout.audit_dir(candidate)

    def audit(self, candidate: CandidateLayout) -> AuditLayout:
        return self.training.layout.audit(candidate)

    def market_data(self, candidate: CandidateLayout) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The candidate's bars (its symbols over its data range), and the NIFTY 50's."""
        runs = json.loads(candidate.student_runs.read_text())
        symbols, (first, last) = runs["symbols"], runs["data_range"]
        warehouse = self.training.warehouse
        bars = warehouse.symbols_bars("ohlcv_daily", symbols, first, last)
        benchmark = warehouse.symbols_bars(BENCHMARK_TABLE, [INDEX_SYMBOL], first, last)
        if bars.empty or benchmark.empty:
            raise MissingInputError(
                "validation needs the candidate's OHLCV and the NIFTY 50 benchmark in the "
                "warehouse: materialize ohlcv_daily and nifty50_benchmark"
            )
        return bars, benchmark

    def selection(self, candidate: CandidateLayout, validation: Validation) -> Selection:
        """The run's books, its search's trials, and earlier registry candidates on
        overlapping dates with the trials of their searches."""
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
        return run_selection(
            validation,
            overlapping,
            search_trial_ids(candidate),
            searched_trials(earlier, overlapping),
        )

    def champion(self, candidate: CandidateLayout, validation: Validation) -> dict[str, Any] | None:
        """The paired comparison with the production model, or None when there is none."""
        registry = StateManager(self.training.layout.registry, read_only=True)
        live = registry.current_deployment(PRODUCTION)
        if live is None or live.run_id == candidate.candidate_id:
            return None
        audit_dir = registry.get_candidate_run(live.run_id).audit_dir
        return compare_with_champion(
            validation.oos,
            None if audit_dir is None else AuditLayout(Path(audit_dir)).oos_predictions,
            live.run_id,
            self.config.holding_sessions,
            self.config.sectors,
        )

    def replay(self, candidate: CandidateLayout) -> Validation:
        """Recompute the validation from the stored walk-forward predictions (deterministic)."""
        path = self.audit(candidate).oos_predictions
        if not path.is_file():
            raise MissingInputError(f"{path} is missing: materialize model_validation first")
        bars, benchmark = self.market_data(candidate)
        return validate(pd.read_parquet(path), bars, benchmark, self.config)
