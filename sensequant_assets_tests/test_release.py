"""Lineage hashes, secret-free configuration and the partial briefing of a failed run."""

import json
from pathlib import Path

import pandas as pd
import pytest

from sensequant_assets.release.briefing import StageOutputs, build_briefing, render_markdown
from sensequant_assets.release.lineage import code_version, data_snapshot_hash, public_configuration
from sensequant_assets.settings import load_settings

BARS = pd.DataFrame(
    {
        "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
        "symbol": ["TCS", "TCS", "INFY"],
        "open": [1.0, 2.0, 3.0],
        "high": [1.0, 2.0, 3.0],
        "low": [1.0, 2.0, 3.0],
        "close": [1.0, 2.0, 3.0],
        "volume": [10, 20, 30],
    }
)


def test_snapshot_hash_ignores_row_order_and_sees_any_value_change() -> None:
    base = data_snapshot_hash(BARS)
    assert data_snapshot_hash(BARS.iloc[::-1]) == base
    changed = BARS.copy()
    changed.loc[1, "close"] = 2.5
    assert data_snapshot_hash(changed) != base
    with pytest.raises(ValueError, match="volume"):
        data_snapshot_hash(BARS.drop(columns="volume"))


def test_configuration_leaves_secrets_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREEZE_API_KEY", "key-123")
    monkeypatch.setenv("BREEZE_SESSION_TOKEN", "token-456")
    config = public_configuration(load_settings())
    text = json.dumps(config)
    assert "key-123" not in text and "token-456" not in text
    assert "breeze_api_key" not in config and "breeze_session_token" not in config
    assert config["label_horizon"] == 7


def test_code_version_outside_a_checkout_says_why(tmp_path: Path) -> None:
    inside = code_version()
    assert len(inside["commit"]) == 40 and isinstance(inside["dirty"], bool)
    outside = code_version(tmp_path)
    assert outside["commit"] is None and "no git checkout" in outside["reason"]


def test_a_failed_run_gets_a_partial_briefing_naming_the_phase() -> None:
    outputs = StageOutputs(
        release_id="live_candidate_20261124_101500",
        student_runs={"symbols": ["TCS"], "date_range": ["2024-01-01", "2024-12-31"]},
        failed_phase="validation",
        error="ValueError: no NIFTY 50 benchmark bars",
    )
    briefing = build_briefing(outputs)
    assert briefing["status"] == "failed" and briefing["recommendation"] is None
    assert briefing["validation_results"] is None and briefing["statistical_tests"] is None
    assert briefing["risk_assessment"]["outstanding_issues"] == [
        "phase 'validation' failed: ValueError: no NIFTY 50 benchmark bars"
    ]
    markdown = render_markdown(briefing)
    assert "**Failed phase:** validation: ValueError: no NIFTY 50 benchmark bars" in markdown
    assert "## Validation results\n\n_Not reached in this run._" in markdown
    assert "re-run `sensequant historical-run`" in markdown
    json.dumps(briefing, allow_nan=False)
