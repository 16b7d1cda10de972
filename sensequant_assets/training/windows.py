"""Rolling training windows, the unit the teacher models are trained and partitioned on.

A window is a span of calendar days for one symbol. Its label doubles as a partition key, so it
must be deterministic and parse back losslessly; the data a window needs reaches past both ends
(indicator warm-up before, label horizon after), and both reaches are counted in trading
sessions, not calendar days, because holidays and weekends would otherwise starve them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final, Literal

from sensequant_assets.calendar import TradingCalendar

SkipCode = Literal["insufficient_future_data", "too_few_samples", "validation_too_small"]
INSUFFICIENT_FUTURE_DATA: Final = "insufficient_future_data"
TOO_FEW_SAMPLES: Final = "too_few_samples"
VALIDATION_TOO_SMALL: Final = "validation_too_small"
SKIP_CODES: Final = frozenset({INSUFFICIENT_FUTURE_DATA, TOO_FEW_SAMPLES, VALIDATION_TOO_SMALL})

# Symbols never contain "_", so the first "_" ends the symbol and the rest is two ISO dates.
_LABEL_PATTERN = re.compile(
    r"(?P<symbol>[^_\s]+)_(?P<start>\d{4}-\d{2}-\d{2})_to_(?P<end>\d{4}-\d{2}-\d{2})"
)


def _require_date(value: object, name: str) -> None:
    # datetime is a date subclass, but it would format identically and then fail to round-trip.
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}")


@dataclass(frozen=True, order=True)
class TrainingWindow:
    """One symbol's training span ``[start, end]`` in calendar days, both ends inclusive."""

    symbol: str
    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol:
            raise ValueError(f"symbol must be a non-empty string, got {self.symbol!r}")
        if "_" in self.symbol or any(ch.isspace() for ch in self.symbol):
            raise ValueError(
                f"symbol {self.symbol!r} may not contain '_' or whitespace: the window label "
                "uses '_' as its separator"
            )
        _require_date(self.start, "start")
        _require_date(self.end, "end")
        if self.start > self.end:
            raise ValueError(f"window start {self.start} is after its end {self.end}")

    @property
    def label(self) -> str:
        """Stable key such as ``M&M_2024-01-01_to_2024-06-28``; usable as a partition key."""
        return f"{self.symbol}_{self.span_key}"

    @property
    def span_key(self) -> str:
        """``YYYY-MM-DD_to_YYYY-MM-DD``: the window without its symbol (a partition key)."""
        return span_key(self.start, self.end)

    @classmethod
    def from_span_key(cls, symbol: str, key: str) -> TrainingWindow:
        """The window of ``symbol`` over a :attr:`span_key`."""
        return cls.from_label(f"{symbol}_{key}")

    @classmethod
    def from_label(cls, label: str) -> TrainingWindow:
        """Parse a :attr:`label` back into its window."""
        match = _LABEL_PATTERN.fullmatch(label) if isinstance(label, str) else None
        if match is None:
            raise ValueError(
                f"malformed training window label {label!r}: expected "
                "'<SYMBOL>_<YYYY-MM-DD>_to_<YYYY-MM-DD>' with no '_' in the symbol"
            )
        try:
            start = dt.date.fromisoformat(match["start"])
            end = dt.date.fromisoformat(match["end"])
        except ValueError as exc:
            raise ValueError(f"malformed training window label {label!r}: {exc}") from None
        try:
            return cls(match["symbol"], start, end)
        except ValueError as exc:
            raise ValueError(f"malformed training window label {label!r}: {exc}") from None


def _require_int(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {kind}, got {value}")
    return value


def span_key(start: dt.date, end: dt.date) -> str:
    return f"{start:%Y-%m-%d}_to_{end:%Y-%m-%d}"


def window_spans(
    first_day: dt.date,
    last_day: dt.date,
    length_days: int = 180,
    step_days: int = 30,
) -> list[tuple[dt.date, dt.date]]:
    """(start, end) spans of ``length_days`` calendar days, every ``step_days``, ending by
    ``last_day``; the same for every symbol, so they can be one partition dimension.

    Calendar days (not sessions) keep window edges independent of holiday revisions, so a
    label computed today names the same window after a holiday file is updated.
    """
    _require_date(first_day, "first_day")
    _require_date(last_day, "last_day")
    _require_int(length_days, "length_days", minimum=1)
    _require_int(step_days, "step_days", minimum=1)
    if first_day > last_day:
        raise ValueError(f"first_day {first_day} is after last_day {last_day}")
    length = dt.timedelta(days=length_days - 1)
    step = dt.timedelta(days=step_days)
    spans: list[tuple[dt.date, dt.date]] = []
    start = first_day
    while start + length <= last_day:
        spans.append((start, start + length))
        start += step
    return spans


def rolling_windows(
    symbol: str,
    first_day: dt.date,
    last_day: dt.date,
    length_days: int = 180,
    step_days: int = 30,
) -> list[TrainingWindow]:
    """The symbol's windows over ``window_spans``."""
    spans = window_spans(first_day, last_day, length_days, step_days)
    return [TrainingWindow(symbol, start, end) for start, end in spans]


def _window_sessions(window: TrainingWindow, calendar: TradingCalendar) -> list[dt.date]:
    sessions = calendar.sessions(window.start, window.end)
    if not sessions:
        raise ValueError(f"training window {window.label} contains no trading sessions")
    return sessions


def window_data_range(
    window: TrainingWindow, calendar: TradingCalendar, warmup_sessions: int, horizon: int
) -> tuple[dt.date, dt.date]:
    """First and last OHLCV day the window needs, both inclusive.

    Features on the window's first session need ``warmup_sessions`` earlier sessions, and the
    label of its last session looks ``horizon`` sessions ahead.
    """
    _require_int(warmup_sessions, "warmup_sessions", minimum=0)
    _require_int(horizon, "horizon", minimum=0)
    sessions = _window_sessions(window, calendar)
    return (
        calendar.offset(sessions[0], -warmup_sessions),
        calendar.offset(sessions[-1], horizon),
    )


@dataclass(frozen=True)
class SkipReason:
    """Why a window was not trained; ``code`` is machine-readable, ``message`` is for people."""

    code: SkipCode
    message: str

    def __post_init__(self) -> None:
        if self.code not in SKIP_CODES:
            raise ValueError(
                f"unknown skip code {self.code!r}; expected one of {sorted(SKIP_CODES)}"
            )


class WindowSkipped(Exception):
    """Raised when a window cannot be trained honestly; carries the :class:`SkipReason`."""

    def __init__(self, reason: SkipReason):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason.message


def check_future_data(
    window: TrainingWindow, calendar: TradingCalendar, horizon: int, latest_data_day: dt.date
) -> SkipReason | None:
    """Skip a window whose last labels would look past the newest OHLCV day.

    Training on such a window would silently drop (or, worse, mislabel) its most recent samples.
    """
    _require_date(latest_data_day, "latest_data_day")
    _, needed = window_data_range(window, calendar, 0, horizon)
    if needed <= latest_data_day:
        return None
    return SkipReason(
        INSUFFICIENT_FUTURE_DATA,
        f"{window.label}: labels need OHLCV data up to {needed} ({horizon} sessions after the "
        f"window's last session), but the latest available day is {latest_data_day}",
    )
