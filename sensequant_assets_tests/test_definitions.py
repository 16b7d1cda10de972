"""All definitions load, in every configuration a user can choose."""

from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.defs import build_defs
from sensequant_assets.settings import load_settings


def test_default_definitions_load_and_are_valid() -> None:
    defs = build_defs(load_settings())
    dg.Definitions.validate_loadable(defs)
    keys = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    assert keys == {
        "ohlcv_daily",
        "nifty50_benchmark",
        "teacher_model",
        "student_model",
        "data_quality",
        "model_validation",
        "stat_tests",
        "promotion_gate",
        "release_audit",
        "promotion_briefing",
        "production_model",
        "production_signals",
        "staging_model",
        "staging_signals",
        "staging_trial",
        "live_scorecard",
        "live_rewards",
    }
    assert {s.name for s in defs.sensors} >= {
        "promotion_sensor",
        "candidate_failure_sensor",
        "production_signals_sensor",
        "demotion_sensor",
        "run_failure_notifier",
    }
    ohlcv = defs.resolve_assets_def("ohlcv_daily")
    assert ohlcv.group_names_by_key[dg.AssetKey("ohlcv_daily")] == "market_data"
    assert {c.name for c in ohlcv.check_specs} == {
        "valid_rows",
        "volume_not_negative",
        "ohlc_consistent",
        "calendar_complete",
        "no_unadjusted_split",
    }
    partitions = ohlcv.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    assert partitions.get_partitions_def_for_dimension("symbol").get_num_partitions() == 102
    days = partitions.get_partitions_def_for_dimension("date").get_partition_keys()
    assert "2024-01-26" not in days and "2024-01-27" not in days and "2024-01-25" in days
    assert ohlcv.backfill_policy == dg.BackfillPolicy.single_run()


def test_stress_tests_join_the_graph_only_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSEQUANT_RUN_STRESS_TESTS", "true")
    defs = build_defs(load_settings())
    dg.Definitions.validate_loadable(defs)
    gate = defs.resolve_assets_def("promotion_gate")
    upstream = {key.to_user_string() for key in gate.dependency_keys}
    assert upstream == {"stat_tests", "stress_tests", "data_quality"}


def test_teacher_partitions_are_symbol_by_window() -> None:
    teacher = build_defs(load_settings()).resolve_assets_def("teacher_model")
    assert teacher.group_names_by_key[dg.AssetKey("teacher_model")] == "training"
    windows = teacher.partitions_def.get_partitions_def_for_dimension("train_window")
    keys = windows.get_partition_keys()
    assert keys[0] == "2024-03-13_to_2024-09-08"  # 49 warm-up sessions after 2024-01-01
    assert {c.name for c in teacher.check_specs} == {
        "sample_minimum",
        "class_balance",
        "finite_features",
        "no_leakage",
    }


def test_breeze_source_runs_in_the_breeze_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSEQUANT_DATA_SOURCE", "breeze")
    for name in ("BREEZE_API_KEY", "BREEZE_API_SECRET", "BREEZE_SESSION_TOKEN"):
        monkeypatch.setenv(name, "x")
    defs = build_defs(load_settings())
    assert defs.resolve_assets_def("ohlcv_daily").op.pool == "breeze_api"
    assert (
        build_defs(load_settings(data_source="synthetic")).resolve_assets_def("ohlcv_daily").op.pool
        is None
    )


def test_sentiment_asset_appears_only_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    headlines = tmp_path / "headlines.csv"
    headlines.write_text("date,symbol,headline\n2024-01-02,TCS,TCS wins large deal\n")
    monkeypatch.setenv("SENSEQUANT_SENTIMENT_HEADLINES_FILE", str(headlines))
    defs = build_defs(load_settings())
    assert "sentiment_snapshots" in {s.key.to_user_string() for s in defs.resolve_all_asset_specs()}


def test_symbols_setting_narrows_the_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", "tcs,RELIANCE")
    partitions = build_defs(load_settings()).resolve_assets_def("ohlcv_daily").partitions_def
    assert partitions.get_partitions_def_for_dimension("symbol").get_partition_keys() == [
        "RELIANCE",
        "TCS",
    ]


def test_module_entry_point_loads() -> None:
    import importlib

    module = importlib.import_module("sensequant_assets.definitions")
    assert isinstance(module.defs, dg.Definitions)


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["dagster", "definitions", "validate", "-w", "workspace.yaml"],
        ["dg", "list", "defs"],
    ],
)
def test_dagster_and_dg_command_lines_load_the_definitions(command: list[str]) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    executable = Path(sys.executable).parent / command[0]
    completed = subprocess.run(
        [str(executable), *command[1:]], cwd=root, capture_output=True, text=True, timeout=300
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "ohlcv_daily" in output or "Validation successful" in output


def test_loading_definitions_does_not_import_matplotlib() -> None:
    """Every Dagster load and CLI start pays for imports; charts load only when drawing."""
    import subprocess
    import sys

    code = "import sys, sensequant_assets.definitions; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
