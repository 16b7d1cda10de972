"""What a book pays and what idle capital earns: NSE trading costs, the carry of a short, and
the per-session risk-free rate.

Every book charges the same figures (the backtest, the rule optimizer, the stress replay, the
skill tests' cost sensitivity), so they are defined once, apart from the accounting that
applies them (:mod:`.backtest`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TRADING_DAYS_PER_YEAR = 252
DELIVERY_ROUND_TRIP_BP = 24.0
INTRADAY_ROUND_TRIP_BP = 8.0
DEFAULT_SLIPPAGE_BP = 5.0


@dataclass(frozen=True)
class CostModel:
    """Trading costs in basis points: the exchange/tax round trip plus slippage per side."""

    round_trip_bp: float = DELIVERY_ROUND_TRIP_BP
    slippage_bp: float = DEFAULT_SLIPPAGE_BP
    short_cost_bp_annual: float | None = None
    """Annual cost of holding a short (stock-borrow fee or futures carry); None: no shorts."""

    def __post_init__(self) -> None:
        names = ["round_trip_bp", "slippage_bp"]
        if self.short_cost_bp_annual is not None:
            names.append("short_cost_bp_annual")
        for name in names:
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 <= float(value) < math.inf:
                raise ValueError(
                    f"{name} must be a finite number ≥ 0 (basis points), got {value!r}"
                )

    @property
    def shorts_allowed(self) -> bool:
        return self.short_cost_bp_annual is not None

    @property
    def short_rate(self) -> float:
        """Fraction of the short exposure paid per session (0 without a short cost model)."""
        annual = float(self.short_cost_bp_annual or 0.0) / 1e4
        return annual / TRADING_DAYS_PER_YEAR

    @property
    def per_side_rate(self) -> float:
        """Fraction of the traded amount paid per side: (round_trip_bp/2 + slippage_bp)/1e4."""
        return (float(self.round_trip_bp) / 2.0 + float(self.slippage_bp)) / 1e4

    def to_dict(self) -> dict[str, float]:
        return {
            "round_trip_bp": float(self.round_trip_bp),
            "slippage_bp": float(self.slippage_bp),
            "per_side_rate": self.per_side_rate,
            "short_cost_bp_annual": self.short_cost_bp_annual,
        }

    @classmethod
    def delivery(cls, slippage_bp: float = DEFAULT_SLIPPAGE_BP) -> CostModel:
        """NSE delivery equity, zero brokerage: ≈ 24 bp round trip (STT, stamp, fees, GST)."""
        return cls(DELIVERY_ROUND_TRIP_BP, slippage_bp)

    @classmethod
    def intraday(cls, slippage_bp: float = DEFAULT_SLIPPAGE_BP) -> CostModel:
        """NSE intraday equity: ≈ 8 bp round trip."""
        return cls(INTRADAY_ROUND_TRIP_BP, slippage_bp)


def periodic_risk_free(risk_free_annual: float) -> float:
    """Per-session rate equivalent to an annual one: (1 + rf)^(1/252) − 1."""
    if not _is_real(risk_free_annual) or not -1.0 < float(risk_free_annual) < math.inf:
        raise ValueError(f"risk_free_annual must be a finite rate > −1, got {risk_free_annual!r}")
    return (1.0 + float(risk_free_annual)) ** (1.0 / TRADING_DAYS_PER_YEAR) - 1.0


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
