import datetime as dt
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
