"""Does the student recover the planted signal its features carry? Its rank IC vs the baselines.

    python bench/bench_student_baselines.py [--seeds 5] [--ics 0,0.03,0.05] [--symbols 50]
                                            [--teachers 5] [--workers 2] [--arms ...]

For each planted IC and seed: a synthetic universe shaped like the calibration's
(``evaluation.calibration.synthetic_universe``, 2022-2024) with ``--symbols`` equities, its
samples, and the calibration's walk-forward (5 folds, 120 training sessions, 7-session
embargo). On those out-of-sample rows it prints the mean daily rank IC of

* the student on hard labels, as the seed had it (``BEFORE``: raw features, 150 rounds of
  7-leaf trees) and as it is now (``StudentConfig()``); the calibration runs this path;
* on the first ``--teachers`` seeds, the distilled path a candidate runs: per-(symbol, window)
  teachers over the default 180-day windows stepped 30 days, trained by ``train_teacher``,
  and the student fit to q = 0.5·p_teacher + 0.5·onehot, each fold using only the teachers
  whose knowledge ends before it (``before`` and ``now`` again);
* each baseline of ``evaluation.baselines`` on the same rows, and for the last arm run (by
  default the distilled student where it ran, else today's hard-label one) the p-values of
  its rank IC's block test and of the paired block test "student − best baseline > 0".

``--arms`` picks other students from :data:`ARMS`: today's with one of its choices taken back
(raw features, greedy or deeper trees, another learning rate, α = 1), for the ablation table
of docs/student.md.

Universes run in ``--workers`` processes; inside each, walk-forward folds use two threads of
``num_threads=1`` boosters and teachers one thread.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.evaluation.baselines import BASELINE_NAMES
from sensequant_assets.evaluation.calibration import CalibrationSetup, synthetic_universe
from sensequant_assets.evaluation.costs import CostModel
from sensequant_assets.evaluation.skill import skill_tests
from sensequant_assets.evaluation.walk_forward import walk_forward_folds, walk_forward_predictions
from sensequant_assets.features import WARMUP_SESSIONS, feature_columns
from sensequant_assets.training.distillation import TeacherOutput, student_samples, teacher_outputs
from sensequant_assets.training.student import StudentConfig
from sensequant_assets.training.teacher import TeacherConfig, train_teacher
from sensequant_assets.training.windows import rolling_windows, window_data_range

HORIZON = 7
ALPHA = 0.5
# The student of the seed: raw features, 150 rounds of 7-leaf, depth-3 trees at 0.05.
BEFORE = StudentConfig(
    distill_alpha=0.0,
    normalisation="none",
    lgbm_params={
        "learning_rate": 0.05,
        "num_iterations": 150,
        "num_leaves": 7,
        "max_depth": 3,
        "feature_fraction": 0.9,
        "extra_trees": False,
    },
)
NOW = StudentConfig(distill_alpha=0.0)


def _now(**params: object) -> StudentConfig:
    return replace(NOW, lgbm_params={**NOW.lgbm_params, **params})


# Arm → (student, distilled). The first four are the default; the rest take one choice of
# today's student back, one at a time (docs/student.md's ablation table).
ARMS: dict[str, tuple[StudentConfig, bool]] = {
    "before": (BEFORE, False),
    "now": (NOW, False),
    "distilled_before": (replace(BEFORE, distill_alpha=ALPHA), True),
    "distilled_now": (replace(NOW, distill_alpha=ALPHA), True),
    "raw_features": (replace(NOW, normalisation="none"), False),
    "zscore_features": (replace(NOW, normalisation="zscore"), False),
    "greedy_stumps": (_now(feature_fraction=0.9, extra_trees=False), False),
    "depth_3_trees": (_now(num_leaves=7, max_depth=3), False),
    "learning_rate_0.005": (_now(learning_rate=0.005), False),
    "learning_rate_0.05": (_now(learning_rate=0.05), False),
    "distilled_alpha_1": (replace(NOW, distill_alpha=1.0), True),
}
DEFAULT_ARMS = "before,now,distilled_before,distilled_now"


def universe(seed: int, ic: float, setup: CalibrationSetup) -> tuple[pd.DataFrame, pd.Series]:
    """``(bars, benchmark closes by date)`` of one synthetic universe."""
    bars, benchmark = synthetic_universe(seed, ic, setup)
    return bars, benchmark.set_index("date")["close"]


def teachers_for(
    bars: pd.DataFrame, benchmark_close: pd.Series, samples: pd.DataFrame, setup: CalibrationSetup
) -> list[TeacherOutput]:
    """Every symbol's teachers over the default 180-day windows stepped 30 days, trained as a
    candidate run trains them; their outputs on ``samples``.

    A window ending on or after the last fold's first test date is skipped: its teacher's
    knowledge reaches past that date, so no fold could use it.
    """
    folds = walk_forward_folds(samples["date"], samples["label_end"], setup.walk_forward)
    last_test_start = folds[-1].test_start
    calendar = TradingCalendar()
    config = TeacherConfig(label=setup.label)
    directories: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="bench-teachers-") as root:
        for symbol, rows in bars.groupby("symbol"):
            history = rows.drop(columns="symbol").sort_values("date").reset_index(drop=True)
            latest = pd.Timestamp(history["date"].max()).date()
            for window in rolling_windows(str(symbol), setup.start, setup.end):
                if window.end >= last_test_start:
                    continue
                first, last = window_data_range(
                    window, calendar, WARMUP_SESSIONS, setup.label.horizon
                )
                inside = history["date"].between(pd.Timestamp(first), pd.Timestamp(last))
                out = Path(root) / window.label
                run = train_teacher(window, history[inside].reset_index(drop=True), config,
                                    calendar, latest, out, market=benchmark_close)  # fmt: skip
                if run.status == "completed":
                    directories[window.label] = out
        return teacher_outputs(samples, directories)


def skill(
    samples: pd.DataFrame,
    setup: CalibrationSetup,
    student: StudentConfig,
    teachers: list[TeacherOutput] | None = None,
) -> dict[str, Any]:
    """``skill_tests`` of the student's walk-forward on ``samples``."""
    folds = walk_forward_folds(samples["date"], samples["label_end"], setup.walk_forward)
    oos = walk_forward_predictions(samples, feature_columns(), student, folds, teachers or ())
    return skill_tests(oos, HORIZON, CostModel())


