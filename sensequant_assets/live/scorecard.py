"""How the deployed model's calls hold up live, against what its walk-forward promised.

A call made on session t is judged once its label matures, h sessions later, with the very
measures the gate read out of sample (:mod:`~sensequant_assets.evaluation.skill`): the daily
rank IC of the score, the hit rate of the call against the three-class label, and the net
top-minus-bottom spread. Single days are noise (a NIFTY 100 day's rank IC has a standard
deviation near 0.1), so each measure is averaged over a rolling window of W matured sessions
and compared with the *band* the walk-forward implies for that window: the 5th-95th
percentiles of the same W-session rolling mean over the candidate's out-of-sample days. A model
doing what it did out of sample sits inside the band about 90% of the time; the demotion rule
counts consecutive sessions below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.evaluation.skill import daily_rank_ic, daily_spread
from sensequant_assets.live.signals import CALL_OF_CLASS

WINDOW_SESSIONS = 20
BAND_QUANTILES = (0.05, 0.95)
MEASURES = ("rank_ic", "hit_rate", "spread_net")
_CLASS_OF_CALL = {call: cls for cls, call in CALL_OF_CLASS.items()}


@dataclass(frozen=True)
class Band:
    """The walk-forward's range for a W-session rolling mean of one measure."""

    window: int
    low: float
    median: float
    high: float
    sessions: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def matured(signals: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Signal rows joined to their labels (``date, symbol, label, forward_return``), keeping
    only those whose label has matured (non-missing)."""
    known = labels.dropna(subset=["label", "forward_return"])
    keys = ["date", "symbol"]
    frame = signals.assign(date=pd.to_datetime(signals["date"])).merge(
        known.assign(date=pd.to_datetime(known["date"]))[[*keys, "label", "forward_return"]],
        on=keys,
        how="inner",
    )
    return frame.assign(label=frame["label"].astype("int64"))


def daily_measures(
    rows: pd.DataFrame, cost_per_holding: float, sectors: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Per matured session: rank IC, hit rate (call vs label) and net spread.

    ``rows`` carries ``date, symbol, p_down, p_up, forward_return, label`` and ``call``
    (−1/0/+1) or, for walk-forward rows, ``predicted`` (the class); ``cost_per_holding`` is
    subtracted from the spread as in ``stat_tests``' ``spread_net``; ``sectors`` makes the rank
    IC sector-neutral, as the gate's.
    """
    classes = rows["call"].map(_CLASS_OF_CALL) if "call" in rows else rows["predicted"]
    hits = pd.Series(
        (classes.to_numpy() == rows["label"].to_numpy()).astype(np.float64),
        index=pd.to_datetime(rows["date"]),
    )
    return pd.DataFrame(
        {
            "rank_ic": daily_rank_ic(rows, sectors=sectors),
            "hit_rate": hits.groupby(level=0).mean(),
            "spread_net": daily_spread(rows) - cost_per_holding,
        }
    ).sort_index()


def walk_forward_bands(daily: pd.DataFrame, window: int = WINDOW_SESSIONS) -> dict[str, Band]:
    """Each measure's band for a ``window``-session rolling mean over the walk-forward days.

    Raises ``LookupError`` (the band is unknown, as for a missing walk-forward) when a measure
    has fewer days than the window: e.g. a sector-neutral rank IC over one symbol per sector.
    """
    bands = {}
    for measure in MEASURES:
        rolling = daily[measure].dropna().rolling(window).mean().dropna()
        if rolling.empty:
            raise LookupError(
                f"the walk-forward has {daily[measure].notna().sum()} days of {measure}: fewer "
                f"than the {window}-session window the band needs"
            )
        low, high = rolling.quantile(list(BAND_QUANTILES))
        bands[measure] = Band(
            window, float(low), float(rolling.median()), float(high), len(rolling)
        )
    return bands


def scorecard(daily: pd.DataFrame, bands: Mapping[str, Band]) -> dict[str, Any]:
    """Latest rolling value of each measure, where it sits against its band, and for how many
    consecutive sessions (ending with the latest) it has been below the band."""
    report: dict[str, Any] = {"matured_sessions": len(daily), "measures": {}}
    for measure, band in bands.items():
        rolling = daily[measure].dropna().rolling(band.window).mean().dropna()
        below = (rolling < band.low).to_numpy()
        streak = int(np.argmin(below[::-1])) if not below.all() else len(below)
        report["measures"][measure] = {
            "rolling": float(rolling.iloc[-1]) if len(rolling) else None,
            "band": band.to_dict(),
            "position": _position(rolling, band),
            "sessions_below_band": streak,
            "history": [
                {"date": d.date().isoformat(), "value": float(v)} for d, v in rolling.items()
            ],
        }
    return report


def _position(rolling: pd.Series, band: Band) -> str:
    if rolling.empty:
        return f"not enough matured sessions (need {band.window})"
    value = rolling.iloc[-1]
    if value < band.low:
        return "below band"
    return "above band" if value > band.high else "inside band"
