"""Data-quality guardrails for daily OHLCV bars, shared by every market-data source.

Sources hand over rows exactly as received; ``validate_ohlcv`` is the single place that turns
them into typed bars. Anything that would silently poison downstream models (unreadable
values, impossible prices, duplicate or foreign rows) is a hard error; a small, well-defined
repair (negative volume) is applied and reported; anything plausible but suspicious (broken
OHLC ordering, missing sessions, split-like gaps) is kept and reported as a warning, so that a
human decides. An overnight jump no split, bonus or listed corporate action explains and no NSE
price band allows (a unit mistake: paise for rupees) is an error. Every finding's message names
the symbol, the date and the column, so that it can be acted on from a log line alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import NoReturn

import numpy as np
import pandas as pd

from sensequant_assets.calendar import MARKET_TIMEZONE
from sensequant_assets.quality.findings import (
    CORRECTION,
    ERROR,
    WARNING,
    DataQualityError,
    QualityReport,
    Reporter,
    as_date,
    fmt,
)
from sensequant_assets.quality.overnight import DEFAULT_MAX_OVERNIGHT_MOVE, check_overnight
from sensequant_assets.sources.base import OHLCV_COLUMNS

PRICE_COLUMNS = ("open", "high", "low", "close")
#: Columns of the validated frame, in order.
OUTPUT_COLUMNS = ("date", "symbol", *PRICE_COLUMNS, "volume")

# A full calendar date, optionally a time, and with a time optionally a UTC offset or "Z".
# Offsets are applied by hand rather than by pandas' ISO8601 parser, which is an order of
# magnitude slower on offsets and (2.x) lets a naive string inherit an earlier row's offset.
_TIMESTAMP = (
    r"^\s*(?P<wall>\d{4}-\d{2}-\d{2}(?:[T ](?P<time>\d{2}(?::\d{2}){0,2}(?:\.\d+)?))?)"
    r"(?(time)\s*(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)?)\s*$"
)


def parse_dates(values: pd.Series) -> np.ndarray:
    """Asia/Kolkata trading dates as naive midnight datetime64[ns]; NaT where unparsable.

    Accepts ISO dates, naive ``YYYY-MM-DD HH:MM:SS`` (taken as local market time) and ISO
    timestamps with an offset or ``Z`` (converted to Asia/Kolkata before taking the date,
    so a UTC evening bar lands on the next Indian day). Anything else, including
    day-first formats such as ``23/01/2024`` or a bare ``2024-01``, is rejected rather
    than guessed.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        local = values.dt.tz_convert(MARKET_TIMEZONE).dt.tz_localize(None)
        return local.dt.normalize().to_numpy(dtype="datetime64[ns]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.normalize().to_numpy(dtype="datetime64[ns]")
    text = values.astype(str)
    try:
        # Plain dates are the common case; an exact format parses them fastest and fails
        # at the first other value, which then takes the general path.
        return pd.to_datetime(text, format="%Y-%m-%d").to_numpy(dtype="datetime64[ns]")
    except ValueError:
        pass
    parts = text.str.extract(_TIMESTAMP)
    wall = pd.to_datetime(parts["wall"], format="ISO8601", errors="coerce")
    # A file holds few distinct offsets: convert each once, then map by code (the
    # trailing 0 is what code -1, no offset, picks).
    codes, offsets = pd.factorize(parts["offset"])
    minutes = np.array([*(_offset_minutes(o) for o in offsets), 0])[codes]
    aware = codes >= 0
    shift = pd.to_timedelta(minutes, unit="min")
    utc = (wall - shift).dt.tz_localize("UTC")
    local = wall.where(~aware, utc.dt.tz_convert(MARKET_TIMEZONE).dt.tz_localize(None))
    return local.dt.normalize().to_numpy(dtype="datetime64[ns]")


def _offset_minutes(offset: str) -> int:
    """Minutes east of UTC for ``Z``, ``+05:30``, ``+0530`` or ``+05``."""
    if offset.upper() == "Z":
        return 0
    digits = offset[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:] or 0)
    return -minutes if offset.startswith("-") else minutes


def _parse_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float values, missing mask, unparsable mask); surrounding spaces are tolerated."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        return numbers, np.isnan(numbers), np.zeros(len(numbers), dtype=bool)
    cells = values.to_numpy(dtype=object, na_value=np.nan)
    numbers = np.asarray(pd.to_numeric(cells, errors="coerce"), dtype="float64")
    missing = pd.isna(cells)
    # Empty or "nan" text is a missing value, not garbage; only NaN results need a look.
    for position in np.flatnonzero(np.isnan(numbers) & ~missing):
        missing[position] = str(cells[position]).strip().lower() in ("", "nan")
    return numbers, missing, np.isnan(numbers) & ~missing


