"""The partitions start where a run asked, in every process that reads the home."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.cli import EXIT_OK, EXIT_USAGE, main
from sensequant_assets.defs import build_defs
from sensequant_assets.partition_history import extend_to, recorded_start
from sensequant_assets.settings import SettingsError, load_settings
from sensequant_assets_tests.fault_drills import make_dagster_home

EARLY = dt.date(2020, 1, 1)


def test_an_earlier_start_is_recorded_and_every_later_load_sees_it() -> None:
    settings = load_settings()
    said: list[str] = []
    widened = extend_to(settings, EARLY, said.append)
    assert widened.history_start == EARLY
    assert recorded_start(settings) == EARLY
    assert load_settings().history_start == EARLY  # a fresh process on the same home
    assert said and "2020-01-01" in said[0] and "reload the code location" in said[0]


def test_a_later_start_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    extend_to(settings, EARLY, print)
    later = load_settings()
    said: list[str] = []
    assert extend_to(later, dt.date(2022, 1, 3), said.append) is later
    assert said == [] and recorded_start(later) == EARLY
    # a setting later than the record cannot hide partitions that may hold data
    monkeypatch.setenv("SENSEQUANT_HISTORY_START", "2023-01-02")
    assert load_settings().history_start == EARLY


def test_a_setting_earlier_than_the_record_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    extend_to(load_settings(), EARLY, print)
    monkeypatch.setenv("SENSEQUANT_HISTORY_START", "2010-01-04")
    assert load_settings().history_start == dt.date(2010, 1, 4)


def test_a_damaged_record_names_its_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = ArtifactLayout.of(load_settings()).history_start_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("yesterday\n")
    with pytest.raises(SettingsError, match="history_start"):
        load_settings()
    argv = ["ingest", "--symbols", "TCS", "--start-date", "2024-01-01", "--end-date", "2024-01-31"]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err


def test_ingest_before_the_first_partition_extends_the_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dagster_home = make_dagster_home(tmp_path / "dagster_home")  # the repo's dagster.yaml
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    argv = ["ingest", "--symbols", "TCS", "--start-date", "2020-01-01", "--end-date",
            "2020-01-10", "--no-benchmark"]  # fmt: skip
    assert main(argv) == EXIT_OK, capsys.readouterr()
    assert "partitions now start at 2020-01-01" in capsys.readouterr().out
    # what Dagit's code location builds from the same home
    ohlcv = build_defs(load_settings()).get_assets_def("ohlcv_daily")
    assert ohlcv.partitions_def is not None
    keys = ["2020-01-01|TCS", "2020-01-10|TCS"]
    assert set(keys) <= set(ohlcv.partitions_def.get_partition_keys())
    with dg.DagsterInstance.get() as instance:
        status = instance.get_status_by_partition(
            dg.AssetKey("ohlcv_daily"), keys, ohlcv.partitions_def
        )
    assert status == dict.fromkeys(keys, dg.AssetPartitionStatus.MATERIALIZED)
