"""The instruments the platform knows: NSE symbols, their ICICI (Breeze) codes and sectors.

The default universe is the NIFTY 100 snapshot of July 2026 plus the GOLDBEES and SILVERBEES
ETFs; the NIFTY 50 index is known as ``NIFTY50`` for benchmarks. ICICI codes differ from NSE
symbols (RELIANCE is ``RELIND``) and survive NSE renames, so the map is data, refreshable from
ICICI's ``NSEScripMaster.txt``. Only Breeze needs a code and only the synthetic market needs a
sector: with the files source any symbol may be partitioned (:func:`universe_for`).
"""

from __future__ import annotations

import csv
import difflib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from sensequant_assets.settings import Settings

logger = logging.getLogger(__name__)

UNIVERSE_SNAPSHOT = "2026-07"
INDEX_SYMBOL = "NIFTY50"
ETF_SYMBOLS = ("GOLDBEES", "SILVERBEES")
#: What an NSE symbol may look like. Symbols become file names (the files source) and
#: partition keys, so nothing else (``/``, ``..``, spaces) may ever enter as one.
SYMBOL_PATTERN = re.compile(r"[A-Z0-9&_-]{1,20}")
# Names already warned about in this process: every step process loads the definitions.
_warned: set[str] = set()


class InvalidSymbolError(ValueError):
    """Text offered as a symbol that cannot be one (see :data:`SYMBOL_PATTERN`)."""


def check_symbol(symbol: str, where: str) -> str:
    """``symbol`` if it matches :data:`SYMBOL_PATTERN`, else an error saying ``where`` it came."""
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise InvalidSymbolError(
            f"{where}: {symbol!r} is not an NSE symbol (1-20 of A-Z, 0-9, &, _, -)"
        )
    return symbol


class UnknownSymbolError(KeyError):
    """A symbol that is neither in the shipped reference data nor in a loaded scrip master."""

    def __init__(self, symbol: str, suggestions: list[str]):
        self.symbol = symbol
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown NSE symbol {symbol!r}{hint}")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Instrument:
    symbol: str
    isec_code: str
    company: str
    sector: str
    kind: str


class Universe:
    """Known instruments plus the default symbol list that defines the partitions.

    ``any_symbol``: :meth:`resolve` also accepts symbols it does not know (the files source
    needs neither a code nor a sector), warning once about them; :meth:`get` still refuses them.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        default_symbols: Iterable[str],
        any_symbol: bool = False,
    ):
        self._by_symbol = {i.symbol: i for i in instruments}
        self.default_symbols = list(default_symbols)
        self.any_symbol = any_symbol
        self.snapshot = UNIVERSE_SNAPSHOT

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and symbol.upper() in self._by_symbol

    def get(self, symbol: str) -> Instrument:
        key = check_symbol(symbol.strip().upper(), "symbol")
        try:
            return self._by_symbol[key]
        except KeyError:
            close = difflib.get_close_matches(key, list(self._by_symbol), n=5, cutoff=0.6)
            raise UnknownSymbolError(key, close) from None

    def resolve(self, symbols: Iterable[str]) -> list[str]:
        """Upper-case and validate user-supplied symbols, keeping their order."""
        if not self.any_symbol:
            return [self.get(s).symbol for s in symbols]
        names = [check_symbol(s.strip().upper(), "symbol") for s in symbols]
        unknown = sorted({n for n in names if n not in self._by_symbol} - _warned)
        if unknown:
            _warned.update(unknown)
            logger.warning(
                f"{', '.join(unknown)}: not in the packaged instrument list (no ICICI code, no "
                "sector); the files source reads them all the same"
            )
        return names

    def isec_code(self, symbol: str) -> str:
        return self.get(symbol).isec_code

    def sector(self, symbol: str) -> str:
        return self.get(symbol).sector

    @property
    def sectors(self) -> dict[str, str]:
        """Every known symbol's sector (what sector-neutral skill groups by)."""
        return {symbol: instrument.sector for symbol, instrument in self._by_symbol.items()}

    def with_codes(self, codes: dict[str, str]) -> Universe:
        """A copy where ``codes`` (NSE symbol → ICICI code) override or add instruments."""
        merged = dict(self._by_symbol)
        for symbol, code in codes.items():
            old = merged.get(symbol)
            merged[symbol] = Instrument(
                symbol=symbol,
                isec_code=code,
                company=old.company if old else "",
                sector=old.sector if old else "Unclassified",
                kind=old.kind if old else "equity",
            )
        return Universe(merged.values(), self.default_symbols, self.any_symbol)


