"""``data_quality.json``: the data quality and sentiment coverage that travel with a candidate.

Everything is read back from what the candidate left on disk (``student_runs.json`` names its
symbols and ranges, ``teacher_runs.json`` its windows) and from the stored data, so the summary
can be rebuilt for any candidate, by the pipeline or by hand, and always agrees with what the
candidate trained on. Ranges: the data-quality part covers every bar the candidate read
(``data_range``: warm-up and label horizon included); sentiment covers the sessions the
student had samples on (``date_range``), the only ones whose features used a score.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq

from sensequant_assets.artifacts import RAW_FILES, AuditLayout, CandidateLayout, raw_dataset_dir
from sensequant_assets.atomic import write_atomic
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.features import WARMUP_SESSIONS
from sensequant_assets.features.sentiment import coverage_summary
from sensequant_assets.quality.corporate_actions import load_corporate_actions
from sensequant_assets.quality.rules import parse_dates
from sensequant_assets.quality.summary import WindowSpan, summarise_quality
from sensequant_assets.storage import Warehouse
from sensequant_assets.training import TrainingWindow, window_data_range

if TYPE_CHECKING:
    from sensequant_assets.settings import Settings

DATA_QUALITY_VERSION = 1
OHLCV_TABLE = "ohlcv_daily"
SENTIMENT_TABLE = "sentiment_snapshots"
_RAW_COLUMNS = ("requested_symbol", "date", "volume")


def candidate_data_quality(
    candidate: CandidateLayout,
    settings: Settings,
    calendar: TradingCalendar,
    warehouse: Warehouse | None = None,
) -> dict[str, Any]:
    """The ``data_quality.json`` content of ``candidate``: version, candidate id, range, the
    corporate-actions file, :func:`summarise_quality`'s sections and the sentiment coverage.

    ``warehouse`` is the *unadjusted* one (default: the configured warehouse): the summary
    judges the bars as stored, and the corporate-actions file as what resolves their splits.
    """
    student = json.loads(candidate.student_runs.read_text())
    symbols: list[str] = list(student["symbols"])
    first, last = (dt.date.fromisoformat(d) for d in student["data_range"])
    warehouse = warehouse or Warehouse.from_settings(settings)
    windows = teacher_windows(
        json.loads(candidate.teacher_runs.read_text())["runs"],
        calendar,
        int(student["label"]["horizon"]),
    )
    sessions = calendar.sessions(first, last)
    bars = warehouse.symbols_bars(OHLCV_TABLE, symbols, first, last)
    summary = summarise_quality(
        bars,
        symbols,
        sessions,
        load_corporate_actions(settings),
        warehouse.last_closes_before(OHLCV_TABLE, dict.fromkeys(symbols, first)),
        windows,
        archived_negative_volumes(
            raw_dataset_dir(settings.raw_dir, OHLCV_TABLE), symbols, first, last
        ),
    )
    actions_file = settings.corporate_actions_file
    return {
        "version": DATA_QUALITY_VERSION,
        "candidate_id": candidate.candidate_id,
        "range": {"first": first.isoformat(), "last": last.isoformat(), "sessions": len(sessions)},
        "corporate_actions_file": str(actions_file) if actions_file else None,
        **summary,
        "sentiment": _sentiment(settings, warehouse, calendar, symbols, student["date_range"]),
    }


def write_data_quality(audit_dir: Path, report: Mapping[str, Any]) -> Path:
    """``data_quality.json`` into ``audit_dir``, atomically."""
    text = json.dumps(report, indent=2, allow_nan=False)
    return write_atomic(AuditLayout(audit_dir).data_quality, text.encode())


def teacher_windows(
    runs: Iterable[Mapping[str, Any]], calendar: TradingCalendar, horizon: int
) -> list[WindowSpan]:
    """The completed teachers of ``teacher_runs.json``'s runs, with the days their data reach."""
    spans = []
    for run in runs:
        if run["status"] != "completed":
            continue
        window = TrainingWindow(
            run["symbol"], dt.date.fromisoformat(run["start"]), dt.date.fromisoformat(run["end"])
        )
        first, last = window_data_range(window, calendar, WARMUP_SESSIONS, horizon)
        spans.append(WindowSpan(run["window_label"], window.symbol, first, last))
    return sorted(spans, key=lambda w: (w.symbol, w.first))


def archived_negative_volumes(
    directory: Path, symbols: Sequence[str], first: dt.date, last: dt.date
) -> pd.DataFrame:
    """Raw archived rows (``date, symbol, volume``) of ``symbols`` in ``[first, last]`` whose
    volume was negative as received; files lacking a column (a refused batch) are passed over."""
    parts = []
    for path in sorted(directory.glob(RAW_FILES)) if directory.is_dir() else []:
        if not set(_RAW_COLUMNS) <= set(pq.read_schema(path).names):
            continue
        table = pq.read_table(
            path, columns=list(_RAW_COLUMNS), filters=[("requested_symbol", "in", list(symbols))]
        )
        parts.append(table.to_pandas())
    if not parts:
        return pd.DataFrame({"date": [], "symbol": [], "volume": []})
    raw = pd.concat(parts, ignore_index=True)
    dates = pd.Series(parse_dates(raw["date"]))
    volume = pd.to_numeric(raw["volume"].str.strip(), errors="coerce")
    keep = (volume < 0) & (dates >= pd.Timestamp(first)) & (dates <= pd.Timestamp(last))
    return pd.DataFrame(
        {"date": dates[keep], "symbol": raw["requested_symbol"][keep], "volume": volume[keep]}
    ).reset_index(drop=True)


def _sentiment(
    settings: Settings,
    warehouse: Warehouse,
    calendar: TradingCalendar,
    symbols: Sequence[str],
    date_range: Sequence[str],
) -> dict[str, Any] | None:
    """Coverage over the student's sample sessions; None when sentiment is off."""
    if settings.sentiment_headlines_file is None:
        return None
    first, last = (dt.date.fromisoformat(d) for d in date_range)
    daily = warehouse.symbols_bars(SENTIMENT_TABLE, list(symbols), first, last)
    return {
        "headlines_file": str(settings.sentiment_headlines_file),
        "range": {"first": first.isoformat(), "last": last.isoformat()},
        **coverage_summary(daily, symbols, calendar.sessions(first, last)),
    }
