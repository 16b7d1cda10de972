"""Freshness on the NSE calendar: the session due by now, and the checks that judge the store."""

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from sensequant_assets.calendar import MARKET_TIMEZONE, TradingCalendar
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.checks import FRESHNESS_CHECK, FRESHNESS_CHECK_KEYS, freshness_checks
from sensequant_assets.defs.jobs import BENCHMARK_JOB, OHLCV_JOB
from sensequant_assets.defs.partitions import date_range_tags, one_day_all_symbols_tags
from sensequant_assets.freshness import due_session
from sensequant_assets.settings import Settings, load_settings
from sensequant_assets_tests.jobs import checks, run_job

IST = ZoneInfo(MARKET_TIMEZONE)
CALENDAR = TradingCalendar()
SYMBOLS = ["INFY", "TCS"]
WEDNESDAY, THURSDAY = dt.date(2024, 3, 13), dt.date(2024, 3, 14)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), IST)


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (_at(THURSDAY, 19), THURSDAY),  # the deadline passed on a session
        (_at(THURSDAY, 18, 59), WEDNESDAY),  # not yet: the day's run may still be going
        (_at(dt.date(2024, 3, 16), 12), dt.date(2024, 3, 15)),  # Saturday: Friday's
        (_at(dt.date(2024, 3, 18), 9), dt.date(2024, 3, 15)),  # Monday morning: Friday's
        (_at(dt.date(2024, 1, 26), 21), dt.date(2024, 1, 25)),  # Republic Day: the day before
        (dt.datetime(2024, 3, 14, 13, 30, tzinfo=dt.UTC), THURSDAY),  # 19:00 IST, given in UTC
    ],
)
def test_the_due_session_follows_the_nse_calendar(now: dt.datetime, due: dt.date) -> None:
    assert due_session(CALENDAR, now) == due


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_session(CALENDAR, dt.datetime(2024, 3, 14, 20))


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", ",".join(SYMBOLS))
    return load_settings()


def _ingest(settings: Settings, instance: dg.DagsterInstance, day: dt.date, symbols: list[str]):
    ohlcv = run_job(settings, instance, OHLCV_JOB, one_day_all_symbols_tags(day, symbols))
    assert ohlcv.success
    assert FRESHNESS_CHECK not in checks(ohlcv)  # the ingest jobs leave the freshness checks out
    assert run_job(settings, instance, BENCHMARK_JOB, date_range_tags(day, day)).success


def _freshness(
    settings: Settings, instance: dg.DagsterInstance, now: dt.datetime
) -> dict[str, dg.AssetCheckEvaluation]:
    """Both freshness checks, as the product defines them but with the clock at ``now``."""
    defs = build_defs(settings)
    at: Callable[[], dt.datetime] = lambda: now  # noqa: E731
    fixed = freshness_checks(SYMBOLS, clock=at)
    replaced = set(FRESHNESS_CHECK_KEYS)
    product = [
        a
        for a in defs.assets or ()
        if not (isinstance(a, dg.AssetChecksDefinition) and a.check_keys & replaced)
    ]
    job = dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*fixed))
    run = dg.Definitions(assets=[*product, *fixed], jobs=[job], resources=defs.resources)
    result = run.resolve_job_def("freshness").execute_in_process(instance=instance)
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_the_check_goes_stale_when_the_last_sessions_partition_is_missing(
    settings: Settings,
) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        _ingest(settings, instance, WEDNESDAY, SYMBOLS)
        thursday = run_job(
            settings, instance, OHLCV_JOB, one_day_all_symbols_tags(THURSDAY, ["INFY"])
        )
        assert thursday.success

        before_deadline = _freshness(settings, instance, _at(THURSDAY, 18, 30))
        assert before_deadline["ohlcv_daily"].passed
        assert before_deadline["nifty50_benchmark"].passed

        after = _freshness(settings, instance, _at(THURSDAY, 20))
        stale = after["ohlcv_daily"]
        assert not stale.passed and stale.severity == dg.AssetCheckSeverity.WARN
        assert stale.metadata["session"].value == THURSDAY.isoformat()
        assert stale.metadata["missing_partition_keys"].value == [f"{THURSDAY}|TCS"]
        assert not after["nifty50_benchmark"].passed

        _ingest(settings, instance, THURSDAY, ["TCS"])
        fresh = _freshness(settings, instance, _at(THURSDAY, 23))
        assert fresh["ohlcv_daily"].passed and fresh["nifty50_benchmark"].passed
        saturday = _freshness(settings, instance, _at(dt.date(2024, 3, 16), 12))
        assert saturday["ohlcv_daily"].metadata["session"].value == "2024-03-15"  # Friday's
        assert not saturday["ohlcv_daily"].passed


def test_the_checks_run_by_themselves_at_the_weekday_deadline(settings: Settings) -> None:
    defs = build_defs(settings)
    selection = dg.AssetSelection.checks(*FRESHNESS_CHECK_KEYS)
    with dg.DagsterInstance.ephemeral() as instance:
        before = dg.evaluate_automation_conditions(
            defs, instance, selection, evaluation_time=_at(THURSDAY, 18, 55)
        )
        assert before.total_requested == 0
        after = dg.evaluate_automation_conditions(
            defs, instance, selection, evaluation_time=_at(THURSDAY, 19, 1), cursor=before.cursor
        )
    assert after.total_requested == len(FRESHNESS_CHECK_KEYS)  # the selection: both checks
