"""Daily bars as the files source (`SENSEQUANT_DATA_SOURCE=files`) reads them: a CSV a symbol."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd


def write_csv(directory: Path, symbol: str, frame: pd.DataFrame) -> None:
    directory.mkdir(exist_ok=True)
    frame.to_csv(directory / f"{symbol}.csv", index=False)


def clean_bars(sessions: list[dt.date], start_price: float = 100.0) -> pd.DataFrame:
    closes = [start_price + i for i in range(len(sessions))]
    return pd.DataFrame(
        {
            "Date": [d.isoformat() for d in sessions],
            "Open": closes,
            "High": [c + 2 for c in closes],
            "Low": [c - 2 for c in closes],
            "Close": [c + 1 for c in closes],
            "Volume": [1000 + i for i in range(len(sessions))],
        }
    )
