"""Skill where a cross-sectional signal lives: rank IC, a score-sorted spread, a scoring rule.

A three-class hit rate against the majority class is a weak test of a directional model:
moves inside the neutral band dominate it, and a small, real edge in *ordering* stocks barely
moves it. These measures use the student's score s = P(up) − P(down) on the out-of-sample rows
against the realised h-session forward return (in excess of the NIFTY 50 with market-relative
labels):

* **rank IC** (sector-neutral, the gated figure): each day, s and the forward return are
  demeaned within each sector that has at least two symbols that day (symbols alone in their
  sector that day are left out), and the IC is Spearman's correlation of the two across the
  day's remaining symbols (days with fewer than :data:`MIN_SYMBOLS` are skipped). Sector moves
  are about a third of the cross-section's variance in NSE large caps (and in the synthetic
  market) and a score built from a stock's own returns carries its sector's past: left in,
  they add day-to-day noise to the IC that no stock-level edge can explain (at a planted IC of
  0.03 the planted observable's t statistic rises from about 2.1 to 3.6 when they are taken
  out, docs/evaluation.md). Without sector information all symbols are one group, and the
  figure is the plain rank IC;
* **rank IC, total**: the same across all of the day's symbols, sectors left in (diagnostic);
* **spread**: each day, the mean forward return of the top fifth by s minus the bottom fifth,
  gross and net of turning both legs over once per holding period;
* **Brier skill**: each day, the multi-class Brier score of the fold's training class
  frequencies minus the student's (positive: the probabilities beat the base rates).

Each daily series is tested by :func:`block_test.block_mean_test` (one-sided, H1: skill > 0),
whose size holds under the MA(h−1) dependence the overlapping labels create.

**Baselines** (``evaluation.baselines``: past-return momentum and a ridge fit per fold, scored
on the same rows) get the same daily rank IC. The best of them by mean IC is then paired with
the student day by day: H1 of that test is "the student's IC exceeds the best baseline's". The
best is picked on these very rows, which favours the baseline, so a pass is conservative.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.evaluation.baselines import BASELINE_NAMES
from sensequant_assets.evaluation.block_test import block_mean_test
from sensequant_assets.evaluation.costs import CostModel

MIN_SYMBOLS = 5
UNKNOWN_SECTOR = "Unclassified"  # the group of symbols a sector map does not know
SPREAD_FRACTION = 0.2
PROBABILITIES = ("p_down", "p_neutral", "p_up")
BASE_RATES = ("base_down", "base_neutral", "base_up")


def score(oos: pd.DataFrame) -> pd.Series:
    """The student's directional score, P(up) − P(down), row for row."""
    return oos["p_up"] - oos["p_down"]


def _by_date(oos: pd.DataFrame, values: pd.Series) -> pd.core.groupby.SeriesGroupBy:
    return pd.Series(values.to_numpy(), index=pd.to_datetime(oos["date"])).groupby(level=0)


def daily_rank_ic(
    oos: pd.DataFrame, signal: pd.Series | None = None, sectors: Mapping[str, str] | None = None
) -> pd.Series:
    """Per date, Spearman's correlation of ``signal`` (default: the score) with the return;
    with ``sectors`` (symbol → sector), both are first demeaned within the day's sectors of two
    or more symbols and the others dropped (symbols missing from it share one group)."""
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(oos["date"]).to_numpy(),
            "signal": (score(oos) if signal is None else signal).to_numpy(dtype=np.float64),
            "ret": oos["forward_return"].to_numpy(dtype=np.float64),
        }
    )
    if sectors is not None:
        frame["sector"] = oos["symbol"].map(sectors).fillna(UNKNOWN_SECTOR).to_numpy()
    frame = frame.dropna()
    if sectors is not None:
        within = frame.groupby(["date", "sector"])
        frame = frame[within["ret"].transform("size") >= 2].copy()
        values = frame[["signal", "ret"]]
        frame[["signal", "ret"]] = values - values.groupby(
            [frame["date"], frame["sector"]]
        ).transform("mean")
    grouped = frame.groupby("date")
    frame["rs"] = grouped["signal"].rank()
    frame["rr"] = grouped["ret"].rank()
    counts = grouped["ret"].transform("size")
    frame = frame[counts >= MIN_SYMBOLS]
    centred = frame[["rs", "rr"]] - frame.groupby("date")[["rs", "rr"]].transform("mean")
    products = (centred["rs"] * centred["rr"]).groupby(frame["date"]).sum()
    norms = np.sqrt(
        (centred["rs"] ** 2).groupby(frame["date"]).sum()
        * (centred["rr"] ** 2).groupby(frame["date"]).sum()
    )
    ic = products / norms.replace(0.0, np.nan)
    return ic.dropna().rename("rank_ic")