def run_universe(
    ic: float, seed: int, n_symbols: int, arms: tuple[str, ...], distil: bool
) -> dict[str, Any]:
    """One universe's figures: each arm's mean rank IC, the baselines', the paired p-value of
    the last arm run against the best baseline."""
    started = time.perf_counter()
    setup = CalibrationSetup(n_symbols=n_symbols)
    bars, close = universe(seed, ic, setup)
    samples = student_samples(bars, setup.label, market=close)
    outputs = None
    if distil and any(ARMS[arm][1] for arm in arms):
        outputs = teachers_for(bars, close, samples, setup)
    line: dict[str, Any] = {"ic": ic, "seed": seed}
    figures = None
    for arm in arms:
        student, distilled = ARMS[arm]
        if distilled and outputs is None:
            continue
        figures = skill(samples, setup, student, outputs if distilled else None)
        line[arm] = figures["rank_ic"]["mean"]
    if figures is None:  # only distilled arms, on a seed without teachers
        figures = skill(samples, setup, NOW)
    baselines = figures["baselines"]
    line.update({name: baselines["rank_ic"][name]["mean"] for name in BASELINE_NAMES})
    line["p_ic"] = figures["rank_ic"]["p_value"]
    line["best"] = baselines["best"]
    line["p_vs_best"] = baselines["student_minus_best"]["p_value"]
    line["seconds"] = time.perf_counter() - started
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ics", default="0,0.03,0.05")
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--teachers", type=int, default=5, help="distilled path on N seeds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--arms", default=DEFAULT_ARMS, help=f"of {', '.join(ARMS)}")
    args = parser.parse_args()
    arms = tuple(args.arms.split(","))
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        parser.error(f"unknown arm(s) {unknown}")
    jobs = [
        (float(ic), seed, args.symbols, arms, seed < args.teachers)
        for ic in args.ics.split(",")
        for seed in range(args.seeds)
    ]
    started = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        for line in pool.map(run_universe, *zip(*jobs, strict=True)):
            rows.append(line)
            print(_format(line), flush=True)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"\n{args.symbols} symbols, 2022-01-01..2024-12-31, 5 walk-forward folds, "
        f"{args.workers} processes, {time.perf_counter() - started:.0f} s wall, "
        f"{used.ru_utime + used.ru_stime:.0f} CPU-s in the workers"
    )
    for ic, group in pd.DataFrame(rows).groupby("ic"):
        print(_summary(ic, group))


def _summary(ic: float, group: pd.DataFrame) -> str:
    """Means over seeds; the student compared with the baseline whose mean is best."""
    means = group.mean(numeric_only=True)
    best = max(BASELINE_NAMES, key=lambda name: means[name])
    arm = "distilled_now" if "distilled_now" in group else "now"
    if arm not in group:
        return f"IC {ic:.2f}: " + ", ".join(f"{k} {v:+.4f}" for k, v in means.items())
    beaten = int((group[arm] >= group[best]).sum())
    skilled = int((group["p_ic"] <= 0.05).sum())
    significant = int((group["p_vs_best"] <= 0.05).sum())
    return (
        f"IC {ic:.2f}, mean of {len(group)}: "
        + ", ".join(f"{a} {means[a]:+.4f}" for a in ARMS if a in means)
        + " | "
        + ", ".join(f"{name} {means[name]:+.4f}" for name in BASELINE_NAMES)
        + f" | {arm}: ≥ {best} in {beaten}/{len(group)} seeds, rank IC > 0 at p ≤ 0.05 in"
        f" {skilled}/{len(group)}, > that seed's best baseline at p ≤ 0.05 in"
        f" {significant}/{len(group)}"
    )


def _format(line: dict[str, Any]) -> str:
    text = f"IC {line['ic']:.2f} seed {line['seed']}  "
    text += "  ".join(f"{arm} {line[arm]:+.4f}" for arm in ARMS if arm in line)
    text += "  | " + "  ".join(f"{name} {line[name]:+.4f}" for name in BASELINE_NAMES)
    text += f"  | p(IC > 0) {_p(line['p_ic'])}, p(> {line['best']}) {_p(line['p_vs_best'])}"
    return text + f"  ({line['seconds']:.0f} s)"


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
