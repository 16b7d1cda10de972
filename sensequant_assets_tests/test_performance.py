"""Performance metrics: agreement with empyrical-reloaded, and the written-down conventions."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.evaluation import performance as pf

TOL = 1e-6
RF_ANNUAL = 0.065  # roughly an Indian T-bill yield


@pytest.fixture
def series() -> tuple[pd.Series, pd.Series]:
    """~500 sessions of a strategy with beta 0.8 to a benchmark, plus idiosyncratic noise."""
    rng = np.random.default_rng(20240601)
    index = pd.bdate_range("2022-01-03", periods=500)
    benchmark = pd.Series(rng.normal(0.0005, 0.011, index.size), index=index)
    strategy = pd.Series(
        0.0003 + 0.8 * benchmark.to_numpy() + rng.normal(0.0, 0.007, index.size), index=index
    )
    return strategy, benchmark


def test_to_period_rate_compounds_back_to_the_annual_rate() -> None:
    daily = pf.to_period_rate(RF_ANNUAL)
    assert (1 + daily) ** 252 - 1 == pytest.approx(RF_ANNUAL, abs=1e-12)
    assert pf.to_period_rate(0.0) == 0.0
    assert pf.to_period_rate(0.12, periods=12) == pytest.approx(1.12 ** (1 / 12) - 1)
    with pytest.raises(ValueError, match="annual_rate"):
        pf.to_period_rate(-1.5)


@pytest.mark.parametrize("rf_annual", [0.0, RF_ANNUAL])
def test_single_series_metrics_match_empyrical(
    series: tuple[pd.Series, pd.Series], rf_annual: float
) -> None:
    import empyrical

    strategy, _ = series
    rf_daily = pf.to_period_rate(rf_annual)  # empyrical takes the per-period rate
    pairs = {
        "sharpe": (
            pf.sharpe_ratio(strategy, rf_annual),
            empyrical.sharpe_ratio(strategy, risk_free=rf_daily),
        ),
        "sortino": (
            pf.sortino_ratio(strategy, rf_annual),
            empyrical.sortino_ratio(strategy, required_return=rf_daily),
        ),
        "max_drawdown": (pf.max_drawdown(strategy), empyrical.max_drawdown(strategy)),
        "annual_return": (pf.annual_return(strategy), empyrical.annual_return(strategy)),
        "annual_volatility": (
            pf.annual_volatility(strategy),
            empyrical.annual_volatility(strategy),
        ),
    }
    for name, (ours, reference) in pairs.items():
        assert ours == pytest.approx(float(reference), abs=TOL), name
    # the risk-free rate must actually move the excess-return metrics
    if rf_annual:
        assert pf.sharpe_ratio(strategy, rf_annual) < pf.sharpe_ratio(strategy) - 0.1


@pytest.mark.parametrize("rf_annual", [0.0, RF_ANNUAL])
def test_benchmark_metrics_match_empyrical(
    series: tuple[pd.Series, pd.Series], rf_annual: float
) -> None:
    import empyrical

    strategy, benchmark = series
    rf_daily = pf.to_period_rate(rf_annual)
    alpha, beta = pf.alpha_beta(strategy, benchmark, rf_annual)
    ref_alpha, ref_beta = empyrical.alpha_beta(strategy, benchmark, risk_free=rf_daily)
    assert alpha == pytest.approx(float(ref_alpha), abs=TOL)
    assert beta == pytest.approx(float(ref_beta), abs=TOL)
    assert beta == pytest.approx(0.8, abs=0.1)  # the simulated exposure
    assert pf.information_ratio(strategy, benchmark) == pytest.approx(
        float(empyrical.excess_sharpe(strategy, benchmark)), abs=TOL
    )


def test_drawdown_series_matches_empyrical_and_counts_a_first_day_loss(
    series: tuple[pd.Series, pd.Series],
) -> None:
    import empyrical

    strategy, _ = series
    ours = pf.drawdown_series(strategy)
    reference = empyrical.stats.drawdown_series(strategy)
    assert ours.index.equals(strategy.index)
    np.testing.assert_allclose(ours.to_numpy(), np.asarray(reference), atol=TOL)
    # equity 1 -> 0.9 -> 1.08 -> 0.81: the first day is already 10% below the starting peak
    small = pf.drawdown_series(np.array([-0.1, 0.2, -0.25]))
    np.testing.assert_allclose(small.to_numpy(), [-0.1, 0.0, -0.25])
    assert pf.max_drawdown([-0.1, 0.2, -0.25]) == pytest.approx(-0.25)
    assert pf.max_drawdown([0.01, 0.02]) == 0.0


def test_hand_worked_conventions() -> None:
    """Small numbers checked against the formulas in the module docstring by hand."""
    r = np.array([0.01, -0.02, 0.03, 0.0])
    mean, std = 0.005, math.sqrt((0.005**2 + 0.025**2 + 0.025**2 + 0.005**2) / 3)
    assert pf.sharpe_ratio(r) == pytest.approx(mean / std * math.sqrt(252))
    downside = math.sqrt(0.02**2 / 4)  # only -0.02 falls short, averaged over all 4 days
    assert pf.sortino_ratio(r) == pytest.approx(252 * mean / (downside * math.sqrt(252)))
    growth = 1.01 * 0.98 * 1.03
    assert pf.annual_return(r) == pytest.approx(growth ** (252 / 4) - 1)
    b = np.array([0.0, -0.01, 0.02, 0.01])
    active = r - b  # 0.01, -0.01, 0.01, -0.01: mean 0
    assert pf.information_ratio(r, b) == pytest.approx(0.0, abs=1e-15)
    te = np.std(active, ddof=1) * math.sqrt(252)
    assert pf.tracking_error(r, b) == pytest.approx(te)


def test_summary_is_json_safe_with_plain_types(series: tuple[pd.Series, pd.Series]) -> None:
    strategy, benchmark = series
    summary = pf.performance_summary(strategy, benchmark, RF_ANNUAL)
    assert list(summary) == [
        "sessions",
        "total_return",
        "annual_return",
        "annual_volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "alpha",
        "beta",
        "information_ratio",
        "information_ratio_annualized",
        "tracking_error",
    ]
    assert summary["sessions"] == 500 and type(summary["sessions"]) is int
    assert all(type(v) is float for k, v in summary.items() if k != "sessions")
    assert summary["information_ratio_annualized"] == pytest.approx(
        summary["information_ratio"] * math.sqrt(252)
    )
    assert summary["sharpe"] == pf.sharpe_ratio(strategy, RF_ANNUAL)
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary
    json.dumps(pf.CONVENTIONS, allow_nan=False)
    assert pf.CONVENTIONS["periods_per_year"] == 252
    without = pf.performance_summary(strategy)
    assert "alpha" not in without and without["sharpe"] == pf.sharpe_ratio(strategy)


def test_undefined_metrics_are_none_not_nan() -> None:
    flat = pf.performance_summary(np.zeros(30), benchmark=np.zeros(30))
    assert flat["sharpe"] is None and flat["sortino"] is None
    assert flat["alpha"] is None and flat["beta"] is None
    assert flat["information_ratio"] is None and flat["information_ratio_annualized"] is None
    assert flat["annual_volatility"] == 0.0 and flat["tracking_error"] == 0.0
    assert flat["max_drawdown"] == 0.0 and flat["total_return"] == 0.0
    one = pf.performance_summary([0.01])
    assert one["sharpe"] is None and one["annual_volatility"] is None
    assert one["annual_return"] == pytest.approx(1.01**252 - 1)
    empty = pf.performance_summary([])
    assert empty["sessions"] == 0
    assert all(v is None for k, v in empty.items() if k != "sessions")
    # no losing day: the downside deviation is zero, Sortino undefined, Sharpe fine
    assert pf.sortino_ratio([0.01, 0.02, 0.0]) is None
    assert pf.sharpe_ratio([0.01, 0.02, 0.0]) is not None
    json.dumps(flat, allow_nan=False)


def test_benchmark_is_aligned_on_the_index_and_nan_pairs_dropped(
    series: tuple[pd.Series, pd.Series],
) -> None:
    strategy, benchmark = series
    # benchmark with a gap, an extra day outside the strategy's range, and shuffled order
    gappy = benchmark.copy()
    gappy.iloc[10] = np.nan
    gappy.loc[pd.Timestamp("2030-01-01")] = 0.5
    gappy = gappy.sample(frac=1.0, random_state=0)
    keep = strategy.index != strategy.index[10]
    expected = pf.alpha_beta(strategy[keep].to_numpy(), benchmark[keep].to_numpy())
    assert pf.alpha_beta(strategy, gappy) == pytest.approx(expected)
    assert pf.information_ratio(strategy, gappy) == pytest.approx(
        pf.information_ratio(strategy[keep].to_numpy(), benchmark[keep].to_numpy())
    )


def test_bad_input_raises_value_error_naming_the_problem() -> None:
    with pytest.raises(ValueError, match="NaN"):
        pf.sharpe_ratio([0.01, np.nan, 0.02])
    with pytest.raises(ValueError, match="1-D"):
        pf.annual_volatility(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="DataFrame"):
        pf.max_drawdown(pd.DataFrame({"a": [0.01, 0.02]}))
    with pytest.raises(ValueError, match="differ in length"):
        pf.alpha_beta(np.zeros(5), np.zeros(6))
    with pytest.raises(ValueError, match="duplicated"):
        idx = pd.DatetimeIndex(["2024-01-01", "2024-01-01"])
        pf.tracking_error(pd.Series([0.1, 0.2], idx), pd.Series([0.1, 0.2], idx))
    with pytest.raises(ValueError, match="NaN"):
        pf.performance_summary(pd.Series([0.01, np.inf]))
