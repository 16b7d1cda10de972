"""The signal the synthetic source can plant, as a model sees it: its best causal observable
(``planted_signal``), the gain that gives a target IC (``signal_gain``) and the measurement
that table comes from (``signal_ics``).

``signal_ic`` is the mean over sessions t of the cross-sectional Spearman correlation, across
the default universe's 100 equities, between ``planted_signal`` at t and the log return from
close t to close t+7 in excess of the NIFTY 50's, over 2022-2024 (``signal_ics`` computes it).
``planted_signal(close)`` is the best causal observable of f: its steady-state Kalman filter
from the symbol's own log returns in the weak-signal limit, Σ_k (1 - φ)·φ^k·r_{t-k}, divided by
an EWMA estimate of σ. ``signal_gain`` finds g in ``_IC_TABLE``, measured on 20 seeds by
``bench/bench_synthetic_signal.py``; docs/synthetic.md has the tables. At 0.05 the latent f's
own IC is about 0.16: most of what drives prices cannot be seen in them, as in markets.

The source (:mod:`.synthetic`) draws the latent factor f and adds its drift; nothing here
draws.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sensequant_assets.universe import INDEX_SYMBOL

if TYPE_CHECKING:
    from sensequant_assets.sources.synthetic import SyntheticSource

SIGNAL_HALF_LIFE = 40
SIGNAL_PHI = 0.5 ** (1.0 / SIGNAL_HALF_LIFE)
SCALE_HALF_LIFE = 250
SIGNAL_WARMUP = 120
IC_HORIZON = 7
MOMENTUM_HORIZONS = (5, 10, 20)

# (g, mean daily rank IC of planted_signal) as printed by bench/bench_synthetic_signal.py
_IC_TABLE: tuple[tuple[float, float], ...] = (
    (0.0, 0.0), (0.015, 0.0054), (0.02, 0.0101), (0.025, 0.0161), (0.03, 0.023),
    (0.035, 0.0308), (0.04, 0.0395), (0.045, 0.0489), (0.05, 0.0588), (0.06, 0.0799),
    (0.07, 0.1019), (0.08, 0.1243), (0.09, 0.1468), (0.1, 0.1689),
)  # fmt: skip


def planted_signal(close: pd.Series) -> pd.Series:
    """The steady-state estimate of the latent factor from one symbol's own closes up to t.

    ``close`` must be one symbol's closes in session order. The filter starts from the prior
    mean 0 at the first close, so the value at t uses closes up to t only; it is NaN for the
    first ``SIGNAL_WARMUP`` sessions, while the volatility scale is still settling.
    """
    returns = np.log(close.astype("float64")).diff()
    level = returns.fillna(0.0).ewm(alpha=1.0 - SIGNAL_PHI, adjust=False).mean()
    scale = np.sqrt((returns**2).ewm(halflife=SCALE_HALF_LIFE, ignore_na=True).mean())
    signal = level / scale
    signal.iloc[:SIGNAL_WARMUP] = np.nan
    return signal.rename("planted_signal")


def signal_gain(signal_ic: float) -> float:
    """The drift gain g whose ``planted_signal`` has mean daily rank IC ``signal_ic``.

    Interpolated against √IC: for weak signals IC ∝ g² (how well f can be estimated and how
    much it moves prices each grow with g), so √IC is nearly linear in g down to 0.
    """
    gains, ics = zip(*_IC_TABLE, strict=True)
    return float(np.interp(math.sqrt(signal_ic), np.sqrt(ics), gains))


def daily_rank_ic(scores: pd.DataFrame, forward: pd.DataFrame) -> pd.Series:
    """Per date (row), the Spearman correlation across symbols (columns) of the two tables."""
    both = scores.notna() & forward.notna()
    ic = scores.where(both).rank(axis=1).corrwith(forward.where(both).rank(axis=1), axis=1)
    return ic[both.sum(axis=1) >= 3]


def signal_ics(
    source: SyntheticSource, symbols: Sequence[str], start: dt.date, end: dt.date
) -> dict[str, float]:
    """Mean daily rank IC over ``[start, end]`` of the planted observable and its rivals.

    Scores are ``planted_signal``, the latent factor itself and the 5/10/20-session log
    returns; the forward return is the ``IC_HORIZON``-session log return in excess of the
    index. Closes from a year before ``start`` warm the filter up.
    """
    history = start - dt.timedelta(days=365)
    closes = pd.DataFrame(
        {s: source.fetch(s, history, end).set_index("date")["close"] for s in symbols}
    )
    log_close = np.log(closes)
    index = np.log(source.fetch(INDEX_SYMBOL, history, end).set_index("date")["close"])
    forward = log_close.shift(-IC_HORIZON) - log_close
    forward = forward.sub(index.shift(-IC_HORIZON) - index, axis=0)
    scores = {
        "planted_signal": closes.apply(planted_signal),
        "latent_factor": pd.DataFrame({s: source.latent_factor(s, history, end) for s in symbols}),
        **{f"momentum_{h}": log_close - log_close.shift(h) for h in MOMENTUM_HORIZONS},
    }
    measured = closes.index >= pd.Timestamp(start)
    return {
        name: float(daily_rank_ic(score[measured], forward[measured]).mean())
        for name, score in scores.items()
    }
