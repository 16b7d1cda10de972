"""Where market data lives: the DuckDB warehouse and the archive of raw rows as received.

Curated tables are written by Dagster's DuckDB IO manager (one schema, one table per asset);
this module only *reads* them, for the things an asset needs before it writes: the last stored
close (to spot an unadjusted split on a one-day update) and rows already fetched from a paid
API (so a re-run costs no calls). Raw rows are archived as one Parquet file per run, written
atomically, so a correction can always be audited or undone and concurrent runs never contend
for the DuckDB write lock.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from pathlib import Path

import duckdb
import pandas as pd

WAREHOUSE_SCHEMA = "market"


def connect(path: Path, read_only: bool = False, attempts: int = 20) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, retrying while another process holds its lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt) * (1 + random.random()))
    raise AssertionError("unreachable")


class Warehouse:
    """Read access to the curated tables the IO manager maintains."""

    def __init__(self, path: Path, schema: str = WAREHOUSE_SCHEMA):
        self.path = path
        self.schema = schema

    def _table_exists(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        found = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [self.schema, table],
        ).fetchone()
        return bool(found and found[0])

    def query(self, table: str, sql_where: str, params: list[object]) -> pd.DataFrame:
        """Rows of ``table`` matching ``sql_where``; empty when the table doesn't exist yet."""
        if not self.path.exists():
            return pd.DataFrame()
        with connect(self.path) as con:
            if not self._table_exists(con, table):
                return pd.DataFrame()
            return con.execute(
                f'select * from "{self.schema}"."{table}" where {sql_where} order by date',
                params,
            ).df()

    def symbols_bars(
        self,
        table: str,
        symbols: list[str],
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
    ) -> pd.DataFrame:
        """Rows of several symbols, optionally bounded by dates (both inclusive)."""
        where, params = "symbol in (select unnest(?))", [list(symbols)]
        if start is not None:
            where, params = f"{where} and date >= ?", [*params, start]
        if end is not None:
            where, params = f"{where} and date <= ?", [*params, end]
        return self.query(table, where, params)

    def bars(self, table: str, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        return self.query(table, "symbol = ? and date between ? and ?", [symbol, start, end])

    def _scalar(self, table: str, select: str, params: list[object]) -> object | None:
        """The first column of the first row, or None when there is no table or no row."""
        if not self.path.exists():
            return None
        with connect(self.path) as con:
            if not self._table_exists(con, table):
                return None
            row = con.execute(select.format(table=f'"{self.schema}"."{table}"'), params).fetchone()
        return row[0] if row else None

    def last_date(self, table: str, symbol: str) -> dt.date | None:
        """The latest stored date for ``symbol``: how far labels can look ahead."""
        value = self._scalar(table, "select max(date) from {table} where symbol = ?", [symbol])
        return pd.Timestamp(value).date() if value is not None else None

    def last_close_before(self, table: str, symbol: str, day: dt.date) -> float | None:
        value = self._scalar(
            table,
            "select close from {table} where symbol = ? and date < ? order by date desc limit 1",
            [symbol, day],
        )
        return float(value) if value is not None else None


class RawArchive:
    """One Parquet file per run holding every row exactly as the source delivered it."""

    def __init__(self, directory: Path):
        self.directory = directory

    def write(
        self, dataset: str, run_id: str, frames: dict[str, pd.DataFrame], source: str
    ) -> Path | None:
        """Archive ``frames`` (symbol → raw rows) as strings; returns the file, or None if empty."""
        parts = []
        received_at = pd.Timestamp.now(tz="UTC").isoformat()
        for symbol, raw in frames.items():
            if raw.empty:
                continue
            part = raw.astype("string")
            part.insert(0, "requested_symbol", symbol)
            parts.append(part)
        if not parts:
            return None
        table = pd.concat(parts, ignore_index=True)
        table["source"] = source
        table["run_id"] = run_id
        table["received_at"] = received_at
        target = self.directory / dataset / f"{dt.date.today():%Y%m%d}_{run_id}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".parquet.tmp")
        table.to_parquet(tmp, index=False)
        os.replace(tmp, target)
        return target

    def read(self, dataset: str) -> pd.DataFrame:
        files = sorted((self.directory / dataset).glob("*.parquet"))
        if not files:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
