"""Every asset check: the data-quality guardrails, the market data's freshness, sentiment
coverage, the teacher rules and the production signals' coverage, model and drift checks.

The rules themselves live in ``sensequant_assets.quality`` and ``training.diagnostics``; here
each rule group becomes an ``AssetCheckSpec`` and a run's findings become
``AssetCheckResult``s. Hard errors are ERROR checks and also fail the materialization (so
nothing of the run is written); corrections and suspicious data are WARN checks that keep the
data and say exactly what was seen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg

from sensequant_assets.calendar import MARKET_TIMEZONE
from sensequant_assets.defs.partitions import DATE_FORMAT
from sensequant_assets.freshness import INGEST_DEADLINE, due_session
from sensequant_assets.live.drift import (
    BINS,
    KS_ERROR,
    KS_WARN,
    MIN_ROWS,
    PSI_ERROR,
    PSI_WARN,
    SCORE,
    WINDOW_SESSIONS,
    judged,
    worst_session,
)
from sensequant_assets.quality import Finding
from sensequant_assets.training import diagnostics
from sensequant_assets.training.teacher_record import TeacherRun

MAX_LISTED_FINDINGS = 50
MAX_LISTED_PARTITIONS = 500
"""Failing partition keys a guardrail's result lists; ``failing_partitions`` counts them all."""
BENCHMARK_CHECKS = ("valid_rows", "ohlc_consistent", "calendar_complete")
"""The guardrails the NIFTY 50 benchmark is checked against."""
MIN_SENTIMENT_COVERAGE = 0.5


@dataclass(frozen=True)
class Guardrail:
    name: str
    rules: tuple[str, ...]
    severity: dg.AssetCheckSeverity
    description: str


GUARDRAILS = (
    Guardrail(
        "valid_rows",
        (
            "missing_columns",
            "unparsable_date",
            "unparsable_number",
            "bad_price",
            "duplicate_date",
            "symbol_mismatch",
            "price_jump",
        ),
        dg.AssetCheckSeverity.ERROR,
        "Hard rules: all columns present, dates and numbers parse, prices positive, one row per "
        "date, symbol matches, no overnight jump beyond SENSEQUANT_MAX_OVERNIGHT_MOVE that no "
        "split, bonus or listed corporate action explains. A violation fails the partition; "
        "stored data stays as it was.",
    ),
    Guardrail(
        "volume_not_negative",
        ("negative_volume",),
        dg.AssetCheckSeverity.WARN,
        "Negative volumes are clipped to 0; the count and the original values are reported.",
    ),
    Guardrail(
        "ohlc_consistent",
        ("ohlc_inconsistent",),
        dg.AssetCheckSeverity.WARN,
        "high ≥ max(open, close) and low ≤ min(open, close).",
    ),
    Guardrail(
        "calendar_complete",
        ("calendar_gap", "non_trading_day"),
        dg.AssetCheckSeverity.WARN,
        "One row per NSE trading day: no gaps, no rows on holidays or weekends.",
    ),
    Guardrail(
        "no_unadjusted_split",
        ("split_suspect",),
        dg.AssetCheckSeverity.WARN,
        "No overnight move that looks like an unadjusted split or bonus (1:2, 1:5, ...); a "
        "failure lists the SENSEQUANT_CORPORATE_ACTIONS_FILE lines that would adjust them.",
    ),
)


def check_specs(asset_key: str, names: Iterable[str] | None = None) -> list[dg.AssetCheckSpec]:
    wanted = set(names) if names is not None else None
    return [
        dg.AssetCheckSpec(g.name, asset=asset_key, description=g.description)
        for g in GUARDRAILS
        if wanted is None or g.name in wanted
    ]


