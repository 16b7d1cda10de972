"""A one-sided test of a daily mean that holds its size under overlapping h-session labels.

A daily statistic built on h-session forward returns (a rank IC, a hit rate, a spread) is
MA(h−1)-dependent: consecutive days share h−1 sessions of the same returns. Tests that treat
days as independent, or bootstrap them with a data-chosen block length, over-reject (the
stationary bootstrap rejected 8.1% at a nominal 5% on MA(6) nulls, n = 550).

Here the series is cut into consecutive, non-overlapping batches of ``block_factor × h``
days; their means are close to independent (for MA(h−1) with equal weights and 4h-day
batches, adjacent batch means correlate about 0.04) and close to normal, so a Student t test
on the batch means with ``n_batches − 1`` degrees of freedom keeps its size. The price is a
few degrees of freedom. ``bench/bench_test_size.py`` and ``test_block_test.py`` measure the
size by simulation under MA(h−1) nulls at the pilot's and a NIFTY 100 run's lengths.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

BLOCK_FACTOR = 4
MIN_BATCHES = 5


def batch_means(values: np.ndarray, batch: int) -> np.ndarray:
    """Means of consecutive batches of ``batch`` values; the oldest remainder is dropped, so
    the most recent days always count."""
    n = len(values) // batch
    if n == 0:
        return np.empty(0)
    return values[len(values) - n * batch :].reshape(n, batch).mean(axis=1)


def block_mean_test(
    daily: pd.Series | np.ndarray, horizon: int, block_factor: int = BLOCK_FACTOR
) -> dict[str, Any]:
    """H0: the mean of ``daily`` is ≤ 0; H1: it is > 0. NaN days are dropped.

    Returns the mean, the t statistic and one-sided p-value of the batch means, the batch
    length and count; ``p_value`` is None with fewer than :data:`MIN_BATCHES` batches (too
    little history to say anything).
    """
    if horizon < 1 or block_factor < 1:
        raise ValueError(f"horizon and block_factor must be ≥ 1, got {horizon}, {block_factor}")
    values = np.asarray(daily, dtype=np.float64)
    values = values[np.isfinite(values)]
    batch = block_factor * horizon
    means = batch_means(values, batch)
    result: dict[str, Any] = {
        "mean": float(values.mean()) if len(values) else None,
        "days": len(values),
        "batch_days": batch,
        "batches": len(means),
        "t": None,
        "p_value": None,
    }
    if len(means) < MIN_BATCHES:
        return result
    spread = float(means.std(ddof=1))
    if spread == 0.0:
        t = math.inf if means.mean() > 0 else (-math.inf if means.mean() < 0 else 0.0)
    else:
        t = float(means.mean() / (spread / math.sqrt(len(means))))
    result["t"] = t if math.isfinite(t) else None
    result["p_value"] = float(stats.t.sf(t, df=len(means) - 1))
    return result
