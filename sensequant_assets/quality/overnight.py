"""Overnight moves: a suspected unadjusted split, and a jump no NSE session allows.

Both compare each open (the jump rule also each close) with the previous close: the stored one
for the first row of a one-day update. A listed corporate action's ratio (ex-date → ratio, from
``SENSEQUANT_CORPORATE_ACTIONS_FILE``) is applied first, so a split the file lists is neither a
suspect nor a jump; a move near a common split ratio is a suspect (a warning naming the file's
line that would adjust it), and anything else beyond the bound is an error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np

from sensequant_assets.quality.corporate_actions import CorporateAction
from sensequant_assets.quality.findings import ERROR, WARNING, Reporter, as_date, fmt

#: Ratios k (and 1/k) of the common NSE split/bonus ratios; an overnight move this close to
#: one of them is far more likely an unadjusted corporate action than a market move.
SPLIT_FACTORS = (2, 3, 4, 5, 10)
SPLIT_TOLERANCE = 0.04
#: Largest |log(price / previous close)| of an open or close before a row is refused (see
#: ``SENSEQUANT_MAX_OVERNIGHT_MOVE``): 1.0 is x2.72 up or -63% down. NSE's widest fixed price
#: band is 20% a session (log -0.22), but stocks with derivatives have dynamic bands that keep
#: widening: Yes Bank closed 56% down on 2020-03-06 (log -0.82), and the synthetic market has
#: moves of log 0.57. A unit mistake is far beyond (paise for rupees: x100, log 4.6), and a
#: move near a split ratio (x10 included) is a suspected split, not a jump.
DEFAULT_MAX_OVERNIGHT_MOVE = 1.0
ACTIONS_VARIABLE = "SENSEQUANT_CORPORATE_ACTIONS_FILE"


def check_overnight(
    report: Reporter,
    days: np.ndarray,
    values: dict[str, np.ndarray],
    previous_close: float | None,
    ex_ratios: Mapping[dt.date, float],
    max_move: float,
) -> None:
    """Add the split suspects and the price jumps of the kept rows (sorted by date)."""
    prior = _prior_closes(values["close"], previous_close)
    actions = _action_ratios(days, ex_ratios)
    explained = actions * _check_splits(report, days, values, prior, actions)
    _check_jumps(report, days, values, prior, explained, max_move)


def _prior_closes(close: np.ndarray, previous_close: float | None) -> np.ndarray:
    """Each kept row's previous close: the stored one for the first row (NaN if none)."""
    first = previous_close if previous_close and previous_close > 0 else np.nan
    return np.concatenate(([first], close[:-1]))


def _action_ratios(days: np.ndarray, ex_ratios: Mapping[dt.date, float]) -> np.ndarray:
    """Per row, the listed corporate action's ratio on that day (1 where there is none)."""
    return np.array([ex_ratios.get(as_date(day), 1.0) for day in days], dtype="float64")


def _check_splits(
    report: Reporter,
    days: np.ndarray,
    values: dict[str, np.ndarray],
    prior: np.ndarray,
    actions: np.ndarray,
) -> np.ndarray:
    """Flag overnight moves that match a split/bonus ratio: likely unadjusted history.

    ``actions`` (the listed ratios) is applied first, so a listed split is no suspect. Returns
    per row the ratio a suspect implies (1 elsewhere), which the jump rule then accepts.
    """
    implied = np.ones(len(days))
    if not len(days):
        return implied
    ratio = values["open"] * actions / prior
    targets = np.array([r for k in SPLIT_FACTORS for r in (1 / k, float(k))])
    with np.errstate(invalid="ignore"):
        near = np.abs(ratio[:, None] / targets[None, :] - 1) <= SPLIT_TOLERANCE
    for position in np.flatnonzero(near.any(axis=1)):
        target = targets[near[position].argmax()]
        implied[position] = 1 / target
        shape = f"1/{round(1 / target)}" if target < 1 else f"{round(target)}x"
        day = as_date(days[position])
        seen = (
            f"open {fmt(values['open'][position])} is {ratio[position]:.3f} times the previous "
            f"close {fmt(prior[position])} (about {shape})"
        )
        if actions[position] != 1:
            report.add(
                "split_suspect",
                WARNING,
                day,
                "open",
                f"{seen} even after the listed corporate action's ratio "
                f"{fmt(actions[position])} for this date; check that row of {ACTIONS_VARIABLE}",
            )
            continue
        line = CorporateAction(report.symbol, day, "split", 1 / target).csv_line
        report.add(
            "split_suspect",
            WARNING,
            day,
            "open",
            f"{seen}; looks like an unadjusted split or bonus: if the exchange's corporate "
            f"actions confirm it, add the line {line} to {ACTIONS_VARIABLE} (kind bonus for a "
            "bonus issue)",
            corporate_action=line,
        )
    return implied


def _check_jumps(
    report: Reporter,
    days: np.ndarray,
    values: dict[str, np.ndarray],
    prior: np.ndarray,
    explained: np.ndarray,
    max_move: float,
) -> None:
    """Refuse an open or close too far from the previous close for any NSE session."""
    columns = ("open", "close")
    with np.errstate(invalid="ignore", divide="ignore"):
        moves = np.log(np.vstack([values[c] for c in columns]) * explained / prior)
    too_far = np.abs(moves) > max_move
    for position in np.flatnonzero(too_far.any(axis=0)):
        previous_day = as_date(days[position - 1]) if position else None
        when = f" on {previous_day}" if previous_day else ""
        for row, column in enumerate(columns):
            if not too_far[row, position]:
                continue
            price = values[column][position]
            report.add(
                "price_jump",
                ERROR,
                as_date(days[position]),
                column,
                f"{column} {fmt(price)} is {price / prior[position]:.4g} times the previous "
                f"close {fmt(prior[position])}{when}: a log move of {moves[row, position]:+.2f}, "
                f"beyond SENSEQUANT_MAX_OVERNIGHT_MOVE={max_move:g}, that no split or bonus "
                "ratio explains; check the units (rupees, not paise) and the row, or list the "
                f"corporate action in {ACTIONS_VARIABLE}",
            )
