"""Stress tests: replay the student's out-of-sample predictions through market stress windows.

A stress window is a named date range in which the market fell hard (the 2008 crisis, the
COVID crash, ...). The list ships with the package as ``reference/stress_windows.csv``
(``name,start,end,nifty50_max_drawdown``); users extend it with a CSV file of the same columns,
named by the setting ``SENSEQUANT_STRESS_WINDOWS_FILE`` and loaded by
``load_stress_windows(path)``.

For every window, ``run_stress_tests`` takes the out-of-sample prediction rows dated inside
``[start, end]`` (both ends included) and, if they cover at least ``min_sessions`` sessions
with a known next-session return, replays them with ``backtest.backtest`` in ``mode``
(``long_flat`` by default: up → long, otherwise flat; ``long_short`` also shorts "down"), each
call held ``holding_sessions`` sessions, with the timing and cost conventions of
``backtest.py``, next to three baselines on the same dates:
buy-and-hold (equal weight over exactly the (date, symbol) pairs the student had a prediction
for, so both trade the same universe), 60/40 (60% benchmark + 40% cash) and cash. A window
without enough sessions is SKIPPED with a reason: it is neither passed nor failed and does not
enter the overall score.
Metrics follow ``performance.py`` (undefined → None, never NaN).

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
4. ``none`` otherwise (also when the figures a rule needs are unknown).

The thresholds are the module constants below. ``write_stress_report`` writes
``stress_summary.json``, ``stress_report.md`` and an equity and a drawdown PNG per evaluated
window, atomically, through ``reports.py`` and ``charts.py``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from sensequant_assets.evaluation.backtest import (
    CostModel,
    Mode,
    backtest,
    buy_and_hold,
    cash,
    equity_curve,
    periodic_risk_free,
    sixty_forty,
)
from sensequant_assets.evaluation.performance import (
    CONVENTIONS,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    total_return,
)
from sensequant_assets.evaluation.reports import (
    Image,
    Section,
    Table,
    render_markdown,
    write_png,
    write_report,
)
from sensequant_assets.features.labels import CLASS_NAMES, DOWN, NEUTRAL, UP

__all__ = [
    "BLACK_SWAN_DRAWDOWN_SHARE",
    "BLACK_SWAN_MARKET_DRAWDOWN",
    "DRAWDOWN_FLOOR",
    "FAILURE_MODES",
    "FAILURE_MODE_RULES",
    "OVERFIT_MAX_ACCURACY_GAP",
    "PASS_MARK",
    "REGIME_CHANGE_ACCURACY_DROP",
    "RELATIVE_RETURN_SCALE",
    "RESILIENCE_FORMULA",
    "SHARPE_SCALE",
    "STRATEGIES",
    "StressResult",
    "StressWindow",
    "failure_mode",
    "load_stress_windows",
    "resilience_score",
    "run_stress_tests",
    "write_stress_report",
]

PASS_MARK = 50.0
DRAWDOWN_FLOOR = 0.01
RELATIVE_RETURN_SCALE = 0.05
SHARPE_SCALE = 1.0
BLACK_SWAN_MARKET_DRAWDOWN = -0.15
BLACK_SWAN_DRAWDOWN_SHARE = 0.8
REGIME_CHANGE_ACCURACY_DROP = 0.10
OVERFIT_MAX_ACCURACY_GAP = 0.10

STRATEGIES: tuple[str, ...] = ("student", "buy_and_hold", "sixty_forty", "cash")
STRATEGY_LABELS = {
    "student": "student",
    "buy_and_hold": "buy & hold",
    "sixty_forty": "60/40",
    "cash": "cash",
}
FAILURE_MODES: tuple[str, ...] = ("black_swan", "regime_change", "overfit", "none")
CLASSES: list[int] = [DOWN, NEUTRAL, UP]

REQUIRED_COLUMNS: tuple[str, ...] = ("name", "start", "end")
DRAWDOWN_COLUMN = "nifty50_max_drawdown"
SUMMARY_FILE = "stress_summary.json"
REPORT_FILE = "stress_report.md"

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

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class StressWindow:
    """A named stress period, both ends included; the NIFTY 50's max drawdown in it if known."""

    name: str
    start: date
    end: date
    benchmark_max_drawdown: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"stress window name must be a non-empty string, got {self.name!r}")
        for attr in ("start", "end"):
            value = getattr(self, attr)
            if isinstance(value, datetime):  # also pd.Timestamp
                object.__setattr__(self, attr, value.date())
            elif not isinstance(value, date):
                raise ValueError(f"stress window {self.name!r}: {attr} must be a date")
        if self.start > self.end:
            raise ValueError(
                f"stress window {self.name!r}: start {self.start} is after end {self.end}"
            )
        drawdown = self.benchmark_max_drawdown
        if drawdown is not None:
            if isinstance(drawdown, bool) or not isinstance(drawdown, int | float | np.number):
                raise ValueError(
                    f"stress window {self.name!r}: benchmark_max_drawdown must be a number"
                )
            if not -1.0 <= float(drawdown) <= 0.0:
                raise ValueError(
                    f"stress window {self.name!r}: benchmark_max_drawdown must be a negative "
                    f"fraction in [-1, 0] (e.g. -0.384), got {drawdown!r}"
                )
            object.__setattr__(self, "benchmark_max_drawdown", float(drawdown))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "benchmark_max_drawdown": self.benchmark_max_drawdown,
        }


