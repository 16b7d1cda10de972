"""The live scorecard of a deployed model, and whether it must go: what ``live_scorecard`` and
the demotion sensor run.

The model's stored calls (``production_signals``) are joined to the labels that have matured
since (the same labels, forward returns and market reference the candidate was trained and
validated with, from the stored, back-adjusted bars), scored with the gate's own measures, and
set against the band its walk-forward implies (``live.scorecard``). The walk-forward rows are
the candidate's ``oos_predictions.parquet``, which the approval bound like the rest of its
evidence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sensequant_assets.artifacts import AuditLayout
from sensequant_assets.features.labels import make_labels
from sensequant_assets.live.production import SIGNALS_TABLE
from sensequant_assets.live.scorecard import (
    WINDOW_SESSIONS,
    daily_measures,
    matured,
    scorecard,
    walk_forward_bands,
)
from sensequant_assets.registry import StateManager
from sensequant_assets.training.resources import Training

LABEL_COLUMNS = ["date", "symbol", "label", "forward_return"]


def model_calls(
    training: Training, model_id: str, last: dt.date, table: str = SIGNALS_TABLE
) -> pd.DataFrame:
    """Every call of ``model_id`` up to ``last`` stored in ``table`` (a stage's signals)."""
    rows = training.warehouse.query(table, "model_id = ? and date <= ?", [model_id, last])
    return rows.assign(date=pd.to_datetime(rows["date"])) if len(rows) else rows


def matured_labels(
    training: Training, symbols: Sequence[str], first: dt.date, last: dt.date
) -> pd.DataFrame:
    """Labels and forward returns of every (session, symbol) from ``first`` whose horizon has
    ended by ``last``, made as the candidate's were (the volatility look-back read first)."""
    spec = training.teacher_config.label
    start = training.calendar.offset(first, -spec.vol_lookback - 1)
    bars = training.warehouse.symbols_bars("ohlcv_daily", list(symbols), start, last)
    if bars.empty:
        return pd.DataFrame(columns=LABEL_COLUMNS)
    market = training.market_closes(start, last)
    frames = []
    for symbol, rows in bars.sort_values(["symbol", "date"]).groupby("symbol", sort=False):
        rows = rows.reset_index(drop=True)
        labels = make_labels(rows, spec, market)
        frames.append(
            pd.DataFrame({"date": pd.to_datetime(rows["date"]), "symbol": symbol,
                          "label": labels["label"], "forward_return": labels["forward_return"]})
        )  # fmt: skip
    frame = pd.concat(frames, ignore_index=True).dropna(subset=["label", "forward_return"])
    return frame[frame["date"] >= pd.Timestamp(first)].reset_index(drop=True)


def walk_forward_daily(
    audit_dir: Path, cost_per_holding: float, sectors: Mapping[str, str] | None
) -> pd.DataFrame:
    """The candidate's walk-forward measured per day as the live calls are."""
    path = AuditLayout(audit_dir).oos_predictions
    if not path.is_file():
        raise LookupError(f"{path} is missing: the walk-forward band is unknown")
    oos = pd.read_parquet(path)
    return daily_measures(oos, cost_per_holding, sectors)


def live_report(
    training: Training,
    registry: StateManager,
    model_id: str,
    day: dt.date,
    cost_per_holding: float,
    sectors: Mapping[str, str] | None,
    window: int = WINDOW_SESSIONS,
) -> dict[str, Any]:
    """``model_id``'s scorecard as of ``day``: its rolling live measures against the band."""
    audit_dir = registry.get_candidate_run(model_id).audit_dir
    if audit_dir is None:
        raise LookupError(f"{model_id} has no audit directory: its walk-forward band is unknown")
    daily_oos = walk_forward_daily(Path(audit_dir), cost_per_holding, sectors)
    bands = walk_forward_bands(daily_oos, window)
    calls = model_calls(training, model_id, day)
    report: dict[str, Any] = {"model_id": model_id, "day": day.isoformat(), "calls": len(calls)}
    if calls.empty:
        daily = pd.DataFrame(columns=["rank_ic", "hit_rate", "spread_net"])
    else:
        first = calls["date"].min().date()
        labels = matured_labels(training, sorted(calls["symbol"].unique()), first, day)
        daily = daily_measures(matured(calls, labels), cost_per_holding, sectors)
    return {**report, **scorecard(daily, bands)}
