"""Has the live market left the one the student learnt from? PSI and KS per feature and score.

The reference is the student's training rows, summarised once as decile edges per column
(:func:`reference_profile`); live rows are compared against it over a window of sessions, not
one day: with ~100 symbols a day, the PSI of a single session against its own training law is
about (bins − 1) / 100 ≈ 0.09 by sampling noise alone, so a one-day verdict would cry wolf.
Over :data:`WINDOW_SESSIONS` sessions the noise floor falls to about 0.005.

Thresholds follow the usual credit-scoring reading of the PSI (below 0.1 stable, 0.1-0.25 a
shift worth a look, above 0.25 a different population) and the two-sample KS statistic (the
largest gap between the two empirical distribution functions): WARN at PSI ≥ 0.1 or KS ≥ 0.1,
ERROR at PSI ≥ 0.25 or KS ≥ 0.2. The student reads features ranked within each day, so a
shift of a feature's raw level changes nothing it sees; a raw shift still flags a data
problem (a unit change, a stale feed), and the score's own distribution is what moves when the
cross-sectional relations it learnt stop holding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

BINS = 10
WINDOW_SESSIONS = 20
PSI_WARN, PSI_ERROR = 0.1, 0.25
KS_WARN, KS_ERROR = 0.1, 0.2
#: A bin's share is floored here before the logarithm: an empty live bin is a large, finite PSI.
SHARE_FLOOR = 1e-4
Severity = Literal["ok", "warn", "error"]


@dataclass(frozen=True)
class ColumnProfile:
    """A column's training law: interior decile edges and each bin's share of training rows,
    plus a sorted subsample for the KS statistic."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    sample: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "shares": list(self.shares), "sample": list(self.sample)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        return cls(tuple(data["edges"]), tuple(data["shares"]), tuple(data["sample"]))


def column_profile(values: np.ndarray, sample_size: int = 2_000) -> ColumnProfile:
    """The profile of a training column (NaNs dropped); ``sample_size`` evenly spaced order
    statistics keep the KS reference small and deterministic."""
    clean = np.sort(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
    if clean.size == 0:
        raise ValueError("a drift reference needs at least one finite training value")
    edges = np.unique(np.quantile(clean, np.linspace(0, 1, BINS + 1)[1:-1]))
    shares = _shares(clean, edges)
    picks = np.linspace(0, clean.size - 1, min(sample_size, clean.size)).round().astype(int)
    return ColumnProfile(
        tuple(edges.tolist()), tuple(shares.tolist()), tuple(clean[picks].tolist())
    )


def reference_profile(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, ColumnProfile]:
    """Profiles of ``columns`` of the training rows."""
    return {c: column_profile(frame[c].to_numpy(dtype=np.float64)) for c in columns}


def psi(profile: ColumnProfile, live: np.ndarray) -> float:
    """Population stability index of ``live`` against the profile's bins."""
    values = np.asarray(live, dtype=np.float64)
    values = values[np.isfinite(values)]
    expected = np.maximum(np.asarray(profile.shares), SHARE_FLOOR)
    actual = np.maximum(_shares(values, np.asarray(profile.edges)), SHARE_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_statistic(profile: ColumnProfile, live: np.ndarray) -> float:
    """The largest gap between the empirical distribution functions of the reference sample
    and ``live``."""
    reference = np.asarray(profile.sample)
    values = np.sort(np.asarray(live, dtype=np.float64)[np.isfinite(live)])
    grid = np.concatenate([reference, values])
    ref_cdf = np.searchsorted(reference, grid, side="right") / reference.size
    live_cdf = np.searchsorted(values, grid, side="right") / values.size
    return float(np.max(np.abs(ref_cdf - live_cdf)))


def severity(psi_value: float, ks_value: float) -> Severity:
    if psi_value >= PSI_ERROR or ks_value >= KS_ERROR:
        return "error"
    if psi_value >= PSI_WARN or ks_value >= KS_WARN:
        return "warn"
    return "ok"


def drift_report(
    profiles: Mapping[str, ColumnProfile], live: pd.DataFrame, min_rows: int = 200
) -> dict[str, Any]:
    """PSI, KS and severity per profiled column of ``live`` (the window's rows), the worst
    severity, and the columns at WARN and ERROR. With fewer than ``min_rows`` live values a
    column is ``insufficient``: too few to tell drift from noise."""
    columns: dict[str, dict[str, Any]] = {}
    for name, profile in profiles.items():
        values = live[name].to_numpy(dtype=np.float64) if name in live else np.empty(0)
        n = int(np.isfinite(values).sum())
        if n < min_rows:
            columns[name] = {"rows": n, "psi": None, "ks": None, "severity": "insufficient"}
            continue
        p, k = psi(profile, values), ks_statistic(profile, values)
        columns[name] = {"rows": n, "psi": p, "ks": k, "severity": severity(p, k)}
    flagged = {
        s: sorted(c for c, v in columns.items() if v["severity"] == s) for s in ("warn", "error")
    }
    worst: Severity = "error" if flagged["error"] else ("warn" if flagged["warn"] else "ok")
    return {
        "columns": columns,
        "worst": worst,
        "warn": flagged["warn"],
        "error": flagged["error"],
        "thresholds": {"psi": [PSI_WARN, PSI_ERROR], "ks": [KS_WARN, KS_ERROR], "bins": BINS},
    }


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts / max(values.size, 1)
