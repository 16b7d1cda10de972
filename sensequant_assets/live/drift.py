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

Those fixed thresholds are floors. A window's rows are not independent draws: over 20 sessions
every symbol's volatility, trend gaps and MACD move with the one market, so most raw features
of an unchanged market leave the pooled training law by far more than 0.25. On the synthetic
NIFTY 100 (``bench/bench_drift.py``, seeds 3, 11, 23) the fixed thresholds flag every
20-session window of the training period itself and every live window of the same law (47-66
of 66 at ERROR). So :func:`calibrate` raises each column's limits to what the training period's
own consecutive windows reached, each against the law of the others (:class:`Limits`): a
live window is flagged when it departs from the training law further than any training window
did. Then no live window of 2023-09 to 2024-12 warns or errs, and a volume feed switched to
thousands is an ERROR on ``volume_z_20`` alone. Features whose level swings with the market are
judged only against breaks beyond anything the training years held; ``volume_z_20`` and the
score, which the per-day ranking keeps stable, keep the fixed thresholds.

A short training period holds too few regimes to bound a feature: trained from mid-2021 (17
windows), 11 of 66 live windows of seed 3 were still ERRORs, on the volatility features alone
(``atr_14_rel``, ``realized_vol_20``: a calmer or wilder market than any of the 17); from 2023
(2 windows), 29 of 66 of seed 11, on columns whose two windows had stayed under the fixed
thresholds. So limits calibrated on fewer than :data:`MIN_CALIBRATION_WINDOWS` windows are
provisional: the column warns but never errs, and cannot demote a model. The price: such a
reference reports a unit change as a WARN.

Every saved student carries its :class:`DriftReference`
(``training.student_files.save_student``), so the approval that binds the model binds the law it
is judged against too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

BINS = 10
WINDOW_SESSIONS = 20
#: Fewer live values than this in a column are too few to tell drift from noise.
MIN_ROWS = 200
#: Limits calibrated on fewer training windows than this cap the column at WARN (``bench_drift``).
MIN_CALIBRATION_WINDOWS = 20
PSI_WARN, PSI_ERROR = 0.1, 0.25
KS_WARN, KS_ERROR = 0.1, 0.2
#: A bin's share is floored here before the logarithm: an empty live bin is a large, finite PSI.
SHARE_FLOOR = 1e-4
Severity = Literal["ok", "warn", "error"]
SCORE = "score"
"""The score's column in a reference and a window: P(up) − P(down)."""
REFERENCE_VERSION = 1
_RANK: Mapping[str, int] = {"ok": 0, "warn": 1, "error": 2}


@dataclass(frozen=True)
class Limits:
    """Where a column's PSI and KS turn WARN and ERROR: the fixed thresholds unless
    :meth:`calibrated` raised them on ``windows`` training windows."""

    psi_warn: float = PSI_WARN
    psi_error: float = PSI_ERROR
    ks_warn: float = KS_WARN
    ks_error: float = KS_ERROR
    windows: int | None = None
    """The training windows they were calibrated on; None for the fixed thresholds as such."""

    @classmethod
    def calibrated(cls, psis: Sequence[float], kss: Sequence[float]) -> Limits:
        """Limits no training window (its ``psis`` and ``kss``) reaches: the PSI thresholds
        scaled together until WARN is the largest training PSI, the KS WARN raised to the
        largest training KS with ERROR 0.1 above it (at most 1, so it can still fire)."""
        scale = max(1.0, max(psis, default=0.0) / PSI_WARN)
        ks_warn = max(KS_WARN, max(kss, default=0.0))
        ks_error = min(1.0, KS_ERROR + (ks_warn - KS_WARN))
        return cls(PSI_WARN * scale, PSI_ERROR * scale, ks_warn, ks_error, len(psis))

    @property
    def provisional(self) -> bool:
        """Calibrated on fewer than :data:`MIN_CALIBRATION_WINDOWS` windows: so few regimes
        cannot bound how far the column swings with the market (nor show that it does not),
        so it warns, never errs."""
        return self.windows is not None and self.windows < MIN_CALIBRATION_WINDOWS

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi": [self.psi_warn, self.psi_error],
            "ks": [self.ks_warn, self.ks_error],
            "windows": self.windows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limits:
        """A stored column's limits; one stored before ``windows`` was kept reads as 0 windows,
        so it is provisional: it was calibrated in-sample (see :func:`calibrate`)."""
        return cls(*data["psi"], *data["ks"], data.get("windows", 0))


