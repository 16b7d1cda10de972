"""Dagster's DuckDB IO manager, with the slice's delete and insert in one transaction.

The stock ``DuckDBPandasIOManager`` (dagster-duckdb 0.29) deletes the run's slice and inserts
the new rows as two autocommit statements, and skips the insert for an empty frame. A kill, a
full disk or an exception between the two leaves the slice empty: stored market data lost on
a run that never finished. This client opens one transaction per IO manager call, so a reader
sees the old slice or the new one and a failed write changes nothing.

The stock type handler also puts the frame's column schema into the output's metadata, which
Dagster copies into every partition's materialization event: ~1.8 kB serialized per partition,
a fifth of a ranged run's bookkeeping (docs/benchmarks.md, "Bookkeeping per partition"). The
assets declare their columns once instead (``dagster/column_schema``, shown by Dagit).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDbClient, _get_cleanup_statement
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler


class TransactionalDuckDbClient(DuckDbClient):
    """``DuckDbClient`` whose connection is one transaction, committed only on success."""

    @staticmethod
    @contextmanager
    def connect(context: dg.OutputContext | dg.InputContext, table_slice: TableSlice) -> Iterator:
        with DuckDbClient.connect(context, table_slice) as conn:
            conn.begin()
            try:
                yield conn
            except BaseException:
                # The stock client closes only on success; an open connection left behind in
                # a long-lived run worker would hold the file's lock.
                conn.rollback()
                conn.close()
                raise
            conn.commit()

    @staticmethod
    def delete_table_slice(
        context: dg.OutputContext, table_slice: TableSlice, connection: duckdb.DuckDBPyConnection
    ) -> None:
        """Delete the slice if the table exists; asked first, since an error aborts the
        transaction (the stock client catches the missing table's error instead)."""
        exists = connection.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchone()
        if exists and exists[0]:
            connection.execute(_get_cleanup_statement(table_slice))


class RowCountDuckDBPandasTypeHandler(DuckDBPandasTypeHandler):
    """``DuckDBPandasTypeHandler``'s write; its metadata without the per-partition schema."""

    def handle_output(
        self,
        context: dg.OutputContext,
        table_slice: TableSlice,
        obj: pd.DataFrame,
        connection: duckdb.DuckDBPyConnection,
    ) -> None:
        table = f"{table_slice.schema}.{table_slice.table}"
        if obj.empty:
            context.log.warning("Skipping DuckDB write for empty DataFrame.")
        else:
            connection.execute(f"create table if not exists {table} as select * from obj;")
            if not connection.fetchall():  # the table existed: insert
                connection.execute(f"insert into {table} select * from obj")
        rows = obj.shape[0]
        context.add_output_metadata(
            dict(
                TableMetadataSet(partition_row_count=rows, storage_kind="duckdb")
                if context.has_partition_key
                else TableMetadataSet(row_count=rows, storage_kind="duckdb")
            )
        )


class TransactionalDuckDBPandasIOManager(DuckDBPandasIOManager):
    """``DuckDBPandasIOManager`` whose slice replacement is all-or-nothing."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [RowCountDuckDBPandasTypeHandler()]

    def create_io_manager(self, context: dg.InitResourceContext) -> DbIOManager:
        # Here, when a run starts, not when definitions load: loading them creates no file.
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        return DbIOManager(
            db_client=TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="DuckDBIOManager",
        )
