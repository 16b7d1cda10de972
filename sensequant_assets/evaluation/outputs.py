"""Files a reviewer reads: validation summary, statistical tests, gate decision, HTML reports.

All land in the candidate's audit directory (``release/audit_live_candidate_<ts>/``); every
file is written atomically, and JSON refuses NaN so a placeholder can never slip through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from sensequant_assets.artifacts import (
    ACCURACY_REPORT,
    OPTIMIZATION_REPORT,
    VALIDATION_JSON,
    VALIDATION_MD,
    AuditLayout,
)
from sensequant_assets.atomic import write_atomic_with
from sensequant_assets.evaluation.backtest import equity_curve
from sensequant_assets.evaluation.reports import (
    Image,
    Section,
    Table,
    render_html,
    render_markdown,
    write_report,
)
from sensequant_assets.evaluation.validation import Validation


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    return write_report(path, json.dumps(payload, indent=2, allow_nan=False, default=str))


def write_oos(oos: pd.DataFrame, audit_dir: Path) -> Path:
    """The walk-forward predictions, so later stages replay exactly what was validated."""
    return write_atomic_with(
        AuditLayout(audit_dir).oos_predictions, lambda tmp: oos.to_parquet(tmp, index=False)
    )


def write_validation(validation: Validation, audit_dir: Path) -> dict[str, Path]:
    """``validation_summary.json/.md`` and the two HTML reports."""
    summary = validation.summary
    audit = AuditLayout(audit_dir)
    written = {
        VALIDATION_JSON: write_json(audit.validation_json, summary),
        VALIDATION_MD: write_report(
            audit.validation_md,
            render_markdown("Validation summary", _summary_sections(summary)),
        ),
    }
    accuracy = _summary_sections(summary) + _chart_sections(validation)
    written[ACCURACY_REPORT] = write_report(
        audit.accuracy_report, render_html("Out-of-sample accuracy and backtest", accuracy)
    )
    written[OPTIMIZATION_REPORT] = write_report(
        audit.optimization_report,
        render_html("Rule optimizer: every trial", _optimizer_sections(validation)),
    )
    return written


def _summary_sections(summary: dict[str, Any]) -> list[Section]:
    oos, config = summary["out_of_sample"], summary["config"]
    period = (
        f"{oos['samples']:,} predictions on {oos['sessions']} sessions from "
        f"{oos['start']} to {oos['end']}, {len(oos['symbols'])} symbol(s), "
        f"{oos['folds']} walk-forward fold(s). Gated strategy: "
        f"{config['strategy']}, each call held {config['holding_sessions']} session(s)."
    )
    return [
        Section("Out-of-sample period", paragraphs=[period]),
        Section("Classification", tables=[_macro_table(summary), _folds_table(summary["folds"])]),
        Section("Backtest (net of costs)", tables=[_backtest_table(summary)]),
    ]


def _macro_table(summary: dict[str, Any]) -> Table:
    reports = {"student": summary["classification"], **{
        name.replace("_", " "): report
        for name, report in summary["baselines_classification"].items()
    }}  # fmt: skip
    return Table(
        "Macro averages",
        ["model", "accuracy", "precision", "recall", "F1"],
        [
            [name, r["accuracy"], r["precision_macro"], r["recall_macro"], r["f1_macro"]]
            for name, r in reports.items()
        ],
    )


def _folds_table(folds: list[dict[str, Any]]) -> Table:
    columns = ("fold", "start", "end", "samples", "accuracy", "majority_class_accuracy",
               "yesterday_direction_accuracy")  # fmt: skip
    return Table(
        "Walk-forward folds",
        ["fold", "start", "end", "samples", "accuracy", "majority", "yesterday"],
        [[f[c] for c in columns] for f in folds],
    )


def _backtest_table(summary: dict[str, Any]) -> Table:
    strategies = {
        **{f"student {mode.replace('_', '/')}": v for mode, v in summary["backtest"].items()},
        **{name.replace("_", " "): v for name, v in summary["baselines_backtest"].items()},
    }
    columns = ("total_return", "annual_return", "sharpe", "sortino", "max_drawdown")
    return Table(
        "Strategies and baselines",
        ["strategy", "total return", "annual return", "Sharpe", "Sortino", "max drawdown"],
        [[name, *(v[c] for c in columns)] for name, v in strategies.items()],
    )


def _chart_sections(validation: Validation) -> list[Section]:
    # matplotlib costs ~0.4 s to import: only runs that draw pay for it, not every
    # definitions load
    from sensequant_assets.evaluation import charts

    summary = validation.summary
    curves = {
        f"student {mode.replace('_', '/')}": equity_curve(result.portfolio_returns)
        for mode, result in validation.backtests.items()
    }
    curves.update(
        {
            name.replace("_", " "): equity_curve(series)
            for name, series in validation.baselines.items()
        }
    )
    folds = {f"fold {f['fold']}": f["accuracy"] for f in summary["folds"]}
    return [
        Section(
            "Charts",
            images=[
                Image(
                    "Confusion matrix (rows: actual, columns: predicted)",
                    charts.confusion_matrix_png(summary["classification"]["confusion_matrix"]),
                ),
                Image("Equity curves", charts.equity_curves_png(curves)),
                Image("Drawdown", charts.drawdown_png(curves)),
                Image(
                    "Accuracy per fold (dashed: majority-class baseline overall)",
                    charts.bar_png(
                        folds,
                        title="Accuracy per fold",
                        value_label="accuracy",
                        reference=summary["baselines_classification"]["majority_class"]["accuracy"],
                        reference_label="majority class",
                    ),
                ),
            ],
        )
    ]


def _optimizer_sections(validation: Validation) -> list[Section]:
    from sensequant_assets.evaluation import charts  # lazily, as in _chart_sections

    trials = validation.optimizer.trials
    grid = trials.assign(
        thresholds=trials["rsi_entry"].astype(str) + "–" + trials["rsi_exit"].astype(str)
    )
    heat = grid.pivot_table(
        index="sma_length", columns="thresholds", values="sharpe", aggfunc="first"
    )
    heat.index.name, heat.columns.name = "SMA length", "RSI entry–exit"
    columns = ["trial_id", "sma_length", "rsi_entry", "rsi_exit", "sharpe", "total_return",
               "max_drawdown", "turnover"]  # fmt: skip
    return [
        Section(
            "Search",
            paragraphs=[
                f"{validation.optimizer.n_trials} trials over the out-of-sample dates; all are "
                f"kept because the trial count deflates the Sharpe ratio. Best: "
                f"{validation.optimizer.best_trial}."
            ],
            images=[
                Image(
                    "Sharpe ratio by parameters", charts.heatmap_png(heat, "Sharpe ratio", "Sharpe")
                )
            ],
        ),
        Section(
            "Trials", tables=[Table("Every trial", columns, trials[columns].to_numpy().tolist())]
        ),
    ]
