"""Model inputs (causal technical features) and targets (forward-looking direction labels)."""

from sensequant_assets.features.labels import CLASS_NAMES, LabelSpec, make_labels
from sensequant_assets.features.technical import (
    FEATURE_COLUMNS,
    SENTIMENT_COLUMNS,
    WARMUP_SESSIONS,
    compute_features,
    compute_features_panel,
    feature_columns,
)

__all__ = [
    "CLASS_NAMES",
    "FEATURE_COLUMNS",
    "SENTIMENT_COLUMNS",
    "WARMUP_SESSIONS",
    "LabelSpec",
    "compute_features",
    "compute_features_panel",
    "feature_columns",
    "make_labels",
]
