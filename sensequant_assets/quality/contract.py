"""The stored daily bar's contract: its columns, their dtypes, and what every stored row meets.

``validate_ohlcv`` makes the bars and the ingest adds their ``source``; this module states,
from the same column lists, what a frame handed to the warehouse must look like, so the
Dagster type that checks each ``ohlcv_daily`` output (``defs/types.py``) and the column schema
Dagit shows are derived here rather than written out again.

High ≥ low is deliberately not part of it: a bar whose high is below its low (or its open or
close) is kept and reported at WARN by the ``ohlc_consistent`` guardrail, for a person to
decide, and a contract that refused it would fail the run instead.
"""

from __future__ import annotations

from sensequant_assets.quality.rules import PRICE_COLUMNS
from sensequant_assets.sources.ingest import BAR_COLUMNS

DATE, SYMBOL, VOLUME = "date", "symbol", "volume"


def _dtype(column: str) -> str:
    if column == DATE:
        return "datetime64[ns]"  # a naive trading date in market time (never tz-aware)
    if column in PRICE_COLUMNS:
        return "float64"
    if column == VOLUME:
        return "int64"
    return "object"  # symbol, source: text


BAR_DTYPES: dict[str, str] = {column: _dtype(column) for column in BAR_COLUMNS}
"""Every stored column, in storage order, with its pandas dtype."""
POSITIVE_COLUMNS: tuple[str, ...] = PRICE_COLUMNS
"""Prices: strictly positive (``bad_price`` refuses anything else)."""
NON_NEGATIVE_COLUMNS: tuple[str, ...] = (VOLUME,)
"""Volume: at least 0 (``negative_volume`` clips below it)."""
NOT_NULL_COLUMNS: tuple[str, ...] = (DATE, SYMBOL)
"""A bar is named by its symbol and trading date; neither may be missing."""
KEY_COLUMNS: tuple[str, ...] = (SYMBOL, DATE)
"""One row per symbol and trading date (``duplicate_date`` refuses a second)."""
