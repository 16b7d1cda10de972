"""One trading day for every symbol, as the live loop runs it: update, signals, scorecard.

Run from the repository root:

    .venv/bin/python bench/bench_daily_update.py

Seeds a home with the previous 80 sessions of all 102 default symbols and the NIFTY 50 (one
ranged run per symbol, untimed), deploys a student trained on them through the release path
and scores the last 10 of those sessions, so the scorecard has matured calls to read. Then
it times what the 18:00 IST schedule and the sensor it triggers run for the next day: the
range-tagged ``ohlcv_daily`` run (one day × 102 symbols, with its checks), the NIFTY 50 run,
and the production signals run (scores, their checks, drift included, and the assets chained
after them). Issue 17's goal for the whole day is ≤ 10 s on the embedded instance.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
from harness import bench_home, peak_memory_mib, report

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.defs.jobs import BENCHMARK_JOB, OHLCV_JOB, SIGNALS_JOB
from sensequant_assets.defs.partitions import (
    date_range_tags,
    one_day_all_symbols_tags,
    one_symbol_range_tags,
)
from sensequant_assets.features import LabelSpec, feature_columns
from sensequant_assets.registry import StateManager
from sensequant_assets.release.deployment import deploy_to_production
from sensequant_assets.sources.ingest import MarketData
from sensequant_assets.storage import Warehouse
from sensequant_assets.training.distillation import student_samples
from sensequant_assets.training.student import StudentConfig, predict_probabilities, train_student
from sensequant_assets.training.student_files import save_student
from sensequant_assets_tests.deployable import release_audit

DAY = dt.date(2025, 12, 31)
SEEDED_SESSIONS = 80
SCORED_SESSIONS = 10
MODEL = "live_candidate_20251201_100000"


def deploy_student(layout: ArtifactLayout, bars: pd.DataFrame) -> None:
    """A small student trained on the seeded bars, recorded, approved and deployed; its calls
    on every sample row stand in for the walk-forward the scorecard's band is read from."""
    samples = student_samples(bars, LabelSpec())
    features = list(feature_columns())
    config = StudentConfig(lgbm_params={"num_iterations": 50})
    result = train_student(samples, None, features, config)
    candidate = layout.candidate(MODEL)
    save_student(result, candidate.student_dir)
    audit = layout.audit_dir(candidate)
    audit.mkdir(parents=True)
    test = samples.iloc[result.test_idx]
    # every sample row, so the band's 20-session windows exist (the holdout alone is too short)
    p = predict_probabilities(result.booster, samples, features, config.normalisation)
    rows = samples[["symbol", "label", "forward_return"]].assign(
        date=pd.to_datetime(samples["date"]).to_numpy(), predicted=p.argmax(axis=1),
        p_down=p[:, 0], p_neutral=p[:, 1], p_up=p[:, 2],
    )  # fmt: skip
    rows.to_parquet(audit / "oos_predictions.parquet")
    (audit / "promotion_briefing.md").write_text(f"# {MODEL}\n")
    (audit / "promotion_briefing.json").write_text("{}\n")
    release_audit(layout, MODEL)
    registry = StateManager(layout.registry)
    first, last = (pd.Timestamp(d).date() for d in (samples["date"].min(), test["date"].max()))
    registry.record_candidate_run(
        MODEL, audit_dir=audit, recommendation="approve", score=0.9, data_source="synthetic",
        start_date=first, end_date=last,
    )  # fmt: skip
    registry.approve_candidate_run(MODEL, approved_by="bench")
    deploy_to_production(layout, registry, MODEL, by="bench")


def main() -> None:
    with bench_home(SENSEQUANT_HISTORY_START="2025-06-01") as bench:
        market_data: MarketData = bench.defs.resources["market_data"]
        symbols = market_data.universe.default_symbols
        sessions = market_data.calendar.sessions(dt.date(2025, 6, 1), DAY)
        seeded = sessions[-SEEDED_SESSIONS - 1 : -1]
        for symbol in symbols:
            bench.execute(OHLCV_JOB, one_symbol_range_tags(symbol, seeded[0], seeded[-1]))
        bench.execute(BENCHMARK_JOB, date_range_tags(seeded[0], seeded[-1]))
        layout = ArtifactLayout.of(bench.settings)
        bars = Warehouse.from_settings(bench.settings).symbols_bars("ohlcv_daily", list(symbols))
        deploy_student(layout, bars)
        for day in seeded[-SCORED_SESSIONS:]:
            bench.execute(SIGNALS_JOB, {"dagster/partition": day.isoformat()})
        first_timed = len(bench.runs)

        seconds = {}
        started = time.perf_counter()
        update = bench.execute(OHLCV_JOB, one_day_all_symbols_tags(DAY, symbols))
        seconds["ohlcv_daily run (102 partitions + checks)"] = time.perf_counter() - started
        started = time.perf_counter()
        bench.execute(BENCHMARK_JOB, {"dagster/partition": DAY.isoformat()})
        seconds["nifty50_benchmark run"] = time.perf_counter() - started
        started = time.perf_counter()
        signals = bench.execute(SIGNALS_JOB, {"dagster/partition": DAY.isoformat()})
        seconds["production signals run"] = time.perf_counter() - started
        checks = [*update.get_asset_check_evaluations(), *signals.get_asset_check_evaluations()]
        materialized = sorted(
            {m.asset_key.to_user_string() for m in signals.get_asset_materialization_events()
             for m in [m.event_specific_data.materialization]}
        )  # fmt: skip
        events = bench.event_count(bench.runs[first_timed:])
        failed = [f"{c.check_name} ({c.severity.value})" for c in checks if not c.passed]
        flagged = [c.metadata["flagged"].value for c in checks if "flagged" in c.metadata]

    figures = {"day": str(DAY), "symbols": str(len(symbols))}
    figures.update({f"wall time, {name}": f"{value:.1f} s" for name, value in seconds.items()})
    figures["wall time, the whole day"] = f"{np.sum(list(seconds.values())):.1f} s"
    figures["signals run materialized"] = ", ".join(materialized)
    figures["checks evaluated / passed"] = f"{len(checks)} / {sum(c.passed for c in checks)}"
    figures["checks failed"] = ", ".join(failed) or "none"
    figures["events stored (timed runs)"] = str(events)
    figures["peak memory (RSS)"] = f"{peak_memory_mib():.0f} MiB"
    report("daily update: one session x all symbols, signals and scorecard", figures)
    for table in flagged:  # what a drift check flagged, as Dagit shows it
        print(table)


if __name__ == "__main__":
    main()
