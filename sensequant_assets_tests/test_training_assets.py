"""teacher_model end to end: stored OHLCV → per-window teachers, skips and failures."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from sensequant_assets.artifacts import ArtifactLayout, CandidateLayout
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import CANDIDATE_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.settings import Settings, load_settings
from sensequant_assets.training.resources import Training
from sensequant_assets.training.reward_ab import ab_summary
from sensequant_assets.training.runner import RunReads, train_window
from sensequant_assets.training.teacher_record import load_teacher
from sensequant_assets.training.windows import TrainingWindow
from sensequant_assets_tests.jobs import FIRST, ingest, ingest_benchmark, train

LATE = "2024-10-09_to_2025-04-06"  # ends on the data's last days: no future for its labels
BEYOND = "2025-08-05_to_2026-01-31"  # its warm-up starts after the stored data ends


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", "INFY,RELIANCE,TCS")
    return load_settings()


def test_windows_train_skip_and_fail_independently(settings: Settings, tmp_path: Path) -> None:
    layout = ArtifactLayout(settings.home)
    with dg.DagsterInstance.ephemeral() as instance:
        ingest(settings, instance, "INFY")
        ingest(settings, instance, "TCS")

        no_benchmark = train(settings, instance, f"INFY|{FIRST}", f"INFY|{FIRST}")
        assert not no_benchmark.success  # market-relative labels need the NIFTY 50
        failure = json.loads((layout.teacher_dir(f"INFY_{FIRST}") / "metadata.json").read_text())
        assert "materialize nifty50_benchmark" in failure["error"]["message"]

        ingest_benchmark(settings, instance)
        result = train(settings, instance, f"INFY|{FIRST}", f"TCS|{FIRST}")
        assert not result.success  # RELIANCE has no stored bars
        done = instance.get_materialized_partitions(dg.AssetKey("teacher_model"))
        assert done == {f"INFY|{FIRST}", f"TCS|{FIRST}"}
        failure = json.loads(
            (layout.teacher_dir(f"RELIANCE_{FIRST}") / "metadata.json").read_text()
        )
        assert failure["status"] == "failed" and failure["error"]["type"] == "LookupError"
        assert "materialize ohlcv_daily for RELIANCE" in failure["error"]["message"]
        assert "Traceback" in failure["error"]["traceback"]
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks["no_leakage"] and checks["finite_features"]

        booster, record = load_teacher(layout.teacher_dir(f"TCS_{FIRST}"))
        assert record.status == "completed" and booster.num_trees() > 0
        assert record.train_last_label_end < record.split_boundary
        materialization = next(
            e.event_specific_data.materialization
            for e in result.all_events
            if e.is_step_materialization and e.partition == f"TCS|{FIRST}"
        )
        assert materialization.metadata["accuracy"].value == record.metrics["accuracy"]

        ingest(settings, instance, "RELIANCE")
        retry = train(settings, instance, f"RELIANCE|{FIRST}", f"RELIANCE|{FIRST}")
        assert retry.success
        assert len(instance.get_materialized_partitions(dg.AssetKey("teacher_model"))) == 3

        for window in (LATE, BEYOND):  # skipped, even where no benchmark close is stored yet
            late = train(settings, instance, f"TCS|{window}", f"TCS|{window}")
            assert late.success
            assert f"TCS|{window}" not in instance.get_materialized_partitions(
                dg.AssetKey("teacher_model")
            )
            observation = next(
                e.event_specific_data.asset_observation
                for e in late.all_events
                if e.event_type_value == "ASSET_OBSERVATION"
            )
            assert observation.metadata["reason_code"].value == "insufficient_future_data"
    progress = list(layout.progress_dir.glob("teacher_model_*.json"))
    assert progress and all(json.loads(p.read_text())["done"] >= 1 for p in progress)


def test_student_builds_a_candidate_bundle_with_the_reward_loop(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REWARD_LOOP_ENABLED", "true")
    monkeypatch.setenv("REWARD_AB_TESTING_ENABLED", "true")
    settings = load_settings()
    defs = build_defs(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        for symbol in ("INFY", "RELIANCE", "TCS"):
            ingest(settings, instance, symbol)
        ingest_benchmark(settings, instance)
        assert train(settings, instance, f"INFY|{FIRST}", f"TCS|{FIRST}").success
        # the whole candidate: the walk-forward replays the reward loop, the briefing tells
        result = defs.resolve_job_def(CANDIDATE_JOB).execute_in_process(instance=instance)
    assert result.success
    metadata = result.asset_materializations_for_node("student_model")[0].metadata
    candidate = Path(metadata["candidate"].value)
    assert candidate.name.startswith("live_candidate_")
    teacher_runs = json.loads((candidate / "teacher_runs.json").read_text())
    assert teacher_runs["summary"]["completed"] == 3
    assert teacher_runs["summary"]["missing"] == teacher_runs["summary"]["total"] - 3
    assert sorted(p.name for p in (candidate / "teacher_models").iterdir()) == [
        f"INFY_{FIRST}",
        f"RELIANCE_{FIRST}",
        f"TCS_{FIRST}",
    ]
    student_runs = json.loads((candidate / "student_runs.json").read_text())
    assert student_runs["distillation"]["rows_with_teacher_targets"] > 0
    assert student_runs["metrics"]["accuracy"] == metadata["test_accuracy"].value
    rewards = student_runs["rewards"]
    assert rewards["enabled"] and rewards["test_rewards"]["count"] > 0
    ab = rewards["ab_test"]
    hashes = ab["test_rows_sha256"]
    assert hashes["baseline"] == hashes["reward_weighted"] and ab["n_test"] > 0
    history = (candidate / "reward_history" / "TCS.jsonl").read_text().splitlines()
    assert history and {"date", "predicted", "realized_return", "reward"} <= set(
        json.loads(history[0])
    )
    # out-of-fold rewards weighted the student; the in-sample ones are kept only to compare
    assert rewards["train_rewards"]["count"] == rewards["in_sample_train_rewards"]["count"] > 0
    assert len(rewards["cross_fit"]["blocks"]) == 5
    # the A/B result, as measured, in stat_tests.json and the briefing
    audit = ArtifactLayout(settings.home).audit_dir(CandidateLayout(candidate))
    tests = json.loads((audit / "stat_tests.json").read_text())
    assert tests["reward_ab_test"] == ab_summary(rewards)
    assert tests["reward_ab_test"]["relative_improvement"] == ab["relative_improvement"]
    assert tests["reward_ab_test"]["p_value"] == ab["mcnemar"]["p_value"]
    markdown = (audit / "promotion_briefing.md").read_text()
    assert f"  - Reward loop A/B (weighted vs unweighted student): {ab['verdict']}" in markdown
    assert "story's +10% target" in ab["verdict"]
    out_of_fold = rewards["train_rewards"]["win_rate"]
    assert f"training rows out of fold {out_of_fold:.4f} (used)" in markdown
    assert (candidate / "student" / "student_model.txt").read_text().startswith("tree")


def test_sentiment_becomes_a_feature_when_enabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    headlines = tmp_path / "headlines.csv"
    headlines.write_text(
        "date,symbol,headline\n"
        "2024-04-02,TCS,TCS wins a record deal and shares surge\n"
        "2024-05-06,TCS,TCS slumps after weak guidance\n"
    )
    monkeypatch.setenv("SENSEQUANT_SYMBOLS", "TCS")
    monkeypatch.setenv("SENSEQUANT_SENTIMENT_HEADLINES_FILE", str(headlines))
    settings = load_settings()
    defs = build_defs(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        ingest(settings, instance, "TCS")
        ingest_benchmark(settings, instance)
        tags = one_symbol_range_tags("TCS", dt.date(2024, 1, 1), dt.date(2025, 4, 4))
        sentiment = defs.resolve_job_def("sentiment_snapshots_job")
        assert sentiment.execute_in_process(instance=instance, tags=tags).success
        assert train(settings, instance, f"TCS|{FIRST}", f"TCS|{FIRST}").success
    _, record = load_teacher(ArtifactLayout(settings.home).teacher_dir(f"TCS_{FIRST}"))
    assert "sentiment_score" in record.features and "sentiment_available" in record.features


def test_a_run_reading_once_trains_the_same_teachers_as_windows_read_alone(
    settings: Settings,
) -> None:
    """RunReads slices one read per symbol; every window must see exactly its own rows."""
    with dg.DagsterInstance.ephemeral() as instance:
        ingest(settings, instance, "INFY")
        ingest(settings, instance, "TCS")
        ingest_benchmark(settings, instance)
    defs = build_defs(settings)
    training = defs.resources["training"]
    assert isinstance(training, Training)
    keys = ["2024-03-13_to_2024-09-08", "2024-05-12_to_2024-11-08", LATE]
    windows = [TrainingWindow.from_span_key(s, k) for s in ("INFY", "TCS") for k in keys]
    reads = RunReads(training, windows)
    layout = ArtifactLayout(settings.home)
    for window in windows:
        shared = train_window(training, window, reads=reads)
        model = layout.teacher_dir(window.label) / "model.txt"
        shared_model = model.read_text() if model.exists() else None
        alone = train_window(training, window)
        assert (shared.status, shared.counts, shared.metrics) == (
            alone.status,
            alone.counts,
            alone.metrics,
        ), window.label
        assert shared_model == (model.read_text() if model.exists() else None), window.label
    assert {r.status for r in (train_window(training, w) for w in windows)} == {
        "completed",
        "skipped",
    }


def test_a_teacher_run_does_not_enumerate_the_bars_partitions(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster maps a run's partitions onto each upstream's to record input data versions.
    Left to infer the mapping from symbol × window onto day × symbol, it listed every
    ohlcv_daily key at each run's start: 4-7 s a run at 18 years × 102 symbols."""
    with dg.DagsterInstance.ephemeral() as instance:
        ingest(settings, instance, "INFY")
        ingest_benchmark(settings, instance)
        listed: list[int] = []
        enumerate_keys = dg.MultiPartitionsDefinition.get_partition_keys

        def counting(self: dg.MultiPartitionsDefinition, *args: object, **kwargs: object):
            keys = enumerate_keys(self, *args, **kwargs)
            if "date" in self.partition_dimension_names:
                listed.append(len(keys))
            return keys

        monkeypatch.setattr(dg.MultiPartitionsDefinition, "get_partition_keys", counting)
        assert train(settings, instance, f"INFY|{FIRST}", f"INFY|{FIRST}").success
    assert listed == []
