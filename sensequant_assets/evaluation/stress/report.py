"""The stress-test report: what a run found, as files a reviewer reads.

``write_stress_report`` writes ``stress_summary.json``, ``stress_report.md`` and an equity and
a drawdown PNG per evaluated window, atomically, through ``reports.py`` and ``charts.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sensequant_assets.artifacts import (
    STRESS_REPORT_MD,
    STRESS_SUMMARY_JSON,
    StressLayout,
    stress_chart_name,
)
from sensequant_assets.evaluation.backtest import equity_curve
from sensequant_assets.evaluation.reports import (
    Image,
    Section,
    Table,
    render_markdown,
    write_png,
    write_report,
)
from sensequant_assets.evaluation.stress.result import STRATEGIES, StressResult
from sensequant_assets.evaluation.stress.scoring import (
    FAILURE_MODE_RULES,
    PASS_MARK,
    RESILIENCE_FORMULA,
)

STRATEGY_LABELS = {
    "student": "student",
    "buy_and_hold": "buy & hold",
    "sixty_forty": "60/40",
    "cash": "cash",
}


def write_stress_report(result: StressResult, out_dir: Path) -> dict[str, Path]:
    """Write ``stress_summary.json``, ``stress_report.md`` and per evaluated window
    ``<slug>_equity.png`` and ``<slug>_drawdown.png`` into ``out_dir``, atomically.

    Returns the paths written, keyed by file name.
    """
    layout = StressLayout(Path(out_dir))
    written: dict[str, Path] = {}
    slugs = _unique_slugs([w["name"] for w in result.windows])
    image_paths: dict[str, str] = {}
    window_sections: list[Section] = []
    for window in result.windows:
        if window["status"] != "evaluated":
            continue
        name = window["name"]
        images = _window_images(result.daily_returns.get(name), name)
        for kind, image in images.items():
            file_name = stress_chart_name(slugs[name], kind)
            written[file_name] = write_png(layout.chart(file_name), image.png)
            image_paths[image.caption] = file_name
        window_sections.append(_window_section(window, list(images.values())))

    summary = result.to_dict()
    text = json.dumps(summary, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    written[STRESS_SUMMARY_JSON] = write_report(layout.summary, text)
    sections = [_summary_section(result), *window_sections]
    if result.out_of_stress:
        sections.insert(1, _outside_section(result.out_of_stress))
    markdown = render_markdown("Stress tests", sections, image_paths)
    written[STRESS_REPORT_MD] = write_report(layout.report, markdown)
    return written


def _unique_slugs(names: Sequence[str]) -> dict[str, str]:
    slugs: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "window"
        slug, n = base, 2
        while slug in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug)
        slugs[name] = slug
    return slugs


def _window_images(series: pd.DataFrame | None, name: str) -> dict[str, Image]:
    # imported here: matplotlib is slow to import and only report writing needs it
    from sensequant_assets.evaluation.charts import drawdown_png, equity_curves_png

    if series is None:
        return {}
    curves: dict[str, pd.Series] = {}
    for strategy in STRATEGIES:
        values = series[strategy].dropna()
        if len(values):
            curves[STRATEGY_LABELS[strategy]] = equity_curve(values)
    if not curves:
        return {}
    return {
        "equity": Image(
            f"{name}: equity",
            equity_curves_png(curves, title=f"{name}: equity (start = 1)"),
        ),
        "drawdown": Image(f"{name}: drawdown", drawdown_png(curves, title=f"{name}: drawdown")),
    }


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:.1%}"


def _metric(window: Mapping[str, Any], strategy: str, key: str) -> float | None:
    metrics = window.get("metrics") or {}
    return (metrics.get(strategy) or {}).get(key)


def _summary_section(result: StressResult) -> Section:
    if result.overall_score is None:
        verdict = "No window could be evaluated, so there is no overall score (not passed)."
    else:
        verdict = (
            f"Overall resilience score {result.overall_score:.1f} / 100 (pass mark "
            f"{PASS_MARK:g}): {'PASSED' if result.passed else 'FAILED'}."
        )
    settings = result.settings
    costs = settings.get("costs", {})
    paragraphs = [
        verdict,
        f"{result.evaluated} window(s) evaluated, {result.skipped} skipped (a skipped window "
        "has too little out-of-sample data; it is neither passed nor failed).",
        f"Student traded long/flat on its out-of-sample predictions, costs "
        f"{costs.get('round_trip_bp', 0):g} bp round trip + {costs.get('slippage_bp', 0):g} bp "
        f"slippage per side, risk-free rate {settings.get('risk_free_annual', 0):.2%} a year.",
        f"Resilience score: {RESILIENCE_FORMULA}.",
        "Failure modes (first matching rule): " + "; ".join(FAILURE_MODE_RULES) + ".",
    ]
    columns = ["window", "start", "end", "status"]
    for strategy in STRATEGIES:
        label = STRATEGY_LABELS[strategy]
        columns += [f"{label} return", f"{label} MDD"]
    columns += ["score", "failure mode"]
    rows = []
    for window in result.windows:
        status = window["status"]
        if status != "evaluated":
            status = f"skipped: {window['reason']}"
        row: list[object] = [window["name"], window["start"], window["end"], status]
        for strategy in STRATEGIES:
            row += [
                _pct(_metric(window, strategy, "total_return")),
                _pct(_metric(window, strategy, "max_drawdown")),
            ]
        score = window["score"]
        row += [None if score is None else round(score, 1), window["failure_mode"]]
        rows.append(row)
    return Section("Summary", paragraphs, [Table("Stress windows", columns, rows)])


def _outside_section(outside: Mapping[str, Any]) -> Section:
    student = outside.get("student") or {}
    holding = outside.get("buy_and_hold") or {}
    rows = [
        ["sessions", outside.get("sessions")],
        ["accuracy", _pct(outside.get("accuracy"))],
        ["student total return", _pct(student.get("total_return"))],
        ["buy & hold total return", _pct(holding.get("total_return"))],
        ["student Sharpe", student.get("sharpe")],
        ["buy & hold Sharpe", holding.get("sharpe")],
    ]
    return Section(
        "Outside the stress windows",
        ["The reference the failure-mode rules compare each window against."],
        [Table("", ["figure", "value"], rows)],
    )


def _window_section(window: Mapping[str, Any], images: list[Image]) -> Section:
    components = window["score_components"] or {}
    parts = ", ".join(
        f"{key.replace('_', ' ')} {value:.1f}"
        for key, value in components.items()
        if value is not None
    )
    paragraphs = [
        f"{window['start']} to {window['end']}: {window['sessions']} sessions "
        f"({window['first_session']} to {window['last_session']}). Market max drawdown "
        f"{_pct(window['market_max_drawdown'])} (from {window['market_drawdown_source']}).",
        f"Resilience score {window['score']:.1f} ({parts}). Failure mode: "
        f"{window['failure_mode']} — {window['failure_mode_reason']}.",
    ]
    strategy_rows = []
    for strategy in STRATEGIES:
        metrics = window["metrics"][strategy]
        strategy_rows.append(
            [
                STRATEGY_LABELS[strategy],
                metrics["sessions"],
                _pct(metrics["total_return"]),
                _pct(metrics["max_drawdown"]),
                metrics["sharpe"],
                metrics["sortino"],
            ]
        )
    classification = window["classification"]
    class_rows = [
        ["labelled rows", classification["labelled_rows"]],
        ["accuracy", _pct(classification["accuracy"])],
        ["precision (macro)", _pct(classification["precision_macro"])],
        ["recall (macro)", _pct(classification["recall_macro"])],
        ["up-call precision", _pct(classification["up_precision"])],
        ["up calls", classification["up_calls"]],
        ["majority class", classification["majority_class"]],
        ["majority share", _pct(classification["majority_share"])],
        ["student exposure (mean share invested)", _pct(window["metrics"]["student"]["exposure"])],
    ]
    tables = [
        Table(
            "Strategies",
            ["strategy", "sessions", "total return", "max drawdown", "Sharpe", "Sortino"],
            strategy_rows,
        ),
        Table("Student classification", ["figure", "value"], class_rows),
    ]
    return Section(str(window["name"]), paragraphs, tables, images)
