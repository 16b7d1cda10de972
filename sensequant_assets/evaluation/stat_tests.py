"""Statistical tests on the validation evidence (``stat_tests.json``).

What the promotion gate reads:

* **Skill where the signal lives** (``skill``, see ``skill.py``): the daily cross-sectional
  rank IC of the student's score against the realised forward (excess) return, with the
  score-sorted spread and a Brier skill score beside it, each tested by the overlap-robust
  batch-means t test (``block_test``: its size holds under the MA(h−1) dependence overlapping
  labels create).
* **A tradable edge, deflated for selection** (``dsr``): the deflated Sharpe ratio of the gated
  book's daily return *against the market* (``backtest``'s active return: long the picks,
  short the same exposure of the equal-weight market, so the risk-free rate cancels), with SR₀
  from the null variance of the Sharpe estimator and N from ``selection.Selection``: the books
  this run evaluated, the trials of a hyperparameter search, and earlier registry candidates on
  overlapping dates.
* **The champion** (``champion``, when a model is in production): the paired rank-IC test on
  the rows both models scored (``champion.py``).

Reported beside them (diagnostics, not gated):

* per-fold metrics; the hit rate against the majority class and yesterday's direction (paired
  batch-means test, with the stationary bootstrap's p-value and interval kept beside it: it
  over-rejects under overlapping labels, 10.9% at 150 days and 7.8% at 550, nominal 5%);
* every book's active Sharpe and a one-session execution-lag sensitivity (``books``);
* bootstrap intervals, Sharpe/Sortino against buy-and-hold, alpha/beta/IR against the NIFTY 50
  with the conventions of ``performance.CONVENTIONS``, the PSR of the gated book;
* the rule optimizer's best trial deflated over its own trials, and the probability of backtest
  overfitting by CSCV over those trials: the set the optimizer's winner was selected from. The
  student is not selected from the rule grid, so PBO says nothing about it and is not gated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.evaluation import performance
from sensequant_assets.evaluation.block_test import MIN_BATCHES, block_mean_test
from sensequant_assets.evaluation.costs import periodic_risk_free
from sensequant_assets.evaluation.selection import Selection, deflated_sharpe
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
    "dsr": "PSR(SR0) of the gated book's daily active return (vs the equal-weight market, net "
    "of costs), SR0 = sqrt(1/(T-1)) * ((1 - g) * PhiInv(1 - 1/N) + g * PhiInv(1 - 1/(N e))), "
    "g = 0.5772, N = books evaluated in the run + trials of the hyperparameter search that "
    "chose the student's configuration (if one ran) + earlier registry candidates on "
    "overlapping dates",
    "optimizer_best_dsr": "as dsr, over the rule trials' excess returns, SR0 from the spread "
    "of the trials' Sharpes",
    "pbo": "CSCV over the daily excess returns of the rule optimizer's trials (the set its best "
    "trial was selected from), S contiguous blocks, Sharpe as the metric",
    "active_return": "sum of w_i * (r_i - mean r over the day's predicted symbols) - costs",
    "bootstrap": "stationary bootstrap (Politis & Romano 1994), mean block length by Politis & "
    "White (2004) with the Patton-Politis-White (2009) correction, percentile intervals",
    "paired_tests": "one-sided, H1: student better; statistic = mean daily difference; "
    f"p_value: t on non-overlapping batch means of 4h days (>= {MIN_BATCHES} batches), "
    "bootstrap_p_value: stationary bootstrap",
}


def trial_matrix(validation: Validation) -> pd.DataFrame:
    """Daily excess returns of the rule optimizer's trials."""
    rf = periodic_risk_free(validation.config.risk_free_annual)
    return validation.optimizer.trial_returns - rf


def run_selection(
    validation: Validation,
    earlier_candidates: tuple[str, ...] = (),
    search_trials: tuple[str, ...] = (),
    earlier_search_trials: int = 0,
) -> Selection:
    """This run's books plus ``earlier_candidates`` (registry runs on overlapping dates), the
    ``search_trials`` the student's configuration was chosen from and the
    ``earlier_search_trials`` that chose the earlier candidates'."""
    return Selection(
        tuple(validation.backtests), earlier_candidates, search_trials, earlier_search_trials
    )


