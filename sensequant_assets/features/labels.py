"""Three-class direction labels (down / neutral / up) over a fixed horizon of sessions.

Labels are forward-looking by construction: the label at t is decided by the close h
sessions later. They are training targets only and must never be used as features, nor
joined back onto the feature table in any form a model could read. ``label_end`` is the date
of the last bar the label looks at; training code uses it to purge (and embargo) samples
whose label window overlaps the validation period, since neighbouring labels share most of
their future and would otherwise leak it across the split.

The neutral band exists because tiny moves are noise the model cannot act on. In ``fixed``
mode it is a constant return; in ``volatility`` mode it scales with the symbol's own recent
volatility (known at t, so the band itself never peeks ahead) and the horizon, so a calm
utility and a volatile small cap get comparably balanced classes.

Reference. ``absolute`` labels the stock's own forward return. ``market`` labels its return in
excess of the benchmark's over the same sessions (r_stock − r_market), and the volatility band
then uses the volatility of the daily excess log return. Most of a stock's week is the market's
week: absolute classes mostly record the market's direction, which one model per stock cannot
time, so the share of "up" swings with the trend of whatever period is held out and a naive
majority-class guess can look as good as any model. Market-relative classes record what a
per-stock model can know — whether this stock beats the market — and keep classes balanced
across bull and bear periods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from sensequant_assets.features.technical import _diff, _shift

CLASS_NAMES = {0: "down", 1: "neutral", 2: "up"}
DOWN, NEUTRAL, UP = 0, 1, 2
LABEL_COLUMNS = (
    "date", "forward_return", "threshold", "label", "label_end", "last_return", "last_band",
)  # fmt: skip


@dataclass(frozen=True)
class LabelSpec:
    """How labels are cut: horizon in trading sessions and the neutral band around zero.

    ``fixed``: |forward return| must exceed ``threshold``. ``volatility``: it must exceed
    ``vol_multiplier`` × the std of the last ``vol_lookback`` daily log returns (ending at t)
    × √horizon, the typical size of an h-session move.
    """

    horizon: int = 7
    mode: Literal["fixed", "volatility"] = "fixed"
    reference: Literal["absolute", "market"] = "absolute"
    threshold: float = 0.01
    vol_lookback: int = 20
    vol_multiplier: float = 0.5

    def __post_init__(self) -> None:
        if not _is_int(self.horizon) or self.horizon < 1:
            raise ValueError(f"horizon must be an integer ≥ 1 session, got {self.horizon!r}")
        if self.mode not in ("fixed", "volatility"):
            raise ValueError(f"mode must be 'fixed' or 'volatility', got {self.mode!r}")
        if self.reference not in ("absolute", "market"):
            raise ValueError(f"reference must be 'absolute' or 'market', got {self.reference!r}")
        if not _is_real(self.threshold) or not 0.0 <= self.threshold < math.inf:
            raise ValueError(f"threshold must be a finite number ≥ 0, got {self.threshold!r}")
        if not _is_int(self.vol_lookback) or self.vol_lookback < 2:
            raise ValueError(
                f"vol_lookback must be an integer ≥ 2 (a std needs two returns), "
                f"got {self.vol_lookback!r}"
            )
        if not _is_real(self.vol_multiplier) or not 0.0 <= self.vol_multiplier < math.inf:
            raise ValueError(
                f"vol_multiplier must be a finite number ≥ 0, got {self.vol_multiplier!r}"
            )


def make_labels(
    bars: pd.DataFrame, spec: LabelSpec, market: pd.Series | None = None
) -> pd.DataFrame:
    """Labels for one symbol's bars (sorted by strictly increasing ``date``), row for row.

    ``label`` is nullable Int8: 0 down if r < −threshold, 2 up if r > threshold, otherwise 1
    (a move exactly at the threshold is neutral); <NA> where r or the threshold is unknown,
    i.e. the last ``horizon`` rows and, in volatility mode, the first ``vol_lookback`` rows.
    With ``reference="market"``, ``market`` holds the benchmark's closes indexed by date and r
    is the excess forward return; sessions the benchmark lacks get <NA>. ``last_return`` is the
    same measure over the session ending at t (a log return, known at t), and ``last_band``
    the label's neutral band scaled to one session (threshold / √horizon): the inputs of the
    yesterday's-direction baseline, so that baseline predicts what the label measures,
    neutral included.
    """
    missing = [c for c in ("date", "close") if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {missing}")
    dates = bars["date"]
    if not (dates.is_monotonic_increasing and dates.is_unique):
        raise ValueError("bars must be one symbol's rows sorted by strictly increasing date")
    close = bars["close"].astype("float64").to_numpy()
    horizon = spec.horizon
    # numpy, not Series, arithmetic: the same floating-point operations without pandas'
    # per-operation overhead, which dominated on a training window's few hundred rows.
    with np.errstate(divide="ignore", invalid="ignore"):
        forward = _shift(close, -horizon) / close - 1.0
        log_return = _diff(np.log(close))
        if spec.reference == "market":
            market_close = _market_closes(market, dates)
            forward = forward - (_shift(market_close, -horizon) / market_close - 1.0)
            log_return = log_return - _diff(np.log(market_close))
        if spec.mode == "fixed":
            threshold = np.full(len(close), spec.threshold, dtype=np.float64)
        else:
            daily_vol = pd.Series(log_return).rolling(spec.vol_lookback).std().to_numpy()
            threshold = spec.vol_multiplier * daily_vol * math.sqrt(horizon)
        classes = np.select([forward < -threshold, forward > threshold], [DOWN, UP], NEUTRAL)
    known = ~np.isnan(forward) & ~np.isnan(threshold)
    label = pd.arrays.IntegerArray(classes.astype(np.int8), ~known)
    return pd.DataFrame(
        {
            "date": dates,
            "forward_return": forward,
            "threshold": threshold,
            "label": label,
            "label_end": dates.shift(-horizon),
            "last_return": log_return,
            "last_band": threshold / math.sqrt(horizon),
        },
        index=bars.index,
    )


def _market_closes(market: pd.Series | None, dates: pd.Series) -> np.ndarray:
    """The benchmark's closes on the stock's sessions (NaN where the benchmark has none)."""
    if market is None:
        raise ValueError(
            "market-relative labels need the benchmark's closes; materialize "
            "nifty50_benchmark over the same dates, or set SENSEQUANT_LABEL_REFERENCE=absolute"
        )
    closes = pd.Series(market, dtype="float64")
    closes.index = pd.to_datetime(closes.index)
    if not closes.index.is_unique:
        raise ValueError("the benchmark's closes have duplicate dates")
    if (closes <= 0).any():
        bad = closes[closes <= 0].index[0].date()
        raise ValueError(f"the benchmark's close on {bad} is not positive")
    # cache=False: the cache only pays off for repeated strings, and costs ~0.2 ms here.
    return closes.reindex(pd.to_datetime(dates, cache=False)).to_numpy(dtype=np.float64)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