def daily_spread(oos: pd.DataFrame, fraction: float = SPREAD_FRACTION) -> pd.Series:
    """Per date, the mean forward return of the top ``fraction`` by score minus the bottom's."""
    frame = pd.DataFrame(
        {"date": pd.to_datetime(oos["date"]).to_numpy(), "s": score(oos).to_numpy(),
         "ret": oos["forward_return"].to_numpy(dtype=np.float64)}
    )  # fmt: skip
    frame["q"] = frame.groupby("date")["s"].rank(pct=True, method="first")
    counts = frame.groupby("date")["s"].transform("size")
    frame = frame[counts >= MIN_SYMBOLS]
    top = frame[frame["q"] > 1 - fraction].groupby("date")["ret"].mean()
    bottom = frame[frame["q"] <= fraction].groupby("date")["ret"].mean()
    return (top - bottom).dropna().rename("spread")


def daily_brier_skill(oos: pd.DataFrame) -> pd.Series:
    """Per date, the base rates' mean Brier score minus the student's (higher is better)."""
    onehot = np.eye(3)[oos["label"].to_numpy(dtype=np.int64)]
    model = ((oos[list(PROBABILITIES)].to_numpy() - onehot) ** 2).sum(axis=1)
    base = ((oos[list(BASE_RATES)].to_numpy() - onehot) ** 2).sum(axis=1)
    return _by_date(oos, pd.Series(base - model)).mean().rename("brier_skill")


def skill_tests(
    oos: pd.DataFrame, horizon: int, costs: CostModel, sectors: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Every skill measure with its daily series' test (``stat_tests.json``); ``sectors``
    (symbol → sector) makes the rank ICs sector-neutral."""
    ic = daily_rank_ic(oos, sectors=sectors)
    spread = daily_spread(oos)
    turnover_cost = 4 * costs.per_side_rate  # both legs bought and sold once per holding
    return {
        "conventions": {
            "score": "P(up) - P(down)",
            "rank_ic": f"daily Spearman across >= {MIN_SYMBOLS} symbols vs the h-session "
            "forward return, both demeaned within each sector of >= 2 symbols that day "
            "(symbols alone in their sector dropped)"
            if sectors is not None
            else f"daily Spearman across >= {MIN_SYMBOLS} symbols vs the h-session forward "
            "return (no sector information: not sector-neutral)",
            "rank_ic_total": "the same across all of the day's symbols, sectors left in",
            "spread": f"top minus bottom {SPREAD_FRACTION:.0%} by score, mean h-session "
            f"forward return; net subtracts {turnover_cost:.4f} per holding period",
            "brier_skill": "base rates' Brier - student's, base rates = the fold's training "
            "class frequencies",
            "test": "one-sided t on non-overlapping batch means (block_test)",
            "baselines": "rank IC of each baseline score on the same rows; student_minus_best "
            "pairs the student's daily IC with the best baseline's (H1: student > best)",
            "horizon": horizon,
        },
        "rank_ic": block_mean_test(ic, horizon),
        "rank_ic_total": block_mean_test(daily_rank_ic(oos), horizon),
        "spread_gross": block_mean_test(spread, horizon),
        "spread_net": block_mean_test(spread - turnover_cost, horizon),
        "brier_skill": block_mean_test(daily_brier_skill(oos), horizon),
        "baselines": baseline_tests(oos, ic, horizon, sectors),
    }


def baseline_tests(
    oos: pd.DataFrame,
    student_ic: pd.Series,
    horizon: int,
    sectors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Each baseline's daily rank IC test, the best by mean, and student − best, paired daily
    (rank ICs sector-neutral with ``sectors``, like the student's).

    Baselines whose ``score_<name>`` column ``oos`` lacks are left out; with none, ``best`` and
    ``student_minus_best`` are None.
    """
    rank_ic = {
        name: daily_rank_ic(oos, oos[f"score_{name}"], sectors)
        for name in BASELINE_NAMES
        if f"score_{name}" in oos
    }
    tests = {name: block_mean_test(ic, horizon) for name, ic in rank_ic.items()}
    means = {name: t["mean"] for name, t in tests.items() if t["mean"] is not None}
    best = max(means, key=means.__getitem__) if means else None
    paired = None
    if best is not None:
        gap = (student_ic - rank_ic[best]).dropna()
        paired = block_mean_test(gap, horizon)
    return {"rank_ic": tests, "best": best, "student_minus_best": paired}
