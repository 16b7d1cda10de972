"""What the books trade: the student's ranking of the day's symbols, not its argmax class.

A three-class model that is well calibrated can leave "up" as the most likely class of almost
no stock for weeks (the neutral band is wide, the edge is small) while its score
s = P(up) − P(down) still orders the day's stocks correctly; that ordering is what the rank-IC
test measures. So each day the books take the top :data:`BOOK_FRACTION` of symbols by s as
their long calls and the bottom fraction as their short calls (used only where shorts have a
cost model); the rest, and every symbol of a day with one symbol, are neutral. Ties keep the
rows' order, so the calls are deterministic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sensequant_assets.evaluation.skill import score
from sensequant_assets.features.labels import DOWN, NEUTRAL, UP

BOOK_FRACTION = 1 / 3


def book_calls(oos: pd.DataFrame, fraction: float = BOOK_FRACTION) -> pd.Series:
    """Per row of ``oos`` (``date``, ``p_up``, ``p_down``): UP, DOWN or NEUTRAL as above."""
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must lie in (0, 0.5], got {fraction}")
    frame = pd.DataFrame({"date": pd.to_datetime(oos["date"]).to_numpy(),
                          "s": score(oos).to_numpy(dtype=np.float64)})  # fmt: skip
    grouped = frame.groupby("date")["s"]
    rank = grouped.rank(method="first")
    count = grouped.transform("size")
    top = rank > count - np.floor(count * fraction)
    bottom = rank <= np.floor(count * fraction)
    calls = np.select([top & (count > 1), bottom & (count > 1)], [UP, DOWN], NEUTRAL)
    return pd.Series(calls, index=oos.index, name="predicted")
