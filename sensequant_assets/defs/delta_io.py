"""Dagster's Delta Lake IO manager with a write that replaces exactly the run's partitions.

The stock ``DeltaLakePandasIOManager`` (dagster-deltalake 0.29, deltalake 1.x) loses data on
our tables. Its partition predicate supports only ``date``/``timestamp`` columns, and a naive
pandas datetime is a Delta ``timestamp_ntz``; it keeps only a time window's first day; it
refuses several values of a static dimension. Each of those raises inside a ``try`` that falls
back to overwriting the *whole table*: a second symbol's run erases the first symbol, a one-day
update erases the history. It also partitions the files by every partition column (one file
per symbol and day, ~80k for a NIFTY 100 backfill).

This subclass keeps Dagster's machinery (``DbIOManager``: table slices from partitions,
``<root>/<schema>/<table>`` locations, storage options) and replaces only the type handler:
one transaction per run that overwrites the rows of the run's slice (``date`` in the run's
window and ``symbol`` among its symbols) and nothing else, in an unpartitioned table whose
Parquet files are skipped by their min/max statistics. The resource's ``mode``,
``overwrite_schema``, ``table_config``, ``custom_metadata`` and ``writer_properties`` options
are not used.
"""

from collections.abc import Sequence

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from dagster_deltalake.io_manager import TableConnection
from dagster_deltalake_pandas import DeltaLakePandasIOManager, DeltaLakePandasTypeHandler
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def slice_predicate(table_slice: TableSlice) -> str | None:
    """SQL selecting exactly the rows of the slice; None for an unpartitioned table.

    A time window becomes a half-open range in local wall-clock time, matching dates stored
    naive in market time (``[start, end)`` covers every trading day of a ranged run); a static
    dimension becomes an ``IN`` list. The text is valid for both delta-rs and DuckDB.
    """
    clauses = []
    for dimension in table_slice.partition_dimensions or []:
        expr, partitions = dimension.partition_expr, dimension.partitions
        if isinstance(partitions, dg.TimeWindow):
            start = _literal(partitions.start.strftime(DATETIME_FORMAT))
            end = _literal(partitions.end.strftime(DATETIME_FORMAT))
            clauses.append(f"{expr} >= {start} AND {expr} < {end}")
        else:
            clauses.append(f"{expr} IN ({', '.join(_literal(str(p)) for p in partitions)})")
    return " AND ".join(clauses) or None


def _open(uri: str, options: dict[str, str]) -> DeltaTable | None:
    """The table, or None before its first write.

    Not ``DeltaTable.is_deltatable``: it holds the GIL during its requests, which deadlocks
    with an in-process S3 server (the moto tests) and stalls every other thread meanwhile.
    """
    try:
        return DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        return None


class SliceOverwriteTypeHandler(DeltaLakePandasTypeHandler):
    """pandas frames in and out of Delta, replacing only the slice a run owns."""

    def handle_output(
        self,
        context: dg.OutputContext,
        table_slice: TableSlice,
        obj: pd.DataFrame,
        connection: TableConnection,
    ) -> None:
        uri, options = connection.table_uri, connection.storage_options
        predicate = slice_predicate(table_slice)
        existing = _open(uri, options)
        if obj.empty:
            # As Dagster's DuckDB IO manager: the slice is cleared, no empty table is created.
            if existing is not None and predicate:
                existing.delete(predicate)
        else:
            data = pa.Table.from_pandas(obj, preserve_index=False)
            try:
                write_deltalake(
                    uri, data, mode="overwrite", predicate=predicate, storage_options=options
                )
            except CommitFailedError:
                if existing is not None:
                    raise
                # A concurrent run created the table first: ours is now an ordinary slice write.
                write_deltalake(
                    uri, data, mode="overwrite", predicate=predicate, storage_options=options
                )
        rows = len(obj)
        counts = (
            TableMetadataSet(partition_row_count=rows, storage_kind="deltalake")
            if context.has_partition_key
            else TableMetadataSet(row_count=rows, storage_kind="deltalake")
        )
        # no column schema per partition: the assets declare theirs once (defs/duckdb_io.py)
        context.add_output_metadata({**counts, "table_uri": uri})

    def load_input(
        self, context: dg.InputContext, table_slice: TableSlice, connection: TableConnection
    ) -> pd.DataFrame:
        """The slice's rows, filtered by the same predicate the write used."""
        table = DeltaTable(connection.table_uri, storage_options=connection.storage_options)
        columns = ", ".join(f'"{c}"' for c in table_slice.columns or []) or "*"
        with duckdb.connect() as con:
            con.register("delta_scan", table.to_pyarrow_dataset())
            where = slice_predicate(table_slice) or "true"
            return con.execute(f"select {columns} from delta_scan where {where}").df()


class SliceDeltaLakePandasIOManager(DeltaLakePandasIOManager):
    """``DeltaLakePandasIOManager`` whose writes replace exactly the run's partitions."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [SliceOverwriteTypeHandler()]
