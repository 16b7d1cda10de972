"""Selection priced honestly: SR₀ from the estimator's null variance, N from the registry."""

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest
from scipy.stats import norm

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.evaluation.selection import (
    Selection,
    deflated_sharpe,
    null_sr0,
    overlapping_candidates,
)
from sensequant_assets.evaluation.significance import EULER_GAMMA, probabilistic_sharpe_ratio
from sensequant_assets.evaluation.validation import Validation
from sensequant_assets.registry import StateManager
from sensequant_assets.settings import load_settings
from sensequant_assets.training.resources import Training
from sensequant_assets.universe import load_universe


@dataclass
class Run:
    run_id: str
    status: str
    start_date: dt.date | None
    end_date: dt.date | None
    metrics: dict[str, object] = field(default_factory=dict)


def test_sr0_is_the_expected_best_of_n_null_sharpes() -> None:
    assert null_sr0(1, 500) == 0.0
    expected = math.sqrt(1 / 100) * (
        (1 - EULER_GAMMA) * norm.ppf(1 - 1 / 10) + EULER_GAMMA * norm.ppf(1 - 1 / (10 * math.e))
    )
    assert null_sr0(10, 101) == pytest.approx(expected, rel=1e-12)
    # the simulated mean of the best of 10 null Sharpe estimates over 101 periods agrees
    rng = np.random.default_rng(0)
    draws = rng.standard_normal((4000, 10, 101))
    sharpes = draws.mean(axis=2) / draws.std(axis=2, ddof=1)
    assert sharpes.max(axis=1).mean() == pytest.approx(expected, rel=0.05)
    with pytest.raises(ValueError, match="n_trials"):
        null_sr0(0, 100)


def _fat_tailed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_t(4, shape) * 0.01


def test_dsr_of_one_null_book_rejects_at_its_nominal_size() -> None:
    rng = np.random.default_rng(1)
    returns = _fat_tailed(rng, (2000, 400))
    passed = [deflated_sharpe(r, Selection(("long_flat",)))["dsr"] >= 0.95 for r in returns]
    assert 0.035 <= np.mean(passed) <= 0.065


def test_the_best_of_several_null_books_is_deflated_back_to_size() -> None:
    rng = np.random.default_rng(2)
    books = _fat_tailed(rng, (1500, 8, 400))
    best = books[np.arange(len(books)), (books.mean(axis=2) / books.std(axis=2)).argmax(axis=1)]
    naive = np.mean([probabilistic_sharpe_ratio(r) >= 0.95 for r in best])
    selection = Selection(tuple(f"book_{i}" for i in range(8)))
    deflated = np.mean([deflated_sharpe(r, selection)["dsr"] >= 0.95 for r in best])
    assert naive > 0.2  # picking the best of 8 and not saying so passes a quarter of nulls
    assert deflated <= 0.065


def test_n_counts_run_books_and_earlier_candidates_on_overlapping_dates() -> None:
    runs = [
        Run("me", "running", dt.date(2022, 1, 1), dt.date(2024, 12, 31)),
        Run("overlaps", "approved", dt.date(2021, 1, 1), dt.date(2023, 6, 30)),
        Run("dryrun", "ready-for-review", dt.date(2024, 1, 1), dt.date(2025, 3, 31)),
        Run("before", "rejected", dt.date(2019, 1, 1), dt.date(2021, 12, 31)),
        Run("failed", "failed", dt.date(2022, 1, 1), dt.date(2024, 12, 31)),
        Run("reserved", "running", None, None),
    ]
    earlier = overlapping_candidates(runs, dt.date(2023, 1, 2), dt.date(2024, 12, 31), "me")
    assert earlier == ("dryrun", "overlaps")
    selection = Selection(("long_flat",), earlier)
    assert selection.n == 3
    assert selection.to_dict()["explanation"] == (
        "1 book(s) evaluated in this run (long_flat) + 2 earlier candidate(s) in the registry "
        "evaluated on overlapping dates"
    )
    rng = np.random.default_rng(3)
    returns = 0.0008 + _fat_tailed(rng, (500,))
    alone = deflated_sharpe(returns, Selection(("long_flat",)))
    counted = deflated_sharpe(returns, selection)
    assert counted["sr0"] > alone["sr0"] == 0.0
    assert counted["dsr"] < alone["dsr"]
    assert counted["selection"]["earlier_candidates"] == ["dryrun", "overlaps"]


