"""Resources: the warehouse IO manager and the market-data context assets share."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from dagster_deltalake import LocalConfig, S3Config
from dagster_deltalake.config import ClientConfig

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs.delta_io import SliceDeltaLakePandasIOManager
from sensequant_assets.defs.duckdb_io import TransactionalDuckDBPandasIOManager
from sensequant_assets.ingest import Ingestor, IngestPolicy
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
        return Warehouse.from_settings(self.settings)

    @cached_property
    def archive(self) -> RawArchive:
        return RawArchive(self.settings.raw_dir)

    @property
    def ingest_policy(self) -> IngestPolicy:
        return IngestPolicy(
            allow_shrink=self.settings.allow_shrink,
            allow_missing_sessions=self.settings.allow_missing_sessions,
        )

    def ingestor(self, table: str, policy: IngestPolicy | None = None) -> Ingestor:
        return Ingestor(
            self.source,
            self.warehouse,
            self.archive,
            table,
            refetch=self.settings.breeze_refetch,
            policy=policy or self.ingest_policy,
        )


def warehouse_io_manager(
    settings: Settings,
) -> TransactionalDuckDBPandasIOManager | SliceDeltaLakePandasIOManager:
    """The IO manager of the curated tables, as ``SENSEQUANT_WAREHOUSE`` says.

    ``duckdb``: a file under ``$SENSEQUANT_HOME/data`` (the IO manager won't create the folder
    itself). ``delta``: Delta tables under ``SENSEQUANT_WAREHOUSE_URI``; only non-secret S3
    options enter the resource config (Dagit shows it), credentials come from the environment.
    """
    if settings.warehouse == "delta":
        if not settings.warehouse_on_object_store:
            return SliceDeltaLakePandasIOManager(
                root_uri=settings.warehouse_root,
                storage_options=LocalConfig(),
                schema=WAREHOUSE_SCHEMA,
            )
        return SliceDeltaLakePandasIOManager(
            root_uri=settings.warehouse_root,
            storage_options=S3Config(
                region=settings.aws_region, endpoint=settings.aws_endpoint_url
            ),
            client_options=ClientConfig(allow_http=settings.aws_allow_http),
            schema=WAREHOUSE_SCHEMA,
        )
    return TransactionalDuckDBPandasIOManager(
        database=str(settings.duckdb_path), schema=WAREHOUSE_SCHEMA
    )
