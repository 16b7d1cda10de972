"""Grid search over an SMA/RSI rule that keeps every trial, so the selection can be audited.

The rule, per symbol, evaluated at the close of session t (long/flat, causal):

* enter (flat → long): close_t > SMA_n(close)_t and rsi_entry < RSI14_t < rsi_exit. The
  RSI floor keeps the rule from buying a collapsing stock; the ceiling from buying a spike.
* exit (long → flat): close_t < SMA_n(close)_t or RSI14_t > rsi_exit.
* otherwise the previous state is kept (so a held position survives RSI dipping below
  rsi_entry, or touching close = SMA or RSI = rsi_exit). Every symbol starts flat, and is
  forced flat while SMA or RSI is still undefined (warm-up).

SMA_n is the simple mean of the last n closes, RSI14 Wilder's (``features.technical._rsi``).
Indicators and states are computed on the full history, so the warm-up and any position
carried into the window use data before ``start``; only prediction dates inside
[start, end] are evaluated. The state at t becomes a prediction dated t (long → class 2
"up", flat → class 1 "neutral") scored in long_flat mode by the accounting of ``backtest``
(the same code, with the returns aligned once for all trials), so it earns
close_t → close_{t+1} net of costs exactly like a model's predictions would. Each window
starts from cash: positions held at ``start`` pay their entry cost on the first day.

Why keep every trial: picking the best of N backtests inflates its Sharpe. The trial count
and the date × trial return matrix (``trial_returns``) are what the deflated Sharpe ratio
and the probability of backtest overfitting need, so nothing is discarded.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sensequant_assets.evaluation.backtest import (
    _POSITION_OF_CLASS,
    _Layout,
    _simulate,
    next_session_returns,
)
from sensequant_assets.evaluation.costs import TRADING_DAYS_PER_YEAR, CostModel, periodic_risk_free
from sensequant_assets.evaluation.frame_checks import (
    _reject_duplicates,
    _require_columns,
    _symbols,
    _to_datetime,
)
from sensequant_assets.features.labels import NEUTRAL, UP
from sensequant_assets.features.technical import _rsi

RSI_WINDOW = 14
TRIAL_COLUMNS = (
    "trial_id",
    "sma_length",
    "rsi_entry",
    "rsi_exit",
    "sharpe",
    "sharpe_per_period",
    "total_return",
    "max_drawdown",
    "n_trades",
    "turnover",
    "exposure",
)


@dataclass(frozen=True)
class ParameterGrid:
    """Values tried for each rule parameter; trials are their full Cartesian product.

    Every rsi_entry must lie below every rsi_exit, so that each combination is a valid rule
    and the trial count is exactly the product of the tuple lengths.
    """

    sma_length: tuple[int, ...] = (10, 20, 50, 100)
    rsi_entry: tuple[float, ...] = (30, 40, 50)
    rsi_exit: tuple[float, ...] = (60, 70, 80)

    def __post_init__(self) -> None:
        for name in ("sma_length", "rsi_entry", "rsi_exit"):
            values = tuple(getattr(self, name))
            if not values:
                raise ValueError(f"{name} needs at least one value")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has repeated values {list(values)}")
            object.__setattr__(self, name, values)
        for n in self.sma_length:
            if not _is_int(n) or n < 2:
                raise ValueError(f"sma_length values must be integers ≥ 2, got {n!r}")
        for name in ("rsi_entry", "rsi_exit"):
            for level in getattr(self, name):
                if not _is_real(level) or not 0.0 <= float(level) <= 100.0:
                    raise ValueError(f"{name} values must be numbers in [0, 100], got {level!r}")
        if max(self.rsi_entry) >= min(self.rsi_exit):
            raise ValueError(
                f"every rsi_entry must be below every rsi_exit, got entries {list(self.rsi_entry)}"
                f" and exits {list(self.rsi_exit)}"
            )

    @property
    def n_trials(self) -> int:
        return len(self.sma_length) * len(self.rsi_entry) * len(self.rsi_exit)

    def trials(self) -> list[dict[str, object]]:
        """``trial_id`` and parameters of every trial, in trial order (sma, entry, exit)."""
        return [
            {
                "trial_id": trial_id(n, entry, exit_),
                "sma_length": n,
                "rsi_entry": entry,
                "rsi_exit": exit_,
            }
            for n, entry, exit_ in itertools.product(self.sma_length, self.rsi_entry, self.rsi_exit)
        ]


@dataclass(frozen=True, eq=False)
class OptimizationResult:
    """All trials of one grid search.

    ``trials``: one row per trial in trial order (columns ``TRIAL_COLUMNS``): annualised
    Sharpe of daily excess returns over the per-session risk-free rate (ddof=1, × √252; NaN
    when the returns are constant), the same per period, compounded total return, max
    drawdown (≤ 0), position changes summed over symbols, summed portfolio turnover and mean
    invested fraction. ``trial_returns``: net daily portfolio returns, one column per
    trial id, all on the same dates. ``best_trial``: highest Sharpe, ties (and all-NaN) to
    the earliest trial. ``dropped_rows``: (date, symbol) rows in the window left out for
    lack of a next close (each symbol's last bar when the window reaches the data's end).
    """

    trials: pd.DataFrame
    trial_returns: pd.DataFrame
    best_trial: str
    n_trials: int
    grid: ParameterGrid
    cost_model: CostModel
    risk_free_annual: float
    start: dt.date | None = None
    end: dt.date | None = None
    dropped_rows: int = 0

    @property
    def best_params(self) -> dict[str, object]:
        """The best trial's ``sma_length``, ``rsi_entry`` and ``rsi_exit``, as in the grid."""
        (params,) = [p for p in self.grid.trials() if p["trial_id"] == self.best_trial]
        return {name: params[name] for name in ("sma_length", "rsi_entry", "rsi_exit")}


