"""Significance tests: block bootstrap, PSR/DSR worked by hand, and PBO by CSCV."""

from __future__ import annotations

import json
import math
from itertools import combinations, pairwise
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter
from scipy.stats import rankdata

from sensequant_assets.evaluation import significance as sg

LN2 = math.log(2.0)


def ar1(rng: np.random.Generator, n: int, phi: float, burn: int = 200) -> np.ndarray:
    """AR(1) with unit-variance innovations, started far enough back to be stationary."""
    return lfilter([1.0], [1.0, -phi], rng.normal(size=n + burn))[burn:]


# ----------------------------------------------------------------------- stationary bootstrap


def test_stationary_bootstrap_indices_shape_range_and_reproducibility() -> None:
    idx = sg.stationary_bootstrap_indices(1000, 10.0, 2000, np.random.default_rng(3))
    assert idx.shape == (2000, 1000)
    assert np.issubdtype(idx.dtype, np.integer)
    assert idx.min() == 0 and idx.max() == 999
    again = sg.stationary_bootstrap_indices(1000, 10.0, 2000, np.random.default_rng(3))
    np.testing.assert_array_equal(idx, again)
    other = sg.stationary_bootstrap_indices(1000, 10.0, 2000, np.random.default_rng(4))
    assert not np.array_equal(idx, other)


@pytest.mark.parametrize("mean_block", [1.0, 4.0, 10.0, 25.0])
def test_stationary_bootstrap_mean_block_length_is_as_requested(mean_block: float) -> None:
    n = 1000
    idx = sg.stationary_bootstrap_indices(n, mean_block, 500, np.random.default_rng(11))
    continues = idx[:, 1:] == (idx[:, :-1] + 1) % n
    # a new block starts with probability 1/mean_block; a fresh random start continues the
    # previous block only by coincidence (probability 1/n)
    break_rate = 1.0 - continues.mean()
    assert break_rate == pytest.approx((1.0 / mean_block) * (1.0 - 1.0 / n), rel=0.03)
    empirical_mean_block = (1.0 - 1.0 / n) / break_rate
    assert empirical_mean_block == pytest.approx(mean_block, rel=0.03)


def test_stationary_bootstrap_wraps_around() -> None:
    idx = sg.stationary_bootstrap_indices(20, 50.0, 200, np.random.default_rng(0))
    wraps = (idx[:, :-1] == 19) & (idx[:, 1:] == 0)
    assert wraps.sum() > 50  # blocks (mean 50) are longer than the series, so they wrap


def test_stationary_bootstrap_rejects_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="mean_block"):
        sg.stationary_bootstrap_indices(10, 0.5, 5, rng)
    with pytest.raises(ValueError, match="n_boot"):
        sg.stationary_bootstrap_indices(10, 2.0, 0, rng)
    with pytest.raises(ValueError, match="n must be"):
        sg.stationary_bootstrap_indices(0, 2.0, 5, rng)


def test_optimal_block_length_iid_vs_ar1() -> None:
    iid = sg.optimal_block_length(np.random.default_rng(1).normal(size=1000))
    assert 1.0 <= iid < 3.0
    ar = sg.optimal_block_length(ar1(np.random.default_rng(1), 1000, 0.8))
    assert ar > 5.0
    # theory for AR(1): b = (G / g(0))^(2/3) n^(1/3) with G / g(0) = 2φ / (1 - φ^2) -> 27.0
    theory = (2 * 0.8 / (1 - 0.8**2)) ** (2 / 3) * 1000 ** (1 / 3)
    estimates = [
        sg.optimal_block_length(ar1(np.random.default_rng(s), 1000, 0.8)) for s in range(10)
    ]
    assert 0.5 * theory < np.median(estimates) < 1.5 * theory


