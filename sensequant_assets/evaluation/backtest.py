"""Vectorised daily backtest of directional predictions, with NSE costs and simple baselines.

Conventions, and why:

* **Timing.** A prediction dated t is made from data up to the close of t and sets the
  position held over the NEXT session: it earns the simple return close_t → close_{t+1}
  (``next_return`` at t). Execution is market-on-close at t; slippage is charged to pay for
  trading at a close the model has just seen. The return ending at t is never credited to a
  prediction dated t, which is the only alignment free of lookahead. "Next session" is the
  symbol's next bar, so a missing bar makes the return span the gap.
* **Positions.** long_flat: up → +1, down/neutral → 0. long_short: up → +1, down → −1,
  neutral → 0, in units of the symbol's capital share. A symbol without a prediction on a
  day is flat. A position still open after the last date is marked to market, not sold.
* **Shorts need a cost model.** Holding an NSE cash-equity short for days needs stock
  futures or securities lending, and both cost money. ``long_short`` therefore runs only
  with ``CostModel.short_cost_bp_annual`` set (the borrow fee or futures carry, charged per
  session on the short exposure); without it the only book is long/flat.
* **Execution lag.** ``lag_sessions`` L delays every call by L sessions (a call dated t
  first acts at the close of t+L): the sensitivity of the edge to trading a day late.
* **Holding.** With ``holding_sessions`` h > 1 each day's call commits 1/h of the symbol's
  capital share for h sessions (overlapping cohorts, as in Jegadeesh & Titman 1993): the
  position at t is the mean of the calls dated t−h+1 … t (a missing call counts as flat).
  A model trained on h-session labels makes h-session calls; acting on each call for one
  session only would trade about h times as much for the same forecast.
* **Costs.** Charged on turnover on the day the position changes: a change Δ costs
  |Δ| × (round_trip_bp/2 + slippage_bp)/1e4, so enter + exit pays one round trip plus two
  slippages, and a +1 → −1 flip pays two sides. The first day starts from flat, so initial
  entries are paid for. Trades that would restore equal weights after prices drift are not
  charged (small; the buy-and-hold baseline is treated the same way).
* **Portfolio.** Each day the symbols with a prediction share the capital equally (1/n
  each); a symbol's capital share earns position × next_return, and the part of it not
  invested long (1 − max(position, 0): the flat part and a short's collateral) earns the
  per-session risk-free rate (1 + rf)^(1/252) − 1. Costs are charged on the change of
  portfolio weights (position/n), which equals (Σ|Δposition|)/n while the set of predicted
  symbols is fixed.
* **Against the market.** ``active_returns`` is the book's net return minus what the same
  exposure earns in the market: Σ wᵢ·(rᵢ − r̄) − costs, with r̄ the equal-weight next return
  of the symbols predicted that day. It is a self-financing spread (long the picks, short the
  market by the same amount), so the risk-free rate cancels; with no skill its mean is minus
  the costs, whatever the market does, which is what makes it the series skill is judged on.
* **Timeline.** The dates are the prediction dates with at least one known next return;
  prediction rows without one (each symbol's last bar, unknown closes, unknown symbols) are
  dropped and counted. Consecutive dates are taken to be consecutive sessions: predict every
  session (neutral to stay flat) for the costs of a gap to be counted.
* **Baselines** (:mod:`.passive_books`) use the same t → t+1 alignment over the same dates.
  Buy-and-hold is the equal-weight portfolio rebalanced daily; its one entry cost (≈ 0.17%
  once) is ignored.

The cost model and the risk-free rate are :mod:`.costs`; the checks of the input frames
:mod:`.frame_checks`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from sensequant_assets.evaluation.costs import CostModel, periodic_risk_free
from sensequant_assets.evaluation.frame_checks import (
    _clean_returns,
    _day,
    _reject_duplicates,
    _require_columns,
    _symbols,
    _to_datetime,
)
from sensequant_assets.features.labels import DOWN, NEUTRAL, UP

Mode = Literal["long_flat", "long_short"]
MODES: tuple[str, ...] = ("long_flat", "long_short")
_POSITION_OF_CLASS = {
    "long_flat": {DOWN: 0.0, NEUTRAL: 0.0, UP: 1.0},
    "long_short": {DOWN: -1.0, NEUTRAL: 0.0, UP: 1.0},
}


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Daily series of one backtest, indexed by prediction date (``date``).

    ``symbol_returns`` is each symbol's net return on its own capital share (NaN on days
    without a prediction); while the set of predicted symbols is fixed, ``portfolio_returns``
    is its row mean. ``positions`` holds the positions (NaN: no prediction, i.e. flat),
    ``n_symbols`` the number of symbols sharing the capital, ``turnover`` Σ|Δweight| as a
    fraction of the portfolio, ``costs_paid`` turnover × per-side rate, and
    ``dropped_rows`` the prediction rows left out for lack of a known next return.
    ``active_returns`` is the net return against the market (module docstring).
    """

    symbol_returns: pd.DataFrame
    portfolio_returns: pd.Series
    gross_portfolio_returns: pd.Series
    active_returns: pd.Series
    turnover: pd.Series
    costs_paid: pd.Series
    positions: pd.DataFrame
    n_symbols: pd.Series
    mode: str
    cost_model: CostModel
    risk_free_annual: float
    dropped_rows: int
    lag_sessions: int = 0


