"""PNG charts for offline review reports, rendered without pyplot.

Every function builds its own ``matplotlib.figure.Figure`` attached to a ``FigureCanvasAgg``
and returns the encoded PNG bytes. Nothing here imports ``matplotlib.pyplot`` or touches the
global backend or ``rcParams``, so the charts render in worker threads and in headless
Dagster runs without opening a window or leaking figures into a global registry.

Sizes are fixed at ``DPI`` dots per inch and never cropped (no ``bbox_inches="tight"``), so the
pixel size of a chart depends only on its inputs: ``DEFAULT_SIZE`` for the confusion matrix,
equity and drawdown charts, and a size derived from the number of rows/columns/bars for the
heatmap and bar charts (clamped so huge inputs stay readable). Each function also accepts an
explicit ``figsize`` in inches.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

__all__ = [
    "DEFAULT_SIZE",
    "DPI",
    "bar_png",
    "confusion_matrix_png",
    "drawdown_png",
    "equity_curves_png",
    "heatmap_png",
]

DPI = 100
DEFAULT_SIZE: tuple[float, float] = (8.0, 4.5)
_CONFUSION_SIZE: tuple[float, float] = (5.5, 4.5)
_NAN_COLOUR = "#bfbfbf"
_TITLE_SIZE = 13
_LABEL_SIZE = 11
_ANNOTATION_SIZE = 10


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


def _to_png(fig: Figure) -> bytes:
    """Lay out, encode and free ``fig``; the Software tag is dropped so bytes are reproducible."""
    try:
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
        return buffer.getvalue()
    finally:
        fig.clear()


def _text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba``."""
    red, green, blue = rgba[:3]
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "black" if luminance > 0.5 else "white"


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _clean_curves(chart: str, curves: Mapping[str, pd.Series]) -> dict[str, pd.Series]:
    if not curves:
        raise ValueError(f"{chart}: no curves given")
    cleaned: dict[str, pd.Series] = {}
    for name, series in curves.items():
        values = pd.to_numeric(pd.Series(series), errors="coerce").dropna()
        if values.empty:
            raise ValueError(f"{chart}: curve {name!r} has no numeric values")
        cleaned[str(name)] = values.sort_index()
    return cleaned


def _x_values(index: pd.Index) -> np.ndarray:
    """Datetime-like indexes become naive datetime64 (tz-aware ones in their own wall time)."""
    if isinstance(index, pd.DatetimeIndex):
        if index.tz is not None:
            index = index.tz_localize(None)
        return index.to_numpy()
    return np.asarray(index)


def _format_time_axis(ax, curves: Mapping[str, pd.Series]) -> None:
    if all(isinstance(s.index, pd.DatetimeIndex) for s in curves.values()):
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel("Date", fontsize=_LABEL_SIZE)


def confusion_matrix_png(
    matrix: Sequence[Sequence[int]],
    labels: Sequence[str] = ("down", "neutral", "up"),
    title: str = "Confusion matrix",
    *,
    figsize: tuple[float, float] | None = None,
) -> bytes:
    """Counts of actual (rows) against predicted (columns) classes, annotated in every cell."""
    chart = "confusion_matrix_png"
    try:
        counts = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{chart}: matrix must be a square grid of counts") from exc
    if counts.size == 0:
        raise ValueError(f"{chart}: matrix is empty")
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"{chart}: matrix must be square, got shape {counts.shape}")
    labels = [str(label) for label in labels]
    if len(labels) != counts.shape[0]:
        raise ValueError(
            f"{chart}: {len(labels)} labels for a {counts.shape[0]}x{counts.shape[1]} matrix"
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError(f"{chart}: counts must be finite and non-negative")

    fig = _new_figure(figsize or _CONFUSION_SIZE)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["Blues"]
    norm = Normalize(vmin=0.0, vmax=max(float(counts.max()), 1.0))
    image = ax.imshow(counts, cmap=cmap, norm=norm, aspect="auto")
    row_totals = counts.sum(axis=1)
    for row in range(counts.shape[0]):
        for col in range(counts.shape[1]):
            value = counts[row, col]
            share = f"\n{value / row_totals[row]:.0%}" if row_totals[row] else ""
            text = f"{round(value):,}" if float(value).is_integer() else f"{value:,.2f}"
            ax.text(
                col,
                row,
                text + share,
                ha="center",
                va="center",
                fontsize=_ANNOTATION_SIZE,
                color=_text_colour(cmap(norm(value))),
            )
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, fontsize=_LABEL_SIZE)
    ax.set_yticks(ticks, labels, fontsize=_LABEL_SIZE)
    ax.set_xlabel("Predicted", fontsize=_LABEL_SIZE)
    ax.set_ylabel("Actual", fontsize=_LABEL_SIZE)
    ax.set_title(title, fontsize=_TITLE_SIZE)
    fig.colorbar(image, ax=ax, label="count")
    return _to_png(fig)


def equity_curves_png(
    curves: Mapping[str, pd.Series],
    title: str = "Equity curves",
    *,
    value_label: str = "Equity",
    figsize: tuple[float, float] | None = None,
) -> bytes:
    """Several equity curves (name → series indexed by date) on one axis, with a legend."""
    cleaned = _clean_curves("equity_curves_png", curves)
    fig = _new_figure(figsize or DEFAULT_SIZE)
    ax = fig.add_subplot()
    for name, series in cleaned.items():
        ax.plot(_x_values(series.index), series.to_numpy(dtype=float), label=name, linewidth=1.5)
    _format_time_axis(ax, cleaned)
    ax.set_ylabel(value_label, fontsize=_LABEL_SIZE)
    ax.set_title(title, fontsize=_TITLE_SIZE)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9, frameon=False)
    return _to_png(fig)


