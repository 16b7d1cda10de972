"""Jobs: one per partitioning, so a backfill or a schedule can target exactly one asset shape.

:func:`candidate_request` is the run request of a ``candidate_job`` run that the retraining
schedules and the new-window sensor issue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

import dagster as dg

from sensequant_assets.artifacts import candidate_id_at
from sensequant_assets.calendar import MARKET_TIMEZONE
from sensequant_assets.defs.checks import FRESHNESS_CHECK_KEYS
from sensequant_assets.defs.tags import RETRAIN_TAG, scope_tags

OHLCV_JOB = "ohlcv_daily_job"
BENCHMARK_JOB = "nifty50_benchmark_job"
SENTIMENT_JOB = "sentiment_snapshots_job"
TEACHER_JOB = "teacher_model_job"
CANDIDATE_JOB = "candidate_job"
PROMOTE_JOB = "promote_job"
SIGNALS_JOB = "production_signals_job"
REWARDS_JOB = "live_rewards_job"
STAGE_JOB = "stage_job"
STAGING_SIGNALS_JOB = "staging_signals_job"
# The candidate job's assets, named as the phases a person reads in logs and briefings.
STAGE_PHASES = {
    "student_model": "student",
    "data_quality": "data quality",
    "model_validation": "validation",
    "stat_tests": "statistical tests",
    "stress_tests": "stress tests",
    "promotion_gate": "promotion gate",
    "release_audit": "release audit",
    "promotion_briefing": "briefing",
}


FRESHNESS_EXCLUDED = dg.AssetSelection.checks(*FRESHNESS_CHECK_KEYS)
"""The freshness checks judge the time of day, not a run's partitions: they run by themselves
(at the deadline, or from Dagit), not as one more step of every ingest or backfill run."""


def build_jobs(sentiment_enabled: bool) -> list[dg.UnresolvedAssetJobDefinition]:
    jobs = [
        dg.define_asset_job(
            OHLCV_JOB,
            selection=dg.AssetSelection.assets("ohlcv_daily") - FRESHNESS_EXCLUDED,
            description="Ingest and validate daily OHLCV for symbol × trading-day partitions.",
        ),
        dg.define_asset_job(
            BENCHMARK_JOB,
            selection=dg.AssetSelection.assets("nifty50_benchmark") - FRESHNESS_EXCLUDED,
            description="Ingest the NIFTY 50 benchmark for trading-day partitions.",
        ),
        dg.define_asset_job(
            TEACHER_JOB,
            selection=dg.AssetSelection.assets("teacher_model"),
            description="Train LightGBM teachers for symbol × window partitions.",
        ),
        dg.define_asset_job(
            CANDIDATE_JOB,
            selection=dg.AssetSelection.assets("student_model")
            | dg.AssetSelection.groups("evaluation", "release"),
            description="Distil the trained teachers into a candidate, evaluate and brief it.",
        ),
        dg.define_asset_job(
            SIGNALS_JOB,
            selection=dg.AssetSelection.assets("production_signals", "live_scorecard"),
            description="Score trading days with the production model (its calls per symbol), "
            "then its live scorecard as of the last one (what the demotion sensor judges).",
        ),
        dg.define_asset_job(
            REWARDS_JOB,
            selection=dg.AssetSelection.assets("live_rewards"),
            description="Reward the production model's calls whose labels matured by the "
            "trading day (the reward loop's history).",
        ),
        dg.define_asset_job(
            PROMOTE_JOB,
            selection=dg.AssetSelection.assets("production_model"),
            description="Deploy the approved candidate named by the sensequant/candidate tag.",
        ),
        dg.define_asset_job(
            STAGE_JOB,
            selection=dg.AssetSelection.assets("staging_model"),
            description="Stage the approved candidate named by the sensequant/candidate tag "
            "for its trial.",
        ),
        dg.define_asset_job(
            STAGING_SIGNALS_JOB,
            selection=dg.AssetSelection.assets("staging_signals", "staging_trial"),
            description="Score trading days with the staged model in shadow, and judge its "
            "trial as of the last one.",
        ),
    ]
    if sentiment_enabled:
        jobs.append(
            dg.define_asset_job(
                SENTIMENT_JOB,
                selection=dg.AssetSelection.assets("sentiment_snapshots"),
                description="Score dated headlines into daily sentiment per symbol.",
            )
        )
    return jobs


def candidate_request(
    moment: dt.datetime,
    symbols: Sequence[str],
    start: dt.date,
    end: dt.date,
    reason: str,
    run_key: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
) -> dg.RunRequest:
    """A candidate run named after ``moment`` (IST), over ``symbols`` from ``start`` to ``end``
    (``extra_tags``: e.g. the search's)."""
    candidate_id = candidate_id_at(moment.astimezone(ZoneInfo(MARKET_TIMEZONE)))
    return dg.RunRequest(
        run_key=run_key or f"candidate:{candidate_id}",
        tags={
            **scope_tags(candidate_id, symbols, start, end),
            RETRAIN_TAG: reason,
            **(extra_tags or {}),
        },
    )
