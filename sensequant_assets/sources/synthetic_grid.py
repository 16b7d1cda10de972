"""Where the synthetic series live in time: the weekday grid from ``ORIGIN`` with the NSE
sessions placed on it, and the stress windows whose crashes the market factor replays.

Every series is drawn over the whole weekday grid (a holiday's return rolls into the next
session), so a longer request only appends values and the bars of a session never depend on
the requested range; prices are pinned at ``ANCHOR``.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from sensequant_assets.calendar import TradingCalendar

ORIGIN = dt.date(2005, 1, 3)
ANCHOR = dt.date(2023, 1, 2)


@dataclass(frozen=True)
class StressWindow:
    start: dt.date
    end: dt.date
    max_drawdown: float


@cache
def stress_windows() -> tuple[StressWindow, ...]:
    text = resources.files("sensequant_assets.reference").joinpath("stress_windows.csv")
    rows = csv.DictReader(text.read_text().splitlines())
    return tuple(
        StressWindow(
            dt.date.fromisoformat(r["start"]),
            dt.date.fromisoformat(r["end"]),
            float(r["nifty50_max_drawdown"]),
        )
        for r in rows
    )


@dataclass(frozen=True)
class Grid:
    """Weekdays from ORIGIN to a year end, and where the trading sessions sit among them."""

    horizon: dt.date
    weekdays: np.ndarray  # datetime64[D]
    session_pos: np.ndarray  # index into weekdays of each session
    session_of: np.ndarray  # for each weekday, the session its return rolls into
    sessions: np.ndarray  # datetime64[D]
    anchor: int  # session index of ANCHOR (or the first session after it)

    @classmethod
    def build(cls, horizon: dt.date, calendar: TradingCalendar) -> Grid:
        """Sessions are the weekdays outside ``calendar.holidays``, as in ``calendar.sessions``."""
        weekdays = pd.bdate_range(ORIGIN, horizon).to_numpy().astype("datetime64[D]")
        holidays = np.array(sorted(calendar.holidays), dtype="datetime64[D]")
        session_pos = np.flatnonzero(~np.isin(weekdays, holidays))
        session_of = np.searchsorted(session_pos, np.arange(len(weekdays)))
        sessions = weekdays[session_pos]
        anchor = int(np.searchsorted(sessions, np.datetime64(ANCHOR)))
        return cls(horizon, weekdays, session_pos, session_of, sessions, anchor)

    @property
    def size(self) -> int:
        return len(self.weekdays)

    def to_sessions(self, per_weekday: np.ndarray) -> np.ndarray:
        """Sum a per-weekday quantity into sessions (a holiday's move shows up the day after)."""
        summed = np.bincount(self.session_of, weights=per_weekday, minlength=len(self.sessions))
        return summed[: len(self.sessions)]

    def first_session_from(self, weekday_pos: np.ndarray) -> np.ndarray:
        """Session index of the first session on or after each weekday position."""
        return self.session_of[weekday_pos]
