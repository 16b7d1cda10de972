"""Approval rates of the promotion gate on synthetic universes with and without planted signal.

    python bench/bench_calibration.py [--universes 20]

Prints one line per universe (recommendation, hit rate, p-values, DSR, PBO, Sharpe) and the two
rates docs/benchmarks.md reports. The suite asserts the same rates in
``test_evaluation.py::test_gate_is_calibrated_on_synthetic_universes``.
"""

from __future__ import annotations

import argparse
import time

from sensequant_assets.evaluation.calibration import (
    PLANTED_IC,
    CalibrationSetup,
    approval_rate,
    evaluate_universe,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--universes", type=int, default=20)
    args = parser.parse_args()
    setup = CalibrationSetup()
    started = time.perf_counter()
    rates = {}
    for ic in (0.0, PLANTED_IC):
        outcomes = []
        for seed in range(args.universes):
            outcome = evaluate_universe(seed, ic, setup)
            f = outcome.figures
            print(
                f"IC {ic:.2f} seed {seed:>2}  {outcome.decision.recommendation:<12} "
                f"hit {f['accuracy']:.3f}  p(majority) {f['p_majority']:.3f}  "
                f"p(yesterday) {f['p_yesterday']:.3f}  DSR {f['dsr']:.3f}  PBO {f['pbo']:.3f}  "
                f"Sharpe {f['sharpe']:+.2f}",
                flush=True,
            )
            outcomes.append(outcome)
        rates[ic] = approval_rate(outcomes)
    print(
        f"\n{setup.n_symbols} symbols, {setup.start}..{setup.end}, "
        f"{setup.walk_forward.n_folds} walk-forward folds, gated strategy "
        f"{setup.evaluation.strategy}, {time.perf_counter() - started:.0f} s"
    )
    for ic, rate in rates.items():
        approved = round(rate * args.universes)
        print(f"approved at IC {ic:.2f}: {approved}/{args.universes} ({rate:.0%})")


if __name__ == "__main__":
    main()