def _reference_rows() -> list[dict[str, str]]:
    text = resources.files("sensequant_assets.reference").joinpath("instruments.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def load_universe(scrip_master: Path | None = None) -> Universe:
    """The shipped universe, optionally extended with every EQ row of a scrip master file."""
    rows = _reference_rows()
    instruments = [
        Instrument(r["symbol"], r["isec_code"], r["company"], r["sector"], r["kind"]) for r in rows
    ]
    default = [r["symbol"] for r in rows if r["nifty100_2026_07"] == "true"] + list(ETF_SYMBOLS)
    universe = Universe(instruments, sorted(default))
    if scrip_master is not None:
        universe = universe.with_codes(scrip_master_codes(scrip_master))
    return universe


def universe_for(settings: Settings) -> Universe:
    """The universe of a configuration: the shipped one plus ``SENSEQUANT_SCRIP_MASTER``'s codes.

    With ``SENSEQUANT_DATA_SOURCE=files`` it accepts any symbol, and its default symbols (the
    partitions, unless ``SENSEQUANT_SYMBOLS`` names them) are those with a file in
    ``SENSEQUANT_FILES_DIR``, the index's file aside; while the folder holds none, the shipped
    defaults, so that the definitions load before the first file arrives.
    """
    universe = load_universe(settings.scrip_master)
    if settings.data_source != "files" or settings.files_dir is None:
        return universe
    from sensequant_assets.sources.files import symbols_in  # it imports this module

    present, refused = symbols_in(settings.files_dir)
    if refused and not set(refused) <= _warned:
        _warned.update(refused)
        logger.warning(
            f"SENSEQUANT_FILES_DIR={settings.files_dir}: ignoring {', '.join(refused)} (a file "
            "is named <SYMBOL>.csv or .parquet, the symbol in upper or lower case)"
        )
    symbols = [s for s in present if s != INDEX_SYMBOL] or universe.default_symbols
    return Universe(universe._by_symbol.values(), symbols, any_symbol=True)


def read_scrip_master(path: Path) -> pd.DataFrame:
    """Read ICICI's ``NSEScripMaster.txt`` (quoted CSV, header names padded with spaces)."""
    try:
        frame = pd.read_csv(path, dtype=str, skipinitialspace=True, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as exc:
        raise ValueError(f"cannot read scrip master {path}: {exc}") from exc
    frame.columns = [c.strip().strip('"') for c in frame.columns]
    needed = {"Token", "ShortName", "Series", "CompanyName", "ExchangeCode"}
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise ValueError(f"scrip master {path} lacks column(s) {missing}")
    return frame


def scrip_master_codes(path: Path) -> dict[str, str]:
    """NSE symbol (``ExchangeCode``) → ICICI code (``ShortName``) for ``Series == EQ`` rows.

    A row whose symbol is not a valid NSE symbol refuses the whole file, naming its line.
    """
    frame = read_scrip_master(path)
    eq = frame[frame["Series"].str.strip() == "EQ"]
    codes = {}
    for row, nse, code in zip(eq.index, eq["ExchangeCode"], eq["ShortName"], strict=True):
        if nse.strip() and code.strip():
            where = f"scrip master {path}: line {row + 2}, column ExchangeCode"
            codes[check_symbol(nse.strip().upper(), where)] = code.strip()
    return codes
