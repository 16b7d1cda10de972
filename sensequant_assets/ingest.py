"""Fetch → archive raw → validate, for a block of symbols × trading days.

One call handles exactly what one Dagster run covers (one symbol over many days, or one day
over many symbols), so the asset stays a thin wrapper. Failures are collected per symbol rather
than raised at the first one, so an operator sees every bad symbol of a run in one message; the
caller decides that any failure fails the whole run and nothing of it is written.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sensequant_assets.quality import DataQualityError, Finding, QualityReport, validate_ohlcv
from sensequant_assets.sources import MarketDataSource, SourceError
from sensequant_assets.storage import RawArchive, Warehouse

logger = logging.getLogger(__name__)
BAR_COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume", "source"]


@dataclass
class IngestResult:
    frame: pd.DataFrame
    reports: list[QualityReport] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    reused_rows: dict[str, int] = field(default_factory=dict)
    raw_file: Path | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.reports for f in r.findings]

    def failure_message(self, limit: int = 10) -> str:
        lines = [f"{symbol}: {error}" for symbol, error in sorted(self.failures.items())]
        more = len(lines) - limit
        shown = "\n".join(lines[:limit]) + (f"\n... and {more} more symbol(s)" if more > 0 else "")
        return (
            f"{len(self.failures)} symbol(s) failed; nothing of this run was written and the "
            f"data already stored is unchanged:\n{shown}"
        )


class Ingestor:
    """Brings one curated table up to date from a source, keeping raw rows for audit."""

    def __init__(
        self,
        source: MarketDataSource,
        warehouse: Warehouse,
        archive: RawArchive,
        table: str,
        refetch: bool = False,
    ):
        self.source = source
        self.warehouse = warehouse
        self.archive = archive
        self.table = table
        self.refetch = refetch

    def _stored_from_source(self, symbol: str, sessions: Sequence[dt.date]) -> pd.DataFrame:
        if not self.source.remote or self.refetch:
            return pd.DataFrame(columns=BAR_COLUMNS)
        stored = self.warehouse.bars(self.table, symbol, sessions[0], sessions[-1])
        if stored.empty:
            return pd.DataFrame(columns=BAR_COLUMNS)
        stored = stored[stored["source"] == self.source.name]
        return stored[stored["date"].dt.date.isin(set(sessions))][BAR_COLUMNS]

    def run(
        self,
        sessions_by_symbol: Mapping[str, Sequence[dt.date]],
        run_id: str,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> IngestResult:
        result = IngestResult(frame=pd.DataFrame(columns=BAR_COLUMNS))
        raw_frames: dict[str, pd.DataFrame] = {}
        clean_frames: list[pd.DataFrame] = []
        total = len(sessions_by_symbol)
        for done, (symbol, wanted) in enumerate(sessions_by_symbol.items(), start=1):
            sessions = sorted(wanted)
            if not sessions:
                continue
            stored = self._stored_from_source(symbol, sessions)
            have = set(stored["date"].dt.date) if not stored.empty else set()
            missing = [d for d in sessions if d not in have]
            result.reused_rows[symbol] = len(stored)
            if missing:
                fetch_sessions = [d for d in sessions if missing[0] <= d <= missing[-1]]
                try:
                    raw = self.source.fetch(symbol, fetch_sessions[0], fetch_sessions[-1])
                except SourceError as exc:
                    result.failures[symbol] = str(exc)
                    continue
                raw_frames[symbol] = raw
                previous = self.warehouse.last_close_before(self.table, symbol, fetch_sessions[0])
                try:
                    clean, report = validate_ohlcv(
                        raw,
                        symbol,
                        fetch_sessions,
                        previous_close=previous,
                        origin=self.source.name,
                    )
                except DataQualityError as exc:
                    result.reports.append(exc.report)
                    result.failures[symbol] = str(exc)
                    continue
                result.reports.append(report)
                clean["source"] = self.source.name
                clean_frames.append(clean[BAR_COLUMNS])
                if not stored.empty:
                    stored = stored[~stored["date"].dt.date.isin(set(fetch_sessions))]
            if not stored.empty:
                clean_frames.append(stored)
            if progress:
                progress(done, total, symbol)
        result.raw_file = self.archive.write(self.table, run_id, raw_frames, self.source.name)
        if clean_frames:
            frame = pd.concat(clean_frames, ignore_index=True)
            result.frame = frame.sort_values(["symbol", "date"]).reset_index(drop=True)
        return result