def drawdown_png(
    curves: Mapping[str, pd.Series],
    title: str = "Drawdown",
    *,
    figsize: tuple[float, float] | None = None,
) -> bytes:
    """Percent drawdown of each equity curve from its running peak; the first one is filled.

    Equity values must be strictly positive (a wealth index, not cumulative returns).
    """
    chart = "drawdown_png"
    cleaned = _clean_curves(chart, curves)
    fig = _new_figure(figsize or DEFAULT_SIZE)
    ax = fig.add_subplot()
    for position, (name, series) in enumerate(cleaned.items()):
        equity = series.to_numpy(dtype=float)
        if np.any(equity <= 0):
            fig.clear()
            raise ValueError(f"{chart}: equity curve {name!r} must be strictly positive")
        drawdown = (equity / np.maximum.accumulate(equity) - 1.0) * 100.0
        x = _x_values(series.index)
        if position == 0:
            (line,) = ax.plot(x, drawdown, label=name, linewidth=1.2)
            ax.fill_between(x, drawdown, 0.0, color=line.get_color(), alpha=0.3, linewidth=0)
        else:
            ax.plot(x, drawdown, label=name, linewidth=1.2)
    _format_time_axis(ax, cleaned)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
    ax.set_ylabel("Drawdown from peak", fontsize=_LABEL_SIZE)
    ax.set_title(title, fontsize=_TITLE_SIZE)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=9, frameon=False)
    return _to_png(fig)


def heatmap_png(
    table: pd.DataFrame,
    title: str = "Heatmap",
    value_label: str = "value",
    *,
    figsize: tuple[float, float] | None = None,
) -> bytes:
    """A metric over a rows × columns grid (e.g. Sharpe by SMA length × RSI thresholds).

    Cells carry the value to 2 decimals on a diverging colour map centred on 0; NaN cells are
    grey and left blank. Axis labels come from the index and column names.
    """
    chart = "heatmap_png"
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise ValueError(f"{chart}: table is empty")
    try:
        values = table.apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{chart}: table must hold numbers") from exc
    n_rows, n_cols = values.shape
    finite = values[np.isfinite(values)]
    bound = float(np.abs(finite).max()) if finite.size else 0.0
    bound = bound if bound > 0 else 1.0
    norm = Normalize(vmin=-bound, vmax=bound)
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad=_NAN_COLOUR)

    size = figsize or (
        _clamp(2.5 + 0.9 * n_cols, 5.0, 16.0),
        _clamp(1.8 + 0.5 * n_rows, 3.5, 12.0),
    )
    fig = _new_figure(size)
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    if n_rows * n_cols <= 400:
        for row in range(n_rows):
            for col in range(n_cols):
                value = values[row, col]
                if not np.isfinite(value):
                    continue
                ax.text(
                    col,
                    row,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color=_text_colour(cmap(norm(value))),
                )
    ax.set_xticks(range(n_cols), [str(c) for c in table.columns], fontsize=10)
    ax.set_yticks(range(n_rows), [str(i) for i in table.index], fontsize=10)
    if n_cols > 8:
        for tick in ax.get_xticklabels():
            tick.set_rotation(45)
            tick.set_horizontalalignment("right")
    if table.columns.name is not None:
        ax.set_xlabel(str(table.columns.name), fontsize=_LABEL_SIZE)
    if table.index.name is not None:
        ax.set_ylabel(str(table.index.name), fontsize=_LABEL_SIZE)
    ax.set_title(title, fontsize=_TITLE_SIZE)
    fig.colorbar(image, ax=ax, label=value_label)
    return _to_png(fig)


def bar_png(
    values: Mapping[str, float],
    title: str = "Values",
    value_label: str = "value",
    *,
    reference: float | None = None,
    reference_label: str = "baseline",
    figsize: tuple[float, float] | None = None,
) -> bytes:
    """Horizontal bars, one per name in the given order (top to bottom), values annotated.

    ``reference`` draws a dashed line (e.g. the baseline accuracy). NaN values get no bar and
    are annotated "n/a".
    """
    chart = "bar_png"
    if not values:
        raise ValueError(f"{chart}: no values given")
    names = [str(name) for name in values]
    try:
        numbers = np.array([float(v) if v is not None else math.nan for v in values.values()])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{chart}: values must be numbers") from exc

    size = figsize or (DEFAULT_SIZE[0], _clamp(1.2 + 0.35 * len(names), 3.0, 14.0))
    fig = _new_figure(size)
    ax = fig.add_subplot()
    positions = np.arange(len(names))
    finite = np.isfinite(numbers)
    colours = ["#2b8cbe" if v >= 0 else "#d7301f" for v in np.where(finite, numbers, 0.0)]
    ax.barh(positions, np.where(finite, numbers, 0.0), color=colours, height=0.7)
    span = float(np.abs(numbers[finite]).max()) if finite.any() else 1.0
    offset = 0.01 * (span or 1.0)
    for position, value, ok in zip(positions, numbers, finite, strict=True):
        label = f"{value:.3g}" if ok else "n/a"
        ha = "left" if not ok or value >= 0 else "right"
        x = (value if ok else 0.0) + (offset if ha == "left" else -offset)
        ax.text(x, position, label, va="center", ha=ha, fontsize=9)
    if reference is not None and math.isfinite(reference):
        ax.axvline(reference, color="black", linestyle="--", linewidth=1.0, label=reference_label)
        ax.legend(loc="lower right", fontsize=9, frameon=False)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(positions, names, fontsize=10)
    ax.invert_yaxis()
    ax.margins(x=0.12)
    ax.set_xlabel(value_label, fontsize=_LABEL_SIZE)
    ax.set_title(title, fontsize=_TITLE_SIZE)
    ax.grid(True, axis="x", alpha=0.3)
    return _to_png(fig)
