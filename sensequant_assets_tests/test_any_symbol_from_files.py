"""Any symbol from files: partitions, ingestion and teachers for symbols no instrument list
knows (Dagster on an ephemeral instance, DuckDB on a temp file); Breeze still needs a code."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from sensequant_assets import universe
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.cli import main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import OHLCV_JOB, TEACHER_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.orchestration.runs import EXIT_USAGE
from sensequant_assets.settings import load_settings
from sensequant_assets.sources.files import symbols_in
from sensequant_assets.universe import UnknownSymbolError, universe_for

SESSIONS = TradingCalendar().sessions(dt.date(2024, 1, 1), dt.date(2025, 4, 4))
WINDOW = "2024-03-13_to_2024-09-08"  # the first teacher window of a 2024-01-01 history


def write_bars(directory: Path, name: str, seed: int) -> None:
    close = 150 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.015, len(SESSIONS))))
    directory.mkdir(exist_ok=True)
    pd.DataFrame(
        {
            "date": [d.isoformat() for d in SESSIONS],
            "open": close * 0.999,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": 1_000_000,
        }
    ).to_csv(directory / name, index=False)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "files"
    write_bars(directory, "AAPL.csv", 1)
    write_bars(directory, "msft.csv", 2)
    write_bars(directory, "NIFTY50.csv", 3)  # the benchmark, not a partition
    (directory / "notes.txt").write_text("not data")
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(directory))
    monkeypatch.setenv("SENSEQUANT_LABEL_REFERENCE", "absolute")
    return directory


def test_the_files_present_are_the_symbols(files: Path) -> None:
    (files / "RELIANCE.NS.csv").write_text("date\n")
    (files / "Tcs.csv").write_text("date\n")  # FilesSource looks for TCS.csv or tcs.csv only
    assert symbols_in(files) == (["AAPL", "MSFT", "NIFTY50"], ["RELIANCE.NS.csv", "Tcs.csv"])
    assert universe_for(load_settings()).default_symbols == ["AAPL", "MSFT"]
    for name in ("AAPL.csv", "msft.csv", "NIFTY50.csv", "RELIANCE.NS.csv", "Tcs.csv"):
        (files / name).unlink()
    assert "RELIANCE" in universe_for(load_settings()).default_symbols  # none yet: the defaults


def test_unknown_symbols_are_partitioned_ingested_and_trained_with_one_warning(
    files: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(universe, "_warned", set())  # as in a fresh process
    with caplog.at_level(logging.WARNING, logger="sensequant_assets.universe"):
        defs = build_defs(load_settings())
        build_defs(load_settings())
    warned = [r.getMessage() for r in caplog.records if "AAPL" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("AAPL, MSFT: not in the packaged")
    for asset, dimension in (("ohlcv_daily", "symbol"), ("teacher_model", "symbol")):
        partitions = defs.resolve_assets_def(asset).partitions_def
        assert isinstance(partitions, dg.MultiPartitionsDefinition)
        keys = partitions.get_partitions_def_for_dimension(dimension).get_partition_keys()
        assert keys == ["AAPL", "MSFT"]

    with dg.DagsterInstance.ephemeral() as instance:
        tags = one_symbol_range_tags("AAPL", SESSIONS[0], SESSIONS[-1])
        ingest = defs.resolve_job_def(OHLCV_JOB).execute_in_process(instance=instance, tags=tags)
        assert ingest.success
        teach = defs.resolve_job_def(TEACHER_JOB).execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": f"AAPL|{WINDOW}",
                "dagster/asset_partition_range_end": f"AAPL|{WINDOW}",
            },
        )
        assert teach.success
        trained = instance.get_materialized_partitions(dg.AssetKey("teacher_model"))
    assert trained == {f"AAPL|{WINDOW}"}


def test_symbols_setting_and_cli_with_files(
    files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", "AAPL,ZZZCO")
    symbols = build_defs(load_settings()).resolve_assets_def("ohlcv_daily").partitions_def
    assert isinstance(symbols, dg.MultiPartitionsDefinition)
    assert symbols.get_partitions_def_for_dimension("symbol").get_partition_keys() == [
        "AAPL",
        "ZZZCO",
    ]
    argv = ["ingest", "--symbols", "MSFT", "--start-date", "2024-01-01", "--end-date", "2024-01-31"]
    assert main(argv) == EXIT_USAGE
    assert "MSFT not in the partitioned universe" in capsys.readouterr().err


def test_breeze_still_needs_an_icici_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "breeze")
    for name in ("BREEZE_API_KEY", "BREEZE_API_SECRET", "BREEZE_SESSION_TOKEN"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", "AAPL")
    with pytest.raises(UnknownSymbolError, match="unknown NSE symbol 'AAPL'"):
        build_defs(load_settings())
