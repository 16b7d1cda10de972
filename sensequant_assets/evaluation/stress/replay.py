"""Running the stress tests: the student's out-of-sample predictions replayed window by window.

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

Each evaluated window is then scored by :mod:`.scoring`; the overall score is the
session-weighted mean of the windows' scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.classification import CLASSES
from sensequant_assets.evaluation.backtest import Mode, backtest
from sensequant_assets.evaluation.costs import CostModel, periodic_risk_free
from sensequant_assets.evaluation.passive_books import buy_and_hold, cash, sixty_forty
from sensequant_assets.evaluation.performance import (
    CONVENTIONS,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    total_return,
)
from sensequant_assets.evaluation.stress.result import STRATEGIES, StressResult
from sensequant_assets.evaluation.stress.scoring import (
    PASS_MARK,
    _classification,
    _sharpe_for_score,
    failure_mode,
    resilience_score,
)
from sensequant_assets.evaluation.stress.windows import StressWindow


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
    windows = _checked_arguments(costs, risk_free_annual, min_sessions, windows)
    frame = _prepare_oos(oos)
    returns_frame = _prepare_returns(returns)
    benchmark = _prepare_benchmark(benchmark_returns)
    merged = frame.merge(returns_frame, on=["date", "symbol"], how="left")
    frame["next_return"] = merged["next_return"].to_numpy()
    masks = _window_masks(frame, windows)
    in_any = np.logical_or.reduce([*masks.values(), np.zeros(len(frame), dtype=bool)])
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
    return StressResult(
        windows=results,
        overall_score=overall,
        passed=overall is not None and overall >= PASS_MARK,
        evaluated=len(evaluated),
        skipped=len(results) - len(evaluated),
        out_of_stress=outside,
        settings=_settings(context, min_sessions),
        daily_returns=daily,
    )


def _checked_arguments(
    costs: CostModel, risk_free_annual: float, min_sessions: int, windows: Sequence[StressWindow]
) -> list[StressWindow]:
    """The windows, after every argument is checked: a wrong one is a clear error, not an
    empty or misleading report."""
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
    return windows


def _window_masks(frame: pd.DataFrame, windows: Sequence[StressWindow]) -> dict[str, np.ndarray]:
    day = frame["date"].dt.normalize()
    return {
        w.name: ((day >= pd.Timestamp(w.start)) & (day <= pd.Timestamp(w.end))).to_numpy()
        for w in windows
    }


def _settings(context: _Context, min_sessions: int) -> dict[str, Any]:
    frame = context.frame
    return {
        "mode": context.mode,
        "holding_sessions": context.holding_sessions,
        "costs": context.costs.to_dict(),
        "risk_free_annual": context.risk_free_annual,
        "min_sessions": int(min_sessions),
        "prediction_rows": len(frame),
        "first_date": _iso(frame["date"].min()) if len(frame) else None,
        "last_date": _iso(frame["date"].max()) if len(frame) else None,
        "metric_conventions": CONVENTIONS,
    }


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
    entry = _skipped_entry(window, rows)
    known = rows[rows["next_return"].notna()]
    entry["sessions"] = int(known["date"].nunique())
    entry["reason"] = _skip_reason(context, window, rows, entry["sessions"], min_sessions)
    if entry["reason"] is not None:
        return entry, None
    series, extra = _replay(context, known)
    rf = context.risk_free_annual
    metrics = {name: _strategy_metrics(series[name], rf) for name in STRATEGIES}
    metrics["student"].update(extra)
    classification = _classification(rows)
    market_drawdown, source = _market_drawdown(context, window, series, metrics)
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
            **_verdict(series, metrics, classification, market_drawdown, outside, rf),
        }
    )
    return entry, series


def _skipped_entry(window: StressWindow, rows: pd.DataFrame) -> dict[str, Any]:
    """A window's entry with every figure empty: what a skipped window reports."""
    return {
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


def _skip_reason(
    context: _Context, window: StressWindow, rows: pd.DataFrame, sessions: int, min_sessions: int
) -> str | None:
    """Why the window cannot be evaluated (no predictions in it, or too few sessions with a
    known next-session return), or None when it can."""
    span = f"between {window.start} and {window.end}"
    if rows.empty:
        return f"no out-of-sample predictions {span} ({_data_range(context.frame, window)})"
    if sessions >= min_sessions:
        return None
    lacking = int(rows["date"].nunique()) - sessions
    note = f" ({lacking} prediction date(s) lack a known next-session return)" if lacking else ""
    return f"only {sessions} sessions of predictions {span}, need {min_sessions}{note}"


def _market_drawdown(
    context: _Context, window: StressWindow, series: pd.DataFrame, metrics: dict[str, Any]
) -> tuple[float | None, str]:
    """The market's drawdown in the window and where it came from: the benchmark's returns,
    else the windows file's figure, else the equal-weight buy-and-hold book's."""
    market = context.benchmark.reindex(series.index).dropna()
    if not market.empty:
        return max_drawdown(market), "benchmark_returns"
    if window.benchmark_max_drawdown is not None:
        return window.benchmark_max_drawdown, "stress_windows_file"
    return metrics["buy_and_hold"]["max_drawdown"], "buy_and_hold"


def _verdict(
    series: pd.DataFrame,
    metrics: dict[str, Any],
    classification: dict[str, Any],
    market_drawdown: float | None,
    outside: dict[str, Any],
    rf: float,
) -> dict[str, Any]:
    """The window's resilience score, whether it passes, and its failure mode."""
    student, holding = metrics["student"], metrics["buy_and_hold"]
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
    mode, why = failure_mode(
        market_max_drawdown=market_drawdown,
        student_max_drawdown=student["max_drawdown"],
        buy_and_hold_max_drawdown=holding["max_drawdown"],
        accuracy_in_window=classification["accuracy"],
        accuracy_outside=outside["accuracy"],
        student_total_return=student["total_return"],
        cash_total_return=metrics["cash"]["total_return"],
        buy_and_hold_total_return=holding["total_return"],
        student_total_return_outside=(outside["student"] or {}).get("total_return"),
        buy_and_hold_total_return_outside=(outside["buy_and_hold"] or {}).get("total_return"),
    )
    return {
        "score": score,
        "score_components": components,
        "passed": score >= PASS_MARK,
        "failure_mode": mode,
        "failure_mode_reason": why,
    }


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