def _finding_table(findings: Sequence[Finding]) -> dg.MetadataValue:
    rows = [
        f"| {f.symbol} | {f.date or ''} | {f.column or ''} | {f.rule} | "
        f"{f.message.replace('|', '/')} |"
        for f in findings[:MAX_LISTED_FINDINGS]
    ]
    more = len(findings) - MAX_LISTED_FINDINGS
    tail = f"\n\n… and {more} more" if more > 0 else ""
    header = "| symbol | date | column | rule | message |\n|---|---|---|---|---|\n"
    return dg.MetadataValue.md(header + "\n".join(rows) + tail)


def failing_partitions(findings: Sequence[Finding], partition_keys: Sequence[str]) -> list[str]:
    """The run's partitions ``findings`` fall on, in the run's order.

    A key is ``date|symbol`` (``ohlcv_daily``) or ``date`` (one symbol's days: the benchmark).
    A finding on a day names that day's partition; one without a day (a missing column, an
    unreadable date) fails every partition of its symbol in the run; one on a day that is no
    partition (a row on a holiday) names none.
    """
    dated = {(f.date.isoformat(), f.symbol) for f in findings if f.date is not None}
    days = {day for day, _ in dated}
    whole = {f.symbol for f in findings if f.date is None}

    def failed(key: str) -> bool:
        day, _, symbol = key.partition("|")
        if not symbol:  # every finding of a one-symbol asset is about that symbol
            return bool(whole) or day in days
        return symbol in whole or (day, symbol) in dated

    return [key for key in map(str, partition_keys) if failed(key)]


def check_results(
    asset_key: str,
    findings: Sequence[Finding],
    names: Iterable[str] | None = None,
    partition_keys: Sequence[str] = (),
) -> list[dg.AssetCheckResult]:
    """One result per guardrail and run: passed when none of its rules produced a finding.

    With the run's ``partition_keys``, a result names the partitions that failed it
    (``failing_partition_keys``, the first :data:`MAX_LISTED_PARTITIONS`): a per-partition
    check would show each partition's verdict in Dagit, but it costs a stored evaluation per
    partition and check, far beyond the deep-history budget (docs/benchmarks.md, section (h)).
    """
    wanted = set(names) if names is not None else None
    results = []
    for guardrail in GUARDRAILS:
        if wanted is not None and guardrail.name not in wanted:
            continue
        hits = [f for f in findings if f.rule in guardrail.rules]
        metadata: dict[str, Any] = {"findings": len(hits)}
        for rule in guardrail.rules:
            metadata[rule] = sum(1 for f in hits if f.rule == rule)
        if partition_keys:
            failing = failing_partitions(hits, partition_keys) if hits else []
            metadata["partitions"] = len(partition_keys)
            metadata["failing_partitions"] = len(failing)
            if failing:
                keys = failing[:MAX_LISTED_PARTITIONS]
                metadata["failing_partition_keys"] = dg.MetadataValue.json(keys)
        if hits:
            metadata["symbols"] = ", ".join(sorted({f.symbol for f in hits}))
            metadata["details"] = _finding_table(hits)
        lines = [f.corporate_action for f in hits if f.corporate_action]
        if lines:
            metadata["corporate_actions_to_add"] = dg.MetadataValue.md(
                "Lines for SENSEQUANT_CORPORATE_ACTIONS_FILE, once the exchange's filings confirm "
                "them (kind `bonus` for a bonus issue):\n\n```\nsymbol,ex_date,kind,ratio\n"
                + "\n".join(lines)
                + "\n```"
            )
        results.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=guardrail.name,
                passed=not hits,
                severity=guardrail.severity,
                metadata=metadata,
                description=hits[0].message if hits else None,
            )
        )
    return results


FRESHNESS_CHECK = "fresh"
FRESHNESS_CHECK_KEYS = tuple(
    dg.AssetCheckKey(dg.AssetKey(a), FRESHNESS_CHECK) for a in ("ohlcv_daily", "nifty50_benchmark")
)
_utc_now = partial(dt.datetime.now, dt.UTC)


