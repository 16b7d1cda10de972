import datetime as dt
import itertools
import pickle

import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.training import (
    INSUFFICIENT_FUTURE_DATA,
    SkipReason,
    TrainingWindow,
    WindowSkipped,
    check_future_data,
    rolling_windows,
    window_data_range,
)

D = dt.date


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar()


def test_label_is_deterministic_and_readable() -> None:
    window = TrainingWindow("M&M", D(2024, 1, 1), D(2024, 6, 28))
    assert window.label == "M&M_2024-01-01_to_2024-06-28"
    assert TrainingWindow("M&M", D(2024, 1, 1), D(2024, 6, 28)).label == window.label


def test_labels_are_unique_across_symbols_and_windows() -> None:
    symbols = ["M&M", "BAJAJ-AUTO", "INFY", "M", "MM", "BAJAJ"]
    windows = [
        w for s in symbols for w in rolling_windows(s, D(2023, 1, 1), D(2024, 12, 31), 180, 30)
    ]
    labels = [w.label for w in windows]
    assert len(set(labels)) == len(labels) == len(set(windows))


@pytest.mark.parametrize("symbol", ["M&M", "BAJAJ-AUTO", "RELIANCE", "L&TFH", "NAM-INDIA"])
def test_label_round_trips(symbol: str) -> None:
    window = TrainingWindow(symbol, D(2024, 1, 29), D(2024, 7, 26))
    parsed = TrainingWindow.from_label(window.label)
    assert parsed == window
    assert type(parsed.start) is dt.date and type(parsed.end) is dt.date


@pytest.mark.parametrize(
    "label",
    [
        "",
        "M&M",
        "M&M_2024-01-01",
        "M&M_2024-01-01_2024-06-28",
        "_2024-01-01_to_2024-06-28",
        "A_B_2024-01-01_to_2024-06-28",
        "M&M_2024-1-1_to_2024-06-28",
        "M&M_20240101_to_20240628",
        "M&M_2024-02-30_to_2024-06-28",
        "M&M_2024-06-28_to_2024-01-01",
        "M&M_2024-01-01_to_2024-06-28 ",
        "M M_2024-01-01_to_2024-06-28",
    ],
)
def test_malformed_labels_are_rejected(label: str) -> None:
    with pytest.raises(ValueError, match="malformed training window label"):
        TrainingWindow.from_label(label)


def test_window_rejects_symbols_and_dates_that_would_not_round_trip() -> None:
    with pytest.raises(ValueError, match="may not contain '_'"):
        TrainingWindow("BAD_SYM", D(2024, 1, 1), D(2024, 1, 31))
    with pytest.raises(TypeError, match=r"start must be a datetime\.date"):
        TrainingWindow("INFY", dt.datetime(2024, 1, 1), D(2024, 1, 31))
    with pytest.raises(ValueError, match="after its end"):
        TrainingWindow("INFY", D(2024, 2, 1), D(2024, 1, 31))


def test_windows_sort_by_symbol_then_dates() -> None:
    a = TrainingWindow("INFY", D(2024, 2, 1), D(2024, 3, 1))
    b = TrainingWindow("INFY", D(2024, 1, 1), D(2024, 3, 1))
    c = TrainingWindow("BAJAJ-AUTO", D(2024, 5, 1), D(2024, 6, 1))
    assert sorted([a, b, c]) == [c, b, a]


def test_rolling_windows_for_a_leap_year() -> None:
    windows = rolling_windows("INFY", D(2024, 1, 1), D(2024, 12, 31))
    # 366 days: starts at day offsets 0, 30, ..., 180; offset 210 would end past the year.
    assert len(windows) == 7
    assert windows[0] == TrainingWindow("INFY", D(2024, 1, 1), D(2024, 6, 28))
    assert windows[-1] == TrainingWindow("INFY", D(2024, 6, 29), D(2024, 12, 25))
    assert all((w.end - w.start).days == 179 for w in windows)
    assert all((b.start - a.start).days == 30 for a, b in itertools.pairwise(windows))


