"""Where market data lives: the warehouse and the archive of raw rows as received.

Curated tables are written by a Dagster IO manager (one schema, one table per asset): DuckDB's
in a local file, or Delta tables on a path or object storage (``SENSEQUANT_WAREHOUSE``). This
module only *reads* them, with the same SQL on either backend, for what assets need: the bars
training learns from, the last stored close (to spot an unadjusted split on a one-day update)
and rows already fetched from a paid API (so a re-run costs no calls). Raw rows are archived
as one Parquet file per run, written atomically, so a correction can always be audited or
undone and concurrent runs never contend for the DuckDB write lock.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from sensequant_assets.artifacts import RAW_FILES, raw_dataset_dir, raw_file
from sensequant_assets.atomic import write_atomic_with

if TYPE_CHECKING:
    from sensequant_assets.settings import Settings

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
    """Read access to the curated tables the IO manager maintains, in the DuckDB file."""

    def __init__(self, path: Path, schema: str = WAREHOUSE_SCHEMA):
        self.path = path
        self.schema = schema

    @staticmethod
    def from_settings(settings: Settings) -> Warehouse:
        """The warehouse ``SENSEQUANT_WAREHOUSE`` selects: the one place that decides."""
        if settings.warehouse == "delta":
            return DeltaWarehouse(settings.warehouse_root, settings.object_store_options)
        return Warehouse(settings.duckdb_path)

    @property
    def location(self) -> str:
        return str(self.path)

    @contextmanager
    def _opened(self, table: str) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """A connection where ``"schema"."table"`` can be queried; None while there is no table."""
        if not self.path.exists():
            yield None
            return
        with connect(self.path) as con:
            yield con if self._table_exists(con, table) else None

    def _table_exists(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        found = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [self.schema, table],
        ).fetchone()
        return bool(found and found[0])

    def query(self, table: str, sql_where: str, params: list[object]) -> pd.DataFrame:
        """Rows of ``table`` matching ``sql_where``; empty when the table doesn't exist yet.

        Ordered by date then symbol: a total order, so every backend returns the same frame.
        """
        with self._opened(table) as con:
            if con is None:
                return pd.DataFrame()
            return con.execute(
                f'select * from "{self.schema}"."{table}" where {sql_where} order by date, symbol',
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
        with self._opened(table) as con:
            if con is None:
                return None
            row = con.execute(select.format(table=f'"{self.schema}"."{table}"'), params).fetchone()
        return row[0] if row else None

    def last_date(self, table: str, symbol: str) -> dt.date | None:
        """The latest stored date for ``symbol``: how far labels can look ahead."""
        value = self._scalar(table, "select max(date) from {table} where symbol = ?", [symbol])
        return pd.Timestamp(value).date() if value is not None else None

    def last_common_date(self, table: str, symbols: Sequence[str]) -> dt.date | None:
        """The last day every one of ``symbols`` has stored (the slowest symbol decides)."""
        days = [self.last_date(table, s) for s in symbols]
        return None if any(d is None for d in days) else min(d for d in days if d)

    def last_closes_before(
        self, table: str, days: Mapping[str, dt.date]
    ) -> dict[str, float | None]:
        """Per symbol, its last stored close before its own day (None without one), in one
        query: the overnight-move check needs it for every symbol of a run, and a query per
        symbol cost ~30 ms each on a daily update of 102."""
        closes: dict[str, float | None] = dict.fromkeys(days)
        if not days:
            return closes
        with self._opened(table) as con:
            if con is None:
                return closes
            rows = con.execute(
                f'select q.symbol, arg_max(t.close, t.date) from "{self.schema}"."{table}" t '
                "join (select unnest(?) as symbol, unnest(?) as day) q "
                "on t.symbol = q.symbol and t.date < q.day group by q.symbol",
                [list(days), list(days.values())],
            ).fetchall()
        closes.update({str(symbol): float(close) for symbol, close in rows})
        return closes


class DeltaWarehouse(Warehouse):
    """The same reads over Delta tables (``<root>/<schema>/<table>``, a path or s3://).

    Each read opens an in-memory DuckDB and registers the table's Arrow dataset as a view named
    like the DuckDB table, so every query is the same SQL on both backends; naive timestamps are
    cast to nanoseconds as the DuckDB IO manager stores them, so both return identical frames.
    DuckDB's own delta/httpfs extensions are not used: they download at run time. Tables are
    opened once and then refreshed incrementally, so a sensor asking a hundred symbols for their
    last date reads the transaction log once, not a hundred times.
    """

    def __init__(
        self,
        root: str,
        storage_options: dict[str, str] | None = None,
        schema: str = WAREHOUSE_SCHEMA,
    ):
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.schema = schema
        self._tables: dict[str, DeltaTable] = {}

    @property
    def location(self) -> str:
        return self.root

    def table_uri(self, table: str) -> str:
        return f"{self.root}/{self.schema}/{table}"

    def _delta_table(self, table: str) -> DeltaTable | None:
        cached = self._tables.get(table)
        if cached is not None:
            cached.update_incremental()
            return cached
        try:
            opened = DeltaTable(self.table_uri(table), storage_options=self.storage_options)
        except TableNotFoundError:
            return None
        self._tables[table] = opened
        return opened

    @contextmanager
    def _opened(self, table: str) -> Iterator[duckdb.DuckDBPyConnection | None]:
        delta = self._delta_table(table)
        if delta is None:
            yield None
            return
        dataset = delta.to_pyarrow_dataset()
        columns = ", ".join(
            f'cast("{f.name}" as timestamp_ns) as "{f.name}"'
            if pa.types.is_timestamp(f.type) and f.type.tz is None
            else f'"{f.name}"'
            for f in dataset.schema
        )
        with duckdb.connect() as con:
            con.register("delta_scan", dataset)
            con.execute(f'create schema "{self.schema}"')
            con.execute(
                f'create view "{self.schema}"."{table}" as select {columns} from delta_scan'
            )
            yield con


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
        target = raw_file(self.directory, dataset, dt.date.today(), run_id)
        return write_atomic_with(target, lambda tmp: table.to_parquet(tmp, index=False))

    def read(self, dataset: str) -> pd.DataFrame:
        files = sorted(raw_dataset_dir(self.directory, dataset).glob(RAW_FILES))
        if not files:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
