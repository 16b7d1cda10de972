"""NSE trading days, the backbone of every partition.

Holidays come from ``pandas_market_calendars``' ``XNSE`` calendar. That library knows holidays
only up to a horizon (2026-12-25 in the pinned version) and silently treats later dates as
plain weekdays, so we compute the horizon from its own holiday list, warn whenever a request
crosses it, and let users supply their own holiday file for the dates beyond it.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

MARKET_TIMEZONE = "Asia/Kolkata"
logger = logging.getLogger(__name__)


class CalendarHorizonWarning(UserWarning):
    """A date beyond the holiday library's horizon was treated as a weekday trading day."""


class HolidayFileError(ValueError):
    pass


@lru_cache(maxsize=1)
def library_holidays() -> tuple[dt.date, ...]:
    """NSE holidays (weekdays only) known to the calendar library, up to its horizon."""
    import pandas_market_calendars as mcal

    raw = mcal.get_calendar("XNSE").holidays().holidays
    days = sorted(
        pd.Timestamp(d).date() for d in raw if np.datetime64(d) < np.datetime64("2200-01-01")
    )
    return tuple(d for d in days if d.weekday() < 5)


def load_holiday_file(path: Path) -> list[dt.date]:
    """Read extra holidays: a CSV with a ``date`` column, or one ISO date per line.

    Text after ``#`` is a comment, so users can note which holiday each date is.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise HolidayFileError(f"cannot read holiday file {path}: {exc}") from exc
    days: list[dt.date] = []
    for number, line in enumerate(lines, start=1):
        cell = line.split("#", 1)[0].split(",", 1)[0].strip()
        if not cell or (number == 1 and cell.lower() == "date"):
            continue
        try:
            days.append(dt.date.fromisoformat(cell))
        except ValueError:
            raise HolidayFileError(
                f"{path}:{number}: {cell!r} is not a date (expected YYYY-MM-DD)"
            ) from None
    return days


class TradingCalendar:
    """Trading sessions of the NSE cash market, in Asia/Kolkata dates."""

    def __init__(self, extra_holidays: Iterable[dt.date] = ()):
        known = library_holidays()
        self.horizon: dt.date = known[-1]
        self.extra_holidays = frozenset(extra_holidays)
        self._holidays = frozenset(known) | self.extra_holidays
        # (first, last, sessions): every session from first to last as a sorted datetime64[D]
        # array, built on first use and widened on demand. Lookups become binary searches
        # instead of generating and filtering a date range per call (training asks thousands
        # of times). One tuple, replaced whole, so concurrent readers see a consistent cache.
        self._cache: tuple[np.datetime64, np.datetime64, np.ndarray] | None = None

    @classmethod
    def from_file(cls, holiday_file: Path | None) -> TradingCalendar:
        return cls(load_holiday_file(holiday_file) if holiday_file else ())

    @property
    def holidays(self) -> frozenset[dt.date]:
        return self._holidays

    def is_trading_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def beyond_horizon(self, end: dt.date) -> bool:
        return end > self.horizon

    def horizon_note(self, end: dt.date) -> str | None:
        """A human sentence when ``end`` lies past the holiday horizon, else None."""
        if not self.beyond_horizon(end):
            return None
        extra = (
            f" plus {len(self.extra_holidays)} holiday(s) from your holiday file"
            if self.extra_holidays
            else "; set SENSEQUANT_HOLIDAY_FILE to add NSE holidays"
        )
        return (
            f"NSE holidays are known only up to {self.horizon}; days after it are treated as "
            f"weekday sessions{extra}"
        )

    def sessions(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Trading days in ``[start, end]``; warns once per call when crossing the horizon."""
        if end < start:
            return []
        self._warn_past_horizon(end)
        first, last = _day(start), _day(end)
        days = self._covering(first, last)
        return days[_position(days, first) : _position(days, last, after=True)].tolist()

    def offset(self, day: dt.date, count: int) -> dt.date:
        """The session ``count`` sessions after ``day`` (before it when negative); 0 is ``day``.

        ``day`` itself need not be a session. Warns, like :meth:`sessions`, when the answer
        lies past the horizon (or ``day`` does).
        """
        if count == 0:
            return day
        target = _day(day)
        # Weekends and holiday clusters make sessions sparser than days; widen until enough.
        reach = np.timedelta64(2 * abs(count) + 14, "D")
        while True:
            if count > 0:
                days = self._covering(target, target + reach)
                index = _position(days, target, after=True) + count - 1
            else:
                days = self._covering(target - reach, target)
                index = _position(days, target) + count
            if 0 <= index < len(days):
                found: dt.date = days[index].item()
                self._warn_past_horizon(max(target, days[index]).item())
                return found
            reach *= 2

    def previous_session(self, day: dt.date) -> dt.date:
        candidate = day - dt.timedelta(days=1)
        while not self.is_trading_day(candidate):
            candidate -= dt.timedelta(days=1)
        return candidate

    def partition_exclusions(self, start: dt.date) -> list[dt.datetime]:
        """Weekday holidays from ``start`` on, as datetimes for Dagster's partition exclusions."""
        return [dt.datetime.combine(d, dt.time()) for d in sorted(self._holidays) if d >= start]

    def _warn_past_horizon(self, end: dt.date) -> None:
        note = self.horizon_note(end)
        if note:
            warnings.warn(note, CalendarHorizonWarning, stacklevel=3)
            logger.warning(note)

    def _covering(self, first: np.datetime64, last: np.datetime64) -> np.ndarray:
        """The cached session array, first widened to cover ``[first, last]`` if needed.

        Widening reaches a decade past the request (a few thousand days), so a process
        rebuilds it a handful of times at most.
        """
        cache = self._cache
        if cache is not None and cache[0] <= first and last <= cache[1]:
            return cache[2]
        margin = np.timedelta64(3660, "D")
        lo, hi = first - margin, last + margin
        if cache is not None:
            lo, hi = min(lo, cache[0]), max(hi, cache[1])
        days = np.arange(lo, hi + np.timedelta64(1, "D"), dtype="datetime64[D]")
        holidays = np.array(sorted(self._holidays), dtype="datetime64[D]")
        sessions = days[np.is_busday(days, holidays=holidays)]
        self._cache = (lo, hi, sessions)
        return sessions


def _day(day: dt.date) -> np.datetime64:
    return np.datetime64(day, "D")


def _position(days: np.ndarray, day: np.datetime64, after: bool = False) -> int:
    """Index of the first session on or after ``day`` (strictly after it with ``after``)."""
    return int(np.searchsorted(days, day, side="right" if after else "left"))
