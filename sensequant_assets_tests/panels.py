"""Labelled synthetic student panels: causal features and market-relative labels per symbol."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pandas as pd

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.features import (
    WARMUP_SESSIONS,
    LabelSpec,
    compute_features_panel,
    feature_columns,
    make_labels,
)
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.universe import INDEX_SYMBOL, load_universe

FEATURES = list(feature_columns())
# The volatility band at 0.5 σ√h splits the synthetic labels into three near-equal classes.
# Market-relative, like the platform's default: the planted signal orders stocks against each
# other, while absolute labels mostly record the market's week, which no feature predicts.
SPEC = LabelSpec(horizon=7, mode="volatility", vol_multiplier=0.5, reference="market")
# The top of the calibrated range. Even there, a realistic signal moves hit rates by a point or
# two, so the test that the student learns it takes a NIFTY-100-sized panel: on 20 symbols
# the holdout's hit rates are within noise of the baselines (and at IC 0.12 on 100 too).
STRONG_IC = 0.15


@cache
def build_panel(ic: float, n_symbols: int = 20) -> pd.DataFrame:
    """Labelled samples for the first ``n_symbols`` equities, 2022-2024, seed 7."""
    universe = load_universe()
    symbols = [s for s in universe.default_symbols if universe.get(s).kind == "equity"]
    source = SyntheticSource(universe, TradingCalendar(), seed=7, signal_ic=ic)
    start, end = dt.date(2022, 1, 1), dt.date(2024, 12, 31)
    market = source.fetch(INDEX_SYMBOL, start, end).set_index("date")["close"]
    parts = []
    for symbol in symbols[:n_symbols]:
        bars = source.fetch(symbol, start, end)
        bars["symbol"] = symbol
        labels = make_labels(bars, SPEC, market)[
            ["forward_return", "label", "label_end", "last_return", "last_band"]
        ]
        rows = compute_features_panel(bars).join(labels).iloc[WARMUP_SESSIONS:]
        parts.append(rows[rows["label"].notna()])
    panel = pd.concat(parts, ignore_index=True)
    panel["label"] = panel["label"].astype("int64")
    return panel
