"""Resources: the domain objects the assets share, and the warehouse IO manager.

``MarketData`` (``sources.ingest``), ``Training`` (``training.resources``) and ``Evaluation``
(``evaluation.resources``) are plain classes the assets receive as ``dg.ResourceParam``; the IO
managers are ``duckdb_io`` and ``delta_io``.
"""

from __future__ import annotations

from dagster_deltalake import LocalConfig, S3Config
from dagster_deltalake.config import ClientConfig

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs.delta_io import SliceDeltaLakePandasIOManager
from sensequant_assets.defs.duckdb_io import TransactionalDuckDBPandasIOManager
from sensequant_assets.evaluation.resources import Evaluation
from sensequant_assets.settings import Settings
from sensequant_assets.sources.ingest import MarketData
from sensequant_assets.storage import WAREHOUSE_SCHEMA
from sensequant_assets.universe import Universe


def build_resources(
    settings: Settings, universe: Universe, calendar: TradingCalendar, evaluation: Evaluation
) -> dict[str, object]:
    """The Definitions' resources: the domain objects the assets share (``evaluation`` holds
    the ``training`` one) and the warehouse IO manager."""
    return {
        "market_data": MarketData(settings, universe, calendar),
        "training": evaluation.training,
        "evaluation": evaluation,
        "warehouse_io_manager": warehouse_io_manager(settings),
    }


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
