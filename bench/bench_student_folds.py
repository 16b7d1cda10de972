"""Where the student loses to a simple baseline: per-fold rank ICs on calibration universes.

    .venv/bin/python bench/bench_student_folds.py --seeds 7,4 [--ic 0.03] [--arms now,alpha_1]
        [--workdir DIR]

Each universe is the calibration's (``evaluation.power``: 102 symbols, 2022-2024, teachers
trained as a historical run trains them). Its teachers are kept under ``--workdir`` and reused
by later invocations, so trying another arm costs one walk-forward (~10-40 s), not the
teachers (~130 s). For every arm the walk-forward is the candidate's (``default_config``,
the student's embargo), and each line prints the mean daily sector-neutral rank IC over all
out-of-sample dates and then per fold, for the student, each baseline, and the best causal
observable of the planted factor (``sources.synthetic.planted_signal``: what a perfect model
of the symbol's own closes could know), which bounds what any model of these features should
reach on the same rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sensequant_assets.evaluation.power import (
    candidate_resources,
    teacher_windows,
    train_teachers,
    universe_bars,
    universe_symbols,
)
from sensequant_assets.evaluation.skill import daily_rank_ic, score
from sensequant_assets.evaluation.walk_forward import (
    default_config,
    walk_forward_folds,
    walk_forward_predictions,
)
from sensequant_assets.features.technical import feature_columns
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.sources.synthetic_signal import planted_signal
from sensequant_assets.training.distillation import distillation_inputs
from sensequant_assets.training.student import StudentConfig

START, END = dt.date(2022, 1, 1), dt.date(2024, 12, 31)
N_SYMBOLS = 102


def arms(base: StudentConfig) -> dict[str, Callable[[], tuple[StudentConfig, bool]]]:
    """Named student variants: (config, distilled from the teachers?)."""

    def variant(alpha: float | None = None, **params: Any) -> StudentConfig:
        return StudentConfig(
            distill_alpha=base.distill_alpha if alpha is None else alpha,
            lgbm_params={**base.lgbm_params, **params},
            test_fraction=base.test_fraction,
            embargo_sessions=base.embargo_sessions,
            normalisation=base.normalisation,
        )

    return {
        "now": lambda: (base, True),
        "hard_labels": lambda: (base, False),
        "alpha_1": lambda: (variant(alpha=1.0), True),
        "rounds_75": lambda: (variant(num_iterations=75), True),
        "rounds_150": lambda: (variant(num_iterations=150), True),
        "rounds_600": lambda: (variant(num_iterations=600), True),
        "learning_rate_0.01": lambda: (variant(learning_rate=0.01), True),
        "learning_rate_0.05": lambda: (variant(learning_rate=0.05), True),
        "feature_fraction_0.2": lambda: (variant(feature_fraction=0.2), True),
        "linear_tree": lambda: (
            variant(linear_tree=True, linear_lambda=10.0, extra_trees=False), True
        ),
    }  # fmt: skip


def universe(seed: int, ic: float, workdir: Path) -> tuple[pd.DataFrame, list, Any, Mapping]:
    """The universe's student samples, teacher outputs, student config and sector map."""
    training, evaluation = candidate_resources(START)
    root = workdir / f"seed{seed}_ic{ic}_n{N_SYMBOLS}"
    source = SyntheticSource(training.universe, training.calendar, seed=seed, signal_ic=ic)
    symbols = universe_symbols(training.universe, N_SYMBOLS)
    bars, benchmark = universe_bars(source, symbols, START, END)
    market = benchmark.set_index("date")["close"]
    done = root / "windows.json"
    if not done.exists():
        windows = teacher_windows(symbols, training, START, END)
        labels = train_teachers(windows, bars, market, training, root / "teachers")
        done.write_text(json.dumps(labels))
    completed = {}
    for label in json.loads(done.read_text()):
        metadata = root / "teachers" / label / "metadata.json"
        if json.loads(metadata.read_text())["status"] == "completed":
            completed[label] = metadata.parent
    label_spec = training.teacher_config.label
    samples, teachers = distillation_inputs(bars, label_spec, None, market, completed)
    warm = START - dt.timedelta(days=365)  # the filter's warm-up, as signal_ics has it
    observable = {
        s: planted_signal(source.fetch(s, warm, END).set_index("date")["close"])
        for s in symbols
        if training.universe.get(s).kind == "equity"
    }
    keys = zip(samples["symbol"], pd.to_datetime(samples["date"]), strict=True)
    samples["planted_signal"] = [
        observable[s].get(d, np.nan) if s in observable else np.nan for s, d in keys
    ]
    return samples, teachers, training.student_config, evaluation.config.sectors


def per_fold(oos: pd.DataFrame, signal: pd.Series | None, sectors: Mapping) -> list[float]:
    """Mean daily rank IC over all dates, then over each fold's dates."""
    ic = daily_rank_ic(oos, signal, sectors)
    fold = oos.groupby(pd.to_datetime(oos["date"]))["fold"].first().reindex(ic.index)
    return [round(float(ic.mean()), 4)] + [
        round(float(ic[fold == k].mean()), 4) for k in sorted(oos["fold"].unique())
    ]


def blend(oos: pd.DataFrame, partner: str) -> pd.Series:
    """The mean of the student's and a baseline's within-day ranks: an equal-weight stack."""
    day = pd.to_datetime(oos["date"])
    student = score(oos).groupby(day).rank(pct=True)
    return (student + oos[f"score_{partner}"].groupby(day).rank(pct=True)) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7")
    parser.add_argument("--ic", type=float, default=0.03)
    parser.add_argument("--arms", default="now")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sensequant_student_folds"))
    args = parser.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        samples, teachers, base, sectors = universe(seed, args.ic, args.workdir)
        folds = walk_forward_folds(
            samples["date"],
            samples["label_end"],
            default_config(int(samples["date"].nunique()), base.embargo_sessions),
        )
        rows = np.concatenate([f.test_idx for f in folds])
        observable = samples["planted_signal"].to_numpy()[rows]
        by_name = arms(base)
        for arm in args.arms.split(","):
            started = time.perf_counter()
            config, distilled = by_name[arm]()
            oos = walk_forward_predictions(
                samples, feature_columns(), config, folds, teachers if distilled else ()
            )
            figures = {"student": per_fold(oos, None, sectors)}
            for column in (c for c in oos.columns if c.startswith("score_")):
                figures[column.removeprefix("score_")] = per_fold(oos, oos[column], sectors)
            figures["planted_observable"] = per_fold(oos, pd.Series(observable), sectors)
            for partner in ("ridge", "momentum_20"):
                figures[f"blend_{partner}"] = per_fold(oos, blend(oos, partner), sectors)
            print(json.dumps({
                "seed": seed, "ic": args.ic, "arm": arm, "rank_ic_all_then_per_fold": figures,
                "seconds": round(time.perf_counter() - started, 1),
            }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
