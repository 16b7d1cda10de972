"""FilesSource: locating, reading and normalising per-symbol files (content is judged elsewhere)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from sensequant_assets.sources.base import MarketDataSource, SourceError
from sensequant_assets.sources.files import FilesSource

START, END = dt.date(2024, 1, 18), dt.date(2024, 1, 31)
CSV = """date,open,high,low,close,volume
2024-01-18,100.5,102,99,101,1000
2024-01-19,101,103,100,102.25,
2024-03-01,90,91,89,90.5,700
"""


def test_is_a_market_data_source(tmp_path: Path) -> None:
    source = FilesSource(tmp_path)
    assert isinstance(source, MarketDataSource)
    assert (source.name, source.remote) == ("files", False)


def test_csv_values_arrive_as_strings_and_all_rows_are_returned(tmp_path: Path) -> None:
    (tmp_path / "RELIANCE.csv").write_text(CSV)
    raw = FilesSource(tmp_path).fetch("RELIANCE", START, END)
    assert list(raw.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert raw["date"].tolist() == ["2024-01-18", "2024-01-19", "2024-03-01"]
    assert raw.loc[0, "open"] == "100.5"
    assert raw.loc[1, "close"] == "102.25"
    assert pd.isna(raw.loc[1, "volume"])


def test_lower_case_file_name_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "tcs.csv").write_text(CSV)
    assert len(FilesSource(tmp_path).fetch("TCS", START, END)) == 3


@pytest.mark.parametrize("alias", ["timestamp", "Datetime", " DATE "])
def test_headers_are_case_insensitive_and_date_aliases_map_to_date(
    tmp_path: Path, alias: str
) -> None:
    (tmp_path / "INFY.csv").write_text(
        f"{alias}, Open ,HIGH,Low,CLOSE,Volume\n2024-01-18,1,2,0.5,1.5,10\n"
    )
    raw = FilesSource(tmp_path).fetch("INFY", START, END)
    assert list(raw.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert raw.loc[0, "date"] == "2024-01-18"


def test_two_date_columns_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "INFY.csv").write_text("Date,Timestamp,open,high,low,close,volume\n")
    with pytest.raises(SourceError, match=r"INFY\.csv.*date, timestamp"):
        FilesSource(tmp_path).fetch("INFY", START, END)


def test_columns_repeated_after_normalising_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "INFY.csv").write_text("date,close,Close ,open,high,low,volume\n")
    with pytest.raises(SourceError, match=r"INFY\.csv.*repeated columns.*close"):
        FilesSource(tmp_path).fetch("INFY", START, END)


def test_missing_ohlcv_columns_are_left_to_the_quality_rules(tmp_path: Path) -> None:
    (tmp_path / "INFY.csv").write_text("date,close\n2024-01-18,10\n")
    assert list(FilesSource(tmp_path).fetch("INFY", START, END).columns) == ["date", "close"]


def test_missing_file_names_symbol_directory_and_candidates(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        FilesSource(tmp_path).fetch("HDFCBANK", START, END)
    message = str(caught.value)
    assert "HDFCBANK" in message
    assert str(tmp_path) in message
    for name in ("HDFCBANK.csv", "hdfcbank.csv", "HDFCBANK.parquet", "hdfcbank.parquet"):
        assert name in message


def test_csv_and_parquet_for_one_symbol_is_ambiguous(tmp_path: Path) -> None:
    (tmp_path / "SBIN.csv").write_text(CSV)
    pd.read_csv(tmp_path / "SBIN.csv").to_parquet(tmp_path / "SBIN.parquet")
    with pytest.raises(SourceError, match=r"ambiguous.*SBIN\.csv, SBIN\.parquet"):
        FilesSource(tmp_path).fetch("SBIN", START, END)


def test_corrupt_parquet_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "SBIN.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceError, match=r"cannot read .*SBIN\.parquet"):
        FilesSource(tmp_path).fetch("SBIN", START, END)


@pytest.mark.parametrize(
    "content",
    [b"date,open\n2024-01-18,1,2,3\n", b"\xff\xfe\x00\x81\x82"],
    ids=["ragged", "not-utf8"],
)
def test_unreadable_csv_names_the_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "SBIN.csv").write_bytes(content)
    with pytest.raises(SourceError, match=r"cannot read .*SBIN\.csv"):
        FilesSource(tmp_path).fetch("SBIN", START, END)


@pytest.mark.parametrize("content", [b"", b"\n  \n"], ids=["no bytes", "blank lines"])
def test_an_empty_csv_is_named_as_empty(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "SBIN.csv").write_bytes(content)
    with pytest.raises(SourceError, match=r"SBIN\.csv is empty: expected a header date,open"):
        FilesSource(tmp_path).fetch("SBIN", START, END)


def test_parquet_keeps_types_and_a_date_index_becomes_a_column(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "Date": pd.to_datetime(["2024-01-18", "2024-01-19"]),
            "Open": [1.0, 2.0],
            "High": [1.5, 2.5],
            "Low": [0.5, 1.5],
            "Close": [1.2, 2.2],
            "Volume": [10, 20],
        }
    ).set_index("Date")
    frame.to_parquet(tmp_path / "ITC.parquet")
    raw = FilesSource(tmp_path).fetch("ITC", START, END)
    assert list(raw.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert raw["date"].tolist() == [pd.Timestamp("2024-01-18"), pd.Timestamp("2024-01-19")]
    assert raw["volume"].tolist() == [10, 20]


def test_each_file_is_read_once_and_callers_get_copies(tmp_path: Path) -> None:
    path = tmp_path / "RELIANCE.csv"
    path.write_text(CSV)
    source = FilesSource(tmp_path)
    first = source.fetch("RELIANCE", START, END)
    first.loc[0, "close"] = "mutated"
    path.unlink()
    again = source.fetch("RELIANCE", dt.date(2024, 1, 19), dt.date(2024, 1, 19))
    assert again.loc[0, "close"] == "101"
