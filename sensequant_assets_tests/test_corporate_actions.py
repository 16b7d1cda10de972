"""Corporate actions: the CSV's rules, the back-adjustment, and a 2:1 split through the files
source into what training reads (DuckDB on a temp file, Dagster on an ephemeral instance)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.cli import main
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import OHLCV_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.inputs import InputError, check_inputs
from sensequant_assets.orchestration.runs import EXIT_USAGE
from sensequant_assets.quality.corporate_actions import (
    AdjustedWarehouse,
    BadRowsError,
    CorporateAction,
    CorporateActions,
    read_corporate_actions,
)
from sensequant_assets.settings import Settings, load_settings
from sensequant_assets.storage import Warehouse

HEADER = "symbol,ex_date,kind,ratio\n"
SESSIONS = TradingCalendar().sessions(dt.date(2024, 1, 1), dt.date(2024, 3, 28))
SPLIT_DAY = SESSIONS[30]


def bars(symbol: str = "TCS", sessions: list[dt.date] = SESSIONS) -> pd.DataFrame:
    """A smooth random walk of daily bars, as the warehouse returns them."""
    steps = np.random.default_rng(3).normal(0, 0.01, len(sessions))
    close = 1000 * np.exp(np.cumsum(steps))
    return pd.DataFrame(
        {
            "date": pd.to_datetime(sessions),
            "symbol": symbol,
            "open": close * 0.998,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": np.arange(len(sessions), dtype="int64") * 10 + 5000,
        }
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "corporate_actions.csv"
    path.write_text(text)
    return path


# ---- the file ---------------------------------------------------------------------------


def test_a_valid_file_reads_every_kind_and_ignores_other_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Symbol,Ex_Date,Kind,Ratio,note\n"
        "tcs,2024-02-15,Split,2,face value 10 -> 5\n"
        "INFY,2024-03-01,bonus,1.5,1:2 bonus\n"
        "ITC,2024-03-04,split,0.1,ten shares into one\n",
    )
    actions = read_corporate_actions(path)
    assert len(actions) == 3
    assert actions.ratios("TCS") == {dt.date(2024, 2, 15): 2.0}
    assert actions.ratios("INFY") == {dt.date(2024, 3, 1): 1.5}
    assert actions.ratios("ITC") == {dt.date(2024, 3, 4): 0.1}
    assert len(read_corporate_actions(write(tmp_path, HEADER))) == 0


def test_every_bad_row_is_named_by_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER + "TCS,2024-02-15,split,2\n"
        "../x,2024-02-15,split,2\n"
        "TCS,15/02/2024,split,2\n"
        "TCS,2024-02-30,split,2\n"
        "TCS,2024-02-16,merger,2\n"
        "TCS,2024-02-19,dividend,12.5\n"
        "TCS,2024-02-20,split,two\n"
        "TCS,2024-02-21,split,1\n"
        "TCS,2024-02-22,bonus,0.5\n"
        "TCS,2024-02-15,bonus,2\n"
        "TCS,2024-02-23,split\n",
    )
    with pytest.raises(BadRowsError) as caught:
        read_corporate_actions(path)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "line 3, column symbol",
        "line 4, column ex_date",
        "line 5, column ex_date",
        "line 6, column kind",
        "line 7, column kind",
        "line 8, column ratio",
        "line 9, column ratio",
        "line 10, column ratio",
        "line 11, column ex_date",
        "line 12, column ratio",
    ]
    assert "dividends are not adjusted" in caught.value.problems[4]
    assert "already on line 2" in caught.value.problems[8]


def test_a_missing_column_names_the_header_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"line 1 lacks column\(s\) kind, ratio"):
        read_corporate_actions(write(tmp_path, "symbol,ex_date\nTCS,2024-02-15\n"))


def test_start_up_refuses_a_bad_file_with_one_line_per_bad_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + "TCS,2024-02-15,split,2\nTCS,2024-13-01,split,2\nX Y,,,\n")
    monkeypatch.setenv("SENSEQUANT_CORPORATE_ACTIONS_FILE", str(path))
    with pytest.raises(InputError) as caught:
        check_inputs(load_settings())
    lines = str(caught.value).splitlines()
    assert lines[0] == f"SENSEQUANT_CORPORATE_ACTIONS_FILE={path}: 2 bad row(s):"
    assert lines[1].strip().startswith("line 3, column ex_date: '2024-13-01'")
    assert [line.split(":")[0].strip() for line in lines[2:]] == [
        f"line 4, column {column}" for column in ("symbol", "ex_date", "kind", "ratio")
    ]
    assert main(["candidates", "list"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line 3, column ex_date" in err[0] and "line 4, column kind" in err[0]


# ---- the adjustment ---------------------------------------------------------------------


def test_prices_before_each_ex_date_are_divided_and_volumes_multiplied() -> None:
    raw = bars()
    later = SESSIONS[50]
    actions = CorporateActions(
        [
            CorporateAction("TCS", SPLIT_DAY, "split", 2.0),
            CorporateAction("TCS", later, "bonus", 1.5),
            CorporateAction("INFY", SESSIONS[1], "split", 5.0),
        ]
    )
    before = raw.copy()
    adjusted = actions.adjust(raw)
    pd.testing.assert_frame_equal(raw, before)  # the input is left as it was
    factor = np.select(
        [raw["date"] < pd.Timestamp(SPLIT_DAY), raw["date"] < pd.Timestamp(later)], [3.0, 1.5], 1.0
    )
    for column in ("open", "high", "low", "close"):
        np.testing.assert_allclose(adjusted[column], raw[column] / factor)
    np.testing.assert_array_equal(adjusted["volume"], np.rint(raw["volume"] * factor))
    assert adjusted["volume"].dtype == "int64"
    # a read of any span agrees with the full read on the rows they share
    part = raw.iloc[40:].reset_index(drop=True)
    pd.testing.assert_frame_equal(actions.adjust(part), adjusted.iloc[40:].reset_index(drop=True))
    pd.testing.assert_frame_equal(actions.adjust(bars("SBIN")), bars("SBIN"))


def test_training_reads_adjusted_bars_and_the_warehouse_keeps_them_raw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also the index table, which no action touches, and the resource every stage shares."""
    path = write(tmp_path, HEADER + f"TCS,{SPLIT_DAY},split,2\n")
    monkeypatch.setenv("SENSEQUANT_CORPORATE_ACTIONS_FILE", str(path))
    settings = load_settings()
    raw = bars()
    _store(settings, {"ohlcv_daily": raw, "nifty50_benchmark": bars("TCS")})
    defs = build_defs(settings)
    training = defs.resources["training"]
    assert defs.resources["evaluation"].training is training
    assert isinstance(training.warehouse, AdjustedWarehouse)
    read = training.warehouse.symbols_bars("ohlcv_daily", ["TCS"])
    first = read["date"] < pd.Timestamp(SPLIT_DAY)
    np.testing.assert_allclose(read.loc[first, "close"], raw.loc[first, "close"] / 2)
    one = training.warehouse.bars("ohlcv_daily", "TCS", SESSIONS[0], SESSIONS[-1])
    pd.testing.assert_frame_equal(one, read)
    stored = Warehouse.from_settings(settings).symbols_bars("ohlcv_daily", ["TCS"])
    np.testing.assert_allclose(stored["close"], raw["close"])
    index = training.warehouse.symbols_bars("nifty50_benchmark", ["TCS"])
    np.testing.assert_allclose(index["close"], raw["close"])


