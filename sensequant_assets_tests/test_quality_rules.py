"""Each guardrail, driven end to end by a bad file: file -> FilesSource -> validate_ohlcv.

Sessions come from the real NSE calendar: 2024-01-22 (special holiday) and 2024-01-26
(Republic Day) are weekday holidays inside the window used throughout.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.quality import DataQualityError, Finding, QualityReport, validate_ohlcv
from sensequant_assets.quality.overnight import DEFAULT_MAX_OVERNIGHT_MOVE
from sensequant_assets.settings import Settings
from sensequant_assets.sources.files import FilesSource

SYMBOL = "RELIANCE"
SESSIONS = TradingCalendar().sessions(dt.date(2024, 1, 18), dt.date(2024, 1, 31))
HEADER = ("date", "open", "high", "low", "close", "volume")
EXPECTED_DTYPES = {
    "date": "datetime64[ns]",
    "symbol": "object",
    "open": "float64",
    "high": "float64",
    "low": "float64",
    "close": "float64",
    "volume": "int64",
}


def clean_rows() -> list[list[str]]:
    """One plausible bar per session: small moves, consistent OHLC, positive volume."""
    rows = []
    for i, day in enumerate(SESSIONS):
        close = 2500 + 10 * i
        rows.append([day.isoformat(), f"{close - 5}", f"{close + 20}", f"{close - 15}", f"{close}"])
        rows[-1].append(str(100_000 + i))
    return rows


def write_csv(
    directory: Path, rows: list[list[str]], header: tuple[str, ...] = HEADER, name: str = SYMBOL
) -> Path:
    path = directory / f"{name}.csv"
    path.write_text("\n".join(",".join(r) for r in [list(header), *rows]) + "\n")
    return path


def run(
    directory: Path, sessions: list[dt.date] = SESSIONS, previous_close: float | None = None
) -> tuple[pd.DataFrame, QualityReport]:
    raw = FilesSource(directory).fetch(SYMBOL, sessions[0], sessions[-1])
    return validate_ohlcv(raw, SYMBOL, sessions, previous_close, origin=f"{SYMBOL}.csv")


def errors_of(directory: Path, rule: str) -> list[Finding]:
    with pytest.raises(DataQualityError) as caught:
        run(directory)
    assert caught.value.findings == caught.value.report.errors
    return [f for f in caught.value.findings if f.rule == rule]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_names(finding: Finding, day: str | None, column: str, *values: str) -> None:
    """The message alone must be enough to find and fix the problem."""
    assert finding.symbol == SYMBOL
    assert finding.column == column
    assert finding.date == (dt.date.fromisoformat(day) if day else None)
    for part in (SYMBOL, column, *((day,) if day else ()), *values):
        assert part in finding.message, (part, finding.message)
    assert f"{SYMBOL}.csv" in finding.message


def test_sessions_skip_the_january_2024_holidays() -> None:
    assert dt.date(2024, 1, 22) not in SESSIONS
    assert dt.date(2024, 1, 26) not in SESSIONS
    assert len(SESSIONS) == 8


def test_clean_file_passes_with_typed_sorted_session_rows(tmp_path: Path) -> None:
    rows = clean_rows()
    outside = [["2023-12-29", "1", "1", "1", "1", "-5"], ["2024-02-01", "0", "0", "0", "0", "x"]]
    write_csv(tmp_path, [*reversed(rows), *outside])
    bars, report = run(tmp_path)
    assert report.findings == []
    assert report.summary() == {}
    assert (report.rows_received, report.rows_kept) == (10, 8)
    assert bars.dtypes.astype(str).to_dict() == EXPECTED_DTYPES
    assert list(bars["date"].dt.date) == SESSIONS
    assert (bars["date"] == bars["date"].dt.normalize()).all()
    assert bars["date"].dt.tz is None
    assert set(bars["symbol"]) == {SYMBOL}
    assert bars.loc[0, ["open", "high", "low", "close"]].tolist() == [
        2495.0,
        2520.0,
        2485.0,
        2500.0,
    ]
    assert bars["volume"].tolist() == [100_000 + i for i in range(8)]


def test_clean_parquet_with_native_types_passes(tmp_path: Path) -> None:
    frame = pd.DataFrame([r[1:] for r in clean_rows()], columns=HEADER[1:]).astype(float)
    frame.insert(0, "date", pd.to_datetime([r[0] for r in clean_rows()]))
    frame["volume"] = frame["volume"].astype("int64")
    frame.to_parquet(tmp_path / f"{SYMBOL}.parquet")
    bars, report = run(tmp_path)
    assert report.findings == []
    assert bars.dtypes.astype(str).to_dict() == EXPECTED_DTYPES
    assert bars["close"].tolist() == [2500.0 + 10 * i for i in range(8)]


# ---- hard errors -----------------------------------------------------------------------


def test_missing_columns(tmp_path: Path) -> None:
    write_csv(tmp_path, [r[:4] for r in clean_rows()], header=HEADER[:4])
    findings = errors_of(tmp_path, "missing_columns")
    assert [f.column for f in findings] == ["close", "volume"]
    assert all(f.severity == "error" for f in findings)
    assert_names(findings[0], None, "close")


def test_unparsable_date_is_checked_on_every_row(tmp_path: Path) -> None:
    rows = clean_rows()
    rows[2][0] = "23/01/2024"
    rows.append(["sometime in 2025", "1", "1", "1", "1", "1"])
    write_csv(tmp_path, rows)
    findings = errors_of(tmp_path, "unparsable_date")
    assert [f.severity for f in findings] == ["error", "error"]
    assert_names(findings[0], None, "date", "'23/01/2024'", "row 3")
    assert "'sometime in 2025'" in findings[1].message


def test_unparsable_number(tmp_path: Path) -> None:
    rows = clean_rows()
    rows[3][4] = '"2,530.5"'  # quoted: a thousands separator, not a field separator
    write_csv(tmp_path, rows)
    finding = only(errors_of(tmp_path, "unparsable_number"))
    assert finding.severity == "error"
    assert_names(finding, "2024-01-24", "close", "'2,530.5'")


@pytest.mark.parametrize(("cell", "problem"), [("", "missing"), ("12.5", "12.5")])
def test_missing_or_fractional_volume_is_unparsable(
    tmp_path: Path, cell: str, problem: str
) -> None:
    rows = clean_rows()
    rows[1][5] = cell
    write_csv(tmp_path, rows)
    finding = only(errors_of(tmp_path, "unparsable_number"))
    assert_names(finding, "2024-01-19", "volume", problem)


@pytest.mark.parametrize(
    ("column", "cell", "shown"),
    [("open", "0", "0"), ("low", "-3", "-3"), ("high", "", "missing"), ("close", "inf", "inf")],
)
def test_bad_price(tmp_path: Path, column: str, cell: str, shown: str) -> None:
    rows = clean_rows()
    rows[4][HEADER.index(column)] = cell
    write_csv(tmp_path, rows)
    finding = only(errors_of(tmp_path, "bad_price"))
    assert finding.severity == "error"
    assert_names(finding, "2024-01-25", column, shown)


def test_bad_price_in_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "date": [dt.date(2024, 1, 18), dt.date(2024, 1, 19)],
            "open": [100.0, np.nan],
            "high": [110.0, 111.0],
            "low": [90.0, 91.0],
            "close": [105.0, 106.0],
            "volume": [10, 20],
        }
    )
    frame.to_parquet(tmp_path / f"{SYMBOL}.parquet")
    finding = only(errors_of(tmp_path, "bad_price"))
    assert_names(finding, "2024-01-19", "open", "missing")


def test_duplicate_date(tmp_path: Path) -> None:
    rows = clean_rows()
    rows.insert(3, [*rows[2][:4], "2600", rows[2][5]])
    write_csv(tmp_path, rows)
    finding = only(errors_of(tmp_path, "duplicate_date"))
    assert finding.severity == "error"
    assert_names(finding, "2024-01-23", "date", "2 rows", "2520", "2600")


def test_duplicate_date_from_two_timestamp_spellings(tmp_path: Path) -> None:
    rows = clean_rows()
    rows[2][0] = "2024-01-22T19:00:00Z"  # 00:30 on 23 January in India
    rows.append(["2024-01-23 09:15:00", *rows[2][1:]])
    write_csv(tmp_path, rows)
    assert_names(only(errors_of(tmp_path, "duplicate_date")), "2024-01-23", "date")


def test_symbol_mismatch(tmp_path: Path) -> None:
    rows = [[*r, " reliance "] for r in clean_rows()]
    rows[5][6] = "TCS"
    write_csv(tmp_path, rows, header=(*HEADER, "Symbol"))
    finding = only(errors_of(tmp_path, "symbol_mismatch"))
    assert finding.severity == "error"
    assert_names(finding, "2024-01-29", "symbol", "'TCS'")


def test_error_lists_every_error_and_caps_the_message(tmp_path: Path) -> None:
    rows = clean_rows()
    for row in rows:
        row[1] = "-1"
    rows[0][5] = "lots"
    write_csv(tmp_path, rows)
    with pytest.raises(DataQualityError) as caught:
        run(tmp_path)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.report.summary() == {"unparsable_number": 1, "bad_price": 8}
    assert error.report.rows_kept == 0
    text = str(error)
    assert text.count("\n  - ") == 9
    assert "'lots'" in text

    write_csv(tmp_path, [[*r[:5], "x"] for r in clean_rows()] + [["nope", *rows[0][1:]]] * 4)
    with pytest.raises(DataQualityError) as caught:
        run(tmp_path)
    assert len(caught.value.findings) == 12
    assert str(caught.value).count("\n  - ") == 10
    assert "and 2 more" in str(caught.value)


def test_errors_outside_the_sessions_are_ignored(tmp_path: Path) -> None:
    rows = clean_rows()
    rows.append(["2024-02-01", "0", "-1", "abc", "", "-5"])
    rows.append(["2024-02-01", "0", "-1", "abc", "", "-5"])
    write_csv(tmp_path, rows)
    bars, report = run(tmp_path)
    assert report.findings == []
    assert len(bars) == 8


# ---- corrections ---------------------------------------------------------------------


def test_negative_volume_is_clipped_and_nothing_else_changes(tmp_path: Path) -> None:
    write_csv(tmp_path, clean_rows())
    clean, _ = run(tmp_path)
    rows = clean_rows()
    rows[6][5] = "-4200"
    write_csv(tmp_path, rows)
    bars, report = run(tmp_path)
    finding = only(report.of("negative_volume"))
    assert (finding.severity, report.corrections) == ("correction", [finding])
    assert_names(finding, "2024-01-30", "volume", "-4200", "0")
    assert bars.loc[6, "volume"] == 0
    expected = clean.copy()
    expected.loc[6, "volume"] = 0
    pd.testing.assert_frame_equal(bars, expected)


# ---- warnings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "cell", "bound"),
    [("high", "2529", "2530"), ("low", "2526", "2525")],
)
def test_ohlc_inconsistent_is_kept_and_flagged(
    tmp_path: Path, column: str, cell: str, bound: str
) -> None:
    rows = clean_rows()
    rows[3][HEADER.index(column)] = cell  # 2024-01-24: open 2525, close 2530
    write_csv(tmp_path, rows)
    bars, report = run(tmp_path)
    finding = only(report.findings)
    assert (finding.rule, finding.severity) == ("ohlc_inconsistent", "warning")
    assert_names(finding, "2024-01-24", column, cell, bound)
    assert bars.loc[3, column] == float(cell)


def test_calendar_gap(tmp_path: Path) -> None:
    rows = [r for r in clean_rows() if r[0] != "2024-01-24"]
    write_csv(tmp_path, rows)
    bars, report = run(tmp_path)
    finding = only(report.findings)
    assert (finding.rule, finding.severity) == ("calendar_gap", "warning")
    assert_names(finding, "2024-01-24", "date")
    assert len(bars) == 7


def test_non_trading_day_rows_are_dropped(tmp_path: Path) -> None:
    rows = clean_rows()
    rows += [["2024-01-22", "2600", "2610", "2590", "2605", "5"]]
    rows += [["2024-01-27", "2600", "2610", "2590", "2606", "5"]]
    write_csv(tmp_path, rows)
    bars, report = run(tmp_path)
    holiday, saturday = report.of("non_trading_day")
    assert report.summary() == {"non_trading_day": 2}
    assert holiday.severity == "warning"
    assert_names(holiday, "2024-01-22", "date", "2605")
    assert_names(saturday, "2024-01-27", "date", "2606")
    assert list(bars["date"].dt.date) == SESSIONS


def test_split_suspect_between_rows(tmp_path: Path) -> None:
    rows = clean_rows()
    for row in rows[5:]:  # from 2024-01-29, prices halve
        row[1:5] = [f"{float(v) / 2:g}" for v in row[1:5]]
    write_csv(tmp_path, rows)
    bars, report = run(tmp_path)
    finding = only(report.findings)
    assert (finding.rule, finding.severity) == ("split_suspect", "warning")
    assert_names(finding, "2024-01-29", "open", "1272.5", "2540", "corporate action")
    assert finding.corporate_action == "RELIANCE,2024-01-29,split,2"
    assert f"add the line {finding.corporate_action} to SENSEQUANT_CORPORATE" in finding.message
    assert bars.loc[5, "open"] == 1272.5


@pytest.mark.parametrize(
    ("previous_close", "flagged"), [(5000.0, True), (250.0, True), (2600.0, False), (None, False)]
)
def test_split_suspect_against_previous_close_on_a_one_day_update(
    tmp_path: Path, previous_close: float | None, flagged: bool
) -> None:
    write_csv(tmp_path, clean_rows())
    day = [dt.date(2024, 1, 18)]  # open 2495: 1/2 of 5000, 10x of 250, -4% of 2600
    bars, report = run(tmp_path, sessions=day, previous_close=previous_close)
    assert len(bars) == 1
    assert len(report.of("split_suspect")) == int(flagged)
    if flagged:
        assert_names(report.findings[0], "2024-01-18", "open", "2495", f"{previous_close:g}")


def scaled_from(rows: list[list[str]], first: int, factor: float) -> list[list[str]]:
    """``rows`` with the prices of rows ``first``.. (2024-01-29 for 5) multiplied by ``factor``."""
    for row in rows[first:]:
        row[1:5] = [f"{float(v) * factor:g}" for v in row[1:5]]
    return rows


def test_a_100x_jump_is_an_error_naming_the_prices(tmp_path: Path) -> None:
    """Paise for rupees from 2024-01-29: no split ratio explains x100."""
    write_csv(tmp_path, scaled_from(clean_rows(), 5, 100))
    opened, closed = errors_of(tmp_path, "price_jump")
    assert_names(opened, "2024-01-29", "open", "254500", "previous close 2540 on 2024-01-25")
    assert_names(closed, "2024-01-29", "close", "255000", "2540", "paise")
    assert "SENSEQUANT_MAX_OVERNIGHT_MOVE=1" in opened.message


def test_one_wrong_close_is_refused_on_its_day_and_the_next(tmp_path: Path) -> None:
    rows = clean_rows()
    rows[5][4] = "255000"  # the close alone, x100
    write_csv(tmp_path, rows)
    found = [(f.date.isoformat(), f.column) for f in errors_of(tmp_path, "price_jump")]
    assert found == [("2024-01-29", "close"), ("2024-01-30", "open"), ("2024-01-30", "close")]


def test_a_jump_against_the_stored_close_on_a_one_day_update(tmp_path: Path) -> None:
    write_csv(tmp_path, clean_rows())
    with pytest.raises(DataQualityError) as caught:
        run(tmp_path, sessions=[dt.date(2024, 1, 18)], previous_close=24.95)
    assert {f.column for f in caught.value.findings} == {"open", "close"}
    assert "previous close 24.95:" in caught.value.findings[0].message  # no stored date


def test_the_jump_bound_is_configurable_and_matches_the_setting(tmp_path: Path) -> None:
    assert Settings().max_overnight_move == DEFAULT_MAX_OVERNIGHT_MOVE
    write_csv(tmp_path, scaled_from(clean_rows(), 5, 0.55))  # a 45% fall: log -0.6
    raw = FilesSource(tmp_path).fetch(SYMBOL, SESSIONS[0], SESSIONS[-1])
    _, report = validate_ohlcv(raw, SYMBOL, SESSIONS)
    assert report.findings == []
    with pytest.raises(DataQualityError, match=r"SENSEQUANT_MAX_OVERNIGHT_MOVE=0\.35"):
        validate_ohlcv(raw, SYMBOL, SESSIONS, max_overnight_move=0.35)


@pytest.mark.parametrize(("factor", "line"), [(1 / 5, "split,5"), (10, "split,0.1")])
def test_a_split_sized_move_is_a_suspect_naming_its_line_not_an_error(
    tmp_path: Path, factor: float, line: str
) -> None:
    write_csv(tmp_path, scaled_from(clean_rows(), 5, factor))
    _, report = run(tmp_path)
    finding = only(report.findings)
    assert finding.rule == "split_suspect"
    assert finding.corporate_action == f"RELIANCE,2024-01-29,{line}"


def test_a_listed_corporate_action_explains_its_jump(tmp_path: Path) -> None:
    write_csv(tmp_path, scaled_from(clean_rows(), 5, 1 / 5))
    raw = FilesSource(tmp_path).fetch(SYMBOL, SESSIONS[0], SESSIONS[-1])
    bars, report = validate_ohlcv(raw, SYMBOL, SESSIONS, ex_ratios={dt.date(2024, 1, 29): 5})
    assert report.findings == []
    assert bars.loc[5, "open"] == 509  # stored as received, unadjusted
    _, wrong = validate_ohlcv(raw, SYMBOL, SESSIONS, ex_ratios={dt.date(2024, 1, 29): 10})
    finding = only(wrong.findings)  # x10 where /5 happened: still a factor 2 out
    assert finding.rule == "split_suspect" and finding.corporate_action is None
    assert "listed corporate action's ratio 10" in finding.message


# ---- dates, columns, empty results -----------------------------------------------------


def test_timezone_aware_timestamps_become_the_india_date(tmp_path: Path) -> None:
    rows = clean_rows()
    rows[0][0] = "2024-01-17T18:45:00Z"  # 00:15 on 18 January in India
    rows[1][0] = "2024-01-19T09:15:00+05:30"
    rows[2][0] = "2024-01-22T23:00:00-05:00"  # 09:30 on 23 January in India
    rows[3][0] = "2024-01-24 15:30:00"  # naive: already market time
    write_csv(tmp_path, rows, header=("Timestamp", *HEADER[1:]))
    bars, report = run(tmp_path)
    assert report.findings == []
    assert list(bars["date"].dt.date) == SESSIONS
    assert bars.dtypes.astype(str).to_dict() == EXPECTED_DTYPES


def test_timezone_aware_parquet_column_becomes_the_india_date(tmp_path: Path) -> None:
    frame = pd.DataFrame([r[1:] for r in clean_rows()[:2]], columns=HEADER[1:]).astype(float)
    frame.insert(0, "DateTime", pd.to_datetime(["2024-01-17 19:00", "2024-01-19 04:00"], utc=True))
    frame.to_parquet(tmp_path / f"{SYMBOL}.parquet")
    sessions = SESSIONS[:2]
    bars, report = run(tmp_path, sessions=sessions)
    assert report.findings == []
    assert list(bars["date"].dt.date) == sessions
    assert bars["date"].dt.tz is None


def test_column_names_are_case_insensitive(tmp_path: Path) -> None:
    write_csv(
        tmp_path, clean_rows(), header=(" DateTime", "OPEN", "High ", "low", "Close", "VOLUME")
    )
    bars, report = run(tmp_path)
    assert report.findings == []
    assert bars["close"].iloc[-1] == 2570.0


def test_no_sessions_gives_an_empty_typed_frame(tmp_path: Path) -> None:
    write_csv(tmp_path, clean_rows())
    raw = FilesSource(tmp_path).fetch(SYMBOL, SESSIONS[0], SESSIONS[-1])
    bars, report = validate_ohlcv(raw, SYMBOL, [])
    assert bars.empty
    assert bars.dtypes.astype(str).to_dict() == EXPECTED_DTYPES
    assert (report.rows_received, report.rows_kept, report.findings) == (8, 0, [])


def test_no_rows_in_range_gives_an_empty_frame_and_gaps(tmp_path: Path) -> None:
    write_csv(tmp_path, clean_rows())
    february = TradingCalendar().sessions(dt.date(2024, 2, 1), dt.date(2024, 2, 2))
    bars, report = run(tmp_path, sessions=february)
    assert bars.empty
    assert list(bars.columns) == list(EXPECTED_DTYPES)
    assert bars.dtypes.astype(str).to_dict() == EXPECTED_DTYPES
    assert [f.date for f in report.of("calendar_gap")] == february
    assert report.summary() == {"calendar_gap": 2}


def test_a_clean_year_of_one_symbol_keeps_every_session() -> None:
    sessions = TradingCalendar().sessions(dt.date(2023, 1, 1), dt.date(2023, 12, 31))
    raw = pd.DataFrame(
        {
            "date": [d.isoformat() for d in sessions],
            "open": "100",
            "high": "101",
            "low": "99",
            "close": "100.5",
            "volume": "5000",
        }
    )
    bars, report = validate_ohlcv(raw, SYMBOL, sessions)
    assert len(bars) == len(sessions) and report.findings == []
