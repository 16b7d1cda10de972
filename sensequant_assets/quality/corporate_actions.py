"""Splits and bonus issues from a user CSV, and the back-adjusted bars training reads.

Breeze and most NSE files deliver unadjusted prices: on a 1:1 bonus the price halves overnight,
which a model would learn as a crash. The stored raw and curated bars stay exactly as received
(they are the audit trail); :class:`AdjustedWarehouse` applies the adjustment where features
and labels read bars, so teachers, student, validation and stress tests see one series.

The file (``SENSEQUANT_CORPORATE_ACTIONS_FILE``) has the header ``symbol,ex_date,kind,ratio``;
other columns (a note, a link to the exchange filing) are ignored:

- ``symbol``: the NSE symbol as partitioned; ``ex_date``: ``YYYY-MM-DD``, the first session
  that trades at the new price;
- ``kind``: ``split`` or ``bonus`` (dividends are not adjusted: labels are price returns, and a
  dividend row is refused so that nobody believes it was applied);
- ``ratio``: shares held after the action per share held before, so the divisor of every price
  before ``ex_date``: 2 for a 2-for-1 split (face value 10 → 5), 5 for face value 10 → 2, 2 for a
  1:1 bonus (one new share for each held), 1.5 for 1:2 (one for every two), 2.5 for 3:2 (three
  for every two: (2 + 3) / 2); a consolidation (kind ``split``) has a ratio below 1, 0.1 for
  ten shares into one.

Before ``ex_date`` open, high, low and close are divided by the product of the ratios of every
later action of the symbol and volume is multiplied by it (rounded to whole shares), so the
last price is the traded one and the series is continuous across the ex-date.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sensequant_assets.universe import SYMBOL_PATTERN

if TYPE_CHECKING:
    from sensequant_assets.settings import Settings
    from sensequant_assets.storage import Warehouse

COLUMNS = ("symbol", "ex_date", "kind", "ratio")
KINDS = ("split", "bonus")
PRICE_COLUMNS = ("open", "high", "low", "close")
#: Tables whose bars are adjusted when read; the index (``nifty50_benchmark``) never splits.
ADJUSTED_TABLES = ("ohlcv_daily",)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_LISTED = 20


class BadRowsError(ValueError):
    """Rows of the file that cannot be used: ``problems`` holds one ``line N, column C: ...``
    text per bad cell, ``rows`` the number of bad rows."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        self.rows = len({problem.split(",")[0] for problem in problems})
        shown = problems[:_MAX_LISTED]
        if len(problems) > len(shown):
            shown = [*shown, f"... and {len(problems) - len(shown)} more"]
        super().__init__(f"{path}: {self.rows} bad row(s):\n" + "\n".join(shown))


@dataclass(frozen=True)
class CorporateAction:
    symbol: str
    ex_date: dt.date
    kind: str
    ratio: float

    @property
    def csv_line(self) -> str:
        return f"{self.symbol},{self.ex_date.isoformat()},{self.kind},{self.ratio:g}"


class CorporateActions:
    """The actions of a file, by symbol; empty when no file is configured."""

    def __init__(self, actions: Iterable[CorporateAction] = ()):
        by_symbol: dict[str, list[CorporateAction]] = {}
        for action in actions:
            by_symbol.setdefault(action.symbol, []).append(action)
        self._by_symbol = {
            symbol: sorted(rows, key=lambda a: a.ex_date) for symbol, rows in by_symbol.items()
        }

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._by_symbol.values())

    def ratios(self, symbol: str) -> dict[dt.date, float]:
        """Ex-date → ratio for ``symbol``: what explains an overnight jump on that day."""
        return {a.ex_date: a.ratio for a in self._by_symbol.get(symbol, ())}

    def adjust(self, bars: pd.DataFrame) -> pd.DataFrame:
        """``bars`` (columns ``date, symbol, open, high, low, close, volume``) back-adjusted.

        The factor of a row depends only on its date and the file, never on the span read, so
        two reads of overlapping spans agree on every shared row. ``bars`` is not modified.
        """
        if bars.empty or not self._by_symbol:
            return bars
        present = [s for s in pd.unique(bars["symbol"]) if s in self._by_symbol]
        if not present:
            return bars
        factor = np.ones(len(bars))
        symbols = bars["symbol"].to_numpy()
        dates = pd.to_datetime(bars["date"]).to_numpy(dtype="datetime64[D]")
        for symbol in present:
            actions = self._by_symbol[symbol]
            ex_dates = np.array([a.ex_date for a in actions], dtype="datetime64[D]")
            # later[i]: product of the ratios of actions i.. (those after a row before ex i)
            later = np.append(np.cumprod([a.ratio for a in actions][::-1])[::-1], 1.0)
            rows = symbols == symbol
            factor[rows] = later[np.searchsorted(ex_dates, dates[rows], side="right")]
        adjusted = bars.copy()
        for column in PRICE_COLUMNS:
            adjusted[column] = bars[column].to_numpy(dtype="float64") / factor
        volume = np.rint(bars["volume"].to_numpy(dtype="float64") * factor)
        adjusted["volume"] = volume.astype(bars["volume"].dtype)
        return adjusted