def load_stress_windows(path: Path | None = None) -> list[StressWindow]:
    """The stress windows of a CSV file, in file order.

    Without ``path``, the list shipped with the package (``reference/stress_windows.csv``).
    A user file (the setting ``SENSEQUANT_STRESS_WINDOWS_FILE`` names it) has the same columns:
    ``name``, ``start`` and ``end`` (ISO dates, YYYY-MM-DD, start ≤ end) are required;
    ``nifty50_max_drawdown`` (a negative fraction, e.g. -0.384) is optional and may be blank.
    Other columns are ignored. Names must be unique (ignoring case). Every error names the
    file, the data row (1 = first row after the header), its line and the column.
    """
    if path is None:
        source = "sensequant_assets/reference/stress_windows.csv (packaged)"
        resource = resources.files("sensequant_assets.reference").joinpath("stress_windows.csv")
        text = resource.read_text(encoding="utf-8-sig")
    else:
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ValueError(f"{source}: stress windows file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{source}: cannot read stress windows file: {exc}") from exc
    return _parse_windows(text, source)


def _parse_windows(text: str, source: str) -> list[StressWindow]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [str(c).strip() for c in (reader.fieldnames or [])]
    if not header:
        raise ValueError(f"{source}: empty file; expected a header {','.join(REQUIRED_COLUMNS)}")
    reader.fieldnames = header
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{source}: missing required column(s) {missing}; header has {header} "
            f"(expected name,start,end[,{DRAWDOWN_COLUMN}])"
        )
    windows: list[StressWindow] = []
    seen: dict[str, int] = {}
    for number, record in enumerate(reader, start=1):
        line = reader.line_num

        def where(column: str, number: int = number, line: int = line) -> str:
            return f"{source}: row {number} (line {line}), column '{column}'"

        if None in record:
            raise ValueError(f"{source}: row {number} (line {line}) has more fields than header")
        values = {k: (v or "").strip() for k, v in record.items()}
        if not any(values.values()):
            continue  # a blank line
        name = values["name"]
        if not name:
            raise ValueError(f"{where('name')}: empty name")
        if name.casefold() in seen:
            raise ValueError(
                f"{where('name')}: duplicate window name {name!r} (first on row "
                f"{seen[name.casefold()]})"
            )
        seen[name.casefold()] = number
        bounds = {
            column: _parse_iso_date(values[column], where(column)) for column in ("start", "end")
        }
        if bounds["start"] > bounds["end"]:
            raise ValueError(
                f"{where('end')}: end {bounds['end']} is before start {bounds['start']}"
            )
        drawdown = _parse_drawdown(values.get(DRAWDOWN_COLUMN, ""), where(DRAWDOWN_COLUMN))
        windows.append(StressWindow(name, bounds["start"], bounds["end"], drawdown))
    if not windows:
        raise ValueError(f"{source}: no stress windows defined (only a header)")
    return windows


