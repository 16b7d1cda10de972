"""Drift of live features against the student's training law: quiet on the same law over a
window, loud on a shift or a unit change, silent (insufficient) on too few rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from scipy import stats

from sensequant_assets.live.drift import (
    MIN_CALIBRATION_WINDOWS,
    WINDOW_SESSIONS,
    ColumnProfile,
    Limits,
    calibrate,
    column_profile,
    drift_report,
    ks_statistic,
    psi,
    reference_profile,
    session_severities,
    severity,
    worst_severity,
)

RNG = np.random.default_rng(11)
TRAINING = pd.DataFrame(
    {"ret": RNG.standard_t(4, 30_000) * 0.01, "vol": RNG.gamma(4, 0.05, 30_000)}
)
PROFILES = reference_profile(TRAINING, ["ret", "vol"])
WINDOW_ROWS = WINDOW_SESSIONS * 100  # a window of ~100 symbols a day


def live(ret: np.ndarray, vol: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"ret": ret, "vol": vol})


def test_the_same_law_over_a_window_is_rarely_flagged() -> None:
    warned = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        window = live(rng.standard_t(4, WINDOW_ROWS) * 0.01, rng.gamma(4, 0.05, WINDOW_ROWS))
        warned += drift_report(PROFILES, window)["worst"] != "ok"
    assert warned <= 4  # ≤ 2% of windows of an unchanged market


def test_a_shift_and_a_unit_change_are_errors() -> None:
    rng = np.random.default_rng(5)
    shifted = live(rng.standard_t(4, WINDOW_ROWS) * 0.01 + 0.01, rng.gamma(4, 0.05, WINDOW_ROWS))
    report = drift_report(PROFILES, shifted)
    assert report["error"] == ["ret"] and report["worst"] == "error"
    assert report["columns"]["vol"]["severity"] == "ok"
    paise = live(rng.standard_t(4, WINDOW_ROWS) * 0.01, rng.gamma(4, 0.05, WINDOW_ROWS) * 100)
    assert drift_report(PROFILES, paise)["error"] == ["vol"]


def test_one_day_is_too_few_rows_to_judge() -> None:
    rng = np.random.default_rng(6)
    day = live(rng.standard_t(4, 100) * 0.01 + 0.05, rng.gamma(4, 0.05, 100))
    report = drift_report(PROFILES, day)
    assert {c["severity"] for c in report["columns"].values()} == {"insufficient"}
    assert report["worst"] == "ok" and report["columns"]["ret"]["psi"] is None


def test_an_empty_live_bin_gives_a_large_finite_psi() -> None:
    profile = column_profile(np.arange(1_000.0))
    value = psi(profile, np.full(500, 10.0))  # everything in the first bin
    assert np.isfinite(value) and value > 1.0
    assert psi(profile, np.arange(1_000.0)) < 1e-9


def test_ks_is_the_two_sample_statistic_against_the_reference_sample() -> None:
    profile = PROFILES["ret"]
    values = np.random.default_rng(8).standard_t(4, 700) * 0.012
    expected = stats.ks_2samp(np.asarray(profile.sample), values).statistic
    assert abs(ks_statistic(profile, values) - expected) < 1e-12


def test_a_profile_survives_json() -> None:
    profile = PROFILES["vol"]
    assert ColumnProfile.from_dict(profile.to_dict()) == profile
    assert len(profile.shares) == len(profile.edges) + 1 and abs(sum(profile.shares) - 1) < 1e-12


def test_stored_verdicts_combine_to_one_severity_per_session() -> None:
    """A re-scored session's newer verdict replaces its older one within a check; the two
    checks combine to their worst; "insufficient" counts as ok."""
    features = [{"2024-05-02": "error", "2024-05-03": "ok"}, {"2024-05-02": "warn"}]
    score = [{"2024-05-02": "ok", "2024-05-03": "insufficient", "2024-05-06": "error"}]
    merged = session_severities({"feature_drift": features, "score_drift": score})
    assert merged == {
        dt.date(2024, 5, 2): "warn",
        dt.date(2024, 5, 3): "ok",
        dt.date(2024, 5, 6): "error",
    }
    assert worst_severity([]) == "ok" and worst_severity(["insufficient", "warn"]) == "warn"


def _regime_windows(rng: np.random.Generator, k: int, rows: int = 500) -> list[np.ndarray]:
    """``k`` 20-session windows of a feature whose level moves with the market: each window
    has its own mean, drawn once (the serial dependence a live window shares)."""
    return [rng.normal(level, 1.0, rows) for level in rng.normal(0.0, 0.3, k)]


def _by_window(windows: list[np.ndarray]) -> pd.DataFrame:
    per_day = len(windows[0]) // WINDOW_SESSIONS
    days = pd.bdate_range("2020-01-01", periods=WINDOW_SESSIONS * len(windows))
    return pd.DataFrame({"date": np.repeat(days, per_day), "x": np.concatenate(windows)})


def test_calibration_leaves_each_window_out_so_a_new_regime_exceeds_it_at_one_in_k_plus_1() -> None:
    """A live window is not part of the training law; a training window is. Against the others
    alone, each of 8 training windows is as novel as a live one, so a live window of the same
    law passes the WARN limit (their largest PSI) with the exchangeable odds 1/(k + 1) ≈ 11%.
    Measured in-sample, as before, the limit is too low and 15% warn."""
    k, loo, in_sample = 8, [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        training = _regime_windows(rng, k)
        frame = _by_window(training)
        profile = calibrate(reference_profile(frame, ["x"]), frame)["x"]
        own = Limits.calibrated([psi(profile, w) for w in training], [0.0])
        lives = [psi(profile, w) for w in _regime_windows(rng, 100)]
        loo += [p >= profile.limits.psi_warn for p in lives]
        in_sample += [p >= own.psi_warn for p in lives]
        assert profile.limits.windows == k
    assert 0.08 <= np.mean(loo) <= 0.14
    assert np.mean(in_sample) >= np.mean(loo) + 0.03


def test_limits_calibrated_on_few_windows_warn_but_never_err() -> None:
    """Fewer than 20 training windows cannot bound how far a column swings with the market,
    nor show that it stays put, so a break is a WARN; with 20 it errs."""
    few = Limits.calibrated([0.3] * (MIN_CALIBRATION_WINDOWS - 1), [0.15])
    stable_but_few = Limits.calibrated([0.05] * 3, [0.05])
    enough = Limits.calibrated([0.3] * MIN_CALIBRATION_WINDOWS, [0.15])
    assert few.provisional and stable_but_few.provisional and not enough.provisional
    assert severity(5.0, 0.9, few) == "warn" and severity(5.0, 0.9, stable_but_few) == "warn"
    assert severity(5.0, 0.9, enough) == "error"
    assert severity(0.0, 0.0, few) == "ok"
    assert severity(5.0, 0.9, Limits()) == "error"  # the fixed thresholds, uncalibrated
    assert Limits.from_dict(enough.to_dict()) == enough
    # stored before the count was kept: calibrated in-sample, so provisional
    assert Limits.from_dict({"psi": [0.3, 0.75], "ks": [0.15, 0.25]}).provisional
