"""Null series for the size studies: shared by ``test_block_test.py`` and
``bench/bench_test_size.py``, so the suite and the benchmark measure the same null."""

from __future__ import annotations

import numpy as np


def ma_null(rng: np.random.Generator, n: int, horizon: int, reps: int) -> np.ndarray:
    """``reps`` zero-mean MA(h−1) series of length n: sums of h consecutive t(5) shocks, as
    overlapping h-session returns are; heavy tails like daily equity returns."""
    shocks = rng.standard_t(5, size=(reps, n + horizon - 1))
    window = np.cumsum(shocks, axis=1)
    sums = window[:, horizon - 1 :] - np.concatenate(
        [np.zeros((reps, 1)), window[:, : n - 1]], axis=1
    )
    return sums
