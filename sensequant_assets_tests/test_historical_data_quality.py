"""`historical-run` over files with a 2:1 split, gaps and defects, a corporate-actions file
listing the split and a headlines file: sentiment is ingested and learnt from, training reads a
continuous back-adjusted series while the stored bars stay as received, and
``data_quality.json`` names the gaps, the defects, the coverage and the split as resolved; the
briefing warns of the gaps and the coverage but not of the split. Without the file, the same
candidate's summary names the split as unresolved, with the line to add, and the briefing warns
of it by symbol and date, and the gate does not approve."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from sensequant_assets.artifacts import DATA_QUALITY_JSON, ArtifactLayout
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import CANDIDATE_JOB
from sensequant_assets.defs.tags import scope_tags
from sensequant_assets.orchestration.historical import HistoricalRequest, run_historical
from sensequant_assets.settings import load_settings
from sensequant_assets.sources.synthetic import SyntheticSource
from sensequant_assets.storage import Warehouse
from sensequant_assets.training.resources import Training
from sensequant_assets.universe import INDEX_SYMBOL, load_universe, universe_for
from sensequant_assets_tests.fault_drills import make_dagster_home

# Three symbols: the books trade the top and bottom thirds, which two symbols never fill.
SYMBOLS = ("INFY", "RELIANCE", "TCS")
START, END = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
SESSIONS = TradingCalendar().sessions(START, END)
SPLIT_DAY = SESSIONS[120]
GAPS = {"RELIANCE": [SESSIONS[30], SESSIONS[31], SESSIONS[200]], "TCS": [SESSIONS[150]]}
BROKEN_HIGH, NEGATIVE_VOLUME = SESSIONS[50], SESSIONS[70]
SPLIT_LINE = f"RELIANCE,{SPLIT_DAY},split,2"
# RELIANCE has news on 9 sessions of every 10, TCS on every third.
NEWS = {
    "RELIANCE": [d for i, d in enumerate(SESSIONS) if i % 10 != 9],
    "TCS": SESSIONS[::3],
}


def write_bars(directory: Path, source: SyntheticSource, symbol: str) -> None:
    """The synthetic market's bars; RELIANCE's are unadjusted for a 2:1 split and carry a
    broken high and a negative volume."""
    frame = source.fetch(symbol, START, END)
    if symbol == "RELIANCE":
        after = frame["date"] >= pd.Timestamp(SPLIT_DAY)
        frame.loc[after, ["open", "high", "low", "close"]] /= 2
        frame.loc[frame["date"] == pd.Timestamp(BROKEN_HIGH), "high"] = frame["low"] * 0.9
        frame.loc[frame["date"] == pd.Timestamp(NEGATIVE_VOLUME), "volume"] = -5
    frame = frame[~frame["date"].dt.date.isin(GAPS.get(symbol, []))]
    frame.assign(date=frame["date"].dt.date.astype(str)).to_csv(
        directory / f"{symbol}.csv", index=False
    )


@pytest.fixture
def defective_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = make_dagster_home(tmp_path / "dagster_home")  # the repo's dagster.yaml
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    files = tmp_path / "files"
    files.mkdir()
    source = SyntheticSource(universe_for(load_settings()), TradingCalendar())
    for symbol in (*SYMBOLS, INDEX_SYMBOL):
        write_bars(files, source, symbol)
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "files")
    monkeypatch.setenv("SENSEQUANT_FILES_DIR", str(files))
    monkeypatch.setenv("SENSEQUANT_ALLOW_MISSING_SESSIONS", "true")
    headlines = tmp_path / "headlines.csv"
    rows = [f"{d},{s},{s} shares rise on strong results" for s, days in NEWS.items() for d in days]
    headlines.write_text("date,symbol,headline\n" + "\n".join(rows) + "\n")
    monkeypatch.setenv("SENSEQUANT_SENTIMENT_HEADLINES_FILE", str(headlines))
    actions = tmp_path / "corporate_actions.csv"
    actions.write_text(f"symbol,ex_date,kind,ratio\n{SPLIT_LINE}\n")
    monkeypatch.setenv("SENSEQUANT_CORPORATE_ACTIONS_FILE", str(actions))
    return tmp_path


@pytest.mark.slow
def test_data_quality_and_sentiment_travel_with_the_candidate(
    defective_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    with dg.DagsterInstance.get() as instance:
        outcome = run_historical(HistoricalRequest(SYMBOLS, START, END), settings, instance)
    assert outcome.succeeded, outcome.error
    layout = ArtifactLayout.of(settings)
    candidate = layout.candidate(outcome.candidate_id)
    audit = layout.audit_dir(candidate)

    # Sentiment was ingested over the run's dates, and the student learnt from it.
    warehouse = Warehouse.from_settings(settings)
    stored = warehouse.symbols_bars("sentiment_snapshots", list(SYMBOLS), START, END)
    assert {s: len(g) for s, g in stored.groupby("symbol")} == {s: len(d) for s, d in NEWS.items()}
    student = json.loads((candidate.student_dir / "student_metadata.json").read_text())
    assert {"sentiment_score", "sentiment_available"} <= set(student["feature_names"])

    report = json.loads((audit / DATA_QUALITY_JSON).read_text())
    runs = json.loads(candidate.student_runs.read_text())
    first, last = (dt.date.fromisoformat(d) for d in runs["date_range"])
    sample_sessions = [d for d in SESSIONS if first <= d <= last]
    data_first, data_last = (dt.date.fromisoformat(d) for d in runs["data_range"])
    assert report["range"] == {
        "first": str(data_first),
        "last": str(data_last),
        "sessions": len([d for d in SESSIONS if data_first <= d <= data_last]),
    }
    sentiment = report["sentiment"]
    for symbol, days in NEWS.items():
        covered = len(set(days) & set(sample_sessions))
        assert sentiment["symbols"][symbol]["covered"] == covered
        assert sentiment["symbols"][symbol]["coverage"] == covered / len(sample_sessions)
    assert sentiment["symbols"]["INFY"]["covered"] == 0
    assert sentiment["symbols_below_80"] == ["INFY", "TCS"]
    assert sentiment["overall"]["coverage_below_80"] is True  # (90% + 33% + 0%) / 3
    assert sentiment["summary"].startswith("Sentiment data coverage: ")

    # The gaps and defects, where they are; the listed split is resolved.
    reliance, tcs = report["symbols"]["RELIANCE"], report["symbols"]["TCS"]
    words = "\n".join(reliance["findings"])
    assert f"3 NSE session(s) with no bar: {SESSIONS[30]}, {SESSIONS[31]}, {SESSIONS[200]}" in (
        words
    )
    assert reliance["calendar_gaps"]["windows"]
    assert reliance["ohlc_inconsistencies"]["dates"] == [str(BROKEN_HIGH)]
    assert reliance["corrections"]["dates"] == [str(NEGATIVE_VOLUME)]
    assert tcs["calendar_gaps"]["dates"] == [str(SESSIONS[150])] and tcs["splits"] == []
    assert report["symbols"]["INFY"]["findings"] == []
    assert report["totals"]["calendar_gaps"] == 4
    (split,) = reliance["splits"]
    assert split["date"] == str(SPLIT_DAY) and split["resolved"] and split["windows"]
    assert f"split on {SPLIT_DAY} (ratio 2) back-adjusted" in words
    assert report["unresolved_splits"] == [] and report["totals"]["resolved_splits"] == 1
    manifest = yaml.safe_load((audit / "manifest.yaml").read_text())
    assert any(path.endswith(f"/{DATA_QUALITY_JSON}") for path in manifest["artifacts"])
    assert manifest["data_quality"]["totals"]["resolved_splits"] == 1
    assert manifest["lineage"]["input_files"]["corporate_actions_file"]["sha256"]

    # Training read the split back-adjusted; the stored bars are as received.
    stored_bars = warehouse.bars("ohlcv_daily", "RELIANCE", START, END).set_index("date")
    read = Training(settings, load_universe(), TradingCalendar()).warehouse
    adjusted = read.bars("ohlcv_daily", "RELIANCE", START, END).set_index("date")
    day = pd.Timestamp(SPLIT_DAY)
    before = stored_bars.index[stored_bars.index < day][-1]
    assert stored_bars.at[day, "close"] / stored_bars.at[before, "close"] < 0.6
    assert 0.9 < adjusted.at[day, "close"] / adjusted.at[before, "close"] < 1.1

    # The briefing warns of the gaps and the coverage in words, not of the resolved split.
    briefing = json.loads((audit / "promotion_briefing.json").read_text())
    warnings = briefing["risk_assessment"]["warnings"]
    assert any(w.startswith("RELIANCE: 3 NSE session(s) with no bar") for w in warnings)
    assert any(w.startswith("Sentiment data coverage") for w in warnings)
    assert not [w for w in warnings if "split" in w]
    assert briefing["recommendation"] != "approve"
    gate = json.loads((audit / "gate_decision.json").read_text())
    (quality_rule,) = [r for r in gate["rules"] if r["name"] == "data_quality"]
    assert not quality_rule["passed"] and "Sentiment data coverage" in quality_rule["detail"]
    markdown = (audit / "promotion_briefing.md").read_text()
    assert f"- RELIANCE: split on {SPLIT_DAY} (ratio 2) back-adjusted" in markdown

    # Without the file the split is unresolved, named with the line that would adjust it.
    monkeypatch.delenv("SENSEQUANT_CORPORATE_ACTIONS_FILE")
    job = build_defs(load_settings()).resolve_job_def(CANDIDATE_JOB)
    with dg.DagsterInstance.get() as instance:
        rerun = job.execute_in_process(
            instance=instance,
            tags=scope_tags(candidate.candidate_id, SYMBOLS, START, END),
            asset_selection=[
                dg.AssetKey(key)
                for key in ("data_quality", "promotion_gate", "release_audit", "promotion_briefing")
            ],
        )
    assert rerun.success
    unadjusted = json.loads((audit / DATA_QUALITY_JSON).read_text())
    assert unadjusted["unresolved_splits"] == [
        {"symbol": "RELIANCE", "date": str(SPLIT_DAY), "ratio": 2.0, "corporate_action": SPLIT_LINE}
    ]
    words = "\n".join(unadjusted["symbols"]["RELIANCE"]["findings"])
    assert f"suspected unadjusted split on {SPLIT_DAY} (ratio 2)" in words and SPLIT_LINE in words
    briefing = json.loads((audit / "promotion_briefing.json").read_text())
    split_warnings = [w for w in briefing["risk_assessment"]["warnings"] if "split" in w]
    assert len(split_warnings) == 1
    assert split_warnings[0].startswith(f"RELIANCE: suspected unadjusted split on {SPLIT_DAY}")
    assert briefing["recommendation"] in ("needs_review", "reject")
    gate = json.loads((audit / "gate_decision.json").read_text())
    assert any("RELIANCE" in r and str(SPLIT_DAY) in r for r in gate["reasons"])