def statistical_tests(
    validation: Validation,
    selection: Selection | None = None,
    champion: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything in ``stat_tests.json``.

    ``selection`` defaults to this run's books alone (no registry: nothing earlier to count);
    ``champion`` is ``champion.champion_comparison``'s result, or None with no production
    model.
    """
    config = validation.config
    oos = validation.oos
    rf_annual = config.risk_free_annual
    student_daily = daily_correct(oos, "predicted")
    strategy = validation.strategy_returns
    excess = strategy - periodic_risk_free(rf_annual)
    active = validation.backtests[config.strategy].active_returns
    trials = trial_matrix(validation)
    return {
        "conventions": CONVENTIONS,
        "strategy": config.strategy,
        "risk_free_annual": rf_annual,
        "sessions": len(strategy),
        "folds": validation.summary["folds"],
        "paired_accuracy_tests": _paired_accuracy_tests(validation, student_daily),
        "skill": skill_tests(oos, config.holding_sessions, config.costs, config.sectors),
        "bootstrap_ci": _bootstrap_intervals(validation, student_daily, excess),
        "vs_buy_and_hold": _vs_buy_and_hold(validation),
        "vs_nifty50": {
            key: value
            for key, value in performance.performance_summary(
                strategy, validation.benchmark, rf_annual
            ).items()
            if key in NIFTY50_METRICS
        },
        "books": _books(validation),
        "psr": none_if_nan(probabilistic_sharpe_ratio(excess.to_numpy())),
        "dsr": {
            "book": config.strategy,
            "series": "daily active return against the equal-weight market, net of costs",
            **deflated_sharpe(active.to_numpy(), selection or run_selection(validation)),
        },
        "champion": champion,
        **_rule_selection(validation, trials),
    }


def _paired_accuracy_tests(
    validation: Validation, student_daily: pd.Series
) -> dict[str, dict[str, Any]]:
    """The student's daily hit rate against each baseline's: the bootstrap's interval, and
    the block test's p-value (batches of the holding period, so overlapping labels count
    once), which is the one reported."""
    config = validation.config
    paired = {}
    for name, column in BASELINE_PREDICTIONS.items():
        baseline_daily = daily_correct(validation.oos, column)
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
    return paired


def _bootstrap_intervals(
    validation: Validation, student_daily: pd.Series, excess: pd.Series
) -> dict[str, Any]:
    config = validation.config
    boot = {"n_boot": config.n_boot, "seed": config.seed}
    majority = daily_correct(validation.oos, "majority_predicted")
    return {
        "hit_rate_difference_vs_majority": bootstrap_ci(
            (student_daily - majority).to_numpy(), **boot
        ),
        "strategy_mean_daily_return": bootstrap_ci(validation.strategy_returns.to_numpy(), **boot),
        "strategy_sharpe_annualized": bootstrap_ci(
            excess.to_numpy(), statistic=_annualised_sharpe, **boot
        ),
    }


def _annualised_sharpe(values: np.ndarray) -> float:
    # a book that never traded earns exactly the risk-free rate: no excess, no risk
    spread = float(np.std(values, ddof=1))
    if spread <= 1e-12 * max(1.0, float(np.abs(values).max(initial=0.0))):
        return 0.0
    return float(np.mean(values) / spread * np.sqrt(252))


def _vs_buy_and_hold(validation: Validation) -> dict[str, Any]:
    config, rf_annual = validation.config, validation.config.risk_free_annual
    strategy, buy_hold = validation.strategy_returns, validation.baselines["buy_and_hold"]
    return {
        "student_sharpe": performance.sharpe_ratio(strategy, rf_annual),
        "baseline_sharpe": performance.sharpe_ratio(buy_hold, rf_annual),
        "student_sortino": performance.sortino_ratio(strategy, rf_annual),
        "baseline_sortino": performance.sortino_ratio(buy_hold, rf_annual),
        "paired_return_test": paired_bootstrap_test(
            strategy, buy_hold, n_boot=config.n_boot, seed=config.seed
        ),
    }


def _rule_selection(validation: Validation, trials: pd.DataFrame) -> dict[str, Any]:
    """What choosing the optimizer's best rule among its trials is worth: that rule's DSR
    against the trials' Sharpes, and the probability of backtest overfitting (CSCV, on
    fewer blocks when the history is short)."""
    trial_sharpes = (trials.mean() / trials.std(ddof=1)).replace([np.inf, -np.inf], np.nan)
    best_rule = validation.optimizer.best_trial
    n_blocks = validation.config.pbo_blocks
    while n_blocks > 2 and len(trials) < 2 * n_blocks:
        n_blocks -= 2
    pbo = pbo_cscv(trials.to_numpy(), n_blocks=n_blocks) if len(trials) >= 4 else None
    if pbo is not None:
        pbo = {k: v for k, v in pbo.items() if k != "logits"}
    return {
        "optimizer_best_dsr": {
            "trial": best_rule,
            **deflated_sharpe_ratio(
                trials[best_rule].to_numpy(), trial_sharpes.dropna().to_numpy()
            ),
        },
        "pbo": pbo,
        "trials": {"count": len(trials.columns), "columns": list(trials.columns)},
    }


def _books(validation: Validation) -> dict[str, Any]:
    """Every book's active figures, and the gated book traded one session late."""
    summary = validation.summary
    books = {
        mode: {
            key: summary["backtest"][mode][key]
            for key in ("active_mean_daily", "active_sharpe_annualized", "sharpe",
                        "turnover_per_session")
        }
        for mode in validation.backtests
    }  # fmt: skip
    return {
        "gated": validation.config.strategy,
        "shorts": "evaluated with a short cost model"
        if validation.config.costs.shorts_allowed
        else "not evaluated: no short cost model (set SENSEQUANT_SHORT_COST_BP_ANNUAL)",
        "by_mode": books,
        "execution_lag": summary["execution_lag"],
    }
