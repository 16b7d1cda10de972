"""What a candidate's bars looked like: the WARN-level findings over its range, per symbol.

Ingestion reports its findings to Dagster run by run, and none of them stays with a candidate.
This re-runs the same rules (:func:`validate_ohlcv`) over the stored, unadjusted bars of the
candidate's symbols and range, so the summary describes exactly what the candidate trained and
was judged on, however many runs stored it: calendar gaps, OHLC inconsistencies and suspected
splits. The hard rules were enforced when the bars were stored (the jump bound is lifted here:
a stored bar passed it once, and a warning must not turn into a refusal).

Suspected splits are looked for without the corporate-actions file, then with it: a suspect is
*resolved* when the file lists its date with the ratio the move implies; a listed action the
prices contradict is an unresolved suspect too. Corrections (negative volumes clipped to 0) leave
no trace in stored bars, so the caller passes the archived raw rows that show them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sensequant_assets.quality.corporate_actions import CorporateActions
from sensequant_assets.quality.findings import DataQualityError, Finding
from sensequant_assets.quality.overnight import ACTIONS_VARIABLE, SPLIT_TOLERANCE
from sensequant_assets.quality.rules import OUTPUT_COLUMNS, validate_ohlcv
from sensequant_assets.sources.ingest import format_sessions

#: Dates listed per finding kind; the count says how many there are in all.
MAX_DATES = 5
_MAX_SPANS_NAMED = 3


@dataclass(frozen=True)
class WindowSpan:
    """A teacher window and the days its data reaches (warm-up and label horizon included):
    a defect on any of those days shaped that teacher's features or labels."""

    label: str
    symbol: str
    first: dt.date
    last: dt.date

    @property
    def span(self) -> str:
        """The label's span in words (``2024-03-13 to 2024-09-08``)."""
        return self.label.removeprefix(f"{self.symbol}_").replace("_to_", " to ")


