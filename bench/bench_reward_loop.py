"""Where the reward loop's rewards come from, and whether weighting by them helps.

Run from the repository root (about two minutes on two cores):

    .venv/bin/python bench/bench_reward_loop.py [--symbols 10,20] [--ics 0,0.05]

For each synthetic panel (the test suite's ``panels.build_panel``: the first N default
equities, 2022-2024, market-relative 7-session labels, seed 7, a planted signal of rank IC
``ic``) and two students, the default one (stumps, 300 rounds) and a flexible one that can fit
noise (15 leaves of 20 rows, 100 rounds at 0.1), it prints the reward win rate (share of
directional calls that earned more than 0) of:

- ``in-sample``: the first student's calls on its own training rows, what the loop weighted by
  before issue 17 item 7;
- ``cross-fit``: out-of-fold calls on the same rows (5 purged, embargoed time blocks), what it
  weights by now;
- ``held out``: the first student's calls on the holdout;

and the A/B test on the holdout of a student weighted by each kind of reward against the
unweighted one: the relative accuracy change and McNemar's p-value (``rewards.compare_arms``).
No Dagster, no teachers (hard-label students), no live history.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensequant_assets.features.cross_section import normalised_matrix
from sensequant_assets.training.reward_ab import compare_arms
from sensequant_assets.training.rewards import (
    RewardConfig,
    compute_rewards,
    cross_fitted_rewards,
    reward_metrics,
    reward_weights,
)
from sensequant_assets.training.student import (
    StudentConfig,
    StudentResult,
    train_student,
)
from sensequant_assets_tests.panels import FEATURES, build_panel

FLEXIBLE = {"num_leaves": 15, "max_depth": -1, "min_data_in_leaf": 20, "feature_fraction": 1.0,
            "extra_trees": False, "num_iterations": 100, "learning_rate": 0.1}  # fmt: skip
STUDENTS = {"default": StudentConfig(), "flexible": StudentConfig(lgbm_params=FLEXIBLE)}
CONFIG = RewardConfig(enabled=True)


def win(rewards: np.ndarray) -> str:
    m = reward_metrics(rewards)
    directional = m["positive"] + m["negative"]
    rate = "—" if m["win_rate"] is None else f"{m['win_rate']:.3f}"
    return f"{rate} of {directional:>5}"


def ab(
    panel: pd.DataFrame, first: StudentResult, rewards_train: np.ndarray, student: StudentConfig
) -> str:
    """The A/B of a student weighted by ``rewards_train`` against ``first``, on its holdout."""
    weights = np.ones(len(panel))
    weights[first.train_idx] = reward_weights(rewards_train, CONFIG)
    rewards = np.full(len(panel), np.nan)
    rewards[first.train_idx] = rewards_train
    weighted = train_student(panel, None, FEATURES, student, sample_weight=weights)
    report = compare_arms(panel, first, weighted, weights, rewards, CONFIG)
    relative = report["relative_improvement"]
    return f"{100 * relative:+6.1f}% p={report['mcnemar']['p_value']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", default="10,20")
    parser.add_argument("--ics", default="0,0.05")
    args = parser.parse_args()
    print(f"{'panel':<18} {'student':<9} {'in-sample':>13} {'cross-fit':>13} {'held out':>13}"
          f"   A/B in-sample weights   A/B cross-fit weights")  # fmt: skip
    for ic in (float(v) for v in args.ics.split(",")):
        for n in (int(v) for v in args.symbols.split(",")):
            panel = build_panel(ic, n)
            labels = panel["label"].to_numpy()
            returns = panel["forward_return"].to_numpy()
            for name, student in STUDENTS.items():
                started = time.perf_counter()
                first = train_student(panel, None, FEATURES, student)
                train = first.train_idx
                x = normalised_matrix(panel, FEATURES, student.normalisation)
                in_sample = compute_rewards(
                    first.booster.predict(x[train]).argmax(axis=1), returns[train], CONFIG
                )
                crossfit = cross_fitted_rewards(
                    x, panel, train, lambda a, b, y=labels: np.eye(3)[y], FEATURES, student, CONFIG
                )
                held = compute_rewards(first.test_predictions, returns[first.test_idx], CONFIG)
                print(
                    f"IC {ic:<4} {n:>3} symbols {name:<9} {win(in_sample):>13} "
                    f"{win(crossfit.rewards):>13} {win(held):>13}   "
                    f"{ab(panel, first, in_sample, student):<23} "
                    f"{ab(panel, first, crossfit.rewards, student):<22}"
                    f" ({time.perf_counter() - started:.1f} s)"
                )


if __name__ == "__main__":
    main()