def _block_length_by_hand(x: np.ndarray) -> float:
    """Politis & White (2004) with the Patton-Politis-White (2009) D_SB = 2 g(0)^2, in loops."""
    n = len(x)
    c = x - x.mean()
    k_n = max(5, math.ceil(math.sqrt(math.log10(n))))
    m_max = math.ceil(math.sqrt(n)) + k_n
    acov = [sum(c[i] * c[i + k] for i in range(n - k)) / n for k in range(m_max + 1)]
    bar = 2 * math.sqrt(math.log10(n) / n)
    m_hat = next(
        m
        for m in range(1, m_max - k_n + 1)
        if all(abs(acov[m + j] / acov[0]) < bar for j in range(1, k_n + 1))
    )
    big_m = min(2 * m_hat, m_max)

    def window(t: float) -> float:
        return 1.0 if abs(t) <= 0.5 else max(0.0, 2 * (1 - abs(t)))

    g_big = sum(window(k / big_m) * abs(k) * acov[abs(k)] for k in range(-big_m, big_m + 1))
    g_zero = sum(window(k / big_m) * acov[abs(k)] for k in range(-big_m, big_m + 1))
    # b = (2 G^2 / D_SB)^(1/3) n^(1/3) with D_SB = 2 g(0)^2
    return (g_big**2 / g_zero**2) ** (1 / 3) * n ** (1 / 3)


def test_optimal_block_length_matches_the_formula_in_loops() -> None:
    for seed, phi in ((0, 0.3), (1, 0.6), (2, 0.8)):
        x = ar1(np.random.default_rng(seed), 400, phi)
        assert sg.optimal_block_length(x) == pytest.approx(_block_length_by_hand(x), rel=1e-9)


def test_optimal_block_length_is_clamped_and_handles_degenerate_input() -> None:
    for seed in range(4):
        for n in (24, 60):  # near unit root, short: long blocks wanted, capped at n/3
            x = lfilter([1.0], [1.0, -0.99], np.random.default_rng(seed).normal(size=n))
            assert 1.0 <= sg.optimal_block_length(x) <= n / 3
    assert sg.optimal_block_length(np.full(50, 0.3)) == 1.0
    assert sg.optimal_block_length([0.1, 0.2, 0.3]) == 1.0
    with pytest.raises(ValueError, match="NaN"):
        sg.optimal_block_length([0.1, np.nan, 0.2, 0.3, 0.4])


def test_bootstrap_ci_covers_the_mean_and_is_reproducible() -> None:
    x = ar1(np.random.default_rng(2), 600, 0.5) + 1.0
    ci = sg.bootstrap_ci(x, seed=7)
    assert set(ci) == {
        "estimate",
        "lower",
        "upper",
        "confidence",
        "mean_block",
        "n_boot",
        "method",
    }
    assert ci["method"] == "stationary bootstrap, percentile"
    assert ci["estimate"] == pytest.approx(x.mean())
    assert ci["lower"] < 1.0 < ci["upper"]
    assert ci["mean_block"] == pytest.approx(sg.optimal_block_length(x))
    assert sg.bootstrap_ci(x, seed=7) == ci
    json.dumps(ci, allow_nan=False)
    # dependence widens the interval relative to pretending the data are iid
    iid = sg.bootstrap_ci(x, mean_block=1.0, seed=7)
    assert (ci["upper"] - ci["lower"]) > 1.3 * (iid["upper"] - iid["lower"])


def test_bootstrap_ci_accepts_statistics_without_an_axis_argument() -> None:
    x = np.random.default_rng(4).normal(size=200)
    vectorised = sg.bootstrap_ci(x, statistic=np.median, n_boot=300, mean_block=3.0, seed=1)
    looped = sg.bootstrap_ci(
        x, statistic=lambda v: float(np.median(v)), n_boot=300, mean_block=3.0, seed=1
    )
    assert looped["lower"] == pytest.approx(vectorised["lower"])
    assert looped["upper"] == pytest.approx(vectorised["upper"])


# --------------------------------------------------------------------- paired bootstrap test


def test_paired_test_is_calibrated_under_an_autocorrelated_null() -> None:
    """200 null series: AR(1), φ=0.5, mean 0. A nominal 5% test may reject at most 8%."""
    n = 1000
    zeros = np.zeros(n)
    p_values = np.array(
        [
            sg.paired_bootstrap_test(
                ar1(np.random.default_rng(500 + s), n, 0.5), zeros, n_boot=400, seed=s
            )["p_value"]
            for s in range(200)
        ]
    )
    assert np.mean(p_values <= 0.05) <= 0.08
    assert np.mean(p_values <= 0.5) == pytest.approx(0.5, abs=0.12)  # roughly uniform


