"""Partitions: NSE trading days × symbols, and symbols × teacher training windows.

Trading days are a weekday cron with the calendar's holidays as exclusions, so Dagit never
offers a holiday or a weekend as a partition. ``end_offset=1`` makes today's session a
partition as soon as the day starts (IST), so the 18:00 schedule can ingest it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dagster as dg

from sensequant_assets.calendar import MARKET_TIMEZONE, TradingCalendar
from sensequant_assets.orchestration.runs import contiguous

DATE_FORMAT = "%Y-%m-%d"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def trading_day_partitions(
    calendar: TradingCalendar, start: dt.date
) -> dg.TimeWindowPartitionsDefinition:
    return dg.TimeWindowPartitionsDefinition(
        start=start.strftime(DATE_FORMAT),
        fmt=DATE_FORMAT,
        cron_schedule="0 0 * * 1-5",
        timezone=MARKET_TIMEZONE,
        end_offset=1,
        exclusions=calendar.partition_exclusions(start),
    )


def symbol_day_partitions(
    days: dg.TimeWindowPartitionsDefinition, symbols: Sequence[str]
) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {"date": days, "symbol": dg.StaticPartitionsDefinition(sorted(symbols))}
    )


def one_day_all_symbols_tags(day: dt.date, symbols: Sequence[str]) -> dict[str, str]:
    """Run tags that make one day × every symbol a single run (not one run per symbol)."""
    ordered = sorted(symbols)
    key = day.strftime(DATE_FORMAT)
    return {RANGE_START_TAG: f"{key}|{ordered[0]}", RANGE_END_TAG: f"{key}|{ordered[-1]}"}


def date_range_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    """Run tags covering the trading-day partitions from ``start`` to ``end`` (one run)."""
    return {RANGE_START_TAG: start.strftime(DATE_FORMAT), RANGE_END_TAG: end.strftime(DATE_FORMAT)}


def one_symbol_range_tags(symbol: str, start: dt.date, end: dt.date) -> dict[str, str]:
    """Run tags for one symbol over a range of trading days, in a single run."""
    return {
        RANGE_START_TAG: f"{start.strftime(DATE_FORMAT)}|{symbol}",
        RANGE_END_TAG: f"{end.strftime(DATE_FORMAT)}|{symbol}",
    }


def sessions_by_symbol(partition_keys: Sequence[str]) -> dict[str, list[dt.date]]:
    """Group multi-partition keys (``date|symbol``) of a run by symbol."""
    grouped: dict[str, list[dt.date]] = defaultdict(list)
    for key in partition_keys:
        day, symbol = str(key).split("|")
        grouped[symbol].append(dt.date.fromisoformat(day))
    return {symbol: sorted(days) for symbol, days in sorted(grouped.items())}


def sessions_of(partition_keys: Sequence[str]) -> list[dt.date]:
    return sorted(dt.date.fromisoformat(str(k)) for k in partition_keys)


def symbol_window_partitions(
    symbols: Sequence[str], window_keys: Sequence[str]
) -> dg.MultiPartitionsDefinition:
    """Teacher partitions: symbol × training window (keys look like ``TCS|2024-03-…``)."""
    return dg.MultiPartitionsDefinition(
        {
            "symbol": dg.StaticPartitionsDefinition(sorted(symbols)),
            "train_window": dg.StaticPartitionsDefinition(list(window_keys)),
        }
    )


# A teacher run pays a fixed cost before its first window (a run worker's start and the
# definitions' load) and ~30-50 ms per window after it. About 224 windows per run pays that back
# (8 symbols of a 3-year history's 28 windows) while NIFTY 100 still makes a dozen runs to share
# between run workers; one new window is one run for all.
TEACHER_WINDOWS_PER_RUN = 224


@dataclass(frozen=True)
class TeacherBlock:
    """Neighbouring symbols × neighbouring windows: one key range, so one teacher run."""

    symbols: tuple[str, ...]
    windows: tuple[str, ...]

    @property
    def partitions(self) -> int:
        return len(self.symbols) * len(self.windows)

    @property
    def label(self) -> str:
        first, last, windows = self.symbols[0], self.symbols[-1], len(self.windows)
        if len(self.symbols) == 1:
            return f"teacher_model {first} ({windows})"
        return f"teacher_model {first}..{last} ({len(self.symbols)}x{windows})"

    @property
    def tags(self) -> dict[str, str]:
        return {
            RANGE_START_TAG: f"{self.symbols[0]}|{self.windows[0]}",
            RANGE_END_TAG: f"{self.symbols[-1]}|{self.windows[-1]}",
        }


def teacher_blocks(
    symbols: Sequence[str],
    windows: Sequence[str],
    todo: Mapping[str, Sequence[str]],
    windows_per_run: int = TEACHER_WINDOWS_PER_RUN,
) -> list[TeacherBlock]:
    """Cover each symbol's ``todo`` windows with runs of about ``windows_per_run`` windows.

    ``symbols`` and ``windows`` are the partition dimensions in their order: a multi-partition
    key range is the rectangle between its two corners, so symbols share a run only when they
    are adjacent in ``symbols`` and need the same contiguous windows (a weekly retrain: every
    symbol needs the one new window).
    """
    by_windows: dict[tuple[str, ...], list[int]] = {}
    for position, symbol in enumerate(symbols):
        for block in contiguous(windows, todo.get(symbol, ())):
            by_windows.setdefault(tuple(block), []).append(position)
    blocks = []
    for block, positions in by_windows.items():
        max_symbols = max(1, windows_per_run // len(block))
        groups: list[list[int]] = []
        for position in positions:
            if groups and position == groups[-1][-1] + 1 and len(groups[-1]) < max_symbols:
                groups[-1].append(position)
            else:
                groups.append([position])
        blocks += [TeacherBlock(tuple(symbols[p] for p in group), block) for group in groups]
    return blocks
