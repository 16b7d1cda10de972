"""Dagster glue, one module per kind of definition: ``assets/`` (one module per asset group),
``checks``, ``jobs``, ``schedules``, ``sensors``, ``partitions``, ``tags``, ``resources`` (with
the IO managers ``duckdb_io`` and ``delta_io``) and ``executors``."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs.assets.evaluation import build_evaluation_assets
from sensequant_assets.defs.assets.market_data import build_market_data_assets
from sensequant_assets.defs.assets.monitoring import build_monitoring_assets
from sensequant_assets.defs.assets.promotion import build_signal_assets, production_model
from sensequant_assets.defs.assets.quality import data_quality
from sensequant_assets.defs.assets.release import build_release_assets
from sensequant_assets.defs.assets.staging import build_staging_assets, staging_model
from sensequant_assets.defs.assets.training import build_training_assets
from sensequant_assets.defs.executors import build_executor
from sensequant_assets.defs.jobs import build_jobs
from sensequant_assets.defs.partitions import (
    symbol_day_partitions,
    symbol_window_partitions,
    trading_day_partitions,
)
from sensequant_assets.defs.resources import build_resources
from sensequant_assets.defs.schedules import build_schedules
from sensequant_assets.defs.sensors import build_sensors
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.inputs import check_inputs
from sensequant_assets.settings import Settings
from sensequant_assets.training.resources import Training, teacher_window_keys
from sensequant_assets.universe import universe_for

BREEZE_POOL = "breeze_api"


def build_defs(settings: Settings) -> dg.Definitions:
    """All definitions for one configuration (partitions follow the universe and calendar).

    Every input the settings name is checked first, so a bad file stops the code location
    from loading with its name instead of failing a run later.
    """
    check_inputs(settings)
    universe = universe_for(settings)
    calendar = TradingCalendar.from_file(settings.holiday_file)
    symbols = universe.resolve(settings.symbol_list or universe.default_symbols)
    days = trading_day_partitions(calendar, settings.history_start)
    symbol_days = symbol_day_partitions(days, symbols)
    sentiment_enabled = settings.sentiment_headlines_file is not None
    pool = BREEZE_POOL if settings.data_source == "breeze" else None
    windows = teacher_window_keys(settings, calendar, dt.date.today())
    teacher_partitions = symbol_window_partitions(symbols, windows)
    evaluation = Evaluation(Training(settings, universe, calendar))
    jobs = build_jobs(sentiment_enabled)
    by_name = {job.name: job for job in jobs}
    storage_kind = "deltalake" if settings.warehouse == "delta" else "duckdb"
    return dg.Definitions(
        assets=[
            *build_market_data_assets(symbol_days, days, pool, sentiment_enabled, storage_kind),
            *build_training_assets(teacher_partitions),
            *build_evaluation_assets(settings.run_stress_tests),
            data_quality,
            *build_release_assets(),
            production_model,
            staging_model,
            *build_signal_assets(days, storage_kind),
            *build_staging_assets(days, storage_kind),
            *build_monitoring_assets(days),
        ],
        jobs=jobs,
        executor=build_executor(settings),
        sensors=build_sensors(settings, calendar, symbols, windows, evaluation, by_name),
        schedules=build_schedules(settings, calendar, symbols),
        resources=build_resources(settings, universe, calendar, evaluation),
    )
