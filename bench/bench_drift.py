"""How often the drift checks flag a market that did not change, with fixed and calibrated limits.

    .venv/bin/python bench/bench_drift.py [--seeds 3,11] [--symbols 100] [--start 2019-01-01]

For each seed the synthetic source's first ``--symbols`` default equities from ``--start`` to
2024 train a student (``train_student``, 100 rounds, absolute labels) on the rows up to
2023-06-30; its :class:`~sensequant_assets.live.drift.DriftReference` (its calibrated WARN
limits printed) is then compared with

- ``training``: every consecutive 20-session window of its own training rows;
- ``live``: the window ``score_day`` gives every 5th session from 2023-09-01 to 2024-12-31
  (the same law: the source is stationary outside its stress windows, none of them in 2024);
- ``volume/1000``: the last live window after the volume feed switched to thousands of shares
  10 sessions before its end,

under the fixed thresholds alone (PSI 0.1/0.25, KS 0.1/0.2) and under the reference's
calibrated limits. It prints the share of windows whose worst feature (and score) severity is
WARN or ERROR, and what the volume break gives. No Dagster: about a minute per seed.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.features import LabelSpec, feature_columns
from sensequant_assets.live.drift import (
    WINDOW_SESSIONS,
    DriftReference,
    Limits,
    drift_report,
    window_drift,
)
from sensequant_assets.live.signals import history_start, score_day
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.training.distillation import student_samples
from sensequant_assets.training.student import StudentConfig, train_student
from sensequant_assets.universe import load_universe

TRAIN_END, LIVE, END = dt.date(2023, 6, 30), dt.date(2023, 9, 1), dt.date(2024, 12, 31)
CALENDAR = TradingCalendar()


def fixed(reference: DriftReference) -> DriftReference:
    """The same profiles judged against the fixed thresholds alone."""
    features = {name: replace(p, limits=Limits()) for name, p in reference.features.items()}
    return DriftReference(features, replace(reference.score, limits=Limits()), reference.rows)


def flagged(reports: list[dict[str, dict]], kind: str) -> str:
    worst = pd.Series([r[kind]["worst"] for r in reports])
    return f"{(worst != 'ok').mean():.0%} ({(worst == 'error').sum()} ERROR of {len(worst)})"


def measure(seed: int, n_symbols: int, start: dt.date) -> None:
    universe = load_universe()
    symbols = list(universe.default_symbols[:n_symbols])
    source = SyntheticSource(universe, CALENDAR, seed=seed, signal_ic=0.05)
    bars = pd.concat([source.fetch(s, start, END).assign(symbol=s) for s in symbols])
    dates = pd.to_datetime(bars["date"])
    samples = student_samples(
        bars[dates <= pd.Timestamp(TRAIN_END)], LabelSpec(reference="absolute")
    )
    names = list(feature_columns())
    config = StudentConfig(lgbm_params={"num_iterations": 100})
    result = train_student(samples, None, names, config)
    metadata = {"feature_names": names, "config": config.to_dict()}
    calibrated = result.drift_reference
    references = {"fixed": fixed(calibrated), "calibrated": calibrated}

    train = samples.iloc[result.train_idx]
    block = np.searchsorted(np.unique(train["date"]), train["date"]) // WINDOW_SESSIONS
    blocks = [train[block == b] for b in range(block.max())]  # the last, partial one dropped

    def window(day: dt.date, history: pd.DataFrame) -> pd.DataFrame:
        first, last = pd.Timestamp(history_start(CALENDAR, day)), pd.Timestamp(day)
        span = pd.to_datetime(history["date"])
        rows = history[(span >= first) & (span <= last)]
        return score_day(result.booster, metadata, "bench", rows, day, symbols).window

    days = CALENDAR.sessions(LIVE, END)[::5]
    live = [window(day, bars) for day in days]
    since = dates >= pd.Timestamp(CALENDAR.offset(days[-1], -10))
    switched = bars.assign(volume=bars["volume"].where(~since, bars["volume"] / 1_000))
    broken = window(days[-1], switched)
    limits = {name: p.limits for name, p in calibrated.features.items()}
    provisional = sorted(n for n, x in limits.items() if x.provisional)
    print(
        f"seed {seed}, {n_symbols} symbols from {start}, {len(samples)} samples, "
        f"{max(x.windows for x in limits.values())} calibration windows, "
        f"{len(provisional)} provisional column(s) (WARN at most)"
    )
    print("  WARN limits PSI/KS:", ", ".join(f"{n} {x.psi_warn:.2f}/{x.ks_warn:.2f}"
                                             for n, x in limits.items()))  # fmt: skip
    for label, reference in references.items():
        training = [{"features": drift_report(reference.features, b)} for b in blocks]
        reports = [window_drift(reference, w) for w in live]
        volume = window_drift(reference, broken)
        print(
            f"  {label:>10}: training windows {flagged(training, 'features')}; live features "
            f"{flagged(reports, 'features')}, score {flagged(reports, 'score')}; volume/1000 → "
            f"error {volume['features']['error']}, warn {volume['features']['warn']}, "
            f"score {volume['score']['worst']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="3,11")
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2019, 1, 1))
    args = parser.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        measure(seed, args.symbols, args.start)


if __name__ == "__main__":
    main()
