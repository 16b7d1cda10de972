"""Scoring a stress window: its resilience score and its failure-mode label.

Resilience score (0–100 per window): the mean of the components below that can be computed,
each in [0, 100] (50 = "as good as the reference"):

* (a) drawdown protection = 100 × clip(1 − |MDD_student| / max(|MDD_buy&hold|, 1%), 0, 1).
  The 1% floor keeps a window in which buy-and-hold barely fell from turning a tiny student
  drawdown into 0.
* (b) relative return = 100 × logistic(ln((1 + R_student) / (1 + R_buy&hold)) / 0.05), with
  logistic(x) = 1 / (1 + e^−x); equal wealth → 50, 10% more (log) wealth → 88, 10% less → 12.
* (c) directional skill = accuracy against the window's majority-class share m (the accuracy
  of always guessing the class that turned out most common in the window), piecewise linear:
  50 × acc / m when acc ≤ m, else 50 + 50 × (acc − m) / (1 − m). No labelled row → omitted.
* (d) risk-adjusted return = 100 × logistic((Sharpe_student − Sharpe_60/40) / 1.0). A Sharpe
  ratio undefined because the excess returns are constant (flat the whole window) counts as
  0; omitted when 60/40 has fewer than 2 known returns (no benchmark data).

So a student that stays flat through a window collects (a) = 100 and, in a falling market, a
high (b) and (d), but at most 50 on (c) (its accuracy is at best the share of the one class it
keeps predicting); through a rally the same abstention loses (b), (c) and (d) and fails. The
overall score is the mean of the evaluated windows' scores weighted by their sessions
(windows may overlap; shared sessions count in each); ``passed`` is overall ≥ 50, and no
evaluated window means no overall score and not passed.

Failure-mode label (the first rule that matches; a diagnosis of behaviour, independent of the
pass mark):

1. ``black_swan``: the market's max drawdown inside the window ≤ −15% AND the student's max
   drawdown is at least 80% of buy-and-hold's (|MDD_s| ≥ 0.8 × |MDD_bh|, MDD_s < 0): the
   student rode the crash down. The market drawdown is measured on the benchmark's returns
   over the window's sessions; without benchmark data, the file's ``nifty50_max_drawdown``;
   without that, buy-and-hold's.
2. ``regime_change``: the student's accuracy outside every stress window minus its accuracy
   in the window > 10 points: what it learnt stopped holding.
3. ``overfit``: that accuracy gap ≤ 10 points, yet in the window the student's total return
   is below both cash's and buy-and-hold's, while outside every stress window it beats
   buy-and-hold's total return: calls that look as right as usual but trade worse than doing
   nothing, an edge tuned to calm markets.

The thresholds are the module constants below. The figures the rules read off a window's
rows (its classification and the score's Sharpe convention) are here too: a rule and what it
measures change together.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.classification import CLASSES, classification_report
from sensequant_assets.evaluation.performance import sharpe_ratio
from sensequant_assets.features.labels import CLASS_NAMES, UP

PASS_MARK = 50.0
DRAWDOWN_FLOOR = 0.01
RELATIVE_RETURN_SCALE = 0.05
SHARPE_SCALE = 1.0
BLACK_SWAN_MARKET_DRAWDOWN = -0.15
BLACK_SWAN_DRAWDOWN_SHARE = 0.8
REGIME_CHANGE_ACCURACY_DROP = 0.10
OVERFIT_MAX_ACCURACY_GAP = 0.10

FAILURE_MODES: tuple[str, ...] = ("black_swan", "regime_change", "overfit", "none")

RESILIENCE_FORMULA = (
    "score = mean of the computable components, each in [0, 100]: "
    f"(a) drawdown protection = 100 * clip(1 - |MDD_student| / max(|MDD_buy_and_hold|, "
    f"{DRAWDOWN_FLOOR}), 0, 1); "
    "(b) relative return = 100 * logistic(ln((1 + R_student) / (1 + R_buy_and_hold)) / "
    f"{RELATIVE_RETURN_SCALE}); "
    "(c) directional skill vs the window's majority-class share m = 50 * acc / m if acc <= m "
    "else 50 + 50 * (acc - m) / (1 - m) (omitted without labelled rows); "
    f"(d) risk-adjusted = 100 * logistic((Sharpe_student - Sharpe_60_40) / {SHARPE_SCALE}), "
    "an undefined Sharpe of constant returns counting as 0 (omitted without benchmark data); "
    "logistic(x) = 1 / (1 + exp(-x)). Overall = session-weighted mean over evaluated windows; "
    f"passed = overall >= {PASS_MARK:g}"
)

FAILURE_MODE_RULES: tuple[str, ...] = (
    f"black_swan: market max drawdown in the window <= {BLACK_SWAN_MARKET_DRAWDOWN} and "
    f"|MDD_student| >= {BLACK_SWAN_DRAWDOWN_SHARE} * |MDD_buy_and_hold| (MDD_student < 0)",
    "regime_change: accuracy outside all stress windows - accuracy in the window > "
    f"{REGIME_CHANGE_ACCURACY_DROP}",
    f"overfit: that accuracy gap <= {OVERFIT_MAX_ACCURACY_GAP}, student total return in the "
    "window < cash's and < buy_and_hold's, and outside all stress windows student total "
    "return > buy_and_hold's",
    "none: no rule matched (or the figures a rule needs are unknown); first matching rule wins",
)


def _logistic(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(x / 2.0))


def resilience_score(
    *,
    student_max_drawdown: float,
    buy_and_hold_max_drawdown: float,
    student_total_return: float,
    buy_and_hold_total_return: float,
    accuracy: float | None = None,
    majority_share: float | None = None,
    student_sharpe: float | None = None,
    sixty_forty_sharpe: float | None = None,
) -> tuple[float, dict[str, float | None]]:
    """(score, components) per the module docstring; a component given no input is None.

    Pass ``student_sharpe``/``sixty_forty_sharpe`` already resolved (undefined-but-constant
    → 0.0); None leaves component (d) out.
    """
    protection = 1.0 - abs(student_max_drawdown) / max(
        abs(buy_and_hold_max_drawdown), DRAWDOWN_FLOOR
    )
    components: dict[str, float | None] = {
        "drawdown_protection": 100.0 * min(max(protection, 0.0), 1.0),
        "relative_return": _relative_return_component(
            student_total_return, buy_and_hold_total_return
        ),
        "directional_skill": None,
        "risk_adjusted": None,
    }
    if accuracy is not None and majority_share is not None:
        components["directional_skill"] = _skill_component(accuracy, majority_share)
    if student_sharpe is not None and sixty_forty_sharpe is not None:
        gap = (student_sharpe - sixty_forty_sharpe) / SHARPE_SCALE
        components["risk_adjusted"] = 100.0 * _logistic(gap)
    values = [v for v in components.values() if v is not None]
    return float(sum(values) / len(values)), components


def _relative_return_component(student: float, reference: float) -> float:
    wealth, reference_wealth = 1.0 + student, 1.0 + reference
    if wealth <= 0.0 or reference_wealth <= 0.0:  # a wiped-out side: no log ratio
        if wealth <= 0.0 and reference_wealth <= 0.0:
            return 50.0
        return 0.0 if wealth <= 0.0 else 100.0
    return 100.0 * _logistic(math.log(wealth / reference_wealth) / RELATIVE_RETURN_SCALE)


def _skill_component(accuracy: float, majority_share: float) -> float:
    if accuracy <= majority_share:
        return 50.0 * accuracy / majority_share if majority_share > 0 else 50.0
    return 50.0 + 50.0 * (accuracy - majority_share) / (1.0 - majority_share)


def failure_mode(
    *,
    market_max_drawdown: float | None,
    student_max_drawdown: float | None,
    buy_and_hold_max_drawdown: float | None,
    accuracy_in_window: float | None,
    accuracy_outside: float | None,
    student_total_return: float | None,
    cash_total_return: float | None,
    buy_and_hold_total_return: float | None,
    student_total_return_outside: float | None,
    buy_and_hold_total_return_outside: float | None,
) -> tuple[str, str]:
    """(label, why) by the first matching rule of ``FAILURE_MODE_RULES``."""
    if (
        market_max_drawdown is not None
        and student_max_drawdown is not None
        and buy_and_hold_max_drawdown is not None
        and market_max_drawdown <= BLACK_SWAN_MARKET_DRAWDOWN
        and student_max_drawdown < 0.0
        and abs(student_max_drawdown) >= BLACK_SWAN_DRAWDOWN_SHARE * abs(buy_and_hold_max_drawdown)
    ):
        return "black_swan", (
            f"market fell {market_max_drawdown:.1%} and the student's drawdown "
            f"{student_max_drawdown:.1%} is at least {BLACK_SWAN_DRAWDOWN_SHARE:.0%} of "
            f"buy-and-hold's {buy_and_hold_max_drawdown:.1%}"
        )
    if accuracy_in_window is None or accuracy_outside is None:
        return "none", "no black swan; accuracy in or outside the stress windows unknown"
    gap = accuracy_outside - accuracy_in_window
    if gap > REGIME_CHANGE_ACCURACY_DROP:
        return "regime_change", (
            f"accuracy {accuracy_in_window:.1%} in the window vs {accuracy_outside:.1%} outside "
            f"the stress windows ({gap * 100:.1f} points lower)"
        )
    figures = (
        student_total_return,
        cash_total_return,
        buy_and_hold_total_return,
        student_total_return_outside,
        buy_and_hold_total_return_outside,
    )
    if (
        gap <= OVERFIT_MAX_ACCURACY_GAP
        and all(v is not None for v in figures)
        and student_total_return < cash_total_return
        and student_total_return < buy_and_hold_total_return
        and student_total_return_outside > buy_and_hold_total_return_outside
    ):
        return "overfit", (
            f"accuracy held ({gap * 100:+.1f} points vs outside) but the student returned "
            f"{student_total_return:.1%} against cash {cash_total_return:.1%} and buy-and-hold "
            f"{buy_and_hold_total_return:.1%}, while beating buy-and-hold outside "
            f"({student_total_return_outside:.1%} vs {buy_and_hold_total_return_outside:.1%})"
        )
    return "none", "no failure-mode rule matched"


def _sharpe_for_score(returns: pd.Series, risk_free_annual: float) -> float | None:
    values = returns.dropna()
    if len(values) < 2:
        return None
    sharpe = sharpe_ratio(values, risk_free_annual)
    return 0.0 if sharpe is None else sharpe


# The window's classification figures (classification.py's conventions), its up-call
# precision and the share of its majority class.
def _classification(rows: pd.DataFrame) -> dict[str, Any]:
    labelled = rows[rows["label"].notna()]
    empty: dict[str, Any] = {
        "labelled_rows": 0,
        "accuracy": None,
        "precision_macro": None,
        "recall_macro": None,
        "up_precision": None,
        "up_calls": int((rows["predicted"] == UP).sum()),
        "majority_class": None,
        "majority_share": None,
    }
    if labelled.empty:
        return empty
    truth = labelled["label"].to_numpy(dtype="int64")
    guess = labelled["predicted"].to_numpy(dtype="int64")
    report = classification_report(truth, guess)
    up_calls = int((guess == UP).sum())
    counts = np.bincount(truth, minlength=len(CLASSES))
    majority = int(np.argmax(counts))
    return {
        "labelled_rows": len(labelled),
        "accuracy": report["accuracy"],
        "precision_macro": report["precision_macro"],
        "recall_macro": report["recall_macro"],
        "up_precision": report["per_class"][CLASS_NAMES[UP]]["precision"] if up_calls else None,
        "up_calls": up_calls,
        "majority_class": CLASS_NAMES[majority],
        "majority_share": float(counts[majority] / len(truth)),
    }