def test_n_rises_by_the_trials_of_the_search_that_chose_the_configuration() -> None:
    trials = tuple(f"search trial {i}" for i in range(8))
    selection = Selection(("long_flat",), ("overlaps",), trials)
    assert selection.n == 10
    assert selection.to_dict()["explanation"] == (
        "1 book(s) evaluated in this run (long_flat) + 8 search trial(s) of the hyperparameter "
        "search that chose the student's configuration + 1 earlier candidate(s) in the registry "
        "evaluated on overlapping dates"
    )
    returns = 0.0008 + _fat_tailed(np.random.default_rng(4), (500,))
    without = deflated_sharpe(returns, Selection(("long_flat",), ("overlaps",)))
    counted = deflated_sharpe(returns, selection)
    assert counted["n_trials"] == without["n_trials"] + 8
    assert counted["dsr"] < without["dsr"]


def test_the_evaluation_counts_the_trials_its_candidate_kept() -> None:
    """``stat_tests`` takes N from ``Evaluation.selection``: the candidate's search_trials.json
    adds one per trial to the books and the overlapping earlier candidates."""
    settings = load_settings()
    evaluation = Evaluation(Training(settings, load_universe(), TradingCalendar()))
    layout = evaluation.training.layout
    StateManager(layout.registry).record_candidate_run(
        "live_candidate_20250301_100000",
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2025, 2, 28),
    )
    candidate = layout.candidate("live_candidate_20250401_100002")
    window = {"out_of_sample": {"start": "2024-07-01", "end": "2025-03-31"}}
    validation = cast(Validation, SimpleNamespace(summary=window, backtests={"long_flat": None}))
    before = evaluation.selection(candidate, validation)
    assert before.n == 2 and before.search_trials == ()

    candidate.root.mkdir(parents=True)
    candidate.search_trials.write_text(
        json.dumps({"trials": [{"trial": i, "chosen": i == 2} for i in range(5)]})
    )
    after = evaluation.selection(candidate, validation)
    assert after.n == before.n + 5
    assert after.earlier_candidates == ("live_candidate_20250301_100000",)
    assert "+ 5 search trial(s)" in after.to_dict()["explanation"]


def test_an_earlier_candidates_search_counts_every_trial_in_later_candidates() -> None:
    """A quarterly retrain chose its configuration from 12 trials: a later candidate on
    overlapping dates counts those 12 as well as the candidate itself, read from the registry
    (``search_trials``), so a retrain cannot launder its search by being looked at later."""
    settings = load_settings()
    evaluation = Evaluation(Training(settings, load_universe(), TradingCalendar()))
    registry = StateManager(evaluation.training.layout.registry)
    for run_id, first, trials in (
        ("live_candidate_20250101_100000", dt.date(2024, 1, 1), 12),
        ("live_candidate_20250201_100000", dt.date(2020, 1, 1), 7),  # ends before the window
    ):
        registry.record_candidate_run(
            run_id, start_date=first, end_date=first + dt.timedelta(days=400),
            metrics={"search_trials": trials},
        )  # fmt: skip
    candidate = evaluation.training.layout.candidate("live_candidate_20250401_100002")
    window = {"out_of_sample": {"start": "2024-07-01", "end": "2025-03-31"}}
    validation = cast(Validation, SimpleNamespace(summary=window, backtests={"long_flat": None}))
    selection = evaluation.selection(candidate, validation)
    assert selection.earlier_candidates == ("live_candidate_20250101_100000",)
    assert selection.earlier_search_trials == 12
    assert selection.n == 1 + 1 + 12
    assert selection.to_dict()["explanation"].endswith(
        "+ 12 trial(s) of the searches that chose them"
    )
