"""Stress windows: named date ranges in which the market fell hard, and the file listing them.

The 2008 crisis, the COVID crash, ...: the list ships with the package as
``reference/stress_windows.csv`` (``name,start,end,nifty50_max_drawdown``); users extend it
with a CSV file of the same columns, named by the setting ``SENSEQUANT_STRESS_WINDOWS_FILE``
and loaded by ``load_stress_windows(path)``. A module of its own because the start-up checks
(:mod:`sensequant_assets.inputs`) validate that file without needing the replay.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

REQUIRED_COLUMNS: tuple[str, ...] = ("name", "start", "end")
DRAWDOWN_COLUMN = "nifty50_max_drawdown"

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class StressWindow:
    """A named stress period, both ends included; the NIFTY 50's max drawdown in it if known."""

    name: str
    start: date
    end: date
    benchmark_max_drawdown: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"stress window name must be a non-empty string, got {self.name!r}")
        for attr in ("start", "end"):
            value = getattr(self, attr)
            if isinstance(value, datetime):  # also pd.Timestamp
                object.__setattr__(self, attr, value.date())
            elif not isinstance(value, date):
                raise ValueError(f"stress window {self.name!r}: {attr} must be a date")
        if self.start > self.end:
            raise ValueError(
                f"stress window {self.name!r}: start {self.start} is after end {self.end}"
            )
        drawdown = self.benchmark_max_drawdown
        if drawdown is not None:
            if isinstance(drawdown, bool) or not isinstance(drawdown, int | float | np.number):
                raise ValueError(
                    f"stress window {self.name!r}: benchmark_max_drawdown must be a number"
                )
            if not -1.0 <= float(drawdown) <= 0.0:
                raise ValueError(
                    f"stress window {self.name!r}: benchmark_max_drawdown must be a negative "
                    f"fraction in [-1, 0] (e.g. -0.384), got {drawdown!r}"
                )
            object.__setattr__(self, "benchmark_max_drawdown", float(drawdown))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "benchmark_max_drawdown": self.benchmark_max_drawdown,
        }


def load_stress_windows(path: Path | None = None) -> list[StressWindow]:
    """The stress windows of a CSV file, in file order.

    Without ``path``, the list shipped with the package (``reference/stress_windows.csv``).
    A user file (the setting ``SENSEQUANT_STRESS_WINDOWS_FILE`` names it) has the same columns:
    ``name``, ``start`` and ``end`` (ISO dates, YYYY-MM-DD, start ≤ end) are required;
    ``nifty50_max_drawdown`` (a negative fraction, e.g. -0.384) is optional and may be blank.
    Other columns are ignored. Names must be unique (ignoring case). Every error names the
    file, the data row (1 = first row after the header), its line and the column.
    """
    if path is None:
        source = "sensequant_assets/reference/stress_windows.csv (packaged)"
        resource = resources.files("sensequant_assets.reference").joinpath("stress_windows.csv")
        text = resource.read_text(encoding="utf-8-sig")
    else:
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ValueError(f"{source}: stress windows file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{source}: cannot read stress windows file: {exc}") from exc
    return _parse_windows(text, source)


def _parse_windows(text: str, source: str) -> list[StressWindow]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [str(c).strip() for c in (reader.fieldnames or [])]
    if not header:
        raise ValueError(f"{source}: empty file; expected a header {','.join(REQUIRED_COLUMNS)}")
    reader.fieldnames = header
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{source}: missing required column(s) {missing}; header has {header} "
            f"(expected name,start,end[,{DRAWDOWN_COLUMN}])"
        )
    windows: list[StressWindow] = []
    seen: dict[str, int] = {}
    for number, record in enumerate(reader, start=1):
        line = reader.line_num

        def where(column: str, number: int = number, line: int = line) -> str:
            return f"{source}: row {number} (line {line}), column '{column}'"

        if None in record:
            raise ValueError(f"{source}: row {number} (line {line}) has more fields than header")
        values = {k: (v or "").strip() for k, v in record.items()}
        if not any(values.values()):
            continue  # a blank line
        name = values["name"]
        if not name:
            raise ValueError(f"{where('name')}: empty name")
        if name.casefold() in seen:
            raise ValueError(
                f"{where('name')}: duplicate window name {name!r} (first on row "
                f"{seen[name.casefold()]})"
            )
        seen[name.casefold()] = number
        bounds = {
            column: _parse_iso_date(values[column], where(column)) for column in ("start", "end")
        }
        if bounds["start"] > bounds["end"]:
            raise ValueError(
                f"{where('end')}: end {bounds['end']} is before start {bounds['start']}"
            )
        drawdown = _parse_drawdown(values.get(DRAWDOWN_COLUMN, ""), where(DRAWDOWN_COLUMN))
        windows.append(StressWindow(name, bounds["start"], bounds["end"], drawdown))
    if not windows:
        raise ValueError(f"{source}: no stress windows defined (only a header)")
    return windows


def _parse_iso_date(text: str, where: str) -> date:
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"{where}: {text!r} is not an ISO date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {text!r} is not a valid date ({exc})") from None


def _parse_drawdown(text: str, where: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value) or not -1.0 <= value <= 0.0:
        raise ValueError(
            f"{where}: {text!r} must be a negative fraction in [-1, 0] (e.g. -0.384 for −38.4%)"
        )
    return value
