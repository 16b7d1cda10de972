"""The books trade the score's ranking of each day's symbols."""

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.evaluation.books import book_calls
from sensequant_assets.features.labels import DOWN, NEUTRAL, UP


def test_top_and_bottom_thirds_of_each_day_by_score() -> None:
    oos = pd.DataFrame(
        {
            "date": ["2024-01-01"] * 6 + ["2024-01-02"] * 2 + ["2024-01-03"],
            "p_up": [0.30, 0.31, 0.32, 0.33, 0.34, 0.35, 0.21, 0.22, 0.9],
            "p_down": [0.30] * 9,
        }
    ).sample(frac=1.0, random_state=0)  # order of rows must not matter
    calls = book_calls(oos)
    by_p_up = dict(zip(oos["p_up"], calls, strict=True))
    assert [by_p_up[p] for p in (0.30, 0.31, 0.32, 0.33, 0.34, 0.35)] == [
        DOWN, DOWN, NEUTRAL, NEUTRAL, UP, UP,
    ]  # fmt: skip
    assert by_p_up[0.21] == by_p_up[0.22] == NEUTRAL  # two symbols: no third to take
    assert by_p_up[0.9] == NEUTRAL  # one symbol: no ranking at all
    assert (calls.index == oos.index).all()


def test_a_model_that_never_says_up_still_trades_its_ranking() -> None:
    rng = np.random.default_rng(0)
    p_up = rng.uniform(0.1, 0.3, 30)
    oos = pd.DataFrame({"date": "2024-01-01", "p_up": p_up, "p_down": 0.3, "predicted": NEUTRAL})
    calls = book_calls(oos)
    assert (calls == UP).sum() == 10 and (calls == DOWN).sum() == 10
    assert set(p_up[calls == UP]) == set(np.sort(p_up)[-10:])
    with pytest.raises(ValueError, match="fraction"):
        book_calls(oos, 0.6)
