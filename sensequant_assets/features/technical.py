"""Causal, scale-free technical features computed from one symbol's daily bars.

Every feature at session t uses rows up to and including t only: rolling windows end at t and
exponential averages use ``ewm(adjust=False)`` (a forward recursion), so appending, editing
or deleting later rows never changes an earlier value. That is what lets the same code serve
training (the whole history at once) and live scoring (history up to today) without leakage.

Features are ratios, returns or bounded oscillators, never price levels, so one student
model can pool symbols trading at ₹50 and at ₹5000. A feature is NaN until its longest
lookback is filled; ``WARMUP_SESSIONS`` is the number of leading rows per symbol where at
least one feature is still NaN, so training code can drop exactly those rows.

Degenerate windows get their neutral value instead of a division by zero: a flat 20-session
close gives %B 0.5, a flat 20-session volume gives z-score 0, and RSI with no movement at all
is 50. Zero volume is read through ``log1p`` so a suspended session stays finite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.typing import Rolling

BAR_COLUMNS = ("date", "open", "high", "low", "close", "volume")

RETURN_HORIZONS = (1, 5, 10, 20)
RSI_WINDOW = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
BOLLINGER_WINDOW = 20
BOLLINGER_WIDTH = 2.0
ATR_WINDOW = 14
TREND_WINDOWS = (10, 50)
VOLUME_WINDOW = 20
VOLATILITY_WINDOW = 20

FEATURE_COLUMNS: tuple[str, ...] = (
    *(f"log_return_{h}" for h in RETURN_HORIZONS),
    f"rsi_{RSI_WINDOW}",
    "macd",
    "macd_signal",
    "macd_hist",
    f"bollinger_pct_b_{BOLLINGER_WINDOW}",
    f"atr_{ATR_WINDOW}_rel",
    *(f"close_sma_{n}_gap" for n in TREND_WINDOWS),
    *(f"close_ema_{n}_gap" for n in TREND_WINDOWS),
    f"volume_z_{VOLUME_WINDOW}",
    f"realized_vol_{VOLATILITY_WINDOW}",
)
SENTIMENT_COLUMNS: tuple[str, ...] = ("sentiment_score", "sentiment_available")

# First row (0-based) at which each feature family is defined. Differences lose one row, so
# windows over returns end one row later than windows over prices.
_FIRST_DEFINED = (
    max(RETURN_HORIZONS),
    RSI_WINDOW,
    (MACD_SLOW - 1) + (MACD_SIGNAL - 1),
    BOLLINGER_WINDOW - 1,
    ATR_WINDOW,
    max(TREND_WINDOWS) - 1,
    VOLUME_WINDOW - 1,
    VOLATILITY_WINDOW,
)
WARMUP_SESSIONS: int = max(_FIRST_DEFINED)


def feature_columns(with_sentiment: bool = False) -> tuple[str, ...]:
    """The model input columns, in output order."""
    return FEATURE_COLUMNS + SENTIMENT_COLUMNS if with_sentiment else FEATURE_COLUMNS


def compute_features(bars: pd.DataFrame, sentiment: pd.Series | None = None) -> pd.DataFrame:
    """``date`` plus the features for one symbol, row for row (same index) with ``bars``.

    ``bars`` must be sorted by strictly increasing ``date``: the windows count rows, so an
    unsorted frame would silently mix past and future. ``sentiment`` is a Series indexed by
    session date (e.g. the daily mean headline score) whose value at t is known by the close
    of t; sessions without a value get score 0.0 and ``sentiment_available`` 0.

    The arithmetic runs on numpy arrays and only the rolling and exponential averages go
    through pandas: a pandas operation costs tens of microseconds whatever its length, which
    dominated on the ~250-row histories of a training window. Each step is the same
    floating-point operation pandas would perform, so results are bit-identical to the
    Series formulation.
    """
    _check_bars(bars)
    close = _float_values(bars["close"])
    high = _float_values(bars["high"])
    low = _float_values(bars["low"])
    log_close = np.log(close)
    columns: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = _diff(log_close)
        for horizon in RETURN_HORIZONS:
            columns[f"log_return_{horizon}"] = log_close - _shift(log_close, horizon)
        columns[f"rsi_{RSI_WINDOW}"] = _rsi_of_changes(_diff(close), RSI_WINDOW)

        fast = _ema(close, MACD_FAST)
        slow = _ema(close, MACD_SLOW)
        macd = fast - slow
        signal = _ema(macd, MACD_SIGNAL)
        columns["macd"] = macd / close
        columns["macd_signal"] = signal / close
        columns["macd_hist"] = (macd - signal) / close

        columns[f"bollinger_pct_b_{BOLLINGER_WINDOW}"] = _percent_b(close)

        previous = _shift(close, 1)
        true_range = np.maximum(
            high - low, np.maximum(np.abs(high - previous), np.abs(low - previous))
        )
        columns[f"atr_{ATR_WINDOW}_rel"] = _wilder_mean(true_range, ATR_WINDOW) / close

        for n in TREND_WINDOWS:
            columns[f"close_sma_{n}_gap"] = close / _rolling(close, n).mean().to_numpy() - 1.0
        for n in TREND_WINDOWS:
            columns[f"close_ema_{n}_gap"] = close / _ema(close, n) - 1.0

        log_volume = np.log1p(_clip_lower(_float_values(bars["volume"]), 0.0))
        columns[f"volume_z_{VOLUME_WINDOW}"] = _zscore(log_volume, VOLUME_WINDOW, flat_value=0.0)
        columns[f"realized_vol_{VOLATILITY_WINDOW}"] = np.sqrt(
            _rolling(returns**2, VOLATILITY_WINDOW).mean().to_numpy()
        )

    if sentiment is not None:
        score, available = _align_sentiment(sentiment, bars["date"])
        columns["sentiment_score"] = score.to_numpy()
        columns["sentiment_available"] = available.to_numpy()
    return pd.DataFrame({"date": bars["date"].array, **columns}, index=bars.index)


def compute_features_panel(
    bars: pd.DataFrame, sentiment: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``date, symbol`` plus features for many symbols; rows keep ``bars``' order and index.

    Each symbol is computed on its own date-sorted rows, so no window ever spans two symbols.
    ``sentiment`` is long-format ``date, symbol, sentiment_score`` (the shape of
    ``sentiment.score_headlines``); when given, every symbol gets the sentiment columns, all
    unavailable for a symbol without headlines.
    """
    if "symbol" not in bars.columns:
        raise ValueError("bars lacks the 'symbol' column needed to compute a panel")
    columns = ["date", "symbol", *feature_columns(sentiment is not None)]
    by_symbol: dict[object, pd.DataFrame] = {}
    if sentiment is not None:
        missing = [c for c in ("date", "symbol", "sentiment_score") if c not in sentiment]
        if missing:
            raise ValueError(f"sentiment lacks column(s) {missing}")
        by_symbol = dict(iter(sentiment.groupby("symbol", sort=False)))
    positional = bars.reset_index(drop=True)
    parts = []
    for symbol, group in positional.groupby("symbol", sort=False, dropna=False):
        ordered = group.sort_values("date", kind="stable")
        scores = None
        if sentiment is not None:
            rows = by_symbol.get(symbol, sentiment.iloc[:0])
            scores = pd.Series(rows["sentiment_score"].to_numpy(), index=rows["date"])
        try:
            features = compute_features(ordered, scores)
        except ValueError as exc:
            raise ValueError(f"symbol {symbol}: {exc}") from exc
        parts.append(features.assign(symbol=symbol))
    if not parts:
        no_scores = None if sentiment is None else pd.Series(dtype="float64")
        parts.append(compute_features(positional, no_scores).assign(symbol=positional["symbol"]))
    panel = pd.concat(parts).sort_index()[columns]
    panel.index = bars.index
    return panel


