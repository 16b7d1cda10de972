import datetime as dt
import itertools
import random
import warnings
from pathlib import Path

import pytest

from sensequant_assets.calendar import (
    CalendarHorizonWarning,
    HolidayFileError,
    TradingCalendar,
    load_holiday_file,
)


def test_holiday_and_weekend_are_not_sessions() -> None:
    calendar = TradingCalendar()
    assert not calendar.is_trading_day(dt.date(2024, 1, 26))  # Republic Day, a Friday
    assert not calendar.is_trading_day(dt.date(2024, 1, 27))  # Saturday
    assert calendar.is_trading_day(dt.date(2024, 1, 25))
    sessions = calendar.sessions(dt.date(2024, 1, 24), dt.date(2024, 1, 29))
    assert sessions == [dt.date(2024, 1, 24), dt.date(2024, 1, 25), dt.date(2024, 1, 29)]
    assert calendar.previous_session(dt.date(2024, 1, 29)) == dt.date(2024, 1, 25)


def test_horizon_comes_from_the_library() -> None:
    assert TradingCalendar().horizon == dt.date(2026, 12, 25)


def test_dates_in_2027_fall_back_to_weekdays_with_a_warning() -> None:
    calendar = TradingCalendar()
    with pytest.warns(CalendarHorizonWarning, match="known only up to 2026-12-25"):
        sessions = calendar.sessions(dt.date(2027, 1, 25), dt.date(2027, 1, 29))
    assert len(sessions) == 5  # 2027-01-26 (Republic Day) unknown to the library
    assert calendar.horizon_note(dt.date(2026, 6, 1)) is None


def test_user_holiday_file_extends_past_the_horizon(tmp_path: Path) -> None:
    path = tmp_path / "holidays.csv"
    path.write_text("date\n2027-01-26  # Republic Day\n")
    calendar = TradingCalendar.from_file(path)
    with pytest.warns(CalendarHorizonWarning, match="1 holiday"):
        sessions = calendar.sessions(dt.date(2027, 1, 25), dt.date(2027, 1, 29))
    assert dt.date(2027, 1, 26) not in sessions and len(sessions) == 4


def test_bad_holiday_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "holidays.txt"
    path.write_text("2027-01-26\n26/01/2027\n")
    with pytest.raises(HolidayFileError, match=r"holidays.txt:2: '26/01/2027'"):
        load_holiday_file(path)


def _weekday_sessions(calendar: TradingCalendar, start: dt.date, end: dt.date) -> list[dt.date]:
    """The definition, day by day: weekdays that are not holidays."""
    days = (start + dt.timedelta(days=i) for i in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5 and d not in calendar.holidays]


def test_sessions_follow_the_definition_far_from_the_first_lookup() -> None:
    calendar = TradingCalendar([dt.date(2024, 3, 2), dt.date(2025, 5, 5), dt.date(2027, 1, 26)])
    rng = random.Random(4)
    spans = [
        (dt.date(2024, 1, 24), dt.date(2024, 1, 29)),
        (dt.date(2024, 1, 29), dt.date(2024, 1, 1)),
    ]
    # Start mid-range, then reach far before and after it so the cached sessions are widened.
    spans += [
        (dt.date(1990, 1, 1), dt.date(1990, 2, 1)),
        (dt.date(2060, 6, 1), dt.date(2060, 7, 1)),
    ]
    for _ in range(200):
        start = dt.date(1995, 1, 1) + dt.timedelta(days=rng.randrange(365 * 40))
        spans.append((start, start + dt.timedelta(days=rng.randrange(-3, 500))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalendarHorizonWarning)
        for start, end in spans:
            sessions = calendar.sessions(start, end)
            assert sessions == _weekday_sessions(calendar, start, end), (start, end)
            assert all(type(d) is dt.date for d in sessions)


def test_offset_counts_sessions_from_any_day() -> None:
    calendar = TradingCalendar()
    sessions = calendar.sessions(dt.date(2023, 1, 1), dt.date(2025, 12, 31))
    days = [dt.date(2024, 1, 26), dt.date(2024, 1, 27), dt.date(2024, 1, 29), dt.date(2024, 6, 3)]
    for day, count in itertools.product(days, (-250, -61, -2, -1, 0, 1, 2, 7, 250)):
        after = [d for d in sessions if d > day]
        before = [d for d in sessions if d < day]
        expected = day if count == 0 else after[count - 1] if count > 0 else before[count]
        assert calendar.offset(day, count) == expected, (day, count)
    far = calendar.sessions(dt.date(2024, 1, 2), dt.date(2026, 12, 25))[699]
    assert calendar.offset(dt.date(2024, 1, 1), 700) == far
    with pytest.warns(CalendarHorizonWarning):
        far = calendar.sessions(dt.date(2024, 1, 2), dt.date(2050, 1, 1))[4999]
    with pytest.warns(CalendarHorizonWarning):
        assert calendar.offset(dt.date(2024, 1, 1), 5000) == far


def test_offset_warns_when_the_answer_is_past_the_horizon() -> None:
    calendar = TradingCalendar()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalendarHorizonWarning)
        assert calendar.offset(dt.date(2026, 12, 21), 2) == dt.date(2026, 12, 23)
    with pytest.warns(CalendarHorizonWarning, match="known only up to 2026-12-25"):
        assert calendar.offset(dt.date(2026, 12, 24), 2) == dt.date(2026, 12, 29)
