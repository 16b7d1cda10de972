"""Fetch → archive raw → validate, for a block of symbols × trading days.

One call handles exactly what one Dagster run covers (one symbol over many days, or one day
over many symbols), so the asset stays a thin wrapper. Failures are collected per symbol rather
than raised at the first one, so an operator sees every bad symbol of a run in one message; the
caller decides that any failure fails the whole run and nothing of it is written.

The IO manager replaces the run's whole slice (its symbols × its first..last day), so the frame
returned here is the slice's new content. Two refusals keep that from losing data silently: a
stored session the source no longer returns (a truncated file, a short reply) fails the symbol
unless shrinking is allowed, and a requested session with no source row fails it unless gaps
are allowed, because a partition marked materialized without a row is never retried.

Overnight moves are judged against the corporate-actions file (:class:`PriceChecks`): a listed
split explains its jump, but the bars are stored unadjusted, as received.

:class:`MarketData` is what the ingestion assets share (the source, the warehouse, the raw
archive and an :class:`Ingestor` per table), built from the settings; Dagster passes it to them
as a resource.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sensequant_assets.quality import DataQualityError, Finding, QualityReport, validate_ohlcv
from sensequant_assets.quality.corporate_actions import CorporateActions, load_corporate_actions
from sensequant_assets.quality.overnight import DEFAULT_MAX_OVERNIGHT_MOVE
from sensequant_assets.sources import MarketDataSource, SourceError, build_source
from sensequant_assets.storage import RawArchive, Warehouse

if TYPE_CHECKING:
    from sensequant_assets.calendar import TradingCalendar
    from sensequant_assets.settings import Settings
    from sensequant_assets.universe import Universe

logger = logging.getLogger(__name__)
BAR_COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume", "source"]


@dataclass(frozen=True)
class IngestPolicy:
    """What an ingest may do to the slice it replaces; refusing both is the safe default."""

    allow_shrink: bool = False
    allow_missing_sessions: bool = False


@dataclass(frozen=True)
class PriceChecks:
    """What explains or bounds an overnight move: listed corporate actions, the jump bound."""

    actions: CorporateActions = field(default_factory=CorporateActions)
    max_overnight_move: float = DEFAULT_MAX_OVERNIGHT_MOVE

    @classmethod
    def from_settings(cls, settings: Settings) -> PriceChecks:
        return cls(load_corporate_actions(settings), settings.max_overnight_move)


def _naming(symbol: str, reason: str) -> str:
    """``SYMBOL: reason``, unless the reason names the symbol already (as source errors do)."""
    if re.search(rf"(?<![A-Z0-9&_-]){re.escape(symbol)}(?![A-Z0-9&_-])", reason):
        return reason
    return f"{symbol}: {reason}"


@dataclass
class IngestResult:
    frame: pd.DataFrame
    reports: list[QualityReport] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    reused_rows: dict[str, int] = field(default_factory=dict)
    missing_sessions: dict[str, list[dt.date]] = field(default_factory=dict)
    raw_file: Path | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.reports for f in r.findings]

    def failure_message(self, limit: int = 10) -> str:
        lines = [_naming(symbol, error) for symbol, error in sorted(self.failures.items())]
        more = len(lines) - limit
        shown = "\n".join(lines[:limit]) + (f"\n... and {more} more symbol(s)" if more > 0 else "")
        return (
            f"{len(self.failures)} symbol(s) failed; nothing of this run was written and the "
            f"data already stored is unchanged:\n{shown}"
        )


def format_sessions(days: Sequence[dt.date], limit: int = 5) -> str:
    """``d1, d2, ...`` for a short list; the count and span for a long one."""
    shown = ", ".join(d.isoformat() for d in days[:limit])
    if len(days) <= limit:
        return shown
    return f"{shown}, ... ({len(days)} in all, {days[0]}..{days[-1]})"


def _days(frame: pd.DataFrame) -> set[dt.date]:
    return set(frame["date"].dt.date) if not frame.empty else set()


def _slice_refusal(
    lost: Sequence[dt.date], missing: Sequence[dt.date], policy: IngestPolicy
) -> str | None:
    if lost and not policy.allow_shrink:
        return (
            f"the source no longer returns {len(lost)} stored session(s): "
            f"{format_sessions(lost)}; storing this run would delete them "
            "(re-run with --allow-shrink, or SENSEQUANT_ALLOW_SHRINK=true, to accept)"
        )
    if missing and not policy.allow_missing_sessions:
        return (
            f"no source row for {len(missing)} requested NSE session(s): "
            f"{format_sessions(missing)} (fix the source or the holiday file, or accept the gaps "
            "with --allow-missing-sessions / SENSEQUANT_ALLOW_MISSING_SESSIONS=true)"
        )
    return None


class Ingestor:
    """Brings one curated table up to date from a source, keeping raw rows for audit."""

    def __init__(
        self,
        source: MarketDataSource,
        warehouse: Warehouse,
        archive: RawArchive,
        table: str,
        refetch: bool = False,
        policy: IngestPolicy | None = None,
    ):
        self.source = source
        self.warehouse = warehouse
        self.archive = archive
        self.table = table
        self.refetch = refetch
        self.policy = policy or IngestPolicy()

    def _stored_slice(
        self, symbols: Sequence[str], first: dt.date, last: dt.date
    ) -> dict[str, pd.DataFrame]:
        """The stored rows the run's write will replace, per symbol (one query)."""
        stored = self.warehouse.symbols_bars(self.table, list(symbols), first, last)
        if stored.empty:
            return {}
        return {str(symbol): rows[BAR_COLUMNS] for symbol, rows in stored.groupby("symbol")}

    def _reusable(self, stored: pd.DataFrame, sessions: Sequence[dt.date]) -> pd.DataFrame:
        """Stored rows of this source for requested sessions: a remote source needn't refetch."""
        if not self.source.remote or self.refetch or stored.empty:
            return pd.DataFrame(columns=BAR_COLUMNS)
        same_source = stored[stored["source"] == self.source.name]
        return same_source[same_source["date"].dt.date.isin(set(sessions))]

    def _plan(
        self, stored_all: pd.DataFrame, sessions: Sequence[dt.date]
    ) -> tuple[pd.DataFrame, list[dt.date]]:
        """The stored rows a symbol's run reuses, and the sessions it must fetch."""
        stored = self._reusable(stored_all, sessions)
        have = set(stored["date"].dt.date) if not stored.empty else set()
        return stored, [d for d in sessions if d not in have]

    def run(
        self,
        sessions_by_symbol: Mapping[str, Sequence[dt.date]],
        run_id: str,
        progress: Callable[[int, int, str], None] | None = None,
        checks: PriceChecks | None = None,
    ) -> IngestResult:
        """Ingest ``sessions_by_symbol``; ``checks`` (default: no corporate actions, the
        default jump bound) judges the overnight moves."""
        checks = checks or PriceChecks()
        result = IngestResult(frame=pd.DataFrame(columns=BAR_COLUMNS))
        raw_frames: dict[str, pd.DataFrame] = {}
        clean_frames: list[pd.DataFrame] = []
        every_day = sorted({d for days in sessions_by_symbol.values() for d in days})
        in_slice = (
            self._stored_slice(list(sessions_by_symbol), every_day[0], every_day[-1])
            if every_day
            else {}
        )
        empty = pd.DataFrame(columns=BAR_COLUMNS)
        plans = {
            symbol: self._plan(in_slice.get(symbol, empty), sorted(wanted))
            for symbol, wanted in sessions_by_symbol.items()
            if wanted
        }
        previous_closes = self.warehouse.last_closes_before(
            self.table, {symbol: missing[0] for symbol, (_, missing) in plans.items() if missing}
        )
        total = len(sessions_by_symbol)
        for done, (symbol, wanted) in enumerate(sessions_by_symbol.items(), start=1):
            if not wanted:
                continue
            frames = self._ingest_symbol(
                symbol, sorted(wanted), in_slice.get(symbol, empty), plans[symbol],
                previous_closes, checks, result, raw_frames,
            )  # fmt: skip
            if frames is None:
                continue
            clean_frames += frames
            if progress:
                progress(done, total, symbol)
        result.raw_file = self.archive.write(self.table, run_id, raw_frames, self.source.name)
        if clean_frames:
            frame = pd.concat(clean_frames, ignore_index=True)
            result.frame = frame.sort_values(["symbol", "date"]).reset_index(drop=True)
        return result

    def _ingest_symbol(
        self,
        symbol: str,
        sessions: list[dt.date],
        stored_all: pd.DataFrame,
        plan: tuple[pd.DataFrame, list[dt.date]],
        previous_closes: Mapping[str, float | None],
        checks: PriceChecks,
        result: IngestResult,
        raw_frames: dict[str, pd.DataFrame],
    ) -> list[pd.DataFrame] | None:
        """The rows of ``symbol`` to store: fetched and validated, reused, and those stored
        outside the request; None when it failed (the failure is recorded in ``result``)."""
        stored, missing = plan
        result.reused_rows[symbol] = len(stored)
        new_frames = []
        if missing:
            fetch_sessions = [d for d in sessions if missing[0] <= d <= missing[-1]]
            clean = self._fetch_clean(
                symbol, fetch_sessions, previous_closes[symbol], checks, result, raw_frames
            )
            if clean is None:
                return None
            new_frames.append(clean)
            if not stored.empty:
                stored = stored[~stored["date"].dt.date.isin(set(fetch_sessions))]
        if not stored.empty:
            new_frames.append(stored)
        got = set().union(*(_days(f) for f in new_frames))
        requested = set(sessions)
        stored_days = _days(stored_all)
        refusal = _slice_refusal(
            sorted(stored_days & requested - got), sorted(requested - got), self.policy
        )
        if refusal:
            result.failures[symbol] = refusal
            return None
        if requested - got:
            result.missing_sessions[symbol] = sorted(requested - got)
        if stored_days - requested:
            new_frames.append(stored_all[~stored_all["date"].dt.date.isin(requested)])
        return new_frames

    def _fetch_clean(
        self,
        symbol: str,
        sessions: list[dt.date],
        previous_close: float | None,
        checks: PriceChecks,
        result: IngestResult,
        raw_frames: dict[str, pd.DataFrame],
    ) -> pd.DataFrame | None:
        """``symbol``'s bars over ``sessions`` from the source, validated; the raw rows are
        kept for the archive. None when the source failed or the bars did not pass."""
        try:
            raw = self.source.fetch(symbol, sessions[0], sessions[-1])
        except SourceError as exc:
            result.failures[symbol] = str(exc)
            return None
        raw_frames[symbol] = raw
        try:
            clean, report = validate_ohlcv(
                raw,
                symbol,
                sessions,
                previous_close=previous_close,
                origin=self.source.name,
                ex_ratios=checks.actions.ratios(symbol),
                max_overnight_move=checks.max_overnight_move,
            )
        except DataQualityError as exc:
            result.reports.append(exc.report)
            result.failures[symbol] = str(exc)
            return None
        result.reports.append(report)
        clean["source"] = self.source.name
        return clean[BAR_COLUMNS]


@dataclass
class MarketData:
    """Everything an ingestion asset needs, built once per process from the settings.

    The source is built on first use: the Breeze client imports its SDK and opens a session
    only when a run actually fetches, never when Dagit loads the definitions.
    """

    settings: Settings
    universe: Universe
    calendar: TradingCalendar

    @cached_property
    def source(self) -> MarketDataSource:
        return build_source(self.settings, self.universe, self.calendar)

    @cached_property
    def warehouse(self) -> Warehouse:
        return Warehouse.from_settings(self.settings)

    @cached_property
    def archive(self) -> RawArchive:
        return RawArchive(self.settings.raw_dir)

    @property
    def ingest_policy(self) -> IngestPolicy:
        return IngestPolicy(
            allow_shrink=self.settings.allow_shrink,
            allow_missing_sessions=self.settings.allow_missing_sessions,
        )

    def ingestor(self, table: str, policy: IngestPolicy | None = None) -> Ingestor:
        return Ingestor(
            self.source,
            self.warehouse,
            self.archive,
            table,
            refetch=self.settings.breeze_refetch,
            policy=policy or self.ingest_policy,
        )