def _parse_iso_date(text: str, where: str) -> date:
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"{where}: {text!r} is not an ISO date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {text!r} is not a valid date ({exc})") from None


def _parse_drawdown(text: str, where: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value) or not -1.0 <= value <= 0.0:
        raise ValueError(
            f"{where}: {text!r} must be a negative fraction in [-1, 0] (e.g. -0.384 for −38.4%)"
        )
    return value


# --------------------------------------------------------------------------- scoring


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


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class StressResult:
    """Outcome of ``run_stress_tests``.

    ``windows`` holds one JSON-safe dict per window, in the given order (``status``
    "evaluated" or "skipped", ``reason``, ``metrics``, ``classification``, ``score``,
    ``score_components``, ``failure_mode``...). ``daily_returns`` maps an evaluated window's
    name to its daily returns per strategy (columns ``STRATEGIES``, indexed by date) for the
    charts; it is not part of ``to_dict``.
    """

    windows: list[dict[str, Any]]
    overall_score: float | None
    passed: bool
    evaluated: int
    skipped: int
    out_of_stress: dict[str, Any]
    settings: dict[str, Any]
    daily_returns: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the daily series, JSON-safe (no NaN/inf, dates as ISO strings)."""
        return _json_safe(
            {
                "overall_score": self.overall_score,
                "passed": self.passed,
                "pass_mark": PASS_MARK,
                "evaluated": self.evaluated,
                "skipped": self.skipped,
                "resilience_formula": RESILIENCE_FORMULA,
                "failure_mode_rules": list(FAILURE_MODE_RULES),
                "thresholds": {
                    "pass_mark": PASS_MARK,
                    "drawdown_floor": DRAWDOWN_FLOOR,
                    "relative_return_scale": RELATIVE_RETURN_SCALE,
                    "sharpe_scale": SHARPE_SCALE,
                    "black_swan_market_drawdown": BLACK_SWAN_MARKET_DRAWDOWN,
                    "black_swan_drawdown_share": BLACK_SWAN_DRAWDOWN_SHARE,
                    "regime_change_accuracy_drop": REGIME_CHANGE_ACCURACY_DROP,
                    "overfit_max_accuracy_gap": OVERFIT_MAX_ACCURACY_GAP,
                },
                "settings": self.settings,
                "out_of_stress": self.out_of_stress,
                "windows": self.windows,
            }
        )


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, str):
        return value
    return str(value)


# --------------------------------------------------------------------------- the run


def run_stress_tests(
    oos: pd.DataFrame,
    returns: pd.DataFrame,
    benchmark_returns: pd.Series,
    windows: Sequence[StressWindow],
    costs: CostModel,
    risk_free_annual: float = 0.0,
    min_sessions: int = 5,
    holding_sessions: int = 1,
    mode: Mode = "long_flat",
) -> StressResult:
    """Replay ``oos`` predictions through each window; see the module docstring.

    ``oos``: ``date, symbol, label, predicted`` (out-of-sample predictions, realised classes;
    a missing label only leaves the row out of the classification metrics). ``returns``:
    ``next_session_returns`` output. ``benchmark_returns``: the NIFTY 50's next-session
    return, indexed by date. A window needs ``min_sessions`` (≥ 2) prediction dates with a
    known next-session return, otherwise it is skipped with a reason.
    """
    if not isinstance(costs, CostModel):
        raise ValueError(f"costs must be a CostModel, got {type(costs).__name__}")
    periodic_risk_free(risk_free_annual)
    if isinstance(min_sessions, bool) or not isinstance(min_sessions, int | np.integer):
        raise ValueError(f"min_sessions must be an integer ≥ 2, got {min_sessions!r}")
    if min_sessions < 2:
        raise ValueError(f"min_sessions must be ≥ 2 (a Sharpe ratio needs two), got {min_sessions}")
    windows = list(windows)
    names: set[str] = set()
    for window in windows:
        if not isinstance(window, StressWindow):
            raise ValueError(f"windows must be StressWindow objects, got {type(window).__name__}")
        if window.name in names:
            raise ValueError(f"duplicate stress window name {window.name!r}")
        names.add(window.name)

    frame = _prepare_oos(oos)
    returns_frame = _prepare_returns(returns)
    benchmark = _prepare_benchmark(benchmark_returns)
    merged = frame.merge(returns_frame, on=["date", "symbol"], how="left")
    frame["next_return"] = merged["next_return"].to_numpy()
    day = frame["date"].dt.normalize()

    masks = {
        w.name: ((day >= pd.Timestamp(w.start)) & (day <= pd.Timestamp(w.end))).to_numpy()
        for w in windows
    }
    in_any = np.zeros(len(frame), dtype=bool)
    for mask in masks.values():
        in_any |= mask
    context = _Context(
        frame, returns, benchmark, costs, float(risk_free_annual), int(holding_sessions), mode
    )
    outside = _outside_summary(context, frame[~in_any])

    results: list[dict[str, Any]] = []
    daily: dict[str, pd.DataFrame] = {}
    for window in windows:
        rows = frame[masks[window.name]]
        entry, series = _evaluate_window(context, window, rows, outside, min_sessions)
        results.append(entry)
        if series is not None:
            daily[window.name] = series

    evaluated = [w for w in results if w["status"] == "evaluated"]
    weights = sum(w["sessions"] for w in evaluated)
    overall = (
        float(sum(w["score"] * w["sessions"] for w in evaluated) / weights) if evaluated else None
    )
    settings = {
        "mode": mode,
        "holding_sessions": int(holding_sessions),
        "costs": costs.to_dict(),
        "risk_free_annual": float(risk_free_annual),
        "min_sessions": int(min_sessions),
        "prediction_rows": len(frame),
        "first_date": _iso(frame["date"].min()) if len(frame) else None,
        "last_date": _iso(frame["date"].max()) if len(frame) else None,
        "metric_conventions": CONVENTIONS,
    }
    return StressResult(
        windows=results,
        overall_score=overall,
        passed=overall is not None and overall >= PASS_MARK,
        evaluated=len(evaluated),
        skipped=len(results) - len(evaluated),
        out_of_stress=outside,
        settings=settings,
        daily_returns=daily,
    )


@dataclass(frozen=True, eq=False)
class _Context:
    frame: pd.DataFrame
    returns: pd.DataFrame
    benchmark: pd.Series
    costs: CostModel
    risk_free_annual: float
    holding_sessions: int = 1
    mode: Mode = "long_flat"


def _prepare_oos(oos: pd.DataFrame) -> pd.DataFrame:
    _require(oos, ("date", "symbol", "label", "predicted"), "oos")
    try:
        dates = pd.to_datetime(pd.Series(oos["date"].to_numpy()))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"oos has a 'date' that is not a date: {exc}") from exc
    if getattr(dates.dt, "tz", None) is not None:
        raise ValueError("oos dates must be naive local market dates")
    if dates.isna().any():
        raise ValueError(f"oos has a missing date ({int(dates.isna().sum())} row(s))")
    if oos["symbol"].isna().any():
        raise ValueError(f"oos has a missing symbol ({int(oos['symbol'].isna().sum())} row(s))")
    predicted = pd.to_numeric(oos["predicted"], errors="coerce").to_numpy(dtype="float64")
    _check_classes(predicted, "predicted", allow_missing=False)
    label = pd.to_numeric(oos["label"], errors="coerce").to_numpy(dtype="float64")
    raw_label_missing = oos["label"].isna().to_numpy()
    unparsable = np.isnan(label) & ~raw_label_missing
    if unparsable.any():
        raise ValueError(
            f"oos label {oos['label'].iloc[int(np.flatnonzero(unparsable)[0])]!r} "
            "is not a class (0 down, 1 neutral, 2 up)"
        )
    _check_classes(label, "label", allow_missing=True)
    frame = pd.DataFrame(
        {
            "date": dates.astype("datetime64[ns]").to_numpy(),
            "symbol": oos["symbol"].to_numpy(),
            "label": label,
            "predicted": predicted.astype("int64"),
        }
    )
    duplicated = frame.duplicated(["date", "symbol"]).to_numpy()
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise ValueError(
            f"oos has duplicate (date, symbol) rows: {row['symbol']} on {_iso(row['date'])}"
        )
    return frame.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)


def _check_classes(values: np.ndarray, column: str, *, allow_missing: bool) -> None:
    missing = np.isnan(values)
    bad = ~np.isin(values, CLASSES) & ~(missing & allow_missing)
    if bad.any():
        first = values[int(np.flatnonzero(bad)[0])]
        raise ValueError(
            f"oos column '{column}' has {int(bad.sum())} value(s) that are not a class, first "
            f"{first!r}; expected 0 (down), 1 (neutral) or 2 (up)"
        )


def _prepare_returns(returns: pd.DataFrame) -> pd.DataFrame:
    _require(returns, ("date", "symbol", "next_return"), "returns")
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(pd.Series(returns["date"].to_numpy()))
            .astype("datetime64[ns]")
            .to_numpy(),
            "symbol": returns["symbol"].to_numpy(),
            "next_return": pd.to_numeric(returns["next_return"], errors="coerce")
            .astype("float64")
            .to_numpy(),
        }
    )
    if frame.duplicated(["date", "symbol"]).any():
        raise ValueError("returns have duplicate (date, symbol) rows")
    frame.loc[~np.isfinite(frame["next_return"].to_numpy()), "next_return"] = np.nan
    return frame


def _prepare_benchmark(benchmark_returns: pd.Series) -> pd.Series:
    if not isinstance(benchmark_returns, pd.Series):
        raise ValueError(
            f"benchmark_returns must be a pandas Series indexed by date, "
            f"got {type(benchmark_returns).__name__}"
        )
    index = pd.DatetimeIndex(pd.to_datetime(benchmark_returns.index), name="date")
    if index.tz is not None:
        raise ValueError("benchmark_returns dates must be naive local market dates")
    series = pd.Series(
        pd.to_numeric(benchmark_returns, errors="coerce").to_numpy(dtype="float64"),
        index=index.astype("datetime64[ns]"),
        name="benchmark",
    )
    if not series.index.is_unique:
        raise ValueError("benchmark_returns must have one value per date")
    return series.where(np.isfinite(series))


def _require(frame: object, columns: tuple[str, ...], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack column(s) {missing}; have {list(frame.columns)}")


def _replay(context: _Context, rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Daily returns of the student and the baselines on ``rows`` (all with a known return)."""
    result = backtest(
        rows[["date", "symbol", "predicted"]],
        context.returns,
        context.mode,
        context.costs,
        context.risk_free_annual,
        context.holding_sessions,
    )
    dates = result.portfolio_returns.index
    held = result.positions.abs().fillna(0.0).sum(axis=1) / result.n_symbols
    series = pd.DataFrame(
        {
            "student": result.portfolio_returns,
            "buy_and_hold": buy_and_hold(rows[["date", "symbol", "next_return"]], dates),
            "sixty_forty": sixty_forty(context.benchmark, dates, context.risk_free_annual),
            "cash": cash(dates, context.risk_free_annual),
        },
        index=dates,
    )
    extra = {
        "exposure": float(held.mean()),
        "costs_paid": float(result.costs_paid.sum()),
        "turnover": float(result.turnover.sum()),
    }
    return series, extra