def freshness_checks(
    symbols: Sequence[str], clock: Callable[[], dt.datetime] = _utc_now
) -> list[dg.AssetChecksDefinition]:
    """``fresh`` on ``ohlcv_daily`` and ``nifty50_benchmark``: every partition of the session
    due by now (``freshness.due_session``, on the NSE calendar) is materialized.

    Dagster's ``build_last_update_freshness_checks`` measures a wall-clock lag (stale every
    Monday and after a holiday, fresh after a backfill of 2008); its time-partition variant
    takes no symbol × day asset. These run at each weekday's deadline (their automation
    condition: Dagit's ``default_automation_condition_sensor``) or from Dagit, never inside
    an ingest run (``jobs.FRESHNESS_EXCLUDED``): a backfill does not judge the time of day.
    """
    ordered = sorted(symbols)
    deadline = f"{INGEST_DEADLINE.minute} {INGEST_DEADLINE.hour} * * 1-5"

    def build(asset: str, keys: Callable[[dt.date], list[str]]) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=asset,
            name=FRESHNESS_CHECK,
            description=f"Every partition of the last NSE session is stored by "
            f"{INGEST_DEADLINE:%H:%M} IST (holidays and weekends are no sessions).",
            required_resource_keys={"market_data"},
            automation_condition=dg.AutomationCondition.cron_tick_passed(deadline, MARKET_TIMEZONE),
        )
        def fresh(context) -> dg.AssetCheckResult:  # unannotated: Dagster refuses a string
            session = due_session(context.resources.market_data.calendar, clock())
            expected = keys(session)
            stored = context.instance.get_latest_storage_id_by_partition(
                dg.AssetKey(asset), dg.DagsterEventType.ASSET_MATERIALIZATION, set(expected)
            )
            missing = [k for k in expected if k not in stored]
            metadata: dict[str, Any] = {"session": session.isoformat(), "missing": len(missing)}
            if missing:
                listed = missing[:MAX_LISTED_PARTITIONS]
                metadata["missing_partition_keys"] = dg.MetadataValue.json(listed)
            return dg.AssetCheckResult(
                passed=not missing,
                severity=dg.AssetCheckSeverity.WARN,
                metadata=metadata,
                description=f"{len(missing)} of {len(expected)} partition(s) of {session} missing",
            )

        return fresh

    return [
        build("ohlcv_daily", lambda day: [f"{day.strftime(DATE_FORMAT)}|{s}" for s in ordered]),
        build("nifty50_benchmark", lambda day: [day.strftime(DATE_FORMAT)]),
    ]


SENTIMENT_CHECKS = [
    dg.AssetCheckSpec(
        "sentiment_coverage",
        asset="sentiment_snapshots",
        description=f"At least {MIN_SENTIMENT_COVERAGE:.0%} of symbol-days have a score.",
    )
]


def sentiment_check_result(share: float, headlines_file: Path) -> dg.AssetCheckResult:
    """WARN when fewer than :data:`MIN_SENTIMENT_COVERAGE` of the run's symbol-days scored."""
    return dg.AssetCheckResult(
        check_name="sentiment_coverage",
        passed=share >= MIN_SENTIMENT_COVERAGE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"coverage": share, "headlines_file": str(headlines_file)},
    )


def teacher_check_results(runs: Sequence[TeacherRun]) -> list[dg.AssetCheckResult]:
    """Report the run's windows against the four teacher rules in ``training.diagnostics``."""
    verdicts = (
        ("sample_minimum", diagnostics.short_windows(runs), "skipped for too few samples"),
        (
            "class_balance",
            diagnostics.unbalanced_windows(runs),
            f"with a class under {diagnostics.MIN_CLASS_SHARE:.0%} of training samples",
        ),
        ("finite_features", diagnostics.nonfinite_windows(runs), "trained on NaN or inf"),
        ("no_leakage", diagnostics.leaky_windows(runs), "whose labels reach into validation"),
    )
    errors = {"finite_features", "no_leakage"}
    return [
        dg.AssetCheckResult(
            check_name=name,
            passed=not bad,
            severity=dg.AssetCheckSeverity.ERROR if name in errors else dg.AssetCheckSeverity.WARN,
            metadata={"windows_checked": len(runs), "violations": len(bad), "windows": bad[:50]},
            description=f"{len(bad)} window(s) {what}" if bad else None,
        )
        for name, bad, what in verdicts
    ]


