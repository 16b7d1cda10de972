"""Scoring a session with the model live in a stage: what ``production_signals`` runs.

The model is the one the stage's ``CURRENT`` names, and it is used only after two checks: the
deployed bundle holds exactly the files the person's approval bound (``release.bundle``), and
the booster's SHA-256 equals its metadata's (``training.student.load_student``). Either failing
raises :class:`ModelIntegrityError`: a day without signals is better than calls from a model
nobody approved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb

from sensequant_assets.artifacts import ArtifactLayout, BundleLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.live.drift import DriftReference
from sensequant_assets.live.signals import DayScores, history_start, score_day
from sensequant_assets.quality.corporate_actions import AdjustedWarehouse
from sensequant_assets.registry import StateManager
from sensequant_assets.registry.lifecycle import PRODUCTION, STAGING
from sensequant_assets.release.deployment import live_bundle
from sensequant_assets.training.student import load_drift_reference, load_student

OHLCV_TABLE = "ohlcv_daily"
SIGNALS_TABLE = "production_signals"  # the asset, and its warehouse table
SENTIMENT_TABLE = "sentiment_snapshots"


class NoDeployedModel(LookupError):
    """The stage has no model: nothing to score with."""


@dataclass(frozen=True)
class DeployedModel:
    """A verified deployed student; ``drift_reference`` is None for one saved before students
    carried their training law."""

    model_id: str
    stage: str
    bundle: Path
    booster: lgb.Booster
    metadata: Mapping[str, Any]
    drift_reference: DriftReference | None

    @property
    def sha256(self) -> str:
        return str(self.metadata["model_sha256"])

    @property
    def uses_sentiment(self) -> bool:
        return "sentiment_score" in self.metadata["feature_names"]


def deployed_model(layout: ArtifactLayout, registry: StateManager, stage: str) -> DeployedModel:
    """The verified model live in ``stage`` (``production`` or ``staging``)."""
    stage_dir = {PRODUCTION: layout.production_dir, STAGING: layout.staging_dir}[stage]
    live = live_bundle(layout, registry, stage_dir)
    if live is None:
        raise NoDeployedModel(
            f"no model in {stage}: approve a candidate (`sensequant candidates approve`) and "
            "let the promotion sensor deploy it"
        )
    model_id, bundle = live
    student_dir = BundleLayout(bundle).student_dir
    booster, metadata = load_student(student_dir)
    return DeployedModel(
        model_id, stage, bundle, booster, metadata, load_drift_reference(student_dir)
    )


def score_session(
    model: DeployedModel,
    warehouse: AdjustedWarehouse,
    calendar: TradingCalendar,
    symbols: Sequence[str],
    day: dt.date,
) -> DayScores:
    """``model``'s calls for ``day`` on every symbol, from the stored bars back-adjusted as the
    student was trained on them (and sentiment when it uses it)."""
    first = history_start(calendar, day)
    bars = warehouse.symbols_bars(OHLCV_TABLE, list(symbols), first, day)
    sentiment = (
        warehouse.symbols_bars(SENTIMENT_TABLE, list(symbols), first, day)
        if model.uses_sentiment
        else None
    )
    return score_day(model.booster, model.metadata, model.model_id, bars, day, symbols, sentiment)