def available_modes(costs: CostModel) -> tuple[str, ...]:
    """The books these costs can run: long_short only with a short cost model."""
    return MODES if costs.shorts_allowed else ("long_flat",)


def next_session_returns(bars: pd.DataFrame) -> pd.DataFrame:
    """``date, symbol, next_return`` with next_return_t = close_{t+1}/close_t − 1 per symbol.

    Rows come back sorted by date then symbol; each symbol's last row has NaN, and so do the
    rows next to an unknown close (a gap is never bridged by guessing).
    """
    _require_columns(bars, ("date", "symbol", "close"), "bars")
    frame = pd.DataFrame(
        {
            "date": _to_datetime(bars["date"], "bars"),
            "symbol": _symbols(bars["symbol"], "bars"),
            "close": pd.to_numeric(bars["close"], errors="coerce").astype("float64").to_numpy(),
        }
    )
    _reject_duplicates(frame, "bars")
    bad = frame["close"] <= 0
    if bad.any():
        row = frame[bad].iloc[0]
        raise ValueError(
            f"bars have non-positive close {row['close']!r} for {row['symbol']} on "
            f"{_day(row['date'])} ({int(bad.sum())} row(s))"
        )
    frame = frame.sort_values(["symbol", "date"], kind="stable")
    following = frame.groupby("symbol", sort=False)["close"].shift(-1)
    frame["next_return"] = following / frame["close"] - 1.0
    frame = frame.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
    return frame[["date", "symbol", "next_return"]]


def positions_from_predictions(predictions: pd.DataFrame, mode: Mode) -> pd.DataFrame:
    """``date, symbol, position`` from predicted classes (0 down, 1 neutral, 2 up).

    long_flat: up → 1, otherwise 0. long_short: up → 1, down → −1, neutral → 0.
    """
    _check_mode(mode)
    _require_columns(predictions, ("date", "symbol", "predicted"), "predictions")
    raw = predictions["predicted"]
    classes = pd.to_numeric(raw, errors="coerce")
    known = classes.isin(list(_POSITION_OF_CLASS[mode])).fillna(False).to_numpy(dtype=bool)
    if not known.all():
        first = int(np.flatnonzero(~known)[0])
        value, symbol = _plain(raw.iloc[first]), predictions["symbol"].iloc[first]
        raise ValueError(
            f"unknown predicted class {value!r} for {symbol} "
            f"on {_day(predictions['date'].iloc[first])} ({int((~known).sum())} row(s)); "
            f"expected 0 (down), 1 (neutral) or 2 (up)"
        )
    frame = pd.DataFrame(
        {
            "date": _to_datetime(predictions["date"], "predictions"),
            "symbol": _symbols(predictions["symbol"], "predictions"),
            "position": classes.astype("float64").map(_POSITION_OF_CLASS[mode]).to_numpy(),
        }
    )
    _reject_duplicates(frame, "predictions")
    return frame.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)


