"""Performance metrics on daily simple returns, with one written-down set of conventions.

Metric libraries disagree on the small print (per-period vs annual risk-free rate, whether the
information ratio is annualised, how alpha is annualised), so every figure this project reports
follows the conventions below. They are the conventions of empyrical-reloaded 0.7.1, which the
tests use as the reference implementation (agreement to 1e-6):

* input: daily SIMPLE returns (not log returns), one per trading session, as a 1-D array or a
  ``pd.Series``; 252 periods per year.
* risk-free rate: given as an ANNUAL rate ``rf`` and converted to a per-period rate
  ``(1 + rf) ** (1 / 252) - 1`` (empyrical itself takes the per-period rate). Excess return =
  return - per-period risk-free rate.
* annual return: CAGR, ``prod(1 + r) ** (252 / n) - 1``.
* annual volatility: ``std(r, ddof=1) * sqrt(252)``.
* Sharpe: ``mean(excess) / std(excess, ddof=1) * sqrt(252)``.
* Sortino: ``252 * mean(excess) / (sqrt(mean(min(excess, 0) ** 2)) * sqrt(252))``; the downside
  deviation averages over ALL periods, not only the losing ones.
* max drawdown: worst fall of the compounded equity curve (started at 1 before the first
  return) from its running peak; a negative fraction, e.g. -0.25.
* alpha/beta: OLS of excess returns on benchmark excess returns; beta = cov / var, daily alpha
  = intercept, annualised by compounding ``(1 + daily_alpha) ** 252 - 1``.
* active return = strategy - benchmark. Information ratio = ``mean(active) / std(active,
  ddof=1)`` PER PERIOD (not annualised, as in empyrical's ``excess_sharpe``, quantstats and
  ffn); ``information_ratio_annualized`` = that * sqrt(252). Tracking error =
  ``std(active, ddof=1) * sqrt(252)`` (annualised).

Single-series metrics reject NaN/inf (a hole in a strategy's returns is a bug upstream, not
something to average over). Benchmark-relative metrics pair the two series first: two
``pd.Series`` are aligned on their common index, arrays must have equal length, and pairs with
a NaN on either side are dropped (benchmark and strategy calendars may differ).

A metric that is undefined (fewer than two returns, zero variance, no downside) is ``None``,
never NaN and never a substitute number, so summaries are JSON-safe as they stand.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

PERIODS_PER_YEAR = 252

CONVENTIONS: dict[str, Any] = {
    "returns": "daily simple returns, one per trading session",
    "periods_per_year": PERIODS_PER_YEAR,
    "risk_free": "annual rate rf, per-period rate (1 + rf) ** (1 / 252) - 1; "
    "excess = return - per-period rf",
    "annual_return": "CAGR: prod(1 + r) ** (252 / n) - 1",
    "annual_volatility": "std(r, ddof=1) * sqrt(252)",
    "sharpe": "mean(excess) / std(excess, ddof=1) * sqrt(252)",
    "sortino": "252 * mean(excess) / (sqrt(mean(min(excess, 0) ** 2)) * sqrt(252)); "
    "downside deviation over all periods",
    "max_drawdown": "min over t of equity_t / running_peak_t - 1 on the compounded equity "
    "curve starting at 1; negative fraction",
    "alpha_beta": "OLS of excess returns on benchmark excess returns; beta = cov / var; "
    "alpha = (1 + daily intercept) ** 252 - 1",
    "active_return": "strategy - benchmark",
    "information_ratio": "mean(active) / std(active, ddof=1), per period, NOT annualised",
    "information_ratio_annualized": "information_ratio * sqrt(252)",
    "tracking_error": "std(active, ddof=1) * sqrt(252), annualised",
    "undefined": "null when a metric is undefined (fewer than 2 returns, zero variance)",
    "reference_implementation": "empyrical-reloaded 0.7.1 (tests agree to 1e-6)",
}

ReturnsLike = pd.Series | np.ndarray | list[float]


def finite_1d(returns: ReturnsLike, name: str = "returns") -> np.ndarray:
    """A clean 1-D float array, or a ValueError that says what is wrong with the input."""
    if isinstance(returns, pd.DataFrame):
        raise ValueError(f"{name} must be 1-D (a Series or array), got a DataFrame")
    values = np.asarray(returns, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {values.shape}")
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        where = returns.index[first] if isinstance(returns, pd.Series) else first
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN/inf value(s), first at position {where!r}"
        )
    return values


def _paired(returns: ReturnsLike, benchmark: ReturnsLike) -> tuple[np.ndarray, np.ndarray]:
    """Strategy and benchmark as two equal-length arrays of the days both have a value for.

    Two Series are aligned on their common index (duplicated labels are refused: aligning them
    would multiply rows); anything else is paired by position and must match in length.
    """
    if isinstance(returns, pd.DataFrame) or isinstance(benchmark, pd.DataFrame):
        raise ValueError("returns and benchmark must be 1-D (a Series or array), not DataFrames")
    if isinstance(returns, pd.Series) and isinstance(benchmark, pd.Series):
        for label, series in (("returns", returns), ("benchmark", benchmark)):
            if series.index.has_duplicates:
                raise ValueError(f"{label} has duplicated index labels; cannot align")
        common = returns.index.intersection(benchmark.index)
        r = returns.reindex(common).to_numpy(dtype=float)
        b = benchmark.reindex(common).to_numpy(dtype=float)
    else:
        r = np.asarray(returns, dtype=float)
        b = np.asarray(benchmark, dtype=float)
        for label, arr in (("returns", r), ("benchmark", b)):
            if arr.ndim != 1:
                raise ValueError(f"{label} must be 1-D, got an array of shape {arr.shape}")
        if r.shape != b.shape:
            raise ValueError(
                f"returns and benchmark differ in length ({r.size} vs {b.size}); "
                "pass two pd.Series to align them on their index"
            )
    if np.isinf(r).any() or np.isinf(b).any():
        raise ValueError("returns or benchmark contains an infinite value")
    keep = ~(np.isnan(r) | np.isnan(b))
    return r[keep], b[keep]


def _is_constant(values: np.ndarray) -> bool:
    """Exact test for zero dispersion; ``std`` of equal floats can be a 1e-18 residue."""
    return values.size > 0 and bool(values.max() == values.min())


def to_period_rate(annual_rate: float, periods: int = PERIODS_PER_YEAR) -> float:
    """Per-period rate that compounds to ``annual_rate`` over ``periods`` periods.

    Risk-free rates are quoted annually; metrics need the rate of one trading session.
    """
    if periods < 1:
        raise ValueError(f"periods must be >= 1, got {periods}")
    if not math.isfinite(annual_rate) or annual_rate <= -1.0:
        raise ValueError(f"annual_rate must be finite and > -1, got {annual_rate}")
    return float((1.0 + annual_rate) ** (1.0 / periods) - 1.0)


def _excess(returns: ReturnsLike, risk_free_annual: float) -> np.ndarray:
    return finite_1d(returns) - to_period_rate(risk_free_annual)


def total_return(returns: ReturnsLike) -> float | None:
    """Compounded return over the whole series; None for an empty series."""
    r = finite_1d(returns)
    if r.size == 0:
        return None
    return float(np.prod(1.0 + r) - 1.0)


def annual_return(returns: ReturnsLike) -> float | None:
    """CAGR: the constant annual rate that compounds to the same final wealth.

    None for an empty series, or when the equity curve ends below zero (no real CAGR exists).
    """
    r = finite_1d(returns)
    if r.size == 0:
        return None
    ending = float(np.prod(1.0 + r))
    if ending < 0.0:
        return None
    return float(ending ** (PERIODS_PER_YEAR / r.size) - 1.0)


def annual_volatility(returns: ReturnsLike) -> float | None:
    """Sample standard deviation scaled by sqrt(252); None with fewer than two returns."""
    r = finite_1d(returns)
    if r.size < 2:
        return None
    if _is_constant(r):
        return 0.0
    return float(np.std(r, ddof=1) * math.sqrt(PERIODS_PER_YEAR))


def sharpe_ratio(returns: ReturnsLike, risk_free_annual: float = 0.0) -> float | None:
    """Annualised Sharpe ratio of excess returns.

    None with fewer than two returns or constant excess returns (the ratio would be infinite
    or a rounding artefact, not a measurement).
    """
    excess = _excess(returns, risk_free_annual)
    if excess.size < 2 or _is_constant(excess):
        return None
    return float(excess.mean() / np.std(excess, ddof=1) * math.sqrt(PERIODS_PER_YEAR))


def sortino_ratio(returns: ReturnsLike, risk_free_annual: float = 0.0) -> float | None:
    """Annualised mean excess return over annualised downside deviation.

    The downside deviation averages squared shortfalls over all periods, so a strategy that
    rarely loses is credited for it. None with fewer than two returns or no shortfall at all.
    """
    excess = _excess(returns, risk_free_annual)
    if excess.size < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if downside == 0.0:
        return None
    annual_mean = float(excess.mean()) * PERIODS_PER_YEAR
    return annual_mean / (downside * math.sqrt(PERIODS_PER_YEAR))


def drawdown_series(returns: ReturnsLike) -> pd.Series:
    """Fractional distance of the compounded equity curve below its running peak, per day.

    The curve starts at 1 before the first return, so a loss on day one is already a drawdown.
    Keeps the input's index (a RangeIndex for arrays).
    """
    r = finite_1d(returns)
    index = returns.index if isinstance(returns, pd.Series) else pd.RangeIndex(r.size)
    equity = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    return pd.Series(equity / peak - 1.0, index=index, name="drawdown")


def max_drawdown(returns: ReturnsLike) -> float | None:
    """Worst peak-to-trough fall of the equity curve (<= 0); None for an empty series."""
    drawdowns = drawdown_series(returns)
    if drawdowns.empty:
        return None
    return float(drawdowns.min())


def alpha_beta(
    returns: ReturnsLike, benchmark: ReturnsLike, risk_free_annual: float = 0.0
) -> tuple[float | None, float | None]:
    """(annualised alpha, beta) from OLS of excess returns on benchmark excess returns.

    Alpha compounds the daily intercept over 252 sessions, as empyrical does. Both are None
    with fewer than two paired days or a constant benchmark (beta is then not identified).
    """
    r, b = _paired(returns, benchmark)
    if r.size < 2 or _is_constant(b):
        return None, None
    rf = to_period_rate(risk_free_annual)
    y = r - rf
    x = b - rf
    x_centred = x - x.mean()
    beta = float(np.mean(x_centred * y) / np.mean(x_centred**2))
    daily_alpha = float(y.mean() - beta * x.mean())
    return float((1.0 + daily_alpha) ** PERIODS_PER_YEAR - 1.0), beta


def information_ratio(returns: ReturnsLike, benchmark: ReturnsLike) -> float | None:
    """Per-period (NOT annualised) mean active return over its sample standard deviation.

    Kept per-period because that is what empyrical, quantstats and ffn report; multiply by
    sqrt(252) for the annualised figure. None with fewer than two days or constant active
    returns.
    """
    r, b = _paired(returns, benchmark)
    active = r - b
    if active.size < 2 or _is_constant(active):
        return None
    return float(active.mean() / np.std(active, ddof=1))


def tracking_error(returns: ReturnsLike, benchmark: ReturnsLike) -> float | None:
    """Annualised sample standard deviation of active returns; None with fewer than 2 days."""
    r, b = _paired(returns, benchmark)
    active = r - b
    if active.size < 2:
        return None
    if _is_constant(active):
        return 0.0
    return float(np.std(active, ddof=1) * math.sqrt(PERIODS_PER_YEAR))


def performance_summary(
    returns: ReturnsLike,
    benchmark: ReturnsLike | None = None,
    risk_free_annual: float = 0.0,
) -> dict[str, float | int | None]:
    """All headline metrics in one JSON-safe dict (undefined metrics are None).

    Benchmark-relative keys (alpha, beta, information_ratio, information_ratio_annualized,
    tracking_error) are present only when a benchmark is given.
    """
    r = finite_1d(returns)
    summary: dict[str, float | int | None] = {
        "sessions": int(r.size),
        "total_return": total_return(returns),
        "annual_return": annual_return(returns),
        "annual_volatility": annual_volatility(returns),
        "sharpe": sharpe_ratio(returns, risk_free_annual),
        "sortino": sortino_ratio(returns, risk_free_annual),
        "max_drawdown": max_drawdown(returns),
    }
    if benchmark is not None:
        alpha, beta = alpha_beta(returns, benchmark, risk_free_annual)
        ir = information_ratio(returns, benchmark)
        summary.update(
            {
                "alpha": alpha,
                "beta": beta,
                "information_ratio": ir,
                "information_ratio_annualized": (
                    None if ir is None else ir * math.sqrt(PERIODS_PER_YEAR)
                ),
                "tracking_error": tracking_error(returns, benchmark),
            }
        )
    return summary