@dataclass(frozen=True)
class ColumnProfile:
    """A column's training law: interior decile edges and each bin's share of training rows,
    plus a sorted subsample for the KS statistic, and its :class:`Limits`."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    sample: tuple[float, ...]
    limits: Limits = Limits()

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "shares": list(self.shares),
            "sample": list(self.sample),
            "limits": self.limits.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        return cls(
            tuple(data["edges"]),
            tuple(data["shares"]),
            tuple(data["sample"]),
            Limits.from_dict(data["limits"]),
        )


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


def calibrate(
    profiles: Mapping[str, ColumnProfile],
    frame: pd.DataFrame,
    window_sessions: int = WINDOW_SESSIONS,
    min_rows: int = MIN_ROWS,
) -> dict[str, ColumnProfile]:
    """``profiles`` of ``frame``'s columns with :meth:`Limits.calibrated` limits: the PSI and KS
    of each consecutive ``window_sessions``-date window of ``frame`` (a ``date`` column; the
    last, partial one dropped) against the law of the *other* windows, on the profile's bins.

    Leaving the window out matters: a live window is not part of the training law, but a
    training window is, by 1/k of it, and with few windows that hides most of its departure
    (with two, each window is half the law it is compared with). Windows with fewer than
    ``min_rows`` values are skipped, as a live window would be; with fewer than two left, a
    column keeps the fixed thresholds."""
    dates = pd.to_datetime(frame["date"]).to_numpy()
    distinct = np.unique(dates)
    block = np.searchsorted(distinct, dates) // window_sessions
    full = len(distinct) // window_sessions
    order = np.argsort(block, kind="stable")
    in_full = order[block[order] < full]
    bounds = np.searchsorted(block[in_full], np.arange(1, full))
    calibrated = {}
    for name, profile in profiles.items():
        pieces = np.split(frame[name].to_numpy(dtype=np.float64)[in_full], bounds)
        windows = [w[np.isfinite(w)] for w in pieces]
        windows = [w for w in windows if w.size >= min_rows]
        psis, kss = _left_out_departures(profile, windows)
        calibrated[name] = replace(profile, limits=Limits.calibrated(psis, kss))
    return calibrated


def _left_out_departures(
    profile: ColumnProfile, windows: Sequence[np.ndarray]
) -> tuple[list[float], list[float]]:
    """Each window's PSI (on the profile's bins) and KS against the pooled other windows;
    nothing for fewer than two windows, which have no other law to be compared with."""
    if len(windows) < 2:
        return [], []
    edges = np.asarray(profile.edges)
    counts = np.array([_counts(w, edges) for w in windows])
    total = counts.sum(axis=0)
    pooled = np.sort(np.concatenate(windows))
    sample = np.asarray(profile.sample)
    psis, kss = [], []
    for b, window in enumerate(windows):
        others = total - counts[b]
        psis.append(_psi_of_shares(counts[b] / counts[b].sum(), others / others.sum()))
        own = np.sort(window)
        grid = np.concatenate([sample, own])
        in_own = np.searchsorted(own, grid, side="right")
        in_others = np.searchsorted(pooled, grid, side="right") - in_own
        gap = in_own / own.size - in_others / (pooled.size - own.size)
        kss.append(float(np.max(np.abs(gap))))
    return psis, kss


@dataclass(frozen=True)
class DriftReference:
    """The student's training law: each model feature's profile over its training rows, and
    the profile of its score on those rows."""

    features: Mapping[str, ColumnProfile]
    score: ColumnProfile
    rows: int

    @classmethod
    def of(cls, rows: pd.DataFrame, features: Sequence[str], scores: np.ndarray) -> DriftReference:
        """The reference of the training ``rows`` (``date`` and the raw features) and the
        student's ``scores`` on them, row for row, calibrated on the rows' own windows."""
        frame = rows[["date", *features]].assign(**{SCORE: np.asarray(scores)})
        profiles = calibrate(reference_profile(frame, [*features, SCORE]), frame)
        score = profiles.pop(SCORE)
        return cls(profiles, score, len(rows))

    def to_json(self) -> bytes:
        data = {
            "format_version": REFERENCE_VERSION,
            "rows": self.rows,
            "features": {name: p.to_dict() for name, p in self.features.items()},
            SCORE: self.score.to_dict(),
        }
        return json.dumps(data).encode()

    @classmethod
    def from_json(cls, data: bytes) -> DriftReference:
        raw = json.loads(data)
        features = {name: ColumnProfile.from_dict(p) for name, p in raw["features"].items()}
        return cls(features, ColumnProfile.from_dict(raw[SCORE]), int(raw["rows"]))


def psi(profile: ColumnProfile, live: np.ndarray) -> float:
    """Population stability index of ``live`` against the profile's bins."""
    values = np.asarray(live, dtype=np.float64)
    values = values[np.isfinite(values)]
    return _psi_of_shares(_shares(values, np.asarray(profile.edges)), np.asarray(profile.shares))


