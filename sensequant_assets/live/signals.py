"""A deployed student's calls for one NSE session: what ``production_signals`` stores.

The student is scored exactly as it was validated: causal features of each symbol's bars up to
and including the session, normalised within the session's cross-section, through the booster
whose SHA-256 :func:`~sensequant_assets.training.student_files.load_student` verified. A symbol is
scored only from a bar *on* the session: a symbol whose latest bar is older would be scored on
stale features, so it is reported instead (:class:`DayScores`), and the asset's checks fail on
it rather than silently carrying yesterday's call forward. The same features panel gives the
rows of the last :data:`~sensequant_assets.live.drift.WINDOW_SESSIONS` sessions, scored too,
which the drift checks compare with the student's training law.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.features import WARMUP_SESSIONS, compute_features_panel
from sensequant_assets.features.labels import DOWN, NEUTRAL, UP
from sensequant_assets.live.drift import SCORE, WINDOW_SESSIONS
from sensequant_assets.training.student import predict_probabilities
from sensequant_assets.training.student_files import stored_normalisation

#: Columns of a stored signal row; ``call`` is −1 / 0 / +1 for down / neutral / up.
SIGNAL_COLUMNS = (
    "date",
    "symbol",
    "model_id",
    "p_down",
    "p_neutral",
    "p_up",
    "score",
    "call",
    "feature_date",
)
#: The stored dtype of each signal column (the warehouse table's schema).
SIGNAL_TYPES = {"date": "datetime64[ns]", "symbol": "object", "model_id": "object",
                "p_down": "float64", "p_neutral": "float64", "p_up": "float64",
                "score": "float64", "call": "int64", "feature_date": "datetime64[ns]"}  # fmt: skip
CALL_OF_CLASS = {DOWN: -1, NEUTRAL: 0, UP: 1}
#: Sessions of history read before the scored one. The exponential averages (EMA 50 at most,
#: weight (1 − 2/51) per session) never forget their first value: 400 sessions past the
#: warm-up shrink its weight below 1e-7, so a day scored from this window and the same day
#: inside a longer history agree to that precision (the drift window's first session, 19
#: sessions earlier, to 3e-7).
HISTORY_SESSIONS = WARMUP_SESSIONS + 400


@dataclass(frozen=True)
class DayScores:
    """One session's signals and the universe symbols that could not be scored, with why.

    ``window``: the complete feature rows (``date``, ``symbol``, the model's raw features,
    ``score``) of the fresh symbols over the last sessions up to the day, for the drift checks.
    """

    day: dt.date
    model_id: str
    signals: pd.DataFrame
    without_bars: list[str] = field(default_factory=list)
    stale: dict[str, str] = field(default_factory=dict)
    incomplete: list[str] = field(default_factory=list)
    window: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def unscored(self) -> list[str]:
        return sorted({*self.without_bars, *self.stale, *self.incomplete})

    def summary(self, universe: Sequence[str]) -> dict[str, Any]:
        """Counts and the unscored symbols by reason, JSON-able (asset metadata, the CLI)."""
        calls = self.signals["call"].value_counts().to_dict() if len(self.signals) else {}
        return {
            "day": self.day.isoformat(),
            "model_id": self.model_id,
            "universe": len(universe),
            "scored": len(self.signals),
            "long": int(calls.get(1, 0)),
            "neutral": int(calls.get(0, 0)),
            "short": int(calls.get(-1, 0)),
            "without_bars": self.without_bars,
            "stale": self.stale,
            "incomplete_features": self.incomplete,
        }


def history_start(calendar: TradingCalendar, day: dt.date) -> dt.date:
    """The first session whose bars the features of ``day`` may read."""
    return calendar.offset(day, -HISTORY_SESSIONS)


def score_day(
    booster: lgb.Booster,
    metadata: Mapping[str, Any],
    model_id: str,
    bars: pd.DataFrame,
    day: dt.date,
    universe: Sequence[str],
    sentiment: pd.DataFrame | None = None,
) -> DayScores:
    """The calls for ``day`` of every ``universe`` symbol with a bar on ``day``, and the
    scored rows of the last :data:`WINDOW_SESSIONS` sessions with bars (``DayScores.window``).

    ``bars``: stored rows (``date, symbol, open, high, low, close, volume``) up to ``day``
    (later rows are ignored, so a re-run after more data arrived gives the same calls);
    ``sentiment``: ``date, symbol, sentiment_score`` when the student was trained with it.
    """
    names: list[str] = list(metadata["feature_names"])
    wants_sentiment = "sentiment_score" in names
    if wants_sentiment and sentiment is None:
        raise ValueError(f"{model_id} was trained with sentiment features: pass the scores")
    stamp = pd.Timestamp(day)
    fresh, without, stale = _fresh_bars(bars, stamp, universe)
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in SIGNAL_COLUMNS})
    if fresh.empty:
        return DayScores(day, model_id, empty, without, stale)
    features = compute_features_panel(
        fresh.sort_values(["symbol", "date"]).reset_index(drop=True),
        sentiment if wants_sentiment else None,
    )
    dates = pd.to_datetime(features["date"])
    recent = features[dates >= dates.drop_duplicates().nlargest(WINDOW_SESSIONS).min()]
    complete = recent[names].notna().all(axis=1)
    on_day = pd.to_datetime(recent["date"]) == stamp
    incomplete = sorted(recent.loc[on_day & ~complete, "symbol"].astype(str))
    scored = recent[complete].reset_index(drop=True)
    if scored.empty:
        return DayScores(day, model_id, empty, without, stale, incomplete)
    # One prediction for the window: each row's inputs are ranked within its own date only.
    window_p = predict_probabilities(booster, scored, names, stored_normalisation(metadata))
    window = scored[["date", "symbol", *names]].assign(
        **{SCORE: window_p[:, UP] - window_p[:, DOWN]}
    )
    today = (pd.to_datetime(scored["date"]) == stamp).to_numpy()
    rows, probabilities = scored[today].reset_index(drop=True), window_p[today]
    if rows.empty:
        return DayScores(day, model_id, empty, without, stale, incomplete, window)
    signals = _calls(stamp, rows["symbol"], model_id, probabilities)
    return DayScores(day, model_id, signals, without, stale, incomplete, window)


def _fresh_bars(
    bars: pd.DataFrame, stamp: pd.Timestamp, universe: Sequence[str]
) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """The bars up to the day of the universe's symbols whose last bar is on the day, the
    symbols with no bar at all, and the stale ones with the date of their last bar."""
    bars = bars[pd.to_datetime(bars["date"]) <= stamp]
    bars = bars[bars["symbol"].isin(universe)]
    last = bars.groupby("symbol")["date"].max() if len(bars) else pd.Series(dtype=object)
    without = sorted(set(universe) - set(last.index))
    stale = {
        str(s): pd.Timestamp(d).date().isoformat()
        for s, d in last.items()
        if pd.Timestamp(d) < stamp
    }
    return bars[~bars["symbol"].isin(list(stale))], without, stale


def _calls(
    stamp: pd.Timestamp, symbols: pd.Series, model_id: str, probabilities: np.ndarray
) -> pd.DataFrame:
    """The day's signal rows, by symbol: class probabilities, score and call."""
    classes = probabilities.argmax(axis=1)
    signals = pd.DataFrame(
        {
            "date": stamp,
            "symbol": symbols.astype(str),
            "model_id": model_id,
            "p_down": probabilities[:, DOWN],
            "p_neutral": probabilities[:, NEUTRAL],
            "p_up": probabilities[:, UP],
            "score": probabilities[:, UP] - probabilities[:, DOWN],
            "call": np.vectorize(CALL_OF_CLASS.__getitem__)(classes).astype("int64"),
            "feature_date": stamp,
        }
    )
    return signals.sort_values("symbol").reset_index(drop=True)


