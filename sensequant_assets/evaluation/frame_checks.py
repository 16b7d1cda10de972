"""The checks every frame an evaluation book reads passes: the columns it needs, naive market
dates, known symbols, one row per (date, symbol).

The backtest, its passive books and the rule optimizer accept frames from callers (the
warehouse, the walk-forward, a test); each refuses a malformed one with the same message naming
the first bad row, rather than aligning it silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _clean_returns(returns: pd.DataFrame) -> pd.DataFrame:
    _require_columns(returns, ("date", "symbol", "next_return"), "returns")
    frame = pd.DataFrame(
        {
            "date": _to_datetime(returns["date"], "returns"),
            "symbol": _symbols(returns["symbol"], "returns"),
            "next_return": pd.to_numeric(returns["next_return"], errors="coerce")
            .astype("float64")
            .to_numpy(),
        }
    )
    _reject_duplicates(frame, "returns")
    return frame


def _require_columns(frame: object, columns: tuple[str, ...], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack column(s) {missing}; have {list(frame.columns)}")


def _to_datetime(values: pd.Series, what: str) -> np.ndarray:
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "M":  # naive datetime64
        if values.isna().any():
            raise ValueError(f"{what} have a missing date ({int(values.isna().sum())} row(s))")
        return values.to_numpy().astype("datetime64[ns]")
    try:
        parsed = pd.to_datetime(pd.Series(values))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what} have a 'date' that is not a date: {exc}") from exc
    if getattr(parsed.dt, "tz", None) is not None:
        raise ValueError(f"{what} dates must be naive local market dates, got {parsed.dt.tz}")
    if parsed.isna().any():
        raise ValueError(f"{what} have a missing date ({int(parsed.isna().sum())} row(s))")
    return parsed.astype("datetime64[ns]").to_numpy()


def _date_index(dates: object) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(pd.to_datetime(pd.Index(dates)), name="date")
    if index.tz is not None:
        raise ValueError("dates must be naive local market dates")
    return index.astype("datetime64[ns]")


def _symbols(values: pd.Series, what: str) -> np.ndarray:
    missing = values.isna().to_numpy()
    if missing.any():
        raise ValueError(f"{what} have a missing symbol ({int(missing.sum())} row(s))")
    return values.to_numpy()


def _reject_duplicates(frame: pd.DataFrame, what: str) -> None:
    duplicated = frame.duplicated(["date", "symbol"], keep="first").to_numpy()
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise ValueError(
            f"{what} have duplicate (date, symbol) rows: {row['symbol']} on {_day(row['date'])}"
            f" ({int(duplicated.sum())} extra row(s))"
        )


def _day(value: object) -> str:
    try:
        return pd.Timestamp(value).date().isoformat()
    except (ValueError, TypeError):
        return str(value)