TEACHER_CHECKS = [
    dg.AssetCheckSpec(
        "sample_minimum",
        asset="teacher_model",
        description="Windows skipped for fewer labelled samples than SENSEQUANT_MIN_SAMPLES.",
    ),
    dg.AssetCheckSpec(
        "class_balance",
        asset="teacher_model",
        description=(
            f"Every class holds at least {diagnostics.MIN_CLASS_SHARE:.0%} of a teacher's "
            "train set."
        ),
    ),
    dg.AssetCheckSpec(
        "finite_features", asset="teacher_model", description="No NaN or inf feature reached a fit."
    ),
    dg.AssetCheckSpec(
        "no_leakage",
        asset="teacher_model",
        description="No training sample's label horizon reaches into its validation period.",
    ),
]


_DRIFT_RULE = (
    f"over the last {WINDOW_SESSIONS} sessions against the student's training rows, PSI over "
    f"{BINS} bins and KS: WARN from PSI {PSI_WARN} or KS {KS_WARN}, ERROR from PSI {PSI_ERROR} "
    f"or KS {KS_ERROR}, each limit raised to what the training period's own windows reached. "
    "Fails with that severity; passes, saying so, with fewer than "
    f"{MIN_ROWS} rows to judge; fails (WARN) for a bundle without a drift reference."
)
SIGNAL_CHECKS = {
    "model_verified": "The scoring model is the one live in the stage, its files exactly those "
    "the approval bound, its booster's SHA-256 its metadata's. Fails (with the asset) otherwise.",
    "universe_covered": "Every partitioned symbol got a call; lists those that did not, by reason.",
    "features_fresh": "No symbol's latest bar is older than the session (it would be scored on "
    "stale features, so it is not scored).",
    "bars_present": "Every partitioned symbol has stored bars at all.",
    "feature_drift": f"Each model feature (raw) {_DRIFT_RULE}",
    "score_drift": f"The score P(up) − P(down) {_DRIFT_RULE}",
}
DRIFT_CHECKS = {"feature_drift": "features", "score_drift": SCORE}
"""Each drift check and the ``live.drift.window_drift`` report it reads."""
BY_SESSION = "by_session"
NO_DRIFT_REFERENCE = "no drift reference in this bundle (trained before drift profiles existed)"


def signal_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name, asset=asset, description=text)
        for name, text in SIGNAL_CHECKS.items()
    ]


def signal_check_results(asset: str, summary: dict[str, Any]) -> list[dg.AssetCheckResult]:
    """The coverage checks of a scored session (``DayScores.summary``)."""
    unscored = {
        "without bars": summary["without_bars"],
        "stale": sorted(summary["stale"]),
        "incomplete features": summary["incomplete_features"],
    }
    missing = sum(len(symbols) for symbols in unscored.values())
    return [
        dg.AssetCheckResult(
            asset_key=asset,
            check_name="universe_covered",
            passed=missing == 0,
            metadata={
                "scored": summary["scored"],
                "universe": summary["universe"],
                **{reason: ", ".join(symbols) for reason, symbols in unscored.items() if symbols},
            },
        ),
        dg.AssetCheckResult(
            asset_key=asset,
            check_name="features_fresh",
            passed=not summary["stale"],
            metadata={s: f"last bar {d}" for s, d in sorted(summary["stale"].items())[:50]},
        ),
        dg.AssetCheckResult(
            asset_key=asset,
            check_name="bars_present",
            passed=not summary["without_bars"],
            metadata={"without_bars": ", ".join(summary["without_bars"][:50])},
        ),
    ]


def model_check_result(asset: str, passed: bool, **metadata: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset, check_name="model_verified", passed=passed, metadata=metadata
    )


