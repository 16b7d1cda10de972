"""Calibrate the synthetic source's planted signal: drift gain g → mean daily rank IC.

    python bench/bench_synthetic_signal.py [--seeds 20] [--check-seeds 10]

Part 1 measures, at each gain of ``GAINS`` over seeds 0..seeds-1 (the same seeds at every
gain, so the curve is smooth), the IC of ``planted_signal`` as ``signal_ics`` defines it: the
default universe's equities, 2022-2024, 7-session forward return in excess of the NIFTY 50.
It prints the ``_IC_TABLE`` literal for ``sources/synthetic_signal.py``. Part 2 builds sources by
``signal_ic`` alone (what users set), on seeds the table never saw, and prints per target the
observable IC (mean, standard deviation and range over seeds), the latent factor's IC and the
5/10/20-session momentum ICs. docs/synthetic.md reports both tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import time

import numpy as np

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.sources.synthetic_signal import _IC_TABLE, MOMENTUM_HORIZONS, signal_ics
from sensequant_assets.universe import Universe, load_universe

START, END = dt.date(2022, 1, 1), dt.date(2024, 12, 31)
GAINS = (0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10)
TARGETS = (0.01, 0.02, 0.03, 0.05, 0.08)
CHECK_SEED_OFFSET = 1000


def _measure(sources: list[SyntheticSource], universe: Universe) -> dict[str, np.ndarray]:
    """Each score's IC per source, one source after another."""
    symbols = [s for s in universe.default_symbols if universe.get(s).kind == "equity"]
    rows = [signal_ics(source, symbols, START, END) for source in sources]
    return {name: np.array([row[name] for row in rows]) for name in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per gain of the table")
    parser.add_argument("--check-seeds", type=int, default=10, help="fresh seeds per target")
    args = parser.parse_args()
    universe, calendar = load_universe(), TradingCalendar()
    started = time.perf_counter()

    print(f"gain -> IC of planted_signal over seeds 0..{args.seeds - 1}")
    table = [(0.0, 0.0)]
    for gain in GAINS:
        sources = [SyntheticSource(universe, calendar, s, gain=gain) for s in range(args.seeds)]
        ics = _measure(sources, universe)
        observable = ics["planted_signal"]
        print(
            f"  g {gain:.3f}  IC {observable.mean():.4f} ± {observable.std(ddof=1):.4f}  "
            f"latent {ics['latent_factor'].mean():.4f}",
            flush=True,
        )
        table.append((gain, round(float(observable.mean()), 4)))
    if any(b[1] <= a[1] for a, b in itertools.pairwise(table)):
        print("  WARNING: IC is not increasing in g; add seeds before using this table")
    print(f"_IC_TABLE = {tuple(table)}")
    if tuple(table) != _IC_TABLE:
        print("(differs from the table in sources/synthetic_signal.py)")

    seeds = range(CHECK_SEED_OFFSET, CHECK_SEED_OFFSET + args.check_seeds)
    momentum = "  ".join(f"mom{h:<2}" for h in MOMENTUM_HORIZONS)
    print(f"\nsignal_ic -> measured on seeds {seeds.start}..{seeds.stop - 1}")
    print(f"  target  observable (sd, min..max)          latent  {momentum}")
    for target in TARGETS:
        sources = [SyntheticSource(universe, calendar, s, signal_ic=target) for s in seeds]
        ics = _measure(sources, universe)
        observable = ics["planted_signal"]
        momenta = "  ".join(f"{ics[f'momentum_{h}'].mean():.3f}" for h in MOMENTUM_HORIZONS)
        print(
            f"  {target:.2f}    {observable.mean():.4f} (sd {observable.std(ddof=1):.4f}, "
            f"{observable.min():.3f}..{observable.max():.3f})  "
            f"{ics['latent_factor'].mean():.3f}   {momenta}",
            flush=True,
        )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
