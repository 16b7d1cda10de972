"""Size of the daily-mean tests under MA(h−1) nulls, and the block test's power.

Run from the repository root (about 3 minutes on two cores):

    .venv/bin/python bench/bench_test_size.py [--reps 4000] [--boot-reps 400]

Nulls are sums of h = 7 consecutive t(5) shocks (overlapping 7-session returns), at the
out-of-sample lengths of the pilot (150 days) and of a NIFTY 100 × 3-year run (550 days).
Compared at nominal 5%, one-sided:

* ``block``: ``block_test.block_mean_test`` (t on non-overlapping batch means of 4h days);
* ``naive``: the same t test with one-day batches (days treated as independent);
* ``bootstrap``: the gate's paired stationary bootstrap (``paired_bootstrap_test`` against a
  zero baseline), fewer replications because each one resamples.

Then the block test's power on a daily rank IC series with a planted mean (the realistic
range, 0.01-0.05) and a cross-sectional spread of 0.1 per day (about 100 symbols).

Last, the size of the gate's deflated-Sharpe rule (DSR ≥ 0.95) on null daily active returns:
zero-mean GARCH(1,1) with t(4) shocks (volatility clustering and fat tails, as daily book
returns have), for N = 1 (a plain PSR test, the worst case) and N = 2 and 5 configurations.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sensequant_assets.evaluation.block_test import block_mean_test  # noqa: E402
from sensequant_assets.evaluation.selection import Selection, deflated_sharpe  # noqa: E402
from sensequant_assets.evaluation.significance import paired_bootstrap_test  # noqa: E402
from sensequant_assets_tests.nulls import ma_null  # noqa: E402

HORIZON = 7
LENGTHS = (150, 550)
ICS = (0.01, 0.02, 0.03, 0.05)


def _interval(k: int, n: int) -> str:
    """Rate with a 95% Wilson interval."""
    p, z = k / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"{100 * p:5.1f}% [{100 * (centre - half):4.1f}, {100 * (centre + half):4.1f}]"


def garch_null(rng: np.random.Generator, n: int, reps: int) -> np.ndarray:
    """``reps`` zero-mean GARCH(1,1) paths (α 0.08, β 0.9) with unit-variance t(4) shocks."""
    shocks = rng.standard_t(4, (reps, n)) / np.sqrt(2.0)
    variance = np.ones(reps)
    out = np.empty((reps, n))
    for t in range(n):
        out[:, t] = np.sqrt(variance) * shocks[:, t]
        variance = 0.02 + 0.08 * out[:, t] ** 2 + 0.9 * variance
    return out * 0.004


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--boot-reps", type=int, default=400)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"size at nominal 5% under MA({HORIZON - 1}) nulls (t(5) shocks)")
    print(f"  {'days':>5}  {'block (4h batches)':<24}{'naive t':<24}stationary bootstrap")
    for n in LENGTHS:
        series = ma_null(np.random.default_rng(n), n, HORIZON, args.reps)
        block = sum(block_mean_test(r, HORIZON)["p_value"] <= 0.05 for r in series)
        naive = sum(block_mean_test(r, 1, block_factor=1)["p_value"] <= 0.05 for r in series)
        boot = sum(
            paired_bootstrap_test(r, np.zeros(n), n_boot=500, seed=k)["p_value"] <= 0.05
            for k, r in enumerate(series[: args.boot_reps])
        )
        print(f"  {n:>5}  {_interval(block, args.reps):<24}{_interval(naive, args.reps):<24}"
              f"{_interval(boot, args.boot_reps)} ({args.boot_reps} reps)")  # fmt: skip
    print("\npower of the block test on a daily rank IC (spread 0.1 per day)")
    print(f"  {'days':>5}  " + "".join(f"IC {ic:<20}" for ic in ICS))
    for n in LENGTHS:
        rng = np.random.default_rng(100 + n)
        noise = ma_null(rng, n, HORIZON, 1000) / np.sqrt(HORIZON * 5 / 3)
        cells = []
        for ic in ICS:
            hits = sum(block_mean_test(ic + 0.1 * r, HORIZON)["p_value"] <= 0.05 for r in noise)
            cells.append(f"{_interval(hits, 1000):<23}")
        print(f"  {n:>5}  " + "".join(cells))
    print("\nsize of DSR >= 0.95 on null GARCH(1,1)-t(4) daily active returns")
    counts = (1, 2, 5)
    print(f"  {'days':>5}  " + "".join(f"N = {n:<19}" for n in counts))
    for n in LENGTHS:
        paths = garch_null(np.random.default_rng(200 + n), n, args.reps)
        cells = []
        for trials in counts:
            selection = Selection(tuple(f"book_{i}" for i in range(trials)))
            hits = sum(deflated_sharpe(r, selection)["dsr"] >= 0.95 for r in paths)
            cells.append(f"{_interval(hits, args.reps):<23}")
        print(f"  {n:>5}  " + "".join(cells))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
