"""The candidate must beat the production model on the rows both scored."""

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.evaluation.champion import champion_comparison, compare_with_champion


def _oos(n_days: int, n_symbols: int, skill: float, seed: int, noise_seed: int) -> pd.DataFrame:
    """Predictions whose score correlates ``skill`` with a forward return shared by seed."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2023-01-02", periods=n_days)
    ret = rng.standard_normal((n_days, n_symbols))
    noise = np.random.default_rng(noise_seed).standard_normal((n_days, n_symbols))
    s = skill * ret + np.sqrt(1 - skill**2) * noise
    p_up = 1 / (1 + np.exp(-s)) * 0.8
    return pd.DataFrame(
        {
            "date": np.repeat(dates, n_symbols),
            "symbol": np.tile([f"S{i}" for i in range(n_symbols)], n_days),
            "forward_return": ret.ravel(),
            "p_up": p_up.ravel(),
            "p_down": (0.8 - p_up).ravel(),
            "p_neutral": 0.2,
        }
    )


def test_a_better_candidate_beats_the_champion_and_an_equal_one_does_not() -> None:
    champion = _oos(300, 30, 0.02, seed=0, noise_seed=1)
    better = champion_comparison(_oos(300, 30, 0.15, seed=0, noise_seed=2), champion, "c1", 7)
    assert better["shared_sessions"] == 300 and better["shared_rows"] == 9000
    assert better["candidate_rank_ic"] > better["champion_rank_ic"]
    assert better["p_value"] < 0.01
    same = champion_comparison(champion, champion, "c1", 7)
    assert same["p_value"] == pytest.approx(0.5)


def test_only_the_rows_both_scored_count() -> None:
    candidate = _oos(300, 30, 0.1, seed=0, noise_seed=2)
    champion = _oos(300, 30, 0.02, seed=0, noise_seed=1).iloc[: 100 * 30]
    result = champion_comparison(candidate, champion, "c1", 7)
    assert result["shared_sessions"] == 100
    later = champion.assign(date=champion["date"] + pd.Timedelta(days=3650))
    disjoint = champion_comparison(candidate, later, "c1", 7)
    assert disjoint["shared_rows"] == 0 and disjoint["p_value"] is None


def test_a_champion_without_stored_predictions_cannot_be_compared(tmp_path) -> None:
    candidate = _oos(60, 10, 0.1, seed=0, noise_seed=2)
    result = compare_with_champion(candidate, tmp_path / "gone.parquet", "c1", 7)
    assert result["p_value"] is None and result["shared_sessions"] == 0
    assert result["missing"].endswith("gone.parquet")
    stored = tmp_path / "oos.parquet"
    candidate.to_parquet(stored)
    assert compare_with_champion(candidate, stored, "c1", 7)["shared_rows"] == 600