def format_calls(signals: pd.DataFrame) -> list[str]:
    """The day's calls as aligned lines, strongest score first (``sensequant signals``)."""
    if signals.empty:
        return ["no signals stored for this day"]
    words = {1: "long", 0: "neutral", -1: "short"}
    ordered = signals.sort_values("score", ascending=False)
    lines = [f"{'symbol':<12} {'call':<8} {'score':>7} {'p_down':>7} {'p_neutral':>9} {'p_up':>7}"]
    lines += [
        f"{row.symbol:<12} {words[int(row.call)]:<8} {row.score:>+7.3f} {row.p_down:>7.3f} "
        f"{row.p_neutral:>9.3f} {row.p_up:>7.3f}"
        for row in ordered.itertuples()
    ]
    return lines


def merge_summaries(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One coverage summary over several sessions' :meth:`DayScores.summary` (a backfill
    scores many in one run)."""
    return {
        "universe": sum(s["universe"] for s in summaries),
        "scored": sum(s["scored"] for s in summaries),
        "long": sum(s["long"] for s in summaries),
        "short": sum(s["short"] for s in summaries),
        "without_bars": sorted({x for s in summaries for x in s["without_bars"]}),
        "stale": {k: v for s in summaries for k, v in s["stale"].items()},
        "incomplete_features": sorted({x for s in summaries for x in s["incomplete_features"]}),
    }