def _store(settings: Settings, tables: dict[str, pd.DataFrame]) -> None:
    import duckdb

    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("create schema market")
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"create table market.{name} as select * from frame")
            con.unregister("frame")


# ---- a 2:1 split through the files source -------------------------------------------------


def _split_file(directory: Path) -> pd.DataFrame:
    """TCS as an exchange delivers it: unadjusted, the price halving on ``SPLIT_DAY``."""
    frame = bars()
    before = frame["date"] < pd.Timestamp(SPLIT_DAY)
    for column in ("open", "high", "low", "close"):
        frame.loc[before, column] *= 2
    frame.loc[before, "volume"] //= 2
    directory.mkdir(exist_ok=True)
    frame.drop(columns="symbol").assign(date=frame["date"].dt.date).to_csv(
        directory / "TCS.csv", index=False
    )
    return frame


def _ingest(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = build_defs(load_settings()).resolve_job_def(OHLCV_JOB)
    tags = one_symbol_range_tags("TCS", SESSIONS[0], SESSIONS[-1])
    return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)


def test_an_unlisted_split_is_flagged_with_its_line_and_a_listed_one_is_adjusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivered = _split_file(tmp_path / "files")
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(tmp_path / "files"))
    line = f"TCS,{SPLIT_DAY},split,2"
    with dg.DagsterInstance.ephemeral() as instance:
        flagged = _ingest(instance)
        assert flagged.success
        split = next(
            e
            for e in flagged.get_asset_check_evaluations()
            if e.check_name == "no_unadjusted_split"
        )
        assert not split.passed and line in split.description
        assert line in split.metadata["corporate_actions_to_add"].value

        monkeypatch.setenv("SENSEQUANT_CORPORATE_ACTIONS_FILE", str(write(tmp_path, HEADER + line)))
        adjusted = _ingest(instance)
        assert adjusted.success
        assert all(e.passed for e in adjusted.get_asset_check_evaluations())

    settings = load_settings()
    stored = Warehouse.from_settings(settings).symbols_bars("ohlcv_daily", ["TCS"])
    np.testing.assert_allclose(stored["close"], delivered["close"])  # as received
    assert (stored["volume"] == delivered["volume"]).all()
    read = (
        build_defs(settings)
        .resources["training"]
        .warehouse.bars("ohlcv_daily", "TCS", SESSIONS[0], SESSIONS[-1])
    )
    overnight = np.log(read["open"].to_numpy()[1:] / read["close"].to_numpy()[:-1])
    assert np.abs(overnight).max() < 0.05  # continuous across the ex-date
    np.testing.assert_allclose(read["close"], bars()["close"])