def summarise_quality(
    bars: pd.DataFrame,
    symbols: Sequence[str],
    sessions: Sequence[dt.date],
    actions: CorporateActions | None = None,
    previous_closes: Mapping[str, float | None] | None = None,
    windows: Sequence[WindowSpan] = (),
    negative_volumes: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The per-symbol findings, the unresolved splits and the totals, JSON-able.

    ``bars``: stored rows (``date, symbol, open, high, low, close, volume``) of ``symbols``
    over ``sessions`` (the NSE sessions of the range); ``previous_closes``: each symbol's stored
    close before the range, which a split on its first day is judged against;
    ``negative_volumes``: archived raw rows (``date, symbol, volume``) with a negative volume, of
    which those stored as volume 0 are the corrections made.
    """
    actions = actions or CorporateActions()
    previous_closes = previous_closes or {}
    raw_negative = _empty_negatives() if negative_volumes is None else negative_volumes
    by_symbol = dict(iter(bars.groupby("symbol", sort=False))) if not bars.empty else {}
    nothing = pd.DataFrame(columns=list(OUTPUT_COLUMNS))
    report: dict[str, dict[str, Any]] = {}
    for symbol in symbols:
        rows = by_symbol.get(symbol, nothing)
        report[symbol] = _symbol_summary(
            rows,
            symbol,
            sessions,
            actions,
            previous_closes.get(symbol),
            [w for w in windows if w.symbol == symbol],
            raw_negative[raw_negative["symbol"] == symbol],
        )
    unresolved = [
        {
            "symbol": symbol,
            "date": split["date"],
            "ratio": split["ratio"],
            "corporate_action": split["corporate_action"],
        }
        for symbol, entry in report.items()
        for split in entry["splits"]
        if not split["resolved"]
    ]
    return {
        "symbols": report,
        "unresolved_splits": unresolved,
        "totals": _totals(report, len(sessions), len(unresolved)),
    }


def _empty_negatives() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.Series(dtype="datetime64[ns]"),
            "symbol": pd.Series(dtype=object),
            "volume": pd.Series(dtype="float64"),
        }
    )


def _symbol_summary(
    rows: pd.DataFrame,
    symbol: str,
    sessions: Sequence[dt.date],
    actions: CorporateActions,
    previous_close: float | None,
    windows: Sequence[WindowSpan],
    raw_negative: pd.DataFrame,
) -> dict[str, Any]:
    listed = {d: r for d, r in actions.ratios(symbol).items() if _within(d, sessions)}
    entry: dict[str, Any] = {
        "findings": [],
        "calendar_gaps": _dated([], windows),
        "ohlc_inconsistencies": _dated([], windows),
        "corrections": _dated([], windows),
        "splits": [],
        "corporate_actions_applied": [
            {"date": d.isoformat(), "ratio": r} for d, r in sorted(listed.items())
        ],
        "errors": [],
    }
    try:
        _, raw = validate_ohlcv(rows, symbol, sessions, previous_close, max_overnight_move=math.inf)
        _, adjusted = validate_ohlcv(
            rows, symbol, sessions, previous_close, ex_ratios=listed, max_overnight_move=math.inf
        )
    except DataQualityError as exc:
        entry["errors"] = [f.message for f in exc.report.errors]
        entry["findings"] = [f"stored bars break a hard rule: {m}" for m in entry["errors"]]
        return entry
    gaps = sorted({f.date for f in raw.of("calendar_gap") if f.date})
    broken = sorted({f.date for f in raw.of("ohlc_inconsistent") if f.date})
    corrected = _corrections(rows, raw_negative)
    entry["calendar_gaps"] = _dated(gaps, windows)
    entry["ohlc_inconsistencies"] = _dated(broken, windows)
    entry["corrections"] = _dated(corrected, windows)
    entry["splits"] = _splits(
        raw.of("split_suspect"), adjusted.of("split_suspect"), listed, windows
    )
    words = entry["findings"]
    if gaps:
        words.append(
            f"{len(gaps)} NSE session(s) with no bar: {format_sessions(gaps, MAX_DATES)}"
            f"{_in_windows(gaps, windows)}"
        )
    if broken:
        words.append(
            f"high or low inconsistent with open and close on {len(broken)} session(s), kept as "
            f"reported: {format_sessions(broken, MAX_DATES)}{_in_windows(broken, windows)}"
        )
    if corrected:
        words.append(
            f"negative volume clipped to 0 on {len(corrected)} session(s): "
            f"{format_sessions(corrected, MAX_DATES)}{_in_windows(corrected, windows)}"
        )
    words.extend(split["words"] for split in entry["splits"])
    return entry


def _within(day: dt.date, sessions: Sequence[dt.date]) -> bool:
    return bool(sessions) and sessions[0] <= day <= sessions[-1]


def _corrections(rows: pd.DataFrame, raw_negative: pd.DataFrame) -> list[dt.date]:
    """Days whose archived raw volume was negative and whose stored volume is the clipped 0: a
    raw row from a refused batch, or replaced since, corrected nothing that was kept."""
    if raw_negative.empty or rows.empty:
        return []
    zero = set(pd.to_datetime(rows.loc[rows["volume"] == 0, "date"]).dt.date)
    return sorted(zero & set(pd.to_datetime(raw_negative["date"]).dt.date))


def _windows_of(days: Sequence[dt.date], windows: Sequence[WindowSpan]) -> list[WindowSpan]:
    return [w for w in windows if any(w.first <= d <= w.last for d in days)]


def _dated(days: Sequence[dt.date], windows: Sequence[WindowSpan]) -> dict[str, Any]:
    return {
        "count": len(days),
        "dates": [d.isoformat() for d in days[:MAX_DATES]],
        "windows": [w.label for w in _windows_of(days, windows)],
    }


def _in_windows(days: Sequence[dt.date], windows: Sequence[WindowSpan]) -> str:
    """``; in teacher window(s) A, B`` (or their count and extremes when many), for the words;
    nothing when no windows are known."""
    if not windows:
        return ""
    hit = _windows_of(days, windows)
    if not hit:
        return "; outside every teacher window's data"
    if len(hit) <= _MAX_SPANS_NAMED:
        return "; in teacher window(s) " + ", ".join(w.span for w in hit)
    return f"; in {len(hit)} teacher windows (the first {hit[0].span}, the last {hit[-1].span})"


def _splits(
    raw: Sequence[Finding],
    adjusted: Sequence[Finding],
    listed: Mapping[dt.date, float],
    windows: Sequence[WindowSpan],
) -> list[dict[str, Any]]:
    """Every suspect of the unadjusted bars, and every listed action the prices contradict."""
    splits = []
    for finding in raw:
        assert finding.date is not None and finding.corporate_action is not None
        day, line = finding.date, finding.corporate_action
        ratio = float(line.rsplit(",", 1)[1])
        given = listed.get(day)
        resolved = given is not None and abs(given / ratio - 1) <= SPLIT_TOLERANCE
        if resolved:
            words = f"split on {day} (ratio {ratio:g}) back-adjusted by {ACTIONS_VARIABLE}"
        elif given is not None:
            words = (
                f"suspected unadjusted split on {day}: the move implies ratio {ratio:g}, but "
                f"{ACTIONS_VARIABLE} lists {given:g}; training read mis-adjusted prices"
            )
        else:
            words = (
                f"suspected unadjusted split on {day} (ratio {ratio:g}), not in "
                f"{ACTIONS_VARIABLE}: training read the unadjusted prices; if the exchange's "
                f"filings confirm it, add the line {line}"
            )
        splits.append(_split(day, ratio, resolved, None if resolved else line, words, windows))
    suspected = {s["date"] for s in splits}
    for finding in adjusted:
        day = finding.date
        if day is None or day.isoformat() in suspected or day not in listed:
            continue
        words = (
            f"{ACTIONS_VARIABLE} lists ratio {listed[day]:g} on {day}, but the prices show no such "
            "move: the line is wrong or the data already adjusted, and training read prices "
            "adjusted by it"
        )
        splits.append(_split(day, listed[day], False, None, words, windows))
    return sorted(splits, key=lambda s: s["date"])


def _split(
    day: dt.date,
    ratio: float,
    resolved: bool,
    line: str | None,
    words: str,
    windows: Sequence[WindowSpan],
) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "ratio": ratio,
        "resolved": resolved,
        "corporate_action": line,
        "windows": [w.label for w in _windows_of([day], windows)],
        "words": words + _in_windows([day], windows),
    }


def _totals(
    report: Mapping[str, Mapping[str, Any]], sessions: int, unresolved: int
) -> dict[str, int]:
    entries = list(report.values())
    splits = [s for e in entries for s in e["splits"]]
    return {
        "symbols": len(entries),
        "sessions": sessions,
        "symbols_with_findings": sum(1 for e in entries if e["findings"]),
        "calendar_gaps": sum(e["calendar_gaps"]["count"] for e in entries),
        "ohlc_inconsistencies": sum(e["ohlc_inconsistencies"]["count"] for e in entries),
        "corrections": sum(e["corrections"]["count"] for e in entries),
        "suspected_splits": len(splits),
        "resolved_splits": len(splits) - unresolved,
        "unresolved_splits": unresolved,
        "errors": sum(len(e["errors"]) for e in entries),
    }