def load_corporate_actions(settings: Settings) -> CorporateActions:
    """The configured file's actions (none without one); start-up checked the file."""
    path = settings.corporate_actions_file
    return read_corporate_actions(path) if path is not None else CorporateActions()


def read_corporate_actions(path: Path) -> CorporateActions:
    """The file's actions; :class:`BadRowsError` lists every unusable row by line and column."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [str(c).strip().lower() for c in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{path}: line 1 lacks column(s) {', '.join(missing)}; expected the header "
            f"{','.join(COLUMNS)}"
        )
    reader.fieldnames = header
    actions: list[CorporateAction] = []
    problems: list[str] = []
    seen: dict[tuple[str, dt.date], int] = {}
    for record in reader:
        line = reader.line_num
        parsed = _parse_row(record, line, problems)
        if parsed is None:
            continue
        key = (parsed.symbol, parsed.ex_date)
        if key in seen:
            problems.append(
                f"line {line}, column ex_date: {parsed.symbol} {parsed.ex_date} is already on "
                f"line {seen[key]}; give one row per symbol and ex-date, with the combined ratio"
            )
            continue
        seen[key] = line
        actions.append(parsed)
    if problems:
        raise BadRowsError(path, problems)
    return CorporateActions(actions)


def _parse_row(
    record: Mapping[str, str | None], line: int, problems: list[str]
) -> CorporateAction | None:
    """One row, or None after adding a ``line N, column C: ...`` problem per bad cell."""

    def bad(column: str, text: str) -> None:
        problems.append(f"line {line}, column {column}: {text}")

    cells = {c: (record.get(c) or "").strip() for c in COLUMNS}
    before = len(problems)
    symbol = cells["symbol"].upper()
    if not SYMBOL_PATTERN.fullmatch(symbol):
        bad("symbol", f"{cells['symbol']!r} is not an NSE symbol (1-20 of A-Z, 0-9, &, _, -)")
    ex_date = None
    if _ISO_DATE.fullmatch(cells["ex_date"]):
        with contextlib.suppress(ValueError):  # 2024-02-30: shaped like a date, but none
            ex_date = dt.date.fromisoformat(cells["ex_date"])
    if ex_date is None:
        bad("ex_date", f"{cells['ex_date']!r} is not a date (expected YYYY-MM-DD)")
    kind = cells["kind"].lower()
    if kind == "dividend":
        bad("kind", "dividends are not adjusted (labels are price returns); remove the row")
    elif kind not in KINDS:
        bad("kind", f"{cells['kind']!r} is not one of {', '.join(KINDS)}")
    try:
        ratio = float(cells["ratio"])
    except ValueError:
        ratio = math.nan
    if not math.isfinite(ratio) or ratio <= 0 or ratio == 1:
        bad(
            "ratio",
            f"{cells['ratio']!r} is not a positive number other than 1 (shares after the "
            "action per share before: 2 for a 2-for-1 split or a 1:1 bonus)",
        )
    elif kind == "bonus" and ratio < 1:
        bad("ratio", f"{ratio:g} is below 1, but a bonus adds shares (1.5 for a 1:2 bonus)")
    if len(problems) > before or ex_date is None:
        return None
    return CorporateAction(symbol, ex_date, kind, ratio)


class AdjustedWarehouse:
    """The warehouse as features and labels read it: bars of :data:`ADJUSTED_TABLES`
    back-adjusted by ``actions``, everything else as stored. Ingestion keeps the raw
    :class:`~sensequant_assets.storage.Warehouse`: what it compares and writes is as received.
    """

    def __init__(self, warehouse: Warehouse, actions: CorporateActions):
        self.warehouse = warehouse
        self.actions = actions

    @property
    def location(self) -> str:
        return self.warehouse.location

    def _adjusted(self, table: str, frame: pd.DataFrame) -> pd.DataFrame:
        return self.actions.adjust(frame) if table in ADJUSTED_TABLES else frame

    def query(self, table: str, sql_where: str, params: list[object]) -> pd.DataFrame:
        return self._adjusted(table, self.warehouse.query(table, sql_where, params))

    def symbols_bars(
        self,
        table: str,
        symbols: list[str],
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
    ) -> pd.DataFrame:
        return self._adjusted(table, self.warehouse.symbols_bars(table, symbols, start, end))

    def bars(self, table: str, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        return self._adjusted(table, self.warehouse.bars(table, symbol, start, end))

    def last_date(self, table: str, symbol: str) -> dt.date | None:
        return self.warehouse.last_date(table, symbol)