def _psi_of_shares(actual: np.ndarray, expected: np.ndarray) -> float:
    """The PSI of bin shares ``actual`` against ``expected``, each floored at SHARE_FLOOR."""
    actual, expected = np.maximum(actual, SHARE_FLOOR), np.maximum(expected, SHARE_FLOOR)
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


def severity(psi_value: float, ks_value: float, limits: Limits = Limits()) -> Severity:
    """ERROR, WARN or ok against ``limits``; a provisional column's ERROR is a WARN."""
    if psi_value >= limits.psi_error or ks_value >= limits.ks_error:
        return "warn" if limits.provisional else "error"
    if psi_value >= limits.psi_warn or ks_value >= limits.ks_warn:
        return "warn"
    return "ok"


def drift_report(
    profiles: Mapping[str, ColumnProfile], live: pd.DataFrame, min_rows: int = MIN_ROWS
) -> dict[str, Any]:
    """PSI, KS and severity (against the column's limits) per profiled column of ``live`` (the
    window's rows), the worst severity, and the columns at WARN and ERROR. With fewer than
    ``min_rows`` live values a column is ``insufficient`` (listed as such): too few to tell
    drift from noise."""
    columns: dict[str, dict[str, Any]] = {}
    for name, profile in profiles.items():
        values = live[name].to_numpy(dtype=np.float64) if name in live else np.empty(0)
        n = int(np.isfinite(values).sum())
        if n < min_rows:
            columns[name] = {"rows": n, "psi": None, "ks": None, "severity": "insufficient"}
            continue
        p, k = psi(profile, values), ks_statistic(profile, values)
        columns[name] = {
            "rows": n,
            "psi": p,
            "ks": k,
            "severity": severity(p, k, profile.limits),
            "limits": profile.limits.to_dict(),
            "provisional": profile.limits.provisional,
        }
    flagged = {
        s: sorted(c for c, v in columns.items() if v["severity"] == s) for s in ("warn", "error")
    }
    worst: Severity = "error" if flagged["error"] else ("warn" if flagged["warn"] else "ok")
    return {
        "columns": columns,
        "worst": worst,
        "warn": flagged["warn"],
        "error": flagged["error"],
        "insufficient": sorted(c for c, v in columns.items() if v["severity"] == "insufficient"),
        "rows": len(live),
        "min_rows": min_rows,
        "thresholds": {"psi": [PSI_WARN, PSI_ERROR], "ks": [KS_WARN, KS_ERROR], "bins": BINS},
    }


def window_drift(
    reference: DriftReference, window: pd.DataFrame, min_rows: int = MIN_ROWS
) -> dict[str, dict[str, Any]]:
    """The ``features`` and ``score`` reports of one window's rows (``date``, the model's
    features, ``score``; none at all when nothing could be scored), each with the window's
    first and last date."""
    span = []
    if len(window):
        dates = pd.to_datetime(window["date"])
        span = [dates.min().date().isoformat(), dates.max().date().isoformat()]
    reports = {
        "features": drift_report(reference.features, window, min_rows),
        SCORE: drift_report({SCORE: reference.score}, window, min_rows),
    }
    return {kind: {**report, "window": span} for kind, report in reports.items()}


def judged(report: Mapping[str, Any]) -> bool:
    """Whether any column had enough rows to be compared at all."""
    return len(report["insufficient"]) < len(report["columns"])


def worst_session(
    reports: Mapping[dt.date, Mapping[str, Any]],
) -> tuple[dt.date, Mapping[str, Any]]:
    """The session whose window drifted most (the latest of equals): what a run of several
    sessions reports."""
    return max(reports.items(), key=lambda item: (_RANK[item[1]["worst"]], item[0]))


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return _counts(values, edges) / max(values.size, 1)


def session_severities(
    by_check: Mapping[str, Sequence[Mapping[str, str]]],
) -> dict[dt.date, str]:
    """Each session's drift severity from stored check evaluations: ``by_check`` maps each
    drift check to its evaluations' ``{session: severity}`` maps, oldest first. Within a check
    a later evaluation of a session replaces an earlier one (a re-scored day); across checks
    a session takes the worst. "insufficient" (too few rows to judge) counts as "ok"."""
    per_check: list[dict[dt.date, str]] = []
    for evaluations in by_check.values():
        latest: dict[dt.date, str] = {}
        for by_session in evaluations:
            latest |= {dt.date.fromisoformat(day): found for day, found in by_session.items()}
        per_check.append(latest)
    days = sorted(set().union(*per_check)) if per_check else []
    return {day: worst_severity(c[day] for c in per_check if day in c) for day in days}


def worst_severity(severities: Iterable[str]) -> str:
    """The worst of ``severities`` ("ok" for none; "insufficient" ranks as "ok")."""
    return max(
        ("ok" if s == "insufficient" else s for s in severities), key=_RANK.__getitem__,
        default="ok",
    )  # fmt: skip
