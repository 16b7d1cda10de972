"""Dagster types: ``OhlcvBars``, the contract of every ``ohlcv_daily`` output, as a
``dagster-pandas`` DataFrame type that Dagit shows on the asset (columns, dtypes, rules).

The contract itself is ``quality.contract``; here it becomes ``PandasColumn`` constraints.
Dagster checks the type when the asset yields its frame, before the IO manager writes it: a
frame that breaks it fails the run and nothing is stored. The ingest's own report comes first:
``ohlcv_daily`` fails with the guardrails' one-line-per-symbol message before it yields any
frame, so the type only ever sees bars the guardrails passed, and guards what they cannot see
(the stored rows a run reuses, a future source path, a bug in between).
"""

from __future__ import annotations

import warnings
from typing import Any

import dagster as dg
import pandas as pd
from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type
from dagster_pandas.constraints import (
    ColumnConstraint,
    ColumnConstraintViolationException,
    ColumnDTypeInSetConstraint,
    DataFrameConstraint,
    DataFrameConstraintViolationException,
    NonNullableColumnConstraint,
    StrictColumnsConstraint,
)

from sensequant_assets.quality.contract import (
    BAR_DTYPES,
    KEY_COLUMNS,
    NON_NEGATIVE_COLUMNS,
    NOT_NULL_COLUMNS,
    POSITIVE_COLUMNS,
)

SHOWN_ROWS = 5


def _first_rows(rows: pd.DataFrame, column: str | None = None) -> str:
    """``SYMBOL DATE[=value]`` for the first offending rows: enough to find them in a log."""
    shown = [
        f"{row.symbol} {pd.Timestamp(row.date).date()}"
        + (f" {column}={getattr(row, column)}" if column else "")
        for row in rows.head(SHOWN_ROWS).itertuples(index=False)
    ]
    more = len(rows) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


class AboveBound(ColumnConstraint):
    """Every value above ``bound`` (or at it, when ``inclusive``); a missing value fails too.

    Vectorized, unlike ``dagster-pandas``'s range constraint, and its message names the
    offending bars by symbol and date instead of dumping every row.
    """

    def __init__(self, bound: float, inclusive: bool):
        self.bound, self.inclusive = bound, inclusive
        relation = "≥" if inclusive else ">"
        text = f"Every value {relation} {bound:g}."
        super().__init__(error_description=text, markdown_description=text)
        self.name = f"{relation} {bound:g}"

    def validate(self, dataframe: pd.DataFrame, column_name: str) -> None:
        values = dataframe[column_name]
        ok = values >= self.bound if self.inclusive else values > self.bound  # NaN: False
        bad = dataframe[~ok.to_numpy(dtype=bool)]
        if len(bad):
            raise ColumnConstraintViolationException(
                constraint_name=self.name,
                constraint_description=(
                    f"{self.error_description} {len(bad)} row(s) break it: "
                    f"{_first_rows(bad, column_name)}. "
                ),
                column_name=column_name,
            )


class UniqueKey(DataFrameConstraint):
    """One row per key (symbol, date): a repeated bar would be stored twice."""

    def __init__(self, columns: tuple[str, ...]):
        self.columns = list(columns)
        text = f"One row per ({', '.join(columns)})."
        super().__init__(error_description=text, markdown_description=text)
        self.name = "unique key"

    def validate(self, dataframe: pd.DataFrame) -> None:
        repeated = dataframe[dataframe.duplicated(self.columns, keep=False)]
        if len(repeated):
            raise DataFrameConstraintViolationException(
                constraint_name=self.name,
                constraint_description=f"{self.error_description} Repeated: "
                f"{_first_rows(repeated.drop_duplicates(self.columns))}",
            )


def _column(name: str, dtype: str) -> PandasColumn:
    constraints: list[Any] = [ColumnDTypeInSetConstraint({dtype})]
    if name in NOT_NULL_COLUMNS:
        constraints.append(NonNullableColumnConstraint())
    if name in POSITIVE_COLUMNS:
        constraints.append(AboveBound(0, inclusive=False))
    if name in NON_NEGATIVE_COLUMNS:
        constraints.append(AboveBound(0, inclusive=True))
    return PandasColumn(name, constraints=constraints)


def _ohlcv_bars() -> Any:
    """The type, built without dagster-pandas' beta warnings: this module is imported by every
    command, and a warning on stderr would precede each one's own one-line error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return create_dagster_pandas_dataframe_type(
            name="OhlcvBars",
            description=(
                "Validated daily bars as stored in the warehouse: exactly the columns below, "
                "in this order, and one row per NSE symbol and trading date; prices as "
                "received (unadjusted). High ≥ low is not enforced here: the "
                "`ohlc_consistent` check flags such bars at WARN and keeps them."
            ),
            columns=[_column(name, dtype) for name, dtype in BAR_DTYPES.items()],
            dataframe_constraints=[
                StrictColumnsConstraint(list(BAR_DTYPES), enforce_ordering=True),
                UniqueKey(KEY_COLUMNS),
            ],
        )


OhlcvBars = _ohlcv_bars()
