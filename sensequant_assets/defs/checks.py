"""Data-quality guardrails as first-class asset checks.

The rules themselves live in ``sensequant_assets.quality``; here each rule group becomes an
``AssetCheckSpec`` and a run's findings become ``AssetCheckResult``s. Hard errors are ERROR
checks and also fail the materialization (so nothing of the run is written); corrections and
suspicious data are WARN checks that keep the data and say exactly what was seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from sensequant_assets.quality import Finding

MAX_LISTED_FINDINGS = 50


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


def check_results(
    asset_key: str, findings: Sequence[Finding], names: Iterable[str] | None = None
) -> list[dg.AssetCheckResult]:
    """One result per guardrail: passed when none of its rules produced a finding."""
    wanted = set(names) if names is not None else None
    results = []
    for guardrail in GUARDRAILS:
        if wanted is not None and guardrail.name not in wanted:
            continue
        hits = [f for f in findings if f.rule in guardrail.rules]
        metadata: dict[str, Any] = {"findings": len(hits)}
        for rule in guardrail.rules:
            metadata[rule] = sum(1 for f in hits if f.rule == rule)
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
