"""The passive books a strategy's backtest is set beside: buy-and-hold, cash and 60/40 (with
the index's next-session returns it mixes).

They use the backtest's t → t+1 alignment over the same dates (:mod:`.backtest`), so a
strategy's daily returns and theirs can be compared day by day.
"""

from __future__ import annotations

import pandas as pd

from sensequant_assets.evaluation.costs import periodic_risk_free
from sensequant_assets.evaluation.frame_checks import (
    _clean_returns,
    _date_index,
    _day,
    _require_columns,
    _to_datetime,
)


def buy_and_hold(returns: pd.DataFrame, dates: object) -> pd.Series:
    """Equal-weight portfolio of every symbol in ``returns``, rebalanced daily to equal weight.

    The value at t is the mean next_return over the symbols known at t (NaN if none). The
    one-off entry cost is ignored: spread over a multi-year test it is negligible.
    """
    clean = _clean_returns(returns)
    wide = clean.pivot(index="date", columns="symbol", values="next_return")
    return wide.mean(axis=1).reindex(_date_index(dates)).rename("buy_and_hold")


def cash(dates: object, risk_free_annual: float = 0.0) -> pd.Series:
    """The per-session risk-free rate on every date."""
    index = _date_index(dates)
    return pd.Series(periodic_risk_free(risk_free_annual), index=index, name="cash")


def sixty_forty(
    benchmark_returns: pd.Series, dates: object, risk_free_annual: float = 0.0
) -> pd.Series:
    """60% benchmark + 40% cash, rebalanced daily (NaN where the benchmark is unknown)."""
    index = _date_index(dates)
    benchmark = pd.Series(
        benchmark_returns.to_numpy(dtype="float64"),
        index=_date_index(benchmark_returns.index),
    )
    if not benchmark.index.is_unique:
        raise ValueError("benchmark_returns must have one value per date")
    mixed = 0.6 * benchmark.reindex(index) + 0.4 * periodic_risk_free(risk_free_annual)
    return mixed.rename("sixty_forty")


def benchmark_next_returns(benchmark_bars: pd.DataFrame) -> pd.Series:
    """Next-session returns of an index series (``date, close``), indexed by date."""
    _require_columns(benchmark_bars, ("date", "close"), "benchmark_bars")
    if "symbol" in benchmark_bars.columns and benchmark_bars["symbol"].nunique() > 1:
        raise ValueError("benchmark_bars hold more than one symbol; pass a single series")
    close = pd.Series(
        pd.to_numeric(benchmark_bars["close"], errors="coerce").to_numpy(dtype="float64"),
        index=pd.DatetimeIndex(_to_datetime(benchmark_bars["date"], "benchmark_bars"), name="date"),
    )
    duplicated = close.index.duplicated()
    if duplicated.any():
        raise ValueError(f"benchmark_bars have duplicate date {_day(close.index[duplicated][0])}")
    if (close <= 0).any():
        raise ValueError(
            f"benchmark_bars have a non-positive close on {_day(close[close <= 0].index[0])}"
        )
    close = close.sort_index()
    return (close.shift(-1) / close - 1.0).rename("benchmark")
