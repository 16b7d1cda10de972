"""The candidate's data-quality summary: findings in words, splits resolved or not, windows,
corrections from the raw archive, and sentiment coverage."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from sensequant_assets.artifacts import DATA_QUALITY_JSON, ArtifactLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import CANDIDATE_JOB
from sensequant_assets.defs.tags import scope_tags
from sensequant_assets.features import WARMUP_SESSIONS
from sensequant_assets.features.sentiment import coverage_summary
from sensequant_assets.quality.audit import archived_negative_volumes, teacher_windows
from sensequant_assets.quality.corporate_actions import CorporateAction, CorporateActions
from sensequant_assets.quality.summary import WindowSpan, summarise_quality
from sensequant_assets.registry import StateManager
from sensequant_assets.release.briefing import StageOutputs, build_briefing
from sensequant_assets.release.briefing_markdown import render_markdown
from sensequant_assets.release.quality_section import MISSING_NOTE, manifest_quality
from sensequant_assets.settings import load_settings
from sensequant_assets.storage import RawArchive
from sensequant_assets_tests.evidence import write_evidence

SESSIONS = TradingCalendar().sessions(dt.date(2024, 1, 1), dt.date(2024, 6, 28))
SPLIT_DAY = SESSIONS[60]
EARLY = WindowSpan("TCS_2024-01-01_to_2024-03-31", "TCS", SESSIONS[0], SESSIONS[70])
LATE = WindowSpan("TCS_2024-04-01_to_2024-06-28", "TCS", SESSIONS[80], SESSIONS[98])


def tcs_bars(split: bool = True) -> pd.DataFrame:
    """A smooth walk halved from SPLIT_DAY (an unadjusted 2:1 split) with three sessions
    missing, one broken high and one volume of 0."""
    steps = np.random.default_rng(7).normal(0, 0.01, len(SESSIONS))
    close = 1000 * np.exp(np.cumsum(steps))
    if split:
        close[SESSIONS.index(SPLIT_DAY) :] /= 2
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(SESSIONS),
            "symbol": "TCS",
            "open": close * 0.999,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": np.full(len(SESSIONS), 5000, dtype="int64"),
        }
    )
    frame.loc[90, "high"] = frame.loc[90, "close"] * 0.9
    frame.loc[100, "volume"] = 0
    return frame.drop(index=[10, 11, 95]).reset_index(drop=True)


def test_findings_name_each_defect_its_dates_and_its_windows() -> None:
    negative = pd.DataFrame(
        {"date": pd.to_datetime([SESSIONS[100], SESSIONS[5]]), "symbol": "TCS", "volume": -7.0}
    )
    report = summarise_quality(
        tcs_bars(), ["TCS", "INFY"], SESSIONS, windows=[EARLY, LATE], negative_volumes=negative
    )
    tcs = report["symbols"]["TCS"]
    assert tcs["calendar_gaps"] == {
        "count": 3,
        "dates": [str(SESSIONS[10]), str(SESSIONS[11]), str(SESSIONS[95])],
        "windows": [EARLY.label, LATE.label],
    }
    assert tcs["ohlc_inconsistencies"]["dates"] == [str(SESSIONS[90])]
    # Only the stored 0 was a correction: SESSIONS[5] kept its volume, so that raw row wasn't.
    assert tcs["corrections"] == {"count": 1, "dates": [str(SESSIONS[100])], "windows": []}
    (split,) = tcs["splits"]
    line = f"TCS,{SPLIT_DAY},split,2"
    assert split == {
        "date": str(SPLIT_DAY),
        "ratio": 2.0,
        "resolved": False,
        "corporate_action": line,
        "windows": [EARLY.label],
        "words": split["words"],
    }
    words = "\n".join(tcs["findings"])
    assert f"3 NSE session(s) with no bar: {SESSIONS[10]}, {SESSIONS[11]}, {SESSIONS[95]}" in words
    assert f"suspected unadjusted split on {SPLIT_DAY} (ratio 2)" in words
    assert f"add the line {line}; in teacher window(s) 2024-01-01 to 2024-03-31" in words
    assert "negative volume clipped to 0 on 1 session(s)" in words
    assert "outside every teacher window's data" in words  # the correction: after LATE's data
    # INFY has no stored bar: every session is a gap, nothing else can be judged.
    assert report["symbols"]["INFY"]["calendar_gaps"]["count"] == len(SESSIONS)
    assert report["unresolved_splits"] == [
        {"symbol": "TCS", "date": str(SPLIT_DAY), "ratio": 2.0, "corporate_action": line}
    ]
    assert report["totals"] == {
        "symbols": 2,
        "sessions": len(SESSIONS),
        "symbols_with_findings": 2,
        "calendar_gaps": 3 + len(SESSIONS),
        "ohlc_inconsistencies": 1,
        "corrections": 1,
        "suspected_splits": 1,
        "resolved_splits": 0,
        "unresolved_splits": 1,
        "errors": 0,
    }
    json.dumps(report, allow_nan=False)  # JSON-able as it stands


def test_many_windows_are_named_by_their_first_and_last() -> None:
    spans = [
        WindowSpan(f"TCS_2024-0{m}-01_to_2024-0{m + 2}-28", "TCS", SESSIONS[0], SESSIONS[-1])
        for m in range(1, 5)
    ]
    report = summarise_quality(tcs_bars(split=False), ["TCS"], SESSIONS, windows=spans)
    (gaps, *_) = report["symbols"]["TCS"]["findings"]
    assert gaps.endswith(
        "; in 4 teacher windows (the first 2024-01-01 to 2024-03-28, the last 2024-04-01 to "
        "2024-06-28)"
    )


def _split_entry(bars: pd.DataFrame, *actions: CorporateAction) -> dict:
    report = summarise_quality(bars, ["TCS"], SESSIONS, CorporateActions(actions))
    return report["symbols"]["TCS"]


def test_a_listed_split_with_the_implied_ratio_is_resolved() -> None:
    tcs = _split_entry(tcs_bars(), CorporateAction("TCS", SPLIT_DAY, "split", 2))
    (split,) = tcs["splits"]
    assert split["resolved"] and split["corporate_action"] is None
    assert "back-adjusted by SENSEQUANT_CORPORATE_ACTIONS_FILE" in split["words"]
    assert tcs["corporate_actions_applied"] == [{"date": str(SPLIT_DAY), "ratio": 2.0}]


def test_a_listed_ratio_the_prices_contradict_stays_unresolved() -> None:
    (wrong,) = _split_entry(tcs_bars(), CorporateAction("TCS", SPLIT_DAY, "split", 5))["splits"]
    assert not wrong["resolved"] and "the move implies ratio 2, but" in wrong["words"]
    # Already adjusted data, yet the file lists a split: adjusting it creates the jump.
    (phantom,) = _split_entry(tcs_bars(split=False), CorporateAction("TCS", SPLIT_DAY, "split", 2))[
        "splits"
    ]
    assert phantom["ratio"] == 2 and not phantom["resolved"]
    assert "but the prices show no such move" in phantom["words"]


def test_a_split_on_the_first_day_is_judged_against_the_stored_close_before() -> None:
    bars = tcs_bars(split=False)
    before = float(bars["open"].iloc[0]) * 2
    report = summarise_quality(bars, ["TCS"], SESSIONS, previous_closes={"TCS": before})
    assert [s["date"] for s in report["symbols"]["TCS"]["splits"]] == [str(SESSIONS[0])]


def test_negative_volumes_are_read_from_the_archive_as_received(tmp_path: Path) -> None:
    archive = RawArchive(tmp_path / "raw")
    raw = pd.DataFrame(
        {
            "date": [str(SESSIONS[3]), str(SESSIONS[4]), "2023-12-29"],
            "open": "1",
            "high": "1",
            "low": "1",
            "close": "1",
            "volume": [" -40", "12", "-3"],
        }
    )
    archive.write("ohlcv_daily", "run1", {"TCS": raw, "INFY": raw}, "files")
    archive.write("ohlcv_daily", "run2", {"TCS": raw[["date", "open"]]}, "files")  # refused
    found = archived_negative_volumes(
        tmp_path / "raw" / "ohlcv_daily", ["TCS"], SESSIONS[0], SESSIONS[-1]
    )
    assert found.to_dict("records") == [
        {"date": pd.Timestamp(SESSIONS[3]), "symbol": "TCS", "volume": -40.0}
    ]


def test_teacher_windows_are_the_completed_ones_with_their_data_reach() -> None:
    calendar = TradingCalendar()
    runs = [
        {"window_label": "TCS_2024-03-01_to_2024-05-31", "symbol": "TCS", "status": "completed",
         "start": "2024-03-01", "end": "2024-05-31"},
        {"window_label": "TCS_2024-04-01_to_2024-06-28", "symbol": "TCS", "status": "skipped",
         "start": "2024-04-01", "end": "2024-06-28"},
    ]  # fmt: skip
    (window,) = teacher_windows(runs, calendar, horizon=5)
    assert window.label == "TCS_2024-03-01_to_2024-05-31" and window.span == (
        "2024-03-01 to 2024-05-31"
    )
    assert window.first == calendar.offset(dt.date(2024, 3, 1), -WARMUP_SESSIONS)
    assert window.last == calendar.offset(dt.date(2024, 5, 31), 5)


def test_sentiment_coverage_is_the_share_of_sessions_with_a_score() -> None:
    sessions = SESSIONS[:10]
    daily = pd.DataFrame(
        {
            "date": pd.to_datetime([*sessions[:9], *sessions[:4], dt.date(2023, 12, 29)]),
            "symbol": ["TCS"] * 9 + ["INFY"] * 5,
            "sentiment_score": 0.1,
            "headline_count": 1,
        }
    )
    coverage = coverage_summary(daily, ["TCS", "INFY", "ITC"], sessions)
    assert coverage["symbols"]["TCS"] == {
        "coverage": 0.9,
        "covered": 9,
        "total": 10,
        "coverage_below_80": False,
    }
    assert coverage["symbols"]["INFY"]["coverage"] == 0.4  # the 2023 row is outside the range
    assert coverage["symbols"]["ITC"]["covered"] == 0
    assert coverage["overall"]["covered"] == 13 and coverage["overall"]["total"] == 30
    assert coverage["symbols_below_80"] == ["INFY", "ITC"]
    assert coverage["summary"] == (
        "Sentiment data coverage: 43% (57% missing); under 80% for INFY 40%, ITC 0%"
    )


def _report(actions: CorporateActions | None = None, with_news: int | None = None) -> dict:
    """A ``data_quality.json`` of TCS (split, gaps, a broken high) and INFY (no bars at all
    besides its news); sentiment over the first ``with_news`` sessions, if given."""
    report = {
        "range": {"first": str(SESSIONS[0]), "last": str(SESSIONS[-1]), "sessions": len(SESSIONS)},
        "corporate_actions_file": None if actions is None else "corporate_actions.csv",
        **summarise_quality(tcs_bars(), ["TCS"], SESSIONS, actions, windows=[EARLY, LATE]),
        "sentiment": None,
    }
    if with_news is not None:
        daily = pd.DataFrame(
            {"date": pd.to_datetime(SESSIONS[:with_news]), "symbol": "TCS", "sentiment_score": 0.1}
        )
        report["sentiment"] = coverage_summary(daily, ["TCS"], SESSIONS)
    return report


def _briefing(report: dict | None) -> tuple[list[str], str]:
    outputs = StageOutputs(
        release_id="live_candidate_20261124_101500",
        student_runs={"symbols": ["TCS"], "date_range": [str(SESSIONS[0]), str(SESSIONS[-1])]},
        data_quality=report,
    )
    briefing = build_briefing(outputs)
    json.dumps(briefing, allow_nan=False)
    return briefing["risk_assessment"]["warnings"], render_markdown(briefing)


def test_the_briefing_warns_of_each_finding_by_symbol_and_date() -> None:
    warnings, markdown = _briefing(_report())
    split = [w for w in warnings if "split" in w]
    assert split == [
        f"TCS: suspected unadjusted split on {SPLIT_DAY} (ratio 2), not in "
        "SENSEQUANT_CORPORATE_ACTIONS_FILE: training read the unadjusted prices; if the "
        f"exchange's filings confirm it, add the line TCS,{SPLIT_DAY},split,2; in teacher "
        f"window(s) {EARLY.span}"
    ]
    assert any(w.startswith("TCS: 3 NSE session(s) with no bar: ") for w in warnings)
    assert any(w.startswith("TCS: high or low inconsistent") and str(SESSIONS[90]) in w
               for w in warnings)  # fmt: skip
    assert "## Data quality" in markdown and "1 unresolved" in markdown
    assert "- Sentiment: not enabled" in markdown
    assert f"- TCS: suspected unadjusted split on {SPLIT_DAY}" in markdown  # under Warnings


def test_a_resolved_split_is_reported_but_not_a_warning() -> None:
    actions = CorporateActions([CorporateAction("TCS", SPLIT_DAY, "split", 2)])
    warnings, markdown = _briefing(_report(actions))
    assert not [w for w in warnings if "split" in w]
    assert f"- TCS: split on {SPLIT_DAY} (ratio 2) back-adjusted" in markdown
    assert "0 unresolved" in markdown and "- Corporate actions: corporate_actions.csv" in markdown


def test_sentiment_coverage_under_80_percent_is_a_warning_with_its_figures() -> None:
    low = len(SESSIONS) // 2
    warnings, markdown = _briefing(_report(with_news=low))
    percent = round(100 * low / len(SESSIONS))
    line = f"Sentiment data coverage: {percent}% ({100 - percent}% missing)"
    assert f"{line}; under 80% for TCS {low / len(SESSIONS):.0%}" in markdown
    assert any(w.startswith(line) and "at best needs_review" in w for w in warnings)
    assert f"- Sentiment coverage per symbol: TCS {low / len(SESSIONS):.0%}" in markdown
    warnings, _ = _briefing(_report(with_news=len(SESSIONS)))
    assert not [w for w in warnings if "Sentiment" in w]


def test_a_trained_candidate_without_a_summary_says_so() -> None:
    warnings, markdown = _briefing(None)
    assert MISSING_NOTE in warnings
    assert "## Data quality\n\n_Not reached in this run._" in markdown


def test_the_manifest_keeps_the_totals_and_the_unresolved_splits() -> None:
    section = manifest_quality(_report(with_news=len(SESSIONS)))
    assert section is not None
    assert section["totals"]["unresolved_splits"] == 1
    assert section["unresolved_splits"] == [
        {"symbol": "TCS", "date": str(SPLIT_DAY), "ratio": 2.0,
         "corporate_action": f"TCS,{SPLIT_DAY},split,2"}
    ]  # fmt: skip
    assert section["sentiment_coverage"] == {"overall": 1.0, "symbols_below_80": []}
    assert any(str(SPLIT_DAY) in words for words in section["findings"]["TCS"])
    assert manifest_quality(None) is None


def test_the_asset_leaves_a_reviewed_candidates_summary_alone() -> None:
    """An approved candidate's manifest hashes its data_quality.json: it is never rewritten."""
    settings = load_settings()
    layout = ArtifactLayout(settings.home)
    candidate = layout.candidate("live_candidate_20261124_101500")
    candidate.root.mkdir(parents=True)
    candidate.student_runs.write_text(json.dumps({"symbols": ["TCS"]}))
    audit = write_evidence(layout.audit_dir(candidate))
    (audit / DATA_QUALITY_JSON).write_text("{}")
    registry = StateManager(layout.registry)
    registry.record_candidate_run(candidate.candidate_id, audit_dir=audit)
    registry.approve_candidate_run(candidate.candidate_id, approved_by="asha")
    tags = scope_tags(candidate.candidate_id, ["TCS"], SESSIONS[0], SESSIONS[-1])
    with dg.DagsterInstance.ephemeral() as instance:
        result = (
            build_defs(settings)
            .resolve_job_def(CANDIDATE_JOB)
            .execute_in_process(
                instance=instance,
                tags=tags,
                asset_selection=[dg.AssetKey("data_quality")],
                raise_on_error=False,
            )
        )
    assert not result.success
    assert "is approved" in result.failure_data_for_node("data_quality").error.message
    assert (audit / DATA_QUALITY_JSON).read_text() == "{}"
