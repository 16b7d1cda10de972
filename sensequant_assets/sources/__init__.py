"""Market-data sources: synthetic (offline default), user files, ICICI Breeze."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.sources.base import OHLCV_COLUMNS, MarketDataSource, SourceError

if TYPE_CHECKING:
    from sensequant_assets.calendar import TradingCalendar
    from sensequant_assets.settings import Settings
    from sensequant_assets.universe import Universe

__all__ = ["OHLCV_COLUMNS", "MarketDataSource", "SourceError", "build_source"]


def build_source(
    settings: Settings, universe: Universe, calendar: TradingCalendar
) -> MarketDataSource:
    """The source named by ``SENSEQUANT_DATA_SOURCE``, configured from the settings."""
    if settings.data_source == "files":
        from sensequant_assets.sources.files import FilesSource

        assert settings.files_dir is not None
        return FilesSource(settings.files_dir)
    if settings.data_source == "breeze":
        from sensequant_assets.sources.breeze import BreezeSource
        from sensequant_assets.sources.rate_limit import CallLedger

        assert settings.breeze_api_key and settings.breeze_api_secret
        assert settings.breeze_session_token
        return BreezeSource(
            api_key=settings.breeze_api_key.get_secret_value(),
            api_secret=settings.breeze_api_secret.get_secret_value(),
            session_token=settings.breeze_session_token.get_secret_value(),
            universe=universe,
            calendar=calendar,
            ledger=CallLedger(
                settings.ledger_location,
                per_minute=settings.breeze_calls_per_minute,
                per_day=settings.breeze_calls_per_day,
            ),
            sdk_home=ArtifactLayout(settings.home).breeze_sdk_dir,
            base_url=settings.breeze_base_url,
            chunk_candles=settings.breeze_chunk_candles,
            max_retries=settings.breeze_max_retries,
            backoff_seconds=settings.breeze_backoff_seconds,
            backoff_max_seconds=settings.breeze_backoff_max_seconds,
            timeout_seconds=settings.breeze_timeout_seconds,
        )
    from sensequant_assets.sources.synthetic import SyntheticSource

    return SyntheticSource(
        universe,
        calendar,
        seed=settings.synthetic_seed,
        signal_ic=settings.synthetic_signal_ic,
        defects=settings.defects,
    )
