"""Significance tests that respect autocorrelation and multiple testing.

Daily strategy returns and daily scores are serially dependent, so an iid bootstrap or a
t-test understates uncertainty; the tests here resample with the stationary bootstrap
(Politis & Romano 1994) using an automatically chosen mean block length (Politis & White 2004,
corrected by Patton, Politis & White 2009). Model selection evaluates many trials, so the
best Sharpe ratio is judged against what the best of N lucky trials would show: the deflated
Sharpe ratio (Bailey & López de Prado 2014) and the probability of backtest overfitting by
combinatorially symmetric cross-validation (Bailey, Borwein, López de Prado & Zhu 2017).

Conventions: Sharpe ratios here are PER PERIOD (mean / std with ddof=1, not annualised);
skewness and kurtosis are the moment (biased) estimators m3 / m2**1.5 and m4 / m2**2, with
RAW kurtosis (3 for a normal distribution). Values that are undefined come back as NaN from
the float-returning functions and as None inside the dict-returning ones (JSON-safe).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from sensequant_assets.evaluation.performance import finite_1d

EULER_GAMMA = 0.5772156649015329
PERIODS_PER_YEAR = 252


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def none_if_nan(value: float) -> float | None:
    """A JSON-safe float: None for NaN or inf."""
    return None if not math.isfinite(value) else float(value)


# --------------------------------------------------------------------------- block bootstrap


def _flat_top(t: np.ndarray) -> np.ndarray:
    """Politis–Romano trapezoidal flat-top lag window: 1 up to |t|=1/2, linear to 0 at |t|=1."""
    a = np.abs(t)
    return np.where(a <= 0.5, 1.0, np.where(a <= 1.0, 2.0 * (1.0 - a), 0.0))


def optimal_block_length(x: Any) -> float:
    """Automatic mean block length for the stationary bootstrap of the mean of ``x``.

    Politis, D. N. & White, H. (2004), "Automatic block-length selection for the dependent
    bootstrap", Econometric Reviews 23(1), 53-70, with the correction of Patton, A., Politis,
    D. N. & White, H. (2009), Econometric Reviews 28(4), 372-375 (D_SB = 2 g(0)^2).

    Steps: autocorrelations up to m_max = ceil(sqrt(n)) + K_N with K_N = max(5,
    ceil(sqrt(log10 n))); m̂ = smallest lag m >= 1 after which K_N consecutive
    autocorrelations are all below 2 * sqrt(log10(n) / n) (if there is no such run, the
    largest significant lag); bandwidth M = min(2 m̂, m_max). With the flat-top window λ,
    G = Σ λ(k/M)|k|R(k) and g(0) = Σ λ(k/M)R(k) over |k| <= M, and
    b = (2 G^2 / D_SB)^(1/3) n^(1/3). The result is clamped to [1, n/3]: shorter blocks are
    meaningless, longer ones leave too few distinct blocks to resample.
    """
    values = finite_1d(x)
    n = values.size
    upper = max(1.0, n / 3.0)
    if n < 4 or values.max() == values.min():
        return 1.0
    centred = values - values.mean()
    k_n = max(5, math.ceil(math.sqrt(math.log10(n))))
    m_max = min(math.ceil(math.sqrt(n)) + k_n, n - 1)
    acov = np.array([centred[: n - k] @ centred[k:] / n for k in range(m_max + 1)])
    rho = acov[1:] / acov[0]  # rho[k - 1] is the lag-k autocorrelation
    insignificant = np.abs(rho) < 2.0 * math.sqrt(math.log10(n) / n)

    m_hat = None
    for m in range(1, m_max - k_n + 1):
        if insignificant[m : m + k_n].all():  # lags m+1 .. m+K_N
            m_hat = m
            break
    if m_hat is None:
        significant = np.flatnonzero(~insignificant)
        m_hat = int(significant[-1]) + 1 if significant.size else 1
    bandwidth = min(2 * m_hat, m_max)

    lags = np.arange(-bandwidth, bandwidth + 1)
    weights = _flat_top(lags / bandwidth)
    autocov = acov[np.abs(lags)]
    g_big = float(np.sum(weights * np.abs(lags) * autocov))
    g_zero = float(np.sum(weights * autocov))
    d_sb = 2.0 * g_zero**2
    if d_sb == 0.0:
        return upper
    block = (2.0 * g_big**2 / d_sb) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(min(max(block, 1.0), upper))


def stationary_bootstrap_indices(
    n: int, mean_block: float, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Index matrix (n_boot, n) of stationary-bootstrap resamples (Politis & Romano 1994).

    Each resample is a chain of blocks with uniformly random starts and geometric lengths of
    mean ``mean_block`` (a new block starts at each position with probability 1/mean_block),
    wrapping around the end of the series. Random blocks keep the resampled series stationary,
    which fixed-length blocks do not. Built with array operations only: the position of the
    current block's start is a running maximum over the "new block here" flags. Indices are
    int32 unless n is huge, to halve memory and time.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not mean_block >= 1.0:
        raise ValueError(f"mean_block must be >= 1, got {mean_block}")
    dtype = np.int32 if n < 2**30 else np.int64
    new_block = rng.random((n_boot, n)) < 1.0 / mean_block
    new_block[:, 0] = True
    positions = np.arange(n, dtype=dtype)
    block_start = np.where(new_block, positions, dtype(0))
    np.maximum.accumulate(block_start, axis=1, out=block_start)
    # one uniform start per block, looked up through a running block number
    block_id = np.cumsum(new_block.ravel(), dtype=np.int64 if n_boot * n >= 2**31 else dtype)
    block_id -= 1
    starts = rng.integers(0, n, size=int(block_id[-1]) + 1, dtype=dtype)
    indices = starts[block_id].reshape(n_boot, n)
    indices += positions
    indices -= block_start
    np.remainder(indices, n, out=indices)
    return indices


def _resampled_statistic(
    values: np.ndarray, indices: np.ndarray, statistic: Callable[..., Any]
) -> np.ndarray:
    """``statistic`` of every resample; vectorised when it accepts ``axis=1`` (numpy reducers)."""
    samples = values[indices]
    try:
        out = np.asarray(statistic(samples, axis=1), dtype=float)
        if out.shape == (indices.shape[0],):
            return out
    except TypeError:
        pass
    return np.array([float(statistic(row)) for row in samples])


def bootstrap_ci(
    x: Any,
    statistic: Callable[..., Any] = np.mean,
    n_boot: int = 2000,
    confidence: float = 0.95,
    mean_block: float | None = None,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Percentile confidence interval of ``statistic(x)`` under the stationary bootstrap.

    ``mean_block`` defaults to :func:`optimal_block_length` of ``x``. ``statistic`` is called
    as ``statistic(samples, axis=1)`` when it supports that, else once per resample.
    """
    values = finite_1d(x)
    if values.size < 2:
        raise ValueError(f"need at least 2 observations, got {values.size}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    block = optimal_block_length(values) if mean_block is None else float(mean_block)
    indices = stationary_bootstrap_indices(values.size, block, n_boot, _rng(seed))
    boot = _resampled_statistic(values, indices, statistic)
    tail = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(boot, [tail, 1.0 - tail])
    return {
        "estimate": float(statistic(values)),
        "lower": float(lower),
        "upper": float(upper),
        "confidence": confidence,
        "mean_block": block,
        "n_boot": n_boot,
        "method": "stationary bootstrap, percentile",
    }


def _paired_difference(a: Any, b: Any) -> np.ndarray:
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        common = a.index.intersection(b.index)
        a, b = a.reindex(common), b.reindex(common)
    left, right = finite_1d(a, "a"), finite_1d(b, "b")
    if left.shape != right.shape:
        raise ValueError(f"a and b differ in length ({left.size} vs {right.size})")
    return left - right


def paired_bootstrap_test(
    a: Any,
    b: Any,
    n_boot: int = 2000,
    mean_block: float | None = None,
    seed: int | None = 0,
) -> dict[str, Any]:
    """One-sided test of H0: mean(a - b) <= 0 against H1: mean(a - b) > 0 on paired series.

    The difference series d is resampled with the stationary bootstrap (keeping its serial
    dependence). The null distribution is that of the resampled mean of d - mean(d), and
    p = (1 + #{null means >= observed mean}) / (1 + n_boot), which is never 0. ``ci`` is the
    two-sided 95% percentile interval of mean(d) from the same, uncentred, resamples. Two
    pandas Series are aligned on their common index first.

    Zero-variance differences (all d equal) carry no sampling noise: every null mean is 0, so
    the formula gives p = 1 / (1 + n_boot), the strongest evidence this test can report, when
    the common difference is positive, and p = 1.0 when it is <= 0. This case is handled
    exactly rather than through floating-point residue of d - mean(d).

    Block-bootstrap variances are biased low in short samples, so the test is mildly liberal
    there: in simulations with AR(1) (φ=0.5) null differences it rejected about 8.9% at
    nominal 5% for n=250, 6.4% for n=500 and 5.3% for n=1000 (1,000 series each).
    """
    d = _paired_difference(a, b)
    n = d.size
    if n < 2:
        raise ValueError(f"need at least 2 paired observations, got {n}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    observed = float(d.mean())
    if d.max() == d.min():
        observed = float(d[0])
        return {
            "mean_difference": observed,
            "p_value": 1.0 / (1 + n_boot) if observed > 0 else 1.0,
            "ci": [observed, observed],
            "n": n,
            "mean_block": 1.0 if mean_block is None else float(mean_block),
            "n_boot": n_boot,
        }
    block = optimal_block_length(d) if mean_block is None else float(mean_block)
    indices = stationary_bootstrap_indices(n, block, n_boot, _rng(seed))
    boot_means = d[indices].mean(axis=1)
    null_means = boot_means - observed
    p_value = (1 + int(np.count_nonzero(null_means >= observed))) / (1 + n_boot)
    lower, upper = np.quantile(boot_means, [0.025, 0.975])
    return {
        "mean_difference": observed,
        "p_value": float(p_value),
        "ci": [float(lower), float(upper)],
        "n": n,
        "mean_block": block,
        "n_boot": n_boot,
    }


# --------------------------------------------------------------------- Sharpe under selection


def sharpe_moments(returns: Any) -> tuple[float, float, float, int]:
    """Per-period Sharpe (ddof=1), moment skewness, raw moment kurtosis and T."""
    r = finite_1d(returns, "returns")
    t = r.size
    if t < 2 or r.max() == r.min():
        return math.nan, math.nan, math.nan, t
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    skew = float(np.mean(centred**3)) / m2**1.5
    kurt = float(np.mean(centred**4)) / m2**2
    return float(r.mean() / r.std(ddof=1)), skew, kurt, t


def psr_from_moments(sharpe: float, skew: float, kurt: float, t: int, sr_benchmark: float) -> float:
    if not math.isfinite(sharpe):
        return math.nan
    variance_term = 1.0 - skew * sharpe + (kurt - 1.0) / 4.0 * sharpe**2
    if variance_term <= 0.0:
        return math.nan
    z = (sharpe - sr_benchmark) * math.sqrt(t - 1) / math.sqrt(variance_term)
    return float(norm.cdf(z))


def probabilistic_sharpe_ratio(returns: Any, sr_benchmark: float = 0.0) -> float:
    """Probability that the true per-period Sharpe exceeds ``sr_benchmark`` (Bailey & López de
    Prado 2012), allowing for the sample length and non-normal returns:

    PSR = Φ((SR̂ - SR*) √(T-1) / √(1 - γ3 SR̂ + (γ4 - 1)/4 SR̂²)),

    with SR̂ = mean / std (ddof=1) per period, γ3 the skewness and γ4 the RAW kurtosis.
    NaN when undefined (fewer than 2 returns or constant returns).
    """
    sharpe, skew, kurt, t = sharpe_moments(returns)
    return psr_from_moments(sharpe, skew, kurt, t, sr_benchmark)


def expected_max_sharpe(trial_sharpes: Any) -> float:
    """Expected maximum per-period Sharpe of N trials whose true Sharpe is zero (SR₀).

    SR₀ = σ(SR) [(1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e))] with γ the Euler–Mascheroni
    constant and σ the sample (ddof=1) dispersion of the trials' Sharpes (Bailey & López de
    Prado 2014). A single trial has no selection to correct for: 0.0.
    """
    sharpes = finite_1d(trial_sharpes, "trial_sharpes")
    n = sharpes.size
    if n == 0:
        raise ValueError("trial_sharpes is empty; pass the Sharpe of every trial evaluated")
    if n == 1:
        return 0.0
    sigma = float(np.std(sharpes, ddof=1))
    quantiles = (1.0 - EULER_GAMMA) * norm.ppf(1.0 - 1.0 / n) + EULER_GAMMA * norm.ppf(
        1.0 - 1.0 / (n * math.e)
    )
    return float(sigma * quantiles)


def deflated_sharpe_ratio(returns: Any, trial_sharpes: Any) -> dict[str, Any]:
    """PSR of the selected strategy against SR₀, the best Sharpe expected from luck alone.

    ``trial_sharpes`` are the per-period Sharpes of EVERY trial evaluated (including the
    selected one); leaving trials out inflates the result. DSR >= 0.95 is the usual bar.
    Undefined values are None.
    """
    sharpe, skew, kurt, t = sharpe_moments(returns)
    sr0 = expected_max_sharpe(trial_sharpes)
    return {
        "dsr": none_if_nan(psr_from_moments(sharpe, skew, kurt, t, sr0)),
        "sr0": sr0,
        "n_trials": int(np.asarray(trial_sharpes).size),
        "sharpe": none_if_nan(sharpe),
        "sharpe_annualized": none_if_nan(sharpe * math.sqrt(PERIODS_PER_YEAR)),
        "skew": none_if_nan(skew),
        "kurtosis": none_if_nan(kurt),
        "T": t,
    }


# ------------------------------------------------------------------------------------- PBO


def _metric_from_sums(
    total: np.ndarray, total_sq: np.ndarray, count: int, metric: str
) -> np.ndarray:
    """Per-period mean or Sharpe (ddof=1) from sums; zero variance -> 0 or ±inf by the mean."""
    mean = total / count
    if metric == "mean":
        return mean
    variance = np.maximum((total_sq - count * mean**2) / (count - 1), 0.0)
    std = np.sqrt(variance)
    # sum-of-squares cancellation leaves a residue of ~1e-16 * mean square for constant
    # columns; anything that small is zero dispersion, not a Sharpe of 1e9
    degenerate = variance <= 1e-12 * (total_sq / count)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(degenerate, np.sign(mean) * np.inf, mean / std)
    return np.where(degenerate & (mean == 0.0), 0.0, sharpe)


def pbo_cscv(
    trial_returns: np.ndarray | pd.DataFrame, n_blocks: int = 16, metric: str = "sharpe"
) -> dict[str, Any]:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Bailey, D. H., Borwein, J. M., López de Prado, M. & Zhu, Q. J. (2017), "The probability of
    backtest overfitting", Journal of Computational Finance 20(4), 39-69.

    Rows are periods (T), columns trials (N >= 2). The first T mod S rows are dropped so the
    rest splits into S = ``n_blocks`` contiguous blocks of equal size (the most recent data is
    kept). For each of the C(S, S/2) choices of S/2 in-sample blocks (in
    ``itertools.combinations`` order), the trial with the best in-sample metric is located in
    the out-of-sample ranking (1..N, higher = better, ties averaged): ω = rank / (N + 1),
    λ = ln(ω / (1 - ω)). PBO is the share of splits with λ <= 0, i.e. the in-sample winner
    does no better than the out-of-sample median. ``metric`` is "sharpe" (per-period,
    ddof=1) or "mean". Metrics are assembled from per-block sums and sums of squares, so all
    splits are evaluated with a few matrix products.
    """
    values = _checked_trials(trial_returns, n_blocks, metric)
    n_trials = values.shape[1]
    is_metric, oos_metric, block_size, dropped = _split_metrics(values, n_blocks, metric)
    rows = np.arange(is_metric.shape[0])
    best = np.argmax(is_metric, axis=1)
    best_oos = oos_metric[rows, best]
    below = np.count_nonzero(oos_metric < best_oos[:, None], axis=1)
    tied = np.count_nonzero(oos_metric == best_oos[:, None], axis=1)  # includes itself
    rank = below + (tied + 1) / 2.0
    omega = rank / (n_trials + 1)
    logits = np.log(omega / (1.0 - omega))

    best_is = is_metric[rows, best]
    slope, intercept = _degradation(best_is, best_oos)
    return {
        "pbo": float(np.mean(logits <= 0.0)),
        "n_splits": int(is_metric.shape[0]),
        "n_blocks": n_blocks,
        "n_trials": n_trials,
        "block_size": block_size,
        "rows_dropped": dropped,
        "metric": metric,
        "logits": [float(v) for v in logits],
        "logit_mean": float(logits.mean()),
        "logit_median": float(np.median(logits)),
        "oos_relative_rank_mean": float(omega.mean()),
        "is_best_metric_mean": none_if_nan(float(np.mean(best_is))),
        "oos_metric_of_is_best_mean": none_if_nan(float(np.mean(best_oos))),
        "prob_oos_loss": float(np.mean(best_oos < 0.0)),
        "degradation_slope": slope,
        "degradation_intercept": intercept,
    }


def _checked_trials(
    trial_returns: np.ndarray | pd.DataFrame, n_blocks: int, metric: str
) -> np.ndarray:
    if metric not in ("sharpe", "mean"):
        raise ValueError(f"metric must be 'sharpe' or 'mean', got {metric!r}")
    values = np.asarray(trial_returns, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"trial_returns must be 2-D (periods x trials), got {values.shape}")
    t_total, n_trials = values.shape
    if n_trials < 2:
        raise ValueError(f"need at least 2 trials (columns), got {n_trials}")
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be even and >= 2, got {n_blocks}")
    if t_total < 2 * n_blocks:
        raise ValueError(
            f"need T >= 2 * n_blocks periods: T={t_total}, n_blocks={n_blocks} "
            f"(minimum {2 * n_blocks})"
        )
    if not np.isfinite(values).all():
        raise ValueError("trial_returns contains NaN/inf values")
    return values


def _split_metrics(
    values: np.ndarray, n_blocks: int, metric: str
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Every trial's in-sample and out-of-sample metric for each CSCV split (splits × trials),
    the block size and the rows dropped from the start to make the blocks equal."""
    t_total, n_trials = values.shape
    dropped = t_total % n_blocks
    block_size = t_total // n_blocks
    blocks = values[dropped:].reshape(n_blocks, block_size, n_trials)
    block_sums = blocks.sum(axis=1)  # (S, N)
    block_sq = (blocks**2).sum(axis=1)

    splits = np.array(list(combinations(range(n_blocks), n_blocks // 2)))
    in_sample = np.zeros((splits.shape[0], n_blocks))
    np.put_along_axis(in_sample, splits, 1.0, axis=1)
    half = block_size * n_blocks // 2
    is_sum, is_sq = in_sample @ block_sums, in_sample @ block_sq
    oos_sum = block_sums.sum(axis=0) - is_sum
    oos_sq = block_sq.sum(axis=0) - is_sq
    is_metric = _metric_from_sums(is_sum, is_sq, half, metric)
    oos_metric = _metric_from_sums(oos_sum, oos_sq, half, metric)
    return is_metric, oos_metric, block_size, dropped


def _degradation(best_is: np.ndarray, best_oos: np.ndarray) -> tuple[float | None, float | None]:
    """Slope and intercept of the in-sample winner's out-of-sample metric on its in-sample
    one (None when fewer than two finite splits, or no spread in-sample)."""
    finite = np.isfinite(best_is) & np.isfinite(best_oos)
    if finite.sum() < 2 or np.ptp(best_is[finite]) <= 0:
        return None, None
    fitted = np.polyfit(best_is[finite], best_oos[finite], 1)
    return float(fitted[0]), float(fitted[1])