def trial_id(sma_length: int, rsi_entry: float, rsi_exit: float) -> str:
    """E.g. ``sma20_rsi40-70``."""
    return f"sma{int(sma_length)}_rsi{rsi_entry:g}-{rsi_exit:g}"


def compute_indicators(bars: pd.DataFrame, sma_lengths: tuple[int, ...]) -> pd.DataFrame:
    """``date, symbol, close, rsi_14, sma_<n>...`` per symbol, sorted by symbol then date."""
    frame = _clean_bars(bars).sort_values(["symbol", "date"], kind="stable")
    frame = frame.reset_index(drop=True)
    by_symbol = frame.groupby("symbol", sort=False)["close"]
    frame[f"rsi_{RSI_WINDOW}"] = by_symbol.transform(lambda close: _rsi(close, RSI_WINDOW))
    for n in sorted(set(sma_lengths)):
        frame[f"sma_{n}"] = by_symbol.rolling(n).mean().reset_index(level=0, drop=True)
    return frame


def rule_positions(
    indicators: pd.DataFrame, sma_length: int, rsi_entry: float, rsi_exit: float
) -> pd.Series:
    """1.0 long / 0.0 flat per row of ``compute_indicators`` output (see module docstring)."""
    close = indicators["close"]
    sma = indicators[f"sma_{sma_length}"]
    rsi = indicators[f"rsi_{RSI_WINDOW}"]
    defined = close.notna() & sma.notna() & rsi.notna()
    enter = defined & (close > sma) & (rsi > rsi_entry) & (rsi < rsi_exit)
    leave = ~defined | (close < sma) | (rsi > rsi_exit)
    signal = pd.Series(np.where(enter, 1.0, np.where(leave, 0.0, np.nan)), index=indicators.index)
    return signal.groupby(indicators["symbol"], sort=False).ffill().fillna(0.0)


