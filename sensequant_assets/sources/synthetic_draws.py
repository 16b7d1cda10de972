"""The synthetic source's randomness: reproducible in every process, fat-tailed, clustered.

Every component draws from its own numpy Generator seeded with a BLAKE2 hash of its name
(``generator``), so a value never depends on what else was drawn or on ``hash()``'s per-process
salt; innovations are Student-t with ``T_DF`` degrees of freedom scaled to unit variance, and
their volatility follows a capped GARCH(1,1) (``garch_sigma``).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

T_DF = 4.0
GARCH_ALPHA = 0.08
GARCH_BETA = 0.90
VOL_CAP = 4.0


def stable_seed(*parts: object) -> int:
    """A 64-bit seed that, unlike ``hash()``, is the same in every process."""
    key = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def generator(*parts: object) -> np.random.Generator:
    return np.random.default_rng(stable_seed(*parts))


def uniform(low: float, high: float, *parts: object) -> float:
    return low + (high - low) * stable_seed(*parts) / 2.0**64


def log_uniform(low: float, high: float, *parts: object) -> float:
    return math.exp(uniform(math.log(low), math.log(high), *parts))


def student_t(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fat-tailed innovations with unit variance."""
    return rng.standard_t(T_DF, n) / math.sqrt(T_DF / (T_DF - 2.0))


def garch_sigma(z: np.ndarray, daily_vol: float) -> np.ndarray:
    """Conditional volatility path driven by the innovations ``z`` (σ_t is known before z_t).

    The variance is capped at ``VOL_CAP``² times its long-run level: with df-4 shocks the
    uncapped recursion occasionally spirals into 100 % daily moves that no market shows.
    """
    variance = daily_vol * daily_vol
    omega = variance * (1.0 - GARCH_ALPHA - GARCH_BETA)
    cap = variance * VOL_CAP * VOL_CAP
    path = []
    for shock in z.tolist():
        path.append(variance)
        variance = omega + (GARCH_ALPHA * shock * shock + GARCH_BETA) * variance
        if variance > cap:
            variance = cap
    return np.sqrt(np.asarray(path))
