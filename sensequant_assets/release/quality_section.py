"""The briefing's and the manifest's view of ``data_quality.json``.

The data-quality summary is computed once, by the ``data_quality`` asset; the briefing turns
its findings into warnings a reviewer reads in words (naming symbol and date), and the manifest
keeps its totals, so an approval binds the data defects the reviewer was shown. Nothing here
re-judges the bars: a briefing without the file says so rather than "no findings".
"""

from __future__ import annotations

from typing import Any

MISSING_NOTE = "data_quality.json is missing: the candidate's data quality was not summarised"


def quality_section(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The briefing's ``data_quality`` section; None when the summary was not written."""
    if report is None:
        return None
    sentiment = report.get("sentiment")
    return {
        "range": report["range"],
        "corporate_actions_file": report.get("corporate_actions_file"),
        "totals": report["totals"],
        "findings": _by_symbol(report, resolved=False),
        "adjusted": _by_symbol(report, resolved=True),
        "unresolved_splits": report["unresolved_splits"],
        "sentiment": None
        if sentiment is None
        else {
            "summary": sentiment["summary"],
            "overall": sentiment["overall"]["coverage"],
            "symbols": {s: v["coverage"] for s, v in sentiment["symbols"].items()},
            "symbols_below_80": sentiment["symbols_below_80"],
            "threshold": sentiment["threshold"],
        },
    }


def _by_symbol(report: dict[str, Any], resolved: bool) -> dict[str, list[str]]:
    """Each symbol's findings in words: the splits the corporate-actions file resolved
    (``resolved``), or everything else, which a reviewer must weigh."""
    found: dict[str, list[str]] = {}
    for symbol, entry in report["symbols"].items():
        adjusted = {s["words"] for s in entry["splits"] if s["resolved"]}
        words = [w for w in entry["findings"] if (w in adjusted) == resolved]
        if words:
            found[symbol] = words
    return found


def quality_warnings(section: dict[str, Any] | None, trained: bool) -> list[str]:
    """One warning per finding (``SYMBOL: words``), and one for sentiment coverage under the
    review threshold; a trained candidate without a summary is a warning of its own."""
    if section is None:
        return [MISSING_NOTE] if trained else []
    warnings = [
        f"{symbol}: {words}" for symbol, found in section["findings"].items() for words in found
    ]
    sentiment = section["sentiment"]
    if sentiment and sentiment["overall"] < sentiment["threshold"]:
        warnings.append(
            f"{sentiment['summary']}: under {sentiment['threshold']:.0%} overall, the gate "
            "recommends at best needs_review"
        )
    elif sentiment and sentiment["symbols_below_80"]:
        warnings.append(sentiment["summary"])
    return warnings


def quality_markdown(section: dict[str, Any]) -> list[str]:
    """The briefing's ``Data quality`` lines (the findings themselves are under Warnings)."""
    totals, span = section["totals"], section["range"]
    lines = [
        f"- Range checked: {span['first']} to {span['last']} ({span['sessions']} NSE sessions, "
        "warm-up and label horizon included), as stored (unadjusted)",
        f"- {totals['symbols_with_findings']} of {totals['symbols']} symbol(s) with findings: "
        f"{totals['calendar_gaps']} missing session(s), {totals['ohlc_inconsistencies']} OHLC "
        f"inconsistent session(s), {totals['corrections']} correction(s), "
        f"{totals['suspected_splits']} suspected split(s) of which "
        f"{totals['unresolved_splits']} unresolved",
        f"- Corporate actions: {section['corporate_actions_file'] or 'no file given'}",
    ]
    lines += [f"- {s}: {words}" for s, found in section["adjusted"].items() for words in found]
    sentiment = section["sentiment"]
    if sentiment is None:
        lines.append("- Sentiment: not enabled (SENSEQUANT_SENTIMENT_HEADLINES_FILE unset)")
    else:
        per_symbol = ", ".join(f"{s} {c:.0%}" for s, c in sentiment["symbols"].items())
        lines += [f"- {sentiment['summary']}", f"- Sentiment coverage per symbol: {per_symbol}"]
    return lines


def manifest_quality(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The manifest's ``data_quality`` section: totals, unresolved splits, sentiment coverage
    and the findings per symbol in words (the full file is hashed among the artifacts)."""
    section = quality_section(report)
    if section is None:
        return None
    sentiment = section["sentiment"]
    return {
        "range": section["range"],
        "totals": section["totals"],
        "unresolved_splits": section["unresolved_splits"],
        "findings": section["findings"],
        "sentiment_coverage": None
        if sentiment is None
        else {"overall": sentiment["overall"], "symbols_below_80": sentiment["symbols_below_80"]},
    }