def _check_bars(bars: pd.DataFrame) -> None:
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {missing}")
    dates = bars["date"]
    if not (dates.is_monotonic_increasing and dates.is_unique):
        raise ValueError("bars must be one symbol's rows sorted by strictly increasing date")


def _float_values(column: pd.Series) -> np.ndarray:
    return column.astype("float64").to_numpy()


def _shift(values: np.ndarray, periods: int) -> np.ndarray:
    """``Series.shift(periods)``: rows move ``periods`` later (earlier when negative), NaN
    where no row moved in."""
    shifted = np.full(len(values), np.nan)
    if periods >= 0:
        shifted[periods:] = values[: max(len(values) - periods, 0)]
    else:
        shifted[: max(len(values) + periods, 0)] = values[-periods:]
    return shifted


def _diff(values: np.ndarray) -> np.ndarray:
    """``Series.diff()``: the first row is NaN, not ``values[0] − NaN``."""
    changes = np.empty(len(values))
    changes[:1] = np.nan
    changes[1:] = values[1:] - values[:-1]
    return changes


def _clip_lower(values: np.ndarray, lower: float) -> np.ndarray:
    """``Series.clip(lower=…)``: NaN and values ≥ ``lower`` (−0.0 included) are kept as is."""
    return np.where(np.isnan(values) | (values >= lower), values, lower)


