"""How many configurations the candidate was selected from, and the Sharpe that luck explains.

The deflated Sharpe ratio asks whether the candidate's Sharpe beats the best of N skill-less
tries. Two things decide it, and both are counted here rather than guessed:

* **SR₀ from the null variance of the estimator.** Under "no skill" a per-period Sharpe
  estimated from T returns scatters around 0 with variance (1 − γ₃·SR + (γ₄ − 1)/4·SR²)/(T − 1),
  which is 1/(T − 1) at SR = 0 whatever the skewness γ₃ and raw kurtosis γ₄. The expected
  maximum of N such estimates is SR₀ = √(1/(T − 1))·[(1 − γ)Φ⁻¹(1 − 1/N) + γΦ⁻¹(1 − 1/(N·e))].
  (The spread of the run's own few variants, used before, is close to 0 when they are alike
  and then deflates nothing.)
* **N counts every configuration tried on overlapping data**: the books this run evaluated
  (each one shown is one a reader could have picked), plus every trial of the hyperparameter
  search that chose the student's configuration (a quarterly retrain's, ``training.search``:
  scored before the out-of-sample period, yet still a configuration tried on this history),
  plus every earlier candidate in the registry whose evaluated dates overlap this one's, since
  retraining and looking again on the same history is selection too, with every trial of the
  search that chose each earlier candidate's configuration (a quarterly retrain's 12 trials
  count 12 in every later candidate on overlapping dates, not 1). Failed runs produced no
  evidence and are not counted.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy.stats import norm

from sensequant_assets.evaluation.significance import (
    EULER_GAMMA,
    none_if_nan,
    psr_from_moments,
    sharpe_moments,
)


class RegistryRun(Protocol):
    """What selection needs of a registry row (``registry.records.CandidateRun`` has it)."""

    run_id: str
    status: str
    start_date: dt.date | None
    end_date: dt.date | None
    metrics: Mapping[str, Any]


@dataclass(frozen=True)
class Selection:
    """The configurations the candidate was selected from."""

    run_variants: tuple[str, ...]
    earlier_candidates: tuple[str, ...] = ()
    search_trials: tuple[str, ...] = ()
    earlier_search_trials: int = 0
    """The trials of the searches that chose the earlier candidates' configurations."""

    @property
    def n(self) -> int:
        return (
            len(self.run_variants)
            + len(self.search_trials)
            + len(self.earlier_candidates)
            + self.earlier_search_trials
        )

    def to_dict(self) -> dict[str, Any]:
        searched = (
            f" + {len(self.search_trials)} search trial(s) of the hyperparameter search that "
            "chose the student's configuration"
            if self.search_trials
            else ""
        )
        return {
            "n": self.n,
            "run_variants": list(self.run_variants),
            "search_trials": list(self.search_trials),
            "earlier_candidates": list(self.earlier_candidates),
            "earlier_search_trials": self.earlier_search_trials,
            "explanation": f"{len(self.run_variants)} book(s) evaluated in this run "
            f"({', '.join(self.run_variants)}){searched} + {len(self.earlier_candidates)} "
            "earlier candidate(s) in the registry evaluated on overlapping dates"
            + (
                f" + {self.earlier_search_trials} trial(s) of the searches that chose them"
                if self.earlier_search_trials
                else ""
            ),
        }


def overlapping_candidates(
    runs: Iterable[RegistryRun], start: dt.date, end: dt.date, exclude: str
) -> tuple[str, ...]:
    """Ids of registry runs other than ``exclude`` whose date range overlaps [start, end]."""
    found = []
    for run in runs:
        if run.run_id == exclude or run.status == "failed":
            continue
        if run.start_date is None or run.end_date is None:
            continue
        if run.start_date <= end and run.end_date >= start:
            found.append(run.run_id)
    return tuple(sorted(found))


def searched_trials(runs: Iterable[RegistryRun], ids: Iterable[str]) -> int:
    """The search trials recorded (registry metric ``search_trials``) for the runs in ``ids``;
    a run recorded before the metric existed, or trained without a search, adds none."""
    wanted = set(ids)
    return sum(int(r.metrics.get("search_trials") or 0) for r in runs if r.run_id in wanted)


def null_sr0(n_trials: int, periods: int) -> float:
    """Expected best per-period Sharpe of ``n_trials`` skill-less tries over ``periods``."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be ≥ 1, got {n_trials}")
    if periods < 2:
        return math.nan
    if n_trials == 1:
        return 0.0
    quantiles = (1.0 - EULER_GAMMA) * norm.ppf(1.0 - 1.0 / n_trials) + EULER_GAMMA * norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(math.sqrt(1.0 / (periods - 1)) * quantiles)


def deflated_sharpe(returns: Sequence[float] | np.ndarray, selection: Selection) -> dict[str, Any]:
    """PSR of ``returns`` against SR₀ of ``selection.n`` tries (None where undefined)."""
    sharpe, skew, kurt, t = sharpe_moments(returns)
    sr0 = null_sr0(selection.n, t)
    return {
        "dsr": none_if_nan(psr_from_moments(sharpe, skew, kurt, t, sr0)),
        "sr0": none_if_nan(sr0),
        "n_trials": selection.n,
        "selection": selection.to_dict(),
        "sharpe": none_if_nan(sharpe),
        "sharpe_annualized": none_if_nan(sharpe * math.sqrt(252)),
        "skew": none_if_nan(skew),
        "kurtosis": none_if_nan(kurt),
        "T": t,
    }
