"""The production model's live calls, rewarded once their labels mature: what ``live_rewards``
records, and what the next retrain's reward loop reads (``training.rewards``).

A call made on session t matures h sessions later. Its reward is the story's,
sign(call) × realised forward return, clipped as in training (``compute_rewards``), where the
forward return is the label's own measure: made from the stored, back-adjusted bars with the
same horizon and market reference as the candidate's labels (``live.monitoring.matured_labels``,
which the scorecard reads too). Each reward is appended to the symbol's history,
``data/reward_history/<SYMBOL>.jsonl``, with the model that made the call (its retrain, which
the decay across retrains ages) and ``source="live"``.

Recording is idempotent: a call is keyed by (date, symbol, model id, source), and a key already
in the history is never appended again (``append_new_rewards``), so re-running a day, or a
backfill over days already recorded, changes nothing. Each run looks back over the last
:data:`CATCH_UP_SESSIONS` sessions of maturing calls, so a call whose label could not be made
on its day (the benchmark's bar came late) is rewarded by a later day's run.

Only calls made out of the model's sample count: a call dated before the model's holdout start
(a ``production_signals`` backfill over days the model was trained on) would be scored on rows
it learnt, the in-sample flattery the cross-fitting removes from training, so it is refused
and counted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from sensequant_assets.artifacts import ArtifactLayout, BundleLayout, ModelFiles
from sensequant_assets.live.monitoring import matured_labels
from sensequant_assets.live.production import SIGNALS_TABLE
from sensequant_assets.live.scorecard import matured
from sensequant_assets.live.signals import CALL_OF_CLASS
from sensequant_assets.training.resources import Training
from sensequant_assets.training.reward_history import (
    HISTORY_FIELDS,
    LIVE,
    append_new_rewards,
    history_records,
)
from sensequant_assets.training.rewards import RewardConfig, compute_rewards, reward_metrics

CATCH_UP_SESSIONS = 20
"""Sessions of maturing calls each run looks back over, besides its own."""
CLASS_OF_CALL = {call: cls for cls, call in CALL_OF_CLASS.items()}


def live_rewards(
    calls: pd.DataFrame,
    labels: pd.DataFrame,
    config: RewardConfig,
    holdout_starts: Mapping[str, dt.date | None],
) -> tuple[pd.DataFrame, int]:
    """Reward rows (:data:`~sensequant_assets.training.reward_history.HISTORY_FIELDS`) of the
    ``calls`` (``date, symbol, model_id, call``: stored ``production_signals`` rows) whose
    labels have matured in ``labels`` (``date, symbol, label, forward_return``), and the number
    of matured calls refused as in-sample.

    ``holdout_starts`` maps each model id to the first date out of its training sample (its
    student's ``test_start``); a call before it, or of a model without one, is refused.
    """
    rows = matured(calls, labels) if len(calls) else pd.DataFrame()
    if rows.empty:
        return pd.DataFrame(columns=list(HISTORY_FIELDS)), 0
    starts = rows["model_id"].map(lambda m: holdout_starts.get(m))
    known = starts.notna()
    out_of_sample = known & (rows["date"] >= pd.to_datetime(starts.where(known)))
    kept = rows[out_of_sample.to_numpy()]
    predicted = kept["call"].map(CLASS_OF_CALL).to_numpy()
    returns = kept["forward_return"].to_numpy(dtype=float)
    frame = pd.DataFrame(
        {
            "date": kept["date"].to_numpy(),
            "symbol": kept["symbol"].astype(str).to_numpy(),
            "model_id": kept["model_id"].astype(str).to_numpy(),
            "source": LIVE,
            "predicted": predicted,
            "realized_return": returns,
            "reward": compute_rewards(predicted, returns, config),
        }
    )
    return frame, int((~out_of_sample).sum())


def append_live_rewards(layout: ArtifactLayout, rewards: pd.DataFrame) -> int:
    """Append ``rewards`` to each symbol's live history, skipping calls recorded before;
    returns the number of rows written."""
    written = 0
    for symbol, rows in rewards.groupby("symbol"):
        written += append_new_rewards(layout.reward_file(str(symbol)), history_records(rows))
    return written


def holdout_start_of(layout: ArtifactLayout, model_id: str) -> dt.date | None:
    """The first date out of ``model_id``'s training sample (its student's ``test_start``),
    read from its deployed copy in production, else its candidate bundle; None if neither
    holds a student."""
    places = [BundleLayout(layout.deployed_bundle(layout.production_dir, model_id)).student_dir]
    with contextlib.suppress(ValueError):  # not a candidate id: no bundle to look in
        places.append(layout.candidate(model_id).student_dir)
    for student_dir in places:
        metadata = ModelFiles.student(student_dir).metadata
        if metadata.is_file():
            return dt.date.fromisoformat(json.loads(metadata.read_text())["test_start"])
    return None


def record_live_rewards(training: Training, first: dt.date, last: dt.date) -> dict[str, Any]:
    """Reward the production calls that have matured by ``last`` (those dated from
    :data:`CATCH_UP_SESSIONS` + h sessions before ``first``), append the ones not recorded yet,
    and summarise what was done (counts, and the new rewards' metrics per model)."""
    horizon = training.teacher_config.label.horizon
    start = training.calendar.offset(first, -(horizon + CATCH_UP_SESSIONS))
    calls = training.warehouse.query(SIGNALS_TABLE, "date >= ? and date <= ?", [start, last])
    report: dict[str, Any] = {"first_call_date": start.isoformat(), "as_of": last.isoformat(),
                              "calls": len(calls)}  # fmt: skip
    if calls.empty:
        return {**report, "matured": 0, "refused_in_sample": 0, "written": 0, "models": {}}
    calls = calls.assign(date=pd.to_datetime(calls["date"]))
    symbols = sorted(calls["symbol"].astype(str).unique())
    labels = matured_labels(training, symbols, calls["date"].min().date(), last)
    starts = {m: holdout_start_of(training.layout, m) for m in calls["model_id"].unique()}
    rewards, refused = live_rewards(calls, labels, training.reward_config, starts)
    written = append_live_rewards(training.layout, rewards)
    models = {
        str(model): reward_metrics(rows["reward"].to_numpy())
        for model, rows in rewards.groupby("model_id")
    }
    return {**report, "matured": len(rewards) + refused, "refused_in_sample": refused,
            "written": written, "models": models}  # fmt: skip
