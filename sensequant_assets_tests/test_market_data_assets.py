"""The market-data assets end to end: real jobs on a temporary instance, DuckDB on a temp file."""

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import BENCHMARK_JOB, OHLCV_JOB
from sensequant_assets.defs.partitions import one_day_all_symbols_tags, one_symbol_range_tags
from sensequant_assets.defs.tags import ALLOW_MISSING_SESSIONS_TAG
from sensequant_assets.settings import load_settings
from sensequant_assets.storage import RawArchive
from sensequant_assets_tests.bar_files import clean_bars, write_csv
from sensequant_assets_tests.jobs import JAN, checks, run_job, stored


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def test_one_symbol_month_is_stored_as_dates_with_all_checks_green(
    instance: dg.DagsterInstance,
) -> None:
    settings = load_settings()
    result = run_job(settings, instance, OHLCV_JOB, one_symbol_range_tags("RELIANCE", *JAN))
    assert result.success
    assert checks(result) == dict.fromkeys(
        [
            "valid_rows",
            "volume_not_negative",
            "ohlc_consistent",
            "calendar_complete",
            "no_unadjusted_split",
        ],
        True,
    )
    frame = stored(settings)
    sessions = TradingCalendar().sessions(*JAN)
    assert list(frame["date"].dt.date) == sessions
    assert set(frame["symbol"]) == {"RELIANCE"} and set(frame["source"]) == {"synthetic"}
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        types = dict(con.execute("describe market.ohlcv_daily").fetchall()[i][:2] for i in range(8))
    assert types["date"] in {"DATE", "TIMESTAMP", "TIMESTAMP_NS"}


def test_rematerializing_is_idempotent(instance: dg.DagsterInstance) -> None:
    settings = load_settings()
    tags = one_symbol_range_tags("TCS", *JAN)
    assert run_job(settings, instance, OHLCV_JOB, tags).success
    first = stored(settings)
    assert run_job(settings, instance, OHLCV_JOB, tags).success
    again = stored(settings)
    assert len(again) == len(first) and not again.duplicated(["symbol", "date"]).any()
    pd.testing.assert_frame_equal(first.drop(columns="source"), again.drop(columns="source"))


def test_one_day_for_every_symbol_is_one_run(instance: dg.DagsterInstance) -> None:
    settings = load_settings()
    defs = build_defs(settings)
    symbols = (
        defs.resolve_assets_def("ohlcv_daily")
        .partitions_def.get_partitions_def_for_dimension("symbol")
        .get_partition_keys()
    )
    day = dt.date(2024, 3, 1)
    result = run_job(settings, instance, OHLCV_JOB, one_day_all_symbols_tags(day, symbols))
    assert result.success
    assert len(instance.get_runs()) == 1
    frame = stored(settings)
    assert len(frame) == 102 and set(frame["date"].dt.date) == {day}


def test_failed_partition_leaves_stored_data_untouched(
    tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = tmp_path / "files"
    sessions = TradingCalendar().sessions(*JAN)
    write_csv(files, "INFY", clean_bars(sessions))
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(files))
    settings = load_settings()
    tags = one_symbol_range_tags("INFY", *JAN)
    assert run_job(settings, instance, OHLCV_JOB, tags).success
    before = stored(settings)

    bad = clean_bars(sessions, start_price=500.0)
    bad.loc[3, "Close"] = -1.0
    write_csv(files, "INFY", bad)
    result = run_job(settings, instance, OHLCV_JOB, tags)

    assert not result.success
    assert checks(result) == {"valid_rows": False}
    evaluation = result.get_asset_check_evaluations()[0]
    assert "INFY" in evaluation.description and str(sessions[3]) in evaluation.description
    assert "close" in evaluation.description
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "nothing of this run was written" in message
    assert "\nINFY: 1 data-quality error(s)" in message and "INFY: INFY" not in message
    pd.testing.assert_frame_equal(stored(settings), before)


def test_negative_volume_is_clipped_and_the_raw_value_kept(
    tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = tmp_path / "files"
    sessions = TradingCalendar().sessions(*JAN)
    bars = clean_bars(sessions)
    bars.loc[5, "Volume"] = -250
    write_csv(files, "ITC", bars)
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(files))
    settings = load_settings()
    result = run_job(settings, instance, OHLCV_JOB, one_symbol_range_tags("ITC", *JAN))

    assert result.success
    assert checks(result)["volume_not_negative"] is False
    evaluation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "volume_not_negative"
    )
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["negative_volume"].value == 1
    frame = stored(settings)
    assert frame.loc[frame["date"].dt.date == sessions[5], "volume"].item() == 0
    raw = RawArchive(settings.raw_dir).read("ohlcv_daily")
    assert "-250" in set(raw["volume"])


def test_synthetic_defects_raise_warnings_but_keep_data(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENSEQUANT_SYNTHETIC_DEFECTS", "all")
    settings = load_settings()
    tags = one_symbol_range_tags("SBIN", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    refused = run_job(settings, instance, OHLCV_JOB, tags)
    assert not refused.success  # the planted calendar gap, until gaps are accepted
    result = run_job(settings, instance, OHLCV_JOB, {**tags, ALLOW_MISSING_SESSIONS_TAG: "true"})
    assert result.success
    materialization = result.asset_materializations_for_node("ohlcv_daily")[0]
    assert materialization.metadata["missing_sessions"].value >= 1
    assert checks(result) == {
        "valid_rows": True,
        "volume_not_negative": False,
        "ohlc_consistent": False,
        "calendar_complete": False,
        "no_unadjusted_split": False,
    }
    assert (stored(settings)["volume"] >= 0).all()


def test_benchmark_materializes_trading_days(instance: dg.DagsterInstance) -> None:
    settings = load_settings()
    tags = {
        "dagster/asset_partition_range_start": "2024-01-01",
        "dagster/asset_partition_range_end": "2024-01-31",
    }
    result = run_job(settings, instance, BENCHMARK_JOB, tags)
    assert result.success and all(checks(result).values())
    frame = stored(settings, "nifty50_benchmark")
    assert list(frame["date"].dt.date) == TradingCalendar().sessions(*JAN)
    assert set(frame["symbol"]) == {"NIFTY50"}