def test_paired_test_detects_a_clear_positive_edge_and_not_a_negative_one() -> None:
    rng = np.random.default_rng(8)
    baseline = rng.normal(0.5, 0.1, 250)
    student = baseline + ar1(rng, 250, 0.5) * 0.1 + 0.05  # long-run se of the mean ≈ 0.013
    result = sg.paired_bootstrap_test(student, baseline, n_boot=1000, seed=3)
    assert result["p_value"] < 0.01
    assert result["mean_difference"] == pytest.approx(np.mean(student - baseline))
    assert result["ci"][0] < result["mean_difference"] < result["ci"][1]
    assert result["ci"][0] > 0.0
    assert result["n"] == 250 and result["n_boot"] == 1000 and result["mean_block"] >= 1.0
    assert result["p_value"] >= 1 / 1001  # never exactly zero
    flipped = sg.paired_bootstrap_test(baseline, student, n_boot=1000, seed=3)
    assert flipped["p_value"] > 0.99
    json.dumps(result, allow_nan=False)


def test_paired_test_zero_variance_differences() -> None:
    """Constant d: p = 1/(1 + n_boot) if the difference is positive, else 1.0 (documented)."""
    base = np.random.default_rng(0).normal(size=50)
    better = sg.paired_bootstrap_test(base + 0.01, base, n_boot=999)
    assert better["p_value"] == pytest.approx(1 / 1000)
    assert better["ci"] == [pytest.approx(0.01), pytest.approx(0.01)]
    assert sg.paired_bootstrap_test(base, base, n_boot=999)["p_value"] == 1.0
    assert sg.paired_bootstrap_test(base - 0.01, base, n_boot=999)["p_value"] == 1.0


