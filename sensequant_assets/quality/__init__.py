"""Data-quality guardrails applied to every source's raw OHLCV rows before storage."""

from sensequant_assets.quality.findings import DataQualityError, Finding, QualityReport
from sensequant_assets.quality.rules import validate_ohlcv

__all__ = ["DataQualityError", "Finding", "QualityReport", "validate_ohlcv"]
