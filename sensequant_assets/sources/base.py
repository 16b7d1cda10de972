"""The one interface every market-data source implements.

A source returns the rows *as received* (values may be strings, may be wrong); parsing and
the data-quality rules live in ``sensequant_assets.quality`` so that every source is held to
the same guardrails and the raw rows can be kept for audit before anything is corrected.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

import pandas as pd

OHLCV_COLUMNS = ("date", "open", "high", "low", "close", "volume")


class SourceError(RuntimeError):
    """A source could not deliver data; the message names the symbol and what to do."""


@runtime_checkable
class MarketDataSource(Protocol):
    name: str
    #: True when fetching costs API quota, so stored rows should be reused on re-runs.
    remote: bool

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Daily bars for ``symbol`` covering ``[start, end]`` (Asia/Kolkata dates).

        Returns a frame with at least the columns in ``OHLCV_COLUMNS`` exactly as the source
        delivered them (a source may also return rows outside the range; callers filter after
        parsing). ``symbol`` is an NSE symbol, or ``NIFTY50`` for the index.
        """
        ...