def test_paired_test_input_handling() -> None:
    idx = pd.bdate_range("2024-01-01", periods=6)
    a = pd.Series([0.5, 0.6, 0.7, 0.4, 0.6, 0.9], index=idx)
    b = pd.Series([0.4, 0.5, 0.6, 0.5], index=idx[2:])  # aligned on the 4 common days
    assert sg.paired_bootstrap_test(a, b, n_boot=50)["n"] == 4
    with pytest.raises(ValueError, match="differ in length"):
        sg.paired_bootstrap_test(np.zeros(5), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        sg.paired_bootstrap_test([0.1, np.nan, 0.3], [0.0, 0.0, 0.0])


# ------------------------------------------------------------------------------- PSR / DSR

RETURNS = np.array(
    [0.012, -0.004, 0.007, 0.021, -0.015, 0.003, 0.009, -0.006, 0.018, 0.001, -0.002, 0.011]
)
TRIALS = np.array([0.02, 0.05, -0.01, 0.08, 0.03, 0.00, 0.04, 0.06])


def _hand_moments() -> tuple[float, float, float, int]:
    r, t = RETURNS, RETURNS.size
    mean = r.sum() / t
    std = math.sqrt(((r - mean) ** 2).sum() / (t - 1))
    m2, m3, m4 = (((r - mean) ** k).sum() / t for k in (2, 3, 4))
    return mean / std, m3 / m2**1.5, m4 / m2**2, t


def test_psr_matches_the_formula_worked_by_hand() -> None:
    sr, skew, kurt, t = _hand_moments()
    # the numbers of this example, step by step
    assert (RETURNS.mean(), RETURNS.std(ddof=1)) == pytest.approx((0.00458333, 0.01043994))
    assert (sr, skew, kurt, t) == pytest.approx((0.43901897, -0.17118894, 2.31478278, 12))
    denominator = math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert denominator == pytest.approx(1.06700854)
    z = sr * math.sqrt(t - 1) / denominator
    assert z == pytest.approx(1.36462000)
    assert sg.probabilistic_sharpe_ratio(RETURNS) == pytest.approx(NormalDist().cdf(z), abs=1e-12)
    assert sg.probabilistic_sharpe_ratio(RETURNS) == pytest.approx(0.91381374)
    # against a benchmark Sharpe of 0.1 per period
    z_bench = (sr - 0.1) * math.sqrt(t - 1) / denominator
    assert sg.probabilistic_sharpe_ratio(RETURNS, 0.1) == pytest.approx(NormalDist().cdf(z_bench))


def test_psr_at_its_own_sharpe_is_one_half_and_falls_with_the_bar() -> None:
    returns = np.random.default_rng(9).standard_t(5, size=400) * 0.01 + 0.0008
    sr = returns.mean() / returns.std(ddof=1)
    assert sg.probabilistic_sharpe_ratio(returns, sr) == pytest.approx(0.5, abs=1e-12)
    bars = [sg.probabilistic_sharpe_ratio(returns, b) for b in (-0.1, 0.0, 0.05, 0.1, 0.2)]
    assert all(x > y for x, y in pairwise(bars))
    assert math.isnan(sg.probabilistic_sharpe_ratio(np.full(20, 0.001)))


def test_expected_max_sharpe_and_dsr_worked_by_hand() -> None:
    n, sigma, gamma = TRIALS.size, TRIALS.std(ddof=1), 0.5772156649
    sr0 = sigma * (
        (1 - gamma) * NormalDist().inv_cdf(1 - 1 / n)
        + gamma * NormalDist().inv_cdf(1 - 1 / (n * math.e))
    )
    assert (sigma, sr0) == pytest.approx((0.03020761, 0.04407334))
    assert sg.expected_max_sharpe(TRIALS) == pytest.approx(sr0, abs=1e-10)

    sr, skew, kurt, t = _hand_moments()
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    result = sg.deflated_sharpe_ratio(RETURNS, TRIALS)
    assert result["dsr"] == pytest.approx(NormalDist().cdf(z), abs=1e-9)
    assert result["dsr"] == pytest.approx(0.89020614)
    assert result["dsr"] == pytest.approx(sg.probabilistic_sharpe_ratio(RETURNS, result["sr0"]))
    assert result["sr0"] == pytest.approx(sr0, abs=1e-10)
    assert result["n_trials"] == 8 and result["T"] == 12
    assert result["sharpe"] == pytest.approx(sr)
    assert result["sharpe_annualized"] == pytest.approx(sr * math.sqrt(252))
    assert (result["skew"], result["kurtosis"]) == pytest.approx((skew, kurt))
    json.dumps(result, allow_nan=False)


def test_dsr_decreases_with_the_number_of_trials() -> None:
    returns = np.random.default_rng(12).normal(0.001, 0.01, 750)
    dsrs, sr0s = [], []
    for n in (2, 5, 10, 50, 200, 1000):
        spread = np.linspace(-1.0, 1.0, n)
        trials = spread / spread.std(ddof=1) * 0.03  # same dispersion, more trials
        result = sg.deflated_sharpe_ratio(returns, trials)
        dsrs.append(result["dsr"])
        sr0s.append(result["sr0"])
    assert all(a > b for a, b in pairwise(dsrs))
    assert all(a < b for a, b in pairwise(sr0s))
    # one trial: nothing to deflate, DSR = PSR against zero
    assert sg.expected_max_sharpe([0.04]) == 0.0
    assert sg.deflated_sharpe_ratio(returns, [0.04])["dsr"] == pytest.approx(
        sg.probabilistic_sharpe_ratio(returns)
    )


def test_dsr_undefined_values_are_none_and_bad_trials_raise() -> None:
    flat = sg.deflated_sharpe_ratio(np.zeros(30), [0.01, 0.02, 0.03])
    assert flat["dsr"] is None and flat["sharpe"] is None
    json.dumps(flat, allow_nan=False)
    with pytest.raises(ValueError, match="empty"):
        sg.expected_max_sharpe([])
    with pytest.raises(ValueError, match="NaN"):
        sg.expected_max_sharpe([0.1, np.nan])


# ------------------------------------------------------------------------------------ PBO


def test_pbo_worked_example_with_four_blocks() -> None:
    """Two trials, S=4 blocks of two days (after dropping T mod S = 1 leading row).

    Trial 0 earns 1.0%/1.2% every block: Sharpe over any two blocks = 0.011/0.001155 ≈ 9.5.
    Trial 1 earns 2.0%/2.2% in blocks 0-1 (Sharpe ≈ 18.2 on those two) and loses 1.0%/0.8% in
    blocks 2-3 (Sharpe ≈ -7.8); mixing a good and a bad block gives 0.006/0.0174 ≈ 0.35.
    Splits in combinations order: IS={0,1}: trial 1 wins IS, ranks 1st of 2 OOS -> ω=1/3,
    λ=-ln2. IS={2,3}: trial 0 wins, trial 1 beats it OOS -> λ=-ln2. The 4 mixed splits: trial
    0 wins IS and OOS -> ω=2/3, λ=+ln2. PBO = 2/6.
    """
    steady = [0.010, 0.012] * 4
    lucky = [0.020, 0.022, 0.020, 0.022, -0.010, -0.008, -0.010, -0.008]
    junk_row = [[-0.5, 0.9]]  # would change everything if it were not dropped
    data = np.vstack([junk_row, np.column_stack([steady, lucky])])
    for metric in ("sharpe", "mean"):
        result = sg.pbo_cscv(data, n_blocks=4, metric=metric)
        assert result["n_splits"] == 6 and result["rows_dropped"] == 1
        assert result["block_size"] == 2 and result["n_trials"] == 2
        np.testing.assert_allclose(result["logits"], [-LN2, LN2, LN2, LN2, LN2, -LN2])
        assert result["pbo"] == pytest.approx(2 / 6)
        json.dumps(result, allow_nan=False)


def test_pbo_ties_take_the_average_rank() -> None:
    same = np.random.default_rng(0).normal(size=(40, 1))
    result = sg.pbo_cscv(np.hstack([same, same]), n_blocks=4)
    assert result["logits"] == [0.0] * 6  # rank 1.5 of 2 -> ω = 1/2 -> λ = 0, counts as ≤ 0
    assert result["pbo"] == 1.0


def _pbo_by_brute_force(data: np.ndarray, n_blocks: int) -> list[float]:
    t, n = data.shape
    data = data[t % n_blocks :]
    blocks = np.array_split(np.arange(data.shape[0]), n_blocks)
    logits = []
    for chosen in combinations(range(n_blocks), n_blocks // 2):
        is_rows = np.concatenate([blocks[i] for i in chosen])
        oos_rows = np.concatenate([blocks[i] for i in range(n_blocks) if i not in chosen])
        is_sr = data[is_rows].mean(0) / data[is_rows].std(0, ddof=1)
        oos_sr = data[oos_rows].mean(0) / data[oos_rows].std(0, ddof=1)
        omega = rankdata(oos_sr)[np.argmax(is_sr)] / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
    return logits


def test_pbo_matches_a_brute_force_loop() -> None:
    data = np.random.default_rng(21).normal(0.0005, 0.01, size=(131, 7))
    result = sg.pbo_cscv(data, n_blocks=6)
    expected = _pbo_by_brute_force(data, 6)
    np.testing.assert_allclose(result["logits"], expected, rtol=1e-9)
    assert result["pbo"] == pytest.approx(np.mean(np.array(expected) <= 0))
    assert result["rows_dropped"] == 131 % 6


def test_pbo_is_high_for_noise_and_near_zero_for_a_real_edge() -> None:
    # PBO of a single noise panel varies a lot (splits share data), so average over panels.
    # Noise sits a little above 1/2: IS and OOS are complementary halves, so the in-sample
    # winner's OOS mean is pulled down by the rest of its own sample.
    noise_pbos = [
        sg.pbo_cscv(np.random.default_rng(s).normal(0, 0.01, (400, 20)), n_blocks=8)["pbo"]
        for s in range(40)
    ]
    assert 0.4 < np.mean(noise_pbos) < 0.75

    rng = np.random.default_rng(99)
    panel = rng.normal(0.0, 0.01, (750, 100))
    panel[:, 17] += 0.003  # a persistent edge of 0.3 daily standard deviations
    result = sg.pbo_cscv(panel, n_blocks=16)
    assert result["n_splits"] == 12870 and len(result["logits"]) == 12870
    assert result["rows_dropped"] == 750 % 16
    assert result["pbo"] < 0.05
    assert result["oos_relative_rank_mean"] > 0.9


@pytest.mark.parametrize(
    ("shape", "n_blocks", "message"),
    [
        ((100, 5), 7, "even"),
        ((100, 5), 0, "even"),
        ((31, 5), 16, "T=31, n_blocks=16"),
        ((100, 1), 4, "at least 2 trials"),
        ((100,), 4, "2-D"),
    ],
)
def test_pbo_rejects_bad_input(shape: tuple[int, ...], n_blocks: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sg.pbo_cscv(np.zeros(shape), n_blocks=n_blocks)


def test_pbo_rejects_nan_and_unknown_metric() -> None:
    data = np.random.default_rng(0).normal(size=(40, 3))
    data[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sg.pbo_cscv(data, n_blocks=4)
    with pytest.raises(ValueError, match="metric"):
        sg.pbo_cscv(np.zeros((40, 3)), n_blocks=4, metric="sortino")
