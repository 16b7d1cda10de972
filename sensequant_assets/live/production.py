"""Scoring a session with the model live in a stage: what ``production_signals`` runs.

The model is the one the stage's ``CURRENT`` names, and it is used only after two checks: the
deployed bundle holds exactly the files the person's approval bound (``release.bundle``), and
the booster's SHA-256 equals its metadata's (``training.student_files.load_student``). Either
failing raises :class:`ModelIntegrityError`: a day without signals is better than calls from a
model nobody approved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pandas as pd

from sensequant_assets.artifacts import ArtifactLayout, BundleLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.live.drift import DriftReference, window_drift
from sensequant_assets.live.signals import (
    SIGNAL_TYPES,
    history_start,
    merge_summaries,
    score_day,
)
from sensequant_assets.quality.corporate_actions import AdjustedWarehouse
from sensequant_assets.registry import StateManager
from sensequant_assets.registry.lifecycle import PRODUCTION, STAGING
from sensequant_assets.release.deployment import live_bundle
from sensequant_assets.training.student_files import load_drift_reference, load_student

OHLCV_TABLE = "ohlcv_daily"
SIGNALS_TABLE = "production_signals"  # the asset, and its warehouse table
STAGING_SIGNALS_TABLE = "staging_signals"  # the staged model's shadow calls, the same shape
STAGE_TABLES = {PRODUCTION: SIGNALS_TABLE, STAGING: STAGING_SIGNALS_TABLE}
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


@dataclass(frozen=True)
class ScoredSessions:
    """A run's sessions scored: the signal rows (stored dtypes), one coverage summary, and
    each session's drift reports (None when the bundle has no drift reference)."""

    signals: pd.DataFrame
    summary: dict[str, Any]
    drift: dict[dt.date, dict[str, dict[str, Any]]] | None


def score_sessions(
    model: DeployedModel,
    warehouse: AdjustedWarehouse,
    calendar: TradingCalendar,
    symbols: Sequence[str],
    days: Sequence[dt.date],
) -> ScoredSessions:
    """``model``'s calls for each of ``days`` on every symbol, from the stored bars
    back-adjusted as the student was trained on them (and sentiment when it uses it).

    The bars are read once for the whole run; each day is scored from its own history window
    (``history_start`` to the day), so a day scored in a backfill equals the day scored alone.
    """
    days = sorted(days)
    first = history_start(calendar, days[0])
    bars = warehouse.symbols_bars(OHLCV_TABLE, list(symbols), first, days[-1])
    sentiment = (
        warehouse.symbols_bars(SENTIMENT_TABLE, list(symbols), first, days[-1])
        if model.uses_sentiment
        else None
    )
    frames, summaries = [], []
    drift: dict[dt.date, dict[str, dict[str, Any]]] = {}
    for day in days:
        scored = score_day(
            model.booster, model.metadata, model.model_id, _window(bars, calendar, day), day,
            symbols, None if sentiment is None else _window(sentiment, calendar, day),
        )  # fmt: skip
        frames.append(scored.signals)
        summaries.append(scored.summary(symbols))
        if model.drift_reference is not None:
            drift[day] = window_drift(model.drift_reference, scored.window)
    return ScoredSessions(
        pd.concat(frames, ignore_index=True).astype(SIGNAL_TYPES),
        merge_summaries(summaries),
        drift if model.drift_reference is not None else None,
    )


def _window(rows: pd.DataFrame, calendar: TradingCalendar, day: dt.date) -> pd.DataFrame:
    """``rows`` from ``day``'s history start to ``day``."""
    if rows.empty:
        return rows
    dates = pd.to_datetime(rows["date"])
    return rows[
        (dates >= pd.Timestamp(history_start(calendar, day))) & (dates <= pd.Timestamp(day))
    ]
