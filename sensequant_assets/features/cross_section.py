"""Per-day cross-sectional normalisation: each feature value against the same day's symbols.

A pooled model sees features whose level moves with the whole market (every stock's 20-session
return is high after a rally, every stock's volatility high in a crash). Those common swings
are what a time-ordered fold cannot learn from: they are few, slow and do not repeat. What
carries over from one period to the next is the *ordering* of stocks on a day, so both the
ridge baseline and the student read features normalised within each date.

Causal by construction: a value at date t is compared only with other symbols' values at the
same t (themselves causal features), never with another date; adding, removing or editing
rows of other dates leaves it unchanged. A date with a single symbol maps to 0 (it is the
middle of its own cross-section), and NaN stays NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

Normalisation = Literal["none", "rank", "zscore"]
NORMALISATIONS: tuple[str, ...] = ("none", "rank", "zscore")
ZSCORE_CLIP = 4.0


def cross_sectional_rank(
    frame: pd.DataFrame, columns: Sequence[str], date_column: str = "date"
) -> pd.DataFrame:
    """Each value's rank among the date's values, mapped to [−0.5, 0.5] (ties share a rank).

    (rank − 1)/(n − 1) − 0.5 puts the day's lowest at −0.5 and highest at +0.5 whatever the
    number of symbols, so a day with fewer symbols is not squeezed towards the middle.
    """
    grouped = frame.groupby(date_column, sort=False)[list(columns)]
    ranks = grouped.rank(method="average")
    counts = grouped.transform("count")
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = (ranks - 1.0) / (counts - 1.0) - 0.5
    return scaled.where(counts > 1, ranks * 0.0)


def cross_sectional_zscore(
    frame: pd.DataFrame, columns: Sequence[str], date_column: str = "date"
) -> pd.DataFrame:
    """(value − the date's mean) / the date's std, clipped at ±:data:`ZSCORE_CLIP`.

    A date whose values are all equal (or single) maps to 0. The clip keeps one fat-tailed
    outlier from dominating a linear fit.
    """
    grouped = frame.groupby(date_column, sort=False)[list(columns)]
    centred = frame[list(columns)] - grouped.transform("mean")
    spread = grouped.transform("std", ddof=0)
    z = centred / spread.where(spread > 0)
    z = z.where(spread.ne(0) | centred.isna(), 0.0)
    return z.clip(-ZSCORE_CLIP, ZSCORE_CLIP)


def normalised_matrix(
    frame: pd.DataFrame, columns: Sequence[str], method: Normalisation, date_column: str = "date"
) -> np.ndarray:
    """The float matrix of ``columns``, normalised per date by ``method`` ("none": as is)."""
    if method == "none":
        return frame[list(columns)].to_numpy(dtype=np.float64)
    if method == "rank":
        return cross_sectional_rank(frame, columns, date_column).to_numpy(dtype=np.float64)
    if method == "zscore":
        return cross_sectional_zscore(frame, columns, date_column).to_numpy(dtype=np.float64)
    raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {method!r}")
