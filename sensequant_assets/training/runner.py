"""One teacher window trained from the warehouse, and the reads a run of many windows shares.

Plain code over :class:`~sensequant_assets.training.resources.Training`: the ``teacher_model``
asset calls :func:`train_window` for each window of its run, the benchmarks call it directly.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from sensequant_assets.features import WARMUP_SESSIONS
from sensequant_assets.training.resources import Training
from sensequant_assets.training.teacher import train_teacher
from sensequant_assets.training.teacher_record import TeacherRun
from sensequant_assets.training.windows import TrainingWindow, check_future_data, window_data_range


class RunReads:
    """Warehouse reads shared by the windows of one teacher run.

    Opening the warehouse costs more than fitting a window (a connection and a table lookup per
    read: half of a 28-window run's time went there), so the bars of every symbol of the run
    and the benchmark are read once, over the span of all the run's windows, and sliced per
    window.
    """

    def __init__(self, training: Training, windows: list[TrainingWindow]):
        self._training = training
        self._spans: dict[str, tuple[dt.date, dt.date]] = {}
        horizon = training.teacher_config.label.horizon
        for window in windows:
            first, last = window_data_range(window, training.calendar, WARMUP_SESSIONS, horizon)
            low, high = self._spans.get(window.symbol, (first, last))
            self._spans[window.symbol] = (min(low, first), max(high, last))
        self._bars: dict[str, pd.DataFrame] = {}
        self.closes: pd.Series | None = None
        if self._spans and training.teacher_config.label.reference == "market":
            first = min(low for low, _ in self._spans.values())
            last = max(high for _, high in self._spans.values())
            self.closes = training.benchmark_closes(first, last)

    def bars(self, symbol: str, first: dt.date, last: dt.date) -> pd.DataFrame:
        if not self._bars:  # one query for every symbol of the run, over the widest span
            low = min(lo for lo, _ in self._spans.values())
            high = max(hi for _, hi in self._spans.values())
            symbols = list(self._spans)
            rows = self._training.warehouse.symbols_bars("ohlcv_daily", symbols, low, high)
            by_symbol = dict(iter(rows.groupby("symbol", sort=False))) if not rows.empty else {}
            self._bars = {
                name: by_symbol.get(name, rows.iloc[0:0]).reset_index(drop=True)
                for name in self._spans
            }
        stored = self._bars[symbol]
        if stored.empty:
            return stored
        inside = (stored["date"] >= pd.Timestamp(first)) & (stored["date"] <= pd.Timestamp(last))
        return stored.loc[inside].reset_index(drop=True)


def train_window(
    training: Training,
    window: TrainingWindow,
    latest: dt.date | None = None,
    reads: RunReads | None = None,
) -> TeacherRun:
    """Train one window from the warehouse; ``latest`` (the symbol's last stored day) and
    ``reads`` (bars and closes read once for a whole run) spare a run of many windows the
    repeated lookups."""
    config = training.teacher_config
    first, last = window_data_range(
        window, training.calendar, WARMUP_SESSIONS, config.label.horizon
    )
    if reads is not None:
        bars = reads.bars(window.symbol, first, last)
    else:
        bars = training.warehouse.bars("ohlcv_daily", window.symbol, first, last)
    if latest is None:
        latest = training.warehouse.last_date("ohlcv_daily", window.symbol)
    # A window past the last stored day is a skip (decided in train_teacher); missing history
    # inside the stored range is a data problem, so it fails loudly.
    if latest is None or (bars.empty and latest >= window.end):
        raise LookupError(
            f"no stored OHLCV for {window.symbol} between {first} and {last}: materialize "
            f"ohlcv_daily for {window.symbol} over those dates first"
        )
    # A window whose labels would look past the stored data is skipped before any label is
    # made, so it needs no benchmark closes (none may be stored that late yet).
    beyond = check_future_data(window, training.calendar, config.label.horizon, latest)
    return train_teacher(
        window,
        bars,
        config,
        training.calendar,
        latest,
        training.layout.teacher_dir(window.label),
        training.sentiment_of(window.symbol, first, last),
        None
        if beyond is not None
        else training.market_closes(first, last, reads.closes if reads is not None else None),
    )
