"""Windowing and leakage-safe splitting for the per-window teacher models.

Plain pandas/numpy domain code: the Dagster assets and checks that train on windows build on it.
"""

from sensequant_assets.training.split import (
    LeakageError,
    Split,
    assert_no_leakage,
    purged_time_split,
)
from sensequant_assets.training.windows import (
    INSUFFICIENT_FUTURE_DATA,
    SKIP_CODES,
    TOO_FEW_SAMPLES,
    VALIDATION_TOO_SMALL,
    SkipCode,
    SkipReason,
    TrainingWindow,
    WindowSkipped,
    check_future_data,
    rolling_windows,
    span_key,
    window_data_range,
    window_spans,
)

__all__ = [
    "INSUFFICIENT_FUTURE_DATA",
    "SKIP_CODES",
    "TOO_FEW_SAMPLES",
    "VALIDATION_TOO_SMALL",
    "LeakageError",
    "SkipCode",
    "SkipReason",
    "Split",
    "TrainingWindow",
    "WindowSkipped",
    "assert_no_leakage",
    "check_future_data",
    "purged_time_split",
    "rolling_windows",
    "span_key",
    "window_data_range",
    "window_spans",
]