def _strategy_metrics(returns: pd.Series, risk_free_annual: float) -> dict[str, Any]:
    values = returns.dropna()
    if values.empty:
        return {
            "sessions": 0,
            "total_return": None,
            "max_drawdown": None,
            "sharpe": None,
            "sortino": None,
        }
    return {
        "sessions": len(values),
        "total_return": total_return(values),
        "max_drawdown": max_drawdown(values),
        "sharpe": sharpe_ratio(values, risk_free_annual),
        "sortino": sortino_ratio(values, risk_free_annual),
    }


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
    precision, recall, _, _ = precision_recall_fscore_support(
        truth, guess, labels=CLASSES, average="macro", zero_division=0
    )
    up_calls = int((guess == UP).sum())
    counts = np.bincount(truth, minlength=len(CLASSES))
    majority = int(np.argmax(counts))
    return {
        "labelled_rows": len(labelled),
        "accuracy": float(np.mean(truth == guess)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "up_precision": (
            float(np.sum((guess == UP) & (truth == UP)) / up_calls) if up_calls else None
        ),
        "up_calls": up_calls,
        "majority_class": CLASS_NAMES[majority],
        "majority_share": float(counts[majority] / len(truth)),
    }


def _outside_summary(context: _Context, rows: pd.DataFrame) -> dict[str, Any]:
    classification = _classification(rows)
    summary: dict[str, Any] = {
        "prediction_rows": len(rows),
        "sessions": 0,
        "accuracy": classification["accuracy"],
        "labelled_rows": classification["labelled_rows"],
        "student": None,
        "buy_and_hold": None,
    }
    known = rows[rows["next_return"].notna()]
    if known.empty:
        return summary
    series, _ = _replay(context, known)
    summary["sessions"] = len(series)
    summary["student"] = _strategy_metrics(series["student"], context.risk_free_annual)
    summary["buy_and_hold"] = _strategy_metrics(series["buy_and_hold"], context.risk_free_annual)
    return summary


def _evaluate_window(
    context: _Context,
    window: StressWindow,
    rows: pd.DataFrame,
    outside: dict[str, Any],
    min_sessions: int,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    entry: dict[str, Any] = {
        **window.to_dict(),
        "status": "skipped",
        "reason": None,
        "prediction_rows": len(rows),
        "sessions": 0,
        "first_session": None,
        "last_session": None,
        "metrics": None,
        "classification": None,
        "market_max_drawdown": None,
        "market_drawdown_source": None,
        "score": None,
        "score_components": None,
        "passed": None,
        "failure_mode": None,
        "failure_mode_reason": None,
    }
    span = f"between {window.start} and {window.end}"
    if rows.empty:
        entry["reason"] = (
            f"no out-of-sample predictions {span} ({_data_range(context.frame, window)})"
        )
        return entry, None
    known = rows[rows["next_return"].notna()]
    sessions = int(known["date"].nunique())
    entry["sessions"] = sessions
    if sessions < min_sessions:
        lacking = int(rows["date"].nunique()) - sessions
        note = (
            f" ({lacking} prediction date(s) lack a known next-session return)" if lacking else ""
        )
        entry["reason"] = (
            f"only {sessions} sessions of predictions {span}, need {min_sessions}{note}"
        )
        return entry, None

    series, extra = _replay(context, known)
    rf = context.risk_free_annual
    metrics = {name: _strategy_metrics(series[name], rf) for name in STRATEGIES}
    metrics["student"].update(extra)
    classification = _classification(rows)
    student, holding = metrics["student"], metrics["buy_and_hold"]

    market = context.benchmark.reindex(series.index).dropna()
    if not market.empty:
        market_drawdown, source = max_drawdown(market), "benchmark_returns"
    elif window.benchmark_max_drawdown is not None:
        market_drawdown, source = window.benchmark_max_drawdown, "stress_windows_file"
    else:
        market_drawdown, source = holding["max_drawdown"], "buy_and_hold"

    score, components = resilience_score(
        student_max_drawdown=student["max_drawdown"],
        buy_and_hold_max_drawdown=holding["max_drawdown"],
        student_total_return=student["total_return"],
        buy_and_hold_total_return=holding["total_return"],
        accuracy=classification["accuracy"],
        majority_share=classification["majority_share"],
        student_sharpe=_sharpe_for_score(series["student"], rf),
        sixty_forty_sharpe=_sharpe_for_score(series["sixty_forty"], rf),
    )
    outside_student = outside["student"] or {}
    outside_holding = outside["buy_and_hold"] or {}
    mode, why = failure_mode(
        market_max_drawdown=market_drawdown,
        student_max_drawdown=student["max_drawdown"],
        buy_and_hold_max_drawdown=holding["max_drawdown"],
        accuracy_in_window=classification["accuracy"],
        accuracy_outside=outside["accuracy"],
        student_total_return=student["total_return"],
        cash_total_return=metrics["cash"]["total_return"],
        buy_and_hold_total_return=holding["total_return"],
        student_total_return_outside=outside_student.get("total_return"),
        buy_and_hold_total_return_outside=outside_holding.get("total_return"),
    )
    entry.update(
        {
            "status": "evaluated",
            "sessions": len(series),
            "first_session": _iso(series.index.min()),
            "last_session": _iso(series.index.max()),
            "metrics": metrics,
            "classification": classification,
            "market_max_drawdown": market_drawdown,
            "market_drawdown_source": source,
            "score": score,
            "score_components": components,
            "passed": score >= PASS_MARK,
            "failure_mode": mode,
            "failure_mode_reason": why,
        }
    )
    return entry, series


def _sharpe_for_score(returns: pd.Series, risk_free_annual: float) -> float | None:
    values = returns.dropna()
    if len(values) < 2:
        return None
    sharpe = sharpe_ratio(values, risk_free_annual)
    return 0.0 if sharpe is None else sharpe


def _data_range(frame: pd.DataFrame, window: StressWindow) -> str:
    if frame.empty:
        return "there are no out-of-sample predictions at all"
    first, last = frame["date"].min(), frame["date"].max()
    if pd.Timestamp(window.end) < first.normalize():
        return f"data starts {_iso(first)}"
    if pd.Timestamp(window.start) > last.normalize():
        return f"data ends {_iso(last)}"
    return f"data covers {_iso(first)} to {_iso(last)} but has a gap here"


def _iso(value: object) -> str:
    return pd.Timestamp(value).date().isoformat()


# --------------------------------------------------------------------------- report


def write_stress_report(result: StressResult, out_dir: Path) -> dict[str, Path]:
    """Write ``stress_summary.json``, ``stress_report.md`` and per evaluated window
    ``<slug>_equity.png`` and ``<slug>_drawdown.png`` into ``out_dir``, atomically.

    Returns the paths written, keyed by file name.
    """
    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    slugs = _unique_slugs([w["name"] for w in result.windows])
    image_paths: dict[str, str] = {}
    window_sections: list[Section] = []
    for window in result.windows:
        if window["status"] != "evaluated":
            continue
        name = window["name"]
        images = _window_images(result.daily_returns.get(name), name)
        for kind, image in images.items():
            file_name = f"{slugs[name]}_{kind}.png"
            written[file_name] = write_png(out_dir / file_name, image.png)
            image_paths[image.caption] = file_name
        window_sections.append(_window_section(window, list(images.values())))

    summary = result.to_dict()
    text = json.dumps(summary, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    written[SUMMARY_FILE] = write_report(out_dir / SUMMARY_FILE, text)
    sections = [_summary_section(result), *window_sections]
    if result.out_of_stress:
        sections.insert(1, _outside_section(result.out_of_stress))
    markdown = render_markdown("Stress tests", sections, image_paths)
    written[REPORT_FILE] = write_report(out_dir / REPORT_FILE, markdown)
    return written


def _unique_slugs(names: Sequence[str]) -> dict[str, str]:
    slugs: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "window"
        slug, n = base, 2
        while slug in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug)
        slugs[name] = slug
    return slugs


def _window_images(series: pd.DataFrame | None, name: str) -> dict[str, Image]:
    # imported here: matplotlib is slow to import and only report writing needs it
    from sensequant_assets.evaluation.charts import drawdown_png, equity_curves_png

    if series is None:
        return {}
    curves: dict[str, pd.Series] = {}
    for strategy in STRATEGIES:
        values = series[strategy].dropna()
        if len(values):
            curves[STRATEGY_LABELS[strategy]] = equity_curve(values)
    if not curves:
        return {}
    return {
        "equity": Image(
            f"{name}: equity",
            equity_curves_png(curves, title=f"{name}: equity (start = 1)"),
        ),
        "drawdown": Image(f"{name}: drawdown", drawdown_png(curves, title=f"{name}: drawdown")),
    }


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:.1%}"


def _metric(window: Mapping[str, Any], strategy: str, key: str) -> float | None:
    metrics = window.get("metrics") or {}
    return (metrics.get(strategy) or {}).get(key)


def _summary_section(result: StressResult) -> Section:
    if result.overall_score is None:
        verdict = "No window could be evaluated, so there is no overall score (not passed)."
    else:
        verdict = (
            f"Overall resilience score {result.overall_score:.1f} / 100 (pass mark "
            f"{PASS_MARK:g}): {'PASSED' if result.passed else 'FAILED'}."
        )
    settings = result.settings
    costs = settings.get("costs", {})
    paragraphs = [
        verdict,
        f"{result.evaluated} window(s) evaluated, {result.skipped} skipped (a skipped window "
        "has too little out-of-sample data; it is neither passed nor failed).",
        f"Student traded long/flat on its out-of-sample predictions, costs "
        f"{costs.get('round_trip_bp', 0):g} bp round trip + {costs.get('slippage_bp', 0):g} bp "
        f"slippage per side, risk-free rate {settings.get('risk_free_annual', 0):.2%} a year.",
        f"Resilience score: {RESILIENCE_FORMULA}.",
        "Failure modes (first matching rule): " + "; ".join(FAILURE_MODE_RULES) + ".",
    ]
    columns = ["window", "start", "end", "status"]
    for strategy in STRATEGIES:
        label = STRATEGY_LABELS[strategy]
        columns += [f"{label} return", f"{label} MDD"]
    columns += ["score", "failure mode"]
    rows = []
    for window in result.windows:
        status = window["status"]
        if status != "evaluated":
            status = f"skipped: {window['reason']}"
        row: list[object] = [window["name"], window["start"], window["end"], status]
        for strategy in STRATEGIES:
            row += [
                _pct(_metric(window, strategy, "total_return")),
                _pct(_metric(window, strategy, "max_drawdown")),
            ]
        score = window["score"]
        row += [None if score is None else round(score, 1), window["failure_mode"]]
        rows.append(row)
    return Section("Summary", paragraphs, [Table("Stress windows", columns, rows)])


def _outside_section(outside: Mapping[str, Any]) -> Section:
    student = outside.get("student") or {}
    holding = outside.get("buy_and_hold") or {}
    rows = [
        ["sessions", outside.get("sessions")],
        ["accuracy", _pct(outside.get("accuracy"))],
        ["student total return", _pct(student.get("total_return"))],
        ["buy & hold total return", _pct(holding.get("total_return"))],
        ["student Sharpe", student.get("sharpe")],
        ["buy & hold Sharpe", holding.get("sharpe")],
    ]
    return Section(
        "Outside the stress windows",
        ["The reference the failure-mode rules compare each window against."],
        [Table("", ["figure", "value"], rows)],
    )


def _window_section(window: Mapping[str, Any], images: list[Image]) -> Section:
    components = window["score_components"] or {}
    parts = ", ".join(
        f"{key.replace('_', ' ')} {value:.1f}"
        for key, value in components.items()
        if value is not None
    )
    paragraphs = [
        f"{window['start']} to {window['end']}: {window['sessions']} sessions "
        f"({window['first_session']} to {window['last_session']}). Market max drawdown "
        f"{_pct(window['market_max_drawdown'])} (from {window['market_drawdown_source']}).",
        f"Resilience score {window['score']:.1f} ({parts}). Failure mode: "
        f"{window['failure_mode']} — {window['failure_mode_reason']}.",
    ]
    strategy_rows = []
    for strategy in STRATEGIES:
        metrics = window["metrics"][strategy]
        strategy_rows.append(
            [
                STRATEGY_LABELS[strategy],
                metrics["sessions"],
                _pct(metrics["total_return"]),
                _pct(metrics["max_drawdown"]),
                metrics["sharpe"],
                metrics["sortino"],
            ]
        )
    classification = window["classification"]
    class_rows = [
        ["labelled rows", classification["labelled_rows"]],
        ["accuracy", _pct(classification["accuracy"])],
        ["precision (macro)", _pct(classification["precision_macro"])],
        ["recall (macro)", _pct(classification["recall_macro"])],
        ["up-call precision", _pct(classification["up_precision"])],
        ["up calls", classification["up_calls"]],
        ["majority class", classification["majority_class"]],
        ["majority share", _pct(classification["majority_share"])],
        ["student exposure (mean share invested)", _pct(window["metrics"]["student"]["exposure"])],
    ]
    tables = [
        Table(
            "Strategies",
            ["strategy", "sessions", "total return", "max drawdown", "Sharpe", "Sortino"],
            strategy_rows,
        ),
        Table("Student classification", ["figure", "value"], class_rows),
    ]
    return Section(str(window["name"]), paragraphs, tables, images)
