"""Sector-neutral rank IC: sector moves leave the figure, stock-level ordering stays."""

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.evaluation.block_test import block_mean_test
from sensequant_assets.evaluation.costs import CostModel
from sensequant_assets.evaluation.skill import daily_rank_ic, skill_tests

SECTORS = {f"{sector}{k}": sector for sector in "ABCD" for k in range(4)}


def _rows(n_dates: int = 150, seed: int = 5, stock_edge: float = 0.3) -> pd.DataFrame:
    """16 symbols in 4 sectors. The forward return is a sector move plus stock noise; the
    score bets *against* each sector's move (a sector view that is always wrong) and carries
    ``stock_edge`` of the stock part, so only a sector-neutral IC sees the stock-level skill."""
    rng = np.random.default_rng(seed)
    symbols = list(SECTORS)
    dates = pd.bdate_range("2024-01-01", periods=n_dates)
    sector_move = {(d, s): rng.normal(0, 0.05) for d in dates for s in "ABCD"}
    rows = []
    for day in dates:
        for symbol in symbols:
            move, stock = sector_move[(day, SECTORS[symbol])], rng.normal(0, 0.02)
            signal = -move + stock_edge * stock + rng.normal(0, 0.02)
            rows.append((day, symbol, move + stock, signal))
    frame = pd.DataFrame(rows, columns=["date", "symbol", "forward_return", "signal"])
    frame["p_up"] = 0.5 + frame["signal"] / 10  # score = p_up - p_down = signal / 5
    frame["p_down"] = 0.5 - frame["signal"] / 10
    return frame


def test_a_wrong_sector_view_hides_a_stock_edge_only_from_the_total_ic() -> None:
    rows = _rows()
    total = daily_rank_ic(rows)
    neutral = daily_rank_ic(rows, sectors=SECTORS)
    assert total.mean() < -0.3  # the sector bet dominates and is always wrong
    assert neutral.mean() > 0.2  # the stock-level edge, seen once sector moves are out
    assert block_mean_test(neutral, 7)["p_value"] < 0.01


def test_a_sector_constant_score_has_no_neutral_ic() -> None:
    """A score that is the same for every stock of a sector ranks no stock within it."""
    rows = _rows()
    sector_only = rows["symbol"].map(SECTORS).map({"A": 1.0, "B": 2.0, "C": 3.0, "D": 4.0})
    assert daily_rank_ic(rows, sector_only, SECTORS).empty
    assert not daily_rank_ic(rows, sector_only).empty


def test_symbols_alone_in_their_sector_are_left_out() -> None:
    day = pd.Timestamp("2024-01-02")
    symbols = ["A0", "A1", "A2", "A3", "B0", "C0", "D0"]  # four in A, three alone
    rows = pd.DataFrame(
        {
            "date": [day] * 7,
            "symbol": symbols,
            "forward_return": [0.01, 0.02, 0.03, 0.04, 0.05, -0.05, 0.0],
            "p_up": [0.1, 0.2, 0.3, 0.4, 0.9, 0.0, 0.5],
            "p_down": [0.0] * 7,
        }
    )
    assert len(daily_rank_ic(rows)) == 1  # seven symbols across the day
    assert daily_rank_ic(rows, sectors=SECTORS).empty  # four left: below MIN_SYMBOLS


def test_without_sector_information_the_neutral_ic_is_the_total() -> None:
    rows = _rows(n_dates=40)
    total = daily_rank_ic(rows)
    # symbols the map does not know share one group, so demeaning moves no rank
    assert daily_rank_ic(rows, sectors={}).to_numpy() == pytest.approx(total.to_numpy())


def test_skill_reports_the_neutral_ic_as_rank_ic_and_the_total_beside_it() -> None:
    rows = _rows().assign(label=1, base_down=0.3, base_neutral=0.4, base_up=0.3)
    rows["p_neutral"] = 1 - rows["p_up"] - rows["p_down"]
    skill = skill_tests(rows, 7, CostModel(), SECTORS)
    assert skill["rank_ic"]["mean"] == pytest.approx(daily_rank_ic(rows, sectors=SECTORS).mean())
    assert skill["rank_ic_total"]["mean"] == pytest.approx(daily_rank_ic(rows).mean())
    assert "demeaned within each sector" in skill["conventions"]["rank_ic"]
    bare = skill_tests(rows, 7, CostModel())
    assert "not sector-neutral" in bare["conventions"]["rank_ic"]
    assert bare["rank_ic"]["mean"] == pytest.approx(bare["rank_ic_total"]["mean"])
