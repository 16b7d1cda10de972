"""The guardrails run once per run and name the partitions that failed them in metadata."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs.checks import MAX_LISTED_PARTITIONS, check_results, failing_partitions
from sensequant_assets.defs.jobs import OHLCV_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.quality import Finding
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.bar_files import clean_bars, write_csv
from sensequant_assets_tests.jobs import JAN, run_job

SESSIONS = TradingCalendar().sessions(*JAN)
DAY = dt.date(2024, 1, 5)


def _finding(rule: str, symbol: str, day: dt.date | None) -> Finding:
    return Finding(rule, "error", symbol, day, None, f"{symbol} {day}: {rule}")


def test_a_finding_names_its_own_partition_and_a_dateless_one_all_of_its_symbol() -> None:
    keys = [f"{d}|{s}" for s in ("INFY", "TCS") for d in ("2024-01-04", "2024-01-05")]
    assert failing_partitions([_finding("bad_price", "TCS", DAY)], keys) == ["2024-01-05|TCS"]
    assert failing_partitions([_finding("missing_columns", "INFY", None)], keys) == [
        "2024-01-04|INFY",
        "2024-01-05|INFY",
    ]
    holiday = _finding("non_trading_day", "TCS", dt.date(2024, 1, 6))
    assert failing_partitions([holiday], keys) == []
    # the benchmark's keys are days alone
    assert failing_partitions(
        [_finding("bad_price", "NIFTY50", DAY)], ["2024-01-04", "2024-01-05"]
    ) == ["2024-01-05"]


def test_results_count_every_failing_partition_and_list_the_first() -> None:
    days = [DAY + dt.timedelta(days=i) for i in range(MAX_LISTED_PARTITIONS + 20)]
    keys = [f"{d}|TCS" for d in days]
    findings = [_finding("bad_price", "TCS", d) for d in days]
    result = next(r for r in check_results("ohlcv_daily", findings, None, keys) if not r.passed)
    assert result.metadata["partitions"].value == len(keys)
    assert result.metadata["failing_partitions"].value == len(keys)
    assert result.metadata["failing_partition_keys"].value == keys[:MAX_LISTED_PARTITIONS]
    green = next(r for r in check_results("ohlcv_daily", findings, None, keys) if r.passed)
    assert green.metadata["failing_partitions"].value == 0
    assert "failing_partition_keys" not in green.metadata


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "files"
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(directory))
    return directory


def _metadata(result: dg.ExecuteInProcessResult, check: str) -> dict[str, object]:
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == check)
    return {key: value.value for key, value in evaluation.metadata.items()}


def test_a_bad_partition_is_named_by_the_failed_check(files: Path) -> None:
    bars = clean_bars(SESSIONS)
    bars.loc[3, "Close"] = -1.0
    write_csv(files, "INFY", bars)
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_job(load_settings(), instance, OHLCV_JOB, one_symbol_range_tags("INFY", *JAN))
    assert not result.success
    metadata = _metadata(result, "valid_rows")
    assert metadata["failing_partitions"] == 1
    assert metadata["failing_partition_keys"] == [f"{SESSIONS[3]}|INFY"]
    assert metadata["partitions"] == len(SESSIONS)


def test_a_warning_names_its_partitions_and_the_run_is_kept(files: Path) -> None:
    bars = clean_bars(SESSIONS)
    bars.loc[[5, 9], "Volume"] = -250
    write_csv(files, "ITC", bars)
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_job(load_settings(), instance, OHLCV_JOB, one_symbol_range_tags("ITC", *JAN))
    assert result.success
    metadata = _metadata(result, "volume_not_negative")
    assert metadata["failing_partition_keys"] == [f"{SESSIONS[5]}|ITC", f"{SESSIONS[9]}|ITC"]
    assert _metadata(result, "valid_rows")["failing_partitions"] == 0