def backtest(
    predictions: pd.DataFrame,
    returns: pd.DataFrame,
    mode: Mode,
    costs: CostModel,
    risk_free_annual: float = 0.0,
    holding_sessions: int = 1,
    lag_sessions: int = 0,
) -> BacktestResult:
    """Equal-weight daily backtest of ``predictions`` against ``next_session_returns`` output."""
    if not isinstance(costs, CostModel):
        raise ValueError(f"costs must be a CostModel, got {type(costs).__name__}")
    for name, value, least in (("holding_sessions", holding_sessions, 1),
                               ("lag_sessions", lag_sessions, 0)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if value < least:
            raise ValueError(f"{name} must be ≥ {least}, got {value}")
    if mode == "long_short" and not costs.shorts_allowed:
        raise ValueError(
            "long_short needs a cost model for shorts (stock futures or a borrow fee): set "
            "CostModel.short_cost_bp_annual (SENSEQUANT_SHORT_COST_BP_ANNUAL), or use long_flat"
        )
    periodic_risk_free(risk_free_annual)  # validate before the heavier work
    positions = positions_from_predictions(predictions, mode)
    layout = _Layout.build(positions[["date", "symbol"]], _clean_returns(returns))
    calls = _lagged(layout.scatter(positions["position"]), lag_sessions)
    grid = _staggered(calls, holding_sessions)
    return replace(
        _simulate(layout, grid, mode, costs, risk_free_annual), lag_sessions=lag_sessions
    )


def _lagged(calls: np.ndarray, lag_sessions: int) -> np.ndarray:
    """Each call moved ``lag_sessions`` rows later, onto the days the symbol trades.

    A day whose lagged call is missing (the first L days, or after a gap) is flat; a day the
    symbol has no row stays without one, so the set of symbols sharing the capital is the
    unlagged book's.
    """
    if lag_sessions == 0:
        return calls
    shifted = np.full_like(calls, np.nan)
    if lag_sessions < len(calls):
        shifted[lag_sessions:] = calls[:-lag_sessions]
    return np.where(np.isnan(calls), np.nan, np.nan_to_num(shifted, nan=0.0))


def _staggered(calls: np.ndarray, holding_sessions: int) -> np.ndarray:
    """Mean of each symbol's last ``holding_sessions`` calls (missing = flat); NaN stays NaN."""
    if holding_sessions == 1:
        return calls
    filled = np.nan_to_num(calls, nan=0.0)
    total = np.cumsum(filled, axis=0)
    total[holding_sessions:] -= total[:-holding_sessions].copy()
    return np.where(np.isnan(calls), np.nan, total / holding_sessions)


@dataclass(frozen=True, eq=False)
class _Layout:
    """Where each prediction row lands in the date × symbol grid, and the returns grid.

    Built once per set of (date, symbol) keys, so a search over many rules with the same keys
    (the optimizer) aligns returns once and only scatters each rule's positions.
    """

    dates: pd.DatetimeIndex
    symbols: pd.Index
    kept: np.ndarray  # bool per key row: it has a known next return
    rows: np.ndarray  # grid row of each kept key
    cols: np.ndarray  # grid column of each kept key
    returns: np.ndarray  # next returns on the grid, 0.0 where there is no kept key

    @classmethod
    def build(cls, keys: pd.DataFrame, returns: pd.DataFrame) -> _Layout:
        aligned = keys.merge(returns, on=["date", "symbol"], how="left")
        realised = aligned["next_return"].to_numpy(dtype="float64")
        kept = np.isfinite(realised)
        if not kept.any():
            raise ValueError(
                f"none of the {len(keys)} prediction row(s) has a known next-session return "
                "(check that returns cover the predicted symbols and dates before their last bar)"
            )
        dates, rows = np.unique(aligned["date"].to_numpy()[kept], return_inverse=True)
        symbols, cols = np.unique(aligned["symbol"].to_numpy()[kept], return_inverse=True)
        grid = np.zeros((len(dates), len(symbols)))
        grid[rows, cols] = realised[kept]
        return cls(
            dates=pd.DatetimeIndex(dates, name="date"),
            symbols=pd.Index(symbols, name="symbol"),
            kept=kept,
            rows=rows,
            cols=cols,
            returns=grid,
        )

    @property
    def dropped_rows(self) -> int:
        return int((~self.kept).sum())

    def scatter(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Date × symbol grid of per-key ``values`` (one per key row), NaN where no key."""
        grid = np.full((len(self.dates), len(self.symbols)), np.nan)
        grid[self.rows, self.cols] = np.asarray(values, dtype="float64")[self.kept]
        return grid


def _simulate(
    layout: _Layout,
    positions: np.ndarray,
    mode: str,
    costs: CostModel,
    risk_free_annual: float,
) -> BacktestResult:
    """The accounting of the module docstring on a date × symbol grid (NaN: no prediction)."""
    rf = periodic_risk_free(risk_free_annual)
    predicted = ~np.isnan(positions)
    held = np.where(predicted, positions, 0.0)
    realised = layout.returns

    previous = np.vstack([np.zeros((1, held.shape[1])), held[:-1]])
    traded = np.abs(held - previous)
    shorted = np.maximum(-held, 0.0)
    per_symbol = (
        held * realised
        + (1.0 - np.maximum(held, 0.0)) * rf
        - traded * costs.per_side_rate
        - shorted * costs.short_rate
    )

    n_symbols = predicted.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.nan_to_num(held / n_symbols[:, None])
        market = np.where(predicted, realised, 0.0).sum(axis=1) / n_symbols
    market = np.nan_to_num(market)
    previous_weights = np.vstack([np.zeros((1, weights.shape[1])), weights[:-1]])
    turnover = np.abs(weights - previous_weights).sum(axis=1)
    cost = turnover * costs.per_side_rate + np.maximum(-weights, 0.0).sum(axis=1) * costs.short_rate
    gross = (weights * realised).sum(axis=1) + (1.0 - np.maximum(weights, 0.0).sum(axis=1)) * rf
    active = (weights * (realised - market[:, None])).sum(axis=1) - cost

    index, columns = layout.dates, layout.symbols
    return BacktestResult(
        symbol_returns=pd.DataFrame(
            np.where(predicted, per_symbol, np.nan), index=index, columns=columns
        ),
        portfolio_returns=pd.Series(gross - cost, index=index, name="strategy"),
        gross_portfolio_returns=pd.Series(gross, index=index, name="strategy_gross"),
        active_returns=pd.Series(active, index=index, name="active"),
        turnover=pd.Series(turnover, index=index, name="turnover"),
        costs_paid=pd.Series(cost, index=index, name="costs_paid"),
        positions=pd.DataFrame(positions, index=index, columns=columns),
        n_symbols=pd.Series(n_symbols, index=index, name="n_symbols"),
        mode=mode,
        cost_model=costs,
        risk_free_annual=float(risk_free_annual),
        dropped_rows=layout.dropped_rows,
    )


def equity_curve(returns: pd.Series) -> pd.Series:
    """Compounded wealth starting at 1.0 before the first return (one more point than returns).

    With a date index, the value at t is the wealth at the close of t, before the position
    set at t has earned anything; the last point is labelled with the business day after the
    last date (the next session, up to exchange holidays). Otherwise the index is 0..n.
    """
    values = returns.to_numpy(dtype="float64")
    if not np.isfinite(values).all():
        raise ValueError("returns contain NaN or infinite values; equity is undefined there")
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + values)])
    if isinstance(returns.index, pd.DatetimeIndex) and len(returns):
        last = returns.index[-1] + pd.offsets.BDay(1)
        index = returns.index.append(pd.DatetimeIndex([last], name=returns.index.name))
    else:
        index = pd.RangeIndex(len(wealth))
    return pd.Series(wealth, index=index, name="equity")


def _check_mode(mode: object) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds, so messages read ``3``, not ``np.int64(3)``."""
    return value.item() if isinstance(value, np.generic) else value
