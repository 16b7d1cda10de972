"""What a data-quality rule reports: findings, a symbol's report, the error refusing a batch."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ERROR = "error"
CORRECTION = "correction"
WARNING = "warning"

_MAX_LISTED = 10


@dataclass(frozen=True)
class Finding:
    """One rule violation; ``message`` is self-contained (symbol, date, column, value)."""

    rule: str
    severity: str
    symbol: str
    date: dt.date | None
    column: str | None
    message: str
    #: For a suspected split: the ``symbol,ex_date,kind,ratio`` line that would adjust it.
    corporate_action: str | None = None


@dataclass
class QualityReport:
    """What ``validate_ohlcv`` saw and did for one symbol."""

    symbol: str
    rows_received: int
    rows_kept: int
    findings: list[Finding] = field(default_factory=list)

    def of(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule == rule]

    def _severity(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def errors(self) -> list[Finding]:
        return self._severity(ERROR)

    @property
    def corrections(self) -> list[Finding]:
        return self._severity(CORRECTION)

    @property
    def warnings(self) -> list[Finding]:
        return self._severity(WARNING)

    def summary(self) -> dict[str, int]:
        """Number of findings per rule, for metadata and logs."""
        return dict(Counter(f.rule for f in self.findings))


class DataQualityError(ValueError):
    """Raised when raw rows break a hard rule; nothing from the batch may be stored."""

    def __init__(self, report: QualityReport):
        self.report = report
        self.findings = report.errors
        shown = [f"  - {f.message}" for f in self.findings[:_MAX_LISTED]]
        hidden = len(self.findings) - len(shown)
        if hidden:
            shown.append(f"  ... and {hidden} more")
        super().__init__(
            f"{report.symbol}: {len(self.findings)} data-quality error(s) in "
            f"{report.rows_received} received row(s):\n" + "\n".join(shown)
        )

    def __reduce__(self) -> tuple[type[DataQualityError], tuple[QualityReport]]:
        # Rebuild from the report when pickled (e.g. across process boundaries).
        return (type(self), (self.report,))


class Reporter:
    """Builds findings with uniform, greppable messages."""

    def __init__(self, symbol: str, origin: str):
        self.symbol = symbol
        self.origin = origin
        self.findings: list[Finding] = []

    def add(
        self,
        rule: str,
        severity: str,
        day: dt.date | None,
        column: str | None,
        text: str,
        corporate_action: str | None = None,
    ) -> None:
        where = " ".join(
            part
            for part in (self.symbol, day.isoformat() if day else None, column and f"[{column}]")
            if part
        )
        source = f" (from {self.origin})" if self.origin else ""
        message = f"{where}: {text}{source}"
        self.findings.append(
            Finding(rule, severity, self.symbol, day, column, message, corporate_action)
        )


def as_date(value: np.datetime64) -> dt.date:
    return pd.Timestamp(value).date()


def fmt(value: float) -> str:
    return f"{value:g}"
