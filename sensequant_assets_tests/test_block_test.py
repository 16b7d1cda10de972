"""The overlap-robust mean test: its size under MA(h−1) nulls, its power, its edge cases."""

import numpy as np
import pytest

from sensequant_assets.evaluation.block_test import batch_means, block_mean_test
from sensequant_assets.evaluation.skill import daily_rank_ic
from sensequant_assets_tests.nulls import ma_null

HORIZON = 7
# The out-of-sample lengths a pilot (one year, two symbols) and a NIFTY 100 run (3 years) give.
LENGTHS = (150, 550)


def rejection_rate(series: np.ndarray, horizon: int) -> float:
    p = np.array([block_mean_test(row, horizon)["p_value"] for row in series])
    return float(np.mean(p <= 0.05))


@pytest.mark.parametrize("n", LENGTHS)
def test_size_under_ma_dependence_is_within_3_5_to_6_5_percent(n: int) -> None:
    rng = np.random.default_rng(n)
    series = ma_null(rng, n, HORIZON, reps=4000)
    lag1 = np.mean([np.corrcoef(row[:-1], row[1:])[0, 1] for row in series[:200]])
    assert lag1 == pytest.approx(6 / 7, abs=0.05)  # the dependence is really there
    assert 0.035 <= rejection_rate(series, HORIZON) <= 0.065


def test_treating_the_days_as_independent_would_over_reject() -> None:
    """The same nulls with batches of one day: the naive t test's size is far above 5%."""
    series = ma_null(np.random.default_rng(1), 550, HORIZON, reps=1000)
    naive = np.array([block_mean_test(row, 1, block_factor=1)["p_value"] for row in series])
    assert np.mean(naive <= 0.05) > 0.2


def test_power_at_a_realistic_daily_rank_ic() -> None:
    """Planted daily rank IC of 0.05 on 100 symbols, 550 days: found most of the time."""
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(200):
        noise = ma_null(rng, 550, HORIZON, reps=1)[0] / np.sqrt(HORIZON * 5 / 3)
        daily_ic = 0.05 + 0.1 * noise  # 0.1 ~ the daily IC's spread across 100 symbols
        found += block_mean_test(daily_ic, HORIZON)["p_value"] <= 0.05
    assert found / 200 > 0.8


def test_too_short_a_history_gives_no_p_value() -> None:
    result = block_mean_test(np.ones(4 * HORIZON * 4), HORIZON)
    assert result["batches"] == 4 and result["p_value"] is None
    assert batch_means(np.arange(10.0), 4).tolist() == [3.5, 7.5]  # oldest remainder dropped


def test_rank_ic_is_spearman_per_day() -> None:
    import pandas as pd
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    dates = np.repeat(pd.date_range("2024-01-01", periods=3), 8)
    oos = pd.DataFrame(
        {"date": dates, "p_up": rng.random(24), "p_down": rng.random(24),
         "forward_return": rng.normal(size=24)}
    )  # fmt: skip
    ic = daily_rank_ic(oos)
    for day, rows in oos.groupby("date"):
        expected = spearmanr(rows["p_up"] - rows["p_down"], rows["forward_return"]).statistic
        assert ic[day] == pytest.approx(expected, abs=1e-12)
