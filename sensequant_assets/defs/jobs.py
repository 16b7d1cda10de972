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


def _assets(*keys: str) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*keys)


# Each job: the assets it materializes, and what Dagit says it does.
JOB_SPECS: dict[str, tuple[dg.AssetSelection, str]] = {
    OHLCV_JOB: (
        _assets("ohlcv_daily") - FRESHNESS_EXCLUDED,
        "Ingest and validate daily OHLCV for symbol × trading-day partitions.",
    ),
    BENCHMARK_JOB: (
        _assets("nifty50_benchmark") - FRESHNESS_EXCLUDED,
        "Ingest the NIFTY 50 benchmark for trading-day partitions.",
    ),
    TEACHER_JOB: (
        _assets("teacher_model"),
        "Train LightGBM teachers for symbol × window partitions.",
    ),
    CANDIDATE_JOB: (
        _assets("student_model") | dg.AssetSelection.groups("evaluation", "release"),
        "Distil the trained teachers into a candidate, evaluate and brief it.",
    ),
    SIGNALS_JOB: (
        _assets("production_signals", "live_scorecard"),
        "Score trading days with the production model (its calls per symbol), then its live "
        "scorecard as of the last one (what the demotion sensor judges).",
    ),
    REWARDS_JOB: (
        _assets("live_rewards"),
        "Reward the production model's calls whose labels matured by the trading day (the "
        "reward loop's history).",
    ),
    PROMOTE_JOB: (
        _assets("production_model"),
        "Deploy the approved candidate named by the sensequant/candidate tag.",
    ),
    STAGE_JOB: (
        _assets("staging_model"),
        "Stage the approved candidate named by the sensequant/candidate tag for its trial.",
    ),
    STAGING_SIGNALS_JOB: (
        _assets("staging_signals", "staging_trial"),
        "Score trading days with the staged model in shadow, and judge its trial as of the "
        "last one.",
    ),
}
SENTIMENT_SPEC = (
    _assets("sentiment_snapshots"),
    "Score dated headlines into daily sentiment per symbol.",
)


def build_jobs(sentiment_enabled: bool) -> list[dg.UnresolvedAssetJobDefinition]:
    specs = {**JOB_SPECS, **({SENTIMENT_JOB: SENTIMENT_SPEC} if sentiment_enabled else {})}
    return [
        dg.define_asset_job(name, selection=selection, description=description)
        for name, (selection, description) in specs.items()
    ]


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