def test_rolling_windows_edge_inclusive_end() -> None:
    assert len(rolling_windows("INFY", D(2024, 1, 1), D(2024, 6, 28))) == 1
    assert rolling_windows("INFY", D(2024, 1, 1), D(2024, 6, 27)) == []
    assert len(rolling_windows("INFY", D(2024, 1, 1), D(2024, 7, 28))) == 2
    assert len(rolling_windows("INFY", D(2024, 1, 1), D(2024, 7, 27))) == 1
    assert rolling_windows("INFY", D(2024, 1, 1), D(2024, 1, 1), 1, 1) == [
        TrainingWindow("INFY", D(2024, 1, 1), D(2024, 1, 1))
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"length_days": 0}, ValueError, "length_days must be positive"),
        ({"step_days": -5}, ValueError, "step_days must be positive"),
        ({"length_days": 1.5}, TypeError, "length_days must be an int"),
        ({"step_days": True}, TypeError, "step_days must be an int"),
        ({"first_day": D(2025, 1, 1)}, ValueError, "first_day 2025-01-01 is after last_day"),
        ({"last_day": "2024-12-31"}, TypeError, "last_day must be a datetime.date"),
    ],
)
def test_rolling_windows_validates_arguments(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    args: dict[str, object] = {"first_day": D(2024, 1, 1), "last_day": D(2024, 12, 31)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        rolling_windows("INFY", **args)  # type: ignore[arg-type]


def test_data_range_warmup_skips_holiday_and_weekend(calendar: TradingCalendar) -> None:
    # 2024-01-27 (Sat) and 2024-01-28 (Sun) precede the window; 2024-01-26 is Republic Day.
    window = TrainingWindow("M&M", D(2024, 1, 27), D(2024, 2, 9))
    start, end = window_data_range(window, calendar, warmup_sessions=2, horizon=0)
    assert start == D(2024, 1, 24)  # 2 sessions before Mon 2024-01-29: Thu 25th, Wed 24th
    assert end == D(2024, 2, 9)


def test_data_range_horizon_skips_holiday_and_weekend(calendar: TradingCalendar) -> None:
    # The window ends on Wed 2024-01-24; the next sessions are Thu 25th then Mon 29th.
    window = TrainingWindow("BAJAJ-AUTO", D(2024, 1, 1), D(2024, 1, 24))
    assert window_data_range(window, calendar, 0, 2) == (D(2024, 1, 1), D(2024, 1, 29))
    assert window_data_range(window, calendar, 0, 3) == (D(2024, 1, 1), D(2024, 1, 30))


def test_data_range_window_ending_on_a_weekend(calendar: TradingCalendar) -> None:
    # Last session in the window is Thu 2024-01-25 (Fri is a holiday, then the weekend).
    window = TrainingWindow("INFY", D(2024, 1, 15), D(2024, 1, 28))
    start, end = window_data_range(window, calendar, warmup_sessions=1, horizon=1)
    assert start == D(2024, 1, 12)  # Friday before the Monday window start
    assert end == D(2024, 1, 29)
    sessions = calendar.sessions(start, end)
    assert sessions[0] == start and sessions[-1] == end


def test_data_range_long_warmup_counts_sessions(calendar: TradingCalendar) -> None:
    window = TrainingWindow("INFY", D(2024, 3, 1), D(2024, 8, 27))
    start, end = window_data_range(window, calendar, warmup_sessions=60, horizon=5)
    first = calendar.sessions(window.start, window.end)[0]
    assert len(calendar.sessions(start, first)) == 61
    last = calendar.sessions(window.start, window.end)[-1]
    assert len(calendar.sessions(last, end)) == 6


def test_data_range_rejects_bad_arguments(calendar: TradingCalendar) -> None:
    window = TrainingWindow("INFY", D(2024, 1, 1), D(2024, 1, 31))
    with pytest.raises(ValueError, match="warmup_sessions must be non-negative"):
        window_data_range(window, calendar, -1, 5)
    with pytest.raises(ValueError, match="horizon must be non-negative"):
        window_data_range(window, calendar, 5, -1)
    holiday_weekend = TrainingWindow("INFY", D(2024, 1, 26), D(2024, 1, 28))
    with pytest.raises(ValueError, match="no trading sessions"):
        window_data_range(holiday_weekend, calendar, 0, 0)


def test_future_data_exact_edge(calendar: TradingCalendar) -> None:
    window = TrainingWindow("M&M", D(2024, 1, 1), D(2024, 1, 24))
    # Two sessions after Wed 24th is Mon 29th (Fri 26th is a holiday).
    assert check_future_data(window, calendar, 2, D(2024, 1, 29)) is None
    assert check_future_data(window, calendar, 2, D(2024, 2, 5)) is None
    for latest in (D(2024, 1, 28), D(2024, 1, 25)):
        reason = check_future_data(window, calendar, 2, latest)
        assert reason is not None
        assert reason.code == INSUFFICIENT_FUTURE_DATA
        assert window.label in reason.message
        assert "2024-01-29" in reason.message and str(latest) in reason.message


def test_window_skipped_carries_reason() -> None:
    reason = SkipReason("too_few_samples", "only 3 labelled samples")
    error = WindowSkipped(reason)
    assert error.reason is reason
    assert str(error) == "only 3 labelled samples"
    restored = pickle.loads(pickle.dumps(error))
    assert restored.reason == reason
    with pytest.raises(ValueError, match="unknown skip code"):
        SkipReason("bored", "no reason")  # type: ignore[arg-type]


def test_window_spans_are_shared_by_all_symbols() -> None:
    from sensequant_assets.training import window_spans

    spans = window_spans(dt.date(2024, 1, 1), dt.date(2024, 12, 31), 180, 30)
    assert spans[0] == (dt.date(2024, 1, 1), dt.date(2024, 6, 28))
    windows = rolling_windows("TCS", dt.date(2024, 1, 1), dt.date(2024, 12, 31), 180, 30)
    assert [(w.start, w.end) for w in windows] == spans