def run_optimizer(
    bars: pd.DataFrame,
    grid: ParameterGrid | None = None,
    costs: CostModel | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    risk_free_annual: float = 0.0,
) -> OptimizationResult:
    """Backtest every trial of ``grid`` on ``bars`` (``date, symbol, close``) over [start, end].

    ``grid`` defaults to ``ParameterGrid()`` (36 trials) and ``costs`` to ``CostModel()``
    (NSE delivery, 24 bp round trip + 5 bp slippage per side).
    """
    grid = ParameterGrid() if grid is None else grid
    costs = CostModel() if costs is None else costs
    if start is not None and end is not None and pd.Timestamp(start) > pd.Timestamp(end):
        raise ValueError(f"start {start} is after end {end}")
    indicators = compute_indicators(bars, grid.sma_length)
    returns = next_session_returns(indicators[["date", "symbol", "close"]])

    in_window = _in_window(indicators, start, end)
    # Same keys for every trial: align the returns once, then only scatter each rule's states.
    layout = _Layout.build(indicators.loc[in_window, ["date", "symbol"]], returns)
    rows: list[dict[str, object]] = []
    columns: dict[str, pd.Series] = {}
    for params in grid.trials():
        daily, row = _trial(indicators, in_window, layout, params, costs, risk_free_annual)
        columns[str(params["trial_id"])] = daily
        rows.append(row)

    trial_returns = pd.DataFrame(columns)
    trial_returns.index.name = "date"
    trial_returns.columns.name = "trial_id"
    trials = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))
    ranking = trials["sharpe"].fillna(-np.inf).to_numpy()
    best = str(trials["trial_id"].iloc[int(np.argmax(ranking))])
    return OptimizationResult(
        trials=trials,
        trial_returns=trial_returns,
        best_trial=best,
        n_trials=len(trials),
        grid=grid,
        cost_model=costs,
        risk_free_annual=float(risk_free_annual),
        start=start,
        end=end,
        dropped_rows=layout.dropped_rows,
    )


def _in_window(indicators: pd.DataFrame, start: dt.date | None, end: dt.date | None) -> np.ndarray:
    in_window = np.ones(len(indicators), dtype=bool)
    if start is not None:
        in_window &= (indicators["date"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        in_window &= (indicators["date"] <= pd.Timestamp(end)).to_numpy()
    if not in_window.any():
        first, last = indicators["date"].min().date(), indicators["date"].max().date()
        raise ValueError(
            f"no bar dates in [{start or 'start'}, {end or 'end'}]; bars cover {first}..{last}"
        )
    return in_window


def _trial(
    indicators: pd.DataFrame,
    in_window: np.ndarray,
    layout: _Layout,
    params: dict[str, object],
    costs: CostModel,
    risk_free_annual: float,
) -> tuple[pd.Series, dict[str, object]]:
    """One rule's daily book returns and its row of the trials table."""
    long = rule_positions(
        indicators, params["sma_length"], params["rsi_entry"], params["rsi_exit"]
    ).to_numpy()[in_window]
    # long → class 2 (up), flat → class 1 (neutral), positioned as backtest does them.
    position_of = _POSITION_OF_CLASS["long_flat"]
    positions = np.where(long > 0, position_of[UP], position_of[NEUTRAL])
    result = _simulate(layout, layout.scatter(positions), "long_flat", costs, risk_free_annual)
    daily = result.portfolio_returns
    held = result.positions.fillna(0.0).to_numpy()
    changes = np.abs(np.diff(held, axis=0, prepend=0.0)) > 0
    exposure = (held.sum(axis=1) / result.n_symbols.to_numpy()).mean()
    return daily, {
        **params,
        **_performance(daily, periodic_risk_free(risk_free_annual)),
        "n_trades": int(changes.sum()),
        "turnover": float(result.turnover.sum()),
        "exposure": float(exposure),
    }


def _performance(daily: pd.Series, rf: float) -> dict[str, float]:
    values = daily.to_numpy(dtype="float64")
    excess = values - rf
    std = excess.std(ddof=1) if len(excess) > 1 else math.nan
    per_period = excess.mean() / std if std > 0 else math.nan
    wealth = np.cumprod(np.concatenate([[1.0], 1.0 + values]))
    drawdown = wealth / np.maximum.accumulate(wealth) - 1.0
    return {
        "sharpe": per_period * math.sqrt(TRADING_DAYS_PER_YEAR),
        "sharpe_per_period": per_period,
        "total_return": float(wealth[-1] - 1.0),
        "max_drawdown": float(drawdown.min()),
    }


def _clean_bars(bars: pd.DataFrame) -> pd.DataFrame:
    _require_columns(bars, ("date", "symbol", "close"), "bars")
    if bars.empty:
        raise ValueError("bars are empty: no date, symbol, close rows to optimise on")
    frame = pd.DataFrame(
        {
            "date": _to_datetime(bars["date"], "bars"),
            "symbol": _symbols(bars["symbol"], "bars"),
            "close": pd.to_numeric(bars["close"], errors="coerce").astype("float64").to_numpy(),
        }
    )
    _reject_duplicates(frame, "bars")
    return frame


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