def validate_ohlcv(
    raw: pd.DataFrame,
    symbol: str,
    sessions: Sequence[dt.date],
    previous_close: float | None = None,
    origin: str = "",
    ex_ratios: Mapping[dt.date, float] | None = None,
    max_overnight_move: float = DEFAULT_MAX_OVERNIGHT_MOVE,
) -> tuple[pd.DataFrame, QualityReport]:
    """Parse ``raw`` into typed daily bars for ``sessions`` and apply the guardrails.

    ``ex_ratios`` (ex-date → ratio, from the corporate-actions file) explains the overnight
    move of those days; ``max_overnight_move`` bounds every other one (see
    :data:`DEFAULT_MAX_OVERNIGHT_MOVE`).

    Rows dated outside ``[min(sessions), max(sessions)]`` are dropped unexamined (a source may
    return a whole file), except that every row's date must parse: an unreadable date could
    belong to the range. Hard rules are checked on all in-range rows, including rows on
    non-session days; warnings and corrections concern only the rows that are kept.

    Raises ``DataQualityError`` listing every error finding; otherwise returns the bars
    (``date, symbol, open, high, low, close, volume``, sorted by date, session days only)
    and the report of corrections and warnings.
    """
    report = Reporter(symbol, origin)
    session_days = np.array(sorted(set(sessions)), dtype="datetime64[D]").astype("datetime64[ns]")
    _check_columns(report, raw)
    dates = _checked_dates(report, raw)
    in_range = (
        (dates >= session_days[0]) & (dates <= session_days[-1])
        if len(session_days)
        else np.zeros(len(raw), dtype=bool)
    )
    rows = raw.iloc[np.flatnonzero(in_range)]
    days = dates[in_range]
    values = _checked_values(report, rows, days)
    _check_duplicates(report, days, values.get("close"))
    if "symbol" in rows.columns:
        _check_symbol(report, rows["symbol"], days, symbol)
    if report.findings:
        _raise(report, raw)

    days, values = _session_rows(report, days, values, session_days)
    _clip_negative_volume(report, days, values)
    _check_ohlc(report, days, values)
    check_overnight(report, days, values, previous_close, ex_ratios or {}, max_overnight_move)
    if any(f.severity == ERROR for f in report.findings):
        _raise(report, raw)
    for day in np.setdiff1d(session_days, days):
        report.add("calendar_gap", WARNING, as_date(day), "date", "no row for this NSE session")

    bars = pd.DataFrame(
        {
            "date": days,
            "symbol": np.full(len(days), symbol, dtype=object),
            **{column: values[column] for column in PRICE_COLUMNS},
            "volume": values["volume"].astype("int64"),
        }
    )
    return bars, QualityReport(symbol, len(raw), len(bars), report.findings)


def _check_columns(report: Reporter, raw: pd.DataFrame) -> None:
    """Every OHLCV column present; without a date column nothing else can be read."""
    received = ", ".join(map(str, raw.columns)) or "none"
    for column in (c for c in OHLCV_COLUMNS if c not in raw.columns):
        report.add(
            "missing_columns",
            ERROR,
            None,
            column,
            f"required column {column!r} is missing; columns received: {received}",
        )
    if "date" not in raw.columns:
        _raise(report, raw)


def _checked_dates(report: Reporter, raw: pd.DataFrame) -> np.ndarray:
    """Every row's date (NaT where unparsable, each reported: it could be in range)."""
    dates = parse_dates(raw["date"])
    for position in np.flatnonzero(np.isnat(dates)):
        report.add(
            "unparsable_date",
            ERROR,
            None,
            "date",
            f"data row {position + 1} has unparsable date {raw['date'].iloc[position]!r} "
            "(expected YYYY-MM-DD, optionally with a time and UTC offset)",
        )
    return dates


