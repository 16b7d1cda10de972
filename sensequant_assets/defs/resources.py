"""Resources: the DuckDB warehouse IO manager and the market-data context assets share."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from dagster_duckdb_pandas import DuckDBPandasIOManager

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.ingest import Ingestor
from sensequant_assets.settings import Settings
from sensequant_assets.sources import MarketDataSource, build_source
from sensequant_assets.storage import WAREHOUSE_SCHEMA, RawArchive, Warehouse
from sensequant_assets.universe import Universe


@dataclass
class MarketData:
    """Everything an ingestion asset needs, built once per process from the settings.

    The source is built on first use: the Breeze client imports its SDK and opens a session
    only when a run actually fetches, never when Dagit loads the definitions.
    """

    settings: Settings
    universe: Universe
    calendar: TradingCalendar

    @cached_property
    def source(self) -> MarketDataSource:
        return build_source(self.settings, self.universe, self.calendar)

    @cached_property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings.duckdb_path)

    @cached_property
    def archive(self) -> RawArchive:
        return RawArchive(self.settings.raw_dir)

    def ingestor(self, table: str) -> Ingestor:
        return Ingestor(
            self.source, self.warehouse, self.archive, table, refetch=self.settings.breeze_refetch
        )


def warehouse_io_manager(settings: Settings) -> DuckDBPandasIOManager:
    """DuckDB under ``$SENSEQUANT_HOME/data``; the IO manager won't create the folder itself."""
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    return DuckDBPandasIOManager(database=str(settings.duckdb_path), schema=WAREHOUSE_SCHEMA)
