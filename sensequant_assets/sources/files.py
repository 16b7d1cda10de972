"""User-supplied daily bars: one ``<SYMBOL>.csv`` or ``<SYMBOL>.parquet`` per symbol.

This source only locates and reads files and normalises column names; it does not judge
content. Missing OHLCV columns, unparsable values and the like are reported by
``sensequant_assets.quality.validate_ohlcv``, so every source is held to the same rules. Any
symbol may have a file: no ICICI code is needed to read one (:func:`symbols_in`).
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa

from sensequant_assets.sources.base import OHLCV_COLUMNS, SourceError
from sensequant_assets.universe import SYMBOL_PATTERN

#: Header names accepted for the date column (after stripping and lower-casing).
DATE_ALIASES = ("date", "timestamp", "datetime")
SUFFIXES = (".csv", ".parquet")


def symbols_in(directory: Path) -> tuple[list[str], list[str]]:
    """``(symbols, refused)``: the symbols whose files :meth:`FilesSource.fetch` would read,
    sorted, and the data files it never would (``RELIANCE.NS.csv``, mixed-case ``Tcs.csv``)."""
    symbols: set[str] = set()
    refused: list[str] = []
    for path in sorted(Path(directory).iterdir()):
        if path.suffix not in SUFFIXES or not path.is_file():
            continue
        symbol = path.stem.upper()
        if SYMBOL_PATTERN.fullmatch(symbol) and path.stem in (symbol, symbol.lower()):
            symbols.add(symbol)
        else:
            refused.append(path.name)
    return sorted(symbols), refused


class FilesSource:
    """Reads bars from a directory of per-symbol files, reading each file once per instance.

    CSV files are read with ``dtype=str`` so values reach the quality rules exactly as
    written; pandas' default NA markers (empty cell, ``NA``, ``NaN``, ``null``...) still
    become missing values. Parquet files keep their stored types.
    """

    name = "files"
    remote = False

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._frames: dict[str, pd.DataFrame] = {}

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """All rows of the symbol's file; ``start``/``end`` are left to the caller to apply.

        Dates are not parsed here, so filtering would need a second parser; returning the
        whole file keeps the one parser in the quality rules.
        """
        if symbol not in self._frames:
            self._frames[symbol] = self._read(self._locate(symbol))
        return self._frames[symbol].copy()

    def _locate(self, symbol: str) -> Path:
        """The one file for ``symbol``; a symbol that is no NSE symbol (``../x``) is refused
        before it becomes a file name, so nothing outside ``directory`` is ever read."""
        if not SYMBOL_PATTERN.fullmatch(symbol):
            raise SourceError(
                f"{symbol!r} is not an NSE symbol: refusing to look for its file in "
                f"{self.directory}"
            )
        names = [
            f"{stem}{suffix}"
            for suffix in SUFFIXES
            for stem in dict.fromkeys((symbol, symbol.lower()))
        ]
        found: list[Path] = []
        for name in names:
            path = self.directory / name
            # On case-insensitive file systems both spellings name the same file.
            if path.is_file() and not any(os.path.samefile(path, seen) for seen in found):
                found.append(path)
        if not found:
            raise SourceError(
                f"no data file for {symbol} in {self.directory}: tried {', '.join(names)}"
            )
        if len(found) > 1:
            raise SourceError(
                f"ambiguous data files for {symbol} in {self.directory}: "
                f"{', '.join(p.name for p in found)}; keep exactly one"
            )
        return found[0]

    @staticmethod
    def _read(path: Path) -> pd.DataFrame:
        try:
            with warnings.catch_warnings():
                # Rows longer than the header would otherwise silently shift into an index.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                if path.suffix == ".csv":
                    frame = pd.read_csv(path, dtype=str, index_col=False)
                else:
                    frame = pd.read_parquet(path)
        except pd.errors.EmptyDataError:
            raise SourceError(
                f"{path} is empty: expected a header {','.join(OHLCV_COLUMNS)} and a row per "
                "session"
            ) from None
        # pandas' parser and decoding errors are ValueErrors.
        except (OSError, ValueError, pa.ArrowException, pd.errors.ParserWarning) as exc:
            raise SourceError(f"cannot read {path}: {exc}") from exc
        if any(name is not None for name in frame.index.names):
            frame = frame.reset_index()
        return _normalise_columns(frame, path)


def _normalise_columns(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Strip and lower-case headers and map the date aliases to ``date``."""
    columns = [str(c).strip().lower() for c in frame.columns]
    aliases = [c for c in columns if c in DATE_ALIASES]
    if len(aliases) > 1:
        raise SourceError(
            f"{path} has more than one date column ({', '.join(aliases)}); keep exactly one"
        )
    columns = ["date" if c in DATE_ALIASES else c for c in columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise SourceError(
            f"{path} has repeated columns after ignoring case and spaces: {', '.join(repeated)}"
        )
    frame.columns = columns
    return frame
