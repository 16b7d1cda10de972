"""Statistical tests on the validation evidence (``stat_tests.json``).

* **Per-fold metrics** of the walk-forward (``validation.summary["folds"]``, repeated here).
* **Paired tests of skill**: the student's daily hit rate against each naive baseline's on the
  same rows — one value per session (symbols of one day share the market, so they are not
  independent draws). The p-value the gate reads is the overlap-robust batch-means t test of
  the daily difference (``block_test``: its size holds under the MA(h−1) dependence of
  overlapping labels); the stationary bootstrap's p-value and interval are kept beside it
  (it over-rejects there: 10.9% at 150 days, 7.8% at 550, nominal 5%). One-sided: H1 is "the
  student is better".
* **Bootstrap confidence intervals** (stationary bootstrap, percentile) of the hit-rate
  difference, the strategy's mean daily return and its annualised Sharpe ratio.
* **Risk-adjusted performance** of the gated strategy against buy-and-hold (Sharpe, Sortino,
  a paired test of the daily return difference) and against the NIFTY 50 (alpha, beta,
  information ratio, tracking error) with the conventions of ``performance.CONVENTIONS``.
* **Selection bias**: the probabilistic Sharpe ratio of the gated strategy; its deflated Sharpe
  ratio over the student variants this run evaluated (both backtest modes are computed and
  shown, so both count as tried, N = 2); the deflated Sharpe ratio of the rule optimizer's best
  trial over its N trials; and the probability of backtest overfitting by CSCV over every
  strategy of the run (the optimizer's trials and the student's modes).

  The rule grid is a separate family: the student was never selected from it, so its trials
  deflate the optimizer's winner, not the student. Pricing the grid's parameter sensitivity
  into the student would reject real skill for a reason unrelated to how it was chosen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.evaluation import performance
from sensequant_assets.evaluation.backtest import periodic_risk_free
from sensequant_assets.evaluation.block_test import MIN_BATCHES, block_mean_test
from sensequant_assets.evaluation.significance import (
    bootstrap_ci,
    deflated_sharpe_ratio,
    none_if_nan,
    paired_bootstrap_test,
    pbo_cscv,
    probabilistic_sharpe_ratio,
)
from sensequant_assets.evaluation.skill import skill_tests
from sensequant_assets.evaluation.validation import BASELINE_PREDICTIONS, Validation, daily_correct

STUDENT_PREFIX = "student_"
NIFTY50_METRICS = (
    "alpha",
    "beta",
    "information_ratio",
    "information_ratio_annualized",
    "tracking_error",
)
CONVENTIONS: dict[str, Any] = {
    **performance.CONVENTIONS,
    "sharpe_in_psr_dsr": "per period, mean / std (ddof=1) of daily returns in excess of the "
    "per-period risk-free rate; skewness and RAW kurtosis by moment estimators",
    "psr": "Phi((SR - SR*) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2)), SR* = 0",
    "dsr": "PSR(SR0), SR0 = std(trial SRs) * ((1 - g) * PhiInv(1 - 1/N) + g * PhiInv(1 - 1/(N e)))"
    ", g = 0.5772; student: N = student variants evaluated (both backtest modes); optimizer: "
    "N = its trials",
    "pbo": "CSCV over the daily excess returns of every strategy of the run (optimizer trials "
    "and student modes), S contiguous blocks, Sharpe as the metric",
    "bootstrap": "stationary bootstrap (Politis & Romano 1994), mean block length by Politis & "
    "White (2004) with the Patton-Politis-White (2009) correction, percentile intervals",
    "paired_tests": "one-sided, H1: student better; statistic = mean daily difference; "
    f"p_value: t on non-overlapping batch means of 4h days (>= {MIN_BATCHES} batches), "
    "bootstrap_p_value: stationary bootstrap",
}


def trial_matrix(validation: Validation) -> pd.DataFrame:
    """Daily excess returns of every strategy evaluated: optimizer trials + student modes."""
    rf = periodic_risk_free(validation.config.risk_free_annual)
    students = {
        f"{STUDENT_PREFIX}{mode}": result.portfolio_returns
        for mode, result in validation.backtests.items()
    }
    frame = pd.concat(
        [validation.optimizer.trial_returns, pd.DataFrame(students)], axis=1, join="inner"
    )
    return frame - rf


def statistical_tests(validation: Validation) -> dict[str, Any]:
    """Everything in ``stat_tests.json``, computed from ``validation`` alone."""
    config = validation.config
    oos = validation.oos
    rf_annual = config.risk_free_annual
    student_daily = daily_correct(oos, "predicted")
    paired = {}
    for name, column in BASELINE_PREDICTIONS.items():
        baseline_daily = daily_correct(oos, column)
        boot = paired_bootstrap_test(
            student_daily, baseline_daily, n_boot=config.n_boot, seed=config.seed
        )
        block = block_mean_test(student_daily - baseline_daily, config.holding_sessions)
        paired[name] = {
            "student_accuracy": float(student_daily.mean()),
            "baseline_accuracy": float(baseline_daily.mean()),
            **boot,
            "bootstrap_p_value": boot["p_value"],
            "p_value": block["p_value"],
            "batches": block["batches"],
            "batch_days": block["batch_days"],
        }

    strategy = validation.strategy_returns
    buy_hold = validation.baselines["buy_and_hold"]
    benchmark = validation.benchmark
    rf = periodic_risk_free(rf_annual)
    excess = strategy - rf
    trials = trial_matrix(validation)
    trial_sharpes = (trials.mean() / trials.std(ddof=1)).replace([np.inf, -np.inf], np.nan)
    student_columns = [c for c in trials.columns if c.startswith(STUDENT_PREFIX)]
    rule_columns = [c for c in trials.columns if not c.startswith(STUDENT_PREFIX)]
    best_rule = validation.optimizer.best_trial
    n_blocks = config.pbo_blocks
    while n_blocks > 2 and len(trials) < 2 * n_blocks:
        n_blocks -= 2
    pbo = pbo_cscv(trials.to_numpy(), n_blocks=n_blocks) if len(trials) >= 4 else None
    if pbo is not None:
        pbo = {k: v for k, v in pbo.items() if k != "logits"}

    def sharpe_of(values: np.ndarray) -> float:
        return float(np.mean(values) / np.std(values, ddof=1) * np.sqrt(252))

    return {
        "conventions": CONVENTIONS,
        "strategy": config.strategy,
        "risk_free_annual": rf_annual,
        "sessions": len(strategy),
        "folds": validation.summary["folds"],
        "paired_accuracy_tests": paired,
        "skill": skill_tests(oos, config.holding_sessions, config.costs),
        "bootstrap_ci": {
            "hit_rate_difference_vs_majority": bootstrap_ci(
                (student_daily - daily_correct(oos, "majority_predicted")).to_numpy(),
                n_boot=config.n_boot,
                seed=config.seed,
            ),
            "strategy_mean_daily_return": bootstrap_ci(
                strategy.to_numpy(), n_boot=config.n_boot, seed=config.seed
            ),
            "strategy_sharpe_annualized": bootstrap_ci(
                excess.to_numpy(), statistic=sharpe_of, n_boot=config.n_boot, seed=config.seed
            ),
        },
        "vs_buy_and_hold": {
            "student_sharpe": performance.sharpe_ratio(strategy, rf_annual),
            "baseline_sharpe": performance.sharpe_ratio(buy_hold, rf_annual),
            "student_sortino": performance.sortino_ratio(strategy, rf_annual),
            "baseline_sortino": performance.sortino_ratio(buy_hold, rf_annual),
            "paired_return_test": paired_bootstrap_test(
                strategy, buy_hold, n_boot=config.n_boot, seed=config.seed
            ),
        },
        "vs_nifty50": {
            key: value
            for key, value in performance.performance_summary(
                strategy, benchmark, rf_annual
            ).items()
            if key in NIFTY50_METRICS
        },
        "psr": none_if_nan(probabilistic_sharpe_ratio(excess.to_numpy())),
        "dsr": deflated_sharpe_ratio(
            excess.to_numpy(), trial_sharpes[student_columns].dropna().to_numpy()
        ),
        "optimizer_best_dsr": {
            "trial": best_rule,
            **deflated_sharpe_ratio(
                trials[best_rule].to_numpy(), trial_sharpes[rule_columns].dropna().to_numpy()
            ),
        },
        "pbo": pbo,
        "trials": {"count": len(trials.columns), "columns": list(trials.columns)},
    }