def _checked_values(
    report: Reporter, rows: pd.DataFrame, days: np.ndarray
) -> dict[str, np.ndarray]:
    """The in-range rows' prices and volume as floats, with unparsable numbers, missing or
    non-positive prices and volume problems reported."""
    values: dict[str, np.ndarray] = {}
    for column in (c for c in (*PRICE_COLUMNS, "volume") if c in rows.columns):
        numbers, missing, unparsable = _parse_numbers(rows[column])
        values[column] = numbers
        for position in np.flatnonzero(unparsable):
            report.add(
                "unparsable_number",
                ERROR,
                as_date(days[position]),
                column,
                f"value {rows[column].iloc[position]!r} is not a number",
            )
        if column == "volume":
            _check_volume(report, days, numbers, missing, unparsable)
            continue
        with np.errstate(invalid="ignore"):
            bad = ~unparsable & (missing | ~np.isfinite(numbers) | (numbers <= 0))
        for position in np.flatnonzero(bad):
            problem = (
                "is missing"
                if missing[position]
                else f"{fmt(numbers[position])} is not a positive number"
            )
            report.add("bad_price", ERROR, as_date(days[position]), column, f"price {problem}")
    return values


def _session_rows(
    report: Reporter,
    days: np.ndarray,
    values: dict[str, np.ndarray],
    session_days: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows on NSE sessions only (the others reported and dropped), in date order."""
    on_session = np.isin(days, session_days)
    for position in np.flatnonzero(~on_session):
        report.add(
            "non_trading_day",
            WARNING,
            as_date(days[position]),
            "date",
            f"row on a day that is not an NSE session (close {fmt(values['close'][position])}); "
            "dropped",
        )
    keep = np.flatnonzero(on_session)
    keep = keep[np.argsort(days[keep], kind="stable")]
    return days[keep], {column: numbers[keep] for column, numbers in values.items()}


def _clip_negative_volume(
    report: Reporter, days: np.ndarray, values: dict[str, np.ndarray]
) -> None:
    volume = values["volume"]
    for position in np.flatnonzero(volume < 0):
        report.add(
            "negative_volume",
            CORRECTION,
            as_date(days[position]),
            "volume",
            f"negative volume {fmt(volume[position])} clipped to 0",
        )
    values["volume"] = np.maximum(volume, 0)


def _raise(report: Reporter, raw: pd.DataFrame) -> NoReturn:
    raise DataQualityError(QualityReport(report.symbol, len(raw), 0, report.findings))


def _check_volume(
    report: Reporter,
    days: np.ndarray,
    volume: np.ndarray,
    missing: np.ndarray,
    unparsable: np.ndarray,
) -> None:
    """Volume must be present, finite and whole: it is stored as int64, never rounded."""
    with np.errstate(invalid="ignore"):
        fractional = ~missing & ~unparsable & (~np.isfinite(volume) | (volume % 1 != 0))
    for position in np.flatnonzero(missing | fractional):
        problem = (
            "is missing" if missing[position] else f"{fmt(volume[position])} is not a whole number"
        )
        report.add(
            "unparsable_number", ERROR, as_date(days[position]), "volume", f"volume {problem}"
        )


def _check_duplicates(report: Reporter, days: np.ndarray, close: np.ndarray | None) -> None:
    """One finding per repeated date: which row is right cannot be decided automatically."""
    unique, counts = np.unique(days, return_counts=True)
    for day in unique[counts > 1]:
        same = days == day
        closes = "n/a" if close is None else ", ".join(fmt(v) for v in close[same])
        report.add(
            "duplicate_date",
            ERROR,
            as_date(day),
            "date",
            f"{same.sum()} rows for the same date (closes: {closes})",
        )


def _check_symbol(report: Reporter, cells: pd.Series, days: np.ndarray, symbol: str) -> None:
    expected = symbol.strip().upper()
    wrong = [v for v in pd.unique(cells) if pd.isna(v) or str(v).strip().upper() != expected]
    if not wrong:
        return
    for position in np.flatnonzero(cells.isin(wrong).to_numpy() | cells.isna().to_numpy()):
        report.add(
            "symbol_mismatch",
            ERROR,
            as_date(days[position]),
            "symbol",
            f"row is for symbol {cells.iloc[position]!r}, expected {symbol!r}",
        )


def _check_ohlc(report: Reporter, days: np.ndarray, values: dict[str, np.ndarray]) -> None:
    """High must be the bar's top and low its bottom; kept as reported, but flagged."""
    top = np.maximum(values["open"], values["close"])
    bottom = np.minimum(values["open"], values["close"])
    high, low = values["high"], values["low"]
    for column, broken, bound, relation in (
        ("high", high < top, top, "below max(open, close)"),
        ("low", low > bottom, bottom, "above min(open, close)"),
    ):
        for position in np.flatnonzero(broken):
            report.add(
                "ohlc_inconsistent",
                WARNING,
                as_date(days[position]),
                column,
                f"{column} {fmt(values[column][position])} is {relation} {fmt(bound[position])}",
            )