def drift_check_results(
    asset: str,
    reports: Mapping[dt.date, Mapping[str, Mapping[str, Any]]] | None,
    model_id: str,
) -> list[dg.AssetCheckResult]:
    """``feature_drift`` and ``score_drift`` from each scored session's ``window_drift``
    reports; a run of several sessions reports the one whose window drifted most, and each
    session's own severity under :data:`BY_SESSION` (what the demotion sensor and the staging
    trial read back, with ``model_id``).

    ``None``: the bundle has no drift reference. Both checks then fail at WARN: passing would
    claim the live rows were compared and found stable, and they were not; WARN because the
    calls themselves are no worse for it, only unwatched until a student trained since drift
    references exist is deployed.
    """
    if reports is None:
        return [
            dg.AssetCheckResult(
                asset_key=asset,
                check_name=name,
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"worst": "no reference", "model_id": model_id},
                description=NO_DRIFT_REFERENCE,
            )
            for name in DRIFT_CHECKS
        ]
    return [
        _drift_result(asset, name, {day: report[kind] for day, report in reports.items()}, model_id)
        for name, kind in DRIFT_CHECKS.items()
    ]


def _drift_result(
    asset: str, name: str, by_day: Mapping[dt.date, Mapping[str, Any]], model_id: str
) -> dg.AssetCheckResult:
    """One drift check of a run: the verdict of its most-drifted session, every session's own."""
    day, report = worst_session(by_day)
    worst = report["worst"] if judged(report) else "insufficient"
    window = " … ".join(report["window"]) or "no rows"
    metadata: dict[str, Any] = {
        "worst": worst,
        "session": day.isoformat(),
        "window": window,
        "rows_compared": report["rows"],
        "thresholds": dg.MetadataValue.json(report["thresholds"]),
        "sessions": len(by_day),
        "model_id": model_id,
        BY_SESSION: dg.MetadataValue.json(
            {
                d.isoformat(): r["worst"] if judged(r) else "insufficient"
                for d, r in sorted(by_day.items())
            }
        ),
        **{
            f"sessions_{s}": sum(r["worst"] == s for r in by_day.values())
            for s in ("warn", "error")
        },
    }
    flagged = [*report["error"], *report["warn"]]
    if flagged:
        metadata["flagged"] = _drift_table(report["columns"], flagged)
    if report["insufficient"]:
        metadata["insufficient"] = (
            f"fewer than {report['min_rows']} values: {', '.join(report['insufficient'])}"
        )
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=worst in ("ok", "insufficient"),
        severity=dg.AssetCheckSeverity.ERROR if worst == "error" else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=_drift_description(worst, report, flagged, window),
    )


def _drift_table(
    columns: Mapping[str, Mapping[str, Any]], flagged: Sequence[str]
) -> dg.MetadataValue:
    def limits(pair: Sequence[float]) -> str:
        return " / ".join(f"{x:.3g}" for x in pair)

    rows = [
        f"| {name} | {c['severity']}{' (provisional)' if c.get('provisional') else ''} | "
        f"{c['psi']:.3f} | {c['ks']:.3f} | "
        f"{limits(c['limits']['psi'])} | {limits(c['limits']['ks'])} | {c['rows']} |"
        for name, c in ((name, columns[name]) for name in flagged)
    ]
    header = (
        "| column | severity | PSI | KS | PSI limits | KS limits | rows |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    return dg.MetadataValue.md(header + "\n".join(rows))


def _drift_description(
    worst: str, report: Mapping[str, Any], flagged: Sequence[str], window: str
) -> str:
    if worst == "insufficient":
        return f"too few rows to judge drift: {report['rows']} < {report['min_rows']} ({window})"
    if worst == "ok":
        return f"within the training law over {window} ({report['rows']} rows)"
    columns = report["columns"]
    named = "; ".join(
        f"{c} PSI {columns[c]['psi']:.2f} KS {columns[c]['ks']:.2f}" for c in flagged[:5]
    )
    return f"{worst.upper()} over {window}: {named}"
