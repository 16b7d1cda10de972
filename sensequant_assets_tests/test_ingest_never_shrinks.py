"""Stored market data never shrinks silently: a shorter source, a gap or a failed write."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.cli import EXIT_FAILED, EXIT_OK, main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.duckdb_io import RowCountDuckDBPandasTypeHandler
from sensequant_assets.defs.jobs import OHLCV_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.defs.tags import ALLOW_MISSING_SESSIONS_TAG, ALLOW_SHRINK_TAG
from sensequant_assets.settings import load_settings
from sensequant_assets_tests.bar_files import clean_bars, write_csv
from sensequant_assets_tests.jobs import JAN, run_job, stored

SESSIONS = TradingCalendar().sessions(*JAN)
TAGS = one_symbol_range_tags("RELIANCE", *JAN)


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def _failure(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        str(e.step_failure_data.error.message) for e in result.all_events if e.is_step_failure
    )


def _materialized(instance: dg.DagsterInstance) -> set[str]:
    return set(instance.get_materialized_partitions(dg.AssetKey("ohlcv_daily")))


def _switch_to_files(monkeypatch: pytest.MonkeyPatch, files: Path) -> None:
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(files))


@pytest.fixture
def january(instance: dg.DagsterInstance) -> pd.DataFrame:
    """RELIANCE's January 2024, stored from the synthetic source (21 sessions)."""
    assert run_job(load_settings(), instance, OHLCV_JOB, TAGS).success
    frame = stored(load_settings())
    assert len(frame) == len(SESSIONS) == 21
    return frame


def test_a_file_without_the_stored_sessions_fails_and_keeps_them(
    january: pd.DataFrame,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The measured loss: a file holding only a 2023 row used to leave 0 rows stored."""
    write_csv(tmp_path, "RELIANCE", clean_bars([dt.date(2023, 12, 29)]))
    _switch_to_files(monkeypatch, tmp_path)
    result = run_job(load_settings(), instance, OHLCV_JOB, TAGS)
    assert not result.success
    message = _failure(result)
    assert "RELIANCE: the source no longer returns 21 stored session(s)" in message
    assert "2024-01-01, 2024-01-02" in message and "2024-01-01..2024-01-31" in message
    pd.testing.assert_frame_equal(stored(load_settings()), january)


def test_a_truncated_file_shrinks_only_when_allowed(
    january: pd.DataFrame,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    write_csv(tmp_path, "RELIANCE", clean_bars(SESSIONS[:10]))
    _switch_to_files(monkeypatch, tmp_path)
    refused = run_job(load_settings(), instance, OHLCV_JOB, TAGS)
    assert "11 stored session(s): 2024-01-15" in _failure(refused)
    assert len(stored(load_settings())) == 21
    only_shrink = run_job(load_settings(), instance, OHLCV_JOB, {**TAGS, ALLOW_SHRINK_TAG: "true"})
    assert not only_shrink.success  # the 11 sessions are still requested and have no row
    assert "no source row for 11 requested NSE session(s)" in _failure(only_shrink)
    allowed = {**TAGS, ALLOW_SHRINK_TAG: "true", ALLOW_MISSING_SESSIONS_TAG: "true"}
    result = run_job(load_settings(), instance, OHLCV_JOB, allowed)
    assert result.success
    assert list(stored(load_settings())["date"].dt.date) == SESSIONS[:10]
    metadata = result.asset_materializations_for_node("ohlcv_daily")[0].metadata
    assert metadata["missing_sessions"].value == 11


def test_the_setting_allows_what_the_tag_allows(
    january: pd.DataFrame,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    write_csv(tmp_path, "RELIANCE", clean_bars(SESSIONS[:10]))
    _switch_to_files(monkeypatch, tmp_path)
    monkeypatch.setenv("SENSEQUANT_ALLOW_SHRINK", "true")
    monkeypatch.setenv("SENSEQUANT_ALLOW_MISSING_SESSIONS", "true")
    assert run_job(load_settings(), instance, OHLCV_JOB, TAGS).success
    assert len(stored(load_settings())) == 10


def test_a_session_without_a_row_is_never_marked_materialized(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_csv(tmp_path, "RELIANCE", clean_bars([d for d in SESSIONS if d != SESSIONS[4]]))
    _switch_to_files(monkeypatch, tmp_path)
    result = run_job(load_settings(), instance, OHLCV_JOB, TAGS)
    assert not result.success
    assert f"no source row for 1 requested NSE session(s): {SESSIONS[4]}" in _failure(result)
    assert _materialized(instance) == set()  # so "backfill missing" retries every session


def test_untouched_sessions_of_the_slice_are_written_back(january: pd.DataFrame) -> None:
    """The IO manager replaces first..last day; a stored day the run didn't ask for survives."""
    market_data = build_defs(load_settings()).resources["market_data"]
    result = market_data.ingestor("ohlcv_daily").run(
        {"RELIANCE": [SESSIONS[0], SESSIONS[-1]]}, run_id="sparse"
    )
    assert result.failures == {}
    pd.testing.assert_frame_equal(result.frame, january[result.frame.columns])


def test_a_failed_write_leaves_the_stored_slice_whole(
    january: pd.DataFrame, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delete and the insert are one transaction: an error after the delete undoes it."""

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RowCountDuckDBPandasTypeHandler, "handle_output", full_disk)
    result = run_job(load_settings(), instance, OHLCV_JOB, TAGS)
    assert not result.success and 'handling output "result"' in _failure(result)
    pd.testing.assert_frame_equal(stored(load_settings()), january)


@pytest.mark.slow
def test_the_command_refuses_the_measured_loss_and_allow_shrink_accepts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sensequant ingest` as measured: synthetic January, then a file holding one 2023 row."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    argv = ["ingest", "--symbols", "RELIANCE", "--start-date", "2024-01-01",
            "--end-date", "2024-01-31", "--no-benchmark"]  # fmt: skip
    assert main(argv) == EXIT_OK
    write_csv(tmp_path / "files", "RELIANCE", clean_bars([dt.date(2023, 12, 29)]))
    _switch_to_files(monkeypatch, tmp_path / "files")
    capsys.readouterr()
    assert main(argv) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "the source no longer returns 21 stored session(s)" in out
    assert len(stored(load_settings())) == 21
    assert main([*argv, "--allow-shrink", "--allow-missing-sessions"]) == EXIT_OK
    assert len(stored(load_settings())) == 0
