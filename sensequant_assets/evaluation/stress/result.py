"""What a stress-test run returns: one entry per window and the overall verdict.

Its own module between the replay that builds it and the report that writes it, so neither
imports the other; ``to_dict`` is the content of ``stress_summary.json``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.evaluation.stress.scoring import (
    BLACK_SWAN_DRAWDOWN_SHARE,
    BLACK_SWAN_MARKET_DRAWDOWN,
    DRAWDOWN_FLOOR,
    FAILURE_MODE_RULES,
    OVERFIT_MAX_ACCURACY_GAP,
    PASS_MARK,
    REGIME_CHANGE_ACCURACY_DROP,
    RELATIVE_RETURN_SCALE,
    RESILIENCE_FORMULA,
    SHARPE_SCALE,
)

STRATEGIES: tuple[str, ...] = ("student", "buy_and_hold", "sixty_forty", "cash")


@dataclass(frozen=True, eq=False)
class StressResult:
    """Outcome of ``run_stress_tests``.

    ``windows`` holds one JSON-safe dict per window, in the given order (``status``
    "evaluated" or "skipped", ``reason``, ``metrics``, ``classification``, ``score``,
    ``score_components``, ``failure_mode``...). ``daily_returns`` maps an evaluated window's
    name to its daily returns per strategy (columns ``STRATEGIES``, indexed by date) for the
    charts; it is not part of ``to_dict``.
    """

    windows: list[dict[str, Any]]
    overall_score: float | None
    passed: bool
    evaluated: int
    skipped: int
    out_of_stress: dict[str, Any]
    settings: dict[str, Any]
    daily_returns: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the daily series, JSON-safe (no NaN/inf, dates as ISO strings)."""
        return _json_safe(
            {
                "overall_score": self.overall_score,
                "passed": self.passed,
                "pass_mark": PASS_MARK,
                "evaluated": self.evaluated,
                "skipped": self.skipped,
                "resilience_formula": RESILIENCE_FORMULA,
                "failure_mode_rules": list(FAILURE_MODE_RULES),
                "thresholds": {
                    "pass_mark": PASS_MARK,
                    "drawdown_floor": DRAWDOWN_FLOOR,
                    "relative_return_scale": RELATIVE_RETURN_SCALE,
                    "sharpe_scale": SHARPE_SCALE,
                    "black_swan_market_drawdown": BLACK_SWAN_MARKET_DRAWDOWN,
                    "black_swan_drawdown_share": BLACK_SWAN_DRAWDOWN_SHARE,
                    "regime_change_accuracy_drop": REGIME_CHANGE_ACCURACY_DROP,
                    "overfit_max_accuracy_gap": OVERFIT_MAX_ACCURACY_GAP,
                },
                "settings": self.settings,
                "out_of_stress": self.out_of_stress,
                "windows": self.windows,
            }
        )


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, str):
        return value
    return str(value)