def _rolling(values: np.ndarray, window: int) -> Rolling:
    """pandas' rolling window over the rows, whose kernels define the averages' exact bits."""
    return pd.Series(values).rolling(window)


def _ema(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential average of ``span`` rows, NaN until ``span`` values have been seen."""
    return pd.Series(values).ewm(span=span, adjust=False, min_periods=span).mean().to_numpy()


def _wilder_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Wilder's average: the mean of the first ``window`` values, then α = 1/window smoothing.

    Seeding with the simple mean (rather than the first value) is Wilder's own definition,
    which is what published RSI/ATR numbers use.
    """
    seed = _rolling(values, window).mean().to_numpy()
    defined = np.flatnonzero(~np.isnan(seed))
    if len(defined) == 0:
        return seed
    position = defined[0]
    seeded = values.copy()
    seeded[:position] = np.nan
    seeded[position] = seed[position]
    return pd.Series(seeded).ewm(alpha=1.0 / window, adjust=False).mean().to_numpy()


def _rsi(close: pd.Series, window: int) -> pd.Series:
    """RSI on 0-100 of a Series of closes, with its index and name."""
    changes = close.diff().to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = _rsi_of_changes(changes, window)
    return pd.Series(values, index=close.index, name=close.name)


def _rsi_of_changes(changes: np.ndarray, window: int) -> np.ndarray:
    """RSI from close-to-close changes, written as 100·gain/(gain + loss) so a loss-free run
    is exactly 100 and a run with no movement at all is 50."""
    gain = _wilder_mean(_clip_lower(changes, 0.0), window)
    loss = _wilder_mean(_clip_lower(-changes, 0.0), window)
    total = gain + loss
    rsi = 100.0 * (gain / np.where(total > 0, total, np.nan))
    return np.where(total == 0, 50.0, rsi)


def _flat(values: np.ndarray, window: int) -> np.ndarray:
    """Windows whose values are all equal, detected exactly (a rolling std may not be 0).

    False until a full window exists and for windows holding a NaN.
    """
    flat = np.zeros(len(values), dtype=bool)
    if len(values) >= window:
        windows = np.lib.stride_tricks.sliding_window_view(values, window)
        flat[window - 1 :] = windows.max(axis=1) == windows.min(axis=1)
    return flat


def _zscore(values: np.ndarray, window: int, flat_value: float) -> np.ndarray:
    rolling = _rolling(values, window)
    mean = rolling.mean().to_numpy()
    std = rolling.std(ddof=0).to_numpy()
    flat = _flat(values, window) | (std == 0)
    return np.where(flat, flat_value, (values - mean) / np.where(flat, np.nan, std))


def _percent_b(close: np.ndarray) -> np.ndarray:
    """Bollinger %B, (close − lower)/(upper − lower), with population σ as Bollinger uses."""
    z = _zscore(close, BOLLINGER_WINDOW, flat_value=0.0)
    return 0.5 + z / (2.0 * BOLLINGER_WIDTH)


def _align_sentiment(sentiment: pd.Series, dates: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Score and 0/1 availability per bar; a missing, NaN or infinite score counts as absent."""
    index = pd.DatetimeIndex(pd.to_datetime(sentiment.index))
    if not index.is_unique:
        raise ValueError("sentiment must have at most one value per date")
    scores = pd.Series(sentiment.to_numpy(dtype="float64"), index=index)
    aligned = scores.reindex(pd.DatetimeIndex(dates)).to_numpy()
    available = np.isfinite(aligned)
    return (
        pd.Series(np.where(available, aligned, 0.0), index=dates.index, dtype="float64"),
        pd.Series(available, index=dates.index).astype("int8"),
    )
